package main

import (
	"context"
	"fmt"
	"os"
	"time"
)

// tool is what writes the clusters in a scenario's reps: strata's
// reconciler (scenarios A and B) or the harness itself (the floor, F).
type tool interface {
	// push pushes commit, with whatever the tool needs done first, and
	// returns when the push (and its hook) completed.
	push(ctx context.Context, commit string) (time.Time, error)
	// converge returns once commit is applied and healthy in every
	// cluster, with the time from pushed per cluster.
	converge(ctx context.Context, commit string, pushed time.Time) (map[string]time.Duration, error)
	// settle returns once the tool is done with commit.
	settle(ctx context.Context, commit string) error
	// pause is the wait between the bad change converging and the
	// revert's push.
	pause() time.Duration
	// observed records in r what the tool saw of the revert pushed at
	// pushed: when it noticed, what it warned of.
	observed(r *rep, pushed time.Time)
}

// reps runs n bad changes and their reverts with t, the same for every
// scenario: commit the bad change, push, converge, pause, revert, push,
// converge, each checked against what the commit says.
func (b *bench) reps(ctx context.Context, key string, n int, t tool) ([]rep, error) {
	logf := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "%s: "+format+"\n", append([]any{key}, args...)...)
	}
	var out []rep
	for i := range n {
		var r rep
		if err := b.layout.Write(b.work.Dir, bad); err != nil {
			return nil, err
		}
		var err error
		if r.bad, err = b.work.Commit(ctx, fmt.Sprintf("LOG_LEVEL=debug everywhere (%s rep %d)", key, i+1)); err != nil {
			return nil, err
		}
		logf("rep %d/%d: pushing the bad change %.12s; waiting for it to converge …", i+1, n, r.bad)
		pushed, err := t.push(ctx, r.bad)
		if err != nil {
			return nil, err
		}
		if _, err := t.converge(ctx, r.bad, pushed); err != nil {
			return nil, fmt.Errorf("scenario %s rep %d: the bad change: %w", key, i+1, err)
		}
		r.badApplied = time.Since(pushed)
		if err := t.settle(ctx, r.bad); err != nil {
			return nil, err
		}
		if err := b.obs.verify(ctx, bad, r.bad); err != nil {
			return nil, fmt.Errorf("scenario %s rep %d: the bad change: %w", key, i+1, err)
		}
		r.pause = t.pause()
		logf("rep %d/%d: bad change converged in %s; pushing the revert in %s", i+1, n, secs(r.badApplied), secs(r.pause))
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(r.pause):
		}

		if _, err := b.work.Git(ctx, "revert", "--no-edit", "HEAD"); err != nil {
			return nil, err
		}
		if r.revert, err = b.work.Git(ctx, "rev-parse", "HEAD"); err != nil {
			return nil, err
		}
		r.load = loadavg1()
		dw := b.obs.watchDeployments(ctx, r.revert)
		pushed, err = t.push(ctx, r.revert)
		if err != nil {
			dw.result()
			return nil, err
		}
		dw.setStart(pushed)
		r.perCluster, err = t.converge(ctx, r.revert, pushed)
		r.loadDone = loadavg1()
		r.timeline = dw.result()
		if err != nil {
			return nil, fmt.Errorf("scenario %s rep %d: the revert: %w", key, i+1, err)
		}
		for _, d := range r.perCluster {
			r.ttr = max(r.ttr, d)
		}
		t.observed(&r, pushed)
		if err := t.settle(ctx, r.revert); err != nil {
			return nil, err
		}
		if err := b.obs.verify(ctx, good, r.revert); err != nil {
			return nil, fmt.Errorf("scenario %s rep %d: after the revert: %w", key, i+1, err)
		}
		out = append(out, r)
		noticed := ""
		if r.detected > 0 {
			noticed = "noticed after " + secs(r.detected) + "; "
		}
		logf("rep %d/%d: time to recovery %s (%sDeployments applied %s–%s, rolled out %s; public %s, private %s, onprem %s)",
			i+1, n, secs(r.ttr), noticed, secs(r.timeline.firstApplied), secs(r.timeline.applied), secs(r.timeline.rolledOut),
			secs(r.perCluster["public"]), secs(r.perCluster["private"]), secs(r.perCluster["onprem"]))
		for _, w := range r.warnings {
			logf("  reconciler warning during the revert: %s", w)
		}
	}
	return out, nil
}
