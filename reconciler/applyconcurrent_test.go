package reconciler

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/pkg/ssa"
	ssaerrors "github.com/fluxcd/pkg/ssa/errors"
	"github.com/fluxcd/pkg/ssa/utils"
	"github.com/google/go-cmp/cmp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-gitops/strata/internal/cluster"
	"github.com/strata-gitops/strata/internal/inventory"
	"github.com/strata-gitops/strata/internal/labels"
)

// everyStage returns testdata/applyconcurrent/every-stage.yaml in namespace
// ns, with n ConfigMaps and n/4 Deployments of generation gen: generation 2
// changes every third ConfigMap and every other Deployment.
func everyStage(t testing.TB, ns string, n, gen int) []*unstructured.Unstructured {
	t.Helper()
	data, err := os.ReadFile("testdata/applyconcurrent/every-stage.yaml")
	if err != nil {
		t.Fatal(err)
	}
	objs, err := utils.ReadObjects(strings.NewReader(strings.ReplaceAll(string(data), "NAMESPACE", ns)))
	if err != nil {
		t.Fatal(err)
	}
	return managed(append(objs, bulk(ns, n, gen)...))
}

// managed labels objs as strata's, as rendering does: strata's health wait
// (internal/cluster's status poller) reads only those.
func managed(objs []*unstructured.Unstructured) []*unstructured.Unstructured {
	for _, o := range objs {
		l := o.GetLabels()
		if l == nil {
			l = map[string]string{}
		}
		l[labels.ManagedBy] = labels.ManagedByValue
		o.SetLabels(l)
	}
	return objs
}

// readyObjects wraps objects already built for applyAllStagedConcurrent.
func readyObjects(objs []*unstructured.Unstructured) []lazyObject {
	out := make([]lazyObject, len(objs))
	for i, u := range objs {
		out[i] = lazyObject{id: u, build: func() *unstructured.Unstructured { return u }}
	}
	return out
}

// bulk returns n ConfigMaps and n/4 Deployments in namespace ns.
func bulk(ns string, n, gen int) []*unstructured.Unstructured {
	var objs []*unstructured.Unstructured
	for i := range n {
		v := "1"
		if gen > 1 && i%3 == 0 {
			v = fmt.Sprint(gen)
		}
		objs = append(objs, &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "v1", "kind": "ConfigMap",
			"metadata": map[string]any{"name": fmt.Sprintf("cm-%03d", i), "namespace": ns},
			"data":     map[string]any{"value": v},
		}})
	}
	for i := range n / 4 {
		replicas := int64(1)
		if gen > 1 && i%2 == 0 {
			replicas = int64(gen)
		}
		name := fmt.Sprintf("app-%03d", i)
		objs = append(objs, &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "apps/v1", "kind": "Deployment",
			"metadata": map[string]any{"name": name, "namespace": ns},
			"spec": map[string]any{
				"replicas": replicas,
				"selector": map[string]any{"matchLabels": map[string]any{"app": name}},
				"template": map[string]any{
					"metadata": map[string]any{"labels": map[string]any{"app": name}},
					"spec": map[string]any{"containers": []any{map[string]any{
						"name": "app", "image": "registry.example/app:1",
						"envFrom": []any{map[string]any{"configMapRef": map[string]any{"name": fmt.Sprintf("cm-%03d", i)}}},
					}}},
				},
			},
		}})
	}
	return objs
}

