package reconciler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	fluxmeta "github.com/fluxcd/pkg/apis/meta"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/strata-gitops/strata/internal/approval"
	"github.com/strata-gitops/strata/internal/cluster"
	"github.com/strata-gitops/strata/internal/inventory"
	"github.com/strata-gitops/strata/internal/labels"
	"github.com/strata-gitops/strata/internal/source"
)

// reasonOf returns the condition reason for a cluster's outcome.
func reasonOf(res *ClusterResult) string {
	var (
		ue *UnreachableError
		mp *MassPruneError
		ae *ApplyError
		he *HealthError
		pe *PruneError
	)
	var fe *FetchError
	var hr *HistoryRewriteError
	var ge *GateError
	switch err := res.Err; {
	case res.Suspended != nil:
		return inventory.ReasonSuspended
	case errors.As(err, &ge):
		return inventory.ReasonGateRefused
	case errors.As(err, &hr):
		return inventory.ReasonHistoryRewritten
	case errors.As(err, &fe) && fe.Stage == "fetch":
		return fluxmeta.ArtifactFailedReason
	case errors.As(err, &fe):
		return fluxmeta.BuildFailedReason
	case err == nil && len(res.Waiting) > 0:
		return inventory.ReasonWaitingForMove
	case err == nil:
		return inventory.ReasonSucceeded
	case errors.As(err, &ue):
		return inventory.ReasonUnreachable
	case errors.As(err, &mp):
		return inventory.ReasonMassPruneRefused
	case errors.As(err, &ae):
		return inventory.ReasonApplyFailed
	case errors.As(err, &he):
		return inventory.ReasonHealthFailed
	case errors.As(err, &pe):
		return inventory.ReasonPruneFailed
	}
	return fluxmeta.ReconciliationFailedReason
}

// statusOf turns a cluster result into the status stored in its inventory.
func (r *Reconciler) statusOf(res *ClusterResult, prev inventory.Status) inventory.Status {
	s := inventory.Status{
		Revision: res.Revision, Objects: res.Objects, Healthy: res.Healthy, Progressing: res.Progressing,
		Failed: res.Failed, Drifted: res.Drifted, DriftTotal: prev.DriftTotal + res.Drifted,
		LastReconcile: time.Now().UTC().Truncate(time.Second), Conditions: slices.Clone(prev.Conditions), Windows: res.windows,
	}
	for i, ref := range res.Held {
		if i == inventory.MaxHeld {
			break
		}
		s.Held = append(s.Held, ref.String())
	}
	s.HeldTotal = len(res.Held)
	if res.Err != nil {
		s.LastError = res.Err.Error()
		s.Revision = prev.Revision // the applied revision did not change
	}
	var fe *FetchError
	var hr *HistoryRewriteError
	var ge *GateError
	if res.Suspended != nil || errors.As(res.Err, &fe) || errors.As(res.Err, &hr) || errors.As(res.Err, &ge) {
		// Nothing was touched: the cluster is as the last reconcile left it.
		s.Revision = prev.Revision
		s.Objects, s.Healthy, s.Progressing, s.Failed, s.Windows = prev.Objects, prev.Healthy, prev.Progressing, prev.Failed, prev.Windows
		s.Held, s.HeldTotal = prev.Held, prev.HeldTotal
	}
	s.Suspended = res.Suspended
	setConditions(&s, res, r.opts.Environment)
	s.History = prev.History
	s.Gate = prev.Gate
	if res.gate != nil {
		s.Gate = GateStatusOf(res.gate)
	}
	var he *HealthError
	switch {
	case res.tree == "" || res.Suspended != nil || res.inProgress:
		// Nothing applied (or not yet judged healthy): no history entry, so
		// that a suspension or a crash mid-wait never records a revision as
		// applied.
	case res.Err == nil:
		s.Record(inventory.Applied{Revision: res.Revision, Tree: res.tree, Time: s.LastReconcile, Outcome: inventory.ReasonSucceeded,
			Approvers: approversOf(res.gate), Gate: gateMessage(res.gate)})
	case errors.As(res.Err, &he):
		s.Record(inventory.Applied{Revision: res.Revision, Tree: res.tree, Time: s.LastReconcile, Outcome: inventory.ReasonHealthFailed,
			Approvers: approversOf(res.gate), Gate: gateMessage(res.gate)})
	}
	return s
}

