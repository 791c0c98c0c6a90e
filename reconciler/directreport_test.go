package reconciler

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// A webhook in a less-trusted cluster can deny every direct apply, each
// with a message it chooses: every refusal is counted, but the log gets at
// most maxFallbackLogs lines plus one summary per cluster and reconcile,
// and the webhook's text stays one quoted value.
func TestRecordDirectBoundsRefusalLogs(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	r := &Reconciler{opts: Options{Metrics: NewMetrics(nil)}}
	res := &ClusterResult{Name: "public", DirectApplied: 5}
	for i := range 30 {
		reason := FallbackRefused
		if i%3 == 0 {
			reason = FallbackConflict
		}
		res.DirectFallbacks = append(res.DirectFallbacks, DirectFallback{
			Object: fmt.Sprintf("ConfigMap/app/cm-%02d", i), Reason: reason,
			Err: "denied\nlevel=ERROR msg=\"forged line\"",
		})
	}
	r.recordDirect(log, "prod", res)

	m := r.opts.Metrics.DirectApply
	for outcome, want := range map[string]float64{"applied": 5, FallbackConflict: 10, FallbackRefused: 20} {
		if got := testutil.ToFloat64(m.WithLabelValues("prod", "public", outcome)); got != want {
			t.Errorf("outcome %s: counted %v, want %v", outcome, got, want)
		}
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != maxFallbackLogs+1 {
		t.Fatalf("%d log lines, want %d (one per refusal up to the bound, then a summary):\n%s", len(lines), maxFallbackLogs+1, buf.String())
	}
	for _, l := range lines {
		if strings.HasPrefix(l, "level=ERROR") {
			t.Errorf("the webhook's message forged a log line: %s", l)
		}
	}
	if !strings.Contains(lines[len(lines)-1], "count=20") {
		t.Errorf("summary does not count the refusals left out: %s", lines[len(lines)-1])
	}
}
