package placement

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/strata-gitops/strata/internal/config"
)

func TestCostOf(t *testing.T) {
	prod := []config.Cluster{
		{Name: "public", Tier: config.PublicCloud, Cost: 1},
		{Name: "private", Tier: config.PrivateCloud, Cost: 3},
		{Name: "onprem", Tier: config.OnPrem, Cost: 5},
		{Name: "onprem-2", Tier: config.OnPrem, Cost: 4},
	}
	decide := func(clusters ...[]string) *Result {
		r := &Result{}
		for _, cs := range clusters {
			r.Decisions = append(r.Decisions, Decision{Clusters: cs})
		}
		return r
	}
	tests := []struct {
		name     string
		clusters []config.Cluster
		result   *Result
		want     Cost
		line     string
	}{
		{
			name: "every tier", clusters: prod,
			result: decide([]string{"public"}, []string{"private"}, []string{"onprem", "onprem-2"}, []string{"public", "private"}),
			want: Cost{Total: 13, Tiers: []TierCost{
				{Tier: config.PublicCloud, Clusters: []string{"public"}, Cost: 1},
				{Tier: config.PrivateCloud, Clusters: []string{"private"}, Cost: 3},
				{Tier: config.OnPrem, Clusters: []string{"onprem", "onprem-2"}, Cost: 9},
			}},
			line: "public-cloud 1 (public) + private-cloud 3 (private) + on-prem 9 (onprem, onprem-2) = 13",
		},
		{
			name: "idle clusters are not counted", clusters: prod,
			result: decide([]string{"onprem"}, []string{"onprem"}),
			want: Cost{Total: 5, Idle: []string{"public", "private", "onprem-2"}, Tiers: []TierCost{
				{Tier: config.OnPrem, Clusters: []string{"onprem"}, Cost: 5},
			}},
			line: "on-prem 5 (onprem) = 5",
		},
		{
			name:     "tiers in cost order whatever strata.yaml's order",
			clusters: []config.Cluster{{Name: "vault", Tier: config.OnPrem, Cost: 5}, {Name: "web", Tier: config.PublicCloud, Cost: 1}},
			result:   decide([]string{"vault"}, []string{"web"}),
			want: Cost{Total: 6, Tiers: []TierCost{
				{Tier: config.PublicCloud, Clusters: []string{"web"}, Cost: 1},
				{Tier: config.OnPrem, Clusters: []string{"vault"}, Cost: 5},
			}},
			line: "public-cloud 1 (web) + on-prem 5 (vault) = 6",
		},
		{
			name: "a cluster without cost is named", clusters: []config.Cluster{{Name: "lab", Tier: config.OnPrem}},
			result: decide([]string{"lab"}),
			want:   Cost{Tiers: []TierCost{{Tier: config.OnPrem, Clusters: []string{"lab"}, Unpriced: []string{"lab"}}}},
			line:   "on-prem 0 (lab) [no cost set: lab] = 0",
		},
		{
			name: "nothing placed", clusters: prod[:1], result: decide(),
			want: Cost{Tiers: []TierCost{}, Idle: []string{"public"}},
			line: "0 (no cluster receives objects)",
		},
		{
			name: "no result", clusters: prod[:1], result: nil,
			want: Cost{Tiers: []TierCost{}, Idle: []string{"public"}},
			line: "0 (no cluster receives objects)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := CostOf(tt.clusters, tt.result)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("CostOf (-want +got):\n%s", diff)
			}
			if s := got.String(); s != tt.line {
				t.Errorf("String() = %q, want %q", s, tt.line)
			}
		})
	}
}
