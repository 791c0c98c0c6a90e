package policy

import (
	"context"
	"fmt"
	"math"
	"strings"

	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/interpreter"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	k8slabels "k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/cel/lazy"
)

// namespaceNameLabel is set by the API server on every Namespace.
const namespaceNameLabel = "kubernetes.io/metadata.name"

var namespacesResource = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}

// request is an Input prepared once for every policy of an Evaluate call.
type request struct {
	op          string
	resource    schema.GroupVersionResource
	subResource string
	name        string
	namespace   string
	generate    string // metadata.generateName of the object

	object, oldObject map[string]any
	objectLabels      map[string]string
	oldObjectLabels   map[string]string
	namespaceObject   map[string]any // nil when unknown
	namespaceLabels   map[string]string

	// vals holds the CEL values of object, oldObject, request and
	// namespaceObject (untyped nil for null).
	vals map[string]any
}

func newRequest(in Input) *request {
	r := &request{
		op:          in.Operation,
		subResource: in.SubResource,
		object:      normalize(in.Object),
		oldObject:   normalize(in.OldObject),
	}
	src := r.object
	if src == nil {
		src = r.oldObject
	}
	kind := in.Kind
	if kind.Empty() && src != nil {
		apiVersion, _ := src["apiVersion"].(string)
		k, _ := src["kind"].(string)
		kind = schema.FromAPIVersionAndKind(apiVersion, k)
	}
	r.resource = in.Resource
	if r.resource.Empty() && !kind.Empty() {
		r.resource = GuessResource(kind)
	}
	md, _ := src["metadata"].(map[string]any)
	r.name = in.Name
	if r.name == "" {
		r.name, _ = md["name"].(string)
	}
	r.namespace = in.NamespaceName
	if r.namespace == "" {
		r.namespace, _ = md["namespace"].(string)
	}
	if r.resource == namespacesResource && r.namespace == "" {
		// the API server sets the namespace of a Namespace request to its name
		r.namespace = r.name
	}
	if omd, _ := r.object["metadata"].(map[string]any); omd != nil {
		r.generate, _ = omd["generateName"].(string)
	}
	r.objectLabels = labelsOf(r.object)
	r.oldObjectLabels = labelsOf(r.oldObject)
	r.namespaceObject, r.namespaceLabels = liveNamespace(normalize(in.Namespace))

	req := map[string]any{
		"uid":             "",
		"kind":            gvkMap(kind),
		"resource":        gvrMap(r.resource),
		"requestKind":     gvkMap(kind),
		"requestResource": gvrMap(r.resource),
		"operation":       in.Operation,
		"userInfo":        userInfoMap(in),
		"dryRun":          in.DryRun,
	}
	if r.subResource != "" {
		req["subResource"] = r.subResource
		req["requestSubResource"] = r.subResource
	}
	if r.name != "" {
		req["name"] = r.name
	}
	if r.namespace != "" {
		req["namespace"] = r.namespace
	}
	r.vals = map[string]any{varObject: nil, varOldObject: nil, varNamespaceObject: nil, varRequest: req}
	if r.object != nil {
		r.vals[varObject] = r.object
		req[varObject] = r.object
	}
	if r.oldObject != nil {
		r.vals[varOldObject] = r.oldObject
		req[varOldObject] = r.oldObject
	}
	if r.namespaceObject != nil {
		r.vals[varNamespaceObject] = r.namespaceObject
	}
	return r
}

func gvkMap(k schema.GroupVersionKind) map[string]any {
	return map[string]any{"group": k.Group, "version": k.Version, "kind": k.Kind}
}

func gvrMap(r schema.GroupVersionResource) map[string]any {
	return map[string]any{"group": r.Group, "version": r.Version, "resource": r.Resource}
}

