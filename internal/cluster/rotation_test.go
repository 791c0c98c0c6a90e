package cluster

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-gitops/strata/internal/labels"
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

	replaceFile(t, path, kubeconfigOf(t, cfgs["a"], ""))
	first := connectTo(t, k, "rot", cfgs["a"].Host)
	if again := connectTo(t, k, "rot", cfgs["a"].Host); again != first {
		t.Error("an unchanged kubeconfig gave a new connection")
	}

	replaceFile(t, path, kubeconfigOf(t, cfgs["b"], ""))
	second := connectTo(t, k, "rot", cfgs["b"].Host)
	if second == first {
		t.Fatal("a changed kubeconfig kept the old connection")
	}

	// A kubeconfig naming certificate files: rotating the files is a change.
	certs := t.TempDir()
	replaceFile(t, path, kubeconfigOf(t, cfgs["b"], certs))
	third := connectTo(t, k, "rot", cfgs["b"].Host)
	if again := connectTo(t, k, "rot", cfgs["b"].Host); again != third {
		t.Error("an unchanged kubeconfig with certificate files gave a new connection")
	}
	kubeconfigOf(t, cfgs["a"], certs) // the same file names, a's certificates
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
	home, err := client.New(cfgs["a"], client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: labels.SystemNamespace}}
	if err := home.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: labels.SystemNamespace, Name: labels.ClusterSecretName("rot-secret")},
		Data: map[string][]byte{"kubeconfig": kubeconfigOf(t, cfgs["b"], "")}}
	if err := home.Create(ctx, sec); err != nil {
		t.Fatal(err)
	}
	s := &SecretConnector{Home: home}
	first := connectTo(t, s, "rot-secret", cfgs["b"].Host)
	if again := connectTo(t, s, "rot-secret", cfgs["b"].Host); again != first {
		t.Error("an unchanged Secret gave a new connection")
	}

	sec.Data["kubeconfig"] = kubeconfigOf(t, cfgs["a"], "")
	if err := home.Update(ctx, sec); err != nil {
		t.Fatal(err)
	}
	if second := connectTo(t, s, "rot-secret", cfgs["a"].Host); second == first {
		t.Fatal("a changed Secret kept the old connection")
	}

	if err := home.Delete(ctx, sec); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Connect("rot-secret"); err == nil || !strings.Contains(err.Error(), "no credentials") {
		t.Errorf("Connect after the Secret was deleted = %v, want \"no credentials\"", err)
	}
}
