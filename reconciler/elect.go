package reconciler

import (
	"context"
	"net/http"
	"sync"

	"github.com/fluxcd/pkg/runtime/leaderelection"
	"github.com/go-logr/logr"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/strata-gitops/strata/internal/labels"
)

// ElectionOptions tune RunElected.
type ElectionOptions struct {
	// ID names the lease; replicas of one environment share it.
	ID string
	// MetricsAddr serves controller-runtime's registry ("0" disables it).
	MetricsAddr string
	// MetricsHandlers are served on MetricsAddr too (pprof).
	MetricsHandlers map[string]http.Handler
	// Election are Flux's leader election options (--enable-leader-election,
	// --leader-election-release-on-cancel, --leader-election-lease-duration,
	// --leader-election-renew-deadline, --leader-election-retry-period);
	// zero durations use client-go's defaults. RunElected always elects.
	Election leaderelection.Options
	Log      logr.Logger
}

// setLoggerOnce guards controller-runtime's process-wide logger.
var setLoggerOnce sync.Once

// LeaseID returns the lease name of an environment's reconcilers.
func LeaseID(env string) string { return "strata-reconciler-" + env }

// RunElected runs loop under a controller-runtime manager with leader
// election in strata-system of the cluster behind cfg, so that of several
// replicas exactly one reconciles; the others wait to take over.
func RunElected(ctx context.Context, cfg *rest.Config, opts ElectionOptions, loop func(context.Context) error) error {
	setLoggerOnce.Do(func() { ctrl.SetLogger(opts.Log) })
	mo := ctrl.Options{
		Metrics:                       metricsserver.Options{BindAddress: opts.MetricsAddr, ExtraHandlers: opts.MetricsHandlers},
		HealthProbeBindAddress:        "0",
		LeaderElection:                true,
		LeaderElectionID:              opts.ID,
		LeaderElectionNamespace:       labels.SystemNamespace,
		LeaderElectionReleaseOnCancel: opts.Election.ReleaseOnCancel,
		Logger:                        opts.Log,
	}
	e := opts.Election
	if e.LeaseDuration > 0 {
		mo.LeaseDuration = &e.LeaseDuration
	}
	if e.RenewDeadline > 0 {
		mo.RenewDeadline = &e.RenewDeadline
	}
	if e.RetryPeriod > 0 {
		mo.RetryPeriod = &e.RetryPeriod
	}
	mgr, err := ctrl.NewManager(cfg, mo)
	if err != nil {
		return err
	}
	// A RunnableFunc needs leader election: it starts only on the leader.
	if err := mgr.Add(manager.RunnableFunc(loop)); err != nil {
		return err
	}
	return mgr.Start(ctx)
}
