package reconciler

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/strata-gitops/strata/internal/inventory"
)

// An attacker who can write ConfigMaps in strata-system of the public
// cluster forges its inventory: the unapproved restricted commit appears as
// applied and succeeded, dated after everything else. A restarted
// reconciler must still refuse it, in every cluster, and say why.
func TestGateIgnoresForgedInventoryHistory(t *testing.T) {
	env := "forged"
	alice, bob := newReviewer(t, "alice"), newReviewer(t, "bob")
	objs := func(ledger string) map[string]string {
		return overlay(env, map[string]string{
			"ns-vault": namespace("fg-vault", "restricted"),
			"ledger":   configMap("fg-vault", "ledger", ledger, ""),
		})
	}
	g := newGitRepo(t)
	first := g.commit("first", merge(map[string]string{"strata.yaml": gatedStrataYAML(env), ".strata/trust.yaml": trustYAML(alice, bob)}, objs("v1")))
	g.approve(t, alice, env, first)
	g.approve(t, bob, env, first)
	r, cls := newTestReconciler(t, g, env, pinned(t, alice, bob))
	ctx := context.Background()
	mustSucceed(t, r.ReconcileOnce(ctx))

	evil := g.commit("ledger: export everything", objs("exported"))
	wantGate(t, r.ReconcileOnce(ctx), "restricted change needs 2 approvals, has 0")

	// The forgery, in the least-trusted cluster.
	pub := cls[env+"-public"]
	inv, err := inventory.Load(ctx, pub.Client, env)
	if err != nil {
		t.Fatal(err)
	}
	c, err := g.repo.CommitObject(plumbing.NewHash(evil))
	if err != nil {
		t.Fatal(err)
	}
	future := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	inv.Status.Revision, inv.Status.LastReconcile, inv.Status.LastError = evil, future, ""
	inv.Status.Record(inventory.Applied{Revision: evil, Tree: c.TreeHash.String(), Time: future, Outcome: inventory.ReasonSucceeded, Approvers: []string{"alice", "bob"}})
	if _, err := inventory.Save(ctx, pub.Client, inv); err != nil {
		t.Fatal(err)
	}

	// Restart: a fresh reconciler reads the clusters back.
	r2, _ := newTestReconciler(t, g, env, pinned(t, alice, bob))
	res := r2.ReconcileOnce(ctx)
	wantGate(t, res, "restricted change needs 2 approvals, has 0")
	if cm, ok := getCM(t, cls[env+"-onprem"], "fg-vault", "ledger"); !ok || cm.Data["value"] != "v1" {
		t.Fatalf("on-prem ledger = %v (present %v), want the approved v1", cm.Data, ok)
	}
	onprem, _ := inventory.Load(ctx, cls[env+"-onprem"].Client, env)
	if onprem.Status.Gate == nil || onprem.Status.Gate.Allowed || onprem.Status.Gate.Commit != evil {
		t.Errorf("on-prem status gate = %+v, want the refusal of %s as data", onprem.Status.Gate, evil[:8])
	}
	if !strings.Contains(onprem.Status.LastError, "not approved") {
		t.Errorf("on-prem status does not say why: %q", onprem.Status.LastError)
	}
}

// A reconciler started while a cluster is down reads that cluster's
// applied revision once it answers, instead of giving up on it for the
// life of the process.
func TestBootstrapRetriesUntilEveryClusterAnswered(t *testing.T) {
	env := "boot"
	g := newGitRepo(t)
	g.commit("first", merge(map[string]string{"strata.yaml": strataYAML(env, 100)}, overlay(env, map[string]string{
		"ns": namespace("bt-open", "public"), "cm": configMap("bt-open", "model", "v1", ""),
	})))
	r, _ := newTestReconciler(t, g, env, nil, "onprem")
	r.ReconcileOnce(context.Background())
	if r.bootstrapped {
		t.Fatal("bootstrap marked done although the on-prem cluster never answered")
	}
	if _, read := r.recorded[env+"-public"]; !read {
		t.Error("the reachable public cluster's applied revision was not read")
	}
}
