package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-gitops/strata/bench/internal/results"
	"github.com/strata-gitops/strata/internal/audit"
	"github.com/strata-gitops/strata/internal/labels"
	"github.com/strata-gitops/strata/internal/localcluster"
	"github.com/strata-gitops/strata/webhook"
)

const (
	clusterName = "bench"
	benchTier   = "private-cloud"
)

func run(ctx context.Context, o options) error {
	if o.markdown != "" {
		if err := results.CheckRecordable(o.markdown); err != nil {
			return err
		}
	}
	r := &report{opts: o, command: commandLine(), date: time.Now().UTC(), machine: results.ReadMachine()}
	root, err := results.ModuleRoot()
	if errors.Is(err, results.ErrNoModule) {
		return errNoModule
	}
	if err != nil {
		return err
	}
	r.root = root
	tmp, err := os.MkdirTemp("", "strata-bench-webhook-")
	if err != nil {
		return err
	}
	keepTmp := o.keepLogs
	defer func() {
		if keepTmp {
			fmt.Fprintf(os.Stderr, "kept %s\n", tmp)
			return
		}
		os.RemoveAll(tmp)
	}()

	// 1. strata
	strata := o.strata
	if strata == "" {
		strata = filepath.Join(tmp, "strata")
		start := time.Now()
		if err := results.BuildStrata(ctx, root, strata); err != nil {
			return err
		}
		r.strataBuild = fmt.Sprintf("built from %s%s with %s in %s", root, results.GitState(root), results.GoVersion(root), time.Since(start).Round(time.Second))
	} else {
		r.strataBuild = "given with -strata " + strata
	}

	// 2. one local cluster, for the webhook's Namespace informer
	m := localcluster.New(localcluster.Options{
		Home:     filepath.Join(tmp, "home"),
		Progress: &results.PrefixWriter{W: os.Stderr, Prefix: "  "},
		Volumes:  -1,
	})
	// However this run ends (even a panic in a goroutine), its cluster ends with it.
	if err := m.KillOnExit(); err != nil {
		return err
	}
	// Always delete the cluster, however run ends (error, panic, signal).
	defer func() {
		fmt.Fprintln(os.Stderr, "deleting the cluster …")
		dctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		if err := m.Down(dctx); err != nil {
			keepTmp = true
			fmt.Fprintf(os.Stderr, "bench/webhook: deleting the cluster failed: %v\n"+
				"  clean up by hand: STRATA_HOME=%s strata dev down (then rm -rf %s)\n", err, m.Home(), tmp)
		}
	}()
	fmt.Fprintf(os.Stderr, "creating local cluster %s …\n", clusterName)
	start := time.Now()
	if err := m.Up(ctx, clusterName); err != nil {
		return fmt.Errorf("creating the cluster: %w", err)
	}
	r.clusterUp = time.Since(start)
	rc, err := m.RESTConfig(clusterName)
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return err
	}
	if r.apiserver, err = cs.Discovery().ServerVersion(); err != nil {
		return fmt.Errorf("cluster %s: %w", clusterName, err)
	}
	for _, ns := range benchNamespaces {
		n := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns.name, Labels: namespaceLabels(ns.name, ns.sensitivity)}}
		if _, err := cs.CoreV1().Namespaces().Create(ctx, n, metav1.CreateOptions{FieldManager: "strata-bench"}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating Namespace %s: %w", ns.name, err)
		}
	}

	// The requests: the demo's prod overlay, defaulted by the apiserver.
	fmt.Fprintln(os.Stderr, "rendering overlays/prod and preparing the requests …")
	rendered, err := renderOverlay(root)
	if err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		return err
	}
	cases, err := buildCases(ctx, dyn, rendered)
	if err != nil {
		return err
	}
	pool, err := buildPool(cases, o.pool, o.seed)
	if err != nil {
		return err
	}
	r.cases, r.poolSize = cases, len(pool)

	// 3. certificates and the webhook
	certDir := filepath.Join(tmp, "certs")
	ca, err := webhook.EnsureCertificates(certDir, []string{"127.0.0.1", "localhost"})
	if err != nil {
		return fmt.Errorf("certificates: %w", err)
	}
	ports, err := freePorts(2)
	if err != nil {
		return err
	}
	addr, metricsAddr := fmt.Sprintf("127.0.0.1:%d", ports[0]), fmt.Sprintf("127.0.0.1:%d", ports[1])
	args := []string{strata, "webhook", "--cluster", clusterName, "--tier", benchTier,
		"--config", filepath.Join(root, "strata.yaml"), "--policies", filepath.Join(root, "policies"),
		"--cert-dir", certDir, "--kubeconfig", m.KubeconfigPath(clusterName), "--addr", addr, "--metrics-addr", metricsAddr}
	envs := []string{"GOMAXPROCS=1"}
	if o.env != "" {
		for _, kv := range strings.Split(o.env, ",") {
			if !strings.Contains(kv, "=") {
				return fmt.Errorf("-webhook-env %q: want KEY=VALUE,…", o.env)
			}
			envs = append(envs, strings.TrimSpace(kv))
		}
	}
	r.webhookArgs = strings.Join(envs, " ") + " strata " + strings.Join(args[1:], " ")
	if o.rt > 0 {
		// The webhook inherits it; back to normal before the teardown.
		if err := setScheduler(o.rt); err != nil {
			return err
		}
		defer func() {
			if err := setScheduler(0); err != nil {
				fmt.Fprintln(os.Stderr, "bench/webhook:", err)
			}
		}()
		r.webhookArgs = fmt.Sprintf("chrt -f %d ", o.rt) + r.webhookArgs
	}
	if o.nice != 0 {
		// The webhook inherits it.
		if err := renice(o.nice); err != nil {
			return err
		}
		r.webhookArgs = fmt.Sprintf("nice -n %d ", o.nice) + r.webhookArgs
	}
	wh, err := startWebhook(args, envs, filepath.Join(tmp, "webhook.log"))
	if err != nil {
		return err
	}
	defer wh.stop()
	hc, err := newClient(ca, o.inflight, o.http1)
	if err != nil {
		return err
	}
	base := "https://" + addr
	fmt.Fprintf(os.Stderr, "waiting for %s/healthz …\n", base)
	if r.conn, err = wh.waitHealthy(ctx, hc, base+"/healthz", time.Minute); err != nil {
		return err
	}
	metricsURL := "http://" + metricsAddr + "/metrics"
	if ms, err := scrape(ctx, metricsURL); err == nil {
		if v, ok := value(ms, "go_sched_gomaxprocs_threads", nil); ok {
			r.gomaxprocs = int(v)
		}
	}

	// 4. every body's verdict, once
	url := base + "/validate"
	fmt.Fprintf(os.Stderr, "checking the verdict of each of the %d bodies (%d cases) …\n", len(pool), len(cases))
	if r.sampleMsgs, err = verify(ctx, hc, url, pool, o.timeout); err != nil {
		return err
	}

	if o.quietLoad > 0 {
		r.quietWait = waitQuiet(ctx, o.quietLoad, o.quietMax)
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(o.settle):
	}
	if o.warmup > 0 {
		fmt.Fprintf(os.Stderr, "warm-up: %d req/s for %s (not measured) …\n", o.rate, o.warmup)
		w := runLoad(ctx, hc, url, pool, o.rate, o.warmup, o.inflight, o.timeout, 0)
		if err := ctx.Err(); err != nil {
			return err
		}
		r.warmupErrors = w.errors()
	}

	// 5. the measured run
	fmt.Fprintf(os.Stderr, "measuring: %d req/s for %s, open loop, at most %d in flight …\n", o.rate, o.duration, o.inflight)
	before, err := scrape(ctx, metricsURL)
	if err != nil {
		return fmt.Errorf("webhook metrics: %w", err)
	}
	p0, err := readProc(wh.pid())
	if err != nil {
		return fmt.Errorf("webhook process: %w", err)
	}
	r.loadBefore = results.LoadAvg()
	c0 := readCPUTimes()
	res := runLoad(ctx, hc, url, pool, o.rate, o.duration, o.inflight, o.timeout, o.rate*int(o.warmup/time.Second))
	c1 := readCPUTimes()
	r.loadAfter = results.LoadAvg()
	if err := ctx.Err(); err != nil {
		return err
	}
	p1, err := readProc(wh.pid())
	if err != nil {
		return fmt.Errorf("webhook process: %w", err)
	}
	after, err := scrape(ctx, metricsURL)
	if err != nil {
		return fmt.Errorf("webhook metrics: %w", err)
	}
	r.res, r.pool = res, pool
	r.machineBusy = busyFraction(c0, c1)
	r.procBefore, r.procAfter = p0, p1
	r.server = serverView(before, after)
	if exited := wh.exited(); exited != "" {
		return fmt.Errorf("the webhook exited during the run: %s\n%s", exited, wh.logTail(20))
	}
	r.webhookLogLines = wh.logLines()
	r.webhookSched = schedOf(wh.pid())
	r.audit = auditState(ctx, cs)
	if o.perf != "" {
		fmt.Fprintf(os.Stderr, "recording the webhook with perf during %s more of the same load …\n", o.perfDur)
		r.perf, err = perfProfile(ctx, wh.pid(), o.perf, o.perfDur, func(d time.Duration) {
			runLoad(ctx, hc, url, pool, o.rate, d, o.inflight, o.timeout, 0)
		})
		if err != nil {
			return fmt.Errorf("perf: %w", err)
		}
	}
	wh.stop()

	r.text(os.Stdout)
	if o.profile != "" {
		fmt.Fprintf(os.Stderr, "profiling webhook.Handler.ServeHTTP in this process for %s …\n", o.profDur)
		ac, err := client.New(rc, client.Options{})
		if err != nil {
			return err
		}
		if r.profile, err = profileHandler(ctx, root, pool, o.profile, o.profDur, ac); err != nil {
			return fmt.Errorf("profile: %w", err)
		}
		r.profile.text(os.Stdout)
	}
	if r.perf != nil {
		r.perf.text(os.Stdout)
	}
	if o.markdown != "" {
		if err := results.UpdateSection(o.markdown, sectionHeader, r.markdown()); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "wrote section %q of %s\n", sectionHeader, o.markdown)
	}
	return nil
}

