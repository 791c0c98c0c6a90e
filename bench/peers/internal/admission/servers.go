package admission

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"debug/buildinfo"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/strata-gitops/strata/bench/internal/childproc"
	"github.com/strata-gitops/strata/internal/config"
	"github.com/strata-gitops/strata/webhook"
)

// server is a running webhook: where to POST AdmissionReviews and the CA
// that signed its serving certificate.
type server struct {
	tool   string
	url    string
	ca     []byte
	p      *childproc.Process
	client *http.Client
}

// stop stops the server's process; a nil server is a no-op.
func (s *server) stop() {
	if s != nil {
		s.p.Stop()
	}
}

// installKyvernoPrereqs creates Kyverno's CRDs, its Namespace, the
// ServiceAccounts and RBAC of the rendered chart, the two ConfigMaps as the
// chart ships them (kyvernochart.go) and the placeholder Deployment it looks
// up, then the policies.
func installKyvernoPrereqs(ctx context.Context, k *cluster, crdDir, chart string, policies []*unstructured.Unstructured) error {
	crds, err := readYAMLDir(crdDir)
	if err != nil {
		return fmt.Errorf("Kyverno CRDs: %w", err)
	}
	for _, crd := range crds {
		if err := k.createOrUpdate(ctx, crd); err != nil {
			return fmt.Errorf("Kyverno CRD: %w", err)
		}
	}
	// The policies can be created once the apiserver serves their type.
	err = poll(ctx, 60*time.Second, func() (bool, error) {
		l := &unstructured.UnstructuredList{}
		l.SetAPIVersion("policies.kyverno.io/v1")
		l.SetKind("ValidatingPolicyList")
		return k.c.List(ctx, l) == nil, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for policies.kyverno.io/v1 ValidatingPolicy to be served: %w", err)
	}
	if err := k.ensureNamespaces(ctx, map[string]map[string]string{kyvernoNS: nil}); err != nil {
		return err
	}
	// Kyverno marks a policy Ready only when the reports controller's
	// ServiceAccount may read what it matches: the chart's RBAC grants it.
	rbac, err := chartRBAC(chart)
	if err != nil {
		return err
	}
	for _, o := range rbac {
		if err := k.createOrUpdate(ctx, o); err != nil {
			return fmt.Errorf("Kyverno chart %s %s: %w", o.GetKind(), o.GetName(), err)
		}
	}
	for name, data := range map[string]map[string]string{kyvernoConfigMap: kyvernoConfigData(), kyvernoMetricsCM: kyvernoMetricsConfigData()} {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: kyvernoNS}, Data: data}
		if err := client.IgnoreAlreadyExists(k.c.Create(ctx, cm)); err != nil {
			return err
		}
	}
	one := int32(1)
	labels := map[string]string{"app.kubernetes.io/component": "admission-controller", "app.kubernetes.io/instance": "kyverno", "app.kubernetes.io/part-of": "kyverno"}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: kyvernoDeployment, Namespace: kyvernoNS, Labels: labels},
		Spec: appsv1.DeploymentSpec{Replicas: &one, Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "kyverno", Image: "ghcr.io/kyverno/kyverno:v1.19.1"}}}}},
	}
	if err := client.IgnoreAlreadyExists(k.c.Create(ctx, dep)); err != nil {
		return err
	}
	for _, p := range policies {
		if err := k.createOrUpdate(ctx, p); err != nil {
			return fmt.Errorf("loading the policy into Kyverno: %w", err)
		}
	}
	return nil
}

