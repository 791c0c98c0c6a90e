// Command ttr measures the time to recovery: from the push of a revert
// that touches every object of an environment spread over three clusters
// to every cluster converged and healthy at the revert.
//
//	go run ./bench/ttr [-objects 100] [-reps 3] [-poll-reps 2] [-markdown bench/RESULTS.md]
//
// It brings up three local kwok clusters (public, private, onprem) under a
// temporary STRATA_HOME (always torn down, also on SIGINT/SIGTERM), starts
// an in-process git server over HTTP (fluxcd's gittestserver), pushes a
// generated config repository to it with the git CLI and runs an
// in-process reconciler (reconciler.Run) following its main branch, in two
// scenarios, one after the other on the same clusters:
//
//   - A: push hook. Every push is followed by a signed POST to the
//     reconciler's push hook; the poll interval is 1 m.
//   - B: polling only. No hook: the reconciler notices a push at its next
//     poll, every 1 m (Flux's default interval).
//   - F (-floor, after A): no tool at all. At each push the harness applies
//     the commit's objects itself (bench/internal/floor) and polls them
//     until Current: the least any tool's time can be on these clusters.
//
// Each rep pushes a bad change to every object, waits until it has
// converged, then pushes `git revert --no-edit HEAD` and times from the
// push's completion until each cluster's inventory status shows the revert
// with all its objects healthy (polled every 100 ms). In B the revert is
// pushed after a uniformly random pause, so that it lands at a random
// phase of the poll timer.
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/strata-gitops/strata/bench/internal/gitserver"
	"github.com/strata-gitops/strata/bench/internal/results"
	"github.com/strata-gitops/strata/internal/cluster"
	"github.com/strata-gitops/strata/internal/localcluster"
)

// goal is the target for scenario A's median.
const goal = 5 * time.Second

type options struct {
	objects  int
	reps     int
	pollReps int
	interval time.Duration
	settle   time.Duration
	every    time.Duration
	seed     uint64
	markdown string
	verbose  bool
	floor    bool
}

