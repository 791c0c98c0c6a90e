package charttest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/strata-gitops/strata/internal/labels"
	"github.com/strata-gitops/strata/reconciler"
)

// exported are the metrics strata's code registers.
var exported = []string{
	reconciler.MetricReconcileDuration, reconciler.MetricObjectsApplied, reconciler.MetricObjectsPruned,
	reconciler.MetricDriftCorrected, reconciler.MetricClusterReachable, reconciler.MetricRevisionInfo,
	reconciler.MetricHealthWaitDuration, reconciler.MetricReconcileErrors, reconciler.MetricObjectsMoved, reconciler.MetricDirectApply,
	labels.MetricWebhookRequests, labels.MetricWebhookDenials, labels.MetricWebhookLatency, labels.MetricWebhookBreakGlass,
}

var metricRE = regexp.MustCompile(`strata_[a-z_]+`)

// metricsIn returns the metric names in s, without the _bucket, _sum and
// _count suffixes of histogram series.
func metricsIn(s string) []string {
	var out []string
	for _, m := range metricRE.FindAllString(s, -1) {
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(m, suffix); ok && slices.Contains(exported, base) {
				m = base
				break
			}
		}
		out = append(out, m)
	}
	return out
}

// collectStrings gathers every string in a decoded JSON value, with its path.
func collectStrings(v any, path string, out map[string]string) {
	switch v := v.(type) {
	case string:
		out[path] = v
	case map[string]any:
		for k, e := range v {
			collectStrings(e, path+"."+k, out)
		}
	case []any:
		for i, e := range v {
			collectStrings(e, path+"["+strconv.Itoa(i)+"]", out)
		}
	}
}

// TestDashboardAndAlertMetricsExist checks that the Grafana dashboard and
// the alert rules use only metrics strata exports, and that the dashboard
// shows every one of them.
func TestDashboardAndAlertMetricsExist(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(chartDir, "dashboards", "strata.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash map[string]any
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("dashboards/strata.json: %v", err)
	}
	_, objs := mustRender(t, renderings(t)[1])

	// The ConfigMap ships the file unchanged.
	cm := one(t, objs, "ConfigMap", releaseName+"-dashboard")
	if cm.GetLabels()["grafana_dashboard"] != "1" {
		t.Errorf("dashboard ConfigMap labels %v, want grafana_dashboard: \"1\"", cm.GetLabels())
	}
	shipped, _, _ := unstructured.NestedString(cm.Object, "data", "strata.json")
	if strings.TrimSpace(shipped) != strings.TrimSpace(string(raw)) {
		t.Error("the dashboard ConfigMap's strata.json differs from dashboards/strata.json")
	}

	used := map[string][]string{} // metric -> where
	queries := 0
	texts := map[string]string{}
	collectStrings(dash, "dashboard", texts)
	for path, s := range texts {
		if strings.HasSuffix(path, ".expr") {
			queries++
		}
		for _, m := range metricsIn(s) {
			used[m] = append(used[m], path)
		}
	}
	if queries < 10 {
		t.Errorf("the dashboard has %d queries; want its panels for latency, drift, denials, break-glass, recovery, reachability, errors, revision and webhook latency", queries)
	}
	dashboardUses := map[string]bool{}
	for m := range used {
		dashboardUses[m] = true
	}

	rule := one(t, objs, "PrometheusRule", "")
	groups, _, _ := unstructured.NestedSlice(rule.Object, "spec", "groups")
	alerts := map[string]string{}
	for _, g := range groups {
		rules, _ := g.(map[string]any)["rules"].([]any)
		for _, r := range rules {
			r := r.(map[string]any)
			name, _ := r["alert"].(string)
			expr, _ := r["expr"].(string)
			if name == "" || expr == "" {
				t.Errorf("rule without alert or expr: %v", r)
				continue
			}
			alerts[name] = expr
			for _, m := range metricsIn(expr) {
				used[m] = append(used[m], "alert "+name)
			}
		}
	}
	for name, want := range map[string]string{
		"StrataClusterUnreachable": reconciler.MetricClusterReachable,
		"StrataReconcileFailing":   reconciler.MetricReconcileErrors,
		"StrataDriftGrowing":       reconciler.MetricDriftCorrected,
		"StrataWebhookDenialSpike": labels.MetricWebhookDenials,
		"StrataBreakGlassUsed":     labels.MetricWebhookBreakGlass,
	} {
		if !strings.Contains(alerts[name], want) {
			t.Errorf("alert %s: expr %q, want one on %s", name, alerts[name], want)
		}
	}

	var names []string
	for m := range used {
		names = append(names, m)
	}
	sort.Strings(names)
	for _, m := range names {
		if !slices.Contains(exported, m) {
			t.Errorf("%s (used by %s) is not a metric strata exports (reconciler/metrics.go, webhook/metrics.go)", m, strings.Join(used[m], ", "))
		}
	}
	for _, m := range exported {
		if !dashboardUses[m] {
			t.Errorf("metric %s is on no dashboard panel", m)
		}
	}
	t.Logf("dashboard and %d alerts use %d metrics: %s", len(alerts), len(names), strings.Join(names, ", "))
}
