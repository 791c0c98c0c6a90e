package reconciler

import (
	"context"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/strata-gitops/strata/internal/audit"
	"github.com/strata-gitops/strata/internal/cluster"
	"github.com/strata-gitops/strata/internal/inventory"
	"github.com/strata-gitops/strata/internal/labels"
	"github.com/strata-gitops/strata/internal/source"
)

// holdIfSuspended reads whether strata suspend froze the environment in
// cl. It returns nil when the cluster may be reconciled, else the result
// that stands for the cluster: suspended (nothing applied or pruned), or
// failed when the suspension cannot be read. A suspension only ever makes
// strata do less; it is checked after the approval gate, never instead.
func (r *Reconciler) holdIfSuspended(ctx context.Context, cl *cluster.Cluster, plan *rolloutPlan) *ClusterResult {
	susp, err := inventory.LoadSuspension(ctx, cl.Client, plan.env)
	if err == nil && susp == nil {
		return nil
	}
	res := &ClusterResult{Name: cl.Name, Tier: plan.tiers[cl.Name], Revision: plan.revision, current: map[string]bool{}}
	if err != nil {
		// Fail closed: strata cannot tell whether on-call froze the cluster.
		res.Err = &UnreachableError{Cluster: cl.Name, Err: fmt.Errorf("%w (strata applies nothing where it cannot tell whether the cluster is suspended)", err)}
		return res
	}
	inv, err := inventory.Load(ctx, cl.Client, plan.env)
	if err != nil {
		res.Err = &UnreachableError{Cluster: cl.Name, Err: err}
		return res
	}
	res.Reachable, res.inv, res.prev, res.Suspended = true, inv, inv.Status, susp
	res.Objects, res.entries = len(inv.Entries), inv.Entries
	return res
}

// recordSuspension keeps the suspended gauge and, when a cluster becomes
// suspended or is reconciled again, says so once: an event on the
// inventory and an audit record.
func (r *Reconciler) recordSuspension(cl *cluster.Cluster, res *ClusterResult, rev *source.Revision) {
	env := r.opts.Environment
	r.opts.Metrics.ClusterSuspended.WithLabelValues(env, res.Name).Set(boolGauge(res.Suspended != nil))
	if cl == nil || res.inv == nil {
		return
	}
	invRef := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: labels.SystemNamespace, Name: labels.InventoryName(env)}}
	before := res.prev.Suspended
	switch s := res.Suspended; {
	case s != nil && !sameSuspension(before, s):
		r.opts.Log.Warn("cluster suspended: nothing applied, corrected or pruned until strata resume", "environment", env, "cluster", res.Name,
			"suspendedBy", s.By, "reason", s.Reason, "since", s.At)
		cl.Recorder.AnnotatedEventf(invRef, map[string]string{labels.Revision: rev.Commit}, corev1.EventTypeWarning, inventory.ReasonSuspended,
			"%s; revision %s is not applied here until `strata resume --env %s --cluster %s`", s, rev.Short(), env, res.Name)
		r.auditor(cl).Record(audit.Event{Kind: audit.Suspend, Commit: rev.Commit, Cluster: res.Name, Tier: res.Tier, Actor: s.By,
			Message: "reconciler honours the suspension, nothing applied or pruned: " + s.Reason})
	case s == nil && before != nil && res.Err == nil:
		cl.Recorder.AnnotatedEventf(invRef, map[string]string{labels.Revision: rev.Commit}, corev1.EventTypeNormal, "Resumed",
			"reconciled again after the suspension (%s): revision %s applied", before, rev.Short())
		r.auditor(cl).Record(audit.Event{Kind: audit.Resume, Commit: rev.Commit, Cluster: res.Name, Tier: res.Tier, Actor: "strata",
			Message: "reconciled again after " + before.String()})
	}
}

// heldChanged reports whether the objects left alone differ from those of
// the previous reconcile, so that they are announced once, not every tick.
func heldChanged(res *ClusterResult) bool {
	if len(res.Held) != res.prev.HeldTotal {
		return true
	}
	for i, ref := range res.Held {
		if i == inventory.MaxHeld {
			break
		}
		if i >= len(res.prev.Held) || !slices.Contains(res.prev.Held, ref.String()) {
			return true
		}
	}
	return false
}

func sameSuspension(a, b *inventory.Suspension) bool {
	return a != nil && b != nil && a.By == b.By && a.Reason == b.Reason && a.At.Equal(b.At)
}