// chartRBAC returns the ServiceAccounts, ClusterRoles, ClusterRoleBindings,
// Roles and RoleBindings of the rendered chart, in that order.
func chartRBAC(path string) ([]*unstructured.Unstructured, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("Kyverno chart: %w (run bench/peers/build.sh kyverno)", err)
	}
	objs, err := decodeAll(data)
	if err != nil {
		return nil, fmt.Errorf("Kyverno chart %s: %w", path, err)
	}
	var out []*unstructured.Unstructured
	for _, kind := range []string{"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"} {
		for _, o := range objs {
			if o.GetKind() == kind {
				out = append(out, o)
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("Kyverno chart %s has no RBAC objects: render it again with bench/peers/build.sh kyverno", path)
	}
	return out, nil
}

// startKyverno runs the Kyverno admission controller out of cluster on a
// free loopback port, waits until every policy is Ready and its webhook is
// registered with all of them, and returns the URL and CA of that webhook
// (the path names the policies: /vpol/<name>/<name>/...).
func startKyverno(ctx context.Context, k *cluster, o *Options, work string, names []string, gomaxprocs int) (*server, error) {
	ports := make([]int, 3)
	for i := range ports {
		var err error
		if ports[i], err = childproc.FreePort(); err != nil {
			return nil, err
		}
	}
	p, err := childproc.Start("kyverno", filepath.Join(work, fmt.Sprintf("kyverno-gomaxprocs%d.log", gomaxprocs)), kyvernoChartEnv(gomaxprocs), o.KyvernoBin,
		kyvernoChartArgs(o.Kubeconfig, ports[0], ports[1], ports[2])...)
	if err != nil {
		return nil, err
	}
	s := &server{tool: Kyverno, p: p}
	err = poll(ctx, 3*time.Minute, func() (bool, error) {
		if p.Exited() {
			return false, fmt.Errorf("kyverno exited (%v):\n%s", p.Err, p.Tail(20))
		}
		for _, n := range names {
			vp := &unstructured.Unstructured{}
			vp.SetAPIVersion("policies.kyverno.io/v1")
			vp.SetKind("ValidatingPolicy")
			if err := k.c.Get(ctx, client.ObjectKey{Name: n}, vp); err != nil {
				return false, err
			}
			if ready, _, _ := unstructured.NestedBool(vp.Object, "status", "conditionStatus", "ready"); !ready {
				conds, _, _ := unstructured.NestedSlice(vp.Object, "status", "conditionStatus", "conditions")
				return false, fmt.Errorf("policy %s is not Ready yet (conditions: %v)", n, conds)
			}
		}
		var vwc admissionregistrationv1.ValidatingWebhookConfiguration
		if err := k.c.Get(ctx, client.ObjectKey{Name: kyvernoVWC}, &vwc); err != nil {
			return false, err
		}
		for _, w := range vwc.Webhooks {
			if w.Name != kyvernoVpolHook || w.ClientConfig.URL == nil {
				continue
			}
			u := *w.ClientConfig.URL
			// The URL of this process (a Kyverno started earlier left its own).
			if !strings.HasPrefix(u, fmt.Sprintf("https://127.0.0.1:%d/", ports[0])) {
				continue
			}
			if !slices.ContainsFunc(names, func(n string) bool { return !strings.Contains(u, "/"+n) }) {
				s.url, s.ca = u, w.ClientConfig.CABundle
				return true, nil
			}
		}
		return false, fmt.Errorf("%s has no webhook %s naming every policy yet", kyvernoVWC, kyvernoVpolHook)
	})
	if err != nil {
		p.Stop()
		return nil, fmt.Errorf("waiting for Kyverno (log %s): %w", p.Log, err)
	}
	return s, nil
}

// kyvernoVersion reads the version of github.com/kyverno/kyverno the binary
// was built from.
func kyvernoVersion(bin string) string {
	bi, err := buildinfo.ReadFile(bin)
	if err != nil {
		return "unknown version"
	}
	for _, d := range bi.Deps {
		if d.Path == "github.com/kyverno/kyverno" {
			return d.Version
		}
	}
	if bi.Main.Path == "github.com/kyverno/kyverno" {
		return bi.Main.Version
	}
	return "unknown version"
}

// Tier is the tier strata's webhook runs as: public-cloud-no-secret-refs is
// annotated strata.dev/tiers: public-cloud, the other five apply to every
// tier, so only public-cloud evaluates all six policies, like Kyverno.
const Tier = config.PublicCloud

// writeStrataConfig copies strata.yaml with every sensitivity allowed in
// every tier, so that strata's own sensitivity rule never denies in the
// benchmark and both tools give the policies' verdicts. strata still runs
// that rule on every request.
func writeStrataConfig(root, dir string) (string, error) {
	data, err := os.ReadFile(filepath.Join(root, "strata.yaml"))
	if err != nil {
		return "", err
	}
	var m map[string]any
	if err := yaml.Unmarshal(data, &m); err != nil {
		return "", err
	}
	tiers := map[string]any{}
	for _, s := range config.Sensitivities {
		tiers[string(s)] = []string{string(config.PublicCloud), string(config.PrivateCloud), string(config.OnPrem)}
	}
	m["tiers"] = tiers
	out, err := yaml.Marshal(m)
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "strata.yaml")
	if _, err := config.Parse(path, out); err != nil {
		return "", fmt.Errorf("the benchmark's strata.yaml: %w", err)
	}
	return path, os.WriteFile(path, out, 0o644)
}

