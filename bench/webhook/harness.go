package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-gitops/strata/internal/audit"
	"github.com/strata-gitops/strata/internal/config"
	"github.com/strata-gitops/strata/internal/policy"
	"github.com/strata-gitops/strata/webhook"
)

// profileResult is the in-process view: webhook.Handler.ServeHTTP called
// directly (no TLS, no HTTP server), GOMAXPROCS=1, under the CPU profiler.
type profileResult struct {
	dir          string
	calls        int
	wall, cpu    time.Duration
	lat          []time.Duration // sorted
	allocsPerReq float64
	bytesPerReq  float64
	gcCycles     uint32
	top          []string // go tool pprof -top (flat)
	cum          []string // go tool pprof -top -cum
	spots        [][3]string
}

// hotSpots are the functions whose cumulative share the report names
// (full pprof names, matched exactly).
var hotSpots = []struct{ fn, what string }{
	{"github.com/strata-gitops/strata/webhook.(*Handler).ServeHTTP", "the whole handler"},
	{"encoding/json.Unmarshal", "decoding the AdmissionReview into admissionv1 types (object/oldObject kept raw, but scanned twice: checkValid + skip)"},
	{"github.com/strata-gitops/strata/webhook.decodeObject", "decoding object and oldObject into map[string]any (k8s util/json = sigs.k8s.io/json)"},
	{"github.com/strata-gitops/strata/webhook.(*Checker).Check", "sensitivity check"},
	{"github.com/strata-gitops/strata/internal/policy.(*Set).Evaluate", "policy evaluation, total"},
	{"github.com/strata-gitops/strata/internal/policy.newRequest", "building the CEL inputs (request, object maps)"},
	{"github.com/strata-gitops/strata/internal/policy.normalize", "normalizing objects for CEL"},
	{"github.com/strata-gitops/strata/internal/policy.(*compiledPolicy).evaluate", "evaluating the policies' CEL programs"},
	{"github.com/google/cel-go/cel.(*prog).ContextEval", "CEL program evaluations (validations, variables, messages)"},
	{"k8s.io/apiserver/pkg/cel/lazy.(*MapValue).Find", "lazy `variables.*` evaluation"},
	{"github.com/google/cel-go/interpreter.NewCostTracker", "CEL runtime cost tracker built for every evaluation (the apiserver base env tracks cost)"},
	{"github.com/google/cel-go/interpreter.(*costTrackerFactory).Observe", "CEL cost tracking per evaluation step"},
	{"encoding/json.(*Encoder).Encode", "encoding the answer"},
	{"log/slog.(*Logger).Info", "logging the denial (JSON)"},
	{"github.com/prometheus/client_golang/prometheus.(*histogram).Observe", "latency histogram"},
	{"runtime.mapassign_faststr", "map inserts (JSON → maps, CEL)"},
	{"runtime.mallocgc", "allocation"},
	{"runtime.gcBgMarkWorker", "garbage collector (background marking)"},
	{"runtime.gcAssistAlloc", "garbage collector (assists)"},
}

