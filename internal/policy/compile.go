package policy

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/cel-go/cel"
	celast "github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/ext"
	policiesv1 "github.com/kyverno/api/api/policies.kyverno.io/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/version"
	plugincel "k8s.io/apiserver/pkg/admission/plugin/cel"
	apiservercel "k8s.io/apiserver/pkg/cel"
	"k8s.io/apiserver/pkg/cel/environment"

	"github.com/strata-gitops/strata/internal/config"
	strlabels "github.com/strata-gitops/strata/internal/labels"
)

// EvaluationTimeout bounds one Evaluate call (every policy), on top of the
// caller's context and the Kubernetes per-expression cost limit
// (k8s.io/apiserver/pkg/apis/cel.PerCallLimit, set by the base environment).
const EvaluationTimeout = 2 * time.Second

// CEL variable names, as in Kyverno and ValidatingAdmissionPolicy.
const (
	varObject          = "object"
	varOldObject       = "oldObject"
	varRequest         = "request"
	varNamespaceObject = "namespaceObject"
	varVariables       = "variables"
)

// variablesTypeName is the CEL type of `variables`, named as in Kyverno.
const variablesTypeName = "kyverno.variables"

var variablesType = types.NewObjectType(variablesTypeName)

type compiledPolicy struct {
	name          string
	file          string
	tiers         []config.Tier // nil: every tier
	action        string
	ignoreFailure bool

	rules, excludes   []admissionregistrationv1.NamedRuleWithOperations
	namespaceSelector labels.Selector
	objectSelector    labels.Selector

	matchConditions []namedProgram
	variables       []namedProgram
	validations     []compiledValidation
}

type namedProgram struct {
	name string
	prog cel.Program
}

type compiledValidation struct {
	expression  string
	prog        cel.Program
	message     string
	messageProg cel.Program // nil without messageExpression
}

var (
	baseEnvOnce sync.Once
	baseEnv     *cel.Env
	baseEnvErr  error
)

// policyBaseEnv is the environment every policy extends: the Kubernetes base
// environment (all libraries of StoredExpressions: lists, regex, urls,
// quantity, ip, cidr, format, semver, sets, strings, optionals, two-variable
// comprehensions, per-call cost limit), the cel-go extensions Kyverno adds
// (bindings, encoders, math, protos, regex) and the variables object,
// oldObject, request and namespaceObject, typed as in Kyverno.
func policyBaseEnv() (*cel.Env, error) {
	baseEnvOnce.Do(func() {
		namespaceType := plugincel.BuildNamespaceType()
		requestType := plugincel.BuildRequestType()
		// Kyverno's request also carries the objects (as dyn).
		requestType.Fields[varObject] = apiservercel.NewDeclField(varObject, apiservercel.DynType, false, nil, nil)
		requestType.Fields[varOldObject] = apiservercel.NewDeclField(varOldObject, apiservercel.DynType, false, nil, nil)
		set, err := environment.MustBaseEnvSet(environment.DefaultCompatibilityVersion()).Extend(environment.VersionedOptions{
			IntroducedVersion: version.MajorMinor(1, 0),
			EnvOptions: []cel.EnvOption{
				ext.Bindings(),
				ext.Encoders(),
				ext.Math(),
				ext.Protos(),
				ext.Regex(ext.RegexVersion(1)),
				cel.Variable(varObject, cel.DynType),
				cel.Variable(varOldObject, cel.DynType),
				cel.Variable(varRequest, requestType.CelType()),
				cel.Variable(varNamespaceObject, namespaceType.CelType()),
			},
			ProgramOptions: []cel.ProgramOption{
				// lets ContextEval notice a cancelled context inside comprehensions
				cel.InterruptCheckFrequency(100),
			},
			DeclTypes: []*apiservercel.DeclType{namespaceType, requestType},
		})
		if err != nil {
			baseEnvErr = fmt.Errorf("building the CEL environment: %w", err)
			return
		}
		baseEnv, baseEnvErr = set.Env(environment.StoredExpressions)
	})
	return baseEnv, baseEnvErr
}

// variablesProvider types `variables.<name>` with the output type of each
// compiled variable, so that a reference to an undefined or later variable is
// a compile error, as in Kyverno.
type variablesProvider struct {
	types.Provider
	fields map[string]*types.Type
	names  []string
}

func (p *variablesProvider) FindStructType(name string) (*types.Type, bool) {
	if name == variablesTypeName {
		return types.NewTypeTypeWithParam(variablesType), true
	}
	return p.Provider.FindStructType(name)
}

func (p *variablesProvider) FindStructFieldNames(name string) ([]string, bool) {
	if name == variablesTypeName {
		return slices.Clone(p.names), true
	}
	return p.Provider.FindStructFieldNames(name)
}

func (p *variablesProvider) FindStructFieldType(name, field string) (*types.FieldType, bool) {
	if name == variablesTypeName {
		t, ok := p.fields[field]
		if !ok {
			return nil, false
		}
		return &types.FieldType{Type: t}, true
	}
	return p.Provider.FindStructFieldType(name, field)
}

