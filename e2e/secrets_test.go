package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/strata-gitops/strata/internal/config"
	"github.com/strata-gitops/strata/internal/localcluster"
	"github.com/strata-gitops/strata/internal/secrets"
)

// buildStrata starts building the strata binary, so that every command
// runs as an operator runs it (flags, exit codes, output); the returned
// function waits for it. The build (mostly the link) overlaps the clusters'
// start.
func buildStrata(t *testing.T) func() string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "strata")
	start := time.Now()
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/strata")
	cmd.Dir = ".."
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("go build ./cmd/strata: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	waited := false
	t.Cleanup(func() {
		if !waited {
			_ = cmd.Process.Kill()
			<-done
		}
	})
	return func() string {
		t.Helper()
		waited = true
		if err := <-done; err != nil {
			t.Fatalf("go build ./cmd/strata: %v\n%s", err, out.String())
		}
		t.Logf("strata built in %s", time.Since(start).Round(time.Millisecond))
		return bin
	}
}

// run runs the strata binary and returns its combined output and whether
// it exited 0.
func run(t *testing.T, bin string, args ...string) (string, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("strata %s timed out:\n%s", strings.Join(args, " "), out)
	}
	return string(out), err == nil
}

// sealedDemo adds the demo's two encrypted Secrets (as hack/demo.sh does)
// to the demo repository at dir: per-tier keys in keys/, their recipients
// in strata.yaml, the Secrets encrypted by `strata secret encrypt` for the
// tiers their Namespace's sensitivity allows. It returns the key directory
// and the recipients.
func sealedDemo(t *testing.T, bin, dir string) (string, map[config.Tier]string) {
	t.Helper()
	keys := t.TempDir()
	out, ok := run(t, bin, "secret", "keygen", "--dir", keys)
	if !ok {
		t.Fatalf("strata secret keygen: %s", out)
	}
	f, err := os.OpenFile(filepath.Join(dir, "strata.yaml"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("\n" + out); err != nil {
		t.Fatal(err)
	}
	f.Close()
	recipients := map[config.Tier]string{}
	for _, tier := range config.KnownTiers {
		ids, err := secrets.KeyDir{Dir: keys}.ForTier(string(tier))
		if err != nil || ids.Len() != 1 {
			t.Fatalf("key of %s: %v", tier, err)
		}
		recipients[tier] = ids.Recipients[0]
	}
	write(t, filepath.Join(dir, "overlays/base/ledger/db-credentials.yaml"), ledgerSecret)
	write(t, filepath.Join(dir, "overlays/base/fraud-scoring/model-api-key.yaml"), fraudSecret)
	editFile(t, filepath.Join(dir, "overlays/base/ledger/kustomization.yaml"), "  - ledger-db.yaml\n", "  - ledger-db.yaml\n  - db-credentials.yaml\n")
	// A secretGenerator's envs: reads an encrypted dotenv file too.
	write(t, filepath.Join(dir, "overlays/base/ledger/replication.env"), "REPLICATION_USER=replicator\nREPLICATION_PASSWORD=demo-replication-password\n")
	f, err = os.OpenFile(filepath.Join(dir, "overlays/base/ledger/kustomization.yaml"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(ledgerGenerator); err != nil {
		t.Fatal(err)
	}
	f.Close()
	editFile(t, filepath.Join(dir, "overlays/base/fraud-scoring/kustomization.yaml"), "  - deployment.yaml\n", "  - deployment.yaml\n  - model-api-key.yaml\n")
	out, ok = run(t, bin, "secret", "encrypt", "--repo", dir,
		filepath.Join(dir, "overlays/base/ledger/db-credentials.yaml"), filepath.Join(dir, "overlays/base/fraud-scoring/model-api-key.yaml"),
		filepath.Join(dir, "overlays/base/ledger/replication.env"))
	if !ok || !strings.Contains(out, "db-credentials.yaml: encrypted for [on-prem]") || !strings.Contains(out, "model-api-key.yaml: encrypted for [private-cloud on-prem]") ||
		!strings.Contains(out, "replication.env: encrypted for [on-prem]") {
		t.Fatalf("strata secret encrypt:\n%s", out)
	}
	for _, p := range []string{"overlays/base/ledger/db-credentials.yaml", "overlays/base/fraud-scoring/model-api-key.yaml", "overlays/base/ledger/replication.env"} {
		b, err := os.ReadFile(filepath.Join(dir, p))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte("demo-ledger-password")) || bytes.Contains(b, []byte("demo-fraud-model-key")) || bytes.Contains(b, []byte("demo-replication-password")) {
			t.Fatalf("%s holds a plaintext value after strata secret encrypt", p)
		}
	}
	return keys, recipients
}

const ledgerSecret = `apiVersion: v1
kind: Secret
metadata:
  name: ledger-db-credentials
  namespace: ledger
type: Opaque
stringData:
  username: ledger
  password: demo-ledger-password
`

// ledgerGenerator makes the ledger's replication Secret from an encrypted
// dotenv file (its Namespace makes it restricted).
const ledgerGenerator = `secretGenerator:
  - name: ledger-replication
    namespace: ledger
    envs: [replication.env]
    options: {disableNameSuffixHash: true}
`

const fraudSecret = `apiVersion: v1
kind: Secret
metadata:
  name: scoring-model-api-key
  namespace: fraud
  annotations: {strata.dev/failover: "true"}
type: Opaque
stringData:
  api-key: demo-fraud-model-key
`

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// keysOf copies the keys of tiers from all into a new directory: what a
// reconciler serving those tiers is given.
func keysOf(t *testing.T, all string, tiers ...config.Tier) string {
	t.Helper()
	dir := t.TempDir()
	for _, tier := range tiers {
		b, err := os.ReadFile(filepath.Join(all, string(tier)+secrets.KeyFileSuffix))
		if err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(dir, string(tier)+secrets.KeyFileSuffix), string(b))
	}
	return dir
}

// secretValue returns a Secret's value in a cluster ("" and false if the
// Secret is not there).
func secretValue(t *testing.T, c kubernetes.Interface, ns, name, key string) (string, bool) {
	t.Helper()
	s, err := c.CoreV1().Secrets(ns).Get(context.Background(), name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", false
	}
	if err != nil {
		t.Fatalf("get Secret %s/%s: %v", ns, name, err)
	}
	return string(s.Data[key]), true
}

// managedSecrets lists the Secrets strata applied to a cluster.
func managedSecrets(t *testing.T, c kubernetes.Interface) []corev1.Secret {
	t.Helper()
	l, err := c.CoreV1().Secrets("").List(context.Background(), metav1.ListOptions{LabelSelector: "strata.dev/managed-by=strata"})
	if err != nil {
		t.Fatal(err)
	}
	return l.Items
}

func TestEncryptedSecretsOnThreeClusters(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test on three kwok clusters; skipped with -short")
	}
	built := buildStrata(t)
	lc := upClusters(t)
	bin := built()
	dir, gitRepo := demoRepo(t)
	allKeys, recipients := sealedDemo(t, bin, dir)
	approveDemo(t, gitRepo, commitAll(t, gitRepo, "ledger and fraud-scoring Secrets, encrypted per tier"))
	head, err := gitRepo.Head()
	if err != nil {
		t.Fatal(err)
	}
	branch := head.Name().Short()
	trusted := "--trusted-keys=" + strings.Join(demoPin(t).Fingerprints(), ",")
	clients := map[string]kubernetes.Interface{}
	for _, name := range localcluster.DefaultClusters {
		c, err := lc.Client(name)
		if err != nil {
			t.Fatal(err)
		}
		clients[name] = c
	}
	reconcile := func(args ...string) (string, bool) {
		t.Helper()
		start := time.Now()
		out, ok := run(t, bin, append([]string{"reconcile", "--once", "--repo", dir, "--branch", branch, "--env", env,
			"--health-timeout", "3m", "--metrics-addr", "0", trusted}, args...)...)
		t.Logf("strata reconcile %s: %s", strings.Join(args, " "), time.Since(start).Round(time.Millisecond))
		return out, ok
	}

	t.Run("push mode with every tier's key: each Secret arrives decrypted in its tiers' clusters only", func(t *testing.T) {
		out, ok := reconcile("--kubeconfig-dir", lc.KubeconfigDir(), "--age-key-dir", allKeys)
		if !ok {
			t.Fatalf("strata reconcile failed:\n%s", out)
		}
		if v, ok := secretValue(t, clients["onprem"], "ledger", "ledger-db-credentials", "password"); !ok || v != "demo-ledger-password" {
			t.Errorf("onprem: ledger Secret password %q (present %v), want it decrypted", v, ok)
		}
		if v, ok := secretValue(t, clients["onprem"], "ledger", "ledger-replication", "REPLICATION_PASSWORD"); !ok || v != "demo-replication-password" {
			t.Errorf("onprem: generated ledger Secret REPLICATION_PASSWORD %q (present %v), want it decrypted", v, ok)
		}
		if v, ok := secretValue(t, clients["private"], "fraud", "scoring-model-api-key", "api-key"); !ok || v != "demo-fraud-model-key" {
			t.Errorf("private: fraud Secret api-key %q (present %v), want it decrypted", v, ok)
		}
		want := map[string][]string{"public": nil, "private": {"fraud/scoring-model-api-key"}, "onprem": {"ledger/ledger-db-credentials", "ledger/ledger-replication"}}
		for name, c := range clients {
			var got []string
			for _, s := range managedSecrets(t, c) {
				got = append(got, s.Namespace+"/"+s.Name)
				for k, v := range s.Data {
					if bytes.Contains(v, []byte("ENC[AES256_GCM")) {
						t.Errorf("%s: Secret %s/%s key %s holds SOPS ciphertext", name, s.Namespace, s.Name, k)
					}
				}
				if _, ok := s.Annotations["sops"]; ok || s.Data["sops"] != nil || s.Data["sops_mac"] != nil {
					t.Errorf("%s: Secret %s/%s carries SOPS metadata", name, s.Namespace, s.Name)
				}
			}
			if strings.Join(got, ",") != strings.Join(want[name], ",") {
				t.Errorf("%s: strata's Secrets %v, want %v", name, got, want[name])
			}
		}
		// The committed fraud Secret is readable by private-cloud and on-prem only.
		b, err := os.ReadFile(filepath.Join(dir, "overlays/base/fraud-scoring/model-api-key.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := yaml.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		if got, want := strings.Join(secrets.Recipients(m), ","), strings.Join(slices.Sorted(slices.Values([]string{recipients[config.PrivateCloud], recipients[config.OnPrem]})), ","); got != want {
			t.Errorf("fraud Secret encrypted to %s, want private-cloud and on-prem %s", got, want)
		}
	})

	t.Run("the public-cloud agent needs only the public-cloud key", func(t *testing.T) {
		out, ok := reconcile("--self", "public", "--kubeconfig", lc.KubeconfigPath("public"), "--age-key-dir", keysOf(t, allKeys, config.PublicCloud))
		if !ok {
			t.Fatalf("agent public failed:\n%s", out)
		}
	})

	t.Run("render and plan refuse a restricted Secret encrypted to the public-cloud recipient", func(t *testing.T) {
		wrongly(t, dir, branch, recipients)
		out, ok := run(t, bin, "plan", "--repo", dir, "--base", branch, "--head", "wrong-recipients", "--env", env)
		checkRefusal(t, "strata plan", out, ok)
		// render reads the working tree: the wrong file is checked out.
		out, ok = run(t, bin, "render", "--repo", dir, "--env", env)
		checkRefusal(t, "strata render", out, ok)
		gitCLI(t, dir, "checkout", "-q", branch)
	})

	t.Run("private-cloud down: the fraud Secret fails over to on-prem, decrypted with the on-prem key", func(t *testing.T) {
		if err := lc.Stop(context.Background(), "private"); err != nil {
			t.Fatal(err)
		}
		out, ok := reconcile("--kubeconfig-dir", lc.KubeconfigDir(), "--age-key-dir", allKeys)
		if ok || !strings.Contains(out, "private") {
			t.Errorf("want the run to fail for the stopped private cluster only:\n%s", out)
		}
		if v, ok := secretValue(t, clients["onprem"], "fraud", "scoring-model-api-key", "api-key"); !ok || v != "demo-fraud-model-key" {
			t.Errorf("onprem: fraud Secret api-key %q (present %v), want it decrypted after failover:\n%s", v, ok, out)
		}
		if _, ok := secretValue(t, clients["public"], "fraud", "scoring-model-api-key", "api-key"); ok {
			t.Error("the confidential fraud Secret failed over to the public cluster")
		}
	})

	t.Run("a ledger Secret misrouted to the public-cloud agent is not decrypted and nothing is applied", func(t *testing.T) {
		before := managedSecrets(t, clients["public"])
		deployments := func() []string {
			l, err := clients["public"].AppsV1().Deployments("").List(context.Background(), metav1.ListOptions{LabelSelector: "strata.dev/managed-by=strata"})
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, d := range l.Items {
				out = append(out, d.Namespace+"/"+d.Name)
			}
			return out
		}
		publicBefore := deployments()
		// strata.yaml (approved by both reviewers) registers the public
		// cluster as on-prem by mistake: placement now routes the ledger,
		// its Secret included, to it. The public agent holds the
		// public-cloud key only. The public share moving away would trip
		// the mass-prune rail first; lift it to reach the last line.
		editFile(t, filepath.Join(dir, "strata.yaml"), "{name: public,  tier: public-cloud,", "{name: public,  tier: on-prem,")
		approveDemo(t, gitRepo, commitAll(t, gitRepo, "prod: public is on-prem (a mistake)"))
		out, ok := reconcile("--self", "public", "--kubeconfig", lc.KubeconfigPath("public"), "--allow-mass-prune",
			"--age-key-dir", keysOf(t, allKeys, config.PublicCloud))
		if ok {
			t.Fatalf("agent public decrypted or skipped a misrouted ledger Secret:\n%s", out)
		}
		// The first of the ledger's two encrypted Secrets (a manifest, a
		// generator's dotenv file) stops the cluster.
		if !strings.Contains(out, "cannot decrypt Secret ledger/ledger-db-credentials (overlays/base/ledger/db-credentials.yaml)") &&
			!strings.Contains(out, "cannot decrypt Secret ledger/ledger-replication (overlays/base/ledger/replication.env)") {
			t.Errorf("agent output names no ledger Secret and its file:\n%s", out)
		}
		for _, want := range []string{
			"encrypted to [" + recipients[config.OnPrem] + "]",
			"this reconciler holds keys for [public-cloud (" + recipients[config.PublicCloud] + ")]",
			"nothing applied",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("agent output lacks %q:\n%s", want, out)
			}
		}
		if strings.Contains(out, "demo-ledger-password") || strings.Contains(out, "demo-replication-password") {
			t.Errorf("agent output holds the plaintext:\n%s", out)
		}
		t.Logf("the agent says:\n%s", out)
		for _, name := range []string{"ledger-db-credentials", "ledger-replication"} {
			if _, ok := secretValue(t, clients["public"], "ledger", name, "password"); ok {
				t.Errorf("the ledger Secret %s reached the public cluster", name)
			}
		}
		if len(managedSecrets(t, clients["public"])) != len(before) {
			t.Error("the public cluster's Secrets changed")
		}
		if got := deployments(); strings.Join(got, ",") != strings.Join(publicBefore, ",") {
			t.Errorf("public Deployments %v, want %v kept: nothing applied or pruned half-way", got, publicBefore)
		}
	})
}

// wrongly commits, on branch wrong-recipients (checked out), the ledger
// Secret encrypted to the on-prem and public-cloud recipients.
func wrongly(t *testing.T, dir, base string, recipients map[config.Tier]string) {
	t.Helper()
	gitCLI(t, dir, "checkout", "-q", "-b", "wrong-recipients", base)
	enc, err := secrets.Encrypt([]byte(ledgerSecret), []string{recipients[config.OnPrem], recipients[config.PublicCloud]})
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "overlays/base/ledger/db-credentials.yaml"), string(enc))
	gitCLI(t, dir, "commit", "-q", "-am", "ledger Secret readable by the public cloud")
}

func checkRefusal(t *testing.T, what, out string, ok bool) {
	t.Helper()
	if ok {
		t.Errorf("%s passed a restricted Secret readable by public-cloud:\n%s", what, out)
	}
	for _, want := range []string{"secret-recipients", "ledger-db-credentials", "overlays/base/ledger/db-credentials.yaml",
		"readable by public-cloud", "restricted data may not reach", "strata secret encrypt"} {
		if !strings.Contains(out, want) {
			t.Errorf("%s output lacks %q:\n%s", what, want, out)
		}
	}
}

func gitCLI(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-c", "user.name=e2e", "-c", "user.email=e2e@example.com"}, args...)...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}
