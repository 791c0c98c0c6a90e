// Command fleet measures fan-out: a revert reaching 1, 3 and 10 local
// clusters, with strata in push mode (one reconciler for all clusters) and
// in agent mode (one reconciler per cluster, --self), and the reconcilers'
// CPU and memory per cluster (issue 16 §3).
//
//	go run ./bench/fleet [-clusters 1,3,10] [-modes push,agent] [-reps 3] [-objects 100] [-markdown bench/RESULTS.md]
//
// It builds strata from a clean export of -commit (git archive, so the
// measured binary is that commit whatever the working tree holds), brings
// up kwok clusters under a temporary STRATA_HOME (added as the fleet
// grows, -parallel at a time; always deleted, also on SIGINT/SIGTERM),
// serves the generated config repository over HTTP (fluxcd's
// gittestserver) and pushes to it with the git CLI. For each fleet size and
// mode it starts `strata reconcile` as real processes, lets them converge,
// and times -reps reverts from the push to every cluster's inventory
// showing the revert with all its objects healthy; each push is followed
// by a signed POST to every process's push hook. CPU (utime+stime) and
// peak RSS (VmHWM) come from /proc.
//
// The clusters share the machine with the reconcilers: run it on a quiet
// machine. A run that starts at a 1-minute load above -max-load is
// labelled as measured under load, in the output and in the markdown.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/strata-gitops/strata/bench/internal/cpumeter"
	"github.com/strata-gitops/strata/bench/internal/gitserver"
	"github.com/strata-gitops/strata/bench/internal/results"
	"github.com/strata-gitops/strata/internal/localcluster"
)

type options struct {
	clusters                      []int
	modes                         []Mode
	reps, objects, parallel       int
	rollouts                      bool
	interval, drift, settle, idle time.Duration
	every, timeout                time.Duration
	commit, bin, markdown         string
	maxLoad, maxOther             float64
}

func main() {
	var o options
	var clusters, modes string
	flag.StringVar(&clusters, "clusters", "1,3,10", "fleet sizes, comma-separated, measured in increasing order on the same clusters")
	flag.StringVar(&modes, "modes", "push,agent", "push (one reconciler, --kubeconfig-dir) and/or agent (one per cluster, --self)")
	flag.IntVar(&o.reps, "reps", 3, "reverts timed per fleet size and mode")
	flag.IntVar(&o.objects, "objects", 100, "objects per cluster, its Namespace included; the change and its revert touch every one")
	flag.BoolVar(&o.rollouts, "rollouts", true, "the change touches the pod templates, so every Deployment rolls out; false changes metadata and ConfigMap data only")
	flag.IntVar(&o.parallel, "parallel", 3, "clusters created at once")
	flag.DurationVar(&o.interval, "interval", time.Minute, "the reconcilers' --interval (git poll)")
	flag.DurationVar(&o.drift, "drift", 30*time.Second, "the reconcilers' --drift-interval (strata's default)")
	flag.DurationVar(&o.settle, "settle", 2*time.Second, "pause before each push")
	flag.DurationVar(&o.idle, "idle", time.Minute, "after the reps, measure the reconcilers' idle CPU over this long (0: skip)")
	flag.DurationVar(&o.every, "every", 100*time.Millisecond, "how often each cluster's inventory is polled while waiting")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Minute, "longest wait for a fleet to converge")
	flag.Float64Var(&o.maxOther, "max-other", 0.25, "other work using more than this many cores on average during a timed revert (the machine's busy CPU minus the benchmark's own processes) labels the numbers as measured under load")
	flag.StringVar(&o.commit, "commit", "HEAD", "build strata from a clean export of this commit")
	flag.StringVar(&o.bin, "bin", "", "measure this strata binary instead of building -commit (then -markdown is refused: its commit is unknown)")
	flag.StringVar(&o.markdown, "markdown", "", "write the results into the fleets section of this markdown file")
	flag.Float64Var(&o.maxLoad, "max-load", 3, "a 1-minute load above this when the run starts (other work on the machine, before the benchmark's own clusters) labels the numbers as measured under load")
	flag.Parse()
	var err error
	if o.clusters, err = parseSizes(clusters); err == nil {
		o.modes, err = parseModes(modes)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/fleet:", err)
		os.Exit(2)
	}

	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		for s := range sigs {
			fmt.Fprintf(os.Stderr, "\nbench/fleet: %v: stopping the reconcilers and deleting the clusters …\n", s)
			cancel()
		}
	}()
	err = run(ctx, o)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/fleet:", err)
		os.Exit(1)
	}
}

