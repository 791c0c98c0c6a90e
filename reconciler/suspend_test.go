package reconciler

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	fluxmeta "github.com/fluxcd/pkg/apis/meta"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-gitops/strata/internal/audit"
	"github.com/strata-gitops/strata/internal/cluster"
	"github.com/strata-gitops/strata/internal/inventory"
	"github.com/strata-gitops/strata/internal/labels"
)

// storedConditions returns type → "status/reason" of the conditions a
// cluster's stored status holds.
func storedConditions(t *testing.T, c *cluster.Cluster, env string) (map[string]string, inventory.Status) {
	t.Helper()
	inv, err := inventory.Load(context.Background(), c.Client, env)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, cond := range inv.Status.Conditions {
		out[cond.Type] = string(cond.Status) + "/" + cond.Reason
	}
	return out, inv.Status
}

// eventReasons lists the reasons of the events strata recorded on env's
// inventory in a cluster.
func eventReasons(t *testing.T, c *cluster.Cluster, env string) []string {
	t.Helper()
	var list corev1.EventList
	if err := c.Client.List(context.Background(), &list, client.InNamespace(labels.SystemNamespace)); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ev := range list.Items {
		if ev.InvolvedObject.Name == labels.InventoryName(env) {
			out = append(out, ev.Reason)
		}
	}
	return out
}

