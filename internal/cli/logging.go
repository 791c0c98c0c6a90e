package cli

import (
	"io"
	"log/slog"

	"github.com/go-logr/logr"
)

// newLogr adapts slog to the logr interface controller-runtime logs with.
func newLogr(w io.Writer) logr.Logger {
	return logr.FromSlogHandler(slog.NewJSONHandler(w, nil))
}
