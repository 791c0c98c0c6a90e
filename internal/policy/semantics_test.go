package policy

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
	authenticationv1 "k8s.io/api/authentication/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/strata-gitops/strata/internal/config"
)

// loadSemantics loads one file of testdata/semantics through an fs.FS.
func loadSemantics(t *testing.T, name string) *Set {
	t.Helper()
	data, err := os.ReadFile("testdata/semantics/" + name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Load(fstest.MapFS{"policies/" + name: {Data: data}}, "policies")
	if err != nil {
		t.Fatalf("Load %s: %v", name, err)
	}
	return s
}

const debugConfigMap = `
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: risk}
data: {debug: "true"}
`

func TestTierScoping(t *testing.T) {
	s := loadSemantics(t, "tier-scoped.yaml")
	if diff := cmp.Diff([]string{"every-tier"}, s.ForTier(config.PublicCloud)); diff != "" {
		t.Errorf("ForTier(public-cloud) (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"every-tier", "tier-scoped"}, s.ForTier(config.OnPrem)); diff != "" {
		t.Errorf("ForTier(on-prem) (-want +got):\n%s", diff)
	}
	for _, tt := range []struct {
		tier config.Tier
		want []string
	}{
		{config.PublicCloud, []string{"every-tier validations[0]"}},
		{config.PrivateCloud, []string{"every-tier validations[0]", "tier-scoped validations[0]"}},
		{config.OnPrem, []string{"every-tier validations[0]", "tier-scoped validations[0]"}},
		{"", []string{"every-tier validations[0]", "tier-scoped validations[0]"}}, // unknown tier: every policy
	} {
		in := Input{Operation: "CREATE", Object: obj(t, debugConfigMap), Tier: tt.tier}
		if diff := cmp.Diff(tt.want, policyNames(s.Evaluate(context.Background(), in))); diff != "" {
			t.Errorf("tier %q (-want +got):\n%s", tt.tier, diff)
		}
	}
}

func TestDelete(t *testing.T) {
	s := loadSemantics(t, "delete.yaml")
	protected := obj(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: protected, namespace: risk}\n")
	// CREATE: only on-write matches.
	got := s.Evaluate(context.Background(), Input{Operation: "CREATE", Object: protected})
	want := []Verdict{{Policy: "on-write", Rule: "validations[0]", Message: "cannot write protected", Action: ActionDeny}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("CREATE (-want +got):\n%s", diff)
	}
	// DELETE: no object, the old one is oldObject; on-write does not match.
	got = s.Evaluate(context.Background(), Input{Operation: "DELETE", OldObject: protected})
	want = []Verdict{{Policy: "on-delete", Rule: "validations[0]", Message: "deleting protected is audited", Action: ActionAudit}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("DELETE (-want +got):\n%s", diff)
	}
	other := obj(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: other, namespace: risk}\n")
	if got := s.Evaluate(context.Background(), Input{Operation: "DELETE", OldObject: other}); len(got) != 0 {
		t.Errorf("DELETE other: %+v", got)
	}
}

func TestMatchConditions(t *testing.T) {
	s := loadSemantics(t, "match-conditions.yaml")
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"not annotated: skipped", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: risk}\n", nil},
		{"annotated, no data: denied", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: risk, annotations: {example.com/checked: 'true'}}\n",
			[]string{"match-conditions validations[0]"}},
		{"annotated with data: allowed", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: risk, annotations: {example.com/checked: 'true'}}\ndata: {a: b}\n", nil},
		{"second condition false: skipped", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: kube-system, annotations: {example.com/checked: 'true'}}\n", nil},
	}
	for _, tt := range tests {
		got := s.Evaluate(context.Background(), Input{Operation: "CREATE", Object: obj(t, tt.yaml)})
		if diff := cmp.Diff(tt.want, policyNames(got)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
}

func TestMatchConditionErrors(t *testing.T) {
	s := loadSemantics(t, "match-condition-errors.yaml")
	// data has no "mode": the condition errors. Fail: a verdict; Ignore: skipped.
	got := s.Evaluate(context.Background(), Input{Operation: "CREATE", Object: obj(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: risk}\ndata: {other: x}\n")})
	if diff := cmp.Diff([]string{"condition-error-fail matchConditions[strict-mode]"}, policyNames(got)); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	for _, sub := range []string{"could not decide whether the policy applies", "no such key: mode", "fails closed", "failurePolicy: Ignore"} {
		if !strings.Contains(got[0].Message, sub) {
			t.Errorf("message %q does not contain %q", got[0].Message, sub)
		}
	}
	// mode strict: both apply and deny.
	got = s.Evaluate(context.Background(), Input{Operation: "CREATE", Object: obj(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: risk}\ndata: {mode: strict}\n")})
	if diff := cmp.Diff([]string{"condition-error-fail validations[0]", "condition-error-ignore validations[0]"}, policyNames(got)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestNamespaceSelector(t *testing.T) {
	s := loadSemantics(t, "namespace-selector.yaml")
	ledger := obj(t, "apiVersion: v1\nkind: Namespace\nmetadata: {name: ledger, labels: {strata.dev/sensitivity: restricted}}\n")
	risk := obj(t, "apiVersion: v1\nkind: Namespace\nmetadata: {name: risk, labels: {strata.dev/sensitivity: internal}}\n")
	cm := func(ns string) map[string]any {
		return obj(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: "+ns+"}\n")
	}
	tests := []struct {
		name string
		in   Input
		want []Verdict
	}{
		{"restricted namespace", Input{Operation: "CREATE", Object: cm("ledger"), Namespace: ledger}, []Verdict{
			{Policy: "ledger-by-name", Rule: "validations[0]", Message: "ledger ConfigMaps are reviewed", Action: ActionWarn},
			{Policy: "restricted-namespaces", Rule: "validations[0]", Message: "denied in ledger", Action: ActionDeny},
		}},
		{"internal namespace", Input{Operation: "CREATE", Object: cm("risk"), Namespace: risk}, nil},
		{"unknown namespace: only its name label is known", Input{Operation: "CREATE", Object: cm("ledger")}, []Verdict{
			{Policy: "ledger-by-name", Rule: "validations[0]", Message: "the expression could not be evaluated (no such key: metadata); strata fails closed, as Kyverno does: fix the object, or make the policy's expression handle it (e.g. guard optional fields with has())", Action: ActionWarn},
		}},
		{"a Namespace is matched by its own labels", Input{Operation: "CREATE", Object: ledger}, []Verdict{
			{Policy: "restricted-namespaces", Rule: "validations[0]", Message: "denied in ledger", Action: ActionDeny},
		}},
		{"namespace object of another namespace", Input{Operation: "CREATE", Object: cm("ledger"), Namespace: risk}, []Verdict{
			{Policy: "ledger-by-name", Rule: "matchConstraints", Message: `could not decide whether the policy applies: namespace "ledger" was requested but the namespace object given is "risk"; strata fails closed: make the request's namespace known to strata`, Action: ActionWarn},
			{Policy: "restricted-namespaces", Rule: "matchConstraints", Message: `could not decide whether the policy applies: namespace "ledger" was requested but the namespace object given is "risk"; strata fails closed: make the request's namespace known to strata`, Action: ActionDeny},
		}},
	}
	for _, tt := range tests {
		got := s.Evaluate(context.Background(), tt.in)
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
	// The caller's namespace object is not modified (the name label is added to a copy).
	if _, ok := ledger["metadata"].(map[string]any)["labels"].(map[string]any)["kubernetes.io/metadata.name"]; ok {
		t.Errorf("Evaluate modified the Namespace it was given")
	}
}

func TestVariables(t *testing.T) {
	s := loadSemantics(t, "variables.yaml")
	tests := []struct {
		name, yaml string
		want       []Verdict
	}{
		{"two keys: allowed, broken never evaluated", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: risk}\ndata: {a: '1', b: '2'}\n", nil},
		{"three keys", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: risk}\ndata: {a: '1', b: '2', c: '3'}\n", []Verdict{
			{Policy: "variables", Rule: "validations[0]", Message: "at most 2 keys, got 3", Action: ActionDeny},
		}},
		{"one key: the lazy variable is evaluated and fails", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: risk}\ndata: {a: '1'}\n", []Verdict{
			{Policy: "variables", Rule: "validations[1]", Message: `the expression could not be evaluated (variable "broken": no such key: missing); strata fails closed, as Kyverno does: fix the object, or make the policy's expression handle it (e.g. guard optional fields with has())`, Action: ActionDeny},
		}},
	}
	for _, tt := range tests {
		got := s.Evaluate(context.Background(), Input{Operation: "CREATE", Object: obj(t, tt.yaml)})
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
}

func TestMessages(t *testing.T) {
	s := loadSemantics(t, "messages.yaml")
	for _, tt := range []struct{ name, want string }{
		{"a", "dynamic message for a"},
		{"b", "failed to evaluate message expression: no such key: missing"},
		{"c", "CEL expression validation failed at index 2: object.metadata.name != 'c'"},
	} {
		in := Input{Operation: "CREATE", Object: obj(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: "+tt.name+", namespace: risk}\ndata: {}\n")}
		got := s.Evaluate(context.Background(), in)
		if len(got) != 1 || got[0].Message != tt.want {
			t.Errorf("%s: got %+v, want one verdict with message %q", tt.name, got, tt.want)
		}
	}
}

// TestRuntimeError: a validation that fails to evaluate is a verdict (fail
// closed) under failurePolicy Fail and, as in Kyverno, under Ignore too.
func TestRuntimeError(t *testing.T) {
	s := loadSemantics(t, "runtime-error.yaml")
	got := s.Evaluate(context.Background(), Input{Operation: "CREATE", Object: obj(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: risk}\ndata: {}\n")})
	if diff := cmp.Diff([]string{"runtime-error-fail validations[0]", "runtime-error-ignore validations[0]"}, policyNames(got)); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	if got[0].Action != ActionDeny || got[1].Action != ActionWarn {
		t.Errorf("actions: %+v", got)
	}
	for _, v := range got {
		for _, sub := range []string{"could not be evaluated", "no such key: mode", "fails closed"} {
			if !strings.Contains(v.Message, sub) {
				t.Errorf("message %q does not contain %q", v.Message, sub)
			}
		}
	}
	got = s.Evaluate(context.Background(), Input{Operation: "CREATE", Object: obj(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: risk}\ndata: {mode: strict}\n")})
	if len(got) != 0 {
		t.Errorf("strict: %+v", got)
	}
}

func TestMatching(t *testing.T) {
	s := loadSemantics(t, "matching.yaml")
	tests := []struct {
		name string
		in   Input
		want []string
	}{
		{"object selector on the object", Input{Operation: "CREATE", Object: obj(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: risk, labels: {team: payments}}\n")},
			[]string{"object-selector validations[0]"}},
		{"object selector on the old object (DELETE)", Input{Operation: "DELETE", OldObject: obj(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: risk, labels: {team: payments}}\n")},
			[]string{"object-selector validations[0]"}},
		{"deployment", Input{Operation: "CREATE", Object: obj(t, "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d, namespace: risk}\n")},
			[]string{"apps-but-not-daemonsets validations[0]"}},
		{"daemonset excluded", Input{Operation: "CREATE", Object: obj(t, "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: d, namespace: risk}\n")}, nil},
		{"deployment update: operation not listed", Input{Operation: "UPDATE", Object: obj(t, "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d, namespace: risk}\n")}, nil},
		{"deployment scale subresource: * does not match subresources", Input{Operation: "CREATE", SubResource: "scale", Object: obj(t, "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d, namespace: risk}\n")}, nil},
		{"pod status", Input{Operation: "UPDATE", SubResource: "status", Object: obj(t, "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: risk}\n")},
			[]string{"named-and-status validations[0]"}},
		{"pod main resource", Input{Operation: "UPDATE", Object: obj(t, "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: risk}\n")}, nil},
		{"named secret", Input{Operation: "CREATE", Object: obj(t, "apiVersion: v1\nkind: Secret\nmetadata: {name: db-password, namespace: risk}\n")},
			[]string{"named-and-status validations[0]"}},
		{"other secret", Input{Operation: "CREATE", Object: obj(t, "apiVersion: v1\nkind: Secret\nmetadata: {name: api-key, namespace: risk}\n")}, nil},
		{"generated name", Input{Operation: "CREATE", Object: obj(t, "apiVersion: v1\nkind: Secret\nmetadata: {generateName: gen-x, namespace: risk}\n")},
			[]string{"named-and-status validations[0]"}},
		{"cluster-scoped", Input{Operation: "CREATE", Object: obj(t, "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: r}\n")},
			[]string{"cluster-scope-only validations[0]"}},
		{"a Namespace is cluster-scoped", Input{Operation: "CREATE", Object: obj(t, "apiVersion: v1\nkind: Namespace\nmetadata: {name: n}\n")},
			[]string{"cluster-scope-only validations[0]"}},
		{"explicit resource wins over the guess", Input{Operation: "CREATE", Resource: schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "daemonsets"},
			Object: obj(t, "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d, namespace: risk}\n")}, nil},
	}
	for _, tt := range tests {
		got := s.Evaluate(context.Background(), tt.in)
		if diff := cmp.Diff(tt.want, policyNames(got)); diff != "" {
			t.Errorf("%s (-want +got):\n%s\n%+v", tt.name, diff, got)
		}
	}
}

func TestRequestVariable(t *testing.T) {
	s := loadSemantics(t, "request.yaml")
	in := Input{
		Operation: "UPDATE",
		Object:    obj(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: risk}\n"),
		OldObject: obj(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: risk}\n"),
		DryRun:    true,
		UserInfo:  authenticationv1.UserInfo{Username: "alice", Groups: []string{"dev", "oncall"}},
	}
	got := s.Evaluate(context.Background(), in)
	want := []Verdict{{Policy: "request", Rule: "validations[0]", Action: ActionDeny,
		Message: "UPDATE /v1/ConfigMap configmaps risk/c by alice in dev,oncall dryRun=true object=c"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestNumbersAndCostLimit(t *testing.T) {
	s := loadSemantics(t, "numbers-and-cost.yaml")
	deploy := func(replicas string) map[string]any {
		return obj(t, `{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "risk"},
			"spec": {"replicas": `+replicas+`, "template": {"spec": {"containers": [{"name": "c", "ports": [{"containerPort": 8080}]}]}}}}`)
	}
	if got := s.Evaluate(context.Background(), Input{Operation: "CREATE", Object: deploy("3")}); len(got) != 0 {
		t.Errorf("3 replicas: %+v", got)
	}
	got := s.Evaluate(context.Background(), Input{Operation: "CREATE", Object: deploy("5")})
	if diff := cmp.Diff([]Verdict{{Policy: "replicas", Rule: "validations[0]", Message: "at most 3 replicas, got 5", Action: ActionDeny}}, got); diff != "" {
		t.Errorf("5 replicas (-want +got):\n%s", diff)
	}
	got = s.Evaluate(context.Background(), Input{Operation: "CREATE", Object: obj(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: risk}\n")})
	if len(got) != 1 || got[0].Policy != "too-expensive" || !strings.Contains(got[0].Message, "cost limit exceeded") {
		t.Errorf("too expensive: %+v", got)
	}
}

func TestCancelledContext(t *testing.T) {
	s := loadSemantics(t, "numbers-and-cost.yaml")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	got := s.Evaluate(ctx, Input{Operation: "CREATE", Object: obj(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: risk}\n")})
	if len(got) != 1 || !strings.Contains(got[0].Message, "could not be evaluated") {
		t.Errorf("cancelled: %+v", got)
	}
}

func TestEvaluateConcurrently(t *testing.T) {
	s := loadRepoPolicies(t)
	docs := readDocs(t, "testdata/nonroot-readonly-rootfs/denied-writable-rootfs-cronjob.yaml")
	in := fixtureInput(t, docs, config.PrivateCloud)
	want := s.Evaluate(context.Background(), in)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				if diff := cmp.Diff(want, s.Evaluate(context.Background(), in)); diff != "" {
					t.Errorf("concurrent Evaluate differs:\n%s", diff)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestGuessResource(t *testing.T) {
	for _, tt := range []struct {
		gvk  schema.GroupVersionKind
		want schema.GroupVersionResource
	}{
		{schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}},
		{schema.GroupVersionKind{Version: "v1", Kind: "Service"}, schema.GroupVersionResource{Version: "v1", Resource: "services"}},
		{schema.GroupVersionKind{Group: "networking.k8s.io", Version: "v1", Kind: "NetworkPolicy"}, schema.GroupVersionResource{Group: "networking.k8s.io", Version: "v1", Resource: "networkpolicies"}},
	} {
		if got := GuessResource(tt.gvk); got != tt.want {
			t.Errorf("GuessResource(%v) = %v, want %v", tt.gvk, got, tt.want)
		}
	}
}

func TestNilSet(t *testing.T) {
	var s *Set
	if s.Evaluate(context.Background(), Input{}) != nil || s.Policies() != nil || s.ForTier(config.OnPrem) != nil {
		t.Error("nil Set is not empty")
	}
}
