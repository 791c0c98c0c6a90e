package desired_test

import (
	"context"
	"errors"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"sigs.k8s.io/kustomize/api/resource"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/strata-gitops/strata/internal/desired"
	"github.com/strata-gitops/strata/internal/labels"
	"github.com/strata-gitops/strata/internal/placement"
	"github.com/strata-gitops/strata/internal/render"
	"github.com/strata-gitops/strata/internal/source"
)

// snapshot returns an in-memory snapshot holding files (repository-relative
// path → content) at commit (nil revision when commit is "").
func snapshot(t *testing.T, commit string, files map[string]string) *source.Snapshot {
	t.Helper()
	mem := filesys.MakeFsInMemory()
	for p, content := range files {
		if err := mem.WriteFile("/"+p, []byte(content)); err != nil {
			t.Fatalf("writing %s: %v", p, err)
		}
	}
	s := &source.Snapshot{FS: mem, Root: "/"}
	if commit != "" {
		s.Revision = &source.Revision{Commit: commit}
	}
	return s
}

const strataYAML = `apiVersion: strata.dev/v1alpha1
kind: Config
tiers:
  public:       [public-cloud, private-cloud, on-prem]
  internal:     [private-cloud, on-prem]
  confidential: [private-cloud, on-prem]
  restricted:   [on-prem]
environments:
  prod:
    path: overlays/prod
    clusters:
      - {name: public-a, tier: public-cloud,  cost: 1}
      - {name: public-b, tier: public-cloud,  cost: 1}
      - {name: private,  tier: private-cloud, cost: 3}
      - {name: onprem,   tier: on-prem,       cost: 5}
approvals:
  public: 0
  internal: 1
  confidential: 1
  restricted: 2
`

const kustomization = `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
- namespaces.yaml
- web.yaml
- risk.yaml
- ledger.yaml
`

const namespacesYAML = `apiVersion: v1
kind: Namespace
metadata:
  name: web
  labels:
    strata.dev/sensitivity: public
---
apiVersion: v1
kind: Namespace
metadata:
  name: risk
  labels:
    strata.dev/sensitivity: internal
---
apiVersion: v1
kind: Namespace
metadata:
  name: ledger
`

const webYAML = `apiVersion: v1
kind: ConfigMap
metadata:
  name: site
  namespace: web
data:
  greeting: hello
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: bad
  namespace: web
data:
  password: hunter2
`

const riskYAML = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: dashboard
  namespace: risk
  labels:
    app: dashboard
spec:
  replicas: 1
  selector:
    matchLabels: {app: dashboard}
  template:
    metadata:
      labels: {app: dashboard}
    spec:
      containers:
      - name: dashboard
        image: dashboard:v1
`

const ledgerYAML = `apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: ledger
  labels:
    strata.dev/sensitivity: restricted
  annotations:
    team: ledger
data:
  currency: EUR
