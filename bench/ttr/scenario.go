package main

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/strata-gitops/strata/bench/internal/gitserver"
	"github.com/strata-gitops/strata/internal/cluster"
	"github.com/strata-gitops/strata/internal/labels"
	"github.com/strata-gitops/strata/internal/source"
	"github.com/strata-gitops/strata/reconciler"
)

// scenario is one way the reconciler learns about a push.
type scenario struct {
	key  string // "A" or "B"
	name string
	hook bool
	reps int
}

// rep is one bad change and its revert.
type rep struct {
	bad, revert string
	// badApplied: the bad change's push (+ hook) to every cluster converged.
	badApplied time.Duration
	// pause between the bad change converging and the revert's push.
	pause time.Duration
	// ttr: the revert's push completed → every cluster converged and healthy.
	ttr time.Duration
	// detected: the revert's push completed → the reconciler's first fetch.
	detected   time.Duration
	perCluster map[string]time.Duration
	// timeline of the Deployments after the revert's push.
	timeline timeline
	// load is the 1-minute load average when the revert was pushed.
	load, loadDone string
	// warnings the reconciler logged while the revert was applied.
	warnings []string
}

// apply is the part of the time to recovery after the reconciler noticed.
func (r rep) apply() time.Duration { return r.ttr - r.detected }

type scenarioResult struct {
	scenario
	// startup: the reconciler's first reconcile, from Run to converged.
	startup time.Duration
	reps    []rep
}

func (s *scenarioResult) ttrs() []time.Duration {
	return mapReps(s.reps, func(r rep) time.Duration { return r.ttr })
}
func (s *scenarioResult) applies() []time.Duration { return mapReps(s.reps, rep.apply) }
func (s *scenarioResult) detects() []time.Duration {
	return mapReps(s.reps, func(r rep) time.Duration { return r.detected })
}

func mapReps(rs []rep, f func(rep) time.Duration) []time.Duration {
	out := make([]time.Duration, len(rs))
	for i, r := range rs {
		out[i] = f(r)
	}
	return out
}

// bench is what both scenarios share: clusters, git server, work clone.
type bench struct {
	opts    options
	tmp     string
	kcdir   string
	git     *gitserver.Server
	work    *gitserver.Work
	layout  *Layout
	obs     *observer
	rng     *rand.Rand
	verbose bool
}

// warnLog counts what the reconciler logs at Warn or above, so that a
// retry hidden inside a measured time shows in the report.
type warnLog struct {
	slog.Handler
	mu   *sync.Mutex
	msgs *[]string
}

func (w warnLog) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn || w.Handler.Enabled(ctx, l)
}

func (w warnLog) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		msg := r.Message
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "cluster" || a.Key == "error" {
				msg += " " + a.Key + "=" + a.Value.String()
			}
			return true
		})
		w.mu.Lock()
		*w.msgs = append(*w.msgs, msg)
		w.mu.Unlock()
	}
	if w.Handler.Enabled(ctx, r.Level) {
		return w.Handler.Handle(ctx, r)
	}
	return nil
}

func (w warnLog) WithAttrs(as []slog.Attr) slog.Handler {
	return warnLog{Handler: w.Handler.WithAttrs(as), mu: w.mu, msgs: w.msgs}
}

func (w warnLog) WithGroup(name string) slog.Handler {
	return warnLog{Handler: w.Handler.WithGroup(name), mu: w.mu, msgs: w.msgs}
}

func (w warnLog) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := *w.msgs
	*w.msgs = nil
	return out
}

