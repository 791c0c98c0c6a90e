package reconciler

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-gitops/strata/internal/cluster"
	"github.com/strata-gitops/strata/internal/inventory"
	"github.com/strata-gitops/strata/internal/labels"
)

// overlay returns the files of overlays/<env>: a kustomization listing one
// file per object.
func overlay(env string, objects map[string]string) map[string]string {
	files := map[string]string{}
	var names []string
	for name, body := range objects {
		files["overlays/"+env+"/"+name+".yaml"] = body
		names = append(names, name+".yaml")
	}
	slices.Sort(names)
	files["overlays/"+env+"/kustomization.yaml"] = "resources:\n  - " + strings.Join(names, "\n  - ") + "\n"
	return files
}

func namespace(name, sensitivity string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n  labels:\n    strata.dev/sensitivity: %s\n", name, sensitivity)
}

// configMap returns a ConfigMap; extra is added under metadata (indented).
func configMap(ns, name, value, extra string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\n  namespace: %s\n%sdata:\n  value: %q\n", name, ns, extra, value)
}

func sensitivity(s string) string { return "  labels:\n    strata.dev/sensitivity: " + s + "\n" }

func failover() string { return "  annotations:\n    strata.dev/failover: \"true\"\n" }

func merge(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

func mustSucceed(t *testing.T, res *Result) {
	t.Helper()
	if res.Err != nil {
		t.Fatalf("reconcile failed: %v", res.Err)
	}
	for _, c := range res.Clusters {
		if c.Err != nil {
			t.Fatalf("cluster %s failed: %v", c.Name, c.Err)
		}
	}
}

func getCM(t *testing.T, c *cluster.Cluster, ns, name string) (*corev1.ConfigMap, bool) {
	t.Helper()
	cm := &corev1.ConfigMap{}
	err := c.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, cm)
	if apierrors.IsNotFound(err) {
		return nil, false
	}
	if err != nil {
		t.Fatalf("get %s/%s in %s: %v", ns, name, c.Name, err)
	}
	return cm, true
}

func inventoryKeys(t *testing.T, c *cluster.Cluster, env string) []string {
	t.Helper()
	inv, err := inventory.Load(context.Background(), c.Client, env)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, e := range inv.Entries {
		keys = append(keys, e.Kind+" "+e.Namespace+"/"+e.Name)
	}
	slices.Sort(keys)
	return keys
}

