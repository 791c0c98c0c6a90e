package config

import (
	"sort"
	"time"
)

const (
	// DefaultMaxPrunePercent is the share of a cluster's objects one change may delete.
	DefaultMaxPrunePercent = 50
	// DefaultHealthTimeout bounds the health wait of a revision.
	DefaultHealthTimeout = 5 * time.Minute
)

// DefaultTiers is the tier table used when strata.yaml has no tiers: section.
// Each sensitivity's list is a subset of the one below it, cheapest first.
func DefaultTiers() map[Sensitivity][]Tier {
	return map[Sensitivity][]Tier{
		Public:       {PublicCloud, PrivateCloud, OnPrem},
		Internal:     {PrivateCloud, OnPrem},
		Confidential: {PrivateCloud, OnPrem},
		Restricted:   {OnPrem},
	}
}

// DefaultApprovals is the approval table used when strata.yaml has none.
func DefaultApprovals() map[Sensitivity]int {
	return map[Sensitivity]int{Public: 0, Internal: 1, Confidential: 1, Restricted: 2}
}

// DefaultDenyUnlabeledIn are the tiers whose webhook denies unlabeled objects.
func DefaultDenyUnlabeledIn() []Tier { return []Tier{PrivateCloud, OnPrem} }

// SetDefaults fills what strata.yaml left out.
func (c *Config) SetDefaults() {
	if c.Tiers == nil {
		c.Tiers = DefaultTiers()
	}
	if c.Approvals == nil {
		c.Approvals = DefaultApprovals()
	}
	if c.Webhook.DenyUnlabeledIn == nil {
		c.Webhook.DenyUnlabeledIn = DefaultDenyUnlabeledIn()
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
