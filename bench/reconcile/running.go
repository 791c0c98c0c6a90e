package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/strata-gitops/strata/bench/internal/childproc"
	"github.com/strata-gitops/strata/bench/internal/cpumeter"
	"github.com/strata-gitops/strata/bench/internal/gitserver"
	"github.com/strata-gitops/strata/bench/internal/waitfor"
	"github.com/strata-gitops/strata/internal/cluster"
	"github.com/strata-gitops/strata/internal/inventory"
	"github.com/strata-gitops/strata/internal/labels"
)

// Issue 16's goals for a running reconciler at 10,000 objects on three
// clusters.
const (
	goalRunningNoop   = 2 * time.Second
	goalRunningChange = 3 * time.Second
)

// runningSteps is how often each kind of timed step is repeated.
const runningSteps = 3

// Kinds of timed steps of the running phase.
const (
	stepNoop       = "no-op"
	stepConfigMap  = "ConfigMap data"
	stepDeployment = "Deployment pod template"
)

// runningIdle is the running reconciler's poll and drift interval: long, so
// that only the benchmark's push hooks make it reconcile.
const runningIdle = time.Hour

// pollEvery paces the wait: the reconciler's metrics (a local HTTP GET)
// until every cluster finished a reconcile, then the inventory status.
const pollEvery = 20 * time.Millisecond

// runStep is one timed step of the running reconciler.
type runStep struct {
	kind   string
	commit string
	// wall: from just before the hook request (or, for the start, the
	// process start) until every cluster's inventory status records the
	// commit with every object healthy.
	wall time.Duration
	// slowest is the longest per-cluster reconcile strata itself measured
	// (strata_reconcile_duration_seconds, sum/count over the step).
	slowest time.Duration
	// delta are the reconciler's counters over the step, summed over clusters.
	delta clusterCounters
	// rssKiB and hwmKiB are VmRSS and VmHWM of the process after the step.
	rssKiB, hwmKiB int64
	// cpu is the reconciler's CPU time during the step.
	cpu time.Duration
	// other is the other jobs' CPU use during the step, otherBefore just
	// before it (after waiting for a quiet machine), in CPUs.
	other, otherBefore float64
}

// runningRep is the running-reconciler phase of one rep.
type runningRep struct {
	start   runStep
	steps   []runStep
	peakKiB int64 // VmHWM at the end of the phase
}

// running is a `strata reconcile` process following the branch of a git
// server, with its signed push hook and its metrics.
type running struct {
	proc    *childproc.Process
	hook    *gitserver.Hook
	metrics string
	connect *cluster.KubeconfigDir
	repo    *Repo
}

