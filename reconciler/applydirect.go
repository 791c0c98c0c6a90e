package reconciler

import (
	"context"
	"errors"
	"sync"

	"github.com/fluxcd/cli-utils/pkg/object"
	"github.com/fluxcd/pkg/ssa"
	"github.com/fluxcd/pkg/ssa/utils"
	"golang.org/x/sync/errgroup"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-gitops/strata/internal/labels"
)

// applyPart applies one part of a batch in order. Objects without since
// or create go through m.ApplyAll (a run of them in one call): GET,
// dry-run, drift check, then apply, with ssa's recreation on immutable
// fields and its selectors. An object with since or create is applied
// directly (applyDirect); if that is refused for any reason, it goes
// through ApplyAll like the others, so that ssa decides and words the
// error.
//
// It returns the entries of what it applied, also when a later call fails,
// so that objects created before the failure reach the inventory, and
// those it applied directly with since (objects that were ready, which
// the stages need not wait for again); dr (may be nil) counts every direct
// apply and learns each refusal.
func applyPart(ctx context.Context, m *ssa.ResourceManager, items []applyItem, opts ssa.ApplyOptions, dr *DirectReport) (entries []ssa.ChangeSetEntry, ready []object.ObjMetadata, err error) {
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
	free := namesFree(ctx, m.Client(), items, opts)
	for i, it := range items {
		if !direct(it, opts) {
			run = append(run, it.obj)
			continue
		}
		if it.create && free[i] != nil {
			dr.fellBack(it, free[i])
			run = append(run, it.obj)
			continue
		}
		if err := flush(); err != nil {
			return entries, ready, err
		}
		e, derr := applyDirect(ctx, m, it)
		if derr == nil {
			entries = append(entries, e)
			dr.applied(1)
			if it.since != "" {
				ready = append(ready, e.ObjMetadata)
			}
			continue
		}
		dr.fellBack(it, derr)
		run = append(run, it.obj)
	}
	return entries, ready, flush()
}

// applyDirect applies, without ssa's dry-run, an object whose state strata
// knows from its LIST:
//
//   - since: git changed the object and nobody touched it since strata
//     last applied it (its fingerprint in the LIST matched the
//     inventory's); ssa's GET and dry-run would only confirm that it
//     differs, so it is one round trip instead of three. The
//     resourceVersion the LIST saw is the precondition: if anyone changed
//     the object since (drift, strata.dev/reconcile: disabled set, a
//     status update), the apiserver refuses with a conflict.
//   - create: strata never applied the object, the LIST (of strata's
//     objects) did not find it, and namesFree found no object of its name:
//     it is applied at once, where ssa's path would GET the same and
//     dry-run a create before applying it.
//
// The error is the apiserver's refusal; the object is then unchanged.
// The entry says created, configured, or unchanged when the apply changed
// nothing (same resourceVersion), as ssa's dry-run comparison would have.
func applyDirect(ctx context.Context, m *ssa.ResourceManager, it applyItem) (ssa.ChangeSetEntry, error) {
	obj := it.obj.DeepCopy()
	utils.RemoveCABundleFromCRD(obj) // as ssa's ApplyAll does
	if !it.create {
		obj.SetResourceVersion(it.since)
	}
	if err := m.Client().Patch(ctx, obj, client.Apply, client.ForceOwnership, client.FieldOwner(labels.FieldManager)); err != nil {
		return ssa.ChangeSetEntry{}, err
	}
	action := ssa.ConfiguredAction
	switch {
	case it.create:
		action = ssa.CreatedAction
	case obj.GetResourceVersion() == it.since:
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
	// FallbackExists: an object strata never applied already had the name
	// (made by hand or by another tool, as when moving from Flux); ssa's
	// path adopts it, or leaves it alone if it is frozen.
	FallbackExists = "exists"
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

func (dr *DirectReport) fellBack(it applyItem, err error) {
	if dr == nil {
		return
	}
	reason := FallbackRefused
	switch {
	case errors.Is(err, errExists):
		reason = FallbackExists
	case apierrors.IsConflict(err):
		reason = FallbackConflict
	}
	dr.mu.Lock()
	defer dr.mu.Unlock()
	dr.Fallbacks = append(dr.Fallbacks, DirectFallback{Object: utils.FmtUnstructured(it.obj), Reason: reason, Err: err.Error()})
}

// direct reports whether it may be applied directly: it has since or
// create, and git does not freeze it (opts.ExclusionSelector on the
// object in git: the reconciler never applies those, and ssa's path skips
// them; this keeps applyPart's semantics ssa's for any caller).
func direct(it applyItem, opts ssa.ApplyOptions) bool {
	return (it.since != "" || it.create) && !utils.AnyInMetadata(it.obj, opts.ExclusionSelector)
}

// errExists is a create's refusal: an object already has the name.
var errExists = errors.New("an object strata did not apply has this name")

// namesFree asks, for every create item, whether an object has its name:
// nil when none has; errExists when one has (made by hand or by another
// tool, as when moving from Flux; frozen or not), which ssa's path then
// adopts or leaves alone exactly as before; or the GET's error. The GETs
// (metadata only) go side by side, as ssa's dry-runs do, so that a part's
// creates cost one round of GETs and then one apply each.
func namesFree(ctx context.Context, c client.Client, items []applyItem, opts ssa.ApplyOptions) []error {
	out := make([]error, len(items))
	var g errgroup.Group
	g.SetLimit(namesFreeConcurrency)
	for i, it := range items {
		if !it.create || !direct(it, opts) {
			continue
		}
		g.Go(func() error {
			meta := &metav1.PartialObjectMetadata{}
			meta.SetGroupVersionKind(it.obj.GroupVersionKind())
			switch err := c.Get(ctx, client.ObjectKeyFromObject(it.obj), meta); {
			case err == nil:
				out[i] = errExists
			case !apierrors.IsNotFound(err):
				out[i] = err
			}
			return nil
		})
	}
	_ = g.Wait() // every error is an item's
	return out
}

// namesFreeConcurrency is how many of a part's GETs are in flight, as
// ssa's dry-runs (internal/cluster's manager concurrency).
const namesFreeConcurrency = 8
