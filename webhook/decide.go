// Package webhook is strata's validating admission webhook: every cluster
// runs one for its tier and denies any object whose data-sensitivity is not
// allowed there, whoever sends it, then the policies of policies/.
package webhook

import (
	"fmt"
	"slices"
	"strings"

	"github.com/strata-gitops/strata/internal/config"
	"github.com/strata-gitops/strata/internal/labels"
)

// Rules of the sensitivity check, as they appear in denials and metrics.
const (
	RuleTierNotAllowed     = "tier-not-allowed"
	RuleUnknownSensitivity = "unknown-sensitivity"
	RuleUnlabeled          = "unlabeled"
	RuleBreakGlassDenied   = "break-glass-not-allowed"
)

// ExcludedNamespaces are never checked: the control plane's and strata's own.
var ExcludedNamespaces = []string{"kube-system", "kube-public", "kube-node-lease", labels.SystemNamespace}

// exemptKinds are records the cluster writes about itself (events, leases):
// they carry no workload data and denying them would blind or stall the
// control plane, so the sensitivity check lets them through.
var exemptKinds = map[string]bool{"Event": true, "Lease": true}

// Subject is what the sensitivity check needs of one request.
type Subject struct {
	Kind      string
	Namespace string
	Name      string
	// ClusterScoped is true for objects outside any Namespace.
	ClusterScoped bool
	Labels        map[string]string
	// NamespaceLabels are the live Namespace's labels; nil when unknown.
	NamespaceLabels map[string]string
}

func (s Subject) String() string {
	if s.Namespace == "" {
		return s.Kind + " " + s.Name
	}
	return s.Kind + " " + s.Namespace + "/" + s.Name
}

// Check is the outcome of the sensitivity check.
type Check struct {
	Allowed     bool
	Rule        string
	Sensitivity config.Sensitivity
	Message     string
}

// Checker applies the tier table of one cluster.
type Checker struct {
	Cluster string
	Tier    config.Tier
	Tiers   map[config.Sensitivity][]config.Tier
	// DenyUnlabeled denies namespaced objects with no sensitivity at all.
	DenyUnlabeled bool
}

// NewChecker returns the checker of a cluster from strata.yaml.
func NewChecker(cfg *config.Config, cluster string, tier config.Tier) *Checker {
	return &Checker{Cluster: cluster, Tier: tier, Tiers: cfg.Tiers, DenyUnlabeled: slices.Contains(cfg.Webhook.DenyUnlabeledIn, tier)}
}

// Check decides whether s may exist in this cluster. Sensitivity is the
// higher of the object's label and its Namespace's (a Namespace is checked
// by its own label). Unlabeled Namespaces and cluster-scoped objects carry
// no data of their own and pass; unlabeled namespaced objects in
// unlabeled Namespaces pass unless DenyUnlabeled.
func (c *Checker) Check(s Subject) Check {
	if exemptKinds[s.Kind] || !s.ClusterScoped && slices.Contains(ExcludedNamespaces, s.Namespace) {
		return Check{Allowed: true}
	}
	own, hasOwn := s.Labels[labels.Sensitivity]
	if hasOwn && !config.Sensitivity(own).Valid() {
		return c.deny(RuleUnknownSensitivity, "", fmt.Sprintf("%s has label %s=%q, which is not a sensitivity; use one of %s",
			s, labels.Sensitivity, own, config.JoinSensitivities(config.Sensitivities)))
	}
	floor, hasFloor := "", false
	if !s.ClusterScoped {
		floor, hasFloor = s.NamespaceLabels[labels.Sensitivity]
		if hasFloor && !config.Sensitivity(floor).Valid() {
			return c.deny(RuleUnknownSensitivity, "", fmt.Sprintf("Namespace %s has label %s=%q, which is not a sensitivity: fix the Namespace's label (one of %s)",
				s.Namespace, labels.Sensitivity, floor, config.JoinSensitivities(config.Sensitivities)))
		}
	}
	var sens config.Sensitivity
	var from string
	switch {
	case hasOwn && hasFloor:
		sens, from = config.Max(config.Sensitivity(own), config.Sensitivity(floor)), "label on the object"
		if sens != config.Sensitivity(own) {
			from = "floor of Namespace " + s.Namespace
		}
	case hasOwn:
		sens, from = config.Sensitivity(own), "label on the object"
	case hasFloor:
		sens, from = config.Sensitivity(floor), "floor of Namespace "+s.Namespace
	case s.ClusterScoped:
		return Check{Allowed: true}
	case c.DenyUnlabeled:
		return c.deny(RuleUnlabeled, "", fmt.Sprintf("%s has no %s label and Namespace %s has none: the %s tier of cluster %s accepts only classified data; label the object or its Namespace (one of %s)",
			s, labels.Sensitivity, s.Namespace, c.Tier, c.Cluster, config.JoinSensitivities(config.Sensitivities)))
	default:
		return Check{Allowed: true}
	}
	allowed := c.Tiers[sens]
	if slices.Contains(allowed, c.Tier) {
		return Check{Allowed: true, Sensitivity: sens}
	}
	return c.deny(RuleTierNotAllowed, sens, fmt.Sprintf(
		"%s is %s (%s), but cluster %s is in tier %s and %s data is allowed only in %s: deploy it through strata, which places it in the %s tier (strata render shows where), or lower %s if the data really is less sensitive",
		s, sens, from, c.Cluster, c.Tier, sens, config.JoinTiers(allowed), strings.Join(tierNames(allowed), " or "), labels.Sensitivity))
}

func (c *Checker) deny(rule string, s config.Sensitivity, msg string) Check {
	return Check{Rule: rule, Sensitivity: s, Message: msg}
}

func tierNames(ts []config.Tier) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = string(t)
	}
	return out
}