func TestApplyPruneAndInventory(t *testing.T) {
	env := "applyprune"
	g := newGitRepo(t)
	first := g.commit("first", merge(map[string]string{"strata.yaml": strataYAML(env, 100)}, overlay(env, map[string]string{
		"ns-open":   namespace("ap-open", "public"),
		"ns-vault":  namespace("ap-vault", "restricted"),
		"cm-model":  configMap("ap-open", "model", "v1", ""),
		"cm-extra":  configMap("ap-open", "extra", "v1", ""),
		"cm-ledger": configMap("ap-vault", "ledger", "v1", ""),
	})))
	r, cls := newTestReconciler(t, g, env, nil)
	ctx := context.Background()

	res := r.ReconcileOnce(ctx)
	mustSucceed(t, res)
	pub, onprem, priv := cls[env+"-public"], cls[env+"-onprem"], cls[env+"-private"]
	if _, ok := getCM(t, pub, "ap-open", "model"); !ok {
		t.Fatal("public cluster lacks ConfigMap ap-open/model")
	}
	cm, ok := getCM(t, onprem, "ap-vault", "ledger")
	if !ok {
		t.Fatal("onprem cluster lacks ConfigMap ap-vault/ledger")
	}
	if _, ok := getCM(t, pub, "ap-vault", "ledger"); ok {
		t.Fatal("restricted ConfigMap landed in the public cluster")
	}
	if _, ok := getCM(t, priv, "ap-open", "model"); ok {
		t.Fatal("public ConfigMap landed in the private cluster (public-cloud is preferred)")
	}
	if got := cm.Labels[labels.ManagedBy]; got != labels.ManagedByValue {
		t.Errorf("label %s = %q", labels.ManagedBy, got)
	}
	if got := cm.Annotations[labels.Revision]; got != first {
		t.Errorf("annotation %s = %q, want %s", labels.Revision, got, first)
	}
	if got := cm.Annotations[labels.Placement]; got != "restricted (from namespace ap-vault) → allowed [on-prem] → "+env+"-onprem (preferred)" {
		t.Errorf("annotation %s = %q", labels.Placement, got)
	}
	if diff := cmp.Diff([]string{"ConfigMap ap-open/extra", "ConfigMap ap-open/model", "Namespace /ap-open"}, inventoryKeys(t, pub, env)); diff != "" {
		t.Errorf("public inventory (-want +got):\n%s", diff)
	}
	if c := res.Cluster(env + "-public"); c.Created != 3 || c.Healthy != 3 {
		t.Errorf("public: created %d healthy %d, want 3 and 3", c.Created, c.Healthy)
	}

	// A no-op reconcile changes nothing and finds no drift.
	res = r.ReconcileOnce(ctx)
	mustSucceed(t, res)
	for _, c := range res.Clusters {
		if c.Created+c.Configured+c.Drifted+len(c.Pruned) != 0 {
			t.Errorf("no-op reconcile of %s: %+v", c.Name, c)
		}
	}

	// Removing an object from git prunes it; untouched objects keep the
	// revision that last changed them.
	second := g.commit("drop extra, change model", merge(overlay(env, map[string]string{
		"ns-open":   namespace("ap-open", "public"),
		"ns-vault":  namespace("ap-vault", "restricted"),
		"cm-model":  configMap("ap-open", "model", "v2", ""),
		"cm-ledger": configMap("ap-vault", "ledger", "v1", ""),
	}), map[string]string{"overlays/" + env + "/cm-extra.yaml": ""}))
	res = r.ReconcileOnce(ctx)
	mustSucceed(t, res)
	if _, ok := getCM(t, pub, "ap-open", "extra"); ok {
		t.Error("ap-open/extra was not pruned")
	}
	if c := res.Cluster(env + "-public"); len(c.Pruned) != 1 || c.Configured != 1 {
		t.Errorf("public: pruned %v configured %d, want 1 and 1", c.Pruned, c.Configured)
	}
	model, _ := getCM(t, pub, "ap-open", "model")
	if model.Data["value"] != "v2" || model.Annotations[labels.Revision] != second {
		t.Errorf("model: value %q revision %q, want v2 at %s", model.Data["value"], model.Annotations[labels.Revision], second)
	}
	ledger, _ := getCM(t, onprem, "ap-vault", "ledger")
	if ledger.Annotations[labels.Revision] != first {
		t.Errorf("unchanged ledger restamped: revision %q, want %s", ledger.Annotations[labels.Revision], first)
	}
	if diff := cmp.Diff([]string{"ConfigMap ap-open/model", "Namespace /ap-open"}, inventoryKeys(t, pub, env)); diff != "" {
		t.Errorf("public inventory after prune (-want +got):\n%s", diff)
	}
}

func TestDriftIsCorrected(t *testing.T) {
	env := "drift"
	g := newGitRepo(t)
	g.commit("first", merge(map[string]string{"strata.yaml": strataYAML(env, 100)}, overlay(env, map[string]string{
		"ns": namespace("dr-vault", "restricted"),
		"cm": configMap("dr-vault", "limits", "10", ""),
	})))
	r, cls := newTestReconciler(t, g, env, nil)
	ctx := context.Background()
	mustSucceed(t, r.ReconcileOnce(ctx))
	onprem := cls[env+"-onprem"]

	// Someone edits the object by hand.
	cm, _ := getCM(t, onprem, "dr-vault", "limits")
	cm.Data["value"] = "9999"
	if err := onprem.Client.Update(ctx, cm, client.FieldOwner("kubectl-edit")); err != nil {
		t.Fatal(err)
	}
	res := r.ReconcileOnce(ctx)
	mustSucceed(t, res)
	c := res.Cluster(env + "-onprem")
	if c.Drifted != 1 || !slices.Contains(c.DriftedBy, "kubectl-edit") {
		t.Errorf("drifted %d by %v, want 1 by kubectl-edit", c.Drifted, c.DriftedBy)
	}
	if cm, _ := getCM(t, onprem, "dr-vault", "limits"); cm.Data["value"] != "10" {
		t.Errorf("drift not corrected: value %q", cm.Data["value"])
	}

	// Someone deletes it.
	if err := onprem.Client.Delete(ctx, cm); err != nil {
		t.Fatal(err)
	}
	res = r.ReconcileOnce(ctx)
	mustSucceed(t, res)
	if c := res.Cluster(env + "-onprem"); c.Drifted != 1 {
		t.Errorf("deleted object: drifted %d, want 1", c.Drifted)
	}
	if _, ok := getCM(t, onprem, "dr-vault", "limits"); !ok {
		t.Error("deleted object was not restored")
	}
	inv, _ := inventory.Load(ctx, onprem.Client, env)
	if inv.Status.DriftTotal != 2 {
		t.Errorf("status driftTotal = %d, want 2", inv.Status.DriftTotal)
	}

	// Nothing changed since: the next check is clean.
	res = r.ReconcileOnce(ctx)
	mustSucceed(t, res)
	if c := res.Cluster(env + "-onprem"); c.Drifted != 0 || c.Configured+c.Created != 0 {
		t.Errorf("clean check: %+v", c)
	}
}

