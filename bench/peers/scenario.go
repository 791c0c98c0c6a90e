package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/strata-gitops/strata/bench/internal/gitserver"
)

// A scenario is a config repository and the steps timed on it, the same
// for every tool.
type scenario struct {
	key, title string
	env        string
	clusters   []string
	seed       func(*configRepo) error
	// source copies files from the strata checkout (the demo) before seed.
	source []string
	steps  []step
}

// A step makes one commit (or none, for a no-op) and is timed from the
// push's completion to every cluster applied and healthy.
type step struct {
	name string
	// change edits the work tree; nil with revert or noop.
	change func(*configRepo) error
	revert bool // git revert --no-edit HEAD
	noop   bool // no commit: a reconcile request for HEAD
	// goal is the largest strata/Flux time ratio the issue accepts; 0: none.
	goal float64
}

// sideResult is one tool's reps of a scenario.
type sideResult struct {
	times map[string][]time.Duration // by step name, one per rep
	// reconciles are the reconciles the tool finished per step (summed over
	// the clusters), counted from the step's trigger to the next one's.
	reconciles map[string][]int
	peakKiB    int64           // largest over the reps
	cpu        []time.Duration // per rep
}

// bench holds what every scenario shares.
type bench struct {
	strataBin, root string
	git             *gitserver.Server
	kcdir, tmp      string
	reps            int
	timeout         time.Duration
	fresh           func(context.Context) error
	tools           []string
	newTool         func(name string) tool
}

// runScenario runs sc's reps; within each rep every tool runs once, the
// order rotating from rep to rep (and from scenario to scenario), so that
// drift of the machine hits every tool alike.
func (b *bench) runScenario(ctx context.Context, sc *scenario, offset int) (map[string]*sideResult, error) {
	sides := map[string]*sideResult{}
	for _, t := range b.tools {
		sides[t] = &sideResult{times: map[string][]time.Duration{}, reconciles: map[string][]int{}}
	}
	for rep := 1; rep <= b.reps; rep++ {
		for i := range b.tools {
			name := b.tools[(i+rep-1+offset)%len(b.tools)]
			if err := b.runRep(ctx, sc, name, rep, sides[name]); err != nil {
				return nil, err
			}
		}
	}
	return sides, nil
}

// runRep runs scenario sc's steps once for one tool on fresh clusters with
// a repository of its own (same content, its own history).
func (b *bench) runRep(ctx context.Context, sc *scenario, toolName string, rep int, res *sideResult) error {
	fmt.Fprintf(os.Stderr, "scenario %s (%s), rep %d, %s: recreating the clusters …\n", sc.key, sc.title, rep, toolName)
	if err := b.fresh(ctx); err != nil {
		return err
	}
	slug := fmt.Sprintf("%s-%s-%d", sc.key, strings.ReplaceAll(strings.ToLower(toolName), " ", "-"), rep)
	dir := filepath.Join(b.tmp, slug)
	work := &gitserver.Work{Dir: filepath.Join(dir, "work")}
	repo := &configRepo{env: sc.env, clusters: sc.clusters, strata: b.strataBin, dir: work.Dir}
	url := strings.TrimSuffix(b.git.URL, "config.git") + slug + ".git"
	if err := os.MkdirAll(work.Dir, 0o755); err != nil {
		return err
	}
	if _, err := work.Git(ctx, "init", "-q"); err != nil {
		return err
	}
	if err := repo.copyTree(b.root, sc.source...); err != nil {
		return err
	}
	if err := sc.seed(repo); err != nil {
		return err
	}
	head, want, err := commitSplit(ctx, repo, work, "seed")
	if err != nil {
		return err
	}
	if _, err := work.Git(ctx, "remote", "add", "origin", url); err != nil {
		return err
	}
	if err := work.Push(ctx); err != nil {
		return err
	}

	t := b.newTool(toolName)
	defer t.stop()
	setup := &setup{env: sc.env, clusters: sc.clusters, repoURL: url, kcdir: b.kcdir, work: dir, timeout: b.timeout}
	fmt.Fprintf(os.Stderr, "  %s: first sync of %.8s (%v) …\n", toolName, head, want)
	if err := t.start(ctx, setup, head, want); err != nil {
		return err
	}
	// counted returns the reconciles finished since the previous call.
	last, err := t.reconcileCount(ctx)
	if err != nil {
		return err
	}
	counted := func() (int, error) {
		n, err := t.reconcileCount(ctx)
		d := n - last
		last = n
		return d, err
	}
	var prev string // the step whose reconciles are being counted
	for _, st := range sc.steps {
		commit := head
		switch {
		case st.noop:
		case st.revert:
			if _, err := work.Git(ctx, "revert", "--no-edit", "HEAD"); err != nil {
				return err
			}
			if commit, err = work.Git(ctx, "rev-parse", "HEAD"); err != nil {
				return err
			}
			if want, err = countSplit(repo); err != nil {
				return err
			}
		default:
			if err := st.change(repo); err != nil {
				return fmt.Errorf("step %s: %w", st.name, err)
			}
			if commit, want, err = commitSplit(ctx, repo, work, fmt.Sprintf("%s (rep %d)", st.name, rep)); err != nil {
				return err
			}
		}
		if !st.noop {
			if err := work.Push(ctx); err != nil {
				return err
			}
		}
		if prev != "" {
			n, err := counted()
			if err != nil {
				return err
			}
			res.reconciles[prev] = append(res.reconciles[prev], n)
		} else if _, err := counted(); err != nil { // the first sync's stragglers
			return err
		}
		start := time.Now()
		if err := t.trigger(ctx, commit); err != nil {
			return err
		}
		if err := t.wait(ctx, commit, want, st.noop); err != nil {
			return fmt.Errorf("scenario %s rep %d step %q: %w", sc.key, rep, st.name, err)
		}
		d := time.Since(start)
		head, prev = commit, st.name
		res.times[st.name] = append(res.times[st.name], d)
		fmt.Fprintf(os.Stderr, "  %s rep %d: %s %.2f s\n", toolName, rep, st.name, d.Seconds())
	}
	// Reconciles the last step set off after it was healthy (a queued
	// request) still belong to it.
	time.Sleep(3 * time.Second)
	n, err := counted()
	if err != nil {
		return err
	}
	res.reconciles[prev] = append(res.reconciles[prev], n)
	use, err := t.usage()
	if err != nil {
		return err
	}
	res.peakKiB = max(res.peakKiB, use.peakKiB)
	res.cpu = append(res.cpu, use.cpu)
	return nil
}

// commitSplit regenerates Flux's split, commits everything and returns the
// commit and the objects per cluster.
func commitSplit(ctx context.Context, repo *configRepo, work *gitserver.Work, msg string) (string, map[string]int, error) {
	want, err := repo.split(ctx)
	if err != nil {
		return "", nil, err
	}
	commit, err := work.Commit(ctx, "bench/peers: "+msg)
	return commit, want, err
}

// countSplit counts the objects per cluster in the work tree's split (after
// a git revert restored it).
func countSplit(repo *configRepo) (map[string]int, error) {
	want := map[string]int{}
	for _, c := range repo.clusters {
		files, err := filepath.Glob(filepath.Join(repo.dir, fluxPath(c), "*.yaml"))
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			if filepath.Base(f) != "kustomization.yaml" {
				want[c]++
			}
		}
	}
	return want, nil
}