func parseSizes(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 99 {
			return nil, fmt.Errorf("-clusters %q: want increasing numbers from 1 to 99, comma-separated", s)
		}
		if len(out) > 0 && n <= out[len(out)-1] {
			return nil, fmt.Errorf("-clusters %q: list the sizes in increasing order (the fleet grows, clusters are kept)", s)
		}
		out = append(out, n)
	}
	return out, nil
}

func parseModes(s string) ([]Mode, error) {
	var out []Mode
	for _, f := range strings.Split(s, ",") {
		switch m := Mode(strings.TrimSpace(f)); m {
		case Push, Agent:
			out = append(out, m)
		default:
			return nil, fmt.Errorf("-modes %q: %q is neither push nor agent", s, f)
		}
	}
	return out, nil
}

func run(ctx context.Context, o options) error {
	if o.reps < 1 {
		return fmt.Errorf("-reps must be at least 1")
	}
	if _, err := NewFleet(o.clusters[len(o.clusters)-1], o.objects, o.rollouts); err != nil {
		return err
	}
	if _, err := exec.LookPath("git"); err != nil {
		return fmt.Errorf("git not found in PATH: the benchmark pushes with the git CLI")
	}
	root, err := results.ModuleRoot()
	if err != nil {
		return err
	}
	if o.markdown != "" {
		if o.bin != "" {
			return fmt.Errorf("-markdown with -bin: a result must name the clean commit its binary was built from; drop -bin so that -commit is built")
		}
		if dirty := dirtyPaths(root, "bench/fleet", "bench/internal", "go.mod", "go.sum"); dirty != "" {
			return fmt.Errorf("-markdown: the benchmark's own code has uncommitted changes (%s): commit them first, a result must come from a clean commit", dirty)
		}
	}
	r := &report{opts: o, command: "go run ./bench/fleet " + strings.Join(os.Args[1:], " "), date: time.Now().UTC(),
		machine: results.ReadMachine(), loadBefore: results.LoadAvg(), clustersUp: map[int]time.Duration{}}
	r.maxLoad = load1()

	tmp, err := os.MkdirTemp("", "strata-bench-fleet-")
	if err != nil {
		return err
	}
	keepTmp := false
	defer func() {
		if !keepTmp {
			os.RemoveAll(tmp)
		}
	}()
	b := &fleetBench{opts: o, tmp: tmp, bin: o.bin, meter: cpumeter.Meter{Marker: tmp, WithChildren: true}}
	if b.bin == "" {
		commit, err := buildAt(ctx, root, o.commit, tmp)
		if err != nil {
			return err
		}
		b.bin = filepath.Join(tmp, "strata")
		r.build = fmt.Sprintf("`strata` built from a clean export of commit %.12s (`git archive`), %s", commit, results.GoVersion(root))
	} else {
		out, _ := exec.Command(b.bin, "version").CombinedOutput()
		r.build = fmt.Sprintf("binary %s (%s)", b.bin, strings.TrimSpace(string(out)))
	}

	b.lc = localcluster.New(localcluster.Options{Home: filepath.Join(tmp, "home"), Progress: &results.PrefixWriter{W: os.Stderr, Prefix: "  "}, Volumes: -1})
	if missing := b.lc.MissingBinaries(); len(missing) > 0 {
		return fmt.Errorf("%v missing in %s: run make tools (hack/install-tools.sh all)", missing, b.lc.Bin())
	}
	// However this run ends (even a panic in a goroutine), its clusters end with it.
	if err := b.lc.KillOnExit(); err != nil {
		return err
	}
	defer func() {
		fmt.Fprintln(os.Stderr, "deleting the clusters …")
		dctx, dcancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer dcancel()
		if err := b.lc.Down(dctx); err != nil {
			keepTmp = true
			fmt.Fprintf(os.Stderr, "bench/fleet: deleting the clusters failed: %v\n  clean up by hand: STRATA_HOME=%s strata dev down (then rm -rf %s)\n", err, b.lc.Home(), tmp)
		}
	}()

	if b.git, err = gitserver.Start(); err != nil {
		return fmt.Errorf("starting the git server: %w", err)
	}
	defer b.git.Stop()
	b.work = &gitserver.Work{Dir: filepath.Join(tmp, "work")}
	if err := os.MkdirAll(b.work.Dir, 0o755); err != nil {
		return err
	}
	if _, err := b.work.Git(ctx, "init", "-q"); err != nil {
		return err
	}
	if _, err := b.work.Git(ctx, "remote", "add", "origin", b.git.URL); err != nil {
		return err
	}

	up := 0
	for _, n := range o.clusters {
		f, err := NewFleet(n, o.objects, o.rollouts)
		if err != nil {
			return err
		}
		r.layout = fmt.Sprintf("%s clusters (public-01, private-02, onprem-03, public-04, …: round-robin over the three tiers), %s", sizes(o.clusters), f.Describe())
		start := time.Now()
		if err := b.growTo(ctx, up, f.Names()); err != nil {
			return err
		}
		r.clustersUp[n], up = time.Since(start), n
		if r.kubeVersion == "" {
			if cs, err := b.lc.Client(f.Names()[0]); err == nil {
				if v, err := cs.Discovery().ServerVersion(); err == nil {
					r.kubeVersion = v.GitVersion
				}
			}
		}
		if err := f.Write(b.work.Dir, good); err != nil {
			return err
		}
		if _, err := b.work.Commit(ctx, fmt.Sprintf("bench/fleet: %d clusters, good state", n)); err != nil {
			return err
		}
		if err := b.work.Push(ctx); err != nil {
			return err
		}
		for _, m := range o.modes {
			res, err := b.run(ctx, f, m)
			if err != nil {
				return err
			}
			for _, rep := range res.Reps {
				r.maxLoad = max(r.maxLoad, parseLoad1(rep.Load))
			}
			r.runs = append(r.runs, res)
		}
	}
	r.loadAfter = results.LoadAvg()
	fmt.Print(r.text())
	if o.markdown != "" {
		if err := results.UpdateSection(o.markdown, sectionHeader(o.rollouts), r.markdown()); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "updated %s\n", o.markdown)
	}
	return nil
}

