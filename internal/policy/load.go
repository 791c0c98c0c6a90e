package policy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"

	policiesv1 "github.com/kyverno/api/api/policies.kyverno.io/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/strata-gitops/strata/internal/config"
	strlabels "github.com/strata-gitops/strata/internal/labels"
)

// APIVersion and Kind are the only policy type strata loads.
const (
	APIVersion = "policies.kyverno.io/v1"
	Kind       = "ValidatingPolicy"
)

// LoadError lists every problem found by Load, one line each, each naming the
// file, the policy and the field.
type LoadError struct {
	Problems []string
}

func (e *LoadError) Error() string {
	if len(e.Problems) == 1 {
		return e.Problems[0]
	}
	return fmt.Sprintf("%d problems in the policies:\n  %s", len(e.Problems), strings.Join(e.Problems, "\n  "))
}

// Load parses and compiles every *.yaml and *.yml file (multi-document)
// directly in dir of fsys (a repository-relative slash path; "." for the
// root). Every problem of every file is reported in one *LoadError. A missing
// dir is an error that matches fs.ErrNotExist.
func Load(fsys fs.FS, dir string) (*Set, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("reading policies directory %s: %w", dir, err)
	}
	l := &loader{seen: map[string]string{}}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || strings.HasPrefix(name, ".") || !(strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml")) {
			continue
		}
		file := path.Join(dir, name)
		data, err := fs.ReadFile(fsys, file)
		if err != nil {
			l.problem("%s: %v", file, err)
			continue
		}
		l.loadFile(file, data)
	}
	if len(l.problems) > 0 {
		return nil, &LoadError{Problems: l.problems}
	}
	sort.Slice(l.policies, func(i, j int) bool { return l.policies[i].name < l.policies[j].name })
	return &Set{policies: l.policies}, nil
}

type loader struct {
	policies []*compiledPolicy
	problems []string
	seen     map[string]string // policy name -> file
}

func (l *loader) problem(format string, args ...any) {
	l.problems = append(l.problems, fmt.Sprintf(format, args...))
}

func (l *loader) loadFile(file string, data []byte) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for doc := 1; ; doc++ {
		raw, err := r.Read()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			l.problem("%s: document %d: %v", file, doc, err)
			return
		}
		l.loadDocument(file, doc, raw)
	}
}

// header is what is read before the strict decode, to give a precise error
// for documents that are not a ValidatingPolicy.
type header struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name string `json:"name"`
	} `json:"metadata"`
}

func (l *loader) loadDocument(file string, doc int, raw []byte) {
	var probe any
	if err := yaml.Unmarshal(raw, &probe); err != nil {
		l.problem("%s: document %d: not valid YAML: %v", file, doc, err)
		return
	}
	if probe == nil {
		return // empty or comment-only document
	}
	var h header
	if err := yaml.Unmarshal(raw, &h); err != nil {
		l.problem("%s: document %d: not a Kubernetes object: %v", file, doc, err)
		return
	}
	where := fmt.Sprintf("%s: document %d (%s %s)", file, doc, h.Kind, h.Metadata.Name)
	switch {
	case h.Kind == Kind && h.Metadata.Name != "":
		where = fmt.Sprintf("%s: %s %s", file, Kind, h.Metadata.Name)
	case h.Metadata.Name == "":
		where = fmt.Sprintf("%s: document %d (%s)", file, doc, h.Kind)
	}
	if h.Kind == "" || h.APIVersion == "" {
		l.problem("%s: document %d: has no apiVersion/kind: a policy file holds %s %s documents only", file, doc, APIVersion, Kind)
		return
	}
	if msg := kindProblem(h.APIVersion, h.Kind); msg != "" {
		l.problem("%s: %s", where, msg)
		return
	}
	var vp policiesv1.ValidatingPolicy
	if err := yaml.UnmarshalStrict(raw, &vp); err != nil {
		for _, msg := range decodeProblems(err, probe) {
			l.problem("%s: %s", where, msg)
		}
		return
	}
	if vp.Name == "" {
		l.problem("%s: document %d: ValidatingPolicy has no metadata.name", file, doc)
		return
	}
	prefix := fmt.Sprintf("%s: ValidatingPolicy %s", file, vp.Name)
	if other, dup := l.seen[vp.Name]; dup {
		l.problem("%s: metadata.name: a policy named %s is already defined in %s: policy names must be unique", prefix, vp.Name, other)
		return
	}
	l.seen[vp.Name] = file
	p, errs := compilePolicy(file, &vp)
	for _, e := range errs {
		l.problem("%s: %s", prefix, e)
	}
	if len(errs) == 0 {
		l.policies = append(l.policies, p)
	}
}