// auditState describes the audit ConfigMaps the webhook wrote into
// strata-system of the benchmark cluster.
func auditState(ctx context.Context, cs kubernetes.Interface) string {
	list, err := cs.CoreV1().ConfigMaps(labels.SystemNamespace).List(ctx, metav1.ListOptions{LabelSelector: audit.Label + "=true"})
	if err != nil {
		return "could not list: " + err.Error()
	}
	size, lines := 0, 0
	for _, cm := range list.Items {
		for _, v := range cm.Data {
			size += len(v)
			lines += strings.Count(v, "\n")
		}
	}
	return fmt.Sprintf("%d audit ConfigMap(s) in %s after the run, %d lines (events; repeated denials of the same object, rule and user are one event with a count), %.0f KiB",
		len(list.Items), labels.SystemNamespace, lines, float64(size)/1024)
}

// serverWindow is the webhook's own view of the measured run, from its
// metrics endpoint (the difference between two scrapes).
type serverWindow struct {
	latency          histogram
	allowed, denied  float64
	gcCycles         float64
	found            bool
	latencyBucketsMs []float64
}

func serverView(before, after []promSample) serverWindow {
	tier := map[string]string{"tier": benchTier}
	h := readHistogram(after, labels.MetricWebhookLatency, tier).minus(readHistogram(before, labels.MetricWebhookLatency, tier))
	a1, _ := value(after, labels.MetricWebhookRequests, map[string]string{"tier": benchTier, "allowed": "true"})
	a0, _ := value(before, labels.MetricWebhookRequests, map[string]string{"tier": benchTier, "allowed": "true"})
	d1, _ := value(after, labels.MetricWebhookRequests, map[string]string{"tier": benchTier, "allowed": "false"})
	d0, _ := value(before, labels.MetricWebhookRequests, map[string]string{"tier": benchTier, "allowed": "false"})
	g1, _ := value(after, "go_gc_duration_seconds_count", nil)
	g0, _ := value(before, "go_gc_duration_seconds_count", nil)
	return serverWindow{latency: h, allowed: a1 - a0, denied: d1 - d0, gcCycles: g1 - g0, found: len(h.les) > 0}
}

