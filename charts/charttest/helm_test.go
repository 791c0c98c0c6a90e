package charttest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/strata-gitops/strata/internal/labels"
	"github.com/strata-gitops/strata/internal/localcluster"
)

// releaseName is the release every test renders; its objects are named
// "strata-<component>".
const releaseName = "strata"

var (
	chartDir string // absolute path of charts/strata
	repoRoot string // absolute path of the strata checkout
	helmHome string // HELM_*_HOME for the tests' helm runs
)

func TestMain(m *testing.M) {
	var err error
	if chartDir, err = filepath.Abs(filepath.Join("..", "strata")); err == nil {
		repoRoot, err = filepath.Abs(filepath.Join("..", ".."))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if helmHome, err = os.MkdirTemp("", "strata-charttest-helm-"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	code := m.Run()
	os.RemoveAll(helmHome)
	os.Exit(code)
}

// tool returns the path of a binary in $STRATA_BIN (or ~/.cache/strata/bin)
// and fails the test when it is missing: CI builds it with
// hack/install-tools.sh all, and a skipped chart test would hide a broken chart.
func tool(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(localcluster.DefaultBin(), name)
	if fi, err := os.Stat(p); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		t.Fatalf("%s is missing from %s: build it with `hack/install-tools.sh all` (make tools), or set STRATA_BIN to a directory holding it", name, localcluster.DefaultBin())
	}
	return p
}

// helm runs helm with args in the chart's parent directory and returns its
// stdout; err carries stderr.
func helm(t testing.TB, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, tool(t, "helm"), args...)
	cmd.Dir = filepath.Dir(chartDir)
	cmd.Env = append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(helmHome, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(helmHome, "config"),
		"HELM_DATA_HOME="+filepath.Join(helmHome, "data"),
		"HELM_NAMESPACE="+labels.SystemNamespace)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("helm %s: %w\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

// rendering is one configuration of the chart that the tests render.
type rendering struct {
	name string
	args []string // helm template flags (--set, --set-file, -f)
	// kinds the rendering must contain (kind -> count).
	kinds map[string]int
}

// policyFiles returns --set-file flags that ship every policy of the demo
// configuration repository (policies/*.yaml) in the chart's ConfigMap.
func policyFiles(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(repoRoot, "policies", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no policies in %s: %v", filepath.Join(repoRoot, "policies"), err)
	}
	var args []string
	for _, f := range files {
		key := strings.ReplaceAll(filepath.Base(f), ".", `\.`)
		args = append(args, "--set-file", "policies."+key+"="+f)
	}
	return args
}

// renderings are the configurations every test checks: the defaults (push
// mode, self-signed certificates), agent mode with everything optional on
// (cert-manager, monitoring, dashboard, push hook, git credentials, the
// demo's policies and strata.yaml), a webhook-only release of an on-prem cluster, and a
// reconciler-only release whose values carry a cluster's kubeconfig.
func renderings(t testing.TB) []rendering {
	t.Helper()
	full := []string{
		"--set", "reconciler.mode=agent", "--set", "reconciler.self=onprem",
		"--set", "webhook.tier=on-prem",
		"--set", "certManager.enabled=true",
		"--set", "monitoring.serviceMonitor.enabled=true", "--set", "monitoring.prometheusRule.enabled=true",
		"--set", "dashboards.enabled=true",
		"--set", "reconciler.hook.enabled=true", "--set", "reconciler.hook.secret=hook-secret-for-tests",
		"--set", "reconciler.repo.credentialsSecret=git-credentials",
		"--set", "reconciler.ageKeys.secretName=strata-age-keys",
		"--set", "reconciler.peers.secretName=strata-peer-kubeconfigs",
		"--set-file", "config=" + filepath.Join(repoRoot, "strata.yaml"),
	}
	full = append(full, policyFiles(t)...)
	return []rendering{
		{name: "default", kinds: map[string]int{
			"Deployment": 2, "Service": 2, "ServiceAccount": 2, "Role": 2, "RoleBinding": 2, "ClusterRole": 1,
			"ClusterRoleBinding": 1, "ConfigMap": 1, "Secret": 1, "PodDisruptionBudget": 1, "ValidatingWebhookConfiguration": 1,
		}},
		{name: "agent-certmanager-monitoring", args: full, kinds: map[string]int{
			"Deployment": 2, "Service": 3, "ServiceAccount": 2, "Role": 2, "RoleBinding": 2, "ClusterRole": 2,
			"ClusterRoleBinding": 2, "ConfigMap": 3, "Secret": 1, "PodDisruptionBudget": 1, "ValidatingWebhookConfiguration": 1,
			"Certificate": 2, "Issuer": 2, "ServiceMonitor": 1, "PrometheusRule": 1,
		}},
		{name: "webhook-only", args: []string{"--set", "reconciler.enabled=false", "--set", "webhook.tier=on-prem", "--set", "webhook.cluster=onprem"},
			kinds: map[string]int{
				"Deployment": 1, "Service": 1, "ServiceAccount": 1, "Role": 1, "RoleBinding": 1, "ClusterRole": 1,
				"ClusterRoleBinding": 1, "ConfigMap": 1, "Secret": 1, "PodDisruptionBudget": 1, "ValidatingWebhookConfiguration": 1,
			}},
		{name: "reconciler-only", args: []string{"--set", "webhook.enabled=false",
			"--set", "reconciler.clusters[0].name=onprem",
			"--set-file", "reconciler.clusters[0].kubeconfig=" + filepath.Join("charttest", "testdata", "onprem.kubeconfig")},
			kinds: map[string]int{"Deployment": 1, "Service": 1, "ServiceAccount": 1, "Role": 1, "RoleBinding": 1, "Secret": 1}},
	}
}

// template renders the chart with args.
func template(t testing.TB, args ...string) (string, error) {
	t.Helper()
	return helm(t, append([]string{"template", releaseName, filepath.Base(chartDir), "--namespace", labels.SystemNamespace}, args...)...)
}

// mustRender renders r and decodes its objects.
func mustRender(t testing.TB, r rendering) (string, []*unstructured.Unstructured) {
	t.Helper()
	out, err := template(t, r.args...)
	if err != nil {
		t.Fatalf("rendering %s: %v", r.name, err)
	}
	objs, err := decode(out)
	if err != nil {
		t.Fatalf("rendering %s: %v\n%s", r.name, err, out)
	}
	return out, objs
}

// decode splits a multi-document YAML stream into objects.
func decode(stream string) ([]*unstructured.Unstructured, error) {
	d := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(stream), 4096)
	var objs []*unstructured.Unstructured
	for {
		var m map[string]any
		if err := d.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return objs, nil
			}
			return nil, err
		}
		if len(m) == 0 {
			continue
		}
		u := &unstructured.Unstructured{Object: m}
		if u.GetKind() == "" || u.GetAPIVersion() == "" || u.GetName() == "" {
			return nil, fmt.Errorf("an object without kind, apiVersion or name: %v", m)
		}
		objs = append(objs, u)
	}
}

// find returns the objects of kind, in rendering order.
func find(objs []*unstructured.Unstructured, kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == kind {
			out = append(out, o)
		}
	}
	return out
}

// one returns the single object of kind called name (any name when empty).
func one(t testing.TB, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	var hits []*unstructured.Unstructured
	for _, o := range find(objs, kind) {
		if name == "" || o.GetName() == name {
			hits = append(hits, o)
		}
	}
	if len(hits) != 1 {
		t.Fatalf("want one %s %q, found %d", kind, name, len(hits))
	}
	return hits[0]
}
