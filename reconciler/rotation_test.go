package reconciler

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-gitops/strata/internal/labels"
	"github.com/strata-gitops/strata/internal/source"
)

// kubeconfigOf is a kubeconfig for cfg (an envtest apiserver's admin). With
// dir set, its certificates and key are files in dir that it names, as
// kubeconfigs written by kubeadm or cloud CLIs often do.
func kubeconfigOf(t *testing.T, cfg *rest.Config, dir string) []byte {
	t.Helper()
	cluster := &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	user := &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData}
	if dir != "" {
		files := map[string][]byte{"ca.crt": cfg.CAData, "client.crt": cfg.CertData, "client.key": cfg.KeyData}
		for name, data := range files {
			replaceFile(t, filepath.Join(dir, name), data)
		}
		cluster = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthority: filepath.Join(dir, "ca.crt")}
		user = &clientcmdapi.AuthInfo{ClientCertificate: filepath.Join(dir, "client.crt"), ClientKey: filepath.Join(dir, "client.key")}
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["c"], kc.AuthInfos["u"] = cluster, user
	kc.Contexts["c"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u"}
	kc.CurrentContext = "c"
	data, err := clientcmd.Write(*kc)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// replaceFile writes path the way a mounted Secret is updated: a new file
// renamed over the old one.
func replaceFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path+".new", data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".new", path); err != nil {
		t.Fatal(err)
	}
}

// connectTo connects name and checks that it reaches host.
func connectTo(t *testing.T, c Connector, name, host string) *Cluster {
	t.Helper()
	cl, err := c.Connect(name)
	if err != nil {
		t.Fatalf("Connect(%s): %v", name, err)
	}
	if cl.Config.Host != host {
		t.Fatalf("Connect(%s) reaches %s, want %s", name, cl.Config.Host, host)
	}
	if err := cl.Reachable(context.Background()); err != nil {
		t.Fatalf("Connect(%s): %s does not answer: %v", name, host, err)
	}
	return cl
}

func TestKubeconfigDirReconnectsWhenTheFileChanges(t *testing.T) {
	cfgs := startClusters(t)
	dir := t.TempDir()
	k := &KubeconfigDir{Dir: dir}
	t.Cleanup(k.Close)
	path := filepath.Join(dir, "rot.kubeconfig")

	replaceFile(t, path, kubeconfigOf(t, cfgs["public"], ""))
	first := connectTo(t, k, "rot", cfgs["public"].Host)
	if again := connectTo(t, k, "rot", cfgs["public"].Host); again != first {
		t.Error("an unchanged kubeconfig gave a new connection")
	}

	replaceFile(t, path, kubeconfigOf(t, cfgs["private"], ""))
	second := connectTo(t, k, "rot", cfgs["private"].Host)
	if second == first {
		t.Fatal("a changed kubeconfig kept the old connection")
	}

	// A kubeconfig naming certificate files: rotating the files is a change.
	certs := t.TempDir()
	replaceFile(t, path, kubeconfigOf(t, cfgs["onprem"], certs))
	third := connectTo(t, k, "rot", cfgs["onprem"].Host)
	if again := connectTo(t, k, "rot", cfgs["onprem"].Host); again != third {
		t.Error("an unchanged kubeconfig with certificate files gave a new connection")
	}
	kubeconfigOf(t, cfgs["public"], certs) // the same file names, public's certificates
	if rotated, err := k.Connect("rot"); err != nil || rotated == third {
		t.Errorf("Connect after the certificate files were rotated = %p, %v; want a new connection", rotated, err)
	}

	// Removed credentials are revoked ones: no connection is kept.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Connect("rot"); err == nil || !strings.Contains(err.Error(), "is missing") {
		t.Errorf("Connect after the kubeconfig was removed = %v, want \"is missing\"", err)
	}
}