// startStrata runs `strata webhook` on a free loopback port and waits until
// it answers /healthz. It is not registered with the apiserver.
func startStrata(ctx context.Context, o *Options, work string, gomaxprocs int) (*server, error) {
	cfg, err := writeStrataConfig(o.RepoRoot, work)
	if err != nil {
		return nil, err
	}
	certs, ca, addr, err := serving(work)
	if err != nil {
		return nil, err
	}
	args := []string{"webhook", "--cluster", "adm", "--tier", string(Tier), "--config", cfg,
		"--policies", filepath.Join(o.RepoRoot, "policies"), "--cert-dir", certs, "--addr", addr,
		"--metrics-addr", "0", "--kubeconfig", o.Kubeconfig}
	return serve(ctx, Strata, o.StrataBin, work, gomaxprocs, addr, ca, args...)
}

// serving returns strata's certificate directory under work (created on
// first use), its CA and a free loopback address to serve on.
func serving(work string) (certs string, ca []byte, addr string, err error) {
	certs = filepath.Join(work, "strata-certs")
	if ca, err = webhook.EnsureCertificates(certs, []string{"127.0.0.1", "localhost"}); err != nil {
		return "", nil, "", err
	}
	port, err := childproc.FreePort()
	if err != nil {
		return "", nil, "", err
	}
	return certs, ca, "127.0.0.1:" + strconv.Itoa(port), nil
}

// serve starts bin with args as a child process with GOMAXPROCS and waits
// until it answers https://addr/healthz with a certificate ca signed.
func serve(ctx context.Context, tool, bin, work string, gomaxprocs int, addr string, ca []byte, args ...string) (*server, error) {
	p, err := childproc.Start(tool, filepath.Join(work, fmt.Sprintf("%s-webhook-%d.log", tool, time.Now().UnixNano())), []string{"GOMAXPROCS=" + strconv.Itoa(gomaxprocs)}, bin, args...)
	if err != nil {
		return nil, err
	}
	c, err := httpClient(ca)
	if err != nil {
		p.Stop()
		return nil, err
	}
	err = poll(ctx, 60*time.Second, func() (bool, error) {
		if p.Exited() {
			return false, fmt.Errorf("%s webhook exited (%v):\n%s", tool, p.Err, p.Tail(20))
		}
		resp, err := c.Get("https://" + addr + "/healthz")
		if err != nil {
			return false, err
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		p.Stop()
		return nil, fmt.Errorf("waiting for %s webhook (log %s): %w", tool, p.Log, err)
	}
	return &server{tool: tool, url: "https://" + addr + "/validate", ca: ca, p: p, client: c}, nil
}

// buildFloor builds bench/peers/nullwebhook into work.
func buildFloor(ctx context.Context, o *Options, work string) (string, error) {
	bin := filepath.Join(work, "nullwebhook")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./bench/peers/nullwebhook")
	cmd.Dir = o.RepoRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building bench/peers/nullwebhook: %w\n%s", err, out)
	}
	return bin, nil
}

// startFloor starts the null webhook (the floor: answers allowed, judges
// nothing) with strata's serving certificate.
func startFloor(ctx context.Context, bin, work string, gomaxprocs int) (*server, error) {
	certs, ca, addr, err := serving(work)
	if err != nil {
		return nil, err
	}
	return serve(ctx, Floor, bin, work, gomaxprocs, addr, ca, "--cert-dir", certs, "--addr", addr)
}

// registerStrata registers the running strata webhook with the apiserver.
func registerStrata(ctx context.Context, k *cluster, s *server) error {
	base := strings.TrimSuffix(s.url, "/validate")
	return webhook.Install(ctx, k.c, webhook.Target{URL: base}, s.ca)
}

// httpClient trusts ca only and keeps its connections; it speaks HTTP/2
// when the server offers it, as the kube-apiserver does to webhooks.
func httpClient(ca []byte) (*http.Client, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, errors.New("the CA bundle holds no certificate")
	}
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2:   true,
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 1024,
		IdleConnTimeout:     5 * time.Minute,
		DisableCompression:  true,
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}, nil
}