// runningPhase starts a long-running reconciler on the clusters the --once
// runs left applied and times a no-op and one-object changes triggered by
// its push hook.
func (r *report) runningPhase(ctx context.Context, meter cpumeter.Meter, strata, kcdir, work string) (runningRep, error) {
	var rr runningRep
	if err := os.MkdirAll(work, 0o755); err != nil {
		return rr, err
	}
	gs, err := gitserver.Start()
	if err != nil {
		return rr, err
	}
	defer gs.Stop()
	checkout := &gitserver.Work{Dir: r.repo.Dir}
	push := func() (string, error) {
		if _, err := checkout.Git(ctx, "push", "-q", gs.URL, "HEAD:refs/heads/main"); err != nil {
			return "", err
		}
		return checkout.Git(ctx, "rev-parse", "HEAD")
	}
	head, err := push()
	if err != nil {
		return rr, err
	}
	cfgPath := filepath.Join(r.repo.Dir, "overlays", "base", nsName(0), "configmaps.yaml")
	depPath := filepath.Join(r.repo.Dir, "overlays", "base", nsName(0), "deployments.yaml")

	secret := make([]byte, 16)
	rand.Read(secret)
	secretHex := hex.EncodeToString(secret)
	secretFile := filepath.Join(work, "hook-secret")
	if err := os.WriteFile(secretFile, []byte(secretHex), 0o600); err != nil {
		return rr, err
	}
	hookPort, err := childproc.FreePort()
	if err != nil {
		return rr, err
	}
	metricsPort, err := childproc.FreePort()
	if err != nil {
		return rr, err
	}
	rn := &running{
		hook:    &gitserver.Hook{URL: fmt.Sprintf("http://127.0.0.1:%d%s", hookPort, labels.HookPath), Secret: []byte(secretHex)},
		metrics: fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort),
		connect: &cluster.KubeconfigDir{Dir: kcdir},
		repo:    r.repo,
	}
	defer rn.connect.Close()

	other, _, err := meter.WaitQuiet(ctx, r.opts.maxOther, r.opts.maxWait)
	if err != nil {
		return rr, err
	}
	fmt.Fprintf(os.Stderr, "running reconciler: starting (its log: %s) …\n", filepath.Join(work, "strata.log"))
	a := meter.Read()
	t0 := time.Now()
	rn.proc, err = childproc.Start("strata reconcile", filepath.Join(work, "strata.log"), nil, strata,
		"reconcile", "--repo", gs.URL, "--branch", "main", "--env", benchEnv, "--kubeconfig-dir", kcdir,
		"--interval", runningIdle.String(), "--drift-interval", runningIdle.String(),
		"--hook-addr", fmt.Sprintf("127.0.0.1:%d", hookPort), "--hook-secret-file", secretFile,
		"--metrics-addr", fmt.Sprintf("127.0.0.1:%d", metricsPort), "--cache-dir", filepath.Join(work, "cache"), "--enable-pprof")
	if err != nil {
		return rr, err
	}
	defer rn.proc.Stop()
	rr.start, err = rn.wait(ctx, "start", head, t0, map[string]clusterCounters{})
	if err != nil {
		return rr, err
	}
	b := meter.Read()
	rr.start.cpu = rn.proc.CPU()
	rr.start.other, rr.start.otherBefore = cpumeter.OtherCores(a, b, 0), other
	if err := checkStep(rr.start, r.repo); err != nil {
		return rr, err
	}
	fmt.Fprintf(os.Stderr, "running reconciler: first reconcile (cold caches) %s, RSS %s\n", secs(rr.start.wall), mib(rr.start.rssKiB))

	edits := map[string]func(i int) error{
		stepNoop: func(i int) error {
			return appendFile(filepath.Join(r.repo.Dir, "README.md"), fmt.Sprintf("\nbench/reconcile running step %d: a change outside the environment.\n", i))
		},
		stepConfigMap: func(i int) error {
			return editFile(cfgPath, func(s string) (string, error) { return setConfigMapValue(s, i) })
		},
		stepDeployment: func(i int) error {
			return editFile(depPath, func(s string) (string, error) { return setPodTemplateAnnotation(s, i) })
		},
	}
	for i := 1; i <= runningSteps; i++ {
		for _, kind := range []string{stepNoop, stepConfigMap, stepDeployment} {
			if err := edits[kind](i); err != nil {
				return rr, err
			}
			if _, err := checkout.Commit(ctx, fmt.Sprintf("bench: running step %d: %s", i, kind)); err != nil {
				return rr, err
			}
			commit, err := push()
			if err != nil {
				return rr, err
			}
			other, _, err := meter.WaitQuiet(ctx, r.opts.maxOther, r.opts.maxWait)
			if err != nil {
				return rr, err
			}
			before, err := rn.counters(ctx)
			if err != nil {
				return rr, err
			}
			cpu0 := rn.proc.CPU()
			a := meter.Read()
			t0 := time.Now()
			if err := rn.hook.Notify(ctx, commit); err != nil {
				return rr, err
			}
			st, err := rn.wait(ctx, kind, commit, t0, before)
			if err != nil {
				return rr, err
			}
			b := meter.Read()
			st.cpu = rn.proc.CPU() - cpu0
			st.other, st.otherBefore = cpumeter.OtherCores(a, b, 0), other
			if err := checkStep(st, r.repo); err != nil {
				return rr, err
			}
			fmt.Fprintf(os.Stderr, "running reconciler: %s %d/%d: %s (slowest cluster by strata %s), RSS %s, peak %s\n",
				kind, i, runningSteps, secs(st.wall), secs(st.slowest), mib(st.rssKiB), mib(st.hwmKiB))
			rr.steps = append(rr.steps, st)
		}
	}
	_, rr.peakKiB = procMemory(rn.proc.Pid())
	if r.opts.profile != "" {
		// What the process holds after the phase (after a GC), for
		// `go tool pprof -sample_index=inuse_space`.
		p := filepath.Join(r.opts.profile, "running.heap.pprof")
		if err := fetchTo(ctx, fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/heap?gc=1", metricsPort), p); err != nil {
			return rr, fmt.Errorf("heap profile of the running reconciler: %w", err)
		}
		fmt.Fprintf(os.Stderr, "running reconciler: heap profile in %s\n", p)
	}
	return rr, nil
}