// A suspended cluster is neither applied to nor pruned while the others go
// on; its status says why (Ready=False/Suspended), a metric, an event and
// the audit record it; resume catches up.
func TestSuspendStopsApplyAndPruneInThatClusterOnly(t *testing.T) {
	env := "suspend"
	g := newGitRepo(t)
	files := func(v string, extra bool) map[string]string {
		objs := map[string]string{
			"ns-open":   namespace("sp-open", "public"),
			"ns-vault":  namespace("sp-vault", "restricted"),
			"cm-model":  configMap("sp-open", "model", v, ""),
			"cm-ledger": configMap("sp-vault", "ledger", v, ""),
		}
		if extra {
			objs["cm-extra"] = configMap("sp-vault", "extra", v, "")
		}
		return overlay(env, objs)
	}
	first := g.commit("v1", merge(map[string]string{"strata.yaml": strataYAML(env, 100)}, files("v1", true)))
	r, cls := newTestReconciler(t, g, env, nil)
	ctx := context.Background()
	mustSucceed(t, r.ReconcileOnce(ctx))
	pub, onprem := cls[env+"-public"], cls[env+"-onprem"]

	conds, _ := storedConditions(t, onprem, env)
	want := map[string]string{
		fluxmeta.ReadyCondition:       "True/" + inventory.ReasonSucceeded,
		fluxmeta.ReconcilingCondition: "False/" + inventory.ReasonSucceeded,
		fluxmeta.StalledCondition:     "False/" + inventory.ReasonSucceeded,
	}
	if diff := cmp.Diff(want, conds); diff != "" {
		t.Errorf("stored conditions after a good reconcile (-want +got):\n%s", diff)
	}

	// On-call freezes on-prem and fixes the ledger by hand.
	susp := inventory.Suspension{By: "oncall@example.com", At: time.Now().UTC().Truncate(time.Second), Reason: "INC-42: hand fix of the ledger"}
	if _, err := inventory.Suspend(ctx, onprem.Client, env, susp); err != nil {
		t.Fatal(err)
	}
	ledger, _ := getCM(t, onprem, "sp-vault", "ledger")
	ledger.Data["value"] = "hand-fix"
	if err := onprem.Client.Update(ctx, ledger, client.FieldOwner("kubectl-edit")); err != nil {
		t.Fatal(err)
	}
	// A new revision changes both clusters' objects and drops extra.
	g.commit("v2", merge(files("v2", false), map[string]string{"overlays/" + env + "/cm-extra.yaml": ""}))
	res := r.ReconcileOnce(ctx)
	if res.Failed() {
		t.Fatalf("a suspension is not a failure: %v / %+v", res.Err, res.Clusters)
	}
	c := res.Cluster(env + "-onprem")
	if c.Suspended == nil || c.Suspended.By != susp.By {
		t.Fatalf("onprem result: suspended %v", c.Suspended)
	}
	if c.Configured+c.Created+c.Drifted+len(c.Pruned) != 0 {
		t.Errorf("suspended cluster was changed: %+v", c)
	}
	if cm, _ := getCM(t, pub, "sp-open", "model"); cm.Data["value"] != "v2" {
		t.Errorf("public (not suspended) did not get v2: %q", cm.Data["value"])
	}
	if cm, _ := getCM(t, onprem, "sp-vault", "ledger"); cm.Data["value"] != "hand-fix" {
		t.Errorf("the hand fix in the suspended cluster was undone: %q", cm.Data["value"])
	}
	if _, ok := getCM(t, onprem, "sp-vault", "extra"); !ok {
		t.Error("a suspended cluster was pruned")
	}
	conds, st := storedConditions(t, onprem, env)
	if conds[fluxmeta.ReadyCondition] != "False/"+inventory.ReasonSuspended || conds[fluxmeta.StalledCondition] != "False/"+inventory.ReasonSuspended {
		t.Errorf("stored conditions while suspended: %v", conds)
	}
	if st.Suspended == nil || st.Suspended.Reason != susp.Reason || st.Revision != first {
		t.Errorf("stored status while suspended: suspended %v revision %s (want %s)", st.Suspended, st.Revision, first)
	}
	if len(st.History) != 1 || st.History[0].Revision != first {
		t.Errorf("history records a revision a suspended cluster never got: %+v", st.History)
	}
	if v := testutil.ToFloat64(r.opts.Metrics.ClusterSuspended.WithLabelValues(env, env+"-onprem")); v != 1 {
		t.Errorf("%s{cluster=onprem} = %v, want 1", MetricClusterSuspended, v)
	}
	if v := testutil.ToFloat64(r.opts.Metrics.ClusterSuspended.WithLabelValues(env, env+"-public")); v != 0 {
		t.Errorf("%s{cluster=public} = %v, want 0", MetricClusterSuspended, v)
	}
	waitFor(t, 10*time.Second, func() bool { return slices.Contains(eventReasons(t, onprem, env), inventory.ReasonSuspended) })
	if err := r.audit.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	events, err := audit.Read(ctx, onprem.Client, time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(events, func(e audit.Event) bool {
		return e.Kind == audit.Suspend && e.Actor == susp.By && strings.Contains(e.Message, susp.Reason)
	}) {
		t.Errorf("no suspend audit event by %s in %+v", susp.By, events)
	}

	// Resume: the cluster catches up with git.
	if prev, err := inventory.Resume(ctx, onprem.Client, env); err != nil || prev == nil {
		t.Fatalf("resume: %v, %v", prev, err)
	}
	res = r.ReconcileOnce(ctx)
	mustSucceed(t, res)
	if cm, _ := getCM(t, onprem, "sp-vault", "ledger"); cm.Data["value"] != "v2" {
		t.Errorf("after resume the ledger is %q, want v2", cm.Data["value"])
	}
	if _, ok := getCM(t, onprem, "sp-vault", "extra"); ok {
		t.Error("after resume extra was not pruned")
	}
	conds, st = storedConditions(t, onprem, env)
	if conds[fluxmeta.ReadyCondition] != "True/"+inventory.ReasonSucceeded || st.Suspended != nil {
		t.Errorf("after resume: conditions %v suspended %v", conds, st.Suspended)
	}
	if v := testutil.ToFloat64(r.opts.Metrics.ClusterSuspended.WithLabelValues(env, env+"-onprem")); v != 0 {
		t.Errorf("%s{cluster=onprem} after resume = %v, want 0", MetricClusterSuspended, v)
	}
}

// A suspension strata cannot read stops the apply (fail closed): an
// apiserver that fails the read (here: a cancelled request) never gets
// applied to.
func TestUnreadableSuspensionFailsClosed(t *testing.T) {
	env := "suspendread"
	g := newGitRepo(t)
	g.commit("v1", merge(map[string]string{"strata.yaml": strataYAML(env, 100)}, overlay(env, map[string]string{
		"ns": namespace("sr-vault", "restricted"),
	})))
	r, cls := newTestReconciler(t, g, env, nil)
	onprem := cls[env+"-onprem"]
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	plan := &rolloutPlan{env: env, revision: "x", tiers: map[string]string{onprem.Name: "on-prem"}}
	res := r.holdIfSuspended(ctx, onprem, plan)
	if res == nil || res.Err == nil || !strings.Contains(res.Err.Error(), "cannot tell whether the cluster is suspended") {
		t.Fatalf("unreadable suspension: %+v", res)
	}
}