// testCluster connects to cfg the way strata does (internal/cluster: its
// ResourceManager, its concurrency and rate limits).
func testCluster(t testing.TB, name string, cfg *rest.Config) *cluster.Cluster {
	t.Helper()
	cl, err := cluster.NewCluster(name, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func testApplyOptions() ssa.ApplyOptions {
	opts := (&Reconciler{opts: DefaultOptions()}).applyOptions()
	opts.WaitInterval = 100 * time.Millisecond
	return opts
}

func countActions(cs *ssa.ChangeSet) map[ssa.Action]int {
	out := map[ssa.Action]int{}
	for _, e := range cs.Entries {
		out[e.Action]++
	}
	return out
}

// applyStep is one generation of everyStage and the actions its apply
// should report (nil: not checked).
type applyStep struct {
	name string
	gen  int
	want map[ssa.Action]int
}

// applyBoth applies the step's generation with ssa's ApplyAllStaged on ref
// and as objs with applyAllStagedConcurrent on con (calling before first,
// if set), and checks that both report the same change set, with the
// step's actions.
func (step applyStep) applyBoth(t *testing.T, ref, con *cluster.Cluster, ns string, n int, objs []lazyObject, before func()) *ssa.ChangeSet {
	t.Helper()
	ctx := context.Background()
	want, err := ref.Manager.ApplyAllStaged(ctx, everyStage(t, ns, n, step.gen), testApplyOptions())
	if err != nil {
		t.Fatalf("%s: ssa: %v", step.name, err)
	}
	if before != nil {
		before()
	}
	got, err := applyAllStagedConcurrent(ctx, con.Manager, objs, testApplyOptions(), applyChunks, applyBatch, nil)
	if err != nil {
		t.Fatalf("%s: concurrent: %v", step.name, err)
	}
	if diff := cmp.Diff(want.Entries, got.Entries); diff != "" {
		t.Errorf("%s: change set differs from ApplyAllStaged's (-ssa +concurrent):\n%s", step.name, diff)
	}
	if diff := cmp.Diff(step.want, countActions(got)); step.want != nil && diff != "" {
		t.Errorf("%s: actions (-want +got):\n%s", step.name, diff)
	}
	return got
}

// The concurrent apply reports what ssa's ApplyAllStaged reports for the
// same objects on an identical cluster: created, unchanged, then
// configured after a change, with the frozen object skipped.
func TestConcurrentApplyMatchesApplyAllStaged(t *testing.T) {
	cfgs := startClusters(t)
	ref := testCluster(t, "ref", cfgs["public"])
	con := testCluster(t, "concurrent", cfgs["private"])
	const ns, n = "applyconcurrent-equal", 40
	total := len(everyStage(t, ns, n, 1))
	for _, step := range []applyStep{
		{"first apply", 1, map[ssa.Action]int{ssa.CreatedAction: total - 1, ssa.SkippedAction: 1}},
		{"nothing changed", 1, map[ssa.Action]int{ssa.UnchangedAction: total - 1, ssa.SkippedAction: 1}},
		// 14 of 40 ConfigMaps (i%3 == 0) and 5 of 10 Deployments changed.
		{"changed in git", 2, map[ssa.Action]int{ssa.ConfiguredAction: 14 + 5, ssa.UnchangedAction: total - 1 - 19, ssa.SkippedAction: 1}},
	} {
		step.applyBoth(t, ref, con, ns, n, readyObjects(everyStage(t, ns, n, step.gen)), nil)
	}
	frozenNotApplied(t, con.Client, ns)
}

// frozenNotApplied fails t if ConfigMap ns/frozen of every-stage.yaml,
// frozen in git (strata.dev/reconcile: disabled), is in the cluster.
func frozenNotApplied(t *testing.T, c client.Client, ns string) {
	t.Helper()
	frozen := &unstructured.Unstructured{}
	frozen.SetAPIVersion("v1")
	frozen.SetKind("ConfigMap")
	err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "frozen"}, frozen)
	if !apierrors.IsNotFound(err) {
		t.Errorf("ConfigMap %s/frozen (strata.dev/reconcile: disabled in git) was applied: get returned %v", ns, err)
	}
}

// A first apply whose objects are all marked as the reconciler marks
// objects new to strata (create) reports what ssa's ApplyAllStaged
// reports: the CRD established before its Widget, the cluster definitions
// waited for, and the object frozen in git skipped, not created.
func TestDirectCreateMatchesApplyAllStaged(t *testing.T) {
	cfgs := startClusters(t)
	ref := testCluster(t, "ref-create", cfgs["public"])
	con := testCluster(t, "create", cfgs["private"])
	const ns, n = "applyconcurrent-create", 40
	total := len(everyStage(t, ns, n, 1))
	objs := readyObjects(everyStage(t, ns, n, 1))
	for i := range objs {
		objs[i].create = true
	}
	step := applyStep{"first apply, created directly", 1, nil}
	got := step.applyBoth(t, ref, con, ns, n, objs, nil)
	if c := countActions(got); c[ssa.CreatedAction] < total-1-2 || c[ssa.SkippedAction] != 1 {
		// The CRD and the webhook configuration may exist from other
		// tests (cluster-scoped); every other object is new.
		t.Errorf("actions %v: want every namespaced object created and the frozen one skipped", c)
	}
	frozenNotApplied(t, con.Client, ns)
}

