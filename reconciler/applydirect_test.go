package reconciler

import (
	"context"
	"errors"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/fluxcd/pkg/ssa"
	ssaerrors "github.com/fluxcd/pkg/ssa/errors"
	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-gitops/strata/internal/labels"
)

// requestCounter counts, per object name, the GETs and dry-runs a client
// sends to a real apiserver.
type requestCounter struct {
	mu      sync.Mutex
	gets    map[string]int
	dryRuns map[string]int
}

func (c *requestCounter) config(cfg *rest.Config) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		return roundTripper(func(r *http.Request) (*http.Response, error) {
			c.count(r)
			return rt.RoundTrip(r)
		})
	}
	return cfg
}

func (c *requestCounter) count(r *http.Request) {
	name := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case r.URL.Query().Get("dryRun") != "":
		c.dryRuns[name]++
	case r.Method == http.MethodGet:
		c.gets[name]++
	}
}

func (c *requestCounter) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gets, c.dryRuns = map[string]int{}, map[string]int{}
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// withSince marks objects as the reconciler does when the live object is
// what strata last applied: since is its resourceVersion now. Objects
// strata leaves alone (strata.dev/reconcile: disabled in git) get none, as
// in apply.
func withSince(t *testing.T, c client.Client, objs []*unstructured.Unstructured) []lazyObject {
	t.Helper()
	out := readyObjects(objs)
	for i, o := range objs {
		if isDisabled(o) {
			continue
		}
		live := &unstructured.Unstructured{}
		live.SetGroupVersionKind(o.GroupVersionKind())
		if err := c.Get(context.Background(), client.ObjectKeyFromObject(o), live); err != nil {
			t.Fatal(err)
		}
		out[i].since = live.GetResourceVersion()
	}
	return out
}

// An object that git changed and nobody else touched is applied in one
// round trip: no GET, no dry-run, and no wait for a cluster definition
// (Namespace, CRD, ClusterRole) that was ready already. The change set is still ssa's
// ApplyAllStaged's, configured for what changed and unchanged for what
// the apply left as it was (applied again with the same content).
func TestDirectApplySkipsGetAndDryRun(t *testing.T) {
	cfgs := startClusters(t)
	ref := testCluster(t, "ref-direct", cfgs["public"])
	counter := &requestCounter{}
	counter.reset()
	con := testCluster(t, "direct", counter.config(cfgs["private"]))
	const ns, n = "applydirect-equal", 40
	total := len(everyStage(t, ns, n, 1))
	for _, step := range []applyStep{
		// The first apply's actions depend on the cluster-scoped objects
		// other tests created already; it is compared with ssa's only.
		{"first apply", 1, nil},
		// 14 of 40 ConfigMaps (i%3 == 0) and 5 of 10 Deployments changed.
		{"changed in git", 2, map[ssa.Action]int{ssa.ConfiguredAction: 14 + 5, ssa.UnchangedAction: total - 1 - 19, ssa.SkippedAction: 1}},
		{"applied again", 2, map[ssa.Action]int{ssa.UnchangedAction: total - 1, ssa.SkippedAction: 1}},
	} {
		objs := readyObjects(everyStage(t, ns, n, step.gen))
		direct := step.gen > 1
		if direct {
			objs = withSince(t, con.Client, everyStage(t, ns, n, step.gen))
		}
		step.applyBoth(t, ref, con, ns, n, objs, counter.reset)
		if !direct {
			continue
		}
		// ssa's wait for the cluster definitions lists their kinds.
		for _, kinds := range []string{"namespaces", "customresourcedefinitions", "clusterroles"} {
			if n := counter.gets[kinds]; n > 0 {
				t.Errorf("%s: %d LISTs of %s: the cluster definitions applied directly were waited for", step.name, n, kinds)
			}
		}
		for _, lo := range objs {
			name := lo.id.GetName()
			if lo.since == "" {
				continue
			}
			if counter.gets[name]+counter.dryRuns[name] > 0 {
				t.Errorf("%s: %s %s: %d GETs and %d dry-runs, want none", step.name, lo.id.GetKind(), name, counter.gets[name], counter.dryRuns[name])
			}
		}
	}
}

