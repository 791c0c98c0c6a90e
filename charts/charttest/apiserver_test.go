package charttest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/strata-gitops/strata/internal/labels"
	"github.com/strata-gitops/strata/internal/localcluster"
	"github.com/strata-gitops/strata/reconciler"
	"github.com/strata-gitops/strata/webhook"
)

// kube runs kubectl against one cluster.
type kube struct {
	t          *testing.T
	bin        string
	kubeconfig string
	cacheDir   string
}

func (k *kube) run(ctx context.Context, stdin string, args ...string) (string, error) {
	k.t.Helper()
	args = append([]string{"--kubeconfig", k.kubeconfig, "--cache-dir", k.cacheDir}, args...)
	cmd := exec.CommandContext(ctx, k.bin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	if err != nil {
		return stdout.String(), fmt.Errorf("kubectl %s: %w\n%s%s", strings.Join(args[4:], " "), err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

func (k *kube) must(ctx context.Context, stdin string, args ...string) string {
	k.t.Helper()
	out, err := k.run(ctx, stdin, args...)
	if err != nil {
		k.t.Fatal(err)
	}
	return out
}

// can reports whether ServiceAccount sa of strata-system may do verb on
// resource (kubectl auth can-i syntax: "secrets/strata-cluster-public").
func (k *kube) can(ctx context.Context, sa, verb, resource, namespace string) bool {
	k.t.Helper()
	args := []string{"auth", "can-i", verb, resource, "--as", "system:serviceaccount:" + labels.SystemNamespace + ":" + sa}
	if namespace == "" {
		args = append(args, "--all-namespaces")
	} else {
		args = append(args, "--namespace", namespace)
	}
	out, err := k.run(ctx, "", args...)
	answer := strings.TrimSpace(out)
	if answer != "yes" && answer != "no" {
		k.t.Fatalf("kubectl auth can-i: %q, %v", answer, err)
	}
	return answer == "yes"
}

// manifest joins objects into one YAML stream.
func manifest(t testing.TB, objs []*unstructured.Unstructured) string {
	t.Helper()
	var b strings.Builder
	for _, o := range objs {
		y, err := yaml.Marshal(o.Object)
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString("---\n")
		b.Write(y)
	}
	return b.String()
}

// TestRenderedObjectsAcceptedByAPIServer brings up one kwok cluster, installs
// minimal CRDs for the optional kinds (ServiceMonitor, PrometheusRule,
// Certificate, Issuer), and has its apiserver validate every object of every
// rendering with a server-side dry run. It then applies the rendered RBAC for
// real and asks the apiserver what each ServiceAccount may do.
func TestRenderedObjectsAcceptedByAPIServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real control plane; skipped with -short")
	}
	k := &kube{t: t, bin: tool(t, "kubectl"), cacheDir: t.TempDir()}
	m := localcluster.New(localcluster.Options{Home: t.TempDir(), Volumes: -1})
	if missing := m.MissingBinaries(); len(missing) > 0 {
		t.Fatalf("%s missing from %s: build them with `hack/install-tools.sh all` (make tools)", strings.Join(missing, ", "), m.Bin())
	}
	// However the test binary ends (even a panic in a goroutine), the clusters end with it.
	if err := m.KillOnExit(); err != nil {
		t.Fatal(err)
	}
	// Render first: a broken chart fails before a cluster is started.
	type rendered struct {
		rendering
		yaml string
		objs []*unstructured.Unstructured
	}
	var rs []rendered
	for _, r := range renderings(t) {
		out, objs := mustRender(t, r)
		rs = append(rs, rendered{r, out, objs})
	}

	suffix := make([]byte, 3)
	_, _ = rand.Read(suffix)
	name := "charttest-" + hex.EncodeToString(suffix)
	dir := m.ClusterDir(name)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := m.Down(ctx, name); err != nil {
			t.Errorf("cleanup: deleting cluster %s: %v", name, err)
		}
		if out, err := exec.Command("pgrep", "-f", dir).Output(); err == nil {
			t.Errorf("cleanup: processes of %s left:\n%s", dir, out)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	start := time.Now()
	if err := m.Up(ctx, name); err != nil {
		t.Fatalf("starting cluster %s: %v", name, err)
	}
	t.Logf("cluster %s up in %s", name, time.Since(start).Round(100*time.Millisecond))
	k.kubeconfig = m.KubeconfigPath(name)

	k.must(ctx, "", "apply", "--server-side", "-f", "testdata/crds")
	k.must(ctx, "", "wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")
	k.must(ctx, "", "create", "namespace", labels.SystemNamespace)

	for _, r := range rs {
		t.Run("dry-run/"+r.name, func(t *testing.T) {
			out, err := k.run(ctx, r.yaml, "apply", "--dry-run=server", "-f", "-")
			if err != nil {
				t.Fatalf("the apiserver refused rendering %s: %v", r.name, err)
			}
			if n := strings.Count(out, "(server dry run)"); n != len(r.objs) {
				t.Errorf("%d of %d objects accepted:\n%s", n, len(r.objs), out)
			}
		})
	}

	// RBAC, for real: what may each ServiceAccount do?
	rbacOf := func(objs []*unstructured.Unstructured) string {
		var keep []*unstructured.Unstructured
		for _, o := range objs {
			if slices.Contains([]string{"ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"}, o.GetKind()) {
				keep = append(keep, o)
			}
		}
		return manifest(t, keep)
	}
	if k.can(ctx, "nobody", "get", "secrets", labels.SystemNamespace) {
		t.Fatal("an unknown ServiceAccount may read Secrets: the cluster does not authorize with RBAC, so the RBAC checks would prove nothing")
	}
	type check struct {
		sa, verb, resource, namespace string
		want                          bool
	}
	runChecks := func(t *testing.T, checks []check) {
		for _, c := range checks {
			if got := k.can(ctx, c.sa, c.verb, c.resource, c.namespace); got != c.want {
				t.Errorf("%s may %s %s in %q: %v, want %v", c.sa, c.verb, c.resource, c.namespace, got, c.want)
			}
		}
	}
	rec, wh, ns := releaseName+"-reconciler", releaseName+"-webhook", labels.SystemNamespace
	t.Run("rbac/push", func(t *testing.T) {
		k.must(ctx, rbacOf(rs[0].objs), "apply", "-f", "-")
		runChecks(t, []check{
			{rec, "get", "secrets/" + labels.ClusterSecretName("public"), ns, true},
			{rec, "get", "secrets/" + labels.ClusterSecretName("onprem"), ns, true},
			{rec, "get", "secrets/" + releaseName + "-webhook-tls", ns, false},
			{rec, "list", "secrets", ns, false},
			{rec, "get", "secrets/" + labels.ClusterSecretName("public"), "default", false},
			{rec, "create", "leases.coordination.k8s.io", ns, true},
			{rec, "update", "leases.coordination.k8s.io/" + reconciler.LeaseID("prod"), ns, true},
			{rec, "update", "leases.coordination.k8s.io/someone-elses", ns, false},
			{rec, "create", "events", ns, true},
			{rec, "create", "deployments.apps", "default", false},
			{rec, "create", "configmaps", ns, false},
			{wh, "list", "namespaces", "", true},
			{wh, "watch", "namespaces", "", true},
			{wh, "get", "namespaces", "", true},
			{wh, "update", "namespaces", "", false},
			{wh, "create", "events", ns, true},
			{wh, "create", "events", "default", false},
			{wh, "get", "secrets", ns, false},
			{wh, "create", "pods", "default", false},
			// Its own certificates and registration, nothing else.
			{wh, "get", "secrets/" + releaseName + "-webhook-certs", ns, true},
			{wh, "update", "secrets/" + releaseName + "-webhook-certs", ns, true},
			{wh, "update", "secrets/" + labels.ClusterSecretName("public"), ns, false},
			{wh, "create", "secrets", ns, false},
			{wh, "update", "validatingwebhookconfigurations.admissionregistration.k8s.io/" + webhook.ConfigurationName, "", true},
			{wh, "update", "validatingwebhookconfigurations.admissionregistration.k8s.io/someone-elses", "", false},
			{wh, "delete", "configmaps", ns, true},
			{rec, "get", "secrets/" + releaseName + "-webhook-certs", ns, false},
		})
	})
	t.Run("webhook-issues-its-certificates", func(t *testing.T) { testSelfIssued(ctx, t, k, rs[0].objs) })
	t.Run("rbac/agent", func(t *testing.T) {
		k.must(ctx, rbacOf(rs[1].objs), "apply", "-f", "-")
		runChecks(t, []check{
			{rec, "create", "deployments.apps", "default", true},
			{rec, "delete", "configmaps", ns, true},
			{rec, "patch", "customresourcedefinitions.apiextensions.k8s.io", "", true},
			{rec, "watch", "pods", "default", true},
			{rec, "escalate", "clusterroles.rbac.authorization.k8s.io", "", false},
			{rec, "bind", "clusterroles.rbac.authorization.k8s.io", "", false},
			{rec, "impersonate", "users", "", false},
			{rec, "deletecollection", "pods", "default", false},
			// cert-manager's cainjector keeps the caBundle, not the webhook.
			{wh, "update", "validatingwebhookconfigurations.admissionregistration.k8s.io/" + webhook.ConfigurationName, "", false},
		})
	})
	if t.Failed() {
		logs, _ := os.ReadDir(dir + "/logs")
		t.Logf("cluster logs in %s (%d files) are removed at cleanup", dir, len(logs))
	}
}

// testSelfIssued applies the default rendering's empty certificate Secret
// and registration (its RBAC is applied), then runs the webhook's Rotator as
// the webhook's ServiceAccount with the flags the chart gives it: the RBAC
// must let it issue, store and register its certificates. Applying the
// chart's objects again (an upgrade) leaves them as the webhook made them.
func testSelfIssued(ctx context.Context, t *testing.T, k *kube, objs []*unstructured.Unstructured) {
	ns, wh := labels.SystemNamespace, releaseName+"-webhook"
	dep := typed[appsv1.Deployment](t, one(t, objs, "Deployment", wh))
	args := dep.Spec.Template.Spec.Containers[0].Args
	secret, _ := flagValue(args, "cert-secret")
	var hosts []string
	for _, a := range args {
		if h, ok := strings.CutPrefix(a, "--cert-host="); ok {
			hosts = append(hosts, h)
		}
	}
	chart := manifest(t, []*unstructured.Unstructured{one(t, objs, "Secret", secret),
		one(t, objs, "ValidatingWebhookConfiguration", webhook.ConfigurationName)})
	k.must(ctx, chart, "apply", "-f", "-")
	// It sends every request to a Service without pods: gone before the next test.
	t.Cleanup(func() { k.must(ctx, "", "delete", "validatingwebhookconfiguration", webhook.ConfigurationName) })

	admin, err := clientcmd.BuildConfigFromFlags("", k.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	as := rest.CopyConfig(admin)
	as.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + ns + ":" + wh}
	c, err := client.New(as, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	reg, _ := flagValue(args, "registration")
	rot := &webhook.Rotator{Store: webhook.SecretStore{Client: c, Namespace: ns, Name: secret}, Dir: t.TempDir(),
		Hosts: hosts, Client: c, Registration: reg}
	if _, err := rot.Tick(ctx); err != nil {
		t.Fatalf("as %s with the chart's RBAC: %v", wh, err)
	}
	ac, err := client.New(admin, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	read := func() (*corev1.Secret, []byte) {
		sec := &corev1.Secret{}
		vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{}
		if err := ac.Get(ctx, client.ObjectKey{Namespace: ns, Name: secret}, sec); err != nil {
			t.Fatal(err)
		}
		if err := ac.Get(ctx, client.ObjectKey{Name: webhook.ConfigurationName}, vwc); err != nil {
			t.Fatal(err)
		}
		return sec, vwc.Webhooks[0].ClientConfig.CABundle
	}
	sec, bundle := read()
	checkSelfSigned(t, sec, bundle, wh+"."+ns+".svc")
	if len(sec.Data[webhook.CAKeyFile]) == 0 {
		t.Error("no CA key in the Secret: no replica could renew")
	}
	k.must(ctx, chart, "apply", "-f", "-")
	again, bundle2 := read()
	if !maps.EqualFunc(sec.Data, again.Data, bytes.Equal) || !bytes.Equal(bundle, bundle2) {
		t.Error("applying the chart again reset the certificates or the caBundle the webhook made")
	}
}
