package reconciler

import (
	"context"
	"errors"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/strata-gitops/strata/internal/audit"
	"github.com/strata-gitops/strata/internal/config"
	"github.com/strata-gitops/strata/internal/labels"
	"github.com/strata-gitops/strata/internal/rollback"
	"github.com/strata-gitops/strata/internal/source"
)

// ReasonAutoReverted marks a revision strata reverted by itself.
const ReasonAutoReverted = "AutoReverted"

// autoRevert reverts, with a commit of strata's own, a revision that failed
// its health check within the timeout, when rollout.autoRevert is on. It
// runs in push mode only (agents would race each other) and once per commit.
func (r *Reconciler) autoRevert(ctx context.Context, cfg *config.Config, res *Result) {
	if !cfg.Rollout.AutoRevert || r.opts.Self != "" || res.Revision == nil || r.autoReverted[res.Revision.Commit] {
		return
	}
	var failed []string
	for _, c := range res.Clusters {
		var he *HealthError
		if errors.As(c.Err, &he) && !strings.Contains(he.Err.Error(), "cancelled by a newer revision") {
			failed = append(failed, c.Name)
		}
	}
	if len(failed) == 0 {
		return
	}
	if r.autoReverted == nil {
		r.autoReverted = map[string]bool{}
	}
	r.autoReverted[res.Revision.Commit] = true
	reason := fmt.Sprintf("health check failed in %s within rollout.healthTimeout", strings.Join(failed, ", "))
	log := r.opts.Log.With("environment", r.opts.Environment, "commit", res.Revision.Short())
	commit, err := rollback.AutoRevert(ctx, r.repo, r.opts.Revision, res.Revision.Commit, reason, r.opts.Identity)
	var moved *source.BranchMovedError
	if errors.As(err, &moved) {
		log.Info("not auto-reverted: a newer revision was pushed and is reconciled next", "reason", err)
		return
	}
	if err != nil {
		log.Error("auto-revert failed; revert by hand with strata rollback", "error", err)
		return
	}
	res.AutoRevert = commit
	log.Warn("auto-reverted a revision that failed its health check", "revert", commit, "reason", reason)
	for _, c := range res.Clusters {
		cl, err := r.connect.Connect(c.Name)
		if err != nil || !c.Reachable {
			continue
		}
		invRef := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: labels.SystemNamespace, Name: labels.InventoryName(r.opts.Environment)}}
		cl.Recorder.AnnotatedEventf(invRef, map[string]string{labels.Revision: res.Revision.Commit}, corev1.EventTypeWarning, ReasonAutoReverted,
			"revision %s reverted by strata with %.12s: %s", res.Revision.Short(), commit, reason)
		r.auditor(cl).Record(audit.Event{Kind: audit.AutoRevert, Commit: res.Revision.Commit, Cluster: c.Name, Tier: c.Tier,
			Actor: "strata", Message: fmt.Sprintf("reverted by %.12s: %s", commit, reason)})
	}
}