// kindProblem explains why a document of another type is not loaded.
func kindProblem(apiVersion, kind string) string {
	group, _, _ := strings.Cut(apiVersion, "/")
	switch {
	case apiVersion == APIVersion && kind == Kind:
		return ""
	case kind == Kind && group == "policies.kyverno.io":
		return fmt.Sprintf("apiVersion %s is not supported: use apiVersion %s (the same ValidatingPolicy, Kyverno's stored version)", apiVersion, APIVersion)
	case group == "kyverno.io" && (kind == "ClusterPolicy" || kind == "Policy"):
		return fmt.Sprintf("%s (%s) is not supported by strata: its rules (patterns, JMESPath, context lookups) need the Kyverno engine, which strata does not embed; "+
			"rewrite it as a %s %s with CEL validations, which strata and Kyverno evaluate the same way", kind, apiVersion, APIVersion, Kind)
	case group == "policies.kyverno.io":
		return fmt.Sprintf("%s is not supported by strata: only %s %s (CEL validations) is evaluated; "+
			"a namespaced or mutating/generating/image policy would be ignored by strata's plan and webhook, so it is refused instead", kind, APIVersion, Kind)
	case group == "admissionregistration.k8s.io":
		return fmt.Sprintf("%s is not loaded from policies/: write the rule as a %s %s (it uses the same matchConstraints, variables and validations)", kind, APIVersion, Kind)
	default:
		return fmt.Sprintf("%s %s is not a policy: policies/ holds %s %s documents only", apiVersion, kind, APIVersion, Kind)
	}
}

var unknownFieldRE = regexp.MustCompile(`unknown field "([^"]+)"`)

// decodeProblems explains a strict decoding error. For unknown fields it
// names every one with its path (the JSON decoder names only the first,
// without a path).
func decodeProblems(err error, doc any) []string {
	m := unknownFieldRE.FindStringSubmatch(err.Error())
	if m == nil {
		return []string{fmt.Sprintf("cannot decode as %s %s: %v", APIVersion, Kind, err)}
	}
	paths := unknownFields(doc, reflect.TypeFor[policiesv1.ValidatingPolicy](), "")
	if len(paths) == 0 {
		paths = []string{m[1]}
	}
	out := make([]string, len(paths))
	for i, field := range paths {
		last := field
		if j := strings.LastIndex(field, "."); j >= 0 {
			last = field[j+1:]
		}
		switch last {
		case "paramKind", "params", "paramRef":
			out[i] = fmt.Sprintf("unknown field %q: a Kyverno ValidatingPolicy has no parameters; "+
				"to scope a policy to tiers, annotate it with %s (comma-separated tiers)", field, strlabels.Tiers)
		default:
			out[i] = fmt.Sprintf("unknown field %q: %s %s has no such field (check the spelling and the indentation)", field, APIVersion, Kind)
		}
	}
	return out
}

var jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()

