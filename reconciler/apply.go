package reconciler

import (
	"context"
	"errors"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	"github.com/fluxcd/pkg/ssa"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/strata-gitops/strata/internal/approval"
	"github.com/strata-gitops/strata/internal/audit"
	"github.com/strata-gitops/strata/internal/cluster"
	"github.com/strata-gitops/strata/internal/inventory"
)

// ClusterResult is the outcome of reconciling one cluster.
type ClusterResult struct {
	Name string
	Tier string
	// Skipped is set when the cluster was not reconciled (agent mode, or a
	// failed render).
	Skipped    bool
	Reachable  bool
	Revision   string
	Objects    int
	Created    int
	Configured int
	Unchanged  int
	// Drifted counts objects changed or deleted by hand and restored.
	Drifted int
	// DriftedBy names the field managers behind the drift.
	DriftedBy []string
	Pruned    []inventory.Ref
	// MovedOut are objects pruned here after becoming healthy elsewhere.
	MovedOut []inventory.Ref
	// Waiting are objects that moved to another cluster and stay here until
	// they are healthy there.
	Waiting     []inventory.Ref
	Healthy     int
	Progressing int
	Failed      int
	HealthWait  time.Duration
	Duration    time.Duration
	Err         error
	// Suspended is set when strata suspend froze the cluster: nothing was
	// applied or pruned there.
	Suspended *inventory.Suspension
	// Held are objects that differ from git (changed by hand, changed in
	// git, removed from git) and were left as they are because of
	// strata.dev/reconcile: disabled; HeldBy names the field managers
	// behind their changes.
	Held   []inventory.Ref
	HeldBy []string
	// DirectApplied counts objects applied without ssa's dry-run
	// (applyDirect): changed in git and untouched by anyone else, or new
	// to strata with their name free; DirectFallbacks are those whose
	// direct apply was refused and took ssa's full path.
	DirectApplied   int
	DirectFallbacks []DirectFallback

	inv     *inventory.Inventory
	entries []inventory.Ref
	// saved is set once the prune phase stored the final inventory.
	saved bool
	// prev is the status stored by the previous reconcile.
	prev inventory.Status
	// windows were open for the render.
	windows []string
	// tree and gate describe the revision for the history.
	tree string
	gate *approval.Verdict
	// current holds the keys of objects healthy in this cluster.
	current map[string]bool
	// inProgress is set while the applied objects are waited for.
	inProgress bool
}

