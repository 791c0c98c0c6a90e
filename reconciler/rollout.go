package reconciler

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/fluxcd/pkg/ssa"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/strata-gitops/strata/internal/audit"
	"github.com/strata-gitops/strata/internal/cluster"
	"github.com/strata-gitops/strata/internal/config"
	"github.com/strata-gitops/strata/internal/desired"
	"github.com/strata-gitops/strata/internal/inventory"
	"github.com/strata-gitops/strata/internal/labels"
	"github.com/strata-gitops/strata/internal/source"
)

// rollout reconciles every target cluster in two phases. Phase one applies
// and waits in all clusters concurrently; phase two prunes. An object that
// moved is pruned from its old cluster only if it is healthy in a new one
// (make-before-break); an unreachable cluster is skipped without holding
// up the others.
func (r *Reconciler) rollout(ctx context.Context, cfg *config.Config, st *desired.State, rev *source.Revision, plan *rolloutPlan, healthy map[string]bool) []*ClusterResult {
	maxPct := cfg.Rollout.MaxPrunePercentOrDefault()
	timeout := r.healthTimeout()
	if timeout <= 0 {
		timeout = cfg.Rollout.HealthTimeoutOrDefault()
	}
	results := make([]*ClusterResult, len(plan.order))
	index := make(map[string]int, len(plan.order))
	// applied[i] is closed when cluster i has applied and waited for health:
	// a cluster that must prune an object moving away waits for the
	// object's new cluster only, never for the others.
	applied := make([]chan struct{}, len(plan.order))
	// index and applied are complete before any cluster's goroutine starts:
	// waitForMoves reads them for every cluster.
	type target struct {
		i  int
		cl *cluster.Cluster
	}
	var targets []target
	for i, name := range plan.order {
		index[name] = i
		res := &ClusterResult{Name: name, Tier: plan.tiers[name], Revision: plan.revision}
		results[i] = res
		if r.opts.Self != "" && name != r.opts.Self {
			res.Skipped = true
			continue
		}
		cl, err := r.connect.Connect(name)
		if err == nil && !healthy[name] {
			err = errors.New("apiserver /readyz did not answer")
		}
		if err != nil {
			res.Err = &UnreachableError{Cluster: name, Err: err}
			continue
		}
		applied[i] = make(chan struct{})
		targets = append(targets, target{i, cl})
	}
	var wg sync.WaitGroup
	for _, t := range targets {
		wg.Add(1)
		go func(i int, cl *cluster.Cluster) {
			defer wg.Done()
			start := time.Now()
			res := r.holdIfSuspended(ctx, cl, plan)
			if res == nil {
				res = r.apply(ctx, cl, plan, maxPct, timeout)
			}
			res.tree, res.gate, res.windows = rev.Tree, r.gateOf(rev.Commit), st.Windows
			results[i] = res
			close(applied[i])
			var mp *MassPruneError
			if res.inv != nil && res.Suspended == nil && !errors.As(res.Err, &mp) && !isApplyOrUnreachable(res.Err) {
				var healthyAt map[string]bool
				if r.opts.Self != "" {
					healthyAt = r.peerHealth(ctx, res, plan) // an agent asks the new clusters' inventories
				} else {
					healthyAt = r.waitForMoves(res, plan, index, applied, results)
				}
				r.prune(ctx, cl, res, plan, healthyAt)
			}
			res.Duration = time.Since(start)
			r.auditGate(cl, res, rev)
			r.record(ctx, cl, res, plan, rev)
		}(t.i, t.cl)
	}
	for i := range plan.order {
		if applied[i] == nil {
			r.record(ctx, nil, results[i], plan, rev)
		}
	}
	wg.Wait()
	return results
}

// waitForMoves waits until the clusters that objects leaving res's cluster
// move to have applied them, and returns where each of those objects is
// healthy now (for make-before-break).
func (r *Reconciler) waitForMoves(res *ClusterResult, plan *rolloutPlan, index map[string]int, applied []chan struct{}, results []*ClusterResult) map[string]bool {
	mine := make(map[string]bool, len(res.entries))
	for _, e := range res.entries {
		mine[e.Key()] = true
	}
	healthyAt := map[string]bool{}
	waited := map[int]bool{}
	for _, e := range res.inv.Entries {
		if mine[e.Key()] {
			continue
		}
		for _, dest := range plan.where[e.Key()] {
			j, ok := index[dest]
			if !ok || applied[j] == nil || waited[j] {
				continue
			}
			waited[j] = true
			<-applied[j]
			for key := range results[j].current {
				healthyAt[dest+"|"+key] = true
			}
		}
	}
	return healthyAt
}

func isApplyOrUnreachable(err error) bool {
	var ae *ApplyError
	var ue *UnreachableError
	return errors.As(err, &ae) || errors.As(err, &ue)
}

// prune deletes what left this cluster and writes the final inventory.
func (r *Reconciler) prune(ctx context.Context, cl *cluster.Cluster, res *ClusterResult, plan *rolloutPlan, healthyAt map[string]bool) {
	desiredKeys := make(map[string]bool, len(res.entries))
	for _, e := range res.entries {
		desiredKeys[e.Key()] = true
	}
	var del []*unstructured.Unstructured
	var delRefs, kept []inventory.Ref
	for _, e := range res.inv.Entries {
		if desiredKeys[e.Key()] {
			continue
		}
		dests := plan.where[e.Key()]
		if len(dests) > 0 && (r.opts.Self == "" || r.opts.Peers != nil) && !healthySomewhere(dests, e.Key(), healthyAt) {
			kept = append(kept, e)
			continue
		}
		del = append(del, e.Object())
		delRefs = append(delRefs, e)
	}
	res.Waiting = kept
	entries := append(res.entries[:len(res.entries):len(res.entries)], kept...)
	if len(del) > 0 {
		cs, err := cl.Manager.DeleteAll(ctx, del, ssa.DeleteOptions{
			PropagationPolicy: ssa.DefaultDeleteOptions().PropagationPolicy,
			// Never delete an object strata did not apply, even if the
			// inventory names it, nor one frozen by strata.dev/reconcile:
			// disabled.
			Inclusions: map[string]string{labels.ManagedBy: labels.ManagedByValue},
			Exclusions: disabledSelector,
		})
		var frozen map[string]bool
		if err == nil {
			frozen, err = frozenOf(ctx, cl.Client, delRefs, skippedKeys(cs))
		}
		if err != nil {
			entries = append(entries, delRefs...)
			if res.Err == nil {
				res.Err = &PruneError{Cluster: cl.Name, Err: err}
			}
		} else {
			w := r.auditor(cl)
			for _, ref := range delRefs {
				if frozen[ref.Key()] {
					// Kept, and pruned once it is enabled again.
					entries = append(entries, ref)
					res.Held = append(res.Held, ref)
					continue
				}
				ev := audit.Event{Kind: audit.Prune, Commit: plan.revision, Cluster: cl.Name, Tier: res.Tier, Object: ref.String(), Actor: "strata"}
				if to := plan.where[ref.Key()]; len(to) > 0 {
					res.MovedOut = append(res.MovedOut, ref)
					ev.Kind, ev.To = audit.Move, strings.Join(to, ",")
				} else {
					res.Pruned = append(res.Pruned, ref)
				}
				w.Record(ev)
			}
		}
	}
	if err := r.saveInventory(ctx, cl, res, entries); err != nil {
		if res.Err == nil {
			res.Err = &UnreachableError{Cluster: cl.Name, Err: err}
		}
		return
	}
	res.saved = true
}

func healthySomewhere(dests []string, key string, healthyAt map[string]bool) bool {
	for _, d := range dests {
		if healthyAt[d+"|"+key] {
			return true
		}
	}
	return false
}

// saveInventory writes entries and the current status to the cluster.
func (r *Reconciler) saveInventory(ctx context.Context, cl *cluster.Cluster, res *ClusterResult, entries []inventory.Ref) error {
	inv := res.inv
	inv.Entries = entries
	inv.Status = r.statusOf(res, res.prev)
	_, err := inventory.Save(ctx, cl.Client, inv)
	return err
}

// auditGate records who approved the revision applied to a cluster (or that
// it returned to a tree approved before: a rollback).
func (r *Reconciler) auditGate(cl *cluster.Cluster, res *ClusterResult, rev *source.Revision) {
	d := res.gate
	if d == nil || !d.Allowed || !res.Reachable || res.inv == nil || res.Suspended != nil {
		return
	}
	w := r.auditor(cl)
	base := audit.Event{Commit: rev.Commit, Cluster: cl.Name, Tier: res.Tier, Sensitivity: string(d.Sensitivity), Message: d.Message}
	if d.Restores != "" {
		ev := base
		ev.Kind, ev.Actor = audit.Rollback, rev.Author
		w.Record(ev)
		return
	}
	for _, who := range d.Have {
		ev := base
		ev.Kind, ev.Actor = audit.Approval, who
		w.Record(ev)
	}
}