// unknownFields returns the paths of the keys of v (decoded YAML) that have
// no field in the Go type t, following json tags.
func unknownFields(v any, t reflect.Type, path string) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(jsonUnmarshaler) {
		return nil
	}
	var out []string
	switch t.Kind() {
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		fields := map[string]reflect.Type{}
		collectFields(t, fields)
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			p := k
			if path != "" {
				p = path + "." + k
			}
			ft, ok := fields[k]
			if !ok {
				out = append(out, p)
				continue
			}
			out = append(out, unknownFields(m[k], ft, p)...)
		}
	case reflect.Slice, reflect.Array:
		l, _ := v.([]any)
		for i, e := range l {
			out = append(out, unknownFields(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i))...)
		}
	case reflect.Map:
		m, _ := v.(map[string]any)
		for k, e := range m {
			out = append(out, unknownFields(e, t.Elem(), fmt.Sprintf("%s[%s]", path, k))...)
		}
	}
	return out
}

func collectFields(t reflect.Type, into map[string]reflect.Type) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" && (f.Anonymous || strings.Contains(opts, "inline")) {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				collectFields(ft, into)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		into[name] = f.Type
	}
}

var validOperations = []admissionregistrationv1.OperationType{
	admissionregistrationv1.Create, admissionregistrationv1.Update, admissionregistrationv1.Delete,
	admissionregistrationv1.Connect, admissionregistrationv1.OperationAll,
}

