package configrepo

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/strata-gitops/strata/internal/config"
)

// What the benchmarks generate is a strata.yaml strata accepts, with the
// clusters, approvals and rollout asked for.
func TestStrataYAMLParses(t *testing.T) {
	y := StrataYAML(Config{Generator: "test", Env: "bench", Clusters: ThreeClusters, Approvals: [4]int{0, 1, 1, 2},
		Rollout: "  maxPrunePercent: 100\n"})
	cfg, err := config.Parse("strata.yaml", []byte(y))
	if err != nil {
		t.Fatalf("%v\n%s", err, y)
	}
	env, err := cfg.Environment("bench")
	if err != nil {
		t.Fatal(err)
	}
	var got []Cluster
	for _, c := range env.Clusters {
		got = append(got, Cluster{Name: c.Name, Tier: string(c.Tier), Cost: c.Cost})
	}
	if diff := cmp.Diff(ThreeClusters, got); diff != "" {
		t.Errorf("clusters (-want +got):\n%s", diff)
	}
	if env.Path != "overlays/bench" || cfg.Rollout.MaxPrunePercent == nil || *cfg.Rollout.MaxPrunePercent != 100 {
		t.Errorf("path %q, maxPrunePercent %d", env.Path, cfg.Rollout.MaxPrunePercent)
	}
	if got := cfg.Approvals.Required["restricted"]; got != 2 {
		t.Errorf("restricted approvals %d, want 2", got)
	}
}
