package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-gitops/strata/internal/config"
	"github.com/strata-gitops/strata/internal/labels"
	"github.com/strata-gitops/strata/internal/localcluster"
	"github.com/strata-gitops/strata/internal/policy"
	"github.com/strata-gitops/strata/webhook"
)

// webhooks runs one in-process admission webhook per cluster, with the
// demo's strata.yaml and policies/, registered with failurePolicy Fail.
type webhooks struct {
	registries map[string]*prometheus.Registry
}

func startWebhooks(t *testing.T, ctx context.Context, lc *localcluster.Manager, dir string) *webhooks {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "strata.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("strata.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	set, err := policy.Load(os.DirFS(dir), "policies")
	if err != nil {
		t.Fatal(err)
	}
	env, _ := cfg.Environment("prod")
	wh := &webhooks{registries: map[string]*prometheus.Registry{}}
	for _, c := range env.Clusters {
		rc, err := lc.RESTConfig(c.Name)
		if err != nil {
			t.Fatal(err)
		}
		certDir := t.TempDir()
		ca, err := webhook.EnsureCertificates(certDir, []string{"127.0.0.1"})
		if err != nil {
			t.Fatal(err)
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		reg := prometheus.NewRegistry()
		wh.registries[c.Name] = reg
		ready := make(chan struct{})
		wctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() {
			done <- webhook.Run(wctx, webhook.Options{Cluster: c.Name, Tier: c.Tier, Config: cfg, Policies: set,
				Addr: addr, CertDir: certDir, RESTConfig: rc, Registry: reg, Ready: ready, Log: testLog(t)})
		}()
		t.Cleanup(func() { cancel(); <-done })
		select {
		case <-ready:
		case err := <-done:
			t.Fatalf("webhook %s: %v", c.Name, err)
		case <-time.After(30 * time.Second):
			t.Fatalf("webhook %s did not start", c.Name)
		}
		cl, err := client.New(rc, client.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := webhook.Install(ctx, cl, webhook.Target{URL: "https://" + addr, ExemptNamespaces: cfg.Webhook.ExemptNamespaces}, ca); err != nil {
			t.Fatal(err)
		}
	}
	return wh
}

// denials sums strata_webhook_denials_total of a cluster.
func (w *webhooks) denials(t *testing.T, cluster string) float64 {
	t.Helper()
	mfs, err := w.registries[cluster].Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() == labels.MetricWebhookDenials {
			for _, m := range mf.GetMetric() {
				total += m.GetCounter().GetValue()
			}
		}
	}
	return total
}

// kubectl runs the real kubectl (built into the tools cache) on a cluster.
func kubectl(t *testing.T, lc *localcluster.Manager, cluster, stdin string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(filepath.Join(lc.Bin(), "kubectl"), append([]string{"--kubeconfig", lc.KubeconfigPath(cluster)}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func restrictedDeployment(name string, annotations string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: %s
  namespace: default
  labels: {strata.dev/sensitivity: restricted}
%sspec:
  replicas: 1
  selector: {matchLabels: {app: %s}}
  template:
    metadata: {labels: {app: %s}}
    spec:
      securityContext: {runAsNonRoot: true, runAsUser: 10001}
      containers:
      - name: c
        image: registry.onprem.example.internal/finance-ai/ledger:7.2.5
        resources: {limits: {cpu: 100m, memory: 64Mi}}
        securityContext: {readOnlyRootFilesystem: true, allowPrivilegeEscalation: false}
`, name, annotations, name, name)
}
