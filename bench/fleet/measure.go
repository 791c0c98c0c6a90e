package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/strata-gitops/strata/bench/internal/cpumeter"
	"github.com/strata-gitops/strata/bench/internal/gitserver"
	"github.com/strata-gitops/strata/bench/internal/results"
	"github.com/strata-gitops/strata/internal/cluster"
	"github.com/strata-gitops/strata/internal/inventory"
	"github.com/strata-gitops/strata/internal/localcluster"
)

// repResult is one revert.
type repResult struct {
	// TTR: the revert's push completed → the last cluster's inventory shows
	// the revert with every object healthy.
	TTR        time.Duration
	PerCluster map[string]time.Duration
	// Detected: the push completed → the first fetch of any reconciler.
	Detected time.Duration
	// CPU the reconcilers used from the push to the last cluster healthy.
	CPU time.Duration
	// Fetches the git server served from the push to the last cluster
	// healthy (each reconciler fetches on the hook, then every 2 s while
	// it applies, to notice a newer revision).
	Fetches int
	Load    string
	// OtherCores is the CPU other work on the machine used meanwhile.
	OtherCores float64
}

// runResult is one fleet size in one mode.
type runResult struct {
	Mode  Mode
	N     int
	Procs int
	// Startup: processes started → every cluster converged at the head.
	Startup time.Duration
	Reps    []repResult
	// IdleCPU was used over IdleWall with nothing to do but polls and
	// drift checks, after the last rep.
	IdleCPU, IdleWall time.Duration
	// IdleFetches were served over IdleWall (polls).
	IdleFetches int
	// Final is the reconcilers' usage when they were stopped.
	Final Usage
}

func (r *runResult) ttrs() []time.Duration {
	out := make([]time.Duration, len(r.Reps))
	for i, x := range r.Reps {
		out[i] = x.TTR
	}
	return out
}

func (r *runResult) revertCPU() []time.Duration {
	out := make([]time.Duration, len(r.Reps))
	for i, x := range r.Reps {
		out[i] = x.CPU
	}
	return out
}

// fleetBench is what every run shares.
type fleetBench struct {
	opts  options
	lc    *localcluster.Manager
	git   *gitserver.Server
	work  *gitserver.Work
	bin   string
	tmp   string
	meter cpumeter.Meter // tells other work from the run's, as the load average cannot
	runNo int
}

func (b *fleetBench) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().UTC().Format("15:04:05")}, args...)...)
}

// run measures f in mode: start the reconcilers, let them converge at the
// head, then time opts.reps reverts and an idle stretch.
func (b *fleetBench) run(ctx context.Context, f *Fleet, mode Mode) (*runResult, error) {
	b.runNo++
	dir, err := os.MkdirTemp(b.tmp, fmt.Sprintf("run%02d-%s-%d-", b.runNo, mode, len(f.Clusters)))
	if err != nil {
		return nil, err
	}
	res := &runResult{Mode: mode, N: len(f.Clusters)}
	obs := &observer{connect: &cluster.KubeconfigDir{Dir: b.lc.KubeconfigDir()}, fleet: f, every: b.opts.every}
	defer obs.connect.Close()

	start := time.Now()
	rs, err := startReconcilers(mode, f.Names(), b.lc, procSettings{bin: b.bin, repoURL: b.git.URL, dir: dir, interval: b.opts.interval, drift: b.opts.drift})
	if err != nil {
		return nil, err
	}
	defer rs.stop()
	res.Procs = len(rs.procs)
	head, err := b.work.Git(ctx, "rev-parse", "HEAD")
	if err != nil {
		return nil, err
	}
	if err := rs.notify(ctx, head); err != nil {
		return nil, err
	}
	if _, err := obs.wait(ctx, rs, head, start, b.opts.timeout); err != nil {
		return nil, fmt.Errorf("%s, %d clusters: the first reconcile: %w", mode, res.N, err)
	}
	res.Startup = time.Since(start)
	b.logf("%s × %d: %d process(es) up, every cluster at %.12s after %s", mode, res.N, res.Procs, head, secs(res.Startup))

	pushed := func(commit string) (time.Time, error) {
		if err := b.work.Push(ctx); err != nil {
			return time.Time{}, err
		}
		t := time.Now()
		return t, rs.notify(ctx, commit)
	}
	for i := range b.opts.reps {
		if err := sleep(ctx, b.opts.settle); err != nil {
			return nil, err
		}
		if err := f.Write(b.work.Dir, bad); err != nil {
			return nil, err
		}
		badCommit, err := b.work.Commit(ctx, fmt.Sprintf("LOG_LEVEL=debug everywhere (%s × %d, rep %d)", mode, res.N, i+1))
		if err != nil {
			return nil, err
		}
		t, err := pushed(badCommit)
		if err != nil {
			return nil, err
		}
		if _, err := obs.wait(ctx, rs, badCommit, t, b.opts.timeout); err != nil {
			return nil, fmt.Errorf("%s × %d rep %d: the bad change: %w", mode, res.N, i+1, err)
		}
		badTook := time.Since(t)
		if err := sleep(ctx, b.opts.settle); err != nil {
			return nil, err
		}
		if _, err := b.work.Git(ctx, "revert", "--no-edit", "HEAD"); err != nil {
			return nil, err
		}
		revert, err := b.work.Git(ctx, "rev-parse", "HEAD")
		if err != nil {
			return nil, err
		}
		r := repResult{Load: results.LoadAvg()}
		before, machine := rs.usage(), b.meter.Read()
		t, err = pushed(revert)
		if err != nil {
			return nil, err
		}
		if r.PerCluster, err = obs.wait(ctx, rs, revert, t, b.opts.timeout); err != nil {
			return nil, fmt.Errorf("%s × %d rep %d: the revert: %w", mode, res.N, i+1, err)
		}
		r.CPU = rs.usage().Sub(before).CPU
		r.OtherCores = cpumeter.OtherCores(machine, b.meter.Read(), 0)
		for _, d := range r.PerCluster {
			r.TTR = max(r.TTR, d)
		}
		if ft, ok := b.git.FirstFetchAfter(t); ok {
			r.Detected = ft.Sub(t)
		}
		r.Fetches = b.git.FetchesBetween(t, time.Now())
		res.Reps = append(res.Reps, r)
		b.logf("%s × %d rep %d/%d: bad change healthy in %s; revert healthy everywhere in %s (first fetch %s, %d fetches, reconciler CPU %s, load %s, other work %.2f cores)",
			mode, res.N, i+1, b.opts.reps, secs(badTook), secs(r.TTR), secs(r.Detected), r.Fetches, secs(r.CPU), r.Load, r.OtherCores)
	}
	if b.opts.idle > 0 {
		before, t := rs.usage(), time.Now()
		if err := sleep(ctx, b.opts.idle); err != nil {
			return nil, err
		}
		res.IdleCPU, res.IdleWall = rs.usage().Sub(before).CPU, time.Since(t)
		res.IdleFetches = b.git.FetchesBetween(t, time.Now())
	}
	if err := rs.exited(); err != nil {
		return nil, err
	}
	res.Final = rs.usage()
	b.logf("%s × %d: idle CPU %s and %d git fetches over %s; peak RSS %d MiB in all, %d MiB the largest process",
		mode, res.N, secs(res.IdleCPU), res.IdleFetches, secs(res.IdleWall), res.Final.PeakSumKiB>>10, res.Final.PeakMaxKiB>>10)
	return res, nil
}

