package reconciler

import (
	"context"

	"github.com/strata-gitops/strata/internal/inventory"
)

// An agent (--self) sees only its own cluster, so it cannot wait for a
// moving object's new cluster the way push mode does (waitForMoves). With
// Options.Peers, read-only credentials to the other clusters' inventories,
// it keeps an object that moved away until a destination cluster's
// inventory says it was applied there and healthy at this revision or a
// later one: the destination's agent applies before the source's agent
// prunes.
//
// A peer's inventory is written by whoever controls that cluster, so it is
// never a source of trust: it only decides *when* a prune that git already
// asks for happens. A forged "applied" prunes the object as early as an
// agent without peers would; a forged "not applied", an unreadable peer or
// a revision strata cannot place in the branch's history keeps the object
// where it is (the cluster's status lists it as waiting for its new
// cluster). Reading a peer never applies anything and never prunes what
// git still places here.

// peerHealth returns, for each object leaving res's cluster, the
// destinations whose inventory confirms it ("cluster|key"), as
// waitForMoves does in push mode.
func (r *Reconciler) peerHealth(ctx context.Context, res *ClusterResult, plan *rolloutPlan) map[string]bool {
	healthyAt := map[string]bool{}
	if r.opts.Peers == nil {
		return healthyAt
	}
	mine := make(map[string]bool, len(res.entries))
	for _, e := range res.entries {
		mine[e.Key()] = true
	}
	peers := map[string]map[string]bool{} // cluster → keys it confirms (nil: not confirmed)
	for _, e := range res.inv.Entries {
		key := e.Key()
		if mine[key] {
			continue
		}
		for _, dest := range plan.where[key] {
			keys, read := peers[dest]
			if !read {
				keys = r.peerConfirms(ctx, dest, plan)
				peers[dest] = keys
			}
			if keys[key] {
				healthyAt[dest+"|"+key] = true
			}
		}
	}
	return healthyAt
}

// peerConfirms reads a peer's inventory and returns the objects it records
// applied when it was healthy at plan's revision or a later one of the
// branch; nil when it does not (yet), with the reason logged.
func (r *Reconciler) peerConfirms(ctx context.Context, peer string, plan *rolloutPlan) map[string]bool {
	log := r.opts.Log.With("environment", plan.env, "cluster", r.opts.Self, "peer", peer, "commit", short(plan.revision))
	wait := func(why string, args ...any) map[string]bool {
		log.Info("objects moving to the peer stay here until it has them: "+why, args...)
		return nil
	}
	cl, err := r.opts.Peers.Connect(peer)
	if err != nil {
		return wait("no read access to its inventory", "error", err)
	}
	inv, err := inventory.Load(ctx, cl.Client, plan.env)
	if err != nil {
		return wait("its inventory cannot be read", "error", err)
	}
	st := inv.Status
	switch {
	case st.Revision == "":
		return wait("it has applied nothing yet")
	case st.LastError != "" || st.Healthy < st.Objects:
		return wait("it is not healthy", "peerRevision", short(st.Revision), "healthy", st.Healthy, "objects", st.Objects, "lastError", st.LastError)
	case st.Revision != plan.revision:
		if ok, err := r.repo.IsAncestor(plan.revision, st.Revision); err != nil || !ok {
			return wait("it is not at this revision or a later one of the branch", "peerRevision", short(st.Revision))
		}
	}
	keys := make(map[string]bool, len(inv.Entries))
	for _, e := range inv.Entries {
		keys[e.Key()] = true
	}
	return keys
}
