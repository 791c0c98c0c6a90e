package main

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/strata-gitops/strata/bench/internal/results"
)

// sectionHeader is the heading of this benchmark's section of RESULTS.md;
// a run without rollouts (-rollouts=false) has a section of its own.
func sectionHeader(rollouts bool) string {
	if rollouts {
		return "## Fleets: a revert fanned out to 1, 3 and 10 clusters, push mode and agent mode (bench/fleet)"
	}
	return "## Fleets without rollouts: a revert of metadata and ConfigMaps fanned out to 1, 3 and 10 clusters (bench/fleet -rollouts=false)"
}

type report struct {
	opts        options
	command     string
	date        time.Time
	machine     results.Machine
	build       string
	loadBefore  string
	loadAfter   string
	maxLoad     float64 // the highest 1-minute load seen at the start or at a push (the benchmark's own clusters included)
	clustersUp  map[int]time.Duration
	kubeVersion string
	layout      string
	runs        []*runResult
}

// underLoad says whether the numbers were taken on a machine busy with
// other work: the load when the run started (before its own clusters),
// or other processes' CPU during any timed revert.
func (r *report) underLoad() bool {
	return parseLoad1(r.loadBefore) > r.opts.maxLoad || r.maxOther() > r.opts.maxOther
}

// maxOther is the most CPU other work used during a timed revert, in cores.
func (r *report) maxOther() float64 {
	m := 0.0
	for _, x := range r.runs {
		for _, rep := range x.Reps {
			m = max(m, rep.OtherCores)
		}
	}
	return m
}

// fit is a least-squares line y = a + b·x.
type fit struct{ a, b float64 }

func linearFit(xs, ys []float64) (fit, bool) {
	n := float64(len(xs))
	if len(xs) < 2 || len(xs) != len(ys) {
		return fit{}, false
	}
	var sx, sy, sxx, sxy float64
	for i := range xs {
		sx, sy, sxx, sxy = sx+xs[i], sy+ys[i], sxx+xs[i]*xs[i], sxy+xs[i]*ys[i]
	}
	d := n*sxx - sx*sx
	if d == 0 {
		return fit{}, false
	}
	b := (n*sxy - sx*sy) / d
	return fit{a: (sy - b*sx) / n, b: b}, true
}

func (r *report) byMode(m Mode) []*runResult {
	var out []*runResult
	for _, x := range r.runs {
		if x.Mode == m {
			out = append(out, x)
		}
	}
	slices.SortFunc(out, func(a, b *runResult) int { return a.N - b.N })
	return out
}

func mib(kib int64) float64 { return float64(kib) / 1024 }

// row is one table line per run.
func row(x *runResult) []string {
	t := x.ttrs()
	fast, slow := []time.Duration{}, []time.Duration{}
	for _, rep := range x.Reps {
		var ds []time.Duration
		for _, d := range rep.PerCluster {
			ds = append(ds, d)
		}
		fast, slow = append(fast, slices.Min(ds)), append(slow, slices.Max(ds))
	}
	var det []time.Duration
	var fetches []int
	for _, rep := range x.Reps {
		det = append(det, rep.Detected)
		fetches = append(fetches, rep.Fetches)
	}
	slices.Sort(fetches)
	n := float64(x.N)
	cpu := median(x.revertCPU())
	idle := "–"
	if x.IdleWall > 0 {
		idle = fmt.Sprintf("%.1f", 1000*x.IdleCPU.Seconds()/x.IdleWall.Seconds()/n)
	}
	return []string{
		string(x.Mode), fmt.Sprint(x.N), fmt.Sprint(x.Procs), secs(x.Startup),
		fmt.Sprintf("%s (%s–%s)", secs(median(t)), secs(slices.Min(t)), secs(slices.Max(t))),
		fmt.Sprintf("%s / %s", secs(median(fast)), secs(median(slow))),
		secs(median(det)),
		fmt.Sprintf("%d; idle %d per minute", fetches[len(fetches)/2], idleFetchesPerMinute(x)),
		fmt.Sprintf("%.2f s (%.3f s)", cpu.Seconds(), cpu.Seconds()/n),
		idle,
		fmt.Sprintf("%.0f MiB (%.1f MiB)", mib(x.Final.PeakSumKiB), mib(x.Final.PeakSumKiB)/n),
		fmt.Sprintf("%.0f MiB", mib(x.Final.PeakMaxKiB)),
	}
}

var columns = []string{"mode", "clusters", "processes", "start → all converged", "revert → every cluster healthy, median (min–max)",
	"first / last cluster healthy (median)", "push → first fetch", "git fetches during the revert (median)", "reconciler CPU during the revert (per cluster)",
	"idle CPU per cluster (millicores)", "peak RSS, all processes (per cluster)", "largest process's peak RSS"}

// growth describes, per mode, how the time and the usage grow with N.
func (r *report) growth() []string {
	var out []string
	for _, m := range []Mode{Push, Agent} {
		runs := r.byMode(m)
		if len(runs) == 0 {
			continue
		}
		var ns, ts, rss, cpu []float64
		for _, x := range runs {
			ns = append(ns, float64(x.N))
			ts = append(ts, median(x.ttrs()).Seconds())
			rss = append(rss, mib(x.Final.PeakSumKiB))
			cpu = append(cpu, median(x.revertCPU()).Seconds())
		}
		line := fmt.Sprintf("%s mode: revert → every cluster healthy", m)
		if f, ok := linearFit(ns, ts); ok {
			line += fmt.Sprintf(" ≈ %.2f s + %.3f s per cluster", f.a, f.b)
		}
		first, last := runs[0], runs[len(runs)-1]
		if last.N > first.N {
			line += fmt.Sprintf(" (%d→%d clusters: ×%.2f in time for ×%d in clusters)", first.N, last.N, ts[len(ts)-1]/ts[0], last.N/first.N)
		}
		if f, ok := linearFit(ns, cpu); ok {
			line += fmt.Sprintf("; reconciler CPU per revert ≈ %.2f s + %.3f s per cluster", f.a, f.b)
		}
		if f, ok := linearFit(ns, rss); ok {
			line += fmt.Sprintf("; peak RSS (all processes) ≈ %.0f MiB + %.1f MiB per cluster", f.a, f.b)
		}
		out = append(out, line+".")
	}
	return out
}