func main() {
	var o options
	flag.IntVar(&o.objects, "objects", 100, "objects of the environment, Namespaces included, spread over the three clusters; the bad change and its revert touch every one")
	flag.IntVar(&o.reps, "reps", 3, "reverts timed with the push hook (scenario A)")
	flag.IntVar(&o.pollReps, "poll-reps", 2, "reverts timed with polling only (scenario B); each takes about two poll intervals")
	flag.DurationVar(&o.interval, "interval", time.Minute, "the reconciler's poll (and drift) interval in both scenarios; Flux's default is 1m")
	flag.DurationVar(&o.settle, "settle", 2*time.Second, "pause between the bad change converging and the revert's push (B adds a random part of up to -interval)")
	flag.DurationVar(&o.every, "every", 100*time.Millisecond, "how often the inventories are polled while waiting")
	flag.Uint64Var(&o.seed, "seed", 0, "seed of B's random pauses; 0 picks one (printed)")
	flag.StringVar(&o.markdown, "markdown", "", "write the results into the time-to-recovery section of this markdown file")
	flag.BoolVar(&o.verbose, "v", false, "print the reconciler's log")
	flag.BoolVar(&o.floor, "floor", true, "after A, time -reps reverts with no tool at all (scenario F): the harness applies each commit's objects itself at the push, the least any tool's time can be here")
	flag.Parse()
	if o.seed == 0 {
		o.seed = rand.Uint64()
	}

	// The first SIGINT/SIGTERM cancels the run, which then stops the
	// reconciler and deletes the clusters; later ones only say so.
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		for s := range sigs {
			fmt.Fprintf(os.Stderr, "\nbench/ttr: %v: stopping and deleting the clusters (this takes a few seconds) …\n", s)
			cancel()
		}
	}()
	err := run(ctx, o)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/ttr:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	if o.reps < 1 || o.pollReps < 0 {
		return fmt.Errorf("-reps must be at least 1 and -poll-reps at least 0")
	}
	if o.markdown != "" {
		if err := results.CheckRecordable(o.markdown); err != nil {
			return err
		}
	}
	layout, err := NewLayout(o.objects)
	if err != nil {
		return err
	}
	if _, err := exec.LookPath("git"); err != nil {
		return fmt.Errorf("git not found in PATH: the benchmark pushes with the git CLI")
	}
	r := &report{opts: o, command: commandLine(), date: time.Now().UTC(), machine: results.ReadMachine(), layout: layout, loadBefore: results.LoadAvg()}
	if root, err := results.ModuleRoot(); err == nil {
		r.build = fmt.Sprintf("in process, %s%s, %s", root, results.GitState(root), results.GoVersion(root))
	}

	tmp, err := os.MkdirTemp("", "strata-bench-ttr-")
	if err != nil {
		return err
	}
	keepTmp := false
	defer func() {
		if !keepTmp {
			os.RemoveAll(tmp)
		}
	}()

	lc := localcluster.New(localcluster.Options{Home: filepath.Join(tmp, "home"), Progress: &results.PrefixWriter{W: os.Stderr, Prefix: "  "}})
	if missing := lc.MissingBinaries(); len(missing) > 0 {
		return fmt.Errorf("%v missing in %s: run make tools (hack/install-tools.sh all)", missing, lc.Bin())
	}
	// However this run ends (even a panic in a goroutine), its clusters end with it.
	if err := lc.KillOnExit(); err != nil {
		return err
	}
	// Always delete the clusters, however run ends (error, signal).
	defer func() {
		fmt.Fprintln(os.Stderr, "deleting the clusters …")
		dctx, dcancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer dcancel()
		if err := lc.Down(dctx); err != nil {
			keepTmp = true
			fmt.Fprintf(os.Stderr, "bench/ttr: deleting the clusters failed: %v\n"+
				"  clean up by hand: STRATA_HOME=%s strata dev down (then rm -rf %s)\n", err, lc.Home(), tmp)
		}
	}()
	fmt.Fprintln(os.Stderr, "bringing up the clusters public, private and onprem …")
	start := time.Now()
	if err := lc.Up(ctx, clusterNames...); err != nil {
		return fmt.Errorf("bringing up the clusters: %w", err)
	}
	r.clustersUp = time.Since(start)
	if cs, err := lc.Client(clusterNames[0]); err == nil {
		if v, err := cs.Discovery().ServerVersion(); err == nil {
			r.kubeVersion = v.GitVersion
		}
	}

	gs, err := gitserver.Start()
	if err != nil {
		return fmt.Errorf("starting the git server: %w", err)
	}
	defer gs.Stop()

	work := &gitserver.Work{Dir: filepath.Join(tmp, "work")}
	if err := os.MkdirAll(work.Dir, 0o755); err != nil {
		return err
	}
	if _, err := work.Git(ctx, "init", "-q"); err != nil {
		return err
	}
	if err := layout.Write(work.Dir, good); err != nil {
		return err
	}
	if _, err := work.Commit(ctx, "bench/ttr: the good state"); err != nil {
		return err
	}
	if _, err := work.Git(ctx, "remote", "add", "origin", gs.URL); err != nil {
		return err
	}
	if err := work.Push(ctx); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "config repository at %s: %s; per cluster %s\n", gs.URL, layout.Describe(), layout.PerCluster())

	obs := &observer{connect: &cluster.KubeconfigDir{Dir: lc.KubeconfigDir()}, layout: layout, every: o.every}
	defer obs.connect.Close()
	b := &bench{opts: o, tmp: tmp, kcdir: lc.KubeconfigDir(), git: gs, work: work, layout: layout, obs: obs,
		rng: rand.New(rand.NewPCG(o.seed, 0x7472)), verbose: o.verbose}

	scenarios := []scenario{
		{key: "A", name: "push hook", hook: true, reps: o.reps},
		{key: "B", name: "polling every " + dur(o.interval) + ", no hook", hook: false, reps: o.pollReps},
	}
	for _, s := range scenarios {
		if s.reps == 0 {
			continue
		}
		fmt.Fprintf(os.Stderr, "scenario %s (%s): %d reps …\n", s.key, s.name, s.reps)
		res, err := b.run(ctx, s)
		if err != nil {
			return err
		}
		r.scenarios = append(r.scenarios, res)
		if s.key == "A" && o.floor {
			// Right after A, on the same clusters, with A's reconciler
			// stopped: nothing but the floor writes the objects.
			fmt.Fprintf(os.Stderr, "scenario %s (floor: no tool): %d reps …\n", floorKey, o.reps)
			res, err := b.runFloor(ctx, o.reps)
			if err != nil {
				return err
			}
			r.scenarios = append(r.scenarios, res)
		}
	}
	r.loadAfter = results.LoadAvg()

	text := r.text()
	fmt.Print(text)
	if o.markdown != "" {
		if err := results.UpdateSection(o.markdown, sectionHeader, r.markdown()); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "updated %s\n", o.markdown)
	}
	return nil
}
