package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/version"

	"github.com/strata-gitops/strata/bench/internal/results"
)

// sectionHeader is the header of the section -markdown maintains.
const sectionHeader = "## Admission: strata webhook latency"

type report struct {
	opts        options
	command     string
	date        time.Time
	machine     results.Machine
	root        string
	strataBuild string
	webhookArgs string
	conn        string // negotiated protocol and TLS version
	gomaxprocs  int
	clusterUp   time.Duration
	apiserver   *version.Info

	cases      []*benchCase
	pool       []*body
	poolSize   int
	sampleMsgs map[*benchCase]string

	warmupErrors int
	res          *loadResult
	server       serverWindow

	loadBefore, loadAfter string
	machineBusy           float64
	quietWait             string
	procBefore, procAfter procStats
	webhookLogLines       int

	profile      *profileResult
	perf         *perfResult
	webhookSched string
	audit        string
}

func (r *report) p99() time.Duration { return pct(r.res.latencies(nil), 99) }

func (r *report) pass() bool {
	return r.res.errors() == 0 && r.p99() <= r.opts.goalP99
}

func verdict(ok bool) string {
	if ok {
		return "PASS"
	}
	return "MISS"
}

func ms(d time.Duration) string {
	if d == time.Duration(math.MaxInt64) {
		return "∞ (dropped)"
	}
	return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond))
}

func msf(sec float64) string {
	if math.IsNaN(sec) {
		return "–"
	}
	if math.IsInf(sec, 1) {
		return "> 1000"
	}
	return fmt.Sprintf("%.2f", sec*1000)
}

func mib(kib int64) string { return fmt.Sprintf("%.0f MiB", float64(kib)/1024) }

// latencyRows are the latency table: one row per view.
func (r *report) latencyRows() [][]string {
	rows := [][]string{{"latency (ms)", "requests", "p50", "p90", "p99", "p99.9", "max", "mean"}}
	add := func(name string, ds []time.Duration) {
		rows = append(rows, []string{name, fmt.Sprint(len(ds)), ms(pct(ds, 50)), ms(pct(ds, 90)), ms(pct(ds, 99)), ms(pct(ds, 99.9)), ms(pct(ds, 100)), ms(mean(ds))})
	}
	all := r.res.latencies(nil)
	add("**client, from scheduled send — all requests**", all)
	add("client, allowed requests", r.res.latencies(func(s sample) bool { return r.pool[s.body].bcase.wantAllowed }))
	add("client, denied requests", r.res.latencies(func(s sample) bool { return !r.pool[s.body].bcase.wantAllowed }))
	add("client, from actual send (service time)", r.res.services())
	add("generator lag (scheduled → handed to the client)", r.res.lags())
	if r.server.found {
		h := r.server.latency
		q := func(x float64) string { e, _, _ := h.quantile(x); return msf(e) }
		_, lo, hi := h.quantile(1)
		maxS := "≤ " + msf(hi)
		if math.IsInf(hi, 1) {
			maxS = "> " + msf(lo)
		}
		rows = append(rows, []string{"server, `" + "strata_webhook_latency_seconds" + "` (bucket-interpolated)", fmt.Sprintf("%.0f", h.count),
			q(.5), q(.9), q(.99), q(.999), maxS, msf(h.sum / h.count)})
	}
	return rows
}

// caseRows are the per-case table.
func (r *report) caseRows() [][]string {
	rows := [][]string{{"request", "share", "expected", "body", "p50 ms", "p99 ms", "max ms", "errors"}}
	for _, c := range r.cases {
		lat := r.res.latencies(func(s sample) bool { return r.pool[s.body].bcase == c })
		errs := 0
		for _, s := range r.res.samples {
			if s.out != outOK && s.out != outCanceled && r.pool[s.body].bcase == c {
				errs++
			}
		}
		exp := "allowed"
		if !c.wantAllowed {
			exp = "denied: " + c.wantMsg
		}
		rows = append(rows, []string{c.name, fmt.Sprintf("%d %%", c.weight), exp, fmt.Sprintf("%.1f KiB", float64(c.objBytes)/1024),
			ms(pct(lat, 50)), ms(pct(lat, 99)), ms(pct(lat, 100)), fmt.Sprint(errs)})
	}
	return rows
}