// apply runs phase one for a cluster: compare with the inventory and the
// live objects, apply what changed or drifted, wait for health.
func (r *Reconciler) apply(ctx context.Context, cl *cluster.Cluster, plan *rolloutPlan, maxPct int, timeout time.Duration) *ClusterResult {
	res := &ClusterResult{Name: cl.Name, Tier: plan.tiers[cl.Name], Reachable: true, Revision: plan.revision, current: map[string]bool{}}
	objs := plan.objects[cl.Name]
	res.Objects = len(objs)
	// The inventory and the live objects are read side by side: two round
	// trips of the time to recovery become one. The LIST is only used
	// once the inventory is read and the mass-prune guard has passed.
	var live map[string]*liveObject
	var lerr error
	listed := make(chan struct{})
	go func() {
		defer close(listed)
		live, lerr = listLive(ctx, cl.Client, plan.env, gvksOf(objs))
	}()
	inv, err := inventory.Load(ctx, cl.Client, plan.env)
	<-listed
	if err != nil {
		res.Reachable = false
		res.Err = &UnreachableError{Cluster: cl.Name, Err: err}
		return res
	}
	res.inv, res.prev = inv, inv.Status
	refs := make([]inventory.Ref, len(objs))
	for i, do := range objs {
		refs[i] = do.ref
	}
	stale := inv.Stale(refs)
	if n := len(inv.Entries); n > 0 && !r.opts.AllowMassPrune && len(stale)*100 > maxPct*n {
		res.Err = &MassPruneError{Cluster: cl.Name, Stale: stale, Total: n, MaxPct: maxPct, Revision: plan.revision}
		return res
	}

	if lerr != nil {
		res.Err = &UnreachableError{Cluster: cl.Name, Err: lerr}
		res.Reachable = false
		return res
	}
	prev := inv.Keys()
	var toApply []lazyObject
	suspects := map[string][]string{} // objects that may have drifted → their other managers
	held := map[string]bool{}         // objects strata.dev/reconcile: disabled leaves alone
	res.entries = make([]inventory.Ref, 0, len(objs))
	for _, do := range objs {
		key := do.ref.Key()
		p, had := prev[key]
		var pp *inventory.Ref
		if had {
			pp = &p
		}
		rev := do.revisionOf(pp, plan.revision)
		e := do.ref
		e.Hash, e.Revision = do.hash, rev
		lo := live[key]
		switch {
		case do.disabled || (lo != nil && lo.disabled):
			// Frozen: keep what strata last applied in the inventory, so
			// that the difference is reported until the object is enabled
			// again, and then corrected.
			held[key] = true
			e.Hash, e.Revision, e.Fingerprint = "", "", ""
			if had {
				e.Hash, e.Revision, e.Fingerprint = p.Hash, p.Revision, p.Fingerprint
			}
			if !had || p.Hash != do.hash || lo == nil || p.Fingerprint != lo.fingerprint {
				res.Held = append(res.Held, do.ref)
				if lo != nil {
					res.HeldBy = addManagers(res.HeldBy, lo.managers)
				}
			}
			if lo != nil {
				countStatus(res, lo.status)
				if lo.status == status.CurrentStatus {
					res.current[key] = true
				}
			}
		case do.ifNotPresent && lo != nil:
			// Created once, never updated: whatever it holds now is not drift.
			e.Fingerprint = lo.fingerprint
			if had {
				e.Revision = p.Revision
			}
			countStatus(res, lo.status)
			if lo.status == status.CurrentStatus {
				res.current[key] = true
			}
		case !had || p.Hash != do.hash:
			lz := do.lazy(rev)
			switch {
			case had && lo != nil && p.Fingerprint == lo.fingerprint:
				// Changed in git only: applied directly (applyDirect).
				lz.since = lo.resourceVersion
			case !had && lo == nil:
				// New to strata and not in the cluster as strata's:
				// created directly, or refused if the name is taken.
				lz.create = true
			}
			toApply = append(toApply, lz)
			if !had {
				r.auditor(cl).Record(audit.Event{Kind: audit.Placement, Commit: plan.revision, Cluster: cl.Name, Tier: res.Tier,
					Object: do.ref.String(), Sensitivity: do.sensitivity, Rule: do.reason, Actor: "strata"})
			}
		case lo == nil:
			suspects[key] = []string{"deleted"}
			toApply = append(toApply, do.lazy(rev))
		case p.Fingerprint != lo.fingerprint:
			suspects[key] = lo.managers
			toApply = append(toApply, do.lazy(rev))
		default:
			e.Fingerprint = p.Fingerprint
			countStatus(res, lo.status)
			if lo.status == status.CurrentStatus {
				res.current[key] = true
			}
		}
		res.entries = append(res.entries, e)
	}

	if len(toApply) > 0 {
		opened, err := r.openSecrets(cl, res, objs, toApply)
		if err != nil {
			res.Err = err
			return res
		}
		dr := &DirectReport{}
		cs, err := applyAllStagedConcurrent(ctx, cl.Manager, opened, r.applyOptions(), applyChunks, applyBatch, dr)
		res.DirectApplied, res.DirectFallbacks = dr.Applied, dr.Fallbacks
		if cs != nil {
			r.countChanges(res, cs, suspects)
			r.auditChanges(cl, res, plan, objs, cs, suspects)
		}
		if err != nil {
			res.Err = &ApplyError{Cluster: cl.Name, Err: err}
			keepCreated(res, objs, cs)
			return res
		}
		skipped := skippedKeys(cs)
		for i := range res.entries {
			e := &res.entries[i]
			if !skipped[e.Key()] || held[e.Key()] {
				continue
			}
			if p, had := prev[e.Key()]; had && !ifNotPresentIn(objs, e.Key()) {
				// Frozen between the LIST and the apply: ssa left it alone.
				e.Hash, e.Revision, e.Fingerprint = p.Hash, p.Revision, p.Fingerprint
				held[e.Key()] = true
				res.Held = append(res.Held, *e)
			}
		}
		// Record the new entries (with the stale ones, not yet pruned)
		// before waiting, so a crash mid-wait can still prune them later.
		res.inProgress = true
		err = r.saveInventory(ctx, cl, res, append(res.entries[:len(res.entries):len(res.entries)], stale...))
		res.inProgress = false
		if err != nil {
			res.Err = &UnreachableError{Cluster: cl.Name, Err: err}
			return res
		}
		start := time.Now()
		var werr error
		applied := idsOf(toApply)
		if wait := waitSet(applied, skipped); len(wait) > 0 {
			werr = r.waitHealthy(r.healthContext(ctx), cl.Manager, wait, timeout)
		}
		res.HealthWait = time.Since(start)
		r.opts.Metrics.HealthWaitDuration.WithLabelValues(plan.env, cl.Name).Observe(res.HealthWait.Seconds())
		if werr != nil && ctx.Err() == nil && r.healthContext(ctx).Err() != nil {
			werr = context.Canceled
		}
		after, lerr := liveAfterApply(ctx, cl.Client, plan.env, applied)
		if lerr != nil && werr == nil {
			werr = lerr
		}
		for i := range res.entries {
			e := &res.entries[i]
			if e.Fingerprint != "" || held[e.Key()] {
				continue
			}
			if lo := after[e.Key()]; lo != nil {
				e.Fingerprint = lo.fingerprint
				countStatus(res, lo.status)
				if lo.status == status.CurrentStatus {
					res.current[e.Key()] = true
				}
			} else if !skipped[e.Key()] {
				res.Progressing++
			}
		}
		if werr != nil {
			if errors.Is(werr, context.Canceled) {
				res.Err = &HealthError{Cluster: cl.Name, Err: errors.New("health wait cancelled by a newer revision")}
			} else {
				res.Err = &HealthError{Cluster: cl.Name, Err: werr}
			}
		}
	}
	return res
}

