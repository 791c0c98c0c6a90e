package reconciler

import (
	"context"
	"time"
)

// Run reconciles until ctx ends: at every tick (the shorter of Interval and
// DriftInterval) and whenever trigger fires (the push hook). A tick with
// nothing new is cheap: one fetch, a cached render, and one LIST per kind
// per cluster to find drift. Failing clusters are retried with backoff.
func (r *Reconciler) Run(ctx context.Context, trigger <-chan struct{}) error {
	tick := min(r.opts.Interval, r.opts.DriftInterval)
	backoff := newBackoff(2*time.Second, tick)
	for {
		res := r.ReconcileOnce(ctx)
		delay := tick
		if res.Failed() && (res.Err == nil || IsTransient(res.Err)) {
			delay = backoff.next()
		} else {
			backoff.reset()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-trigger:
		case <-time.After(delay):
		}
	}
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