func (r *report) mix() string {
	var allowed, update, n int
	sizes := make([]int, 0, len(r.pool))
	for _, b := range r.pool {
		n++
		if b.bcase.wantAllowed {
			allowed++
		}
		if b.bcase.old != nil {
			update++
		}
		sizes = append(sizes, len(b.data))
	}
	slices.Sort(sizes)
	return fmt.Sprintf("%d AdmissionReview v1 bodies (each with its own request uid, sent round-robin in a seeded shuffle) from %d cases: %d %% allowed / %d %% denied, %d %% UPDATE with oldObject / %d %% CREATE; body %.1f–%.1f KiB (median %.1f KiB)",
		n, len(r.cases), 100*allowed/n, 100-100*allowed/n, 100*update/n, 100-100*update/n,
		float64(sizes[0])/1024, float64(sizes[len(sizes)-1])/1024, float64(sizes[len(sizes)/2])/1024)
}

func (r *report) facts() [][2]string {
	res := r.res
	cnt := res.counts()
	sched := len(res.samples)
	span := res.lastSched.Sub(res.start) + time.Second/time.Duration(res.rate)
	sent := sched - cnt[outDropped] - cnt[outCanceled]
	answered := res.answered()
	var errParts []string
	for o := outVerdict; o < numOutcomes; o++ {
		if cnt[o] > 0 {
			part := fmt.Sprintf("%d %s", cnt[o], outcomeNames[o])
			if res.firstErr[o] != "" {
				part += fmt.Sprintf(" (first: %.200s)", res.firstErr[o])
			}
			errParts = append(errParts, part)
		}
	}
	errs := "0"
	if len(errParts) > 0 {
		errs = fmt.Sprintf("%d: %s", res.errors(), strings.Join(errParts, "; "))
	}
	protos := res.protocols()
	var protoParts []string
	for _, p := range []uint8{2, 1} {
		if protos[p] > 0 {
			protoParts = append(protoParts, fmt.Sprintf("HTTP/%d %d", p, protos[p]))
		}
	}
	pb, pa := r.procBefore, r.procAfter
	whCPU := pa.cpu - pb.cpu
	wall := res.end.Sub(res.start)
	facts := [][2]string{
		{"counts", fmt.Sprintf("%d scheduled over %.2f s (%.0f req/s), %d sent, %d answered; answers arrived at %.0f req/s (first scheduled send to last answer); at most %d in flight at once (limit %d)",
			sched, span.Seconds(), float64(sched)/span.Seconds(), sent, answered, float64(answered)/wall.Seconds(), res.maxInflight, res.inflight)},
		{"errors", errs},
		{"protocol", strings.Join(protoParts, ", ")},
	}
	if ws := res.windowP99s(); len(ws) > 0 {
		over := 0
		for _, w := range ws {
			if w > r.opts.goalP99 {
				over++
			}
		}
		sorted := slices.Clone(ws)
		slices.Sort(sorted)
		facts = append(facts, [2]string{"p99 per second", fmt.Sprintf("%d of %d one-second windows above %s; window p99s: best %s ms, median %s ms, worst %s ms",
			over, len(ws), r.opts.goalP99, ms(sorted[0]), ms(pct(sorted, 50)), ms(sorted[len(sorted)-1]))})
	}
	if r.server.found {
		h := r.server.latency
		facts = append(facts, [2]string{"server view", fmt.Sprintf("%s counted %.0f requests in the window (%.0f allowed, %.0f denied); %.2f %% decided in ≤ 1 ms, %.2f %% in ≤ 5 ms; %.0f GC cycles",
			"`strata_webhook_latency_seconds`", h.count, r.server.allowed, r.server.denied, 100*h.within(0.001), 100*h.within(0.005), r.server.gcCycles)})
	}
	facts = append(facts,
		[2]string{"webhook process", fmt.Sprintf("CPU %.2f s during the run = %.0f %% of its one core (GOMAXPROCS=%s), %.0f µs per answered request; peak RSS (VmHWM) %s, RSS at the end %s; %d threads; %d voluntary / %d involuntary context switches during the run; %d log lines (one per denial)",
			whCPU.Seconds(), 100*whCPU.Seconds()/wall.Seconds(), gomax(r.gomaxprocs), float64(whCPU.Microseconds())/float64(max(answered, 1)), mib(pa.hwmKiB), mib(pa.rssKiB), pa.threads,
			pa.volCtxSwitch-pb.volCtxSwitch, pa.nvCtxSwitch-pb.nvCtxSwitch, r.webhookLogLines)},
		[2]string{"generator process", fmt.Sprintf("CPU %.2f s during the run (%.0f %% of one core; client TLS, HTTP/2 and JSON included), GOMAXPROCS=%d",
			res.genCPU.Seconds(), 100*res.genCPU.Seconds()/wall.Seconds(), runtime.GOMAXPROCS(0))},
		[2]string{"machine load", fmt.Sprintf("load average before %s, after %s; all CPUs %.0f %% busy during the run (webhook, generator, kwok control plane and anything else on the machine)",
			r.loadBefore, r.loadAfter, 100*r.machineBusy)},
	)
	busyCore := r.machineBusy * float64(r.machine.NProc) * wall.Seconds()
	others := busyCore - whCPU.Seconds() - res.genCPU.Seconds()
	facts = append(facts, [2]string{"other work", fmt.Sprintf("everything but the webhook and the generator (the kwok control plane, other users' processes) used %.1f CPU-seconds during the run = %.2f of the %d CPUs on average; the webhook ran under %s",
		others, others/wall.Seconds(), r.machine.NProc, r.webhookSched)})
	if r.audit != "" {
		facts = append(facts, [2]string{"audit", r.audit})
	}
	if r.quietWait != "" {
		facts = append(facts, [2]string{"quiet wait", r.quietWait})
	}
	return facts
}

