package reconciler

import (
	"context"

	"github.com/fluxcd/cli-utils/pkg/object"
	"github.com/fluxcd/pkg/ssa"
	"github.com/fluxcd/pkg/ssa/utils"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-gitops/strata/internal/labels"
)

// applyPart applies one part of a batch in order. Objects without since go
// through m.ApplyAll (a run of them in one call): GET, dry-run, drift
// check, then apply, with ssa's recreation on immutable fields and its
// selectors. An object with since is applied directly (applyDirect); if
// that is refused for any reason, it goes through ApplyAll like the
// others, so that ssa decides and words the error.
//
// It returns the entries of what it applied, also when a later call fails,
// so that objects created before the failure reach the inventory, and
// which of them it applied directly.
func applyPart(ctx context.Context, m *ssa.ResourceManager, items []applyItem, opts ssa.ApplyOptions) (entries []ssa.ChangeSetEntry, direct []object.ObjMetadata, err error) {
	var run []*unstructured.Unstructured
	flush := func() error {
		if len(run) == 0 {
			return nil
		}
		cs, err := m.ApplyAll(ctx, run, opts)
		run = nil
		if err != nil {
			return err
		}
		entries = append(entries, cs.Entries...)
		return nil
	}
	for _, it := range items {
		if it.since == "" {
			run = append(run, it.obj)
			continue
		}
		if err := flush(); err != nil {
			return entries, direct, err
		}
		if e, ok := applyDirect(ctx, m, it); ok {
			entries = append(entries, e)
			direct = append(direct, e.ObjMetadata)
			continue
		}
		run = append(run, it.obj)
	}
	return entries, direct, flush()
}

// applyDirect applies an object that git changed and that nobody touched
// since strata last applied it (its fingerprint in the LIST matched the
// inventory's): ssa's GET and dry-run would only confirm that it differs,
// so it is applied at once — one round trip instead of three, and no
// dry-run for the apiserver to compute. The resourceVersion the LIST saw
// is the apply's precondition: if anyone changed the object since (drift,
// strata.dev/reconcile: disabled set, a status update), the apiserver
// refuses with a conflict and ssa's full path handles the object.
//
// ok is false when the apply was refused; the object is then unchanged.
// The entry says configured, or unchanged when the apply changed nothing
// (same resourceVersion), as ssa's dry-run comparison would have.
func applyDirect(ctx context.Context, m *ssa.ResourceManager, it applyItem) (ssa.ChangeSetEntry, bool) {
	obj := it.obj.DeepCopy()
	utils.RemoveCABundleFromCRD(obj) // as ssa's ApplyAll does
	obj.SetResourceVersion(it.since)
	if err := m.Client().Patch(ctx, obj, client.Apply, client.ForceOwnership, client.FieldOwner(labels.FieldManager)); err != nil {
		return ssa.ChangeSetEntry{}, false
	}
	action := ssa.ConfiguredAction
	if obj.GetResourceVersion() == it.since {
		action = ssa.UnchangedAction
	}
	return ssa.ChangeSetEntry{
		ObjMetadata:  object.UnstructuredToObjMetadata(obj),
		GroupVersion: obj.GroupVersionKind().Version,
		Subject:      utils.FmtUnstructured(obj),
		Action:       action,
	}, true
}
