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
// for both tools.
type scenario struct {
	key, title string
	env        string
	clusters   []string
	seed       func(*configRepo) error
	// source copies files from the strata checkout (the demo) before seed.
	source []string
	steps  []step
	// goal is the largest strata/Flux time ratio the issue accepts.
	goal float64
}

// A step makes one commit (or none, for a no-op) and is timed from the
// push's completion to every cluster applied and healthy.
type step struct {
	name string
	// change edits the work tree; nil with revert or noop.
	change func(*configRepo) error
	revert bool // git revert --no-edit HEAD
	noop   bool // no commit: a reconcile request for HEAD
	// untimed steps restore the state between reps.
	untimed bool
}

// sideResult is one tool's run of a scenario.
type sideResult struct {
	times map[string][]time.Duration // by step name
	use   usage
}

// bench holds what every scenario shares.
type bench struct {
	strataBin, root string
	git             *gitserver.Server
	kcdir, tmp      string
	reps            int
	timeout         time.Duration
	fresh           func(context.Context) error
	newTool         func(name string) tool
}

// run runs scenario sc for one tool on fresh clusters with a repository
// of its own (same content, its own history).
func (b *bench) run(ctx context.Context, sc *scenario, toolName string) (*sideResult, error) {
	fmt.Fprintf(os.Stderr, "scenario %s (%s), %s: recreating the clusters …\n", sc.key, sc.title, toolName)
	if err := b.fresh(ctx); err != nil {
		return nil, err
	}
	slug := sc.key + "-" + strings.ToLower(toolName)
	dir := filepath.Join(b.tmp, slug)
	work := &gitserver.Work{Dir: filepath.Join(dir, "work")}
	repo := &configRepo{env: sc.env, clusters: sc.clusters, strata: b.strataBin, dir: work.Dir}
	url := strings.TrimSuffix(b.git.URL, "config.git") + slug + ".git"
	if err := os.MkdirAll(work.Dir, 0o755); err != nil {
		return nil, err
	}
	if _, err := work.Git(ctx, "init", "-q"); err != nil {
		return nil, err
	}
	if err := repo.copyTree(b.root, sc.source...); err != nil {
		return nil, err
	}
	if err := sc.seed(repo); err != nil {
		return nil, err
	}
	head, want, err := commitSplit(ctx, repo, work, "seed")
	if err != nil {
		return nil, err
	}
	if _, err := work.Git(ctx, "remote", "add", "origin", url); err != nil {
		return nil, err
	}
	if err := work.Push(ctx); err != nil {
		return nil, err
	}

	t := b.newTool(toolName)
	defer t.stop()
	setup := &setup{env: sc.env, clusters: sc.clusters, repoURL: url, kcdir: b.kcdir, work: dir, timeout: b.timeout}
	fmt.Fprintf(os.Stderr, "  %s: first sync of %.8s (%v) …\n", toolName, head, want)
	if err := t.start(ctx, setup, head, want); err != nil {
		return nil, err
	}
	res := &sideResult{times: map[string][]time.Duration{}}
	for rep := 1; rep <= b.reps; rep++ {
		for _, st := range sc.steps {
			commit := head
			switch {
			case st.noop:
			case st.revert:
				if _, err := work.Git(ctx, "revert", "--no-edit", "HEAD"); err != nil {
					return nil, err
				}
				if commit, err = work.Git(ctx, "rev-parse", "HEAD"); err != nil {
					return nil, err
				}
				if want, err = countSplit(repo); err != nil {
					return nil, err
				}
			default:
				if err := st.change(repo); err != nil {
					return nil, fmt.Errorf("step %s: %w", st.name, err)
				}
				if commit, want, err = commitSplit(ctx, repo, work, fmt.Sprintf("%s (rep %d)", st.name, rep)); err != nil {
					return nil, err
				}
			}
			if !st.noop {
				if err := work.Push(ctx); err != nil {
					return nil, err
				}
			}
			start := time.Now()
			if err := t.trigger(ctx, commit); err != nil {
				return nil, err
			}
			if err := t.wait(ctx, commit, want, st.noop); err != nil {
				return nil, fmt.Errorf("scenario %s rep %d step %q: %w", sc.key, rep, st.name, err)
			}
			d := time.Since(start)
			head = commit
			if !st.untimed {
				res.times[st.name] = append(res.times[st.name], d)
			}
			fmt.Fprintf(os.Stderr, "  %s rep %d: %s %.2f s\n", toolName, rep, st.name, d.Seconds())
		}
	}
	if res.use, err = t.usage(); err != nil {
		return nil, err
	}
	return res, nil
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
