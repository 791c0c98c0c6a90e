package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/strata-gitops/strata/internal/desired"
	"github.com/strata-gitops/strata/internal/source"
	"github.com/strata-gitops/strata/reconciler"
)

// profileResult is what -profile found: the reconciler run in this process
// (no process start-up) with a CPU profile of the first apply and one of
// the no-op, and the time of each phase.
type profileResult struct {
	dir string
	// render is fetch + snapshot + strata.yaml + render + place, timed alone.
	render          time.Duration
	first, noop     time.Duration
	firstCPU        time.Duration
	noopCPU         time.Duration
	firstClusters   []*reconciler.ClusterResult
	noopClusters    []*reconciler.ClusterResult
	topFirst, topNo string
	// traceFirst and traceNoop summarize the API requests per cluster.
	traceFirst, traceNoop [][]string
}

// profileReconcile runs, on fresh clusters, a first apply and then a no-op
// with a new Reconciler each (as two processes would), each under the CPU
// profiler, and times the render phase on its own.
func profileReconcile(ctx context.Context, dir, repoDir, kcdir string) (*profileResult, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	p := &profileResult{dir: dir}
	logf, err := os.Create(filepath.Join(dir, "reconcile.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	log := slog.New(slog.NewJSONHandler(logf, nil))

	// The render phase alone.
	start := time.Now()
	if err := renderOnly(ctx, repoDir); err != nil {
		return nil, err
	}
	p.render = time.Since(start)

	traces := map[string]*requestTrace{}
	once := func(name string) (*reconciler.Result, time.Duration, time.Duration, error) {
		repo, err := source.Open(ctx, repoDir, source.OpenOptions{})
		if err != nil {
			return nil, 0, 0, err
		}
		conn := &tracingConnector{dir: kcdir, trace: &requestTrace{start: time.Now()}}
		defer conn.Close()
		opts := reconciler.DefaultOptions()
		opts.Environment, opts.Revision, opts.Log = benchEnv, "main", log
		rec := reconciler.New(repo, conn, opts)
		f, err := os.Create(filepath.Join(dir, name+".cpu.pprof"))
		if err != nil {
			return nil, 0, 0, err
		}
		defer f.Close()
		runtime.GC()
		cpu0 := cpuTime()
		if err := pprof.StartCPUProfile(f); err != nil {
			return nil, 0, 0, err
		}
		start := time.Now()
		conn.trace.reset(start)
		res := rec.ReconcileOnce(ctx)
		wall := time.Since(start)
		pprof.StopCPUProfile()
		cpu := cpuTime() - cpu0
		traces[name] = conn.trace
		if res.Failed() {
			return res, wall, cpu, fmt.Errorf("in-process %s failed: %v %v", name, res.Err, clusterErrs(res))
		}
		return res, wall, cpu, nil
	}
	res, wall, cpu, err := once("first-apply")
	if err != nil {
		return nil, err
	}
	p.first, p.firstCPU, p.firstClusters = wall, cpu, res.Clusters
	res, wall, cpu, err = once("noop")
	if err != nil {
		return nil, err
	}
	p.noop, p.noopCPU, p.noopClusters = wall, cpu, res.Clusters
	p.traceFirst, p.traceNoop = traces["first-apply"].rows(), traces["noop"].rows()
	p.topFirst = pprofTop(filepath.Join(dir, "first-apply.cpu.pprof"))
	p.topNo = pprofTop(filepath.Join(dir, "noop.cpu.pprof"))
	return p, nil
}

func renderOnly(ctx context.Context, repoDir string) error {
	repo, err := source.Open(ctx, repoDir, source.OpenOptions{})
	if err != nil {
		return err
	}
	if err := repo.Fetch(ctx); err != nil {
		return err
	}
	rev, err := repo.Resolve("HEAD")
	if err != nil {
		return err
	}
	snap, err := repo.Snapshot(rev)
	if err != nil {
		return err
	}
	cfg, err := desired.LoadConfig(snap)
	if err != nil {
		return err
	}
	_, err = desired.Build(snap, cfg, benchEnv, desired.DefaultOptions())
	return err
}

func clusterErrs(res *reconciler.Result) []string {
	var out []string
	for _, c := range res.Clusters {
		if c.Err != nil {
			out = append(out, c.Name+": "+c.Err.Error())
		}
	}
	return out
}

// cpuTime is this process's user + system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// pprofTop returns `go tool pprof -top` of a profile (flat, 20 nodes) and
// the cumulative view of strata's own code and its direct libraries.
func pprofTop(file string) string {
	var b strings.Builder
	for _, args := range [][]string{
		{"tool", "pprof", "-top", "-nodecount=20", file},
		{"tool", "pprof", "-top", "-cum", "-nodecount=40", file},
	} {
		out, err := exec.Command("go", args...).CombinedOutput()
		if err != nil {
			fmt.Fprintf(&b, "go %s: %v\n%s", strings.Join(args, " "), err, out)
			continue
		}
		b.Write(out)
		b.WriteString("\n")
	}
	return b.String()
}

func (p *profileResult) clusterRows() [][]string {
	rows := [][]string{{"cluster", "first apply: duration", "of which health wait", "duration − health wait", "no-op: duration"}}
	for i, c := range p.firstClusters {
		n := p.noopClusters[i]
		rows = append(rows, []string{c.Name, s2(c.Duration), s2(c.HealthWait), s2(c.Duration - c.HealthWait), s2(n.Duration)})
	}
	return rows
}

func (p *profileResult) summary() []string {
	maxFirst, maxNoop := time.Duration(0), time.Duration(0)
	for i := range p.firstClusters {
		maxFirst = max(maxFirst, p.firstClusters[i].Duration)
		maxNoop = max(maxNoop, p.noopClusters[i].Duration)
	}
	return []string{
		fmt.Sprintf("in process (no start-up), fresh clusters: first apply %s wall, %s CPU; no-op %s wall, %s CPU", s2(p.first), s2(p.firstCPU), s2(p.noop), s2(p.noopCPU)),
		fmt.Sprintf("before the clusters (fetch, render, place, probe): first apply %s, no-op %s; render phase timed alone (fetch, snapshot, strata.yaml, kustomize, place): %s",
			s2(p.first-maxFirst), s2(p.noop-maxNoop), s2(p.render)),
		fmt.Sprintf("profiles: %s/first-apply.cpu.pprof, %s/noop.cpu.pprof (go tool pprof -top FILE)", p.dir, p.dir),
	}
}

func (p *profileResult) text(w io.Writer) {
	fmt.Fprintln(w, "profile (-profile):")
	for _, s := range p.summary() {
		fmt.Fprintln(w, "  "+s)
	}
	table(w, p.clusterRows())
	fmt.Fprintln(w, "\nfirst apply, API requests per cluster (seconds since the reconcile started):")
	table(w, p.traceFirst)
	fmt.Fprintln(w, "\nno-op, API requests per cluster:")
	table(w, p.traceNoop)
	fmt.Fprintln(w, "\nfirst apply, CPU profile:")
	fmt.Fprintln(w, p.topFirst)
	fmt.Fprintln(w, "no-op, CPU profile:")
	fmt.Fprintln(w, p.topNo)
}

func (p *profileResult) markdown(b *strings.Builder) {
	b.WriteString("Where the time goes (`-profile`: the reconciler in the benchmark's process, same code as `strata reconcile --once`):\n\n")
	for _, s := range p.summary() {
		fmt.Fprintf(b, "- %s\n", s)
	}
	b.WriteString("\n")
	mdTable(b, p.clusterRows())
	b.WriteString("\nFirst apply, API requests per cluster (seconds since the reconcile started; \"latency\" sums the requests' durations):\n\n")
	mdTable(b, p.traceFirst)
	b.WriteString("\nNo-op, API requests per cluster:\n\n")
	mdTable(b, p.traceNoop)
	b.WriteString("\n")
}
