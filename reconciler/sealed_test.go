package reconciler

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/yaml"

	"github.com/strata-gitops/strata/internal/cluster"
	"github.com/strata-gitops/strata/internal/config"
	"github.com/strata-gitops/strata/internal/inventory"
	"github.com/strata-gitops/strata/internal/labels"
	"github.com/strata-gitops/strata/internal/secrets"
)

// sealedFixture is a repository with a restricted Secret for the ledger
// (on-prem only) and a confidential one for fraud scoring (private-cloud
// and on-prem), encrypted with fresh per-tier keys.
type sealedFixture struct {
	keys       map[config.Tier][]byte
	recipients map[config.Tier]string
	files      map[string]string
}

func newSealedFixture(t *testing.T, env string) *sealedFixture {
	t.Helper()
	f := &sealedFixture{keys: map[config.Tier][]byte{}, recipients: map[config.Tier]string{}}
	for _, tier := range config.KnownTiers {
		id, r, err := secrets.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		f.keys[tier], f.recipients[tier] = id, r
	}
	cfg := strataYAML(env, 100) + "secrets:\n  recipients:\n"
	for _, tier := range config.KnownTiers {
		cfg += "    " + string(tier) + ": " + f.recipients[tier] + "\n"
	}
	f.files = merge(map[string]string{"strata.yaml": cfg}, overlay(env, map[string]string{
		"ns-ledger":     namespace(env+"-ledger", "restricted"),
		"ns-fraud":      namespace(env+"-fraud", "confidential"),
		"ledger-secret": f.encrypt(t, secretYAML(env+"-ledger", "ledger-db", "ledger-password"), config.OnPrem),
		"fraud-secret":  f.encrypt(t, secretYAML(env+"-fraud", "scoring", "fraud-api-key"), config.PrivateCloud, config.OnPrem),
		"ledger-cm":     configMap(env+"-ledger", "ledger-config", "v1", ""),
	}))
	return f
}

func secretYAML(ns, name, value string) string {
	return "apiVersion: v1\nkind: Secret\nmetadata:\n  name: " + name + "\n  namespace: " + ns + "\ntype: Opaque\nstringData:\n  password: " + value + "\n"
}

