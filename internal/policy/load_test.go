package policy

import (
	"errors"
	"io/fs"
	"os"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
)

// TestLoadErrors loads each directory under testdata/load and checks that
// every problem is reported, naming the file, the policy and the field.
func TestLoadErrors(t *testing.T) {
	tests := []struct {
		dir  string
		want []string // one entry per problem, each a list of substrings joined by "|"
	}{
		{"evaluation-json", []string{
			`evaluation-json/json-mode.yaml: ValidatingPolicy json-payload: spec.evaluation.mode: "JSON" is not supported by strata`,
			`evaluation-json/json-mode.yaml: ValidatingPolicy json-payload: spec.evaluation.background.enabled: false is not supported by strata`,
		}},
		{"unsupported-fields", []string{
			`unsupported-fields/many.yaml: ValidatingPolicy kitchen-sink: spec.webhookConfiguration is not supported by strata`,
			`unsupported-fields/many.yaml: ValidatingPolicy kitchen-sink: spec.auditAnnotations is not supported by strata`,
			`unsupported-fields/many.yaml: ValidatingPolicy kitchen-sink: spec.autogen.podControllers is not supported by strata|write rules for the workloads explicitly`,
		}},
		{"clusterpolicy", []string{
			`clusterpolicy/require-labels.yaml: document 1 (ClusterPolicy require-labels): ClusterPolicy (kyverno.io/v1) is not supported by strata|rewrite it as a policies.kyverno.io/v1 ValidatingPolicy`,
		}},
		{"bad-cel", []string{
			`bad-cel/policy.yaml: ValidatingPolicy broken-cel: spec.validations[1].expression: CEL compile error: line 1 column 26: Syntax error`,
			`bad-cel/policy.yaml: ValidatingPolicy broken-cel: spec.validations[2].expression: CEL compile error: line 1 column 1: undeclared reference to 'objekt'`,
			`bad-cel/policy.yaml: ValidatingPolicy broken-cel: spec.validations[2].messageExpression: CEL compile error: line 1 column 9: found no matching overload for '_+_' applied to '(string, int)'`,
		}},
		{"two-bad-files", []string{
			`two-bad-files/a-unknown-field.yaml: ValidatingPolicy typo: unknown field "metadata.lables"`,
			`two-bad-files/a-unknown-field.yaml: ValidatingPolicy typo: unknown field "spec.validation"|check the spelling and the indentation`,
			`two-bad-files/b-bad-cel.yaml: ValidatingPolicy undeclared: spec.variables[0].expression: CEL compile error: line 1 column 1: undeclared reference to 'params'`,
		}},
		{"kyverno-library", []string{
			`kyverno-library/libs.yaml: ValidatingPolicy uses-kyverno-libs: spec.variables[0].expression: Kyverno library resource (resource.Get/List/Post: reads other cluster objects) is not supported by strata`,
			`kyverno-library/libs.yaml: ValidatingPolicy uses-kyverno-libs: spec.validations[0].expression: Kyverno library image (image(), parsing image references) is not supported by strata`,
			`kyverno-library/libs.yaml: ValidatingPolicy uses-kyverno-libs: spec.validations[1].expression: Kyverno library http (http.Get/Post: calls external services) is not supported by strata`,
		}},
		{"param-kind", []string{
			`param-kind/params.yaml: ValidatingPolicy with-params: unknown field "spec.paramKind"|has no parameters|strata.dev/tiers`,
		}},
		{"pods-only-autogen", []string{
			`pods-only-autogen/pods.yaml: ValidatingPolicy pods-only: spec.matchConstraints: the policy matches only pods, so Kyverno would also apply it to the pod templates|write rules for the workloads explicitly`,
		}},
		{"pods-only-autogen-off", nil},
		{"bad-tiers", []string{
			`bad-tiers/tiers.yaml: ValidatingPolicy moon-only: metadata.annotations[strata.dev/tiers]: "moon-base" is not a tier`,
		}},
		{"duplicate-name", []string{
			`duplicate-name/b.yml: ValidatingPolicy twice: metadata.name: a policy named twice is already defined in duplicate-name/a.yaml`,
		}},
		{"not-a-policy", []string{
			`not-a-policy/kustomization.yaml: document 1 (Kustomization): kustomize.config.k8s.io/v1beta1 Kustomization is not a policy`,
		}},
		{"wrong-version", []string{
			`wrong-version/v1beta1.yaml: ValidatingPolicy old-version: apiVersion policies.kyverno.io/v1beta1 is not supported: use apiVersion policies.kyverno.io/v1`,
			`wrong-version/v1beta1.yaml: document 2 (NamespacedValidatingPolicy namespaced): NamespacedValidatingPolicy is not supported by strata`,
		}},
		{"non-bool-validation", []string{
			`non-bool-validation/policy.yaml: ValidatingPolicy returns-dyn: spec.matchConditions[0].expression: CEL compile error: line 1 column 10: undefined field 'anything'`,
			`non-bool-validation/policy.yaml: ValidatingPolicy returns-dyn: spec.validations[0].expression: the expression returns dyn, it must return bool`,
			`non-bool-validation/policy.yaml: ValidatingPolicy returns-dyn: spec.validations[1].expression: the expression returns int, it must return bool`,
		}},
		{"later-variable", []string{
			`later-variable/policy.yaml: ValidatingPolicy forward-reference: spec.variables[2].name: "bad-name" is not a valid CEL identifier`,
			`later-variable/policy.yaml: ValidatingPolicy forward-reference: spec.variables[0].expression: CEL compile error: line 1 column 10: undefined field 'second'`,
		}},
		{"bad-actions", []string{
			`spec.matchConstraints.resourceRules[0].operations[1]: "PATCH" is not an operation`,
			`spec.matchConstraints.matchPolicy: "Fuzzy" is not valid`,
			`spec.matchConstraints.namespaceSelector: "Maybe" is not a valid label selector operator`,
			`spec.validations[0].reason: "Teapot" is not valid`,
			`spec.validationActions[2]: "Enforce" is not a validation action`,
			`spec.validationActions: Deny and Warn may not be used together`,
			`spec.failurePolicy: "Sometimes" is not valid`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.dir, func(t *testing.T) {
			s, err := Load(os.DirFS("testdata/load"), tt.dir)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				if len(s.Policies()) != 1 {
					t.Fatalf("Policies() = %v", s.Policies())
				}
				return
			}
			var le *LoadError
			if !errors.As(err, &le) {
				t.Fatalf("Load error = %v (%T), want *LoadError", err, err)
			}
			if s != nil {
				t.Errorf("Load returned a Set along with errors")
			}
			if len(le.Problems) != len(tt.want) {
				t.Fatalf("got %d problems, want %d:\n%s", len(le.Problems), len(tt.want), strings.Join(le.Problems, "\n"))
			}
			for i, w := range tt.want {
				for _, sub := range strings.Split(w, "|") {
					if !strings.Contains(le.Problems[i], sub) {
						t.Errorf("problem %d:\n  %s\ndoes not contain\n  %s", i, le.Problems[i], sub)
					}
				}
				if !strings.Contains(err.Error(), le.Problems[i]) {
					t.Errorf("Error() does not list problem %d", i)
				}
			}
		})
	}
}