`

func prodFiles() map[string]string {
	return map[string]string{
		"strata.yaml":                          strataYAML,
		"overlays/prod/kustomization.yaml":     kustomization,
		"overlays/prod/namespaces.yaml":        namespacesYAML,
		"overlays/prod/web.yaml":               webYAML,
		"overlays/prod/risk.yaml":              riskYAML,
		"overlays/prod/ledger.yaml":            ledgerYAML,
		"overlays/prod/unused/not-rendered.md": "not a manifest",
	}
}

func build(t *testing.T, snap *source.Snapshot) (*desired.State, error) {
	t.Helper()
	cfg, err := desired.LoadConfig(snap)
	if err != nil {
		t.Fatalf("LoadConfig: %v", err)
	}
	// These tests read the stamped resources; TestObjectsMatchKeptResources
	// checks that the Objects the reconciler applies stamp the same.
	opts := desired.DefaultOptions()
	opts.KeepResources = true
	return desired.Build(snap, cfg, "prod", opts)
}

func mustBuild(t *testing.T, snap *source.Snapshot) *desired.State {
	t.Helper()
	st, err := build(t, snap)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return st
}

func id(r *resource.Resource) string {
	if ns := r.GetNamespace(); ns != "" {
		return r.GetKind() + " " + ns + "/" + r.GetName()
	}
	return r.GetKind() + " " + r.GetName()
}

func ids(rs []*resource.Resource) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = id(r)
	}
	return out
}

func TestBuildStampsPlacedObjects(t *testing.T) {
	snap := snapshot(t, "0123456789abcdef0123456789abcdef01234567", prodFiles())
	st := mustBuild(t, snap)

	if st.Environment != "prod" || st.Revision != "0123456789abcdef0123456789abcdef01234567" {
		t.Errorf("Environment, Revision = %q, %q", st.Environment, st.Revision)
	}
	if diff := cmp.Diff([]string{"public-a", "public-b", "private", "onprem"}, st.ClusterNames()); diff != "" {
		t.Errorf("ClusterNames (-want +got):\n%s", diff)
	}
	if len(st.Placement.Decisions) != len(st.Resources) {
		t.Fatalf("%d decisions for %d resources", len(st.Placement.Decisions), len(st.Resources))
	}
	for _, d := range st.Placement.Decisions {
		r := st.Resources[d.Index]
		l, a := r.GetLabels(), r.GetAnnotations()
		if l[labels.ManagedBy] != labels.ManagedByValue {
			t.Errorf("%s: label %s = %q, want %q", id(r), labels.ManagedBy, l[labels.ManagedBy], labels.ManagedByValue)
		}
		if l[labels.Environment] != "prod" {
			t.Errorf("%s: label %s = %q, want prod", id(r), labels.Environment, l[labels.Environment])
		}
		if a[labels.Revision] != st.Revision {
			t.Errorf("%s: annotation %s = %q, want %q", id(r), labels.Revision, a[labels.Revision], st.Revision)
		}
		if a[labels.Placement] != d.Reason || d.Reason == "" {
			t.Errorf("%s: annotation %s = %q, want the decision's reason %q", id(r), labels.Placement, a[labels.Placement], d.Reason)
		}
	}
	// Stamping keeps what the manifests had.
	for _, r := range st.Resources {
		if id(r) != "ConfigMap ledger/settings" {
			continue
		}
		if r.GetLabels()[labels.Sensitivity] != "restricted" || r.GetAnnotations()["team"] != "ledger" {
			t.Errorf("stamping lost the object's own metadata: labels %v annotations %v", r.GetLabels(), r.GetAnnotations())
		}
	}
}

func TestBuildWorkTreeRevisionLabel(t *testing.T) {
	st := mustBuild(t, snapshot(t, "", prodFiles()))
	if st.Revision != "worktree" {
		t.Fatalf("Revision = %q, want worktree", st.Revision)
	}
	for _, r := range st.Resources {
		if got := r.GetAnnotations()[labels.Revision]; got != "worktree" {
			t.Errorf("%s: revision annotation %q, want worktree", id(r), got)
		}
	}
}

func TestForClusterOrder(t *testing.T) {
	st := mustBuild(t, snapshot(t, "abc", prodFiles()))
	// Render order is kustomize's (Namespaces first, then by kind, file order within a kind).
	want := map[string][]string{
		"public-a": {"Namespace web", "ConfigMap web/site", "ConfigMap web/bad"},
		"public-b": {"Namespace web", "ConfigMap web/site", "ConfigMap web/bad"},
		"private":  {"Namespace risk", "Deployment risk/dashboard"},
		"onprem":   {"Namespace ledger", "ConfigMap ledger/settings"},
	}
	for _, c := range st.ClusterNames() {
		got := st.ForCluster(c)
		// Render order: the subsequence of Resources that goes to c.
		var inOrder []string
		pos := map[*resource.Resource]int{}
		for i, r := range st.Resources {
			pos[r] = i
		}
		last := -1
		for _, r := range got {
			if pos[r] <= last {
				t.Errorf("%s: %s is out of render order", c, id(r))
			}
			last = pos[r]
			inOrder = append(inOrder, id(r))
		}
		if diff := cmp.Diff(want[c], inOrder); diff != "" {
			t.Errorf("ForCluster(%s) (-want +got):\n%s", c, diff)
		}
		// The manifests are the stamped ones.
		for _, r := range got {
			if r.GetLabels()[labels.ManagedBy] != labels.ManagedByValue {
				t.Errorf("ForCluster(%s): %s is not stamped", c, id(r))
			}
		}
	}
	if got := st.ForCluster("nowhere"); len(got) != 0 {
		t.Errorf("ForCluster(unknown) = %v, want none", ids(got))
	}
}

func TestBuildViolations(t *testing.T) {
	files := prodFiles()
	// An unlabeled object in an unlabeled Namespace, and a restricted
	// object asking for the public cloud.
	files["overlays/prod/kustomization.yaml"] = kustomization + "- bad/stray.yaml\n"
	files["overlays/prod/bad/stray.yaml"] = `apiVersion: v1
