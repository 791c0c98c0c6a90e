// Command reconcile times `strata reconcile --once` against
// `kubectl apply --server-side` of the same rendered manifests on three
// local kwok clusters, and a no-op reconcile in absolute time and against
// rendering alone.
//
//	go run ./bench/reconcile [-objects 1000] [-reps 5] [-markdown bench/RESULTS.md] [-profile DIR]
//
// It generates and commits a config repository whose objects are routed
// across the clusters public, private and onprem, builds strata once, brings
// up the clusters under a temporary STRATA_HOME (always torn down, also on
// SIGINT/SIGTERM), renders each cluster's share once with `strata render
// --out`, and then, per rep, on freshly recreated clusters:
//
//   - strata: `strata reconcile --once` (first apply, which includes its
//     health wait), then the same command again (no-op);
//   - kubectl: the three clusters in parallel (as strata does them), each
//     `kubectl apply --server-side -f DIR/<cluster>/` then `kubectl wait
//     --for=condition=Available deployment --all -A`;
//   - `strata render -o yaml` alone, the floor under a no-op (which
//     fetches, renders and places before it compares), reported next to
//     the no-op's absolute time.
//
// With -memory it runs strata only: the two --once runs per rep, then a
// long-running reconciler on the same clusters (running.go).
//
// The two sides alternate which goes first. With -markdown FILE it replaces
// the reconcile section of FILE and keeps the rest; with -profile DIR it
// also runs the reconciler in process under the CPU profiler.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
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

	"github.com/strata-gitops/strata/bench/internal/childproc"
	"github.com/strata-gitops/strata/bench/internal/cpumeter"
	"github.com/strata-gitops/strata/bench/internal/freshclusters"
	"github.com/strata-gitops/strata/bench/internal/results"
	"github.com/strata-gitops/strata/internal/localcluster"
)

// Goals of the issue.
const (
	// goalFirstApply: strata's first apply over kubectl's apply+wait.
	goalFirstApply = 0.5
)

type options struct {
	objects    int
	namespaces int
	reps       int
	markdown   string
	strata     string
	profile    string
	settle     time.Duration
	keep       string
	maxOther   float64
	maxWait    time.Duration
	apps       int
	memory     bool
	oneCluster bool
	// generateOnly stops after generating the repository (with -keep).
	generateOnly bool
}

func main() {
	var o options
	flag.IntVar(&o.objects, "objects", 1000, "objects the overlay renders to (Namespaces included); keep each cluster under ~200 Services (the apiserver's default service CIDR) and 500 Pods (the fake node)")
	flag.IntVar(&o.namespaces, "namespaces", 20, "namespaces to spread the objects over (floors cycle public, internal, confidential, restricted)")
	flag.IntVar(&o.reps, "reps", 5, "timed reps; each rep measures both sides on freshly created clusters")
	flag.StringVar(&o.markdown, "markdown", "", "write the results into the reconcile section of this markdown file")
	flag.StringVar(&o.strata, "strata", "", "use this strata binary instead of building ./cmd/strata")
	flag.StringVar(&o.profile, "profile", "", "after the reps, run a first apply and a no-op in this process under the CPU profiler and write the profiles into this directory; with -memory, write there the heap profile of the running reconciler at the end of its phase (running.heap.pprof)")
	flag.StringVar(&o.keep, "keep", "", "write the generated repository (DIR/repo) and strata's rendered files (DIR/rendered) into this new or empty directory and keep them")
	flag.DurationVar(&o.settle, "settle", 3*time.Second, "pause after the clusters are (re)created, before a measurement, for their start-up work to die down")
	flag.Float64Var(&o.maxOther, "max-other", 0.3, "before each measurement, wait until other processes use fewer than this many CPUs (5-second window) …")
	flag.DurationVar(&o.maxWait, "max-wait", 10*time.Minute, "… but at most this long")
	flag.IntVar(&o.apps, "apps", 0, "cap the Deployments (each with a Service and a ConfigMap) and make the rest of -objects ConfigMaps; 0: a third of the objects each")
	flag.BoolVar(&o.memory, "memory", false, "measure strata only: per rep a --once first apply and no-op (peak RSS), then a running `strata reconcile` timed from its push hook to every cluster healthy (3 no-ops, 3 ConfigMap and 3 Deployment changes; its VmHWM); write the memory section of -markdown; e.g. -objects 10000 -apps 300 -reps 1")
	flag.BoolVar(&o.oneCluster, "one-cluster", false, "with -memory: one on-prem cluster receives every object (issue 16's 50,000-object figure); its own section of -markdown")
	flag.BoolVar(&o.generateOnly, "generate-only", false, "with -keep DIR: only generate and commit the repository into DIR/repo")
	flag.Parse()

	// The first SIGINT/SIGTERM cancels the run, which then tears the
	// clusters down; later ones only say that it is doing so.
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		for s := range sigs {
			fmt.Fprintf(os.Stderr, "\nbench/reconcile: %v: stopping and deleting the clusters (this takes a few seconds) …\n", s)
			cancel()
		}
	}()
	err := run(ctx, o)
	interrupted := ctx.Err() != nil
	cancel()
	if interrupted {
		fmt.Fprintln(os.Stderr, "bench/reconcile: interrupted; the clusters are deleted")
		os.Exit(130)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/reconcile:", err)
		os.Exit(1)
	}
}

