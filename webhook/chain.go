package webhook

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/strata-gitops/strata/internal/audit"
	"github.com/strata-gitops/strata/internal/labels"
	"github.com/strata-gitops/strata/internal/placement"
	"github.com/strata-gitops/strata/internal/policy"
)

// The decision is a chain of small links, one concern each, in the manner
// of Kyverno's webhook handlers: ServeHTTP decodes (bounded) and hands an
// attempt to exemptions → sensitivity → policies → break-glass → respond.
// A link either answers or adds what it found to the attempt and calls the
// next; only respond turns the attempt into an answer and records it.

type response = admissionv1.AdmissionResponse

// decider answers one attempt.
type decider func(a *attempt) *response

// attempt is one admission request on its way through the chain.
type attempt struct {
	ctx context.Context
	req *request
	// object is the request's object as the decision core sees it.
	object placement.Object
	// namespace is the live Namespace for the policies (nil when none).
	namespace map[string]any
	class     placement.Classification
	denials   []denial
	warnings  []string
	// glass is set when break-glass let a denied request through.
	glass *BreakGlassEvent
}

type denial struct {
	rule placement.Rule
	msg  string
}

func (a *attempt) deny(rule placement.Rule, msg string) {
	a.denials = append(a.denials, denial{rule: rule, msg: msg})
}

func (a *attempt) dryRun() bool { return a.req.DryRun != nil && *a.req.DryRun }

func allow(warnings ...string) *response { return &response{Allowed: true, Warnings: warnings} }

// chain builds the handler's decision chain.
func (h *Handler) chain() decider {
	return h.exemptions(h.sensitivity(h.policies(h.breakGlass(h.respond))))
}

// exemptions admits, unjudged, what strata must never stand in the way of:
// DELETE (a revert must always be able to prune), the exempt namespaces,
// the control plane's own records (by exact group/version/kind) and updates
// that only remove finalizers of an object being deleted (else an object
// whose label became disallowed stays Terminating forever).
func (h *Handler) exemptions(next decider) decider {
	return func(a *attempt) *response {
		r := a.req
		switch {
		case r.Operation == admissionv1.Delete || r.Operation == admissionv1.Connect:
			return allow()
		case r.Namespace != "" && slices.Contains(h.Checker.ExemptNamespaces, r.Namespace):
			return allow()
		case placement.IsControlPlaneRecord(r.Kind.Group, r.Kind.Version, r.Kind.Kind):
			return allow()
		case r.Operation == admissionv1.Update && onlyRemovesFinalizers(r.OldObject, r.Object):
			return allow()
		}
		return next(a)
	}
}

// onlyRemovesFinalizers reports whether newObj differs from an old object
// that is being deleted (deletionTimestamp set) only by finalizers removed
// (and the bookkeeping the apiserver itself changes on every write).
func onlyRemovesFinalizers(oldObj, newObj map[string]any) bool {
	oldMD, _ := oldObj["metadata"].(map[string]any)
	newMD, _ := newObj["metadata"].(map[string]any)
	if oldMD == nil || newMD == nil || oldMD["deletionTimestamp"] == nil {
		return false
	}
	oldF, newF := stringList(oldMD["finalizers"]), stringList(newMD["finalizers"])
	if oldF == nil || newF == nil || len(newF) >= len(oldF) {
		return false
	}
	for _, f := range newF {
		if !slices.Contains(oldF, f) {
			return false
		}
	}
	strip := func(obj, md map[string]any) map[string]any {
		md = maps.Clone(md)
		for _, k := range []string{"finalizers", "managedFields", "resourceVersion"} {
			delete(md, k)
		}
		obj = maps.Clone(obj)
		obj["metadata"] = md
		return obj
	}
	return reflect.DeepEqual(strip(oldObj, oldMD), strip(newObj, newMD))
}

// stringList returns v as strings; nil when it is not a list of strings
// (an absent list is an empty one).
func stringList(v any) []string {
	if v == nil {
		return []string{}
	}
	l, ok := v.([]any)
	if !ok {
		return nil
	}
	out := make([]string, 0, len(l))
	for _, x := range l {
		s, ok := x.(string)
		if !ok {
			return nil
		}
		out = append(out, s)
	}
	return out
}

