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
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-gitops/strata/internal/apiservertest"
	"github.com/strata-gitops/strata/internal/labels"
)

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

	apiservertest.ReplaceFile(t, path, apiservertest.Kubeconfig(t, cfgs["a"], ""))
	first := connectTo(t, k, "rot", cfgs["a"].Host)
	if again := connectTo(t, k, "rot", cfgs["a"].Host); again != first {
		t.Error("an unchanged kubeconfig gave a new connection")
	}

	apiservertest.ReplaceFile(t, path, apiservertest.Kubeconfig(t, cfgs["b"], ""))
	second := connectTo(t, k, "rot", cfgs["b"].Host)
	if second == first {
		t.Fatal("a changed kubeconfig kept the old connection")
	}

	// A kubeconfig naming certificate files: rotating the files is a change.
	certs := t.TempDir()
	apiservertest.ReplaceFile(t, path, apiservertest.Kubeconfig(t, cfgs["b"], certs))
	third := connectTo(t, k, "rot", cfgs["b"].Host)
	if again := connectTo(t, k, "rot", cfgs["b"].Host); again != third {
		t.Error("an unchanged kubeconfig with certificate files gave a new connection")
	}
	apiservertest.Kubeconfig(t, cfgs["a"], certs) // the same file names, a's certificates
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
		Data: map[string][]byte{"kubeconfig": apiservertest.Kubeconfig(t, cfgs["b"], "")}}
	if err := home.Create(ctx, sec); err != nil {
		t.Fatal(err)
	}
	s := &SecretConnector{Home: home}
	first := connectTo(t, s, "rot-secret", cfgs["b"].Host)
	if again := connectTo(t, s, "rot-secret", cfgs["b"].Host); again != first {
		t.Error("an unchanged Secret gave a new connection")
	}

	sec.Data["kubeconfig"] = apiservertest.Kubeconfig(t, cfgs["a"], "")
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
