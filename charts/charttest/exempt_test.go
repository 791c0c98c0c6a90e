package charttest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"

	"github.com/strata-gitops/strata/internal/config"
	"github.com/strata-gitops/strata/webhook"
)

// The registration skips webhook.exemptNamespaces, the webhook exempts
// those of strata.yaml: the chart renders only when they are the same, and
// then the registration is webhook.Configuration of that strata.yaml.
func TestExemptNamespacesAgreeWithConfig(t *testing.T) {
	withTools := strings.Replace(defaultConfig(t), "exemptNamespaces: [kube-system, kube-public, kube-node-lease, strata-system]",
		"exemptNamespaces: [kube-system, kube-public, kube-node-lease, strata-system, tools]", 1)
	cfgFile := filepath.Join(t.TempDir(), "strata.yaml")
	if err := os.WriteFile(cfgFile, []byte(withTools), 0o644); err != nil {
		t.Fatal(err)
	}
	tools := "webhook.exemptNamespaces={kube-system,kube-public,kube-node-lease,strata-system,tools}"
	tests := []struct {
		name    string
		args    []string
		want    []string // the registration's exempt namespaces; nil: rendering fails
		failSay string
	}{
		{name: "defaults", want: config.DefaultExemptNamespaces()},
		{name: "values only", args: []string{"--set", tools}, failSay: "differs from webhook.exemptNamespaces"},
		{name: "config only", args: []string{"--set-file", "config=" + cfgFile}, failSay: "give both the same namespaces"},
		{name: "both", args: []string{"--set", tools, "--set-file", "config=" + cfgFile},
			want: []string{"kube-system", "kube-public", "kube-node-lease", "strata-system", "tools"}},
		{name: "strata's namespace is always skipped", args: []string{"--set", "webhook.exemptNamespaces={kube-system}", "--set", "existingConfigConfigMap=mine"},
			want: []string{"kube-system", "strata-system"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out, err := template(t, tt.args...)
			if tt.want == nil {
				if err == nil || !strings.Contains(err.Error(), tt.failSay) {
					t.Fatalf("rendered (err %v), want a failure saying %q", err, tt.failSay)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			objs, err := decode(out)
			if err != nil {
				t.Fatal(err)
			}
			got := typed[admissionregistrationv1.ValidatingWebhookConfiguration](t, one(t, objs, "ValidatingWebhookConfiguration", webhook.ConfigurationName))
			if d := cmp.Diff(tt.want, got.Webhooks[0].NamespaceSelector.MatchExpressions[0].Values); d != "" {
				t.Errorf("exempt namespaces (-want +got):\n%s", d)
			}
		})
	}
}

// defaultConfig is the strata.yaml of the chart's values.
func defaultConfig(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	start := strings.Index(s, "config: |\n")
	end := strings.Index(s, "existingConfigConfigMap:")
	if start < 0 || end < start {
		t.Fatal("no config: | block in values.yaml")
	}
	var lines []string
	for _, l := range strings.Split(s[start+len("config: |\n"):end], "\n") {
		lines = append(lines, strings.TrimPrefix(l, "  "))
	}
	return strings.Join(lines, "\n")
}
