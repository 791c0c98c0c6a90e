package webhook

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-gitops/strata/internal/labels"
)

// Metrics are the webhook's Prometheus metrics.
type Metrics struct {
	Requests   *prometheus.CounterVec
	Denials    *prometheus.CounterVec
	Latency    *prometheus.HistogramVec
	BreakGlass *prometheus.CounterVec
}

// NewMetrics creates the metrics and registers them with reg when not nil.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: labels.MetricWebhookRequests, Help: "Admission requests by tier, operation and outcome.",
		}, []string{"tier", "operation", "allowed"}),
		Denials: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: labels.MetricWebhookDenials, Help: "Denied admission requests by rule (sensitivity rule or policy name) and tier.",
		}, []string{"rule", "tier"}),
		Latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: labels.MetricWebhookLatency, Help: "Time to decide an admission request.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}, []string{"tier"}),
		BreakGlass: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: labels.MetricWebhookBreakGlass, Help: "Requests let through with the break-glass annotation.",
		}, []string{"tier"}),
	}
	if reg != nil {
		reg.MustRegister(m.Requests, m.Denials, m.Latency, m.BreakGlass)
	}
	return m
}
