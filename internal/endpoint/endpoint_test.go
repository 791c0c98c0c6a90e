package endpoint_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

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
	for _, tc := range []struct {
		name  string
		extra map[string]http.Handler
		pprof bool
	}{{"default", nil, false}, {"enable-pprof", pprof.GetHandlers(), true}} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(endpoint.MetricsHandler(reg, tc.extra))
			t.Cleanup(srv.Close)
			if got := get(t, srv.URL+"/metrics"); !strings.Contains(got, "strata_test_total") {
				t.Errorf("/metrics = %.200q, want the registry's metrics", got)
			}
			heap := get(t, srv.URL+"/debug/pprof/heap?debug=1")
			if isProfile := strings.Contains(heap, "heap profile"); isProfile != tc.pprof {
				t.Errorf("/debug/pprof/heap served a profile: %t, want %t (%.100q)", isProfile, tc.pprof, heap)
			}
		})
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