// proc is one timed process run.
type proc struct {
	wall, cpu      time.Duration
	maxRSSKiB      int64
	stdout, stderr []byte
}

// strataRep is the strata side of one rep.
type strataRep struct {
	first, noop proc
	firstTable  []clusterRow
	noopTable   []clusterRow
	// other jobs' CPU use during the first apply and the no-op, in CPUs.
	firstOther, noopOther float64
	// otherBefore is the other jobs' CPU use just before, after waiting.
	otherBefore float64
}

// kubeRep is the kubectl side of one rep: the three clusters in parallel.
type kubeRep struct {
	apply, wait map[string]time.Duration // per cluster
	wall        time.Duration            // from the start until every cluster is done
	maxRSSKiB   int64
	applied     map[string]int // objects kubectl reported per cluster
	cpu         time.Duration  // of every kubectl process
	// other jobs' CPU use during the whole side, and just before it.
	other, otherBefore float64
}

// applyTotal is the slowest cluster's apply: the clusters run in parallel.
func (k kubeRep) applyTotal() time.Duration {
	var d time.Duration
	for _, v := range k.apply {
		d = max(d, v)
	}
	return d
}

// total is the wall clock until every cluster applied and waited.
func (k kubeRep) total() time.Duration { return k.wall }

type report struct {
	opts        options
	command     string
	date        time.Time
	machine     results.Machine
	kubectl     string
	kubeServer  string
	strataBuild string
	repo        *Repo
	rendered    map[string]int // files per cluster written by strata render --out
	renderOut   time.Duration  // strata render --out, once
	renderYAML  []time.Duration
	strata      []strataRep
	running     []runningRep // -memory: the long-running reconciler per rep
	kube        []kubeRep
	strataFirst []bool // per rep: did strata go first
	recreations []time.Duration
	quietWaits  []time.Duration
	loadBefore  string
	loadAfter   string
	profile     *profileResult
}