// userInfoMap is request.userInfo as the API server serializes it (empty
// fields omitted).
func userInfoMap(in Input) map[string]any {
	u := map[string]any{}
	if in.UserInfo.Username != "" {
		u["username"] = in.UserInfo.Username
	}
	if in.UserInfo.UID != "" {
		u["uid"] = in.UserInfo.UID
	}
	if len(in.UserInfo.Groups) > 0 {
		g := make([]any, len(in.UserInfo.Groups))
		for i, v := range in.UserInfo.Groups {
			g[i] = v
		}
		u["groups"] = g
	}
	if len(in.UserInfo.Extra) > 0 {
		x := map[string]any{}
		for k, vs := range in.UserInfo.Extra {
			l := make([]any, len(vs))
			for i, v := range vs {
				l[i] = v
			}
			x[k] = l
		}
		u["extra"] = x
	}
	return u
}

func labelsOf(obj map[string]any) map[string]string {
	md, _ := obj["metadata"].(map[string]any)
	raw, _ := md["labels"].(map[string]any)
	if len(raw) == 0 {
		return nil
	}
	out := make(map[string]string, len(raw))
	for k, v := range raw {
		if s, ok := v.(string); ok {
			out[k] = s
		}
	}
	return out
}

// liveNamespace returns ns as the API server has it: with the
// kubernetes.io/metadata.name label, which every live Namespace carries.
func liveNamespace(ns map[string]any) (map[string]any, map[string]string) {
	if ns == nil {
		return nil, nil
	}
	md, _ := ns["metadata"].(map[string]any)
	name, _ := md["name"].(string)
	l := labelsOf(ns)
	if name == "" || l[namespaceNameLabel] == name {
		return ns, l
	}
	if l == nil {
		l = map[string]string{}
	}
	l[namespaceNameLabel] = name
	rawLabels := make(map[string]any, len(l))
	for k, v := range l {
		rawLabels[k] = v
	}
	newMD := make(map[string]any, len(md)+1)
	for k, v := range md {
		newMD[k] = v
	}
	newMD["labels"] = rawLabels
	out := make(map[string]any, len(ns))
	for k, v := range ns {
		out[k] = v
	}
	out["metadata"] = newMD
	return out, l
}

// normalize returns obj with whole float64 numbers as int64 and other
// integer types as int64, as the API server's JSON decoder produces them
// (encoding/json and YAML decoders give float64 or int). obj is not modified;
// it is returned as is when nothing needs converting.
func normalize(obj map[string]any) map[string]any {
	if obj == nil {
		return nil
	}
	if v, changed := normalizeValue(obj); changed {
		return v.(map[string]any)
	}
	return obj
}

func normalizeValue(v any) (any, bool) {
	switch x := v.(type) {
	case map[string]any:
		var out map[string]any
		for k, e := range x {
			if n, changed := normalizeValue(e); changed {
				if out == nil {
					out = make(map[string]any, len(x))
					for k2, e2 := range x {
						out[k2] = e2
					}
				}
				out[k] = n
			}
		}
		if out == nil {
			return x, false
		}
		return out, true
	case []any:
		var out []any
		for i, e := range x {
			if n, changed := normalizeValue(e); changed {
				if out == nil {
					out = append([]any(nil), x...)
				}
				out[i] = n
			}
		}
		if out == nil {
			return x, false
		}
		return out, true
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return int64(x), true
		}
		return x, false
	case float32:
		return normalizeValue(float64(x))
	case int:
		return int64(x), true
	case int32:
		return int64(x), true
	case uint64:
		if x <= math.MaxInt64 {
			return int64(x), true
		}
		return x, false
	case []string:
		out := make([]any, len(x))
		for i, s := range x {
			out[i] = s
		}
		return out, true
	case map[string]string:
		out := make(map[string]any, len(x))
		for k, s := range x {
			out[k] = s
		}
		return out, true
	}
	return v, false
}

// activation resolves the CEL variables of one policy evaluation.
type activation struct {
	vals      map[string]any
	variables *lazy.MapValue // nil while match conditions run
}