kind: ConfigMap
metadata:
  name: stray
  namespace: ledger
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: leak
  namespace: ledger
  labels:
    strata.dev/sensitivity: restricted
  annotations:
    strata.dev/tiers: public-cloud
`
	st, err := build(t, snapshot(t, "abc", files))
	var verr *placement.ViolationsError
	if !errors.As(err, &verr) {
		t.Fatalf("Build error = %v (%T), want a *placement.ViolationsError", err, err)
	}
	if st == nil {
		t.Fatal("Build returned no state with the violations; plan and render need it for reporting")
	}
	if verr.Environment != "prod" {
		t.Errorf("ViolationsError.Environment = %q", verr.Environment)
	}
	type got struct {
		Object, Rule, Source string
	}
	var gots []got
	for _, v := range verr.Violations {
		gots = append(gots, got{v.Object.String(), string(v.Rule), v.Object.Source})
	}
	want := []got{
		{"ConfigMap ledger/leak", string(placement.RuleTierNotAllowed), "overlays/prod/bad/stray.yaml"},
		{"ConfigMap ledger/stray", string(placement.RuleUnlabeled), "overlays/prod/bad/stray.yaml"},
	}
	sort.Slice(gots, func(i, j int) bool { return gots[i].Object < gots[j].Object })
	if diff := cmp.Diff(want, gots); diff != "" {
		t.Errorf("violations (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(verr.Violations, st.Placement.Violations); diff != "" {
		t.Errorf("the state's violations differ from the error's (-err +state):\n%s", diff)
	}
	if !strings.Contains(err.Error(), "overlays/prod/bad/stray.yaml") {
		t.Errorf("error does not name the file:\n%v", err)
	}
	// Nothing of a state that must not be applied carries strata's stamps.
	for _, r := range st.Resources {
		if _, ok := r.GetLabels()[labels.ManagedBy]; ok {
			t.Errorf("%s is stamped in a state with violations", id(r))
		}
		if _, ok := r.GetAnnotations()[labels.Placement]; ok {
			t.Errorf("%s carries a placement annotation in a state with violations", id(r))
		}
	}
}

func TestBuildErrors(t *testing.T) {
	snap := snapshot(t, "abc", prodFiles())
	cfg, err := desired.LoadConfig(snap)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := desired.Build(snap, cfg, "staging", desired.DefaultOptions()); err == nil || !strings.Contains(err.Error(), `"staging"`) {
		t.Errorf("unknown environment: err = %v", err)
	}
	files := prodFiles()
	files["overlays/prod/kustomization.yaml"] = kustomization + "- missing.yaml\n"
	_, err = build(t, snapshot(t, "abc", files))
	var rerr *render.Error
	if !errors.As(err, &rerr) {
		t.Errorf("render failure: err = %v (%T), want a *render.Error", err, err)
	}
	if _, err := desired.LoadConfig(snapshot(t, "abc", map[string]string{"x": "y"})); err == nil || !strings.Contains(err.Error(), "abc") {
		t.Errorf("LoadConfig without strata.yaml: err = %v, want an error naming the revision", err)
	}
}

func TestBuildHealthy(t *testing.T) {
	files := prodFiles()
	files["overlays/prod/web.yaml"] = strings.Replace(webYAML, "  name: site\n", "  name: site\n  annotations:\n    strata.dev/failover: \"true\"\n", 1)
	snap := snapshot(t, "abc", files)
	cfg, err := desired.LoadConfig(snap)
	if err != nil {
		t.Fatal(err)
	}
	opts := desired.DefaultOptions()
	opts.KeepResources = true
	opts.Healthy = map[string]bool{"private": true, "onprem": true}
	st, err := desired.Build(snap, cfg, "prod", opts)
	if err != nil {
		t.Fatal(err)
	}
	// Options.Healthy reaches placement: the failover object leaves the
	// public cloud, the other one waits there.
	if diff := cmp.Diff([]string{"Namespace web", "Namespace risk", "Deployment risk/dashboard", "ConfigMap web/site"}, ids(st.ForCluster("private")), cmpSorted); diff != "" {
		t.Errorf("ForCluster(private) (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"Namespace web", "ConfigMap web/bad"}, ids(st.ForCluster("public-a")), cmpSorted); diff != "" {
		t.Errorf("ForCluster(public-a) (-want +got):\n%s", diff)
	}
}

var cmpSorted = cmpopts.SortSlices(func(a, b string) bool { return a < b })

// renderFiles renders an overlay at overlays/x made of files.
func renderFiles(t *testing.T, files map[string]string) []*resource.Resource {
	t.Helper()
	snap := snapshot(t, "abc", files)
	res, err := render.Overlay(snap, "x", "overlays/x", render.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestObjectsScope(t *testing.T) {
	res := renderFiles(t, map[string]string{
		"overlays/x/kustomization.yaml": "resources:\n- all.yaml\n",
		"overlays/x/all.yaml": `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Cluster
  names: {kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object}}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: things.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {kind: Thing, plural: things}
  versions:
  - {name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object}}}