func gomax(n int) string {
	if n == 0 {
		return "1 (set; not reported by the metrics)"
	}
	return fmt.Sprint(n)
}

func (r *report) setup() [][2]string {
	apis := "unknown"
	if r.apiserver != nil {
		apis = r.apiserver.GitVersion
	}
	return [][2]string{
		{"date", r.date.Format("2006-01-02 15:04:05 UTC")},
		{"command", "`" + r.command + "`"},
		{"machine", fmt.Sprintf("%d CPUs (nproc), %s, %s", r.machine.NProc, r.machine.CPU, r.machine.Mem)},
		{"kernel", r.machine.Kernel},
		{"go", r.machine.GoVersion},
		{"strata", r.strataBuild},
		{"webhook", "`" + r.webhookArgs + "` (tier private-cloud, the demo's strata.yaml and all 6 policies of policies/; Namespace informer on the cluster below)"},
		{"cluster", fmt.Sprintf("one local kwok cluster (internal/localcluster), kube-apiserver %s, up in %.0f s; Namespaces %s", apis, r.clusterUp.Seconds(), nsList())},
		{"requests", r.mix() + "; objects are overlays/prod rendered with kustomize (krusty) and defaulted by a server-side-apply dry run on the cluster (uid, creationTimestamp, managedFields), UPDATEs carry an oldObject with status; every body's verdict (and the rule named in each denial) was checked once before the run"},
		{"load", fmt.Sprintf("open loop: request i is due at start + i/%d s, sent whether or not earlier ones were answered (a scheduler thread sleeping with nanosleep, one goroutine per request); latency counts from the due time, so generator lag and queueing count against the webhook; at most %d in flight (a request due beyond that is dropped = error); per-request timeout %s; %s of unmeasured warm-up at the same rate first (%d errors)",
			r.opts.rate, r.opts.inflight, r.opts.timeout, r.opts.warmup, r.warmupErrors)},
		{"client", clientDesc(r.opts.http1) + " (negotiated: " + r.conn + ")"},
	}
}

func clientDesc(http1 bool) string {
	if http1 {
		return "Go net/http, HTTP/1.1 keep-alive over TLS (trusting the webhook's CA), one connection per concurrent request, reused"
	}
	return "Go net/http, HTTP/2 over TLS (trusting the webhook's CA), connections kept, streams multiplexed, as the kube-apiserver calls webhooks"
}

func nsList() string {
	var parts []string
	for _, n := range benchNamespaces {
		parts = append(parts, n.name+" ("+n.sensitivity+")")
	}
	return strings.Join(parts, ", ")
}