func run(ctx context.Context, o options) error {
	if o.oneCluster {
		if !o.memory {
			return fmt.Errorf("-one-cluster needs -memory: the kubectl comparison is for three clusters")
		}
		useOneCluster()
	}
	if o.reps < 1 && (o.profile == "" || o.reps < 0 || o.markdown != "") {
		return fmt.Errorf("-reps must be at least 1 (0 only with -profile and without -markdown)")
	}
	if o.markdown != "" {
		if err := results.CheckRecordable(o.markdown); err != nil {
			return err
		}
	}
	r := &report{opts: o, command: commandLine(), date: time.Now().UTC(), machine: results.ReadMachine(), loadBefore: results.LoadAvg()}

	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		return fmt.Errorf("kubectl not found in PATH: the benchmark compares against `kubectl apply --server-side`")
	}
	if _, err := exec.LookPath("git"); err != nil {
		return fmt.Errorf("git not found in PATH: the benchmark commits the generated repository with the git CLI")
	}
	out, err := exec.CommandContext(ctx, kubectl, "version", "--client").CombinedOutput()
	if err != nil {
		return fmt.Errorf("kubectl version --client: %v: %s", err, out)
	}
	r.kubectl = strings.Join(strings.Fields(strings.ReplaceAll(string(out), "\n", "; ")), " ")

	tmp, err := os.MkdirTemp("", "strata-bench-reconcile-")
	if err != nil {
		return err
	}
	keepTmp := false
	defer func() {
		if !keepTmp {
			os.RemoveAll(tmp)
		}
	}()

	strata := o.strata
	if strata == "" {
		root, err := results.ModuleRoot()
		if errors.Is(err, results.ErrNoModule) {
			return errNoModule
		}
		if err != nil {
			return err
		}
		strata = filepath.Join(tmp, "strata")
		start := time.Now()
		if err := results.BuildStrata(ctx, root, strata); err != nil {
			return err
		}
		r.strataBuild = fmt.Sprintf("built from %s%s with %s in %s", root, results.GitState(root), results.GoVersion(root), time.Since(start).Round(time.Second))
	} else {
		r.strataBuild = "given with -strata " + strata
	}
	if out, err := exec.CommandContext(ctx, strata, "version").Output(); err == nil {
		r.strataBuild += " (`strata version`: " + strings.Join(strings.Fields(strings.ReplaceAll(strings.TrimSpace(string(out)), "\n", ";")), " ") + ")"
	}

	fmt.Fprintf(os.Stderr, "generating %d objects …\n", o.objects)
	data := tmp
	if o.keep != "" {
		data = o.keep
		if entries, err := os.ReadDir(data); err == nil && len(entries) > 0 {
			return fmt.Errorf("-keep %s: not empty", data)
		}
	}
	repo, err := Generate(filepath.Join(data, "repo"), Spec{Objects: o.objects, Namespaces: o.namespaces, Apps: o.apps})
	if err != nil {
		return err
	}
	r.repo = repo
	fmt.Fprintf(os.Stderr, "repository: %s\n", repo.Describe())
	if o.generateOnly {
		return nil
	}

	// Render each cluster's share once: kubectl applies exactly these files.
	rendered := filepath.Join(data, "rendered")
	start := time.Now()
	if _, err := runProc(ctx, strata, "render", "--env", benchEnv, "--repo", repo.Dir, "--out", rendered); err != nil {
		return err
	}
	r.renderOut = time.Since(start)
	if r.rendered, err = checkRendered(rendered, repo); err != nil {
		return err
	}

	cl := &freshclusters.Set{Names: clusterNames, Settle: o.settle, M: localcluster.New(localcluster.Options{
		Home:     filepath.Join(tmp, "home"),
		Progress: &results.PrefixWriter{W: os.Stderr, Prefix: "  "},
	})}
	// However this run ends (even a panic in a goroutine), its clusters end with it.
	if err := cl.M.KillOnExit(); err != nil {
		return err
	}
	// Always delete the clusters, however run ends (error, panic, signal).
	defer func() {
		fmt.Fprintln(os.Stderr, "deleting the clusters …")
		if err := cl.Down(); err != nil {
			keepTmp = true
			fmt.Fprintf(os.Stderr, "bench/reconcile: deleting the clusters failed: %v\n"+
				"  clean up by hand: STRATA_HOME=%s strata dev down (then rm -rf %s)\n", err, cl.M.Home(), tmp)
		}
	}()
	kcdir := cl.M.KubeconfigDir()
	// The machine may be shared: other jobs slow the clusters and the
	// tools alike. The meter tells their CPU from the benchmark's own (the
	// clusters' components name tmp; the children's time comes from
	// getrusage), so that every measurement says how quiet it was and can
	// wait for a quiet machine first.
	meter := cpumeter.Meter{Marker: tmp}

	strataArgs := []string{strata, "reconcile", "--once", "--repo", repo.Dir, "--branch", "main", "--env", benchEnv,
		"--kubeconfig-dir", kcdir, "--metrics-addr", "0"}

	if o.memory {
		return r.memoryRun(ctx, cl, meter, strataArgs)
	}
	for i := 0; i < o.reps; i++ {
		strataFirst := i%2 == 0
		r.strataFirst = append(r.strataFirst, strataFirst)
		var sr strataRep
		var kr kubeRep
		sides := []string{"strata", "kubectl"}
		if !strataFirst {
			sides = []string{"kubectl", "strata"}
		}
		for _, side := range sides {
			fmt.Fprintf(os.Stderr, "rep %d/%d %s: recreating the clusters …\n", i+1, o.reps, side)
			if err := cl.Fresh(ctx); err != nil {
				return err
			}
			other, waited, err := meter.WaitQuiet(ctx, o.maxOther, o.maxWait)
			if err != nil {
				return err
			}
			r.quietWaits = append(r.quietWaits, waited)
			if waited > 10*time.Second {
				fmt.Fprintf(os.Stderr, "rep %d/%d %s: waited %s for other jobs to quiet down (now %.2f CPUs)\n", i+1, o.reps, side, waited.Round(time.Second), other)
			}
			if side == "strata" {
				fmt.Fprintf(os.Stderr, "rep %d/%d strata: first apply …\n", i+1, o.reps)
				if sr, err = r.strataSide(ctx, meter, strataArgs); err != nil {
					return err
				}
				sr.otherBefore = other
				fmt.Fprintf(os.Stderr, "rep %d/%d strata: first apply %s, no-op %s, peak RSS %d MiB (other jobs: %.2f / %.2f CPUs)\n",
					i+1, o.reps, secs(sr.first.wall), secs(sr.noop.wall), max(sr.first.maxRSSKiB, sr.noop.maxRSSKiB)>>10, sr.firstOther, sr.noopOther)
			} else {
				fmt.Fprintf(os.Stderr, "rep %d/%d kubectl: apply + wait, the three clusters in parallel …\n", i+1, o.reps)
				a := meter.Read()
				if kr, err = r.kubeSide(ctx, kubectl, kcdir, rendered); err != nil {
					return err
				}
				b := meter.Read()
				kr.other = cpumeter.OtherCores(a, b, kr.cpu)
				kr.otherBefore = other
				fmt.Fprintf(os.Stderr, "rep %d/%d kubectl: apply %s, apply+wait %s (other jobs: %.2f CPUs)\n", i+1, o.reps, secs(kr.applyTotal()), secs(kr.total()), kr.other)
			}
		}
		r.strata = append(r.strata, sr)
		r.kube = append(r.kube, kr)
		// Reference: render alone, the floor under a no-op reconcile, on a
		// machine as quiet as the no-op's.
		if _, _, err := meter.WaitQuiet(ctx, o.maxOther, o.maxWait); err != nil {
			return err
		}
		p, err := runProc(ctx, strata, "render", "--env", benchEnv, "--repo", repo.Dir, "-o", "yaml")
		if err != nil {
			return err
		}
		r.renderYAML = append(r.renderYAML, p.wall)
	}
	if out, err := exec.CommandContext(ctx, kubectl, "--kubeconfig", filepath.Join(kcdir, clusterNames[0]+".kubeconfig"), "version").CombinedOutput(); err == nil {
		for _, l := range strings.Split(string(out), "\n") {
			if v, ok := strings.CutPrefix(l, "Server Version: "); ok {
				r.kubeServer = strings.TrimSpace(v)
			}
		}
	}
	r.recreations = cl.Recreations
	r.loadAfter = results.LoadAvg()

	if o.profile != "" {
		fmt.Fprintf(os.Stderr, "profiling in process into %s …\n", o.profile)
		if err := cl.Fresh(ctx); err != nil {
			return err
		}
		if r.profile, err = profileReconcile(ctx, o.profile, repo.Dir, kcdir); err != nil {
			return err
		}
	}

	var buf bytes.Buffer
	if o.reps == 0 {
		r.profile.text(&buf)
	} else {
		r.text(&buf)
	}
	os.Stdout.Write(buf.Bytes())
	if o.markdown != "" {
		if err := results.UpdateSection(o.markdown, sectionHeader, r.markdown()); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "updated %s\n", o.markdown)
	}
	return nil
}