func TestLoadMissingDirectory(t *testing.T) {
	_, err := Load(os.DirFS("testdata"), "no-such-dir")
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load(missing) = %v, want fs.ErrNotExist", err)
	}
}

// TestLoadFS loads through an arbitrary fs.FS (a git snapshot in strata), from
// the root and from a subdirectory, multi-document files included; empty
// documents, other extensions and subdirectories are skipped.
func TestLoadFS(t *testing.T) {
	pol := func(name string) string {
		return `apiVersion: policies.kyverno.io/v1
kind: ValidatingPolicy
metadata:
  name: ` + name + `
spec:
  matchConstraints:
    resourceRules:
      - {apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [configmaps]}
  validations:
    - expression: "true"
`
	}
	fsys := fstest.MapFS{
		"p.yaml":               {Data: []byte(pol("root"))},
		"policies/a.yaml":      {Data: []byte("# leading comment\n---\n" + pol("b") + "---\n" + pol("a") + "---\n")},
		"policies/c.yml":       {Data: []byte(pol("c"))},
		"policies/notes.txt":   {Data: []byte("not yaml: [")},
		"policies/sub/x.yaml":  {Data: []byte("broken: [")},
		"policies/.hidden.yml": {Data: []byte("broken: [")},
	}
	s, err := Load(fsys, "policies")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"a", "b", "c"}, s.Policies()); diff != "" {
		t.Errorf("Policies() (-want +got):\n%s", diff)
	}
	if got := s.File("a"); got != "policies/a.yaml" {
		t.Errorf("File(a) = %q", got)
	}
	s, err = Load(fsys, ".")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"root"}, s.Policies()); diff != "" {
		t.Errorf("Policies() of . (-want +got):\n%s", diff)
	}
	if got := s.File("root"); got != "p.yaml" {
		t.Errorf("File(root) = %q", got)
	}
}
