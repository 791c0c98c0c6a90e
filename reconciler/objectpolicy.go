package reconciler

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/fluxcd/pkg/ssa"
	ssautils "github.com/fluxcd/pkg/ssa/utils"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-gitops/strata/internal/inventory"
	"github.com/strata-gitops/strata/internal/labels"
)

// Per-object apply policies, with Flux's semantics and strata's keys
// (labels.Reconcile, labels.SSA). fluxcd/pkg/ssa enforces them at apply and
// prune time (ApplyOptions.ExclusionSelector, IfNotPresentSelector,
// DeleteOptions.Exclusions); strata also reads them before applying, to
// report drift it leaves alone and to keep the inventory truthful.
var (
	// disabledSelector matches objects strata must not apply, correct or
	// prune: in git or on the live object (an on-call engineer's
	// `kubectl annotate … strata.dev/reconcile=disabled` during an incident).
	disabledSelector = map[string]string{labels.Reconcile: labels.ReconcileDisabled}
	// ifNotPresentSelector matches objects in git that strata creates when
	// missing and never updates.
	ifNotPresentSelector = map[string]string{labels.SSA: labels.SSAIfNotPresent}
)

func isDisabled(u *unstructured.Unstructured) bool {
	return u != nil && ssautils.AnyInMetadata(u, disabledSelector)
}

func isIfNotPresent(u *unstructured.Unstructured) bool {
	return u != nil && ssautils.AnyInMetadata(u, ifNotPresentSelector)
}

// checkPolicyValues refuses a value of strata.dev/reconcile or
// strata.dev/ssa that strata does not know: a typo must not quietly turn a
// freeze into a normal apply (fail closed: the revision is not applied).
func checkPolicyValues(u *unstructured.Unstructured) error {
	for _, m := range []map[string]string{u.GetLabels(), u.GetAnnotations()} {
		if v, ok := m[labels.Reconcile]; ok && !strings.EqualFold(v, labels.ReconcileDisabled) && !strings.EqualFold(v, labels.ReconcileEnabled) {
			return fmt.Errorf("%s=%q is not supported: use %q (apply, correct and prune) or %q (leave the object as it is, report drift)",
				labels.Reconcile, v, labels.ReconcileEnabled, labels.ReconcileDisabled)
		}
		if v, ok := m[labels.SSA]; ok && !strings.EqualFold(v, labels.SSAIfNotPresent) && !strings.EqualFold(v, labels.SSAOverride) {
			return fmt.Errorf("%s=%q is not supported: use %q (strata's fields win) or %q (create when missing, never update)",
				labels.SSA, v, labels.SSAOverride, labels.SSAIfNotPresent)
		}
	}
	return nil
}

// applyOptions are the server-side apply options of every apply.
func (r *Reconciler) applyOptions() ssa.ApplyOptions {
	opts := ssa.DefaultApplyOptions()
	opts.WaitInterval = r.opts.PollInterval
	opts.ExclusionSelector = disabledSelector
	opts.IfNotPresentSelector = ifNotPresentSelector
	return opts
}

// changeKey is the inventory key of a change set entry.
func changeKey(e ssa.ChangeSetEntry) string {
	id := e.ObjMetadata
	return inventory.Ref{Group: id.GroupKind.Group, Kind: id.GroupKind.Kind, Namespace: id.Namespace, Name: id.Name}.Key()
}

// skippedKeys returns the keys of the objects a change set skipped.
func skippedKeys(cs *ssa.ChangeSet) map[string]bool {
	out := map[string]bool{}
	if cs == nil {
		return out
	}
	for _, e := range cs.Entries {
		if e.Action == ssa.SkippedAction {
			out[changeKey(e)] = true
		}
	}
	return out
}

// frozenOf returns which of the objects a prune skipped are frozen
// (strata.dev/reconcile: disabled on the live object): they stay in the
// inventory, so that strata prunes them once they are enabled again. An
// object skipped for another reason (not applied by strata) is not.
func frozenOf(ctx context.Context, c client.Client, refs []inventory.Ref, skipped map[string]bool) (map[string]bool, error) {
	out := map[string]bool{}
	for _, ref := range refs {
		if !skipped[ref.Key()] {
			continue
		}
		u := ref.Object()
		err := c.Get(ctx, client.ObjectKeyFromObject(u), u)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s after its prune was skipped: %w", ref, err)
		}
		if isDisabled(u) {
			out[ref.Key()] = true
		}
	}
	return out, nil
}

// addManagers adds the field managers ms to list, once each.
func addManagers(list []string, ms []string) []string {
	for _, m := range ms {
		if !slices.Contains(list, m) {
			list = append(list, m)
		}
	}
	return list
}
