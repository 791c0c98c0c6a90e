// Package endpoint serves strata's side HTTP endpoints — Prometheus
// metrics, the push hook — in the background of a long-running command.
package endpoint

import (
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Start serves h on addr until the returned func is called. An empty addr
// or "0" disables the endpoint (the returned func does nothing). what names
// the endpoint in logs.
func Start(addr string, h http.Handler, log *slog.Logger, what string) (stop func()) {
	if addr == "" || addr == "0" {
		return func() {}
	}
	srv := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error(what+" endpoint stopped", "addr", addr, "error", err)
		}
	}()
	return func() { _ = srv.Close() }
}

// Metrics serves MetricsHandler(g, extra) on addr (see Start).
func Metrics(addr string, g prometheus.Gatherer, log *slog.Logger, extra map[string]http.Handler) (stop func()) {
	return Start(addr, MetricsHandler(g, extra), log, "metrics")
}

// MetricsHandler serves the metrics of g at every path but those of
// extra, which serve their own handlers (pprof).
func MetricsHandler(g prometheus.Gatherer, extra map[string]http.Handler) http.Handler {
	h := promhttp.HandlerFor(g, promhttp.HandlerOpts{})
	if len(extra) == 0 {
		return h
	}
	mux := http.NewServeMux()
	mux.Handle("/", h)
	for p, x := range extra {
		mux.Handle(p, x)
	}
	return mux
}