func (p *variablesProvider) NewValue(name string, fields map[string]ref.Val) ref.Val {
	return p.Provider.NewValue(name, fields)
}

// compilePolicy checks vp for unsupported fields and compiles its
// expressions. Problems are "path: message".
func compilePolicy(file string, vp *policiesv1.ValidatingPolicy) (*compiledPolicy, []string) {
	problems := checkSupported(vp)
	base, err := policyBaseEnv()
	if err != nil {
		return nil, append(problems, err.Error())
	}
	spec := &vp.Spec
	p := &compiledPolicy{
		name:          vp.Name,
		file:          file,
		action:        strongestAction(spec.ValidationAction),
		ignoreFailure: spec.FailurePolicy != nil && *spec.FailurePolicy == admissionregistrationv1.Ignore,
	}
	if v, ok := vp.Annotations[strlabels.Tiers]; ok {
		p.tiers, _ = parseTiers(v) // checked in checkSupported
	}
	if mc := spec.MatchConstraints; mc != nil {
		p.rules = mc.ResourceRules
		p.excludes = mc.ExcludeResourceRules
		p.namespaceSelector, _ = selector(mc.NamespaceSelector)
		p.objectSelector, _ = selector(mc.ObjectSelector)
	}

	vars := &variablesProvider{Provider: base.CELTypeProvider(), fields: map[string]*types.Type{}}
	env, err := base.Extend(cel.CustomTypeProvider(vars), cel.Variable(varVariables, variablesType))
	if err != nil {
		return nil, append(problems, fmt.Sprintf("building the CEL environment: %v", err))
	}
	compile := func(path, expr string, want *types.Type) (cel.Program, *types.Type) {
		if strings.TrimSpace(expr) == "" {
			return nil, nil // reported by checkSupported
		}
		if lib := kyvernoLibraryIn(env, expr); lib != "" {
			problems = append(problems, fmt.Sprintf("%s: %s", path, lib))
			return nil, nil
		}
		ast, iss := env.Compile(expr)
		if iss.Err() != nil {
			problems = append(problems, fmt.Sprintf("%s: CEL compile error: %s", path, issuesText(iss)))
			return nil, nil
		}
		if want != nil && !ast.OutputType().IsExactType(want) {
			problems = append(problems, fmt.Sprintf("%s: the expression returns %s, it must return %s", path, ast.OutputType(), want))
			return nil, nil
		}
		prog, err := env.Program(ast)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: CEL program error: %v", path, err))
			return nil, nil
		}
		return prog, ast.OutputType()
	}

	// Match conditions are compiled before any variable exists: like in
	// Kyverno they cannot use variables.
	for i, c := range spec.MatchConditions {
		prog, _ := compile(fmt.Sprintf("spec.matchConditions[%d].expression", i), c.Expression, types.BoolType)
		p.matchConditions = append(p.matchConditions, namedProgram{name: c.Name, prog: prog})
	}
	for i, v := range spec.Variables {
		prog, t := compile(fmt.Sprintf("spec.variables[%d].expression", i), v.Expression, nil)
		if t == nil {
			// already reported; typed dyn so that its uses do not repeat the error
			t = types.DynType
		}
		if _, dup := vars.fields[v.Name]; !dup && v.Name != "" {
			vars.fields[v.Name] = t
			vars.names = append(vars.names, v.Name)
		}
		p.variables = append(p.variables, namedProgram{name: v.Name, prog: prog})
	}
	for i, v := range spec.Validations {
		cv := compiledValidation{expression: v.Expression, message: v.Message}
		cv.prog, _ = compile(fmt.Sprintf("spec.validations[%d].expression", i), v.Expression, types.BoolType)
		if v.MessageExpression != "" {
			cv.messageProg, _ = compile(fmt.Sprintf("spec.validations[%d].messageExpression", i), v.MessageExpression, types.StringType)
		}
		p.validations = append(p.validations, cv)
	}
	if len(problems) > 0 {
		return nil, problems
	}
	return p, nil
}

// strongestAction is the action a verdict carries: Deny over Warn over
// Audit; an empty list means Deny (Kyverno's default).
func strongestAction(actions []admissionregistrationv1.ValidationAction) string {
	switch {
	case len(actions) == 0 || slices.Contains(actions, admissionregistrationv1.Deny):
		return ActionDeny
	case slices.Contains(actions, admissionregistrationv1.Warn):
		return ActionWarn
	default:
		return ActionAudit
	}
}

// issuesText formats CEL compile errors on one line, with their positions.
func issuesText(iss *cel.Issues) string {
	var parts []string
	for _, e := range iss.Errors() {
		msg := strings.TrimSuffix(e.Message, " (in container '')")
		if loc := e.Location; loc != nil && loc.Line() > 0 {
			msg = fmt.Sprintf("line %d column %d: %s", loc.Line(), loc.Column()+1, msg)
		}
		parts = append(parts, msg)
	}
	if len(parts) == 0 {
		return iss.Err().Error()
	}
	return strings.Join(parts, "; ")
}

