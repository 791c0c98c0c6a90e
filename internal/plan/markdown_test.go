package plan_test

import (
	"strings"
	"testing"

	"github.com/strata-gitops/strata/internal/config"
	"github.com/strata-gitops/strata/internal/plan"
)

func markdown(t *testing.T, r *plan.Report) string {
	t.Helper()
	var b strings.Builder
	if err := r.WriteMarkdown(&b); err != nil {
		t.Fatalf("WriteMarkdown: %v", err)
	}
	return b.String()
}

func lines(s string) map[string]bool {
	out := map[string]bool{}
	for _, l := range strings.Split(s, "\n") {
		out[l] = true
	}
	return out
}

func TestWriteMarkdownFromCompare(t *testing.T) {
	base := mustState(t, baseCommit, baseObjects)
	head := mustState(t, headCommit, with(map[string]string{
		"web-old.yaml":          "",
		"shared-dashboard.yaml": dashboardYAML("v2"),
		"shared-model.yaml":     modelYAML("restricted"),
	}))
	approvals := map[config.Sensitivity]int{config.Public: 0, config.Internal: 1, config.Restricted: 2}
	r := &plan.Report{
		Base: baseCommit, Head: headCommit, HeadSubject: "move the model on-prem",
		Environments: []*plan.Environment{
			plan.Compare("prod", base, head, approvals),
			plan.Compare("staging", base, base, approvals),
		},
	}
	if r.Failed() {
		t.Fatal("Failed() with no denials, errors or violations")
	}
	md := markdown(t, r)
	got := lines(md)
	for _, want := range []string{
		"## strata plan: `111111111111` → `222222222222`",
		"_move the model on-prem_",
		"**✅ Every object can be placed and passes the policies.**",
		"| environment | cluster | tier | added | changed | removed | moved in | moved out |",
		"| prod | public | public-cloud | 0 | 0 | 1 | 0 | 0 |",
		"| prod | private | private-cloud | 0 | 1 | 0 | 0 | 1 |",
		"| prod | onprem | on-prem | 0 | 0 | 0 | 1 | 0 |",
		"| staging | public | public-cloud | 0 | 0 | 0 | 0 | 0 |",
		"- **prod**: highest sensitivity touched is `restricted`: needs **2** signed approval(s) from distinct reviewers in `.strata/trust.yaml` (`strata approve 222222222222 --env prod --key KEY`)",
		"- **staging**: no change",
		"### prod / private (private-cloud)",
		"- **moved-out** to onprem `ConfigMap shared/model` (internal) — restricted → allowed [on-prem] → onprem (preferred)",
		"### prod / onprem (on-prem)",
		"- **moved-in** from private `ConfigMap shared/model` (restricted) — restricted → allowed [on-prem] → onprem (preferred)",
		"### prod / public (public-cloud)",
		"  -      - image: registry.example.com/dashboard:v1",
		"  +      - image: registry.example.com/dashboard:v2",
		"  <details><summary>diff</summary>",
		"  ```diff",
	} {
		if !got[want] {
			t.Errorf("markdown lacks the line %q", want)
		}
	}
	for _, unwanted := range []string{"❌", "### staging /", "Policy denials", "Render errors", "Open windows"} {
		if strings.Contains(md, unwanted) {
			t.Errorf("markdown contains %q", unwanted)
		}
	}
	// Removed and moved-out objects show no diff: only the public cluster's
	// removal and the private move-out would, and neither does.
	if n := strings.Count(md, "<details>"); n != 2 {
		t.Errorf("%d diffs, want 2 (changed dashboard, moved-in model):\n%s", n, md)
	}
	if t.Failed() {
		t.Logf("markdown:\n%s", md)
	}
}