func (f *sealedFixture) encrypt(t *testing.T, manifest string, tiers ...config.Tier) string {
	t.Helper()
	var rs []string
	for _, tier := range tiers {
		rs = append(rs, f.recipients[tier])
	}
	b, err := secrets.Encrypt([]byte(manifest), rs)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// keyDir writes the keys of tiers as a reconciler is given them.
func (f *sealedFixture) keyDir(t *testing.T, tiers ...config.Tier) string {
	t.Helper()
	dir := t.TempDir()
	for _, tier := range tiers {
		if err := os.WriteFile(filepath.Join(dir, string(tier)+secrets.KeyFileSuffix), f.keys[tier], 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func getSecret(t *testing.T, c *cluster.Cluster, ns, name string) (*corev1.Secret, bool) {
	t.Helper()
	s := &corev1.Secret{}
	err := c.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, s)
	if apierrors.IsNotFound(err) {
		return nil, false
	}
	if err != nil {
		t.Fatalf("get Secret %s/%s in %s: %v", ns, name, c.Name, err)
	}
	return s, true
}

func TestEncryptedSecretsArriveDecryptedInTheirTiersOnly(t *testing.T) {
	const env = "sealed"
	f := newSealedFixture(t, env)
	g := newGitRepo(t)
	g.commit("encrypted secrets", f.files)
	r, static := newTestReconciler(t, g, env, func(o *Options) {
		o.AgeKeys = secrets.KeyDir{Dir: f.keyDir(t, config.KnownTiers...)}
	})
	mustSucceed(t, r.ReconcileOnce(context.Background()))

	for _, tc := range []struct {
		cluster, ns, name, value string
	}{
		{env + "-onprem", env + "-ledger", "ledger-db", "ledger-password"},
		{env + "-private", env + "-fraud", "scoring", "fraud-api-key"},
	} {
		s, ok := getSecret(t, static[tc.cluster], tc.ns, tc.name)
		if !ok {
			t.Fatalf("Secret %s/%s missing in %s", tc.ns, tc.name, tc.cluster)
		}
		if got := string(s.Data["password"]); got != tc.value {
			t.Errorf("%s: Secret %s/%s password = %q, want the decrypted value", tc.cluster, tc.ns, tc.name, got)
		}
	}
	for cluster, keys := range map[string][][2]string{
		env + "-public":  {{env + "-ledger", "ledger-db"}, {env + "-fraud", "scoring"}},
		env + "-private": {{env + "-ledger", "ledger-db"}},
		env + "-onprem":  {{env + "-fraud", "scoring"}},
	} {
		for _, k := range keys {
			if _, ok := getSecret(t, static[cluster], k[0], k[1]); ok {
				t.Errorf("Secret %s/%s reached %s", k[0], k[1], cluster)
			}
		}
	}
	// Neither the inventory nor the audit holds a plaintext value.
	for _, cluster := range []string{env + "-onprem", env + "-private"} {
		cms := &corev1.ConfigMapList{}
		if err := static[cluster].Client.List(context.Background(), cms, client.InNamespace(labels.SystemNamespace)); err != nil {
			t.Fatal(err)
		}
		for _, cm := range cms.Items {
			for k, v := range cm.Data {
				if strings.Contains(v, "ledger-password") || strings.Contains(v, "fraud-api-key") {
					t.Errorf("%s: ConfigMap %s key %s holds a plaintext Secret value", cluster, cm.Name, k)
				}
			}
		}
	}
}

// The on-prem agent given the wrong tier's key (as the public-cloud agent
// holds) refuses the whole cluster, says which file, recipients and keys,
// and applies once the right key is mounted, without a restart. A tampered
// file is refused the same way.
func TestEncryptedSecretWithoutKeyOrTamperedAppliesNothing(t *testing.T) {
	const env = "sealedkey"
	f := newSealedFixture(t, env)
	g := newGitRepo(t)
	g.commit("encrypted secrets", f.files)
	keys := f.keyDir(t, config.PublicCloud)
	r, static := newTestReconciler(t, g, env, func(o *Options) {
		o.Self = env + "-onprem"
		o.AgeKeys = secrets.KeyDir{Dir: keys}
	})
	onprem := static[env+"-onprem"]
	res := r.ReconcileOnce(context.Background())
	if res.Err != nil {
		t.Fatalf("reconcile: %v", res.Err)
	}
	err := res.Cluster(env + "-onprem").Err
	var nk *secrets.NoKeyError
	if !errors.As(err, &nk) {
		t.Fatalf("on-prem err = %v, want a NoKeyError", err)
	}
	for _, want := range []string{"ledger-secret.yaml", f.recipients[config.OnPrem], f.recipients[config.PublicCloud], "nothing applied"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if _, ok := getCM(t, onprem, env+"-ledger", "ledger-config"); ok {
		t.Error("the ConfigMap next to the undecryptable Secret was applied: the cluster was applied half-way")
	}

	// The key Secret is rotated in: the next reconcile uses it.
	if err := os.WriteFile(filepath.Join(keys, "on-prem"+secrets.KeyFileSuffix), f.keys[config.OnPrem], 0o600); err != nil {
		t.Fatal(err)
	}
	mustSucceed(t, r.ReconcileOnce(context.Background()))
	if s, ok := getSecret(t, onprem, env+"-ledger", "ledger-db"); !ok || string(s.Data["password"]) != "ledger-password" {
		t.Fatalf("after the key arrived: Secret = %v, %v", s, ok)
	}

	// A tampered ciphertext: nothing of the revision is applied on-prem.
	p := "overlays/" + env + "/ledger-secret.yaml"
	tampered := strings.Replace(f.files[p], "type: Opaque", "type: Opaque2", 1)
	g.commit("tamper", map[string]string{p: tampered, "overlays/" + env + "/ledger-cm.yaml": configMap(env+"-ledger", "ledger-config", "v2", "")})
	res = r.ReconcileOnce(context.Background())
	var te *secrets.TamperedError
	if err := res.Cluster(env + "-onprem").Err; !errors.As(err, &te) || !strings.Contains(err.Error(), "ledger-secret.yaml") {
		t.Fatalf("on-prem err = %v, want the tampered file refused by name", err)
	}
	if cm, _ := getCM(t, onprem, env+"-ledger", "ledger-config"); cm == nil || cm.Data["value"] != "v1" {
		t.Errorf("ConfigMap = %v, want v1 kept: nothing of a refused revision is applied", cm)
	}
}

// The public-cloud agent holds only the public-cloud key: a restricted
// Secret misrouted to it (placement never does this) stays unreadable, and
// the error says which file, recipients and keys.
func TestPublicAgentCannotOpenAMisroutedLedgerSecret(t *testing.T) {
	f := newSealedFixture(t, "misrouted")
	p := "overlays/misrouted/ledger-secret.yaml"
	doc := []byte(f.files[p])
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal(doc, &u.Object); err != nil {
		t.Fatal(err)
	}
	do := &desiredObject{ref: inventory.RefOf(u), sensitivity: "restricted", sealed: &sealed{file: p, doc: doc}}
	r := New(nil, nil, Options{AgeKeys: secrets.KeyDir{Dir: f.keyDir(t, config.PublicCloud)}})
	// The audit of the refusal goes to a fake cluster: nothing is applied.
	cl := &cluster.Cluster{Name: "public", Client: fake.NewClientBuilder().Build()}
	t.Cleanup(func() { _ = r.Close(context.Background()) })
	_, err := r.openSecrets(cl, &ClusterResult{Name: "public", Tier: string(config.PublicCloud)}, []*desiredObject{do}, readyObjects([]*unstructured.Unstructured{u}))
	var nk *secrets.NoKeyError
	if !errors.As(err, &nk) {
		t.Fatalf("err = %v, want a NoKeyError", err)
	}
	msg := err.Error()
	for _, want := range []string{p, f.recipients[config.OnPrem], "public-cloud (" + f.recipients[config.PublicCloud] + ")", "nothing applied"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "ledger-password") || strings.Contains(msg, "\n") {
		t.Errorf("want one line without values:\n%s", msg)
	}
}
