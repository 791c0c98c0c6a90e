// Package config holds strata's configuration files: strata.yaml (kind
// Config) and .strata/trust.yaml (kind Trust), their types, defaults,
// loading and validation. Every validation error names the file, the field
// path and what is allowed.
package config

import (
	"fmt"
	"strings"
	"time"
)

const (
	// APIVersion is the apiVersion of strata's own files.
	APIVersion = "strata.dev/v1alpha1"
	// ConfigKind is the kind of strata.yaml.
	ConfigKind = "Config"
	// TrustKind is the kind of .strata/trust.yaml.
	TrustKind = "Trust"

	// ConfigFile is the path of strata.yaml inside the config repository.
	ConfigFile = "strata.yaml"
	// TrustFile is the path of the trust file inside the config repository.
	TrustFile = ".strata/trust.yaml"
)

// Sensitivity is a data classification. Its order is fixed:
// public < internal < confidential < restricted.
type Sensitivity string

const (
	Public       Sensitivity = "public"
	Internal     Sensitivity = "internal"
	Confidential Sensitivity = "confidential"
	Restricted   Sensitivity = "restricted"
)

// Sensitivities lists every sensitivity from lowest to highest.
var Sensitivities = []Sensitivity{Public, Internal, Confidential, Restricted}

// Rank returns the position of s in Sensitivities, or -1 when s is unknown.
func (s Sensitivity) Rank() int {
	for i, v := range Sensitivities {
		if v == s {
			return i
		}
	}
	return -1
}

// Valid reports whether s is a known sensitivity.
func (s Sensitivity) Valid() bool { return s.Rank() >= 0 }

// ParseSensitivity returns the sensitivity named v or an error saying what is allowed.
func ParseSensitivity(v string) (Sensitivity, error) {
	s := Sensitivity(v)
	if !s.Valid() {
		return "", fmt.Errorf("unknown sensitivity %q: allowed values are %s", v, JoinSensitivities(Sensitivities))
	}
	return s, nil
}

// Max returns the higher of a and b.
func Max(a, b Sensitivity) Sensitivity {
	if a.Rank() >= b.Rank() {
		return a
	}
	return b
}

// Tier is the kind of infrastructure a cluster is.
type Tier string

const (
	PublicCloud  Tier = "public-cloud"
	PrivateCloud Tier = "private-cloud"
	OnPrem       Tier = "on-prem"
)

// KnownTiers lists every tier.
var KnownTiers = []Tier{PublicCloud, PrivateCloud, OnPrem}

// Valid reports whether t is a known tier.
func (t Tier) Valid() bool {
	for _, k := range KnownTiers {
		if k == t {
			return true
		}
	}
	return false
}

// JoinTiers formats tiers as "[a b c]" for messages and reasons.
func JoinTiers(ts []Tier) string {
	s := make([]string, len(ts))
	for i, t := range ts {
		s[i] = string(t)
	}
	return "[" + strings.Join(s, " ") + "]"
}

// JoinSensitivities formats sensitivities as "public, internal, …".
func JoinSensitivities(ss []Sensitivity) string {
	s := make([]string, len(ss))
	for i, v := range ss {
		s[i] = string(v)
	}
	return strings.Join(s, ", ")
}

// Config is strata.yaml.
type Config struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	// Tiers maps each sensitivity to its allowed tiers, most preferred first.
	Tiers map[Sensitivity][]Tier `json:"tiers,omitempty"`
	// Environments maps an environment name to its overlay and clusters.
	Environments map[string]Environment `json:"environments"`
	// Approvals is the number of signed approvals a change needs, keyed by
	// the highest sensitivity it touches, and how the gate enforces them.
	Approvals Approvals `json:"approvals,omitzero"`
	Rollout   Rollout   `json:"rollout,omitempty"`
	Webhook   Webhook   `json:"webhook,omitempty"`
	// Windows add Kustomize components to environments while they are open.
	Windows map[string]Window `json:"windows,omitempty"`
	// Audit bounds the audit log each cluster keeps.
	Audit   Audit   `json:"audit,omitzero"`
	Secrets Secrets `json:"secrets,omitzero"`
}

// Environment is one overlay and the clusters it is deployed to.
type Environment struct {
	Path     string    `json:"path"`
	Clusters []Cluster `json:"clusters"`
}

// Cluster is a Kubernetes API endpoint of an environment.
type Cluster struct {
	Name string `json:"name"`
	Tier Tier   `json:"tier"`
	// Cost is the cluster's monthly cost in relative units (lower is
	// cheaper); render and plan report it (placement.CostOf). Tier
	// preference comes from the tiers table, never from cost.
	Cost int `json:"cost,omitempty"`
}

// Rollout holds the reconciler's safety settings.
type Rollout struct {
	// MaxPrunePercent refuses a change that deletes more than this share of a
	// cluster's objects unless overridden.
	MaxPrunePercent *int `json:"maxPrunePercent,omitempty"`
	// HealthTimeout bounds the health wait of a revision.
	HealthTimeout Duration `json:"healthTimeout,omitempty"`
	// AutoRevert reverts a revision that fails health with a commit of its own.
	AutoRevert bool `json:"autoRevert,omitempty"`
	// AllowNonFastForward accepts history rewrites (force-push) of the branch.
	AllowNonFastForward bool `json:"allowNonFastForward,omitempty"`
}

// Webhook holds admission settings shared by every cluster's webhook.
type Webhook struct {
	// BreakGlassGroups may bypass denials with the break-glass annotation.
	BreakGlassGroups []string `json:"breakGlassGroups,omitempty"`
	// ExemptNamespaces are never judged: the webhook registration skips them
	// and the webhook admits what is in them. Everywhere else an object with
	// no sensitivity is denied, in every tier (fail closed). Default:
	// DefaultExemptNamespaces, the control plane's and strata's namespaces.
	ExemptNamespaces []string `json:"exemptNamespaces,omitempty"`
}

// Duration is a time.Duration written as "5m" in YAML.
type Duration struct{ time.Duration }

// UnmarshalJSON reads a duration string such as "90s" or "5m".
func (d *Duration) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "" || s == "null" {
		d.Duration = 0
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("invalid duration %q: use a Go duration such as 90s or 5m", s)
	}
	d.Duration = v
	return nil
}

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return []byte(`"` + d.String() + `"`), nil }

// Environment returns the named environment or an error listing the known ones.
func (c *Config) Environment(name string) (Environment, error) {
	env, ok := c.Environments[name]
	if !ok {
		return Environment{}, fmt.Errorf("environment %q is not in %s: known environments are %s; add it under environments: or pick one of those",
			name, ConfigFile, strings.Join(c.EnvironmentNames(), ", "))
	}
	return env, nil
}

// EnvironmentNames returns the environment names, sorted.
func (c *Config) EnvironmentNames() []string {
	return sortedKeys(c.Environments)
}

// MaxPrunePercent returns the configured prune limit or its default.
func (r Rollout) MaxPrunePercentOrDefault() int {
	if r.MaxPrunePercent == nil {
		return DefaultMaxPrunePercent
	}
	return *r.MaxPrunePercent
}

// HealthTimeoutOrDefault returns the health timeout or its default.
func (r Rollout) HealthTimeoutOrDefault() time.Duration {
	if r.HealthTimeout.Duration == 0 {
		return DefaultHealthTimeout
	}
	return r.HealthTimeout.Duration
}