func TestMassPruneIsRefused(t *testing.T) {
	env := "massprune"
	g := newGitRepo(t)
	objs := map[string]string{"ns": namespace("mp-vault", "restricted")}
	for i := range 4 {
		objs[fmt.Sprintf("cm%d", i)] = configMap("mp-vault", fmt.Sprintf("cm%d", i), "v", "")
	}
	g.commit("first", merge(map[string]string{"strata.yaml": strataYAML(env, 50)}, overlay(env, objs)))
	r, cls := newTestReconciler(t, g, env, nil)
	ctx := context.Background()
	mustSucceed(t, r.ReconcileOnce(ctx))

	// Deleting 3 of 5 objects (60% > 50%) is refused: nothing pruned.
	g.commit("drop most", merge(overlay(env, map[string]string{"ns": objs["ns"], "cm0": objs["cm0"]}),
		map[string]string{"overlays/" + env + "/cm1.yaml": "", "overlays/" + env + "/cm2.yaml": "", "overlays/" + env + "/cm3.yaml": ""}))
	res := r.ReconcileOnce(ctx)
	var mp *MassPruneError
	if c := res.Cluster(env + "-onprem"); !errors.As(c.Err, &mp) {
		t.Fatalf("want a MassPruneError, got %v", c.Err)
	} else if !strings.Contains(c.Err.Error(), "--allow-mass-prune") {
		t.Errorf("message does not say what to do: %v", c.Err)
	}
	onprem := cls[env+"-onprem"]
	for i := 1; i < 4; i++ {
		if _, ok := getCM(t, onprem, "mp-vault", fmt.Sprintf("cm%d", i)); !ok {
			t.Errorf("cm%d was deleted despite the refusal", i)
		}
	}
	inv, _ := inventory.Load(ctx, onprem.Client, env)
	if !strings.Contains(inv.Status.LastError, "maxPrunePercent") {
		t.Errorf("status lastError = %q", inv.Status.LastError)
	}

	// With the override it goes through.
	r.opts.AllowMassPrune = true
	res = r.ReconcileOnce(ctx)
	mustSucceed(t, res)
	if c := res.Cluster(env + "-onprem"); len(c.Pruned) != 3 {
		t.Errorf("pruned %v, want 3 objects", c.Pruned)
	}
}

func TestRenderFailureTouchesNothing(t *testing.T) {
	env := "badrender"
	g := newGitRepo(t)
	g.commit("first", merge(map[string]string{"strata.yaml": strataYAML(env, 100)}, overlay(env, map[string]string{
		"ns": namespace("br-vault", "restricted"),
		"cm": configMap("br-vault", "keep", "v", ""),
	})))
	r, cls := newTestReconciler(t, g, env, nil)
	ctx := context.Background()
	mustSucceed(t, r.ReconcileOnce(ctx))
	// A commit with broken YAML that also drops the object: nothing may be pruned.
	g.commit("broken", map[string]string{
		"overlays/" + env + "/cm.yaml":            "",
		"overlays/" + env + "/kustomization.yaml": "resources:\n  - ns.yaml\n  - broken.yaml\n",
		"overlays/" + env + "/broken.yaml":        "apiVersion: v1\nkind: ConfigMap\nmetadata: [oops\n",
	})
	res := r.ReconcileOnce(ctx)
	var fe *FetchError
	if !errors.As(res.Err, &fe) || fe.Stage != "render" {
		t.Fatalf("want a render FetchError, got %v", res.Err)
	}
	if !strings.Contains(res.Err.Error(), "broken.yaml") {
		t.Errorf("error does not name the file: %v", res.Err)
	}
	onprem := cls[env+"-onprem"]
	if _, ok := getCM(t, onprem, "br-vault", "keep"); !ok {
		t.Error("an object was pruned after a failed render")
	}
	inv, _ := inventory.Load(ctx, onprem.Client, env)
	if !strings.Contains(inv.Status.LastError, "broken.yaml") || len(inv.Entries) != 2 {
		t.Errorf("status after failed render: lastError %q, %d entries", inv.Status.LastError, len(inv.Entries))
	}
}

