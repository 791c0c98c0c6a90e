package reconciler

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-gitops/strata/internal/inventory"
	"github.com/strata-gitops/strata/internal/labels"
)

func annotated(key, value string) string {
	return "  annotations:\n    " + key + ": " + value + "\n"
}

// strata.dev/reconcile: disabled (set by hand on the live object, or in
// git) freezes an object: a hand edit is not changed back, a change in git
// is not applied, a removal from git does not prune it; the difference is
// reported. Removing the annotation hands the object back to strata.
func TestReconcileDisabledReportsDriftAndDoesNotCorrect(t *testing.T) {
	env := "frozen"
	g := newGitRepo(t)
	files := func(v string) map[string]string {
		return overlay(env, map[string]string{
			"ns":     namespace("fz-vault", "restricted"),
			"cm":     configMap("fz-vault", "limits", v, ""),
			"cm-off": configMap("fz-vault", "never", v, annotated(labels.Reconcile, labels.ReconcileDisabled)),
		})
	}
	g.commit("v1", merge(map[string]string{"strata.yaml": strataYAML(env, 100)}, files("v1")))
	r, cls := newTestReconciler(t, g, env, nil)
	ctx := context.Background()
	res := r.ReconcileOnce(ctx)
	mustSucceed(t, res)
	onprem := cls[env+"-onprem"]
	if _, ok := getCM(t, onprem, "fz-vault", "never"); ok {
		t.Error("an object disabled in git was created")
	}

	// On-call freezes limits and changes it by hand during an incident.
	cm, _ := getCM(t, onprem, "fz-vault", "limits")
	cm.Annotations[labels.Reconcile] = labels.ReconcileDisabled
	cm.Data["value"] = "hand"
	if err := onprem.Client.Update(ctx, cm, client.FieldOwner("kubectl-edit")); err != nil {
		t.Fatal(err)
	}
	for i, commit := range []string{"", "v2"} {
		if commit != "" {
			g.commit(commit, files(commit)) // a change in git is not applied either
		}
		res = r.ReconcileOnce(ctx)
		mustSucceed(t, res)
		c := res.Cluster(env + "-onprem")
		if got, _ := getCM(t, onprem, "fz-vault", "limits"); got.Data["value"] != "hand" {
			t.Fatalf("round %d: the frozen object was changed back to %q", i, got.Data["value"])
		}
		var held []string
		for _, h := range c.Held {
			held = append(held, h.String())
		}
		slices.Sort(held)
		if diff := cmp.Diff([]string{"ConfigMap fz-vault/limits", "ConfigMap fz-vault/never"}, held); diff != "" || c.Drifted != 0 {
			t.Errorf("round %d: held (-want +got):\n%s drifted %d", i, diff, c.Drifted)
		}
		if !slices.Contains(c.HeldBy, "kubectl-edit") {
			t.Errorf("round %d: held by %v, want kubectl-edit", i, c.HeldBy)
		}
		_, st := storedConditions(t, onprem, env)
		if st.HeldTotal != 2 || !slices.Contains(st.Held, "ConfigMap fz-vault/limits") {
			t.Errorf("round %d: stored held %v (%d)", i, st.Held, st.HeldTotal)
		}
	}
	waitFor(t, 10*time.Second, func() bool { return slices.Contains(eventReasons(t, onprem, env), "DriftNotCorrected") })

	// Removed from git while frozen: kept, and still in the inventory.
	g.commit("drop limits", merge(overlay(env, map[string]string{
		"ns":     namespace("fz-vault", "restricted"),
		"cm-off": configMap("fz-vault", "never", "v2", annotated(labels.Reconcile, labels.ReconcileDisabled)),
	}), map[string]string{"overlays/" + env + "/cm.yaml": ""}))
	res = r.ReconcileOnce(ctx)
	mustSucceed(t, res)
	if _, ok := getCM(t, onprem, "fz-vault", "limits"); !ok {
		t.Fatal("a frozen object was pruned")
	}
	if c := res.Cluster(env + "-onprem"); len(c.Pruned) != 0 || !slices.Contains(inventoryKeys(t, onprem, env), "ConfigMap fz-vault/limits") {
		t.Errorf("pruned %v; inventory %v", c.Pruned, inventoryKeys(t, onprem, env))
	}

	// The incident is over: the annotation goes, strata prunes it.
	cm, _ = getCM(t, onprem, "fz-vault", "limits")
	delete(cm.Annotations, labels.Reconcile)
	if err := onprem.Client.Update(ctx, cm, client.FieldOwner("kubectl-edit")); err != nil {
		t.Fatal(err)
	}
	res = r.ReconcileOnce(ctx)
	mustSucceed(t, res)
	if _, ok := getCM(t, onprem, "fz-vault", "limits"); ok {
		t.Error("the object was not pruned once enabled again")
	}
}

