// Package policy loads the Kyverno ValidatingPolicy files of a config
// repository's policies/ directory (policies.kyverno.io/v1, types from
// github.com/kyverno/api) and evaluates them with the Kubernetes CEL
// libraries, so that the webhook and `strata render`/`plan` give the verdict
// a real Kyverno gives for the same file.
//
// strata evaluates a subset of ValidatingPolicy: match constraints, match
// conditions, variables, validations, validation actions and failure policy.
// Everything else Kyverno offers (JSON evaluation mode, autogen, audit
// annotations, webhook settings, Kyverno's own CEL libraries such as
// resource.*, http.* or image.*) is a load error that names the file, the
// policy and the field — never silently ignored, because a policy that strata
// skips part of would allow what Kyverno denies.
//
// A policy is scoped to tiers by its own strata.dev/tiers annotation
// (comma-separated; absent means every tier).
package policy

import (
	"context"
	"slices"

	authenticationv1 "k8s.io/api/authentication/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/strata-gitops/strata/internal/config"
)

// Actions a verdict can carry, from spec.validationActions.
const (
	ActionDeny  = "Deny"
	ActionWarn  = "Warn"
	ActionAudit = "Audit"
)

// Set is a loaded, compiled set of policies. Safe for concurrent use.
type Set struct {
	policies []*compiledPolicy // sorted by name
}

// Input is one admission request (or, offline, one rendered object) to
// evaluate. Zero Kind, Resource, Name and NamespaceName are filled from the
// object (apiVersion, kind, metadata) so offline callers may leave them out.
type Input struct {
	Operation string         // CREATE, UPDATE, DELETE, CONNECT
	Object    map[string]any // unstructured; nil when absent (DELETE has no object)
	OldObject map[string]any // unstructured; nil when absent
	// Namespace is the namespace object (namespaceObject in CEL), nil for
	// cluster-scoped objects or when unknown.
	Namespace     map[string]any
	Resource      schema.GroupVersionResource // e.g. apps/v1 deployments; offline callers may use GuessResource
	SubResource   string
	Kind          schema.GroupVersionKind
	Name          string
	NamespaceName string
	DryRun        bool
	UserInfo      authenticationv1.UserInfo // request.userInfo
	Tier          config.Tier               // the cluster tier this evaluation is for; empty evaluates every policy
}

// Verdict is one failed validation (or one evaluation error, which fails
// closed) of one policy.
type Verdict struct {
	Policy string // policy name
	// Rule is where the failure is: "validations[0]", "matchConditions[name]"
	// or "matchConstraints".
	Rule string
	// Message is the validation's message (or messageExpression result), or,
	// for an evaluation error, what went wrong and what to fix.
	Message string
	// Action is Deny, Warn or Audit: the strongest of the policy's
	// validationActions.
	Action string
}

// Policies returns the names of the policies, sorted.
func (s *Set) Policies() []string {
	if s == nil {
		return nil
	}
	names := make([]string, len(s.policies))
	for i, p := range s.policies {
		names[i] = p.name
	}
	return names
}

// ForTier returns the names of the policies that apply in tier t, sorted.
func (s *Set) ForTier(t config.Tier) []string {
	if s == nil {
		return nil
	}
	var names []string
	for _, p := range s.policies {
		if p.appliesTo(t) {
			names = append(names, p.name)
		}
	}
	return names
}

// File returns the repository-relative file a policy was loaded from, or ""
// when there is no such policy.
func (s *Set) File(name string) string {
	if s == nil {
		return ""
	}
	for _, p := range s.policies {
		if p.name == name {
			return p.file
		}
	}
	return ""
}

// Evaluate returns one Verdict per failed validation of every policy that
// matches in and applies to in.Tier, in policy-name order. A CEL runtime error
// in a validation is a verdict as well (fail closed, as in Kyverno, whatever
// the failurePolicy); an error in a matchCondition is a verdict unless the
// policy's failurePolicy is Ignore. Evaluation is bounded by ctx, by
// EvaluationTimeout and by the Kubernetes per-expression cost limit.
func (s *Set) Evaluate(ctx context.Context, in Input) []Verdict {
	if s == nil || len(s.policies) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, EvaluationTimeout)
	defer cancel()
	req := newRequest(in)
	var out []Verdict
	for _, p := range s.policies {
		if !p.appliesTo(in.Tier) {
			continue
		}
		out = append(out, p.evaluate(ctx, req)...)
	}
	return out
}

// GuessResource maps a GroupVersionKind to its resource for offline
// evaluation (e.g. apps/v1 Deployment → apps/v1 deployments).
func GuessResource(gvk schema.GroupVersionKind) schema.GroupVersionResource {
	plural, _ := meta.UnsafeGuessKindToResource(gvk)
	return plural
}

func (p *compiledPolicy) appliesTo(t config.Tier) bool {
	return t == "" || p.tiers == nil || slices.Contains(p.tiers, t)
}