func TestWriteMarkdownApprovalsLine(t *testing.T) {
	changed := []plan.Cluster{{Name: "public", Tier: "public-cloud", Changes: []plan.Change{{Action: plan.Added, Kind: "ConfigMap", Namespace: "web", Name: "x", Sensitivity: config.Public, Reason: "r"}}}}
	r := &plan.Report{Base: "b", Head: "h", Environments: []*plan.Environment{
		{Name: "dev", Clusters: changed, Highest: config.Public, Approvals: 0},
		{Name: "prod", Clusters: changed, Highest: config.Confidential, Approvals: 1, Windows: []string{"month-end", "audit"}},
		{Name: "staging", Clusters: []plan.Cluster{{Name: "s", Tier: "on-prem"}}},
	}}
	got := lines(markdown(t, r))
	for _, want := range []string{
		"- **dev**: highest sensitivity touched is `public`: no approval needed",
		"- **prod**: highest sensitivity touched is `confidential`: needs **1** signed approval(s) from distinct reviewers in `.strata/trust.yaml` (`strata approve h --env prod --key KEY`)",
		"- **staging**: no change",
		"| staging | s | on-prem | 0 | 0 | 0 | 0 | 0 |",
		"- **added** `ConfigMap web/x` (public) — r",
		"_Open windows in prod: month-end, audit (their components are part of this plan)._",
	} {
		if !got[want] {
			t.Errorf("markdown lacks the line %q", want)
		}
	}
}

func TestWriteMarkdownFailures(t *testing.T) {
	r := &plan.Report{
		Base: "base", Head: "head",
		Environments: []*plan.Environment{{
			Name:       "prod",
			Clusters:   []plan.Cluster{{Name: "public", Tier: "public-cloud"}},
			Violations: []string{"ConfigMap loose/stray (overlays/prod/loose.yaml): [unlabeled] label it"},
		}},
		Denials:  []plan.Denial{{Environment: "prod", Cluster: "public", Object: "ConfigMap web/bad", Policy: "no-passwords", Message: "a | b"}},
		Warnings: []plan.Denial{{Environment: "prod", Cluster: "private", Object: "Deployment risk/d", Policy: "limits", Message: "set limits"}},
		Errors:   []string{"staging at head: rendering failed"},
	}
	if !r.Failed() {
		t.Fatal("Failed() = false")
	}
	md := markdown(t, r)
	got := lines(md)
	for _, want := range []string{
		"**❌ This change cannot be applied as it is** — see the violations and policy denials below.",
		"### ❌ Placement violations in prod",
		"- ConfigMap loose/stray (overlays/prod/loose.yaml): [unlabeled] label it",
		"### ❌ Render errors",
		"staging at head: rendering failed",
		"### ❌ Policy denials",
		"| environment | cluster | object | policy | message |",
		"| prod | public | `ConfigMap web/bad` | no-passwords | a \\| b |",
		"### ⚠️ Policy warnings",
		"| prod | private | `Deployment risk/d` | limits | set limits |",
	} {
		if !got[want] {
			t.Errorf("markdown lacks the line %q", want)
		}
	}
	if strings.Contains(md, "✅") {
		t.Error("a failed plan says ✅")
	}
	if t.Failed() {
		t.Logf("markdown:\n%s", md)
	}
}

func TestReportFailed(t *testing.T) {
	env := func(violations ...string) []*plan.Environment {
		return []*plan.Environment{{Name: "prod"}, {Name: "dev", Violations: violations}}
	}
	tests := []struct {
		name   string
		report plan.Report
		want   bool
	}{
		{"clean", plan.Report{Environments: env()}, false},
		{"empty", plan.Report{}, false},
		{"warnings only", plan.Report{Environments: env(), Warnings: []plan.Denial{{Policy: "p"}}}, false},
		{"denial", plan.Report{Environments: env(), Denials: []plan.Denial{{Policy: "p"}}}, true},
		{"render error", plan.Report{Environments: env(), Errors: []string{"boom"}}, true},
		{"violation", plan.Report{Environments: env("v")}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.report.Failed(); got != tt.want {
				t.Errorf("Failed() = %v, want %v", got, tt.want)
			}
			md := markdown(t, &tt.report)
			if strings.Contains(md, "**❌") != tt.want || strings.Contains(md, "**✅") == tt.want {
				t.Errorf("markdown headline does not match Failed() = %v:\n%s", tt.want, md)
			}
		})
	}
}
