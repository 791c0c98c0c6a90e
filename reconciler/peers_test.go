package reconciler

import (
	"context"
	"strings"
	"testing"

	"github.com/strata-gitops/strata/internal/cluster"
	"github.com/strata-gitops/strata/internal/inventory"
)

// In agent mode an object that moves to another cluster stays in its old
// cluster until the new cluster's inventory records it applied and healthy
// at this revision or a later one; a peer inventory naming a commit outside
// the branch confirms nothing.
func TestAgentMoveWaitsForItsNewCluster(t *testing.T) {
	env := "agentmove"
	g := newGitRepo(t)
	files := func(s string) map[string]string {
		return overlay(env, map[string]string{
			"ns":  namespace("ag-data", "internal"),
			"cm":  configMap("ag-data", "report", "v", sensitivity(s)),
			"cm2": configMap("ag-data", "stay", "v", ""),
		})
	}
	g.commit("internal", merge(map[string]string{"strata.yaml": strataYAML(env, 100)}, files("internal")))
	ctx := context.Background()
	agent := func(self string) (*Reconciler, cluster.Static) {
		r, cls := newTestReconciler(t, g, env, func(o *Options) { o.Self = env + "-" + self })
		peers := cluster.Static{}
		for name, cl := range cls {
			if name != r.opts.Self {
				peers[name] = cl
			}
		}
		r.opts.Peers = peers
		return r, cls
	}
	private, cls := agent("private")
	onprem, _ := agent("onprem")
	mustSucceed(t, private.ReconcileOnce(ctx))
	mustSucceed(t, onprem.ReconcileOnce(ctx))
	privCl, onpremCl := cls[env+"-private"], cls[env+"-onprem"]
	if _, ok := getCM(t, privCl, "ag-data", "report"); !ok {
		t.Fatal("internal object not in private")
	}

	// Restricted now: it moves on-prem. The on-prem agent has not run yet.
	g.commit("restricted", files("restricted"))
	res := private.ReconcileOnce(ctx)
	mustSucceed(t, res)
	if _, ok := getCM(t, privCl, "ag-data", "report"); !ok {
		t.Fatal("the private agent pruned the object before on-prem had it")
	}
	if c := res.Cluster(env + "-private"); len(c.Waiting) != 1 || reasonOf(c) != inventory.ReasonWaitingForMove {
		t.Errorf("private: waiting %v reason %s, want the object waiting for its move", c.Waiting, reasonOf(c))
	}

	// Whoever controls on-prem forges its inventory: the object applied and
	// healthy at a commit that is not in the branch. Nothing changes.
	real, err := inventory.Load(ctx, onpremCl.Client, env)
	if err != nil {
		t.Fatal(err)
	}
	forged := *real
	forged.Entries = append(append([]inventory.Ref(nil), real.Entries...), inventory.Ref{Version: "v1", Kind: "ConfigMap", Namespace: "ag-data", Name: "report"})
	forged.Status.Revision, forged.Status.LastError = strings.Repeat("f", 40), ""
	forged.Status.Objects, forged.Status.Healthy = len(forged.Entries), len(forged.Entries)
	if _, err := inventory.Save(ctx, onpremCl.Client, &forged); err != nil {
		t.Fatal(err)
	}
	res = private.ReconcileOnce(ctx)
	if _, ok := getCM(t, privCl, "ag-data", "report"); !ok {
		t.Fatal("a forged on-prem inventory (a commit outside the branch) made the private agent prune")
	}
	if _, err := inventory.Save(ctx, onpremCl.Client, real); err != nil {
		t.Fatal(err)
	}

	// The on-prem agent applies it; then the private agent prunes it.
	mustSucceed(t, onprem.ReconcileOnce(ctx))
	if _, ok := getCM(t, onpremCl, "ag-data", "report"); !ok {
		t.Fatal("the on-prem agent did not apply the moved object")
	}
	res = private.ReconcileOnce(ctx)
	mustSucceed(t, res)
	if _, ok := getCM(t, privCl, "ag-data", "report"); ok {
		t.Error("the private agent kept the object after on-prem had it")
	}
	if c := res.Cluster(env + "-private"); len(c.MovedOut) != 1 || len(c.Waiting) != 0 {
		t.Errorf("private: moved out %v, waiting %v; want the object moved out", c.MovedOut, c.Waiting)
	}
}