// waitQuiet waits (at most most) until the 1-minute load average is below
// limit, and says how that went.
func waitQuiet(ctx context.Context, limit float64, most time.Duration) string {
	start := time.Now()
	deadline := start.Add(most)
	for ctx.Err() == nil {
		f := strings.Fields(results.LoadAvg())
		if len(f) > 0 {
			if v, err := strconv.ParseFloat(f[0], 64); err == nil && v < limit {
				return fmt.Sprintf("waited %s for the 1-minute load average to drop below %.2f", time.Since(start).Round(time.Second), limit)
			}
			if time.Now().After(deadline) {
				return fmt.Sprintf("waited %s for the 1-minute load average to drop below %.2f; it did not (%s), measured anyway", most, limit, f[0])
			}
			fmt.Fprintf(os.Stderr, "load average %s, waiting for it to drop below %.2f …\n", f[0], limit)
		}
		select {
		case <-ctx.Done():
		case <-time.After(5 * time.Second):
		}
	}
	return ""
}

func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// webhookProc is the strata webhook child process.
type webhookProc struct {
	cmd     *exec.Cmd
	logPath string
	log     *os.File
	done    chan struct{}
	waitErr error
	once    sync.Once
}

// startWebhook starts args with env added to this process's environment.
func startWebhook(args, env []string, logPath string) (*webhookProc, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	// Its own process group: a terminal's SIGINT reaches only this
	// program, which then stops the webhook itself.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("starting the webhook: %w", err)
	}
	w := &webhookProc{cmd: cmd, logPath: logPath, log: f, done: make(chan struct{})}
	go func() {
		w.waitErr = cmd.Wait()
		close(w.done)
	}()
	return w, nil
}

