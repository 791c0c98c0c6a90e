package reconciler

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/fluxcd/cli-utils/pkg/object"
	"github.com/fluxcd/pkg/ssa"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// A small change — the usual commit, and the on-call engineer's revert — is
// healthy within seconds; polling it every PollInterval (500 ms) makes
// strata notice up to a whole interval after the last Pod is ready, and
// that lateness is part of the time to recovery (bench/ttr: up to 0.30 s of
// the 0.46 s between the last rollout and the cluster's status, with a
// 300 ms interval). Small wait sets are therefore polled every fastPoll for
// the first fastWindow, which covers a revert's rollout, then every
// PollInterval. A poll is one LIST per kind and namespace waited for
// (internal/cluster's status reader), so "small" bounds both the objects
// and those pairs: at most fastListsMax LISTs ten times a second, for ten
// seconds. Large sets (a first apply) take longer than the window anyway,
// and polling them fast would only load the apiserver.
const (
	fastPoll     = 100 * time.Millisecond
	fastWindow   = 10 * time.Second
	fastWaitMax  = 100
	fastListsMax = 8
)

// pollsFast reports whether set is small enough to poll every fastPoll.
func pollsFast(set object.ObjMetadataSet) bool {
	if len(set) > fastWaitMax {
		return false
	}
	type pair struct{ gk, ns string }
	lists := map[pair]bool{}
	for _, id := range set {
		lists[pair{id.GroupKind.String(), id.Namespace}] = true
	}
	return len(lists) <= fastListsMax
}

// ssaTimeoutPrefix begins the error fluxcd/pkg/ssa's WaitForSet returns when
// its window ran out with objects not yet healthy ("timeout waiting for: [...]",
// manager_wait.go). waitHealthy's own timeout error begins with it too, so
// that every timeout reads, and is recognised, alike.
const ssaTimeoutPrefix = "timeout waiting for"

// waitHealthy waits until objs are Current by kstatus, failing fast on a
// Failed object, for at most timeout.
func (r *Reconciler) waitHealthy(ctx context.Context, m *ssa.ResourceManager, objs []*unstructured.Unstructured, timeout time.Duration) error {
	set := object.UnstructuredSetToObjMetadataSet(objs)
	var err error
	if pollsFast(set) && r.opts.PollInterval > fastPoll {
		// A health timeout shorter than the window is polled fast whole.
		window := min(fastWindow, timeout)
		err = m.WaitForSetWithContext(ctx, set, ssa.WaitOptions{Interval: fastPoll, Timeout: window, FailFast: true})
		if err == nil || ctx.Err() != nil || !isWaitTimeout(err) {
			return err
		}
		timeout -= window
	}
	if timeout > 0 {
		err = m.WaitForSetWithContext(ctx, set, ssa.WaitOptions{Interval: r.opts.PollInterval, Timeout: timeout, FailFast: true})
	}
	if err != nil && ctx.Err() == nil && isWaitTimeout(err) && !strings.HasPrefix(err.Error(), ssaTimeoutPrefix) {
		// When its window closes during a poll, ssa returns the poll's
		// error (the client's rate limiter refusing to wait past the
		// deadline), which names nothing: say what was waited for.
		err = fmt.Errorf("%s %s to become healthy: %w", ssaTimeoutPrefix, describeSet(set), err)
	}
	return err
}

// describeSet names up to five objects of set.
func describeSet(set object.ObjMetadataSet) string {
	var names []string
	for i, id := range set {
		if i == 5 {
			names = append(names, fmt.Sprintf("and %d more", len(set)-5))
			break
		}
		names = append(names, id.GroupKind.Kind+"/"+id.Namespace+"/"+id.Name)
	}
	return strings.Join(names, ", ")
}

// isWaitTimeout tells ssa's "not yet" (its window ran out with objects still
// progressing, or ran out during a poll, which the client's rate limiter
// reports) from a failure. ssa says it only in its messages;
// TestWaitHealthyKeepsWaitingAfterTheFastWindow fails if they change.
func isWaitTimeout(err error) bool {
	return strings.HasPrefix(err.Error(), ssaTimeoutPrefix) || errors.Is(err, context.DeadlineExceeded) ||
		strings.Contains(err.Error(), "would exceed context deadline")
}