// kyvernoIdents and kyvernoFunctions map identifiers and functions of Kyverno's own CEL
// libraries to what they do; strata does not provide them.
var kyvernoIdents = map[string]string{
	"resource":      "resource (resource.Get/List/Post: reads other cluster objects)",
	"http":          "http (http.Get/Post: calls external services)",
	"globalContext": "globalContext (globalContext.Get: reads Kyverno's cached context entries)",
	"generator":     "generator (generator.Apply: creates objects)",
	"image":         "imagedata (image.GetMetadata: fetches image metadata from a registry)",
	"images":        "image verification (images)",
	"attestors":     "image verification (attestors)",
	"attestations":  "image verification (attestations)",
	"exceptions":    "PolicyException (exceptions)",
	"json":          "json (json.unmarshal/marshal)",
	"yaml":          "yaml (yaml.parse)",
	"x509":          "x509 (x509.decode)",
	"time":          "time (time.now/toCron/truncate)",
	"gzip":          "gzip (gzip.compress/decompress)",
	"hash":          "hash (hash.sha1/sha256/md5)",
	"random":        "random (random.random)",
	"transform":     "transform (transform.listObjToMap)",
	"user":          "user (user.parseServiceAccount)",
}

var kyvernoFunctions = map[string]string{
	"image":               "image (image(), parsing image references)",
	"parseImageReference": "image (parseImageReference)",
	"isImage":             "image (isImage)",
	"sha1":                "hash (sha1)",
	"sha256":              "hash (sha256)",
	"md5":                 "hash (md5)",
	"random":              "random (random)",
	"listObjToMap":        "transform (listObjToMap)",
	"parseServiceAccount": "user (parseServiceAccount)",
}

// kyvernoLibraryIn returns a message when expr uses one of Kyverno's own CEL
// libraries, or "" otherwise (including when expr does not parse: the
// compiler reports that).
func kyvernoLibraryIn(env *cel.Env, expr string) string {
	ast, iss := env.Parse(expr)
	if iss.Err() != nil {
		return ""
	}
	found := map[string]bool{}
	walkExpr(ast.NativeRep().Expr(), map[string]int{}, found)
	if len(found) == 0 {
		return ""
	}
	libs := make([]string, 0, len(found))
	for l := range found {
		libs = append(libs, l)
	}
	sort.Strings(libs)
	return fmt.Sprintf("Kyverno library %s is not supported by strata: strata evaluates each object on its own, with the Kubernetes CEL libraries only "+
		"(object, oldObject, request, namespaceObject, variables); rewrite the expression without it", strings.Join(libs, ", "))
}

func walkExpr(e celast.Expr, scope map[string]int, found map[string]bool) {
	if e == nil {
		return
	}
	switch e.Kind() {
	case celast.IdentKind:
		name := e.AsIdent()
		if scope[name] == 0 {
			if lib, ok := kyvernoIdents[name]; ok {
				found[lib] = true
			}
		}
	case celast.SelectKind:
		walkExpr(e.AsSelect().Operand(), scope, found)
	case celast.CallKind:
		c := e.AsCall()
		if !c.IsMemberFunction() {
			if lib, ok := kyvernoFunctions[c.FunctionName()]; ok {
				found[lib] = true
			}
		} else if t := c.Target(); t.Kind() == celast.IdentKind && t.AsIdent() == "math" && c.FunctionName() == "round" && len(c.Args()) == 2 && scope["math"] == 0 {
			found["math (math.round with a precision)"] = true
		}
		if c.IsMemberFunction() {
			walkExpr(c.Target(), scope, found)
		}
		for _, a := range c.Args() {
			walkExpr(a, scope, found)
		}
	case celast.ListKind:
		for _, el := range e.AsList().Elements() {
			walkExpr(el, scope, found)
		}
	case celast.MapKind:
		for _, en := range e.AsMap().Entries() {
			me := en.AsMapEntry()
			walkExpr(me.Key(), scope, found)
			walkExpr(me.Value(), scope, found)
		}
	case celast.StructKind:
		for _, f := range e.AsStruct().Fields() {
			walkExpr(f.AsStructField().Value(), scope, found)
		}
	case celast.ComprehensionKind:
		c := e.AsComprehension()
		walkExpr(c.IterRange(), scope, found)
		walkExpr(c.AccuInit(), scope, found)
		bound := []string{c.IterVar(), c.AccuVar()}
		if c.HasIterVar2() {
			bound = append(bound, c.IterVar2())
		}
		for _, v := range bound {
			scope[v]++
		}
		walkExpr(c.LoopCondition(), scope, found)
		walkExpr(c.LoopStep(), scope, found)
		walkExpr(c.Result(), scope, found)
		for _, v := range bound {
			scope[v]--
		}
	}
}