// record emits logs, metrics and events for a cluster and stores the
// status when the prune phase did not.
func (r *Reconciler) record(ctx context.Context, cl *cluster.Cluster, res *ClusterResult, plan *rolloutPlan, rev *source.Revision) {
	if res.Skipped {
		return
	}
	env, m := plan.env, r.opts.Metrics
	log := r.opts.Log.With("environment", env, "cluster", res.Name, "commit", rev.Short())
	m.ReconcileDuration.WithLabelValues(env, res.Name).Observe(res.Duration.Seconds())
	m.ObjectsApplied.WithLabelValues(env, res.Name, "created").Add(float64(res.Created))
	m.ObjectsApplied.WithLabelValues(env, res.Name, "configured").Add(float64(res.Configured))
	m.ObjectsPruned.WithLabelValues(env, res.Name).Add(float64(len(res.Pruned) + len(res.MovedOut)))
	m.ObjectsMoved.WithLabelValues(env, res.Name).Add(float64(len(res.MovedOut)))
	m.DriftCorrected.WithLabelValues(env, res.Name).Add(float64(res.Drifted))
	r.recordDirect(log, env, res)
	switch {
	case res.Err != nil:
		m.ReconcileErrors.WithLabelValues(env, res.Name, reasonOf(res)).Inc()
	case res.Suspended != nil:
		// The cluster keeps the revision it had.
	default:
		m.RevisionInfo.DeletePartialMatch(map[string]string{"environment": env, "cluster": res.Name})
		m.RevisionInfo.WithLabelValues(env, res.Name, rev.Commit).Set(1)
	}
	attrs := []any{"objects", res.Objects, "created", res.Created, "configured", res.Configured,
		"pruned", len(res.Pruned), "movedOut", len(res.MovedOut), "waitingForMove", len(res.Waiting),
		"drifted", res.Drifted, "healthy", res.Healthy, "duration", res.Duration.Round(time.Millisecond)}
	if len(res.Held) > 0 {
		attrs = append(attrs, "held", len(res.Held))
	}
	switch {
	case res.Err != nil:
		log.Error("cluster reconcile failed", append(attrs, "reason", reasonOf(res), "error", res.Err)...)
	case res.Suspended != nil:
		log.Info("cluster suspended; nothing applied or pruned", "suspendedBy", res.Suspended.By, "reason", res.Suspended.Reason)
	default:
		log.Info("cluster reconciled", attrs...)
	}
	if res.inv != nil && res.Suspended == nil {
		m.ObjectsHeld.WithLabelValues(env, res.Name).Set(float64(len(res.Held)))
	}
	r.recordSuspension(cl, res, rev)
	if cl == nil || !res.Reachable || res.inv == nil {
		return
	}
	invRef := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: labels.SystemNamespace, Name: labels.InventoryName(env)}}
	for _, ev := range eventsOf(res, rev) {
		cl.Recorder.AnnotatedEventf(invRef, map[string]string{labels.Revision: rev.Commit}, ev.kind, ev.reason, "%s", ev.msg)
	}
	if !res.saved {
		if err := r.saveInventory(ctx, cl, res, res.inv.Entries); err != nil {
			log.Error("could not store status", "error", err)
		}
	}
}

type event struct{ kind, reason, msg string }

func eventsOf(res *ClusterResult, rev *source.Revision) []event {
	var out []event
	if res.Err != nil {
		out = append(out, event{corev1.EventTypeWarning, reasonOf(res), res.Err.Error()})
	}
	if len(res.Held) > 0 && heldChanged(res) {
		out = append(out, event{corev1.EventTypeWarning, "DriftNotCorrected",
			fmt.Sprintf("%d objects differ from revision %s and are left as they are (%s: %s)%s: %s", len(res.Held), rev.Short(),
				labels.Reconcile, labels.ReconcileDisabled, describeManagers(res.HeldBy), inventory.Describe(res.Held, 10))})
	}
	if res.Drifted > 0 {
		out = append(out, event{corev1.EventTypeWarning, "DriftCorrected",
			fmt.Sprintf("%d objects were changed or deleted outside strata%s and were restored to revision %s", res.Drifted, describeManagers(res.DriftedBy), rev.Short())})
	}
	if len(res.MovedOut) > 0 {
		out = append(out, event{corev1.EventTypeNormal, "Moved",
			fmt.Sprintf("moved out after becoming healthy in their new cluster: %s", inventory.Describe(res.MovedOut, 10))})
	}
	if len(res.Pruned) > 0 {
		out = append(out, event{corev1.EventTypeNormal, "Pruned", "deleted (removed from git): " + inventory.Describe(res.Pruned, 10)})
	}
	if res.Err == nil && res.Created+res.Configured > 0 {
		out = append(out, event{corev1.EventTypeNormal, inventory.ReasonSucceeded,
			fmt.Sprintf("revision %s (%s): %d created, %d configured, %d objects healthy", rev.Short(), strings.TrimSpace(rev.Subject()), res.Created, res.Configured, res.Healthy)})
	}
	return out
}

func approversOf(d *approval.Verdict) []string {
	if d == nil {
		return nil
	}
	return d.Have
}

// GateStatusOf is the gate's verdict as stored in a cluster's status.
func GateStatusOf(v *approval.Verdict) *inventory.GateStatus {
	if v == nil {
		return nil
	}
	g := &inventory.GateStatus{Commit: v.Commit, Allowed: v.Allowed, Enforced: v.Enforced, Pinned: v.Pinned,
		Sensitivity: string(v.Sensitivity), Need: v.Need, Have: v.Have, Base: v.Base, Restores: v.Restores, Message: v.Message}
	for _, r := range v.Rejected {
		g.Rejected = append(g.Rejected, r.String())
	}
	return g
}

func gateMessage(d *approval.Verdict) string {
	if d == nil {
		return ""
	}
	return d.Message
}

// maxFallbackLogs bounds the log lines of one cluster's refused direct
// applies; the metric counts all of them.
const maxFallbackLogs = 10

// recordDirect counts the cluster's direct applies and logs each refusal
// with its object and reason, so that an operator sees when the fast path
// keeps falling back (someone editing strata's objects, or a webhook
// denying them).
func (r *Reconciler) recordDirect(log *slog.Logger, env string, res *ClusterResult) {
	m := r.opts.Metrics
	m.DirectApply.WithLabelValues(env, res.Name, "applied").Add(float64(res.DirectApplied))
	for i, f := range res.DirectFallbacks {
		m.DirectApply.WithLabelValues(env, res.Name, f.Reason).Inc()
		if i < maxFallbackLogs {
			log.Info("direct apply refused; the object takes the full dry-run path", "object", f.Object, "reason", f.Reason, "error", f.Err)
		}
	}
	if n := len(res.DirectFallbacks); n > maxFallbackLogs {
		log.Info("more direct applies refused", "count", n-maxFallbackLogs, "metric", MetricDirectApply)
	}
}