func (r *report) text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "\nbench/fleet — %s\n", r.layout)
	if r.underLoad() {
		fmt.Fprintf(&b, "UNDER LOAD (1-minute load %.1f at the start, limit %.1f; other work used up to %.2f cores during a revert, limit %.2f): these numbers are not results.\n", parseLoad1(r.loadBefore), r.opts.maxLoad, r.maxOther(), r.opts.maxOther)
	}
	for _, x := range r.runs {
		cells := row(x)
		for i, c := range cells {
			fmt.Fprintf(&b, "  %s: %s\n", columns[i], c)
		}
		b.WriteString("\n")
	}
	for _, g := range r.growth() {
		fmt.Fprintf(&b, "%s\n", g)
	}
	return b.String()
}

func (r *report) markdown() string {
	var b strings.Builder
	b.WriteString(sectionHeader(r.opts.rollouts) + "\n\n")
	if r.underLoad() {
		fmt.Fprintf(&b, "**Measured under load (1-minute load %.1f at the start, limit %.1f; other work used up to %.2f cores during a timed revert, limit %.2f): not a result.** Rerun on a quiet machine.\n\n", parseLoad1(r.loadBefore), r.opts.maxLoad, r.maxOther(), r.opts.maxOther)
	}
	fmt.Fprintf(&b, "- Command: `%s`\n", r.command)
	fmt.Fprintf(&b, "- Date: %s UTC; machine: %d CPUs (%s), %s, %s, %s\n", r.date.Format("2006-01-02 15:04"), r.machine.NProc, r.machine.CPU, r.machine.Mem, r.machine.Kernel, r.machine.GoVersion)
	fmt.Fprintf(&b, "- Load (1, 5, 15 min): %s before, %s after; highest 1-minute load at a push (this benchmark's own clusters included): %.1f; other work (the machine's busy CPU minus this benchmark's processes) during the timed reverts: up to %.2f cores\n", r.loadBefore, r.loadAfter, r.maxLoad, r.maxOther())
	fmt.Fprintf(&b, "- strata: %s; clusters: kwok (binary runtime, Kubernetes %s), all on this machine\n", r.build, r.kubeVersion)
	fmt.Fprintf(&b, "- Repository: %s; every object pinned to its cluster with `strata.dev/clusters`; approvals off (`approvals: {enforce: false}`: the gate is not what is measured)\n", r.layout)
	fmt.Fprintf(&b, "- Method: `strata reconcile` as real processes — push: one for all clusters (`--kubeconfig-dir`); agent: one per cluster (`--self NAME --kubeconfig`, no `--peer-kubeconfig-dir`) — following an HTTP git server (fluxcd gittestserver), poll `--interval %s`, `--drift-interval %s`. Each rep pushes a change to every object (`git push`), waits until every cluster is healthy at it, then pushes `git revert --no-edit HEAD`; the signed push hook of every process is posted right after each push (agents: all at once). Timed: the revert's push completed → each cluster's inventory (`strata-system/strata-inventory-%s`) shows the revert with all its objects healthy (polled every %s). CPU is utime+stime of the reconcilers from /proc over that window; idle CPU is over %s after the last rep (polls and drift checks only); peak RSS is VmHWM over the process's life (its first apply included)\n",
		r.opts.interval, r.opts.drift, fleetEnv, r.opts.every, r.opts.idle)
	var ups []string
	for _, n := range slices.Sorted(maps.Keys(r.clustersUp)) {
		ups = append(ups, fmt.Sprintf("to %d: %s", n, secs(r.clustersUp[n])))
	}
	fmt.Fprintf(&b, "- Bringing the clusters up (added as needed): %s\n\n", strings.Join(ups, ", "))
	b.WriteString("| " + strings.Join(columns, " | ") + " |\n|" + strings.Repeat("---|", len(columns)) + "\n")
	for _, x := range r.runs {
		b.WriteString("| " + strings.Join(row(x), " | ") + " |\n")
	}
	b.WriteString("\nGrowth:\n\n")
	for _, g := range r.growth() {
		b.WriteString("- " + g + "\n")
	}
	work := "applying and answering for their objects"
	if r.opts.rollouts {
		work = "kube-controller-manager rolling out the Deployments"
	}
	fmt.Fprintf(&b, "\nAll clusters share this machine's CPUs with each other and with the reconcilers, so the time for N clusters includes N control planes (%s) competing for %d cores; a fleet of real clusters has a control plane each. CPU seconds and peak RSS are the reconcilers' own and depend far less on the machine's load than the times do.\n\n", work, r.machine.NProc)
	return b.String()
}

func idleFetchesPerMinute(x *runResult) int {
	if x.IdleWall <= 0 {
		return 0
	}
	return int(float64(x.IdleFetches)/x.IdleWall.Minutes() + 0.5)
}