func (a *activation) ResolveName(name string) (any, bool) {
	if name == varVariables {
		if a.variables == nil {
			return nil, false
		}
		return a.variables, true
	}
	v, ok := a.vals[name]
	return v, ok
}

func (a *activation) Parent() interpreter.Activation { return nil }

func (p *compiledPolicy) evaluate(ctx context.Context, r *request) []Verdict {
	matched, err := p.matches(r)
	if err != nil {
		return []Verdict{p.verdict("matchConstraints", fmt.Sprintf(
			"could not decide whether the policy applies: %v; strata fails closed: make the request's namespace known to strata", err))}
	}
	if !matched {
		return nil
	}
	act := &activation{vals: r.vals}
	if apply, v := p.runMatchConditions(ctx, act); !apply {
		return v
	}
	act.variables = lazy.NewMapValue(variablesType)
	for _, v := range p.variables {
		prog, name := v.prog, v.name
		act.variables.Append(name, func(*lazy.MapValue) ref.Val {
			out, _, err := prog.ContextEval(ctx, act)
			if err != nil {
				return types.NewErr("variable %q: %v", name, err)
			}
			return out
		})
	}
	var out []Verdict
	for i, v := range p.validations {
		rule := fmt.Sprintf("validations[%d]", i)
		res, _, err := v.prog.ContextEval(ctx, act)
		if err != nil {
			out = append(out, p.verdict(rule, fmt.Sprintf(
				"the expression could not be evaluated (%v); strata fails closed, as Kyverno does: "+
					"fix the object, or make the policy's expression handle it (e.g. guard optional fields with has())", err)))
			continue
		}
		if ok, isBool := res.Value().(bool); !isBool || ok {
			continue
		}
		out = append(out, p.verdict(rule, v.failureMessage(ctx, act, i)))
	}
	return out
}

func (p *compiledPolicy) verdict(rule, msg string) Verdict {
	return Verdict{Policy: p.name, Rule: rule, Message: msg, Action: p.action}
}

// failureMessage is the message of a failed validation: messageExpression's
// result, else message, else a description of the expression.
func (v compiledValidation) failureMessage(ctx context.Context, act *activation, i int) string {
	msg := v.message
	if v.messageProg != nil {
		res, _, err := v.messageProg.ContextEval(ctx, act)
		if err != nil {
			msg = fmt.Sprintf("failed to evaluate message expression: %v", err)
		} else if s, ok := res.Value().(string); !ok {
			msg = fmt.Sprintf("failed to convert message expression to string: got %T", res.Value())
		} else {
			msg = s
		}
	}
	if strings.TrimSpace(msg) == "" {
		msg = fmt.Sprintf("CEL expression validation failed at index %d: %s", i, v.expression)
	}
	return msg
}

// runMatchConditions evaluates spec.matchConditions as Kyverno does: the
// policy applies when all are true; a false one skips it; an error (with none
// false) skips it under failurePolicy Ignore and is a verdict under Fail.
func (p *compiledPolicy) runMatchConditions(ctx context.Context, act *activation) (bool, []Verdict) {
	var errs []string
	var first string
	for _, c := range p.matchConditions {
		res, _, err := c.prog.ContextEval(ctx, act)
		if err != nil {
			if first == "" {
				first = c.name
			}
			errs = append(errs, fmt.Sprintf("%s: %v", c.name, err))
			continue
		}
		if ok, isBool := res.Value().(bool); isBool && !ok {
			return false, nil
		}
	}
	if len(errs) == 0 {
		return true, nil
	}
	if p.ignoreFailure {
		return false, nil
	}
	return false, []Verdict{p.verdict(fmt.Sprintf("matchConditions[%s]", first), fmt.Sprintf(
		"could not decide whether the policy applies (%s); strata fails closed (failurePolicy Fail): "+
			"make the match condition handle this object, or set failurePolicy: Ignore to skip the policy on such errors",
		strings.Join(errs, "; ")))}
}

