package reconciler

import (
	"fmt"

	"github.com/strata-gitops/strata/internal/inventory"
)

// UnreachableError is a cluster that did not answer; the others go on, and
// strata retries it with backoff.
type UnreachableError struct {
	Cluster string
	Err     error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("cluster %s is unreachable (%v): strata retries with backoff and catches up when it answers; check its apiserver and the credentials in the kubeconfig", e.Cluster, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// MassPruneError is a change that would delete too much of a cluster at once.
type MassPruneError struct {
	Cluster  string
	Stale    []inventory.Ref
	Total    int
	MaxPct   int
	Revision string
}

func (e *MassPruneError) Error() string {
	return fmt.Sprintf("cluster %s: revision %s would delete %d of %d objects (%d%%, more than rollout.maxPrunePercent=%d%%): nothing was applied or pruned there; if this is intended, run strata reconcile --allow-mass-prune once, otherwise fix the commit (first: %s)",
		e.Cluster, short(e.Revision), len(e.Stale), e.Total, len(e.Stale)*100/max(e.Total, 1), e.MaxPct, inventory.Describe(e.Stale, 5))
}

// ApplyError is a failed server-side apply in one cluster.
type ApplyError struct {
	Cluster string
	Err     error
}

func (e *ApplyError) Error() string {
	return fmt.Sprintf("cluster %s: apply failed, nothing pruned there: %v", e.Cluster, e.Err)
}

func (e *ApplyError) Unwrap() error { return e.Err }

// HealthError is a revision whose objects did not become healthy in time.
type HealthError struct {
	Cluster string
	Err     error
}

func (e *HealthError) Error() string {
	return fmt.Sprintf("cluster %s: health check failed: %v: objects that moved here stay in their old cluster until they are healthy; fix or revert the commit", e.Cluster, e.Err)
}

func (e *HealthError) Unwrap() error { return e.Err }

// PruneError is a failed deletion of stale objects.
type PruneError struct {
	Cluster string
	Err     error
}

func (e *PruneError) Error() string {
	return fmt.Sprintf("cluster %s: prune failed (the objects stay in the inventory and are retried): %v", e.Cluster, e.Err)
}

func (e *PruneError) Unwrap() error { return e.Err }

func short(rev string) string {
	if len(rev) > 12 {
		return rev[:12]
	}
	return rev
}