// fetchTo writes the body of GET url into file.
func fetchTo(ctx context.Context, url, file string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// wait polls until every cluster finished a reconcile since before (by the
// reconciler's metrics) and its inventory status records commit with every
// expected object healthy and no error; the step's wall time runs from t0.
func (rn *running) wait(ctx context.Context, kind, commit string, t0 time.Time, before map[string]clusterCounters) (runStep, error) {
	st := runStep{kind: kind, commit: commit}
	var after map[string]clusterCounters
	done := map[string]bool{}
	err := waitfor.Until(ctx, 3*time.Minute, pollEvery, func(ctx context.Context) (bool, error) {
		if rn.proc.Exited() {
			return false, waitfor.Fatal{Err: fmt.Errorf("strata reconcile exited: %v", rn.proc.Err)}
		}
		var err error
		if after, err = rn.counters(ctx); err != nil {
			return false, err
		}
		for _, c := range clusterNames {
			if after[c].reconciles <= before[c].reconciles {
				return false, fmt.Errorf("cluster %s: no reconcile finished yet", c)
			}
		}
		for _, c := range clusterNames {
			if done[c] {
				continue
			}
			cl, err := rn.connect.Connect(c)
			if err != nil {
				return false, err
			}
			inv, err := inventory.LoadStatus(ctx, cl.Client, benchEnv)
			if err != nil {
				return false, err
			}
			s, want := inv.Status, rn.repo.Expected[c]
			if s.LastError != "" && after[c].errors > before[c].errors {
				return false, waitfor.Fatal{Err: fmt.Errorf("cluster %s: reconcile of %.12s failed: %s", c, commit, s.LastError)}
			}
			if s.Revision != commit || s.LastError != "" || s.Objects != want || s.Healthy != want {
				return false, fmt.Errorf("cluster %s: inventory at %.12s, %d/%d objects healthy (want %d at %.12s) %s", c, s.Revision, s.Healthy, s.Objects, want, commit, s.LastError)
			}
			done[c] = true
		}
		return true, nil
	})
	st.wall = time.Since(t0)
	if err != nil {
		return st, fmt.Errorf("running reconciler, %s at %.12s: %w\nits log's tail:\n%s", kind, commit, err, rn.proc.Tail(30))
	}
	st.rssKiB, st.hwmKiB = procMemory(rn.proc.Pid())
	for _, c := range clusterNames {
		d := after[c].sub(before[c])
		st.delta = st.delta.add(d)
		if d.reconciles > 0 {
			st.slowest = max(st.slowest, time.Duration(d.seconds/d.reconciles*float64(time.Second)))
		}
	}
	return st, nil
}

// checkStep fails when a step did what its kind should not: a no-op (and
// the start, whose commit --once applied) applies, prunes or corrects
// nothing; a one-object change configures exactly one object.
func checkStep(st runStep, repo *Repo) error {
	d := st.delta
	want := clusterCounters{}
	if st.kind == stepConfigMap || st.kind == stepDeployment {
		want.configured = 1
	}
	if d.created != want.created || d.configured != want.configured || d.pruned != 0 || d.drifted != 0 || d.errors != 0 {
		return fmt.Errorf("running reconciler, %s at %.12s: want %v created and %v configured, nothing pruned or corrected and no error, got %+v (by its metrics)",
			st.kind, st.commit, want.created, want.configured, d)
	}
	return nil
}

// counters scrapes the reconciler's metrics.
func (rn *running) counters(ctx context.Context) (map[string]clusterCounters, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rn.metrics, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	c, err := parseCounters(resp.Body, benchEnv)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", rn.metrics, err)
	}
	return c, nil
}

// parseCounters reads each cluster's counters of environment env from the
// Prometheus text exposition r.
func parseCounters(r io.Reader, env string) (map[string]clusterCounters, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, err
	}
	return countersOf(mfs, env), nil
}

func editFile(path string, f func(string) (string, error)) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	out, err := f(string(data))
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return os.WriteFile(path, []byte(out), 0o644)
}

func appendFile(path, s string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(s); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
