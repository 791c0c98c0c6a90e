package reconciler

import (
	"context"
	"sort"
	"strings"
	"sync"

	"github.com/fluxcd/cli-utils/pkg/object"
	"github.com/fluxcd/pkg/ssa"
	"github.com/fluxcd/pkg/ssa/utils"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// applyChunks is how many ssa.ApplyAll calls run side by side for the
// objects that come after the cluster and class definitions. ssa's ApplyAll
// dry-runs concurrently (the manager's concurrency, 8: internal/cluster) but
// applies every changed object one after the other, so a first apply of N
// objects costs N apply round trips in a row; K chunks cut that to ~N/K.
// 16: a small change (tens of objects per cluster, a revert) then takes one
// dry-run round and one or two apply rounds (bench/ttr, last Deployment
// applied: 1.63 s with 4, 1.26 s with 16); a first apply of 500 objects on
// one apiserver is as fast as with 8 and faster than with 4
// (BenchmarkFirstApply: 1111 / 1094 / 1326 ms).
const applyChunks = 16

// leadKinds are applied (concurrently among themselves) before the other
// objects of the last stage: what the admission of the objects after them,
// or of the Pods their controllers create, reads (service accounts, RBAC,
// quotas and limit ranges). ssa's sequential apply gives them the same
// precedence through its kind order (ssa.ReconcileOrder).
var leadKinds = map[schema.GroupKind]bool{
	{Group: "rbac.authorization.k8s.io", Kind: "ClusterRoleBinding"}: true,
	{Group: "rbac.authorization.k8s.io", Kind: "Role"}:               true,
	{Group: "rbac.authorization.k8s.io", Kind: "RoleBinding"}:        true,
	{Group: "", Kind: "ServiceAccount"}:                              true,
	{Group: "", Kind: "ResourceQuota"}:                               true,
	{Group: "", Kind: "LimitRange"}:                                  true,
}

// tailKinds are applied after every other object, as ssa's kind order does
// (ssa.ReconcileOrder.Last): a new admission webhook must not intercept the
// apply of the objects it ships with (its Service may not serve yet).
func isTailKind(u *unstructured.Unstructured) bool {
	for _, k := range ssa.ReconcileOrder.Last {
		if u.GetKind() == k {
			return true
		}
	}
	return false
}

// applyBatch is how many objects of a wave are built and applied at a
// time per cluster. Objects wait as identities (lazyObject) and are built —
// decoded from the render's compact form and stamped — only when their
// batch comes, so that a first apply of thousands of objects never holds
// them all, and ssa's copies of them, at once.
const applyBatch = 512

// lazyObject is an object to apply, known by its identity (apiVersion,
// kind, namespace, name) until its batch is applied; build makes the full
// object then.
type lazyObject struct {
	id    *unstructured.Unstructured
	build func() *unstructured.Unstructured
	// since, when set, is the resourceVersion the object had when strata
	// listed it, and that object was exactly what strata last applied: it
	// is applied at once, with since as its precondition (applyDirect).
	since string
	// create: strata never applied the object and its LIST did not find
	// it; it is applied at once, created or refused (applyDirect).
	create bool
}

// idsOf returns the identities of objs.
func idsOf(objs []lazyObject) []*unstructured.Unstructured {
	out := make([]*unstructured.Unstructured, len(objs))
	for i, o := range objs {
		out[i] = o.id
	}
	return out
}

// applyItem is an object built for its batch, with its lazyObject's since
// and create.
type applyItem struct {
	obj    *unstructured.Unstructured
	since  string
	create bool
}

func buildItems(objs []lazyObject) []applyItem {
	out := make([]applyItem, len(objs))
	for i, o := range objs {
		out[i] = applyItem{obj: o.build(), since: o.since, create: o.create}
	}
	return out
}

// applyAllStagedConcurrent applies objects with ssa's semantics and in ssa's
// stages (those of m.ApplyAllStaged), faster. The cluster definitions
// (CRDs, Namespaces, ClusterRoles), then the class definitions, then
// opts.CustomStageKinds are applied stage by stage, waiting after the first
// two until their objects are ready — except objects applied directly,
// which existed and were as strata last applied them (and waited for).
// The other objects are applied in three waves (leadKinds, the rest,
// tailKinds, each after the previous one); a wave goes in ssa's order in
// batches of up to `batch` objects, one batch after the other. Each stage
// and batch is split into up to `chunks` parts applied concurrently by
// m.ApplyAll, so that dry-run, drift detection, recreation on immutable
// fields and the exclusion and if-not-present selectors stay ssa's — except
// for objects with since, applied directly (applyPart).
//
// The change set holds the same entries, in the same order, as
// m.ApplyAllStaged's. On error it holds what was applied: the earlier
// stages, waves and batches, and what the parts of the failed batch applied
// before they failed (an ApplyAll call that fails reports nothing); the
// error joins the parts' errors, each naming its object.
// dr, when not nil, learns how many objects were applied directly and which
// direct applies were refused.
func applyAllStagedConcurrent(ctx context.Context, m *ssa.ResourceManager, objects []lazyObject, opts ssa.ApplyOptions, chunks, batch int, dr *DirectReport) (*ssa.ChangeSet, error) {
	var defs, classes, custom, lead, mid, tail []lazyObject
	for _, lo := range objects {
		o := lo.id
		switch {
		case utils.IsClusterDefinition(o):
			defs = append(defs, lo)
		case utils.IsClassDefinition(o):
			classes = append(classes, lo)
		case utils.IsCustomStage(o, opts.CustomStageKinds):
			custom = append(custom, lo)
		case leadKinds[o.GroupVersionKind().GroupKind()]:
			lead = append(lead, lo)
		case isTailKind(o):
			tail = append(tail, lo)
		default:
			mid = append(mid, lo)
		}
	}
	cs := ssa.NewChangeSet()
	for i, stage := range [][]lazyObject{defs, classes, custom} {
		if len(stage) == 0 {
			continue
		}
		entries, direct, err := applyChunked(ctx, m, buildItems(stage), opts, chunks, dr)
		sortEntries(entries)
		cs.Append(entries)
		if err != nil {
			return cs, err
		}
		if i == 2 {
			continue // ssa does not wait for the custom stage
		}
		var wait object.ObjMetadataSet
		for _, e := range entries {
			if !direct[e.ObjMetadata] {
				wait = append(wait, e.ObjMetadata)
			}
		}
		if len(wait) > 0 {
			if err := m.WaitForSet(wait, ssa.WaitOptions{Interval: opts.WaitInterval, Timeout: opts.WaitTimeout}); err != nil {
				return cs, err
			}
		}
	}
	var rest []ssa.ChangeSetEntry
	var err error
waves:
	for _, wave := range [][]lazyObject{lead, mid, tail} {
		for _, b := range batches(wave, batch) {
			var entries []ssa.ChangeSetEntry
			entries, _, err = applyChunked(ctx, m, buildItems(b), opts, chunks, dr)
			rest = append(rest, entries...)
			if err != nil {
				break waves
			}
		}
	}
	sortEntries(rest)
	cs.Append(rest)
	return cs, err
}

// batches sorts a wave in ssa's order and cuts it into runs of at most size
// objects.
func batches(wave []lazyObject, size int) [][]lazyObject {
	sort.SliceStable(wave, func(i, j int) bool {
		return ssa.SortableUnstructureds{wave[i].id, wave[j].id}.Less(0, 1)
	})
	size = max(1, size)
	var out [][]lazyObject
	for len(wave) > 0 {
		n := min(size, len(wave))
		out = append(out, wave[:n:n])
		wave = wave[n:]
	}
	return out
}

// applyChunked applies objects in up to n concurrent parts (applyPart)
// and returns the entries of those applied, which of them were applied
// directly with since (ready: the stages do not wait for them), and the
// parts' errors.
func applyChunked(ctx context.Context, m *ssa.ResourceManager, objects []applyItem, opts ssa.ApplyOptions, n int, dr *DirectReport) ([]ssa.ChangeSetEntry, map[object.ObjMetadata]bool, error) {
	if len(objects) == 0 {
		return nil, nil, nil
	}
	parts := split(objects, n)
	results := make([][]ssa.ChangeSetEntry, len(parts))
	directs := make([][]object.ObjMetadata, len(parts))
	errs := make([]error, len(parts))
	var wg sync.WaitGroup
	for i, part := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], directs[i], errs[i] = applyPart(ctx, m, part, opts, dr)
		}()
	}
	wg.Wait()
	var entries []ssa.ChangeSetEntry
	direct := map[object.ObjMetadata]bool{}
	for i, r := range results {
		entries = append(entries, r...)
		for _, id := range directs[i] {
			direct[id] = true
		}
	}
	return entries, direct, joinChunkErrors(errs)
}

