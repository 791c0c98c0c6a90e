package plan

import (
	"fmt"
	"slices"
	"strings"

	"github.com/strata-gitops/strata/internal/config"
	"github.com/strata-gitops/strata/internal/desired"
	"github.com/strata-gitops/strata/internal/placement"
)

// costOf is a state's monthly cost per tier; nil for an absent state.
func costOf(st *desired.State) *placement.Cost {
	if st == nil {
		return nil
	}
	c := placement.CostOf(st.Clusters, st.Placement)
	return &c
}

// writeCost writes, per environment and tier, the monthly cost of the
// clusters receiving objects at base and at head, so that a reviewer sees
// what a change of sensitivity or of tiers costs.
func writeCost(b *strings.Builder, envs []*Environment) {
	if !slices.ContainsFunc(envs, func(e *Environment) bool { return e.Cost != nil || e.BaseCost != nil }) {
		return
	}
	b.WriteString("\n### Monthly cost\n\nRelative units per cluster (strata.yaml `clusters[].cost`), summed over the clusters that receive objects.\n\n")
	b.WriteString("| environment | tier | clusters (head) | base | head | change |\n|---|---|---|---|---|---|\n")
	for _, e := range envs {
		for _, t := range tiersOf(e.BaseCost, e.Cost) {
			bt, ht := tierOf(e.BaseCost, t), tierOf(e.Cost, t)
			clusters := "-"
			if ht != nil {
				clusters = strings.Join(ht.Clusters, ", ")
				if len(ht.Unpriced) > 0 {
					clusters += " (no cost set: " + strings.Join(ht.Unpriced, ", ") + ")"
				}
			}
			fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s |\n", e.Name, t, clusters, costCell(bt), costCell(ht), delta(costValue(bt), costValue(ht)))
		}
		bt, ht := totalOf(e.BaseCost), totalOf(e.Cost)
		fmt.Fprintf(b, "| %s | **total** | | %s | %s | %s |\n", e.Name, totalCell(e.BaseCost), totalCell(e.Cost), delta(bt, ht))
	}
}

// tiersOf lists the tiers either side uses, in config.KnownTiers order.
func tiersOf(cs ...*placement.Cost) []config.Tier {
	seen := map[config.Tier]bool{}
	for _, c := range cs {
		if c == nil {
			continue
		}
		for _, t := range c.Tiers {
			seen[t.Tier] = true
		}
	}
	var out, unknown []config.Tier
	for _, t := range config.KnownTiers {
		if seen[t] {
			out = append(out, t)
			delete(seen, t)
		}
	}
	for t := range seen {
		unknown = append(unknown, t)
	}
	slices.Sort(unknown)
	return append(out, unknown...)
}

func tierOf(c *placement.Cost, t config.Tier) *placement.TierCost {
	if c == nil {
		return nil
	}
	for i := range c.Tiers {
		if c.Tiers[i].Tier == t {
			return &c.Tiers[i]
		}
	}
	return nil
}

func costValue(t *placement.TierCost) int {
	if t == nil {
		return 0
	}
	return t.Cost
}

func costCell(t *placement.TierCost) string {
	if t == nil {
		return "-"
	}
	return fmt.Sprint(t.Cost)
}

func totalOf(c *placement.Cost) int {
	if c == nil {
		return 0
	}
	return c.Total
}

func totalCell(c *placement.Cost) string {
	if c == nil {
		return "-"
	}
	return fmt.Sprintf("**%d**", c.Total)
}

func delta(base, head int) string {
	switch d := head - base; {
	case d > 0:
		return fmt.Sprintf("+%d", d)
	case d < 0:
		return fmt.Sprint(d)
	}
	return "±0"
}