---
apiVersion: example.com/v1
kind: Widget
metadata:
  name: w
  namespace: should-be-ignored
---
apiVersion: example.com/v1
kind: Thing
metadata:
  name: t
  namespace: apps
---
apiVersion: other.example.com/v1
kind: Gadget
metadata:
  name: g
  namespace: apps
---
apiVersion: other.example.com/v1
kind: Widget
metadata:
  name: w2
  namespace: apps
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: reader
---
apiVersion: v1
kind: Namespace
metadata:
  name: apps
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: cm
  namespace: apps
  labels: {strata.dev/sensitivity: public}
  annotations: {note: x}
---
apiVersion: v1
kind: PersistentVolume
metadata:
  name: pv
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteOnce]
  claimRef: {namespace: apps, name: data}
`,
	})
	objs := desired.Objects(res)
	if len(objs) != len(res) {
		t.Fatalf("%d objects for %d resources", len(objs), len(res))
	}
	type scope struct {
		Namespace      string
		ClusterScoped  bool
		DefinesGroup   string
		DefinesKind    string
		ClaimNamespace string
	}
	got := map[string]scope{}
	for i, o := range objs {
		if o.Kind != res[i].GetKind() || o.Name != res[i].GetName() || o.Group != res[i].GetGvk().Group {
			t.Errorf("object %d = %s/%s %s, resource %s", i, o.Group, o.Kind, o.Name, id(res[i]))
		}
		got[o.Group+"/"+o.Kind+"/"+o.Name] = scope{o.Namespace, o.ClusterScoped, o.DefinesGroup, o.DefinesKind, o.ClaimNamespace}
	}
	want := map[string]scope{
		"apiextensions.k8s.io/CustomResourceDefinition/widgets.example.com": {"", true, "example.com", "Widget", ""},
		"apiextensions.k8s.io/CustomResourceDefinition/things.example.com":  {"", true, "example.com", "Thing", ""},
		// A cluster-scoped CRD's resource is cluster-scoped, whatever its manifest says.
		"example.com/Widget/w": {"", true, "", "", ""},
		"example.com/Thing/t":  {"apps", false, "", "", ""},
		// Unknown kinds are namespaced, as the apiserver defaults them; a
		// Widget of another group is not the CRD's Widget.
		"other.example.com/Gadget/g":                   {"apps", false, "", "", ""},
		"other.example.com/Widget/w2":                  {"apps", false, "", "", ""},
		"rbac.authorization.k8s.io/ClusterRole/reader": {"", true, "", "", ""},
		"/Namespace/apps":                              {"", true, "", "", ""},
		"/ConfigMap/cm":                                {"apps", false, "", "", ""},
		// A volume bound to a claim has its claim's Namespace as its floor,
		// as the webhook judges it.
		"/PersistentVolume/pv": {"", true, "", "", "apps"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("scope (-want +got):\n%s", diff)
	}
	for _, o := range objs {
		if o.Kind == "ConfigMap" {
			if o.Labels[labels.Sensitivity] != "public" || o.Annotations["note"] != "x" {
				t.Errorf("ConfigMap labels %v annotations %v", o.Labels, o.Annotations)
			}
		}
	}
}

const denyPasswords = `apiVersion: policies.kyverno.io/v1
kind: ValidatingPolicy
metadata:
  name: no-passwords-in-configmaps
