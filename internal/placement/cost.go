package placement

import (
	"fmt"
	"strings"

	"github.com/strata-gitops/strata/internal/config"
)

// TierCost is what one tier of an environment costs for a placement: the
// clusters of the tier that receive at least one object and the sum of
// their strata.yaml cost. A cluster's cost is in relative monthly cost
// units (strata.yaml clusters[].cost: what running the cluster costs a
// month, relative to the others); a cluster that receives nothing is not
// counted.
type TierCost struct {
	Tier     config.Tier `json:"tier"`
	Clusters []string    `json:"clusters"`
	Cost     int         `json:"cost"`
	// Unpriced are clusters of the tier receiving objects whose cost is 0
	// or not set, so that their sum is not read as complete.
	Unpriced []string `json:"unpriced,omitempty"`
}

// Cost is the monthly cost of an environment's placement, per tier.
type Cost struct {
	// Tiers lists the tiers that receive objects, in config.KnownTiers
	// order (public-cloud, private-cloud, on-prem).
	Tiers []TierCost `json:"tiers"`
	Total int        `json:"total"`
	// Idle are clusters that receive nothing (not counted).
	Idle []string `json:"idle,omitempty"`
}

// CostOf sums, per tier, the cost of the clusters that r places objects
// in. It is pure: clusters are the environment's, in strata.yaml order.
func CostOf(clusters []config.Cluster, r *Result) Cost {
	used := map[string]bool{}
	if r != nil {
		for _, d := range r.Decisions {
			for _, c := range d.Clusters {
				used[c] = true
			}
		}
	}
	byTier := map[config.Tier]*TierCost{}
	var out Cost
	for _, c := range clusters {
		if !used[c.Name] {
			out.Idle = append(out.Idle, c.Name)
			continue
		}
		tc := byTier[c.Tier]
		if tc == nil {
			tc = &TierCost{Tier: c.Tier, Clusters: []string{}}
			byTier[c.Tier] = tc
		}
		tc.Clusters = append(tc.Clusters, c.Name)
		tc.Cost += c.Cost
		if c.Cost == 0 {
			tc.Unpriced = append(tc.Unpriced, c.Name)
		}
		out.Total += c.Cost
	}
	out.Tiers = []TierCost{}
	for _, t := range config.KnownTiers {
		if tc := byTier[t]; tc != nil {
			out.Tiers = append(out.Tiers, *tc)
			delete(byTier, t)
		}
	}
	for _, c := range clusters { // tiers strata does not know, in strata.yaml order
		if tc := byTier[c.Tier]; tc != nil {
			out.Tiers = append(out.Tiers, *tc)
			delete(byTier, c.Tier)
		}
	}
	return out
}

// String is the one-line form render and plan print:
// "public-cloud 1 (public) + on-prem 5 (onprem) = 6".
func (c Cost) String() string {
	if len(c.Tiers) == 0 {
		return "0 (no cluster receives objects)"
	}
	parts := make([]string, len(c.Tiers))
	for i, t := range c.Tiers {
		parts[i] = fmt.Sprintf("%s %d (%s)", t.Tier, t.Cost, strings.Join(t.Clusters, ", "))
		if len(t.Unpriced) > 0 {
			parts[i] += fmt.Sprintf(" [no cost set: %s]", strings.Join(t.Unpriced, ", "))
		}
	}
	return fmt.Sprintf("%s = %d", strings.Join(parts, " + "), c.Total)
}