// The LIST's resourceVersion is the direct apply's precondition: an
// on-call engineer who freezes an object (strata.dev/reconcile: disabled)
// after strata listed it and before strata applies it is not overridden,
// and a hand edit in that window is still seen as drift and restored by
// ssa's path.
func TestDirectApplyYieldsToAChangeSinceTheList(t *testing.T) {
	cfgs := startClusters(t)
	cl := testCluster(t, "direct-race", cfgs["onprem"])
	const ns, n = "applydirect-race", 12
	ctx := context.Background()
	if _, err := applyAllStagedConcurrent(ctx, cl.Manager, readyObjects(everyStage(t, ns, n, 1)), testApplyOptions(), applyChunks, applyBatch, nil); err != nil {
		t.Fatal(err)
	}
	// strata lists: every object is as it applied it.
	objs := withSince(t, cl.Client, everyStage(t, ns, n, 2))
	// Then, before the apply, someone freezes cm-000 and edits cm-003 by
	// hand (both change in generation 2).
	patch := func(name, body string) {
		cm := &unstructured.Unstructured{}
		cm.SetAPIVersion("v1")
		cm.SetKind("ConfigMap")
		cm.SetNamespace(ns)
		cm.SetName(name)
		if err := cl.Client.Patch(ctx, cm, client.RawPatch(types.MergePatchType, []byte(body)), client.FieldOwner("kubectl-edit")); err != nil {
			t.Fatal(err)
		}
	}
	patch("cm-000", `{"metadata":{"annotations":{"`+labels.Reconcile+`":"`+labels.ReconcileDisabled+`"}}}`)
	patch("cm-003", `{"data":{"value":"edited"}}`)

	dr := &DirectReport{}
	cs, err := applyAllStagedConcurrent(ctx, cl.Manager, objs, testApplyOptions(), applyChunks, applyBatch, dr)
	if err != nil {
		t.Fatal(err)
	}
	// Both refusals are counted and named, as conflicts; the rest went
	// directly.
	var fell []string
	for _, f := range dr.Fallbacks {
		fell = append(fell, f.Reason+" "+f.Object)
	}
	sort.Strings(fell)
	wantFell := []string{"conflict ConfigMap/" + ns + "/cm-000", "conflict ConfigMap/" + ns + "/cm-003"}
	if diff := cmp.Diff(wantFell, fell); diff != "" {
		t.Errorf("refused direct applies (-want +got):\n%s", diff)
	}
	if since := countSince(objs); dr.Applied != since-len(wantFell) {
		t.Errorf("%d applied directly, want %d (%d with since, %d refused)", dr.Applied, since-len(wantFell), since, len(wantFell))
	}
	actions := map[string]ssa.Action{}
	for _, e := range cs.Entries {
		actions[e.ObjMetadata.Name] = e.Action
	}
	for name, want := range map[string]struct {
		action ssa.Action
		value  string
	}{
		"cm-000": {ssa.SkippedAction, "1"},    // frozen: left as it is
		"cm-003": {ssa.ConfiguredAction, "2"}, // drift restored to git's
		"cm-006": {ssa.ConfiguredAction, "2"}, // changed in git only
	} {
		live := &unstructured.Unstructured{}
		live.SetAPIVersion("v1")
		live.SetKind("ConfigMap")
		if err := cl.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, live); err != nil {
			t.Fatal(err)
		}
		v, _, _ := unstructured.NestedString(live.Object, "data", "value")
		if v != want.value || actions[name] != want.action {
			t.Errorf("%s: value %q, change set %q; want %q, %q", name, v, actions[name], want.value, want.action)
		}
	}
}

// A direct apply the apiserver refuses goes through ssa's path, which
// names the object and says why (its dry-run error), as without it.
func TestDirectApplyRefusedFallsBackToSSA(t *testing.T) {
	cfgs := startClusters(t)
	cl := testCluster(t, "direct-refused", cfgs["public"])
	const ns = "applydirect-refused"
	ctx := context.Background()
	objs := everyStage(t, ns, 4, 1)
	if _, err := applyAllStagedConcurrent(ctx, cl.Manager, readyObjects(objs), testApplyOptions(), applyChunks, applyBatch, nil); err != nil {
		t.Fatal(err)
	}
	// Generation 2 with Deployment app-000's selector changed: immutable.
	next := everyStage(t, ns, 4, 2)
	for _, o := range next {
		if o.GetKind() == "Deployment" && o.GetName() == "app-000" {
			if err := unstructured.SetNestedField(o.Object, "changed", "spec", "selector", "matchLabels", "app"); err != nil {
				t.Fatal(err)
			}
			if err := unstructured.SetNestedField(o.Object, "changed", "spec", "template", "metadata", "labels", "app"); err != nil {
				t.Fatal(err)
			}
		}
	}
	dr := &DirectReport{}
	_, err := applyAllStagedConcurrent(ctx, cl.Manager, withSince(t, cl.Client, next), testApplyOptions(), applyChunks, applyBatch, dr)
	if len(dr.Fallbacks) != 1 || dr.Fallbacks[0].Reason != FallbackRefused || !strings.HasSuffix(dr.Fallbacks[0].Object, "/app-000") {
		t.Errorf("want one refused direct apply of Deployment app-000, got %+v", dr.Fallbacks)
	}
	var dre *ssaerrors.DryRunErr
	if !errors.As(err, &dre) || dre.InvolvedObject().GetName() != "app-000" {
		t.Fatalf("want ssa's dry-run error naming Deployment app-000, got %v", err)
	}
	if !strings.Contains(err.Error(), "immutable") {
		t.Errorf("error does not say why: %v", err)
	}
}