// strataSide runs the first apply and the no-op on fresh clusters and
// checks that the first applied everything healthy and the second nothing.
func (r *report) strataSide(ctx context.Context, meter cpumeter.Meter, args []string) (strataRep, error) {
	var sr strataRep
	var err error
	a := meter.Read()
	if sr.first, err = runProc(ctx, args...); err != nil {
		return sr, err
	}
	b := meter.Read()
	sr.firstOther = cpumeter.OtherCores(a, b, sr.first.cpu)
	if sr.firstTable, err = parseResult(sr.first.stdout); err != nil {
		return sr, err
	}
	for _, c := range sr.firstTable {
		want := r.repo.Expected[c.name]
		if c.result != "ok" || c.objects != want || c.created != want || c.healthy != want {
			return sr, fmt.Errorf("first apply: cluster %s: want %d objects created and healthy, got %+v\n%s", c.name, want, c, sr.first.stdout)
		}
	}
	// The no-op gets a quiet machine too (a real no-op runs an interval later).
	if _, _, err := meter.WaitQuiet(ctx, r.opts.maxOther, r.opts.maxWait); err != nil {
		return sr, err
	}
	fmt.Fprintf(os.Stderr, "rep: strata: no-op …\n")
	a = meter.Read()
	if sr.noop, err = runProc(ctx, args...); err != nil {
		return sr, err
	}
	b = meter.Read()
	sr.noopOther = cpumeter.OtherCores(a, b, sr.noop.cpu)
	if sr.noopTable, err = parseResult(sr.noop.stdout); err != nil {
		return sr, err
	}
	for _, c := range sr.noopTable {
		want := r.repo.Expected[c.name]
		if c.result != "ok" || c.objects != want || c.created != 0 || c.configured != 0 || c.drifted != 0 || c.healthy != want {
			return sr, fmt.Errorf("no-op reconcile: cluster %s changed something or is not healthy: %+v\n%s", c.name, c, sr.noop.stdout)
		}
	}
	return sr, nil
}

