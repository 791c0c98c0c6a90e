// Package placement decides, for every rendered object, which clusters of an
// environment receive it, from its data-sensitivity and the tier table. It is
// pure: data in, decisions and violations with reasons out. No I/O, no clock.
package placement

import (
	"fmt"
	"strings"

	"github.com/strata-gitops/strata/internal/config"
)

// Object is what placement needs to know of one rendered object.
type Object struct {
	Group     string
	Kind      string
	Namespace string
	Name      string
	// ClusterScoped is true for objects that live outside any Namespace.
	ClusterScoped bool
	Labels        map[string]string
	Annotations   map[string]string
	// TemplateLabels are the labels of the templates a workload creates
	// objects from (see TemplateLabels); they count towards its sensitivity.
	TemplateLabels []map[string]string
	// DefinesGroup and DefinesKind are set on a CustomResourceDefinition to
	// the group and kind it serves, so that it can follow its resources.
	DefinesGroup string
	DefinesKind  string
	// ClaimNamespace is, for a PersistentVolume bound to a claim, the
	// claim's Namespace (see ClaimNamespace): its floor.
	ClaimNamespace string
	// Source is the file the object came from, when known, for messages.
	Source string
}

// Floor names the Namespace whose label is the object's floor: its own for
// a namespaced object, its claim's for a bound PersistentVolume, "" for
// other cluster-scoped objects (and for a Namespace itself).
func (o Object) Floor() string {
	switch {
	case o.isNamespace():
		return ""
	case o.ClusterScoped:
		return o.ClaimNamespace
	}
	return o.Namespace
}

// String names the object as "Kind namespace/name" (or "Kind name").
func (o Object) String() string {
	if o.Namespace == "" {
		return o.Kind + " " + o.Name
	}
	return o.Kind + " " + o.Namespace + "/" + o.Name
}

func (o Object) isNamespace() bool { return o.Group == "" && o.Kind == "Namespace" }

func (o Object) isCRD() bool {
	return o.Group == "apiextensions.k8s.io" && o.Kind == "CustomResourceDefinition"
}

// Input is everything one placement needs.
type Input struct {
	// Environment names the environment, for reasons and messages.
	Environment string
	// Tiers maps each sensitivity to its allowed tiers in order of preference.
	Tiers map[config.Sensitivity][]config.Tier
	// Clusters are the environment's clusters, in the order of strata.yaml.
	Clusters []config.Cluster
	// Healthy is the set of reachable clusters; nil means all are healthy.
	Healthy map[string]bool
	Objects []Object
}

// Decision is where one object goes and why.
type Decision struct {
	// Index is the object's position in Input.Objects.
	Index  int
	Object Object
	// Sensitivity is the effective sensitivity ("" for an unlabeled Namespace
	// or CRD that only follows its contents).
	Sensitivity config.Sensitivity
	// Contents is, for a Namespace or CRD that follows its contents, the
	// highest sensitivity among them.
	Contents config.Sensitivity
	// Tiers holds the chosen tier; a Namespace or CRD that follows its
	// contents may span several.
	Tiers    []config.Tier
	Clusters []string
	// Reason is the one-line explanation shown by render, plan, status, events
	// and the strata.dev/placement annotation.
	Reason string
}

// Touches is the sensitivity a change to the object touches: its own, or
// for an unlabeled Namespace or CRD that follows its contents the highest of
// those contents; restricted when neither is known (fail closed).
func (d Decision) Touches() config.Sensitivity {
	switch {
	case d.Sensitivity != "":
		return d.Sensitivity
	case d.Contents != "":
		return d.Contents
	}
	return config.Restricted
}

// Rule names the rule a violation (render, plan) or a denial (webhook)
// breaks. It is the one set of names shown in messages, audit events and
// the webhook's metrics.
type Rule string

const (
	RuleUnlabeled          Rule = "unlabeled"
	RuleUnknownSensitivity Rule = "unknown-sensitivity"
	// RuleNamespaceUnknown: the webhook could not read the object's Namespace.
	RuleNamespaceUnknown Rule = "namespace-unknown"
	// RuleMalformedObject: the webhook got no object it could read.
	RuleMalformedObject Rule = "malformed-object"
	// RuleBreakGlassDenied: a break-glass annotation that does not count.
	RuleBreakGlassDenied  Rule = "break-glass-not-allowed"
	RuleUnknownTier       Rule = "unknown-tier"
	RuleTierNotAllowed    Rule = "tier-not-allowed"
	RuleUnknownCluster    Rule = "unknown-cluster"
	RuleClusterNotAllowed Rule = "cluster-not-allowed"
	RuleNoCluster         Rule = "no-cluster"
	RuleInvalidAnnotation Rule = "invalid-annotation"
)

// Violation is an object that cannot be placed, the rule it breaks and what
// to do about it. Such an object is never applied anywhere.
type Violation struct {
	Index   int
	Object  Object
	Rule    Rule
	Message string
}

func (v Violation) String() string {
	if v.Object.Source != "" {
		return fmt.Sprintf("%s (%s): [%s] %s", v.Object, v.Object.Source, v.Rule, v.Message)
	}
	return fmt.Sprintf("%s: [%s] %s", v.Object, v.Rule, v.Message)
}

// Result holds a decision or at least one violation for every object.
type Result struct {
	Environment string
	Decisions   []Decision
	Violations  []Violation
}

// ForCluster returns the decisions that send an object to cluster, in input order.
func (r *Result) ForCluster(cluster string) []Decision {
	var out []Decision
	for _, d := range r.Decisions {
		for _, c := range d.Clusters {
			if c == cluster {
				out = append(out, d)
				break
			}
		}
	}
	return out
}

// Err returns a *ViolationsError listing every violation, or nil.
func (r *Result) Err() error {
	if len(r.Violations) == 0 {
		return nil
	}
	return &ViolationsError{Environment: r.Environment, Violations: r.Violations}
}

// ViolationsError reports every object that cannot be placed.
type ViolationsError struct {
	Environment string
	Violations  []Violation
}

func (e *ViolationsError) Error() string {
	var b strings.Builder
	objs := map[int]bool{}
	for _, v := range e.Violations {
		objs[v.Index] = true
	}
	noun := "objects"
	if len(objs) == 1 {
		noun = "object"
	}
	fmt.Fprintf(&b, "%d %s cannot be placed in environment %s; nothing was applied or written:", len(objs), noun, e.Environment)
	for _, v := range e.Violations {
		b.WriteString("\n  ")
		b.WriteString(v.String())
	}
	return b.String()
}
