package plan_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/strata-gitops/strata/internal/config"
	"github.com/strata-gitops/strata/internal/placement"
	"github.com/strata-gitops/strata/internal/plan"
)

// The plan reports the monthly cost of each environment's placement per
// tier at base and head: dropping every public object leaves the public
// cluster idle, and its cost goes.
func TestPlanReportsMonthlyCostPerTier(t *testing.T) {
	base := mustState(t, baseCommit, baseObjects)
	head := mustState(t, headCommit, with(map[string]string{"ns-web.yaml": "", "web-site.yaml": "", "web-old.yaml": ""}))
	e := plan.Compare("prod", base, head, nil)
	wantBase := &placement.Cost{Total: 9, Tiers: []placement.TierCost{
		{Tier: config.PublicCloud, Clusters: []string{"public"}, Cost: 1},
		{Tier: config.PrivateCloud, Clusters: []string{"private"}, Cost: 3},
		{Tier: config.OnPrem, Clusters: []string{"onprem"}, Cost: 5},
	}}
	wantHead := &placement.Cost{Total: 8, Idle: []string{"public"}, Tiers: []placement.TierCost{
		{Tier: config.PrivateCloud, Clusters: []string{"private"}, Cost: 3},
		{Tier: config.OnPrem, Clusters: []string{"onprem"}, Cost: 5},
	}}
	if diff := cmp.Diff(wantBase, e.BaseCost); diff != "" {
		t.Errorf("base cost (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantHead, e.Cost); diff != "" {
		t.Errorf("head cost (-want +got):\n%s", diff)
	}

	var b strings.Builder
	if err := (&plan.Report{Base: baseCommit, Head: headCommit, Environments: []*plan.Environment{e}}).WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	for _, row := range []string{
		"### Monthly cost",
		"| prod | public-cloud | - | 1 | - | -1 |",
		"| prod | private-cloud | private | 3 | 3 | ±0 |",
		"| prod | on-prem | onprem | 5 | 5 | ±0 |",
		"| prod | **total** | | **9** | **8** | -1 |",
	} {
		if !strings.Contains(b.String(), row) {
			t.Errorf("markdown lacks %q:\n%s", row, b.String())
		}
	}

	// A new environment has no base cost.
	e = plan.Compare("prod", nil, head, nil)
	b.Reset()
	if err := (&plan.Report{Environments: []*plan.Environment{e}}).WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	if e.BaseCost != nil || !strings.Contains(b.String(), "| prod | **total** | | - | **8** | +8 |") {
		t.Errorf("new environment: base %v\n%s", e.BaseCost, b.String())
	}
}
