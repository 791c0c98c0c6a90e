// Package statuspage renders strata status as a read-only web page for the
// on-call engineer (strata status --serve ADDR): environments × clusters
// with revision, health, drift, pending approvals, the last break-glass
// admissions and, when a revision failed its health check, the rollback
// command to run. The page is one html/template with inline CSS, no
// scripts and no external assets; it refreshes itself with a meta refresh.
//
// The data comes from a Source, asked at most once per cache period, so
// that tests render fixed data and the CLI reads live clusters (Live).
package statuspage

import (
	"context"
	"time"

	"github.com/strata-gitops/strata/internal/inventory"
)

// Source gathers what the page shows.
type Source interface {
	Snapshot(ctx context.Context) (*Snapshot, error)
}

// SourceFunc adapts a function to Source.
type SourceFunc func(ctx context.Context) (*Snapshot, error)

// Snapshot implements Source.
func (f SourceFunc) Snapshot(ctx context.Context) (*Snapshot, error) { return f(ctx) }

// Snapshot is the status of every environment shown, read at Time.
type Snapshot struct {
	Time         time.Time
	Environments []Environment
	// BreakGlass lists break-glass admissions recorded as Events in
	// strata-system of the reachable clusters, in any order (the page shows
	// the newest).
	BreakGlass []BreakGlass
	// EventErrors say for which clusters the events could not be read.
	EventErrors []string
	// Subjects maps a commit (full or short, as it appears in the statuses)
	// to its subject line, when the config repository knows it.
	Subjects map[string]string
}

// Environment is one environment and its clusters, in strata.yaml order.
type Environment struct {
	Name     string
	Clusters []Cluster
}

// Cluster is one cluster's row.
type Cluster struct {
	Name string
	Tier string
	// Reachable is true when the apiserver answered.
	Reachable bool
	// Error says why the status could not be read (no credentials,
	// unreachable, unreadable inventory); empty when Status is valid.
	Error string
	// Reconciled is false when the cluster has no inventory of the
	// environment yet.
	Reconciled bool
	// Status is the inventory status strata stored in the cluster.
	Status inventory.Status
	// Suspension is the cluster's suspension as recorded there now (strata
	// suspend); nil when it is not suspended.
	Suspension *inventory.Suspension
}

// BreakGlass is one break-glass admission (an Event with reason BreakGlass).
type BreakGlass struct {
	Time    time.Time
	Cluster string
	User    string
	Reason  string
	Message string
	Count   int32
}
