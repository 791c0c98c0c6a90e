package inventory

import fluxmeta "github.com/fluxcd/pkg/apis/meta"

// Reasons of the Ready condition stored in Status, after
// fluxcd/pkg/apis/meta. The reconciler writes them; strata status and the
// status page read them as data, never by parsing messages.
const (
	ReasonSucceeded        = fluxmeta.ReconciliationSucceededReason
	ReasonApplyFailed      = "ApplyFailed"
	ReasonHealthFailed     = fluxmeta.HealthCheckFailedReason
	ReasonPruneFailed      = fluxmeta.PruneFailedReason
	ReasonMassPruneRefused = "MassPruneRefused"
	ReasonUnreachable      = "ClusterUnreachable"
	ReasonWaitingForMove   = "WaitingForMove"
	ReasonHistoryRewritten = "HistoryRewritten"
	// ReasonSuspended: strata suspend froze the cluster; nothing is applied
	// or pruned there until strata resume.
	ReasonSuspended = fluxmeta.SuspendedReason
	// ReasonGateRefused: the revision lacks the approvals it needs.
	ReasonGateRefused = "ApprovalRequired"
)