func countSince(objs []lazyObject) int {
	n := 0
	for _, lo := range objs {
		if lo.since != "" {
			n++
		}
	}
	return n
}

// An object strata never applied and the LIST did not find is created
// without ssa's dry-run: a GET of its name, then the apply. An object of
// that name that exists — made by hand, frozen (strata.dev/reconcile:
// disabled), or one an IfNotPresent object must not touch — takes ssa's
// path, which leaves it alone or adopts it as it always did.
func TestDirectCreateSkipsTheDryRunAndNeverOverwrites(t *testing.T) {
	counter := &requestCounter{}
	counter.reset()
	cl := testCluster(t, "direct-create", counter.config(startClusters(t)["public"]))
	ctx := context.Background()
	const ns = "direct-create"
	cm := func(name, value string) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "v1", "kind": "ConfigMap",
			"metadata": map[string]any{"name": name, "namespace": ns},
			"data":     map[string]any{"value": value},
		}}
	}
	if _, err := cl.Manager.ApplyAll(ctx, managed([]*unstructured.Unstructured{{Object: map[string]any{
		"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": ns}}}}), testApplyOptions()); err != nil {
		t.Fatal(err)
	}
	// By hand, without strata's labels: one frozen, one not.
	frozen, plain := cm("frozen", "by hand"), cm("plain", "by hand")
	frozen.SetAnnotations(map[string]string{labels.Reconcile: labels.ReconcileDisabled})
	for _, o := range []*unstructured.Unstructured{frozen, plain} {
		if err := cl.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	createOnly := cm("create-only", "from git")
	createOnly.SetAnnotations(map[string]string{labels.SSA: labels.SSAIfNotPresent})
	if err := cl.Client.Create(ctx, cm("create-only", "by hand")); err != nil {
		t.Fatal(err)
	}
	var items []applyItem
	for _, o := range managed([]*unstructured.Unstructured{cm("new", "from git"), cm("frozen", "from git"), cm("plain", "from git"), createOnly}) {
		items = append(items, applyItem{obj: o, create: true})
	}
	counter.reset()
	dr := &DirectReport{}
	entries, _, err := applyPart(ctx, cl.Manager, items, testApplyOptions(), dr)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]ssa.Action{}
	for _, e := range entries {
		got[e.ObjMetadata.Name] = e.Action
	}
	want := map[string]ssa.Action{"new": ssa.CreatedAction, "frozen": ssa.SkippedAction, "plain": ssa.ConfiguredAction, "create-only": ssa.SkippedAction}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("actions (-want +got):\n%s", diff)
	}
	if g, d := counter.gets["new"], counter.dryRuns["new"]; g != 1 || d != 0 {
		t.Errorf("the new ConfigMap cost %d GETs and %d dry-runs, want one GET and no dry-run: it was not created directly", g, d)
	}
	if dr.Applied != 1 || len(dr.Fallbacks) != 3 {
		t.Errorf("direct report: %d applied, %d fell back (%+v); want 1 and 3 (the three that existed)", dr.Applied, len(dr.Fallbacks), dr.Fallbacks)
	}
	for name, want := range map[string]string{"new": "from git", "frozen": "by hand", "plain": "from git", "create-only": "by hand"} {
		live := cm(name, "")
		if err := cl.Client.Get(ctx, client.ObjectKeyFromObject(live), live); err != nil {
			t.Fatal(err)
		}
		if v, _, _ := unstructured.NestedString(live.Object, "data", "value"); v != want {
			t.Errorf("ConfigMap %s holds %q, want %q", name, v, want)
		}
	}
}
