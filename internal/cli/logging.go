package cli

import (
	"context"
	"fmt"
	"log/slog"
	"slices"

	runtimeclient "github.com/fluxcd/pkg/runtime/client"
	"github.com/fluxcd/pkg/runtime/leaderelection"
	"github.com/fluxcd/pkg/runtime/logger"
	"github.com/go-logr/logr"
	"github.com/spf13/pflag"
)

// runtimeFlags are the flags strata shares with Flux's controllers, bound
// by fluxcd/pkg/runtime itself so that their names, defaults and meanings
// are Flux's: --kube-api-qps, --kube-api-burst, --log-level,
// --log-encoding, --enable-leader-election and --leader-election-*.
type runtimeFlags struct {
	client   runtimeclient.Options
	log      logger.Options
	election leaderelection.Options
	// logr is the logger loggers built, for controller-runtime.
	logr logr.Logger
}

func (f *runtimeFlags) bind(fs *pflag.FlagSet) {
	f.client.BindFlags(fs)
	f.log.BindFlags(fs)
	f.election.BindFlags(fs)
	// The name strata used before it took Flux's.
	fs.BoolVar(&f.election.Enable, "leader-elect", false, "elect a leader among replicas")
	_ = fs.MarkDeprecated("leader-elect", "use --enable-leader-election")
}

// logEncodings and logLevels are the values runtime/logger knows; it
// ignores any other silently, strata refuses them.
var (
	logEncodings = []string{"json", "console"}
	logLevels    = []string{"trace", "debug", "info", "error"}
)

// loggers builds the process's logger with fluxcd/pkg/runtime/logger (zap,
// ISO 8601 times, to stderr), makes it controller-runtime's and klog's, and
// returns it as slog for strata's code and as logr for controller-runtime.
func (f *runtimeFlags) loggers() (*slog.Logger, logr.Logger, error) {
	if !slices.Contains(logEncodings, f.log.LogEncoding) {
		return nil, logr.Logger{}, fmt.Errorf("--log-encoding %q is not supported: use one of %v", f.log.LogEncoding, logEncodings)
	}
	if !slices.Contains(logLevels, f.log.LogLevel) {
		return nil, logr.Logger{}, fmt.Errorf("--log-level %q is not supported: use one of %v", f.log.LogLevel, logLevels)
	}
	l := logger.NewLogger(f.log)
	logger.SetLogger(l)
	f.logr = l
	return slog.New(zapLevels{logr.ToSlogHandler(l)}), l, nil
}

// zapLevels maps slog's levels below Info onto zap's, which --log-level
// names: slog's Debug (-4) is zap's debug (-1), anything lower zap's trace
// (-2). Without it strata's debug logs would need --log-level below trace.
type zapLevels struct{ slog.Handler }

func zapLevel(l slog.Level) slog.Level {
	switch {
	case l >= slog.LevelInfo:
		return l
	case l >= slog.LevelDebug:
		return -1
	}
	return -2
}

func (h zapLevels) Enabled(ctx context.Context, l slog.Level) bool {
	return h.Handler.Enabled(ctx, zapLevel(l))
}

func (h zapLevels) Handle(ctx context.Context, r slog.Record) error {
	r.Level = zapLevel(r.Level)
	return h.Handler.Handle(ctx, r)
}

func (h zapLevels) WithAttrs(as []slog.Attr) slog.Handler { return zapLevels{h.Handler.WithAttrs(as)} }
func (h zapLevels) WithGroup(name string) slog.Handler    { return zapLevels{h.Handler.WithGroup(name)} }