// observer reads every cluster's inventory with connections of its own.
type observer struct {
	connect *cluster.KubeconfigDir
	fleet   *Fleet
	every   time.Duration
}

// status is a cluster's inventory status in one line (for errors).
func (o *observer) status(ctx context.Context, name string) string {
	cl, err := o.connect.Connect(name)
	if err != nil {
		return err.Error()
	}
	inv, err := inventory.Load(ctx, cl.Client, fleetEnv)
	if err != nil {
		return err.Error()
	}
	s := inv.Status
	line := fmt.Sprintf("revision %.12s, %d objects, %d healthy, %d progressing, %d failed", s.Revision, s.Objects, s.Healthy, s.Progressing, s.Failed)
	if s.LastError != "" {
		line += ", last error: " + s.LastError
	}
	return line
}

func (o *observer) converged(ctx context.Context, name, commit string) bool {
	cl, err := o.connect.Connect(name)
	if err != nil {
		return false
	}
	inv, err := inventory.Load(ctx, cl.Client, fleetEnv)
	if err != nil {
		return false
	}
	s := inv.Status
	return s.Revision == commit && s.LastError == "" && s.Objects == o.fleet.PerCluster && s.Healthy == s.Objects
}

// wait polls every cluster's inventory until each shows commit with all
// its objects healthy and returns when each got there, from start. It
// fails at once when a reconciler process exits.
func (o *observer) wait(parent context.Context, rs *reconcilers, commit string, start time.Time, timeout time.Duration) (map[string]time.Duration, error) {
	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()
	var mu sync.Mutex
	at := map[string]time.Duration{}
	var exitErr error
	var wg sync.WaitGroup
	wg.Go(func() { // a dead reconciler ends the wait
		for ctx.Err() == nil {
			mu.Lock()
			done := len(at) == len(o.fleet.Clusters)
			mu.Unlock()
			if done {
				return
			}
			if err := rs.exited(); err != nil {
				mu.Lock()
				exitErr = err
				mu.Unlock()
				cancel()
				return
			}
			_ = sleep(ctx, 500*time.Millisecond)
		}
	})
	for _, name := range o.fleet.Names() {
		wg.Go(func() {
			for {
				if o.converged(ctx, name, commit) {
					mu.Lock()
					at[name] = time.Since(start)
					mu.Unlock()
					return
				}
				if sleep(ctx, o.every) != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	if exitErr != nil {
		return at, exitErr
	}
	if len(at) == len(o.fleet.Clusters) {
		return at, nil
	}
	if err := parent.Err(); err != nil {
		return at, err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "revision %.12s did not converge within %s:", commit, timeout)
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	for _, name := range o.fleet.Names() {
		if _, ok := at[name]; !ok {
			fmt.Fprintf(&b, "\n  %s: %s", name, o.status(sctx, name))
		}
	}
	for _, p := range rs.procs {
		fmt.Fprintf(&b, "\n  %s log tail:\n%s", p.Name, p.Tail(8))
	}
	return at, fmt.Errorf("%s", b.String())
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
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