// matches applies spec.matchConstraints as Kyverno does: namespace selector,
// object selector, exclusions, then the resource rules; a namespace selector
// error only counts when the rules match.
func (p *compiledPolicy) matches(r *request) (bool, error) {
	nsMatch, nsErr := p.matchNamespace(r)
	if !nsMatch && nsErr == nil {
		return false, nil
	}
	if !p.objectSelector.Empty() &&
		!(r.object != nil && p.objectSelector.Matches(k8slabels.Set(r.objectLabels))) &&
		!(r.oldObject != nil && p.objectSelector.Matches(k8slabels.Set(r.oldObjectLabels))) {
		return false, nil
	}
	if matchesRules(p.excludes, r) {
		return false, nil
	}
	if !matchesRules(p.rules, r) {
		return false, nil
	}
	return nsErr == nil, nsErr
}

func (p *compiledPolicy) matchNamespace(r *request) (bool, error) {
	if r.namespace == "" && r.resource.Resource != "namespaces" {
		return true, nil // cluster-scoped objects are never exempted
	}
	if p.namespaceSelector.Empty() {
		return true, nil
	}
	var l map[string]string
	switch {
	case r.resource.Resource == "namespaces" && r.subResource == "" && (r.op == "CREATE" || r.op == "UPDATE"):
		l = r.objectLabels
	case r.namespaceObject == nil:
		// like Kyverno without a live Namespace: only the name label
		l = map[string]string{namespaceNameLabel: r.namespace}
	default:
		md, _ := r.namespaceObject["metadata"].(map[string]any)
		if name, _ := md["name"].(string); name != r.namespace {
			return false, fmt.Errorf("namespace %q was requested but the namespace object given is %q", r.namespace, name)
		}
		l = r.namespaceLabels
	}
	return p.namespaceSelector.Matches(k8slabels.Set(l)), nil
}

func matchesRules(rules []admissionregistrationv1.NamedRuleWithOperations, r *request) bool {
	for _, rule := range rules {
		if !ruleMatches(rule.RuleWithOperations, r) {
			continue
		}
		if len(rule.ResourceNames) == 0 {
			return true
		}
		for _, n := range rule.ResourceNames {
			if (r.name != "" && n == r.name) || (r.name == "" && r.generate != "" && strings.HasPrefix(r.generate, n)) {
				return true
			}
		}
	}
	return false
}

// ruleMatches is the API server's admission rule match (scope, operation,
// group, version, resource/subresource with wildcards).
func ruleMatches(rule admissionregistrationv1.RuleWithOperations, r *request) bool {
	if s := rule.Scope; s != nil && *s != admissionregistrationv1.AllScopes {
		isNamespace := r.resource == namespacesResource
		switch *s {
		case admissionregistrationv1.NamespacedScope:
			if isNamespace || r.namespace == "" {
				return false
			}
		case admissionregistrationv1.ClusterScope:
			if !isNamespace && r.namespace != "" {
				return false
			}
		default:
			return false
		}
	}
	opOK := false
	for _, op := range rule.Operations {
		if op == admissionregistrationv1.OperationAll || string(op) == r.op {
			opOK = true
			break
		}
	}
	if !opOK || !exactOrWildcard(rule.APIGroups, r.resource.Group) || !exactOrWildcard(rule.APIVersions, r.resource.Version) {
		return false
	}
	for _, res := range rule.Resources {
		name, sub, _ := strings.Cut(res, "/")
		if (name == "*" || name == r.resource.Resource) && (sub == "*" || sub == r.subResource) {
			return true
		}
	}
	return false
}

func exactOrWildcard(items []string, v string) bool {
	for _, i := range items {
		if i == "*" || i == v {
			return true
		}
	}
	return false
}

var _ interpreter.Activation = (*activation)(nil)