// chunkErrors are the errors of the chunks of one wave, on one line (a
// status condition's message) and each still reachable by errors.As.
type chunkErrors []error

func joinChunkErrors(errs []error) error {
	var out chunkErrors
	for _, err := range errs {
		if err != nil {
			out = append(out, err)
		}
	}
	switch len(out) {
	case 0:
		return nil
	case 1:
		return out[0]
	}
	return out
}

func (e chunkErrors) Error() string {
	msgs := make([]string, len(e))
	for i, err := range e {
		msgs[i] = err.Error()
	}
	return strings.Join(msgs, "; ")
}

func (e chunkErrors) Unwrap() []error { return e }

// split deals objects, in ssa's order, round-robin into at most n parts:
// each part keeps ssa's order, and all parts reach the kinds ssa applies
// later (Deployments after ConfigMaps and Services) at about the same time.
func split(objects []applyItem, n int) [][]applyItem {
	sorted := append([]applyItem(nil), objects...)
	sort.SliceStable(sorted, func(i, j int) bool {
		return ssa.SortableUnstructureds{sorted[i].obj, sorted[j].obj}.Less(0, 1)
	})
	n = max(1, min(n, len(sorted)))
	parts := make([][]applyItem, n)
	for i, o := range sorted {
		parts[i%n] = append(parts[i%n], o)
	}
	return parts
}

// sortEntries puts change set entries in ssa's order (the order ApplyAll
// returns them in).
func sortEntries(entries []ssa.ChangeSetEntry) {
	sort.SliceStable(entries, func(i, j int) bool {
		return ssa.SortableMetas{entries[i].ObjMetadata, entries[j].ObjMetadata}.Less(0, 1)
	})
}
