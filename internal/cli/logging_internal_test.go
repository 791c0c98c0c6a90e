package cli

import (
	"encoding/json"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	runtimeclient "github.com/fluxcd/pkg/runtime/client"
	"github.com/fluxcd/pkg/runtime/leaderelection"
	"github.com/fluxcd/pkg/runtime/logger"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/spf13/pflag"
)

// The reconciler's runtime flags are Flux's: same names, same defaults,
// parsed into fluxcd/pkg/runtime's option types.
func TestRuntimeFlagsHaveFluxNames(t *testing.T) {
	cmd := newReconcileCommand()
	for _, name := range []string{"kube-api-qps", "kube-api-burst", "log-level", "log-encoding", "enable-leader-election",
		"leader-election-release-on-cancel", "leader-election-lease-duration", "leader-election-renew-deadline", "leader-election-retry-period"} {
		if cmd.Flags().Lookup(name) == nil {
			t.Errorf("strata reconcile has no --%s", name)
		}
	}
	tests := []struct {
		name string
		args []string
		want runtimeFlags
	}{
		{"defaults", nil, runtimeFlags{
			client:   runtimeclient.Options{QPS: 50, Burst: 300},
			log:      logger.Options{LogEncoding: "json", LogLevel: "info"},
			election: leaderelection.Options{ReleaseOnCancel: true, LeaseDuration: 35 * time.Second, RenewDeadline: 30 * time.Second, RetryPeriod: 5 * time.Second},
		}},
		{"set", []string{"--kube-api-qps=12.5", "--kube-api-burst=30", "--log-level=debug", "--log-encoding=console",
			"--enable-leader-election", "--leader-election-lease-duration=20s", "--leader-election-release-on-cancel=false"}, runtimeFlags{
			client:   runtimeclient.Options{QPS: 12.5, Burst: 30},
			log:      logger.Options{LogEncoding: "console", LogLevel: "debug"},
			election: leaderelection.Options{Enable: true, LeaseDuration: 20 * time.Second, RenewDeadline: 30 * time.Second, RetryPeriod: 5 * time.Second},
		}},
		{"old name still elects", []string{"--leader-elect"}, runtimeFlags{
			client:   runtimeclient.Options{QPS: 50, Burst: 300},
			log:      logger.Options{LogEncoding: "json", LogLevel: "info"},
			election: leaderelection.Options{Enable: true, ReleaseOnCancel: true, LeaseDuration: 35 * time.Second, RenewDeadline: 30 * time.Second, RetryPeriod: 5 * time.Second},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got runtimeFlags
			fs := pflag.NewFlagSet("reconcile", pflag.ContinueOnError)
			fs.SetOutput(io.Discard)
			got.bind(fs)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(runtimeFlags{}), cmpopts.IgnoreFields(runtimeFlags{}, "logr")); diff != "" {
				t.Errorf("parsed flags (-want +got):\n%s", diff)
			}
		})
	}
	// The reconcile command binds the same set: a flag value reaches it.
	if err := cmd.ParseFlags([]string{"--kube-api-burst=7", "--log-level=trace"}); err != nil {
		t.Fatal(err)
	}
	if v, _ := cmd.Flags().GetInt("kube-api-burst"); v != 7 {
		t.Errorf("--kube-api-burst = %d, want 7", v)
	}
}

// captureStderr returns what fn writes to os.Stderr: runtime/logger's zap
// writes to the os.Stderr of the moment the logger is built.
func captureStderr(t *testing.T, fn func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stderr
	os.Stderr = w
	fn()
	os.Stderr = old
	w.Close()
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// --log-level and --log-encoding reach strata's slog logs: levels filter,
// encodings format, unknown values are refused.
func TestLogLevelAndEncoding(t *testing.T) {
	tests := []struct {
		encoding, level string
		// wantLevels are the levels written, in order; console lines are
		// checked for their capitalised level instead of parsed.
		wantLevels []string
	}{
		{"json", "info", []string{"info", "warn", "error"}},
		{"json", "debug", []string{"debug", "info", "warn", "error"}},
		{"json", "error", []string{"error"}},
		{"console", "info", []string{"INFO", "WARN", "ERROR"}},
	}
	for _, tt := range tests {
		t.Run(tt.encoding+"-"+tt.level, func(t *testing.T) {
			f := runtimeFlags{log: logger.Options{LogEncoding: tt.encoding, LogLevel: tt.level}}
			out := captureStderr(t, func() {
				log, _, err := f.loggers()
				if err != nil {
					t.Fatal(err)
				}
				log.Debug("d", "cluster", "onprem")
				log.Info("i", "cluster", "onprem")
				log.Warn("w", "cluster", "onprem")
				log.Error("e", "cluster", "onprem")
			})
			var lines []string
			for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
				if l == "" {
					continue
				}
				if tt.encoding == "console" {
					if strings.HasPrefix(strings.TrimSpace(l), "{") {
						t.Errorf("console encoding wrote JSON: %s", l)
					}
					for _, lv := range []string{"DEBUG", "INFO", "WARN", "ERROR"} {
						if strings.Contains(l, "\t"+lv+"\t") {
							lines = append(lines, lv)
						}
					}
					continue
				}
				var m map[string]any
				if err := json.Unmarshal([]byte(l), &m); err != nil {
					t.Fatalf("json encoding wrote %q: %v", l, err)
				}
				if m["cluster"] != "onprem" {
					t.Errorf("attribute lost: %s", l)
				}
				lines = append(lines, m["level"].(string))
			}
			if diff := cmp.Diff(tt.wantLevels, lines); diff != "" {
				t.Errorf("levels written (-want +got):\n%s\noutput:\n%s", diff, out)
			}
		})
	}
	for _, bad := range []logger.Options{{LogEncoding: "text", LogLevel: "info"}, {LogEncoding: "json", LogLevel: "warn"}} {
		f := runtimeFlags{log: bad}
		if _, _, err := f.loggers(); err == nil || !strings.Contains(err.Error(), "is not supported") {
			t.Errorf("%+v: err = %v, want a refusal", bad, err)
		}
	}
}
