package reconciler

import (
	"fmt"

	fluxmeta "github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/strata-gitops/strata/internal/inventory"
	"github.com/strata-gitops/strata/internal/labels"
)

// statusObject lets fluxcd/pkg/runtime/conditions keep the conditions of a
// cluster's stored status: the inventory ConfigMap is the object they
// describe, as a Kustomization's status describes its inventory.
type statusObject struct {
	*corev1.ConfigMap
	s *inventory.Status
}

func (o statusObject) GetConditions() []metav1.Condition  { return o.s.Conditions }
func (o statusObject) SetConditions(c []metav1.Condition) { o.s.Conditions = c }

var _ conditions.Setter = statusObject{}

// setConditions sets Ready, Reconciling and Stalled, as Flux's controllers
// do (kstatus conventions): Ready says whether the cluster is at the
// revision, Reconciling that strata is applying it or waiting for health,
// Stalled that retrying cannot help. All three are always present, False
// when they do not hold, so that a reader never has to guess from absence.
// conditions.Set keeps a condition's lastTransitionTime while its status,
// reason and message stay the same.
func setConditions(s *inventory.Status, res *ClusterResult, env string) {
	o := statusObject{ConfigMap: &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: labels.SystemNamespace}}, s: s}
	reason := reasonOf(res)
	switch {
	case res.inProgress:
		msg := fmt.Sprintf("applied revision %s, waiting for %d objects to become healthy", short(res.Revision), res.Objects)
		conditions.MarkUnknown(o, fluxmeta.ReadyCondition, fluxmeta.ProgressingReason, "%s", msg)
		conditions.MarkTrue(o, fluxmeta.ReconcilingCondition, fluxmeta.ProgressingReason, "%s", msg)
		conditions.MarkFalse(o, fluxmeta.StalledCondition, fluxmeta.ProgressingReason, "reconciling")
		return
	case res.Suspended != nil:
		conditions.MarkFalse(o, fluxmeta.ReadyCondition, inventory.ReasonSuspended, "%s; nothing is applied, corrected or pruned here until `strata resume --env %s --cluster %s`",
			res.Suspended, env, res.Name)
	case reason == inventory.ReasonWaitingForMove:
		conditions.MarkFalse(o, fluxmeta.ReadyCondition, reason, "%d objects moved to another cluster stay here until they are healthy there: %s",
			len(res.Waiting), inventory.Describe(res.Waiting, 5))
	case res.Err != nil:
		conditions.MarkFalse(o, fluxmeta.ReadyCondition, reason, "%s", res.Err.Error())
	default:
		msg := fmt.Sprintf("applied revision %s: %d objects, %d healthy", short(res.Revision), res.Objects, res.Healthy)
		if len(res.Held) > 0 {
			msg += fmt.Sprintf("; %d differ from git and are left as they are (%s: %s): %s", len(res.Held), labels.Reconcile, labels.ReconcileDisabled, inventory.Describe(res.Held, 5))
		}
		conditions.MarkTrue(o, fluxmeta.ReadyCondition, reason, "%s", msg)
	}
	conditions.MarkFalse(o, fluxmeta.ReconcilingCondition, reason, "not reconciling: the last reconcile ended (%s)", reason)
	if reason == inventory.ReasonMassPruneRefused || reason == inventory.ReasonHistoryRewritten {
		// Terminal: retrying cannot help, the commit or an override must change.
		conditions.MarkTrue(o, fluxmeta.StalledCondition, reason, "%s", res.Err.Error())
		return
	}
	conditions.MarkFalse(o, fluxmeta.StalledCondition, reason, "retrying is enough")
}