// keepCreated adds to the inventory kept after a failed apply the objects
// that apply created before it failed (earlier stages, other chunks), with
// no hash, so that the next reconcile applies them again and a revision
// that drops them prunes them instead of leaving them unmanaged.
func keepCreated(res *ClusterResult, objs []*desiredObject, cs *ssa.ChangeSet) {
	if cs == nil || res.inv == nil {
		return
	}
	have := res.inv.Keys()
	refs := make(map[string]inventory.Ref, len(objs))
	for _, do := range objs {
		refs[do.ref.Key()] = do.ref
	}
	for _, e := range cs.Entries {
		key := changeKey(e)
		if _, ok := have[key]; ok || e.Action != ssa.CreatedAction {
			continue
		}
		if ref, ok := refs[key]; ok {
			ref.Hash, ref.Revision, ref.Fingerprint = "", "", ""
			res.inv.Entries = append(res.inv.Entries, ref)
			have[key] = ref
		}
	}
}

// ifNotPresentIn says whether the desired object of key is created only
// when missing (strata.dev/ssa: IfNotPresent).
func ifNotPresentIn(objs []*desiredObject, key string) bool {
	for _, do := range objs {
		if do.ref.Key() == key {
			return do.ifNotPresent
		}
	}
	return false
}

func countStatus(res *ClusterResult, s status.Status) {
	switch s {
	case status.CurrentStatus:
		res.Healthy++
	case status.FailedStatus:
		res.Failed++
	default:
		res.Progressing++
	}
}

func (r *Reconciler) countChanges(res *ClusterResult, cs *ssa.ChangeSet, suspects map[string][]string) {
	for _, e := range cs.Entries {
		key := changeKey(e)
		switch e.Action {
		case ssa.CreatedAction:
			res.Created++
		case ssa.ConfiguredAction:
			res.Configured++
		default:
			res.Unchanged++
			continue
		}
		if by, ok := suspects[key]; ok {
			res.Drifted++
			res.DriftedBy = addManagers(res.DriftedBy, by)
		}
	}
}

func gvksOf(objs []*desiredObject) []schema.GroupVersionKind {
	seen := map[schema.GroupVersionKind]bool{}
	var out []schema.GroupVersionKind
	for _, do := range objs {
		gvk := do.ref.GVK()
		if !seen[gvk] {
			seen[gvk] = true
			out = append(out, gvk)
		}
	}
	return out
}

func gvksOfUnstructured(objs []*unstructured.Unstructured) []schema.GroupVersionKind {
	seen := map[schema.GroupVersionKind]bool{}
	var out []schema.GroupVersionKind
	for _, u := range objs {
		gvk := u.GroupVersionKind()
		if !seen[gvk] {
			seen[gvk] = true
			out = append(out, gvk)
		}
	}
	return out
}

// auditChanges records every object created or configured, and why.
func (r *Reconciler) auditChanges(cl *cluster.Cluster, res *ClusterResult, plan *rolloutPlan, objs []*desiredObject, cs *ssa.ChangeSet, suspects map[string][]string) {
	byKey := make(map[string]*desiredObject, len(objs))
	for _, do := range objs {
		byKey[do.ref.Key()] = do
	}
	w := r.auditor(cl)
	for _, e := range cs.Entries {
		if e.Action != ssa.CreatedAction && e.Action != ssa.ConfiguredAction {
			continue
		}
		key := changeKey(e)
		ev := audit.Event{Kind: audit.Apply, Commit: plan.revision, Cluster: cl.Name, Tier: res.Tier, Actor: "strata", Message: string(e.Action)}
		if do := byKey[key]; do != nil {
			ev.Object, ev.Sensitivity, ev.Rule = do.ref.String(), do.sensitivity, do.reason
		}
		if by, ok := suspects[key]; ok {
			ev.Message = "drift restored" + describeManagers(by)
		}
		w.Record(ev)
	}
}
