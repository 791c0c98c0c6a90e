package cli_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/strata-gitops/strata/internal/config"
	"github.com/strata-gitops/strata/internal/placement"
)

// strata render reports the monthly cost of the environment's placement
// per tier: in the table's footer and in JSON. The demo's prod uses all
// three clusters (1 + 3 + 5); dev has no private cloud.
func TestRenderReportsMonthlyCost(t *testing.T) {
	r := demoRepo(t)
	out := mustRun(t, "render", "--repo", r.dir, "--env", "prod")
	want := "monthly cost of prod (relative units per cluster, strata.yaml cost): public-cloud 1 (public) + private-cloud 3 (private) + on-prem 5 (onprem) = 9"
	if !strings.Contains(out, want) {
		t.Errorf("table footer lacks %q:\n%s", want, out)
	}
	var doc struct {
		Cost placement.Cost `json:"cost"`
	}
	if err := json.Unmarshal([]byte(mustRun(t, "render", "--repo", r.dir, "--env", "dev", "-o", "json")), &doc); err != nil {
		t.Fatal(err)
	}
	wantDev := placement.Cost{Total: 6, Tiers: []placement.TierCost{
		{Tier: config.PublicCloud, Clusters: []string{"dev-cloud"}, Cost: 1},
		{Tier: config.OnPrem, Clusters: []string{"dev-onprem"}, Cost: 5},
	}}
	if diff := cmp.Diff(wantDev, doc.Cost); diff != "" {
		t.Errorf("JSON cost of dev (-want +got):\n%s", diff)
	}
}
