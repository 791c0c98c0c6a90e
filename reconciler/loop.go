package reconciler

import (
	"context"
	"time"
)

// Run reconciles until ctx ends: at every tick (the shorter of Interval and
// DriftInterval) and whenever trigger fires (the push hook). A tick with
// nothing new is cheap: one fetch, a cached render, and one LIST per kind
// per cluster to find drift. Failing clusters are retried with backoff.
// While a revision is rolling out, a newer one (seen on a trigger or by
// polling every WatchInterval) cancels its health waits: a stuck rollout
// never blocks its own fix.
func (r *Reconciler) Run(ctx context.Context, trigger <-chan struct{}) error {
	tick := min(r.opts.Interval, r.opts.DriftInterval)
	backoff := newBackoff(2*time.Second, tick)
	defer func() {
		fctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = r.Close(fctx)
	}()
	for {
		res, pending := r.runOnce(ctx, trigger)
		if ctx.Err() != nil {
			return nil
		}
		delay := tick
		switch {
		case pending || res.AutoRevert != "":
			delay = 0
		case res.Failed() && (res.Err == nil || IsTransient(res.Err)):
			delay = backoff.next()
		default:
			backoff.reset()
		}
		if delay == 0 {
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-trigger:
		case <-time.After(delay):
		}
	}
}

// runOnce reconciles once while watching for a newer revision; pending
// reports that one arrived (reconcile again at once).
func (r *Reconciler) runOnce(ctx context.Context, trigger <-chan struct{}) (*Result, bool) {
	waitCtx, cancelWait := context.WithCancel(ctx)
	defer cancelWait()
	r.waitMu.Lock()
	r.waitCtx = waitCtx
	r.waitMu.Unlock()
	done := make(chan *Result, 1)
	go func() { done <- r.ReconcileOnce(ctx) }()
	watch := time.NewTicker(r.opts.WatchInterval)
	defer watch.Stop()
	pending := false
	for {
		select {
		case res := <-done:
			return res, pending
		case <-trigger:
			pending = true
			if r.newerRevision(ctx) {
				cancelWait()
			}
		case <-watch.C:
			if r.newerRevision(ctx) {
				pending = true
				cancelWait()
			}
		}
	}
}

// newerRevision fetches and reports whether the branch moved past the
// revision being applied.
func (r *Reconciler) newerRevision(ctx context.Context) bool {
	if err := r.repo.Fetch(ctx); err != nil {
		return false
	}
	rev, err := r.repo.ResolveBranch(r.opts.Revision)
	if err != nil {
		return false
	}
	r.waitMu.Lock()
	defer r.waitMu.Unlock()
	return r.applying != "" && rev.Commit != r.applying
}

type backoff struct {
	min, max, cur time.Duration
}

func newBackoff(lo, hi time.Duration) *backoff {
	if hi < lo {
		hi = lo
	}
	return &backoff{min: lo, max: hi}
}

func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	} else {
		b.cur = min(b.cur*2, b.max)
	}
	return b.cur
}

func (b *backoff) reset() { b.cur = 0 }
