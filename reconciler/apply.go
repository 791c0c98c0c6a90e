package reconciler

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	"github.com/fluxcd/cli-utils/pkg/object"
	"github.com/fluxcd/pkg/ssa"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/strata-gitops/strata/internal/approval"
	"github.com/strata-gitops/strata/internal/audit"
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
}

// apply runs phase one for a cluster: compare with the inventory and the
// live objects, apply what changed or drifted, wait for health.
func (r *Reconciler) apply(ctx context.Context, cl *Cluster, plan *rolloutPlan, maxPct int, timeout time.Duration) *ClusterResult {
	res := &ClusterResult{Name: cl.Name, Tier: plan.tiers[cl.Name], Reachable: true, Revision: plan.revision, current: map[string]bool{}}
	objs := plan.objects[cl.Name]
	res.Objects = len(objs)
	inv, err := inventory.Load(ctx, cl.Client, plan.env)
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

	live, err := listLive(ctx, cl.Client, plan.env, gvksOf(objs))
	if err != nil {
		res.Err = &UnreachableError{Cluster: cl.Name, Err: err}
		res.Reachable = false
		return res
	}
	prev := inv.Keys()
	var toApply []*unstructured.Unstructured
	suspects := map[string][]string{} // objects that may have drifted → their other managers
	res.entries = make([]inventory.Ref, 0, len(objs))
	for _, do := range objs {
		key := do.ref.Key()
		p, had := prev[key]
		var pp *inventory.Ref
		if had {
			pp = &p
		}
		u, rev := do.stamped(pp, plan.revision)
		e := do.ref
		e.Hash, e.Revision = do.hash, rev
		lo := live[key]
		switch {
		case !had || p.Hash != do.hash:
			toApply = append(toApply, u)
			if !had {
				r.auditor(cl).Record(audit.Event{Kind: audit.Placement, Commit: plan.revision, Cluster: cl.Name, Tier: res.Tier,
					Object: do.ref.String(), Sensitivity: do.sensitivity, Rule: do.reason, Actor: "strata"})
			}
		case lo == nil:
			suspects[key] = []string{"deleted"}
			toApply = append(toApply, u)
		case p.Fingerprint != lo.fingerprint:
			suspects[key] = lo.managers
			toApply = append(toApply, u)
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
		opts := ssa.DefaultApplyOptions()
		opts.WaitInterval = r.opts.PollInterval
		cs, err := cl.Manager.ApplyAllStaged(ctx, toApply, opts)
		if cs != nil {
			r.countChanges(res, cs, suspects)
			r.auditChanges(cl, res, plan, objs, cs, suspects)
		}
		if err != nil {
			res.Err = &ApplyError{Cluster: cl.Name, Err: err}
			return res
		}
		// Record the new entries (with the stale ones, not yet pruned)
		// before waiting, so a crash mid-wait can still prune them later.
		if err := r.saveInventory(ctx, cl, res, append(res.entries[:len(res.entries):len(res.entries)], stale...)); err != nil {
			res.Err = &UnreachableError{Cluster: cl.Name, Err: err}
			return res
		}
		start := time.Now()
		var werr error
		if wait := waitSet(toApply); len(wait) > 0 {
			werr = cl.Manager.WaitForSetWithContext(r.healthContext(ctx), object.UnstructuredSetToObjMetadataSet(wait), ssa.WaitOptions{
				Interval: r.opts.PollInterval, Timeout: timeout, FailFast: true,
			})
		}
		res.HealthWait = time.Since(start)
		r.opts.Metrics.HealthWaitDuration.WithLabelValues(plan.env, cl.Name).Observe(res.HealthWait.Seconds())
		if werr != nil && ctx.Err() == nil && r.healthContext(ctx).Err() != nil {
			werr = context.Canceled
		}
		after, lerr := listLive(ctx, cl.Client, plan.env, gvksOfUnstructured(toApply))
		if lerr != nil && werr == nil {
			werr = lerr
		}
		for i := range res.entries {
			e := &res.entries[i]
			if e.Fingerprint != "" {
				continue
			}
			if lo := after[e.Key()]; lo != nil {
				e.Fingerprint = lo.fingerprint
				countStatus(res, lo.status)
				if lo.status == status.CurrentStatus {
					res.current[e.Key()] = true
				}
			} else {
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
		key := e.ObjMetadata.GroupKind.Group + "/" + e.ObjMetadata.GroupKind.Kind + "/" + e.ObjMetadata.Namespace + "/" + e.ObjMetadata.Name
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
			for _, m := range by {
				if !slices.Contains(res.DriftedBy, m) {
					res.DriftedBy = append(res.DriftedBy, m)
				}
			}
		}
	}
}

func gvksOf(objs []*desiredObject) []schema.GroupVersionKind {
	seen := map[schema.GroupVersionKind]bool{}
	var out []schema.GroupVersionKind
	for _, do := range objs {
		gvk := do.obj.GroupVersionKind()
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
func (r *Reconciler) auditChanges(cl *Cluster, res *ClusterResult, plan *rolloutPlan, objs []*desiredObject, cs *ssa.ChangeSet, suspects map[string][]string) {
	byKey := make(map[string]*desiredObject, len(objs))
	for _, do := range objs {
		byKey[do.ref.Key()] = do
	}
	w := r.auditor(cl)
	for _, e := range cs.Entries {
		if e.Action != ssa.CreatedAction && e.Action != ssa.ConfiguredAction {
			continue
		}
		key := e.ObjMetadata.GroupKind.Group + "/" + e.ObjMetadata.GroupKind.Kind + "/" + e.ObjMetadata.Namespace + "/" + e.ObjMetadata.Name
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