func TestSecretConnectorReconnectsWhenTheSecretChanges(t *testing.T) {
	cfgs := startClusters(t)
	ctx := context.Background()
	home, err := client.New(cfgs["public"], client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: labels.SystemNamespace}}
	if err := home.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: labels.SystemNamespace, Name: labels.ClusterSecretName("rot-secret")},
		Data: map[string][]byte{"kubeconfig": kubeconfigOf(t, cfgs["private"], "")}}
	if err := home.Create(ctx, sec); err != nil {
		t.Fatal(err)
	}
	s := &SecretConnector{Home: home}
	first := connectTo(t, s, "rot-secret", cfgs["private"].Host)
	if again := connectTo(t, s, "rot-secret", cfgs["private"].Host); again != first {
		t.Error("an unchanged Secret gave a new connection")
	}

	sec.Data["kubeconfig"] = kubeconfigOf(t, cfgs["onprem"], "")
	if err := home.Update(ctx, sec); err != nil {
		t.Fatal(err)
	}
	if second := connectTo(t, s, "rot-secret", cfgs["onprem"].Host); second == first {
		t.Fatal("a changed Secret kept the old connection")
	}

	if err := home.Delete(ctx, sec); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Connect("rot-secret"); err == nil || !strings.Contains(err.Error(), "no credentials") {
		t.Errorf("Connect after the Secret was deleted = %v, want \"no credentials\"", err)
	}
}

// A reconcile after a kubeconfig was rewritten applies with the new one:
// env-onprem's and env-private's files are swapped between two apiservers,
// and the next reconcile puts the restricted ConfigMap into the apiserver
// env-onprem's file now names, with no restart.
func TestReconcileUsesARotatedKubeconfig(t *testing.T) {
	env := "rotkc"
	cfgs := startClusters(t)
	g := newGitRepo(t)
	vault := func(v string) map[string]string {
		return merge(map[string]string{"strata.yaml": strataYAML(env, 100)}, overlay(env, map[string]string{
			"ns-vault":  namespace("rk-vault", "restricted"),
			"cm-ledger": configMap("rk-vault", "ledger", v, ""),
		}))
	}
	g.commit("first", vault("v1"))
	dir := t.TempDir()
	point := func(cluster, apiserver string) {
		replaceFile(t, filepath.Join(dir, env+"-"+cluster+".kubeconfig"), kubeconfigOf(t, cfgs[apiserver], ""))
	}
	for _, c := range []string{"public", "private", "onprem"} {
		point(c, c)
	}
	connect := &KubeconfigDir{Dir: dir}
	t.Cleanup(connect.Close)
	repo, err := source.Open(context.Background(), g.dir, source.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	opts := DefaultOptions()
	opts.Environment, opts.Revision = env, g.branch()
	opts.PollInterval = 200 * time.Millisecond
	opts.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	r := New(repo, connect, opts)
	ctx := context.Background()

	mustSucceed(t, r.ReconcileOnce(ctx))
	direct := func(apiserver string) *Cluster {
		cl, err := NewCluster(apiserver, cfgs[apiserver])
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		return cl
	}
	onprem, private := direct("onprem"), direct("private")
	if cm, ok := getCM(t, onprem, "rk-vault", "ledger"); !ok || cm.Data["value"] != "v1" {
		t.Fatalf("the onprem apiserver has ledger %v (found %t), want v1", cm, ok)
	}

	point("onprem", "private")
	point("private", "onprem")
	g.commit("second", vault("v2"))
	mustSucceed(t, r.ReconcileOnce(ctx))
	if cm, ok := getCM(t, private, "rk-vault", "ledger"); !ok || cm.Data["value"] != "v2" {
		t.Errorf("after the kubeconfigs were swapped, the private apiserver (now env-onprem) has ledger %v (found %t), want v2", cm, ok)
	}
	if cm, ok := getCM(t, onprem, "rk-vault", "ledger"); ok {
		t.Errorf("the onprem apiserver (now env-private) kept ledger %v: it was not applied with the new kubeconfig", cm.Data)
	}
}
