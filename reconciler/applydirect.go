package reconciler

import (
	"context"
	"sync"

	"github.com/fluxcd/cli-utils/pkg/object"
	"github.com/fluxcd/pkg/ssa"
	"github.com/fluxcd/pkg/ssa/utils"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
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
// which of them it applied directly; dr (may be nil) learns each refusal.
func applyPart(ctx context.Context, m *ssa.ResourceManager, items []applyItem, opts ssa.ApplyOptions, dr *DirectReport) (entries []ssa.ChangeSetEntry, direct []object.ObjMetadata, err error) {
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
		e, derr := applyDirect(ctx, m, it)
		if derr == nil {
			entries = append(entries, e)
			direct = append(direct, e.ObjMetadata)
			continue
		}
		dr.fellBack(it.obj, derr)
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
// The error is the apiserver's refusal; the object is then unchanged.
// The entry says configured, or unchanged when the apply changed nothing
// (same resourceVersion), as ssa's dry-run comparison would have.
func applyDirect(ctx context.Context, m *ssa.ResourceManager, it applyItem) (ssa.ChangeSetEntry, error) {
	obj := it.obj.DeepCopy()
	utils.RemoveCABundleFromCRD(obj) // as ssa's ApplyAll does
	obj.SetResourceVersion(it.since)
	if err := m.Client().Patch(ctx, obj, client.Apply, client.ForceOwnership, client.FieldOwner(labels.FieldManager)); err != nil {
		return ssa.ChangeSetEntry{}, err
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
	}, nil
}

// Why a direct apply was refused and the object took ssa's full path.
const (
	// FallbackConflict: the object changed after the LIST (a hand edit, a
	// freeze, a controller's write). Expected now and then; often means
	// someone or something edits objects strata owns.
	FallbackConflict = "conflict"
	// FallbackRefused: any other refusal (admission, an immutable field,
	// validation); ssa's path then reports the error with its object.
	FallbackRefused = "refused"
)

// DirectFallback is one object whose direct apply was refused.
type DirectFallback struct {
	// Object is Kind/namespace/name.
	Object string
	// Reason is FallbackConflict or FallbackRefused.
	Reason string
	// Err is the apiserver's answer.
	Err string
}

// DirectReport counts the direct applies of one reconcile of a cluster and
// keeps their refusals, so that operators can see how often the fast path
// falls back (strata_direct_apply_total, the cluster's log line). The
// parts of a batch report concurrently; a nil report records nothing.
type DirectReport struct {
	mu        sync.Mutex
	Applied   int
	Fallbacks []DirectFallback
}

func (dr *DirectReport) applied(n int) {
	if dr == nil {
		return
	}
	dr.mu.Lock()
	defer dr.mu.Unlock()
	dr.Applied += n
}

func (dr *DirectReport) fellBack(obj *unstructured.Unstructured, err error) {
	if dr == nil {
		return
	}
	reason := FallbackRefused
	if apierrors.IsConflict(err) {
		reason = FallbackConflict
	}
	dr.mu.Lock()
	defer dr.mu.Unlock()
	dr.Fallbacks = append(dr.Fallbacks, DirectFallback{Object: utils.FmtUnstructured(obj), Reason: reason, Err: err.Error()})
}