// Objects are built (stamped) only when their batch is applied, so that a
// large apply never holds them all: when the first object of a batch is
// built, every object of the batch before it is in the cluster already;
// no object is built twice. Across batches the change set is still ssa's
// (first apply, then a change to some of them).
func TestApplyBuildsObjectsBatchByBatch(t *testing.T) {
	cfgs := startClusters(t)
	cl := testCluster(t, "batches", cfgs["public"])
	ref := testCluster(t, "batches-ref", cfgs["private"])
	const ns, batch = "applyconcurrent-batches", 7
	objects := func(gen int) []*unstructured.Unstructured {
		return managed(append([]*unstructured.Unstructured{{Object: map[string]any{
			"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": ns}}}}, bulk(ns, 30, gen)...))
	}
	ctx := context.Background()
	for _, gen := range []int{1, 2} {
		objs := objects(gen)
		mid := append([]*unstructured.Unstructured(nil), objs[1:]...) // 30 ConfigMaps, 7 Deployments: one wave
		sort.Sort(ssa.SortableUnstructureds(mid))
		pos := map[*unstructured.Unstructured]int{}
		for i, u := range mid {
			pos[u] = i
		}
		built := map[int]int{}
		lazy := make([]lazyObject, len(objs))
		for i, u := range objs {
			lazy[i] = lazyObject{id: inventory.RefOf(u).Object(), build: func() *unstructured.Unstructured {
				built[i]++
				if p, ok := pos[u]; ok && p > 0 && p%batch == 0 {
					for _, prev := range mid[p-batch : p] {
						live := &unstructured.Unstructured{}
						live.SetGroupVersionKind(prev.GroupVersionKind())
						if err := cl.Client.Get(ctx, client.ObjectKeyFromObject(prev), live); err != nil {
							t.Errorf("generation %d: %s/%s built before %s/%s of the batch before it was applied: %v", gen, u.GetKind(), u.GetName(), prev.GetKind(), prev.GetName(), err)
						}
					}
				}
				return u.DeepCopy()
			}}
		}
		want, err := ref.Manager.ApplyAllStaged(ctx, objects(gen), testApplyOptions())
		if err != nil {
			t.Fatalf("generation %d: ssa: %v", gen, err)
		}
		got, err := applyAllStagedConcurrent(ctx, cl.Manager, lazy, testApplyOptions(), applyChunks, batch, nil)
		if err != nil {
			t.Fatalf("generation %d: %v", gen, err)
		}
		if diff := cmp.Diff(want.Entries, got.Entries); diff != "" {
			t.Errorf("generation %d: change set differs from ApplyAllStaged's (-ssa +batched):\n%s", gen, diff)
		}
		for i, u := range objs {
			if built[i] != 1 {
				t.Errorf("generation %d: %s/%s built %d times, want once", gen, u.GetKind(), u.GetName(), built[i])
			}
		}
	}
}

// An object the apiserver rejects fails the apply with an error naming it,
// and the change set still reports exactly what was applied: the earlier
// stages and the chunks that succeeded, not the failed chunk nor the wave
// after it.
func TestConcurrentApplyNamesFailingObject(t *testing.T) {
	cfgs := startClusters(t)
	cl := testCluster(t, "fail", cfgs["onprem"])
	const ns = "applyconcurrent-fail"
	objs := everyStage(t, ns, 20, 1)
	bad := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": "bad", "namespace": ns},
		// The selector does not match the template's labels, and the
		// template has no container: the apiserver rejects it.
		"spec": map[string]any{
			"selector": map[string]any{"matchLabels": map[string]any{"app": "bad"}},
			"template": map[string]any{"metadata": map[string]any{"labels": map[string]any{"app": "other"}}},
		},
	}}
	objs = append(objs, managed([]*unstructured.Unstructured{bad})...)
	ctx := context.Background()
	cs, err := applyAllStagedConcurrent(ctx, cl.Manager, readyObjects(objs), testApplyOptions(), applyChunks, applyBatch, nil)
	if err == nil {
		t.Fatal("apply of an invalid Deployment succeeded")
	}
	if !strings.Contains(err.Error(), "Deployment/"+ns+"/bad") {
		t.Errorf("error does not name the invalid object: %v", err)
	}
	var dre *ssaerrors.DryRunErr
	if !errors.As(err, &dre) || dre.InvolvedObject().GetName() != "bad" {
		t.Errorf("error is not the dry-run error of the invalid object: %v", err)
	}
	reported := map[string]ssa.Action{}
	for _, e := range cs.Entries {
		reported[changeKey(e)] = e.Action
	}
	var mid int
	for _, o := range objs {
		gvk := o.GroupVersionKind()
		key := gvk.Group + "/" + gvk.Kind + "/" + o.GetNamespace() + "/" + o.GetName()
		live := &unstructured.Unstructured{}
		live.SetGroupVersionKind(gvk)
		gerr := cl.Client.Get(ctx, client.ObjectKeyFromObject(o), live)
		if gerr != nil && !apierrors.IsNotFound(gerr) {
			t.Fatal(gerr)
		}
		exists := gerr == nil
		action, ok := reported[key]
		switch {
		case action == ssa.SkippedAction:
			if exists {
				t.Errorf("%s was skipped but exists", key)
			}
		case ok != exists:
			t.Errorf("%s: in the change set %v, in the cluster %v", key, ok, exists)
		}
		if ok && (gvk.Kind == "ConfigMap" || gvk.Kind == "Deployment") {
			mid++
		}
		switch gvk.Kind {
		case "Namespace", "CustomResourceDefinition", "Widget", "ServiceAccount":
			if action != ssa.CreatedAction {
				t.Errorf("%s of a stage before the failed one: %q, want created", key, action)
			}
		case "ValidatingWebhookConfiguration":
			if ok {
				t.Errorf("%s of the wave after the failed one was applied", key)
			}
		}
	}
	if mid == 0 || mid >= 20+5+1 {
		t.Errorf("%d ConfigMaps and Deployments reported, want those of the chunks that succeeded (some, not all)", mid)
	}
}