// growTo brings up the clusters of names from index have on, -parallel at
// a time, after checking that the machine has the memory for them.
func (b *fleetBench) growTo(ctx context.Context, have int, names []string) error {
	add := names[have:]
	if len(add) == 0 {
		return nil
	}
	const perCluster = 750 << 20 // etcd, apiserver, controller-manager, scheduler, kwok: ~720 MiB measured with 100 objects
	if avail := memAvailable(); avail > 0 && avail < int64(len(add))*perCluster+(1<<30) {
		return fmt.Errorf("%d more clusters need about %d MiB (750 MiB each, plus 1 GiB to spare) but only %d MiB are available: free memory or measure fewer clusters (-clusters)",
			len(add), int64(len(add))*perCluster>>20, avail>>20)
	}
	b.logf("bringing up %s …", strings.Join(add, ", "))
	for i := 0; i < len(add); i += b.opts.parallel {
		if err := b.lc.Up(ctx, add[i:min(i+b.opts.parallel, len(add))]...); err != nil {
			return fmt.Errorf("bringing up the clusters: %w", err)
		}
	}
	return nil
}

// buildAt exports commit of the repository at root (git archive) and
// builds its cmd/strata into dir/strata; it returns the full commit.
func buildAt(ctx context.Context, root, commit, dir string) (string, error) {
	out, err := exec.CommandContext(ctx, "git", "-C", root, "rev-parse", "--verify", commit+"^{commit}").Output()
	if err != nil {
		return "", fmt.Errorf("-commit %s: not a commit of %s: %v", commit, root, err)
	}
	full := strings.TrimSpace(string(out))
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return "", err
	}
	fmt.Fprintf(os.Stderr, "building strata from a clean export of %.12s …\n", full)
	export := exec.CommandContext(ctx, "sh", "-c", `git -C "$1" archive --format=tar "$2" | tar -x -C "$3"`, "sh", root, full, src)
	if out, err := export.CombinedOutput(); err != nil {
		return "", fmt.Errorf("exporting %.12s: %v\n%s", full, err, out)
	}
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", filepath.Join(dir, "strata"), "./cmd/strata")
	build.Dir = src
	build.Env = append(os.Environ(), "GOTOOLCHAIN=local", "GOFLAGS=-mod=readonly")
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building cmd/strata of %.12s: %v\n%s", full, err, out)
	}
	return full, os.RemoveAll(src)
}

// dirtyPaths lists the paths under root's given paths that git status
// shows as changed or untracked; "" when clean.
func dirtyPaths(root string, paths ...string) string {
	out, err := exec.Command("git", append([]string{"-C", root, "status", "--porcelain", "--"}, paths...)...).Output()
	if err != nil {
		return "git status failed: " + err.Error()
	}
	return strings.Join(strings.Fields(strings.TrimSpace(string(out))), " ")
}

func sizes(ns []int) string {
	var out []string
	for _, n := range ns {
		out = append(out, strconv.Itoa(n))
	}
	return strings.Join(out, ", ")
}

func load1() float64 { return parseLoad1(results.LoadAvg()) }

func parseLoad1(s string) float64 {
	f, _ := strconv.ParseFloat(strings.Fields(s + " 0")[0], 64)
	return f
}

// memAvailable is MemAvailable from /proc/meminfo in bytes, 0 if unknown.
func memAvailable() int64 {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(l, "MemAvailable:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}