// checkSupported returns a problem per field that strata does not evaluate
// or that is invalid, as "path: message".
func checkSupported(vp *policiesv1.ValidatingPolicy) []string {
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	spec := &vp.Spec

	if v, ok := vp.Annotations[strlabels.Tiers]; ok {
		if _, err := parseTiers(v); err != nil {
			add("metadata.annotations[%s]: %v", strlabels.Tiers, err)
		}
	}

	if ev := spec.EvaluationConfiguration; ev != nil {
		if ev.Mode != "" && ev.Mode != "Kubernetes" {
			add("spec.evaluation.mode: %q is not supported by strata: strata evaluates Kubernetes admission requests only; remove spec.evaluation.mode (default Kubernetes)", ev.Mode)
		}
		if ev.Admission != nil && ev.Admission.Enabled != nil && !*ev.Admission.Enabled {
			add("spec.evaluation.admission.enabled: false is not supported by strata: strata's plan and webhook are admission checks, so the policy would never apply; delete the policy instead")
		}
		if ev.Background != nil && ev.Background.Enabled != nil && !*ev.Background.Enabled {
			add("spec.evaluation.background.enabled: false is not supported by strata: strata has no background scans, so the setting would mean nothing; remove spec.evaluation.background")
		}
	}
	if spec.WebhookConfiguration != nil {
		add("spec.webhookConfiguration is not supported by strata: strata's webhook has one timeout for every policy; remove spec.webhookConfiguration")
	}
	if len(spec.AuditAnnotations) > 0 {
		add("spec.auditAnnotations is not supported by strata: strata records its own audit events; remove spec.auditAnnotations")
	}
	autogenOff := false
	if ag := spec.AutogenConfiguration; ag != nil {
		// The one accepted form turns autogen off explicitly: a pods-only
		// policy then means pods only, in Kyverno and in strata.
		podsOff := ag.PodControllers != nil && ag.PodControllers.Controllers != nil && len(ag.PodControllers.Controllers) == 0
		vapOff := ag.ValidatingAdmissionPolicy == nil || ag.ValidatingAdmissionPolicy.Enabled == nil || !*ag.ValidatingAdmissionPolicy.Enabled
		if ag.PodControllers != nil && !podsOff {
			add("spec.autogen.podControllers is not supported by strata: strata does not generate rules for pod controllers; " +
				"write rules for the workloads explicitly (list deployments, statefulsets, daemonsets, replicasets, jobs, cronjobs in spec.matchConstraints.resourceRules) " +
				"or set spec.autogen.podControllers.controllers: [] to match pods only")
		}
		if !vapOff {
			add("spec.autogen.validatingAdmissionPolicy.enabled: true is not supported by strata: strata evaluates the policy itself; remove spec.autogen.validatingAdmissionPolicy")
		}
		autogenOff = podsOff
	}

	mc := spec.MatchConstraints
	if mc == nil {
		add("spec.matchConstraints is required: without it Kyverno never evaluates the policy; list the resources in spec.matchConstraints.resourceRules")
	} else {
		if len(mc.ResourceRules) == 0 {
			add("spec.matchConstraints.resourceRules is empty: list the resources the policy validates")
		}
		for i, r := range mc.ResourceRules {
			out = append(out, checkRule(fmt.Sprintf("spec.matchConstraints.resourceRules[%d]", i), r)...)
		}
		for i, r := range mc.ExcludeResourceRules {
			out = append(out, checkRule(fmt.Sprintf("spec.matchConstraints.excludeResourceRules[%d]", i), r)...)
		}
		if mp := mc.MatchPolicy; mp != nil && *mp != admissionregistrationv1.Exact && *mp != admissionregistrationv1.Equivalent {
			add("spec.matchConstraints.matchPolicy: %q is not valid: use Exact or Equivalent", *mp)
		}
		if _, err := selector(mc.NamespaceSelector); err != nil {
			add("spec.matchConstraints.namespaceSelector: %v", err)
		}
		if _, err := selector(mc.ObjectSelector); err != nil {
			add("spec.matchConstraints.objectSelector: %v", err)
		}
		if !autogenOff && kyvernoWouldAutogen(mc) {
			add("spec.matchConstraints: the policy matches only pods, so Kyverno would also apply it to the pod templates of Deployments, StatefulSets, DaemonSets, Jobs, CronJobs and ReplicaSets (autogen), " +
				"which strata does not do: write rules for the workloads explicitly (add them to resourceRules and read the pod spec of each kind) " +
				"or set spec.autogen.podControllers.controllers: [] to match pods only")
		}
	}

	if len(spec.Validations) == 0 {
		add("spec.validations is empty: a ValidatingPolicy needs at least one validation")
	}
	for i, v := range spec.Validations {
		if strings.TrimSpace(v.Expression) == "" {
			add("spec.validations[%d].expression is required", i)
		}
		if v.Reason != nil {
			switch *v.Reason {
			case metav1.StatusReasonUnauthorized, metav1.StatusReasonForbidden, metav1.StatusReasonInvalid, metav1.StatusReasonRequestEntityTooLarge:
			default:
				add("spec.validations[%d].reason: %q is not valid: use Unauthorized, Forbidden, Invalid or RequestEntityTooLarge", i, *v.Reason)
			}
		}
	}

	seenActions := map[admissionregistrationv1.ValidationAction]bool{}
	for i, a := range spec.ValidationAction {
		switch a {
		case admissionregistrationv1.Deny, admissionregistrationv1.Warn, admissionregistrationv1.Audit:
		default:
			add("spec.validationActions[%d]: %q is not a validation action: use Deny, Warn or Audit", i, a)
		}
		if seenActions[a] {
			add("spec.validationActions[%d]: %q is listed twice", i, a)
		}
		seenActions[a] = true
	}
	if seenActions[admissionregistrationv1.Deny] && seenActions[admissionregistrationv1.Warn] {
		add("spec.validationActions: Deny and Warn may not be used together (a denial already shows the message); keep one")
	}

	if fp := spec.FailurePolicy; fp != nil && *fp != admissionregistrationv1.Fail && *fp != admissionregistrationv1.Ignore {
		add("spec.failurePolicy: %q is not valid: use Fail or Ignore", *fp)
	}

	names := map[string]bool{}
	for i, c := range spec.MatchConditions {
		p := fmt.Sprintf("spec.matchConditions[%d]", i)
		if c.Name == "" {
			add("%s.name is required", p)
		} else if names[c.Name] {
			add("%s.name: %q is used twice", p, c.Name)
		}
		names[c.Name] = true
		if strings.TrimSpace(c.Expression) == "" {
			add("%s.expression is required", p)
		}
	}
	names = map[string]bool{}
	for i, v := range spec.Variables {
		p := fmt.Sprintf("spec.variables[%d]", i)
		switch {
		case v.Name == "":
			add("%s.name is required", p)
		case !identRE.MatchString(v.Name):
			add("%s.name: %q is not a valid CEL identifier (letters, digits and _, not starting with a digit)", p, v.Name)
		case names[v.Name]:
			add("%s.name: %q is used twice", p, v.Name)
		}
		names[v.Name] = true
		if strings.TrimSpace(v.Expression) == "" {
			add("%s.expression is required", p)
		}
	}
	return out
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func checkRule(p string, r admissionregistrationv1.NamedRuleWithOperations) []string {
	var out []string
	if len(r.Operations) == 0 {
		out = append(out, p+".operations is empty: list CREATE, UPDATE, DELETE, CONNECT or *")
	}
	for i, op := range r.Operations {
		if !slices.Contains(validOperations, op) {
			out = append(out, fmt.Sprintf("%s.operations[%d]: %q is not an operation: use CREATE, UPDATE, DELETE, CONNECT or *", p, i, op))
		}
	}
	if len(r.APIGroups) == 0 {
		out = append(out, p+`.apiGroups is empty: list the API groups ("" for the core group, * for all)`)
	}
	if len(r.APIVersions) == 0 {
		out = append(out, p+".apiVersions is empty: list the versions (* for all)")
	}
	if len(r.Resources) == 0 {
		out = append(out, p+".resources is empty: list the resources (plural, lower case, e.g. deployments)")
	}
	if s := r.Scope; s != nil && *s != admissionregistrationv1.AllScopes && *s != admissionregistrationv1.ClusterScope && *s != admissionregistrationv1.NamespacedScope {
		out = append(out, fmt.Sprintf("%s.scope: %q is not valid: use Cluster, Namespaced or *", p, *s))
	}
	return out
}

// kyvernoWouldAutogen reports whether Kyverno generates pod-controller rules
// for these constraints (Kyverno's autogen.CanAutoGen): exactly one rule, for
// core v1 pods only, no names, no exclusions, no object selector.
func kyvernoWouldAutogen(mc *admissionregistrationv1.MatchResources) bool {
	if mc.ObjectSelector != nil && (len(mc.ObjectSelector.MatchLabels) > 0 || len(mc.ObjectSelector.MatchExpressions) > 0) {
		return false
	}
	if len(mc.ExcludeResourceRules) != 0 || len(mc.ResourceRules) != 1 {
		return false
	}
	r := mc.ResourceRules[0]
	return len(r.ResourceNames) == 0 &&
		slices.Equal(r.APIGroups, []string{""}) &&
		slices.Equal(r.APIVersions, []string{"v1"}) &&
		slices.Equal(r.Resources, []string{"pods"})
}

func selector(s *metav1.LabelSelector) (labels.Selector, error) {
	if s == nil {
		return labels.Everything(), nil
	}
	return metav1.LabelSelectorAsSelector(s)
}

// parseTiers reads the strata.dev/tiers annotation of a policy.
func parseTiers(v string) ([]config.Tier, error) {
	if strings.TrimSpace(v) == "" {
		return nil, fmt.Errorf("is empty: list tiers (%s) or remove the annotation to apply the policy in every tier", config.JoinTiers(config.KnownTiers))
	}
	var out []config.Tier
	for _, part := range strings.Split(v, ",") {
		t := config.Tier(strings.TrimSpace(part))
		if !t.Valid() {
			return nil, fmt.Errorf("%q is not a tier: use a comma-separated list of %s", strings.TrimSpace(part), config.JoinTiers(config.KnownTiers))
		}
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out, nil
}
