package cli

import (
	"io"
	"log/slog"
	"runtime/debug"
	"testing"
)

// --gc-percent sets the collector's target, and GOGC, when set, wins.
func TestReconcileGCPercent(t *testing.T) {
	prev := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(prev) })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	t.Setenv("GOGC", "")
	(&reconcileOptions{gcPercent: 50}).tuneGC(log)
	if got := debug.SetGCPercent(100); got != 50 {
		t.Errorf("with --gc-percent 50: GC percent %d, want 50", got)
	}

	t.Setenv("GOGC", "200")
	(&reconcileOptions{gcPercent: 50}).tuneGC(log)
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("with GOGC set: GC percent %d, want it left alone (100)", got)
	}
}