// profileHandler profiles the handler with the policies of root, recording
// audit events into the cluster behind ac like the webhook does.
func profileHandler(ctx context.Context, root string, pool []*body, dir string, d time.Duration, ac client.Client) (*profileResult, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(root, "strata.yaml")
	data, err := os.ReadFile(cfgPath)
	if err != nil {
		return nil, err
	}
	cfg, err := config.Parse(cfgPath, data)
	if err != nil {
		return nil, err
	}
	set, err := policy.Load(os.DirFS(filepath.Join(root, "policies")), ".")
	if err != nil {
		return nil, err
	}
	nsLabels := map[string]map[string]string{}
	for _, n := range benchNamespaces {
		nsLabels[n.name] = namespaceLabels(n.name, n.sensitivity)
	}
	discard := slog.New(slog.NewJSONHandler(io.Discard, nil))
	aw := audit.NewWriter(ac, "webhook-bench-harness", audit.WriterOptions{
		Cluster: clusterName, Tier: benchTier, MaxBytes: 256 << 10, Log: discard})
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = aw.Close(cctx)
	}()
	h := &webhook.Handler{
		Audit:    aw,
		Checker:  webhook.NewChecker(cfg, clusterName, benchTier),
		Policies: set,
		Namespaces: func(name string) (map[string]string, bool) {
			l, ok := nsLabels[name]
			return l, ok
		},
		BreakGlassGroups: cfg.Webhook.BreakGlassGroups,
		Metrics:          webhook.NewMetrics(prometheus.NewRegistry()),
		// Formatted like the real webhook's log, then thrown away.
		Log: discard,
	}
	prev := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(prev)

	serve := func(b *body) error {
		req := httptest.NewRequest(http.MethodPost, "/validate", bytes.NewReader(b.data))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			return fmt.Errorf("%s: HTTP %d: %s", b.bcase.name, rec.Code, rec.Body.String())
		}
		return nil
	}
	// One checked pass (same verdicts as over HTTPS), which also warms up.
	for _, b := range pool {
		if err := serve(b); err != nil {
			return nil, err
		}
	}
	if err := checkVerdicts(h, pool); err != nil {
		return nil, err
	}
	runtime.GC()

	f, err := os.Create(filepath.Join(dir, "cpu.pprof"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	if err := pprof.StartCPUProfile(f); err != nil {
		return nil, err
	}
	p := &profileResult{dir: dir}
	cpu0 := selfCPU()
	start := time.Now()
	for i := 0; time.Since(start) < d && ctx.Err() == nil; i++ {
		t := time.Now()
		if err := serve(pool[i%len(pool)]); err != nil {
			pprof.StopCPUProfile()
			return nil, err
		}
		p.lat = append(p.lat, time.Since(t))
	}
	p.wall = time.Since(start)
	p.cpu = selfCPU() - cpu0
	pprof.StopCPUProfile()
	runtime.ReadMemStats(&m1)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p.calls = len(p.lat)
	slices.Sort(p.lat)
	p.allocsPerReq = float64(m1.Mallocs-m0.Mallocs) / float64(p.calls)
	p.bytesPerReq = float64(m1.TotalAlloc-m0.TotalAlloc) / float64(p.calls)
	p.gcCycles = m1.NumGC - m0.NumGC
	af, err := os.Create(filepath.Join(dir, "allocs.pprof"))
	if err != nil {
		return nil, err
	}
	defer af.Close()
	if err := pprof.Lookup("allocs").WriteTo(af, 0); err != nil {
		return nil, err
	}

	cpuProf := filepath.Join(dir, "cpu.pprof")
	flat, err := pprofTop(ctx, cpuProf, false)
	if err != nil {
		return nil, err
	}
	cum, err := pprofTop(ctx, cpuProf, true)
	if err != nil {
		return nil, err
	}
	allocTop, _ := pprofTopArgs(ctx, filepath.Join(dir, "allocs.pprof"), "-sample_index=alloc_space", "-top", "-nodecount=25")
	p.top, p.cum = firstRows(flat, 25), firstRows(cum, 40)
	for _, s := range hotSpots {
		for _, l := range cum {
			if f := strings.Fields(l); len(f) >= 6 && strings.TrimSuffix(strings.Join(f[5:], " "), " (inline)") == s.fn {
				p.spots = append(p.spots, [3]string{s.fn, f[4], s.what})
				break
			}
		}
	}
	txt := "# go tool pprof -top " + cpuProf + "\n" + strings.Join(flat, "\n") +
		"\n\n# go tool pprof -top -cum\n" + strings.Join(cum, "\n") +
		"\n\n# go tool pprof -sample_index=alloc_space -top allocs.pprof\n" + strings.Join(allocTop, "\n") + "\n"
	if err := os.WriteFile(filepath.Join(dir, "top.txt"), []byte(txt), 0o644); err != nil {
		return nil, err
	}
	return p, nil
}

// checkVerdicts sends each case's first body once more and checks the answer.
func checkVerdicts(h http.Handler, pool []*body) error {
	seen := map[*benchCase]bool{}
	for _, b := range pool {
		if seen[b.bcase] {
			continue
		}
		seen[b.bcase] = true
		req := httptest.NewRequest(http.MethodPost, "/validate", bytes.NewReader(b.data))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var a reviewAnswer
		if err := json.Unmarshal(rec.Body.Bytes(), &a); err != nil || a.Response == nil {
			return fmt.Errorf("%s: unreadable answer in process: %s", b.bcase.name, rec.Body.String())
		}
		if a.Response.Allowed != b.bcase.wantAllowed {
			return fmt.Errorf("%s: allowed=%v in process, want %v", b.bcase.name, a.Response.Allowed, b.bcase.wantAllowed)
		}
	}
	return nil
}

func pprofTop(ctx context.Context, file string, cum bool) ([]string, error) {
	args := []string{"-top", "-nodecount=300"}
	if cum {
		args = append(args, "-cum")
	}
	return pprofTopArgs(ctx, file, args...)
}

func pprofTopArgs(ctx context.Context, file string, args ...string) ([]string, error) {
	cmd := exec.CommandContext(ctx, "go", append(append([]string{"tool", "pprof"}, args...), file)...)
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go tool pprof %v: %v", args, err)
	}
	return strings.Split(strings.TrimRight(string(out), "\n"), "\n"), nil
}

