package endpoint_test

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/pkg/runtime/pprof"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-gitops/strata/internal/endpoint"
)

// pprof is served next to the metrics only when asked for (--enable-pprof):
// a heap profile shows the process's memory.
func TestMetricsServePprofOnlyWhenAsked(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "strata_test_total", Help: "x"})
	reg.MustRegister(c)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, tc := range []struct {
		name  string
		extra map[string]http.Handler
		pprof bool
	}{{"default", nil, false}, {"enable-pprof", pprof.GetHandlers(), true}} {
		t.Run(tc.name, func(t *testing.T) {
			addr := freeAddr(t)
			stop := endpoint.Metrics(addr, reg, log, tc.extra)
			t.Cleanup(stop)
			if got := get(t, "http://"+addr+"/metrics"); !strings.Contains(got, "strata_test_total") {
				t.Errorf("/metrics = %.200q, want the registry's metrics", got)
			}
			heap := get(t, "http://"+addr+"/debug/pprof/heap?debug=1")
			if isProfile := strings.Contains(heap, "heap profile"); isProfile != tc.pprof {
				t.Errorf("/debug/pprof/heap served a profile: %t, want %t (%.100q)", isProfile, tc.pprof, heap)
			}
		})
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func get(t *testing.T, url string) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return string(b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %v", url, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