// A refusal in a later batch leaves the earlier batches applied, and the
// change set reports each of them, so that the reconciler records them in
// the inventory (keepCreated) and a later revision can prune them; the
// refused object is not in the cluster.
func TestApplyFailingInALaterBatchReportsTheEarlierOnes(t *testing.T) {
	cfgs := startClusters(t)
	cl := testCluster(t, "failbatch", cfgs["public"])
	const ns = "applyconcurrent-failbatch"
	bad := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": "bad", "namespace": ns},
		"spec": map[string]any{ // no container, selector not matching: refused
			"selector": map[string]any{"matchLabels": map[string]any{"app": "bad"}},
			"template": map[string]any{"metadata": map[string]any{"labels": map[string]any{"app": "other"}}},
		},
	}}
	objs := managed(append(append([]*unstructured.Unstructured{{Object: map[string]any{
		"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": ns}}}}, bulk(ns, 30, 1)[:30]...), bad))
	ctx := context.Background()
	// 30 ConfigMaps, then the Deployment: in batches of 7 it is in the fifth.
	cs, err := applyAllStagedConcurrent(ctx, cl.Manager, readyObjects(objs), testApplyOptions(), applyChunks, 7, nil)
	if err == nil || !strings.Contains(err.Error(), "Deployment/"+ns+"/bad") {
		t.Fatalf("error = %v, want the refusal of Deployment %s/bad", err, ns)
	}
	reported := map[string]ssa.Action{}
	for _, e := range cs.Entries {
		reported[changeKey(e)] = e.Action
	}
	for _, o := range objs[:len(objs)-1] {
		key := refKey(o)
		if reported[key] != ssa.CreatedAction {
			t.Errorf("%s: %q in the change set, want created", key, reported[key])
		}
		live := &unstructured.Unstructured{}
		live.SetGroupVersionKind(o.GroupVersionKind())
		if err := cl.Client.Get(ctx, client.ObjectKeyFromObject(o), live); err != nil {
			t.Errorf("%s reported created but not in the cluster: %v", key, err)
		}
	}
	if a, ok := reported[refKey(bad)]; ok {
		t.Errorf("the refused Deployment is in the change set as %q", a)
	}
}

// BenchmarkFirstApply compares a first apply of 400 ConfigMaps and 100
// Deployments with ssa's ApplyAllStaged and with the concurrent apply
// (ssa's path in every part, or, as the reconciler does for objects new to
// strata, each created directly: a GET and the apply, no dry-run); each
// iteration runs every mode, in a rotating order, so that a change in the
// machine's load hits them alike; the metrics are each mode's mean
// (KUBEBUILDER_ASSETS=$HOME/.cache/strata/bin go test ./reconciler/
// -run '^$' -bench FirstApply -benchtime 6x).
func BenchmarkFirstApply(b *testing.B) {
	cfg := testClusters.Start(b, "public")["public"]
	cl := testCluster(b, "bench", cfg)
	ctx := context.Background()
	modes := []struct {
		name   string
		chunks int
		create bool // as the reconciler marks objects new to strata
	}{{"ssa", 0, false}, {"chunks-4", 4, false}, {"chunks-8", 8, false}, {"chunks-16", 16, false}, {"chunks-16-create", 16, true}}
	spent := make([]time.Duration, len(modes))
	for i := range b.N {
		for j := range modes {
			m := (i + j) % len(modes)
			ns := fmt.Sprintf("bench-%s-%d", modes[m].name, i)
			objs := managed(append([]*unstructured.Unstructured{{Object: map[string]any{
				"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": ns}}}}, bulk(ns, 400, 1)...))
			start := time.Now()
			var err error
			if modes[m].chunks == 0 {
				_, err = cl.Manager.ApplyAllStaged(ctx, objs, testApplyOptions())
			} else {
				lz := readyObjects(objs)
				for k := range lz {
					lz[k].create = modes[m].create
				}
				_, err = applyAllStagedConcurrent(ctx, cl.Manager, lz, testApplyOptions(), modes[m].chunks, applyBatch, nil)
			}
			if err != nil {
				b.Fatal(err)
			}
			spent[m] += time.Since(start)
		}
	}
	for m, mode := range modes {
		b.ReportMetric(float64(spent[m].Milliseconds())/float64(b.N), mode.name+"-ms/apply")
	}
}