func TestUnreachableClusterDoesNotBlockOthersAndFailover(t *testing.T) {
	env := "failover"
	g := newGitRepo(t)
	g.commit("first", merge(map[string]string{"strata.yaml": strataYAML(env, 100)}, overlay(env, map[string]string{
		"ns-fraud": namespace("fo-fraud", "confidential"),
		"ns-open":  namespace("fo-open", "public"),
		"cm-score": configMap("fo-fraud", "scoring", "v", failover()),
		"cm-rules": configMap("fo-fraud", "rules", "v", ""),
		"cm-model": configMap("fo-open", "model", "v", ""),
	})))
	ctx := context.Background()
	// The private cluster is down: the others converge, the failover-enabled
	// object moves to on-prem, the other confidential object waits.
	down, cls := newTestReconciler(t, g, env, nil, "private")
	res := down.ReconcileOnce(ctx)
	var ue *UnreachableError
	if c := res.Cluster(env + "-private"); !errors.As(c.Err, &ue) {
		t.Fatalf("private: want UnreachableError, got %v", c.Err)
	}
	for _, name := range []string{env + "-public", env + "-onprem"} {
		if c := res.Cluster(name); c.Err != nil {
			t.Fatalf("%s failed while private was down: %v", name, c.Err)
		}
	}
	onprem := cls[env+"-onprem"]
	cm, ok := getCM(t, onprem, "fo-fraud", "scoring")
	if !ok {
		t.Fatal("failover-enabled object did not move to on-prem")
	}
	if !strings.Contains(cm.Annotations[labels.Placement], "failover: private-cloud clusters down") {
		t.Errorf("placement reason %q", cm.Annotations[labels.Placement])
	}
	if _, ok := getCM(t, onprem, "fo-fraud", "rules"); ok {
		t.Error("object without failover moved to on-prem")
	}

	// The private cluster returns: everything goes back, and on-prem prunes
	// its copy only after private has it healthy.
	up, cls := newTestReconciler(t, g, env, nil)
	res = up.ReconcileOnce(ctx)
	mustSucceed(t, res)
	priv := cls[env+"-private"]
	for _, n := range []string{"scoring", "rules"} {
		if _, ok := getCM(t, priv, "fo-fraud", n); !ok {
			t.Errorf("private lacks fo-fraud/%s after it returned", n)
		}
	}
	if _, ok := getCM(t, onprem, "fo-fraud", "scoring"); ok {
		t.Error("on-prem still has the failed-over object after it moved back")
	}
	if c := res.Cluster(env + "-onprem"); len(c.MovedOut) != 2 { // the ConfigMap and its Namespace
		t.Errorf("onprem moved out %v, want scoring and its Namespace", c.MovedOut)
	}
}

func TestMoveIsMakeBeforeBreak(t *testing.T) {
	env := "move"
	g := newGitRepo(t)
	files := func(s string) map[string]string {
		return overlay(env, map[string]string{
			"ns":  namespace("mv-data", "internal"),
			"cm":  configMap("mv-data", "report", "v", sensitivity(s)),
			"cm2": configMap("mv-data", "stay", "v", ""),
		})
	}
	g.commit("internal", merge(map[string]string{"strata.yaml": strataYAML(env, 100)}, files("internal")))
	ctx := context.Background()
	r, cls := newTestReconciler(t, g, env, nil)
	mustSucceed(t, r.ReconcileOnce(ctx))
	priv, onprem := cls[env+"-private"], cls[env+"-onprem"]
	if _, ok := getCM(t, priv, "mv-data", "report"); !ok {
		t.Fatal("internal object not in private")
	}

	// Relabel to restricted while on-prem is down: the object must stay in
	// private (its new home cannot confirm it), not vanish.
	g.commit("restricted", files("restricted"))
	down, _ := newTestReconciler(t, g, env, nil, "onprem")
	res := down.ReconcileOnce(ctx)
	if _, ok := getCM(t, priv, "mv-data", "report"); !ok {
		t.Fatal("object pruned from its old cluster before it was healthy in the new one")
	}
	if c := res.Cluster(env + "-private"); len(c.Waiting) != 1 || reasonOf(c) != inventory.ReasonWaitingForMove {
		t.Errorf("private: waiting %v reason %s", c.Waiting, reasonOf(c))
	}

	// On-prem is back: applied there, then pruned from private.
	res = r.ReconcileOnce(ctx)
	mustSucceed(t, res)
	if _, ok := getCM(t, onprem, "mv-data", "report"); !ok {
		t.Fatal("moved object not in on-prem")
	}
	if _, ok := getCM(t, priv, "mv-data", "report"); ok {
		t.Error("moved object still in private")
	}
	if c := res.Cluster(env + "-private"); len(c.MovedOut) != 1 {
		t.Errorf("private moved out %v", c.MovedOut)
	}
}