func (w *webhookProc) pid() int { return w.cmd.Process.Pid }

// exited describes how the process ended, or is "" while it runs.
func (w *webhookProc) exited() string {
	select {
	case <-w.done:
		if w.waitErr != nil {
			return w.waitErr.Error()
		}
		return "exit status 0"
	default:
		return ""
	}
}

// stop ends the process (SIGTERM, then SIGKILL after 10 s); idempotent.
func (w *webhookProc) stop() {
	w.once.Do(func() {
		select {
		case <-w.done:
		default:
			_ = w.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-w.done:
			case <-time.After(10 * time.Second):
				_ = w.cmd.Process.Kill()
				<-w.done
			}
		}
		w.log.Close()
	})
}

// waitHealthy polls url until it answers 200 and returns the negotiated
// protocol and TLS version.
func (w *webhookProc) waitHealthy(ctx context.Context, c *http.Client, url string, limit time.Duration) (string, error) {
	deadline := time.Now().Add(limit)
	for {
		if e := w.exited(); e != "" {
			return "", fmt.Errorf("the webhook exited before it was healthy (%s):\n%s", e, w.logTail(20))
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := c.Do(req); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				conn := resp.Proto
				if resp.TLS != nil {
					conn += " over " + tls.VersionName(resp.TLS.Version)
				}
				return conn, nil
			}
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("%s did not answer 200 within %s:\n%s", url, limit, w.logTail(20))
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (w *webhookProc) logTail(n int) string {
	data, err := os.ReadFile(w.logPath)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "  " + strings.Join(lines, "\n  ")
}

func (w *webhookProc) logLines() int {
	data, err := os.ReadFile(w.logPath)
	if err != nil {
		return 0
	}
	return bytes.Count(data, []byte("\n"))
}

var errNoModule = errors.New("no go.mod found above the working directory: run from the strata module")