// policies evaluates the policies of policies/ and adds their denials and
// warnings.
func (h *Handler) policies(next decider) decider {
	return func(a *attempt) *response {
		if h.Policies == nil || a.req.Object == nil {
			return next(a)
		}
		r := a.req
		in := policy.Input{
			Operation: string(r.Operation), Object: r.Object, OldObject: r.OldObject, Namespace: a.namespace,
			Resource: schema.GroupVersionResource(r.Resource), SubResource: r.SubResource, Kind: schema.GroupVersionKind(r.Kind),
			Name: a.object.Name, NamespaceName: r.Namespace, DryRun: a.dryRun(), UserInfo: r.UserInfo, Tier: h.Checker.Tier,
		}
		for _, v := range h.Policies.Evaluate(a.ctx, in) {
			switch v.Action {
			case "Deny":
				a.deny(placement.Rule(v.Policy), fmt.Sprintf("policy %s (%s): %s", v.Policy, v.Rule, v.Message))
			case "Warn":
				a.warnings = append(a.warnings, fmt.Sprintf("policy %s: %s", v.Policy, v.Message))
			default:
				h.Log.Info("policy audit", "policy", v.Policy, "object", a.object.String(), "message", v.Message)
			}
		}
		return next(a)
	}
}

// breakGlass lets a denied request through when it carries a break-glass
// reason and comes from a member of the break-glass groups; an annotation
// that does not count is one more denial, saying why.
func (h *Handler) breakGlass(next decider) decider {
	return func(a *attempt) *response {
		reason, ok := a.object.Annotations[labels.BreakGlass]
		if len(a.denials) == 0 || !ok {
			return next(a)
		}
		u := a.req.UserInfo
		if strings.TrimSpace(reason) == "" || !slices.ContainsFunc(u.Groups, func(g string) bool { return slices.Contains(h.BreakGlassGroups, g) }) {
			a.deny(placement.RuleBreakGlassDenied, fmt.Sprintf(
				"%s=%q was ignored: break-glass needs a non-empty reason and membership in one of the groups %v (user %s is in %v)",
				labels.BreakGlass, reason, h.BreakGlassGroups, u.Username, u.Groups))
			return next(a)
		}
		a.glass = &BreakGlassEvent{
			Time: time.Now().UTC(), Cluster: h.Checker.Cluster, Tier: h.Checker.Tier, User: u.Username,
			Groups: u.Groups, Reason: reason, Operation: string(a.req.Operation), Object: a.object.String(),
			Namespace: a.req.Namespace, Bypassed: rulesOf(a.denials),
		}
		a.warnings = append(a.warnings, fmt.Sprintf("strata: break-glass by %s (%q) bypassed %s; this is recorded for audit",
			u.Username, reason, strings.Join(a.glass.Bypassed, ", ")))
		return next(a)
	}
}

// respond turns the attempt into the answer and records denials and
// break-glass (metrics, audit, log). A dry-run request is answered the same
// way but leaves no record: the registration promises sideEffects None.
func (h *Handler) respond(a *attempt) *response {
	dry := a.dryRun()
	if a.glass != nil {
		if !dry {
			h.Metrics.BreakGlass.WithLabelValues(string(h.Checker.Tier)).Inc()
			h.audit(audit.Event{Kind: audit.BreakGlass, Object: a.glass.Object, Actor: a.glass.User,
				Rule: strings.Join(a.glass.Bypassed, ","), Message: a.glass.Reason})
			h.Log.Warn("break-glass", "cluster", a.glass.Cluster, "tier", a.glass.Tier, "user", a.glass.User, "reason", a.glass.Reason,
				"object", a.glass.Object, "operation", a.glass.Operation, "bypassed", a.glass.Bypassed)
			if h.Recorder != nil {
				h.Recorder.RecordBreakGlass(a.ctx, *a.glass)
			}
		}
		return allow(a.warnings...)
	}
	if len(a.denials) == 0 {
		return allow(a.warnings...)
	}
	msgs := make([]string, len(a.denials))
	for i, d := range a.denials {
		msgs[i] = d.msg
		if !dry {
			h.Metrics.Denials.WithLabelValues(string(d.rule), string(h.Checker.Tier)).Inc()
			h.audit(audit.Event{Kind: audit.Denial, Rule: string(d.rule), Object: a.object.String(), Actor: a.req.UserInfo.Username,
				Sensitivity: string(a.class.Level), Message: d.msg})
		}
	}
	level := h.Log.Info
	if dry {
		level = h.Log.Debug
	}
	level("denied", "cluster", h.Checker.Cluster, "object", a.object.String(), "operation", a.req.Operation,
		"user", a.req.UserInfo.Username, "dryRun", dry, "rules", rulesOf(a.denials))
	return &response{Allowed: false, Warnings: a.warnings, Result: &metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusForbidden, Reason: metav1.StatusReasonForbidden,
		Message: "strata: " + strings.Join(msgs, "; "),
	}}
}

func rulesOf(ds []denial) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = string(d.rule)
	}
	return out
}