spec:
  validationActions: [Deny]
  matchConstraints:
    resourceRules:
    - apiGroups: [""]
      apiVersions: [v1]
      operations: [CREATE, UPDATE]
      resources: [configmaps]
  validations:
  - expression: "!has(object.data) || !('password' in object.data)"
    messageExpression: "'ConfigMap ' + object.metadata.name + ' holds a password in ' + namespaceObject.metadata.name"
`

func TestVerdicts(t *testing.T) {
	files := prodFiles()
	files["policies/no-passwords.yaml"] = denyPasswords
	files["policies/README.md"] = "not a policy"
	snap := snapshot(t, "abc", files)
	set, err := desired.LoadPolicies(snap)
	if err != nil {
		t.Fatalf("LoadPolicies: %v", err)
	}
	if diff := cmp.Diff([]string{"no-passwords-in-configmaps"}, set.Policies()); diff != "" {
		t.Fatalf("policies (-want +got):\n%s", diff)
	}
	st := mustBuild(t, snap)
	vs, err := st.Verdicts(context.Background(), set)
	if err != nil {
		t.Fatal(err)
	}
	type verdict struct {
		Cluster, Tier, Object, Policy, Message, Action string
	}
	var got []verdict
	for _, v := range vs {
		got = append(got, verdict{v.Cluster, string(v.Tier), v.Object.String(), v.Policy, v.Message, v.Action})
		if !strings.Contains(v.String(), "ConfigMap web/bad in "+v.Cluster) {
			t.Errorf("String() = %q", v.String())
		}
	}
	// One verdict per cluster the object goes to; the namespace object
	// (namespaceObject) is the rendered Namespace.
	want := []verdict{
		{"public-a", "public-cloud", "ConfigMap web/bad", "no-passwords-in-configmaps", "ConfigMap bad holds a password in web", "Deny"},
		{"public-b", "public-cloud", "ConfigMap web/bad", "no-passwords-in-configmaps", "ConfigMap bad holds a password in web", "Deny"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("verdicts (-want +got):\n%s", diff)
	}

	// Without a policy set there is nothing to evaluate.
	if vs, err := st.Verdicts(context.Background(), nil); err != nil || vs != nil {
		t.Errorf("Verdicts(nil) = %v, %v", vs, err)
	}
}

func TestVerdictsTierScopedPolicy(t *testing.T) {
	files := prodFiles()
	// Only in on-prem: the public ConfigMap web/bad is not evaluated there.
	files["policies/no-passwords.yaml"] = strings.Replace(denyPasswords, "  name: no-passwords-in-configmaps\n",
		"  name: no-passwords-in-configmaps\n  annotations:\n    strata.dev/tiers: on-prem\n", 1)
	files["overlays/prod/ledger.yaml"] = ledgerYAML + "  password: x\n"
	snap := snapshot(t, "abc", files)
	set, err := desired.LoadPolicies(snap)
	if err != nil {
		t.Fatalf("LoadPolicies: %v", err)
	}
	vs, err := mustBuild(t, snap).Verdicts(context.Background(), set)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range vs {
		got = append(got, v.Cluster+" "+string(v.Tier)+" "+v.Object.String())
	}
	if diff := cmp.Diff([]string{"onprem on-prem ConfigMap ledger/settings"}, got); diff != "" {
		t.Errorf("verdicts (-want +got):\n%s", diff)
	}
}

func TestLoadPolicies(t *testing.T) {
	set, err := desired.LoadPolicies(snapshot(t, "abc", prodFiles()))
	if err != nil || set != nil {
		t.Errorf("no policies/ dir: LoadPolicies = %v, %v; want nil, nil", set, err)
	}
	files := prodFiles()
	files["policies/broken.yaml"] = "apiVersion: policies.kyverno.io/v1\nkind: ValidatingPolicy\nmetadata: {name: broken}\nspec:\n  validations:\n  - expression: 'object.'\n"
	_, err = desired.LoadPolicies(snapshot(t, "deadbeef", files))
	if err == nil || !strings.Contains(err.Error(), "deadbeef") || !strings.Contains(err.Error(), "policies/broken.yaml") {
		t.Errorf("broken policy: err = %v, want an error naming the revision and the file", err)
	}
}