// runProc runs args, capturing stdout and stderr, and times it.
func runProc(ctx context.Context, args ...string) (proc, error) {
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	self := childproc.SelfPeakKiB()
	start := time.Now()
	err := cmd.Run()
	p := proc{wall: time.Since(start), stdout: stdout.Bytes(), stderr: stderr.Bytes()}
	if cmd.ProcessState != nil {
		p.cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
		p.maxRSSKiB = childproc.ExitedPeakKiB(cmd.ProcessState, self)
	}
	if err != nil {
		if ctx.Err() != nil {
			return p, ctx.Err()
		}
		return p, fmt.Errorf("%s: %v\n%s%s", strings.Join(args, " "), err, tail(stdout.Bytes(), 30), tail(stderr.Bytes(), 30))
	}
	return p, nil
}

func tail(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{"…"}, lines[len(lines)-n:]...)
	}
	s := strings.Join(lines, "\n")
	if s != "" {
		s += "\n"
	}
	return s
}

// clusterRow is one line of `strata reconcile --once`'s result table.
type clusterRow struct {
	name, tier                                                    string
	objects, created, configured, pruned, moved, drifted, healthy int
	duration                                                      time.Duration
	result                                                        string
}

// parseResult reads the table printReconcile prints:
// CLUSTER TIER OBJECTS CREATED CONFIGURED PRUNED MOVED DRIFTED HEALTHY DURATION RESULT.
func parseResult(out []byte) ([]clusterRow, error) {
	var rows []clusterRow
	sc := bufio.NewScanner(bytes.NewReader(out))
	header := false
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) > 0 && f[0] == "CLUSTER" {
			header = true
			continue
		}
		if !header || len(f) < 11 {
			continue
		}
		var c clusterRow
		c.name, c.tier = f[0], f[1]
		ints := []*int{&c.objects, &c.created, &c.configured, &c.pruned, &c.moved, &c.drifted}
		for i, p := range ints {
			v, err := strconv.Atoi(f[2+i])
			if err != nil {
				return nil, fmt.Errorf("unexpected reconcile output line %q: %v", sc.Text(), err)
			}
			*p = v
		}
		h, _, _ := strings.Cut(f[8], "/")
		c.healthy, _ = strconv.Atoi(h)
		c.duration, _ = time.ParseDuration(f[9])
		c.result = strings.Join(f[10:], " ")
		rows = append(rows, c)
	}
	if len(rows) != len(clusterNames) {
		return nil, fmt.Errorf("expected a result line for each of %v in:\n%s", clusterNames, out)
	}
	return rows, nil
}

func secs(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }

var errNoModule = errors.New("no go.mod above the working directory: run from inside the strata module, or pass -strata BIN")