func (r *report) headline() string {
	return fmt.Sprintf("p99 %s ms (p50 %s, max %s), %d errors at %d req/s for %s — %s",
		ms(r.p99()), ms(pct(r.res.latencies(nil), 50)), ms(pct(r.res.latencies(nil), 100)), r.res.errors(), r.opts.rate, r.opts.duration, verdict(r.pass()))
}

func (r *report) text(w io.Writer) {
	fmt.Fprintf(w, "\n%s\n\nResult: %s\n\n", strings.TrimPrefix(sectionHeader, "## "), r.headline())
	for _, f := range append(r.setup(), r.facts()...) {
		fmt.Fprintf(w, "%-18s %s\n", f[0]+":", f[1])
	}
	fmt.Fprintln(w)
	table(w, r.latencyRows())
	fmt.Fprintln(w)
	table(w, r.caseRows())
}

func (r *report) markdown() string {
	var b strings.Builder
	b.WriteString(sectionHeader + "\n\n")
	fmt.Fprintf(&b, "Goal: at a fixed %d req/s for %s of mixed allowed/denied AdmissionReviews over HTTPS on loopback, `strata webhook` with GOMAXPROCS=1 and the demo policies answers with p99 ≤ %s and 0 errors.\n\n",
		r.opts.rate, r.opts.duration, r.opts.goalP99)
	fmt.Fprintf(&b, "**Result: %s**\n\n", r.headline())
	if r.opts.note != "" {
		fmt.Fprintf(&b, "Note: %s\n\n", r.opts.note)
	}
	for _, f := range r.setup() {
		fmt.Fprintf(&b, "- %s: %s\n", f[0], f[1])
	}
	b.WriteString("\n")
	mdTable(&b, r.latencyRows())
	b.WriteString("\n")
	for _, f := range r.facts() {
		fmt.Fprintf(&b, "- %s: %s\n", f[0], f[1])
	}
	b.WriteString("\nPer request kind (latency from the scheduled send):\n\n")
	mdTable(&b, r.caseRows())
	b.WriteString("\nDenial messages as the webhook sent them (one per rule):\n\n")
	seen := map[string]bool{}
	for _, c := range r.cases {
		if c.wantAllowed || seen[c.wantMsg] {
			continue
		}
		seen[c.wantMsg] = true
		msg := r.sampleMsgs[c]
		if len(msg) > 300 {
			msg = msg[:300] + "…"
		}
		fmt.Fprintf(&b, "- %s: `%s`\n", c.name, strings.ReplaceAll(msg, "`", "'"))
	}
	b.WriteString("\n")
	if r.profile != nil {
		r.profile.markdown(&b)
	}
	if r.perf != nil {
		r.perf.markdown(&b)
	}
	return b.String()
}

func table(w io.Writer, rows [][]string) {
	widths := make([]int, len(rows[0]))
	for _, row := range rows {
		for i, c := range row {
			widths[i] = max(widths[i], len([]rune(strings.ReplaceAll(c, "**", ""))))
		}
	}
	for _, row := range rows {
		for i, c := range row {
			c = strings.ReplaceAll(c, "**", "")
			fmt.Fprintf(w, "%-*s  ", widths[i], c)
		}
		fmt.Fprintln(w)
	}
}

func mdTable(b *strings.Builder, rows [][]string) {
	b.WriteString("| " + strings.Join(rows[0], " | ") + " |\n")
	seps := make([]string, len(rows[0]))
	for i := range seps {
		seps[i] = "--:"
	}
	seps[0] = "---"
	b.WriteString("|" + strings.Join(seps, "|") + "|\n")
	for _, row := range rows[1:] {
		b.WriteString("| " + strings.Join(row, " | ") + " |\n")
	}
}

// commandLine is this run's command, with the -note text elided.
func commandLine() string {
	args := slices.Clone(os.Args[1:])
	for i := 0; i < len(args); i++ {
		switch {
		case args[i] == "-note" || args[i] == "--note":
			if i+1 < len(args) {
				args[i+1] = "…"
				i++
			}
		case strings.HasPrefix(args[i], "-note=") || strings.HasPrefix(args[i], "--note="):
			args[i] = args[i][:strings.Index(args[i], "=")+1] + "…"
		}
	}
	return strings.TrimSpace("go run ./bench/webhook " + strings.Join(args, " "))
}
