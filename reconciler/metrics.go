package reconciler

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metric names are part of strata's interface: the Grafana dashboard and
// alert rules use them.
const (
	MetricReconcileDuration  = "strata_reconcile_duration_seconds"
	MetricObjectsApplied     = "strata_objects_applied_total"
	MetricObjectsPruned      = "strata_objects_pruned_total"
	MetricDriftCorrected     = "strata_drift_corrected_total"
	MetricClusterReachable   = "strata_cluster_reachable"
	MetricRevisionInfo       = "strata_revision_info"
	MetricHealthWaitDuration = "strata_health_wait_duration_seconds"
	MetricReconcileErrors    = "strata_reconcile_errors_total"
	MetricObjectsMoved       = "strata_objects_moved_total"
	MetricGateEnforced       = "strata_approval_gate_enforced"
	MetricTrustPinned        = "strata_trust_root_pinned"
	MetricGateRefusals       = "strata_approval_gate_refusals_total"
	MetricClusterSuspended   = "strata_cluster_suspended"
	MetricObjectsHeld        = "strata_objects_held"
	MetricDirectApply        = "strata_direct_apply_total"
)

// Metrics are the reconciler's Prometheus metrics.
type Metrics struct {
	ReconcileDuration  *prometheus.HistogramVec
	ObjectsApplied     *prometheus.CounterVec
	ObjectsPruned      *prometheus.CounterVec
	DriftCorrected     *prometheus.CounterVec
	ClusterReachable   *prometheus.GaugeVec
	RevisionInfo       *prometheus.GaugeVec
	HealthWaitDuration *prometheus.HistogramVec
	ReconcileErrors    *prometheus.CounterVec
	ObjectsMoved       *prometheus.CounterVec
	GateEnforced       *prometheus.GaugeVec
	TrustPinned        *prometheus.GaugeVec
	GateRefusals       *prometheus.CounterVec
	ClusterSuspended   *prometheus.GaugeVec
	ObjectsHeld        *prometheus.GaugeVec
	DirectApply        *prometheus.CounterVec
}

// NewMetrics creates the metrics and registers them with reg when not nil.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	buckets := []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300}
	m := &Metrics{
		ReconcileDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: MetricReconcileDuration, Help: "Duration of a reconcile of one cluster (apply, wait, prune).", Buckets: buckets,
		}, []string{"environment", "cluster"}),
		ObjectsApplied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricObjectsApplied, Help: "Objects created or configured by server-side apply.",
		}, []string{"environment", "cluster", "action"}),
		ObjectsPruned: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricObjectsPruned, Help: "Objects deleted because they left the desired state.",
		}, []string{"environment", "cluster"}),
		DriftCorrected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricDriftCorrected, Help: "Objects changed or deleted by hand and restored by strata.",
		}, []string{"environment", "cluster"}),
		ClusterReachable: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: MetricClusterReachable, Help: "1 when the cluster's apiserver answers, 0 otherwise.",
		}, []string{"environment", "cluster"}),
		RevisionInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: MetricRevisionInfo, Help: "1 for the revision last applied to a cluster.",
		}, []string{"environment", "cluster", "revision"}),
		HealthWaitDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: MetricHealthWaitDuration, Help: "Time from apply until every object of a cluster is healthy.", Buckets: buckets,
		}, []string{"environment", "cluster"}),
		ReconcileErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricReconcileErrors, Help: "Failed reconciles of a cluster, by reason.",
		}, []string{"environment", "cluster", "reason"}),
		ObjectsMoved: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricObjectsMoved, Help: "Objects moved out of a cluster after becoming healthy in their new cluster.",
		}, []string{"environment", "cluster"}),
		GateEnforced: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: MetricGateEnforced, Help: "1 when the approval gate is enforced, 0 when strata.yaml turned it off (alert on 0).",
		}, []string{"environment"}),
		TrustPinned: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: MetricTrustPinned, Help: "1 when the reviewers' keys are pinned outside the repository (--trusted-keys).",
		}, []string{"environment"}),
		GateRefusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricGateRefusals, Help: "Revisions the approval gate refused to apply.",
		}, []string{"environment"}),
		ClusterSuspended: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: MetricClusterSuspended, Help: "1 while strata suspend freezes the environment in the cluster (nothing applied or pruned), 0 otherwise.",
		}, []string{"environment", "cluster"}),
		ObjectsHeld: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: MetricObjectsHeld, Help: "Objects that differ from git and are left as they are (strata.dev/reconcile: disabled).",
		}, []string{"environment", "cluster"}),
		DirectApply: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricDirectApply, Help: "Objects strata applied without ssa's dry-run (outcome applied: changed in git and untouched since strata last applied them, one round trip; or new to strata and absent from the cluster, a GET and the apply), or whose direct apply was refused and took the full dry-run path (outcome conflict: changed after strata listed it; exists: a new object's name was taken by an object strata never applied, which that path adopts or, if frozen, leaves alone; refused: any other refusal).",
		}, []string{"environment", "cluster", "outcome"}),
	}
	if reg != nil {
		reg.MustRegister(m.ReconcileDuration, m.ObjectsApplied, m.ObjectsPruned, m.DriftCorrected,
			m.ClusterReachable, m.RevisionInfo, m.HealthWaitDuration, m.ReconcileErrors, m.ObjectsMoved,
			m.GateEnforced, m.TrustPinned, m.GateRefusals, m.ClusterSuspended, m.ObjectsHeld, m.DirectApply)
	}
	return m
}