// strata.dev/ssa: IfNotPresent creates an object once and never updates
// it, neither after a hand edit nor after a change in git; deleted, it is
// created again.
func TestIfNotPresentCreatesOnceAndNeverUpdates(t *testing.T) {
	env := "ifnotpresent"
	g := newGitRepo(t)
	files := func(v string) map[string]string {
		return overlay(env, map[string]string{
			"ns": namespace("np-vault", "restricted"),
			"cm": configMap("np-vault", "seed", v, annotated(labels.SSA, labels.SSAIfNotPresent)),
		})
	}
	g.commit("v1", merge(map[string]string{"strata.yaml": strataYAML(env, 100)}, files("v1")))
	r, cls := newTestReconciler(t, g, env, nil)
	ctx := context.Background()
	mustSucceed(t, r.ReconcileOnce(ctx))
	onprem := cls[env+"-onprem"]
	cm, ok := getCM(t, onprem, "np-vault", "seed")
	if !ok || cm.Data["value"] != "v1" {
		t.Fatalf("IfNotPresent object not created: %v", cm)
	}
	cm.Data["value"] = "mine"
	if err := onprem.Client.Update(ctx, cm, client.FieldOwner("operator")); err != nil {
		t.Fatal(err)
	}
	g.commit("v2", files("v2"))
	for range 2 {
		res := r.ReconcileOnce(ctx)
		mustSucceed(t, res)
		c := res.Cluster(env + "-onprem")
		if got, _ := getCM(t, onprem, "np-vault", "seed"); got.Data["value"] != "mine" {
			t.Fatalf("IfNotPresent object was updated to %q", got.Data["value"])
		}
		if c.Drifted+c.Configured+len(c.Held) != 0 {
			t.Errorf("IfNotPresent object counted as drift or change: %+v", c)
		}
	}
	if err := onprem.Client.Delete(ctx, cm); err != nil {
		t.Fatal(err)
	}
	mustSucceed(t, r.ReconcileOnce(ctx))
	if got, ok := getCM(t, onprem, "np-vault", "seed"); !ok || got.Data["value"] != "v2" {
		t.Errorf("deleted IfNotPresent object not created again from git: %v", got)
	}
}

// An apply policy strata does not know fails the render: a typo must not
// turn a freeze into an apply.
func TestUnknownApplyPolicyIsRefused(t *testing.T) {
	env := "badpolicy"
	g := newGitRepo(t)
	g.commit("v1", merge(map[string]string{"strata.yaml": strataYAML(env, 100)}, overlay(env, map[string]string{
		"ns": namespace("bp-vault", "restricted"),
		"cm": configMap("bp-vault", "x", "v1", annotated(labels.Reconcile, "off")),
	})))
	r, cls := newTestReconciler(t, g, env, nil)
	res := r.ReconcileOnce(context.Background())
	var fe *FetchError
	if !errors.As(res.Err, &fe) || fe.Stage != "render" {
		t.Fatalf("want a render failure, got %v", res.Err)
	}
	if _, ok := getCM(t, cls[env+"-onprem"], "bp-vault", "x"); ok {
		t.Error("an object with an unknown policy was applied")
	}
	inv, _ := inventory.Load(context.Background(), cls[env+"-onprem"].Client, env)
	if inv.Exists && len(inv.Entries) != 0 {
		t.Errorf("inventory after refusal: %v", inv.Entries)
	}
}
