package main

import (
	"context"
	"time"
)

// A tool is one side of a scenario: strata or Flux (default or tuned), started fresh against
// the scenario's clusters and repository, told about each push the way its
// users would (strata's push hook; for Flux what `flux reconcile
// kustomization --with-source` does).
type tool interface {
	name() string
	// start starts the tool's processes following repoURL's main branch
	// and returns when it has applied head and every cluster is healthy.
	start(ctx context.Context, sc *setup, head string, want map[string]int) error
	// trigger asks for a reconcile right now (after a push, or for a no-op).
	trigger(ctx context.Context, commit string) error
	// wait returns when every cluster has commit applied with want objects
	// healthy; noop waits for a reconcile of an unchanged commit to finish.
	wait(ctx context.Context, commit string, want map[string]int, noop bool) error
	// reconcileCount is how many reconciles (summed over the clusters) the
	// tool has finished since it started, by its own account.
	reconcileCount(ctx context.Context) (int, error)
	// usage is the peak RSS (summed over the tool's processes) and CPU so far.
	usage() (usage, error)
	stop()
}

// setup is what a scenario gives a tool.
type setup struct {
	env      string
	clusters []string
	repoURL  string
	kcdir    string // <cluster>.kubeconfig files
	work     string // a directory for the tool's files and logs
	timeout  time.Duration
}