// run starts a reconciler for s, lets it converge on the current head and
// measures s.reps reverts.
func (b *bench) run(ctx context.Context, s scenario) (*scenarioResult, error) {
	res := &scenarioResult{scenario: s}
	logf := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "%s: "+format+"\n", append([]any{s.key}, args...)...)
	}
	repo, err := source.Open(ctx, b.git.URL, source.OpenOptions{Dir: filepath.Join(b.tmp, "mirror-"+s.key)})
	if err != nil {
		return nil, err
	}
	connect := &cluster.KubeconfigDir{Dir: b.kcdir}
	defer connect.Close()
	var base slog.Handler = slog.DiscardHandler
	if b.verbose {
		base = slog.NewTextHandler(os.Stderr, nil)
	}
	wl := warnLog{Handler: base, mu: &sync.Mutex{}, msgs: new([]string)}
	o := reconciler.DefaultOptions()
	o.Environment, o.Revision = benchEnv, "main"
	o.Interval, o.DriftInterval = b.opts.interval, b.opts.interval
	o.PollInterval, o.WatchInterval = 300*time.Millisecond, 300*time.Millisecond
	o.HealthTimeout = 3 * time.Minute
	o.Log = slog.New(wl).With("scenario", s.key)
	rec := reconciler.New(repo, connect, o)

	// The trigger is only ever fed by the push hook: in scenario B nothing
	// sends on it and the reconciler notices a push at its next poll.
	trigger := make(chan struct{}, 1)
	var hook *gitserver.Hook
	if s.hook {
		secret := []byte(fmt.Sprintf("ttr-%d", b.rng.Uint64()))
		mux := http.NewServeMux()
		mux.Handle(labels.HookPath, &reconciler.HookHandler{Secret: secret, Trigger: trigger, Log: o.Log})
		hs := httptest.NewServer(mux)
		defer hs.Close()
		hook = &gitserver.Hook{URL: hs.URL + labels.HookPath, Secret: secret}
	}
	runCtx, stop := context.WithCancel(ctx)
	loopDone := make(chan struct{})
	start := time.Now()
	go func() { _ = rec.Run(runCtx, trigger); close(loopDone) }()
	defer func() { stop(); <-loopDone }()

	head, err := b.work.Git(ctx, "rev-parse", "HEAD")
	if err != nil {
		return nil, err
	}
	if _, err := b.obs.wait(ctx, head, start, 5*time.Minute); err != nil {
		return nil, fmt.Errorf("scenario %s: the reconciler's first reconcile: %w", s.key, err)
	}
	if err := b.idle(ctx, rec, head); err != nil {
		return nil, err
	}
	res.startup = time.Since(start)
	logf("reconciler up, clusters at %.12s after %s", head, secs(res.startup))
	wl.take()

	// Convergence can take a whole poll interval when nothing triggers it.
	timeout := 3 * time.Minute
	if !s.hook {
		timeout += 2 * b.opts.interval
	}
	res.reps, err = b.reps(ctx, s.key, s.reps, &reconcilerTool{b: b, rec: rec, hook: hook, wl: wl, timeout: timeout})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// reconcilerTool is strata's reconciler, told of a push by its hook (A)
// or finding it at its next poll (B).
type reconcilerTool struct {
	b       *bench
	rec     *reconciler.Reconciler
	hook    *gitserver.Hook // nil: no hook
	wl      warnLog
	timeout time.Duration
}

func (t *reconcilerTool) push(ctx context.Context, commit string) (time.Time, error) {
	t.wl.take() // what it warned of before this push is not this push's
	if err := t.b.work.Push(ctx); err != nil {
		return time.Time{}, err
	}
	done := time.Now()
	if t.hook != nil {
		if err := t.hook.Notify(ctx, commit); err != nil {
			return done, err
		}
	}
	return done, nil
}

func (t *reconcilerTool) converge(ctx context.Context, commit string, pushed time.Time) (map[string]time.Duration, error) {
	return t.b.obs.wait(ctx, commit, pushed, t.timeout)
}

func (t *reconcilerTool) settle(ctx context.Context, commit string) error {
	return t.b.idle(ctx, t.rec, commit)
}

// pause: the revert comes a while after the bad change is out. Without a
// hook, a uniformly random part of the pause makes the push land at a
// random phase of the reconciler's poll timer.
func (t *reconcilerTool) pause() time.Duration {
	p := t.b.opts.settle
	if t.hook == nil {
		p += time.Duration(t.b.rng.Int64N(int64(t.b.opts.interval)))
	}
	return p
}

func (t *reconcilerTool) observed(r *rep, pushed time.Time) {
	if f, ok := t.b.git.FirstFetchAfter(pushed); ok {
		r.detected = f.Sub(pushed)
	}
	r.warnings = t.wl.take()
}

// idle waits until the reconciler has finished its reconcile of commit, so
// that the next push meets a reconciler waiting for a trigger or its timer.
func (b *bench) idle(ctx context.Context, rec *reconciler.Reconciler, commit string) error {
	deadline := time.Now().Add(time.Minute)
	for {
		if last := rec.Last(); last != nil && last.Revision != nil && last.Revision.Commit == commit {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the reconciler did not finish its reconcile of %.12s within a minute of every cluster converging", commit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	n := len(s)
	switch {
	case n == 0:
		return 0
	case n%2 == 1:
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func secs(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }
