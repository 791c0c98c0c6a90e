package config

import (
	"slices"
	"sort"
	"time"

	"github.com/strata-gitops/strata/internal/labels"
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

// DefaultExemptNamespaces are the namespaces the webhook never judges: the
// control plane's own and strata's.
func DefaultExemptNamespaces() []string {
	return append(slices.Clone(labels.ControlPlaneNamespaces), labels.SystemNamespace)
}

// SetDefaults fills what strata.yaml left out.
func (c *Config) SetDefaults() {
	if c.Tiers == nil {
		c.Tiers = DefaultTiers()
	}
	if c.Approvals.Required == nil {
		c.Approvals.Required = DefaultApprovals()
	}
	if c.Webhook.ExemptNamespaces == nil {
		c.Webhook.ExemptNamespaces = DefaultExemptNamespaces()
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