// firstRows keeps pprof's header lines and the first n rows of the table.
func firstRows(lines []string, n int) []string {
	var out []string
	rows := 0
	inTable := false
	for _, l := range lines {
		if !inTable {
			out = append(out, l)
			if strings.Contains(l, "flat%") {
				inTable = true
			}
			continue
		}
		if rows == n {
			break
		}
		out = append(out, l)
		rows++
	}
	return out
}

func (p *profileResult) summary() string {
	return fmt.Sprintf("%d calls in %.1f s on one P: p50 %s ms, p99 %s ms, max %s ms, mean %s ms; CPU %.0f µs per request (%.0f req/s per core); %.0f allocations and %.0f KiB allocated per request; %d GC cycles",
		p.calls, p.wall.Seconds(), ms(pct(p.lat, 50)), ms(pct(p.lat, 99)), ms(pct(p.lat, 100)), ms(mean(p.lat)),
		float64(p.cpu.Microseconds())/float64(p.calls), float64(p.calls)/p.cpu.Seconds(), p.allocsPerReq, p.bytesPerReq/1024, p.gcCycles)
}

func (p *profileResult) text(w io.Writer) {
	fmt.Fprintf(w, "\nIn-process profile (webhook.Handler.ServeHTTP, GOMAXPROCS=1): %s\n", p.summary())
	for _, s := range p.spots {
		fmt.Fprintf(w, "  %7s  %-75s %s\n", s[1], s[0], s[2])
	}
	fmt.Fprintf(w, "profiles and full listings in %s (cpu.pprof, allocs.pprof, top.txt)\n", p.dir)
}

func (p *profileResult) markdown(b *strings.Builder) {
	b.WriteString("### In-process profile of the handler\n\n")
	fmt.Fprintf(b, "`go run ./bench/webhook -profile DIR` then calls `webhook.Handler.ServeHTTP` in its own process (httptest request and recorder, no TLS or HTTP server), with GOMAXPROCS=1, the same bodies in the same order, the same strata.yaml and policies, the same audit writer (denials buffered and written to ConfigMaps in strata-system of the benchmark cluster every 2 s) and a JSON logger writing to io.Discard, under the CPU profiler: %s.\n\n", p.summary())
	b.WriteString("Share of CPU samples below each function (cumulative, `go tool pprof -top -cum`):\n\n")
	b.WriteString("| function | cum % | what |\n|---|--:|---|\n")
	for _, s := range p.spots {
		fmt.Fprintf(b, "| `%s` | %s | %s |\n", s[0], s[1], s[2])
	}
	b.WriteString("\n<details><summary>go tool pprof -top (flat, first 25)</summary>\n\n```\n")
	b.WriteString(strings.Join(p.top, "\n"))
	b.WriteString("\n```\n</details>\n\n")
}
