// Package reconciler is strata's reconcile loop: fetch → render → place →
// apply per cluster (server-side apply) → wait for health (kstatus) → prune
// from the per-cluster inventory → record. Clusters are reconciled
// concurrently and independently; an object that changes cluster is pruned
// from the old one only once it is healthy in the new one.
package reconciler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/strata-gitops/strata/internal/cluster"
	"github.com/strata-gitops/strata/internal/inventory"
	"github.com/strata-gitops/strata/internal/labels"

	"github.com/strata-gitops/strata/internal/approval"
	"github.com/strata-gitops/strata/internal/audit"
	"github.com/strata-gitops/strata/internal/config"
	"github.com/strata-gitops/strata/internal/desired"
	"github.com/strata-gitops/strata/internal/rollback"
	"github.com/strata-gitops/strata/internal/secrets"
	"github.com/strata-gitops/strata/internal/source"
)

// Options tune a Reconciler.
type Options struct {
	Environment string
	// Revision is the branch (or tag, or commit) to follow.
	Revision string
	// Self, when set, is agent mode: only this cluster is reconciled.
	Self string
	// Peers, in agent mode, reads the other clusters' inventories (read-only
	// credentials): an object that moved to another cluster is pruned here
	// only once that cluster records it applied and healthy (peers.go).
	// Nil: it is pruned at once (no make-before-break across agents).
	Peers cluster.Connector
	// Interval is the poll interval of Run.
	Interval time.Duration
	// DriftInterval is how often Run checks for drift between revisions.
	DriftInterval time.Duration
	// HealthTimeout overrides strata.yaml's rollout.healthTimeout when > 0.
	HealthTimeout time.Duration
	// AllowMassPrune lifts rollout.maxPrunePercent.
	AllowMassPrune bool
	// AllowNonFastForward accepts a branch whose history was rewritten
	// (force-push); rollout.allowNonFastForward of the applied revision
	// does the same.
	AllowNonFastForward bool
	// PollInterval is kstatus' poll interval during health waits: a poll
	// lists only strata's objects of the kinds waited for (statusreader.go),
	// so it can be short; it bounds how late a converged cluster is noticed.
	PollInterval time.Duration
	// WatchInterval is how often Run looks for a newer revision while one
	// is rolling out.
	WatchInterval time.Duration
	// TrustedKeys pins the root of trust: the fingerprints of the reviewers'
	// keys that may approve a revision with no approved revision before it.
	TrustedKeys approval.Pin
	// Identity authors (and may sign) strata's auto-revert commits.
	Identity rollback.Identity
	// AgeKeys holds the private keys of the tiers this reconciler serves;
	// encrypted Secrets are decrypted with the cluster's tier's key only.
	AgeKeys secrets.KeyDir
	// Now is the clock windows are opened and closed by; nil is time.Now.
	Now     func() time.Time
	Log     *slog.Logger
	Metrics *Metrics
}

// DefaultOptions returns the reconciler's defaults.
func DefaultOptions() Options {
	return Options{
		Revision: "main", Interval: time.Minute, DriftInterval: 30 * time.Second,
		PollInterval: 500 * time.Millisecond, WatchInterval: 2 * time.Second, Log: slog.Default(),
		Identity: rollback.Identity{Name: "strata", Email: "strata@strata.dev"},
	}
}

// Reconciler keeps an environment's clusters at a git revision.
type Reconciler struct {
	repo    *source.Repository
	connect cluster.Connector
	opts    Options

	mu sync.Mutex
	// last is the previous reconcile's result.
	last *Result
	// cache holds the last render, reused while neither the commit nor the
	// set of reachable clusters changes.
	cache *renderCache
	// lastApplied is the last commit applied without a render failure; a
	// new commit must descend from it (no force-push) unless allowed.
	lastApplied string
	// waitCtx bounds health waits; Run cancels it when a newer revision
	// arrives so that a stuck rollout never blocks its own fix.
	waitMu   sync.Mutex
	waitCtx  context.Context
	applying string
	// chain is the approval gate: it decides from git alone.
	chain *approval.Chain
	// recorded are the revisions the clusters' inventories say were applied
	// (read until every cluster answered): they only make strata more
	// cautious (the history check), they never approve anything.
	recorded     map[string]string
	bootstrapped bool
	// autoReverted holds the commits strata reverted itself.
	autoReverted map[string]bool
	// audit keeps, in each cluster, the record of what strata did there.
	audit *audit.Writers
}

// HistoryRewriteError is a branch whose new head does not descend from the
// last applied commit.
type HistoryRewriteError struct {
	Branch, Applied, New string
}

func (e *HistoryRewriteError) Error() string {
	return fmt.Sprintf("branch %s was rewritten: %s does not descend from the applied revision %s, so strata keeps the clusters as they are; push a revert instead of rewriting history, or allow it once with --allow-force-push (rollout.allowNonFastForward)",
		e.Branch, short(e.New), short(e.Applied))
}

type renderCache struct {
	commit, healthy, targets string
	// fingerprint names the render's inputs (desired.Fingerprint); "" when
	// unknown.
	fingerprint string
	cfg         *config.Config
	plan        *rolloutPlan
	st          *desired.State
	gate        *approval.Verdict
}

// withRevision returns the cached state and plan as those of revision: the
// same objects, stamped with revision where they change.
func (c *renderCache) withRevision(revision string) (*desired.State, *rolloutPlan) {
	st, plan := *c.st, *c.plan
	st.Revision, plan.revision = revision, revision
	return &st, &plan
}

func healthyKey(h map[string]bool) string {
	keys := make([]string, 0, len(h))
	for k, v := range h {
		if v {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return strings.Join(keys, ",")
}

// New returns a Reconciler for repo whose clusters are reached through connect.
func New(repo *source.Repository, connect cluster.Connector, opts Options) *Reconciler {
	def := DefaultOptions()
	if opts.Revision == "" {
		opts.Revision = def.Revision
	}
	if opts.Interval <= 0 {
		opts.Interval = def.Interval
	}
	if opts.DriftInterval <= 0 {
		opts.DriftInterval = def.DriftInterval
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = def.PollInterval
	}
	if opts.WatchInterval <= 0 {
		opts.WatchInterval = def.WatchInterval
	}
	if opts.Log == nil {
		opts.Log = def.Log
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics(nil)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Reconciler{repo: repo, connect: connect, opts: opts,
		chain: &approval.Chain{Repo: repo, Env: opts.Environment, Pin: opts.TrustedKeys},
		audit: &audit.Writers{Source: "reconciler", Options: audit.WriterOptions{Environment: opts.Environment}}}
}

// Close writes out the audit events still buffered.
func (r *Reconciler) Close(ctx context.Context) error { return r.audit.Close(ctx) }

// auditor returns the audit writer of a cluster.
func (r *Reconciler) auditor(cl *cluster.Cluster) *audit.Writer {
	return r.audit.For(cl.Name, cl.Client)
}

// FetchError is a failed fetch or render: nothing was applied or pruned.
type FetchError struct {
	Stage string
	Err   error
}

func (e *FetchError) Error() string {
	return fmt.Sprintf("%s failed, nothing applied or pruned in any cluster: %v", e.Stage, e.Err)
}

func (e *FetchError) Unwrap() error { return e.Err }

// Result is the outcome of one reconcile.
type Result struct {
	Revision *source.Revision
	// Clusters holds one result per cluster of the environment, in strata.yaml order.
	Clusters []*ClusterResult
	// Err is a fetch, render, placement, history or approval failure (then
	// no cluster was touched).
	Err error
	// Gate is the approval gate's decision for the revision.
	Gate *approval.Verdict
	// AutoRevert is the commit strata pushed to revert a revision that
	// failed its health check (rollout.autoRevert).
	AutoRevert string
	// healthy is the reachable set placement used.
	healthy map[string]bool
}

// Cluster returns the result of the named cluster.
func (r *Result) Cluster(name string) *ClusterResult {
	for _, c := range r.Clusters {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// Failed reports whether the reconcile or any cluster failed.
func (r *Result) Failed() bool {
	if r.Err != nil {
		return true
	}
	for _, c := range r.Clusters {
		if c.Err != nil {
			return true
		}
	}
	return false
}

// ReconcileOnce fetches, renders and places the revision and reconciles
// every cluster of the environment (or only Self).
func (r *Reconciler) ReconcileOnce(ctx context.Context) *Result {
	res := r.reconcile(ctx)
	r.mu.Lock()
	r.last = res
	r.mu.Unlock()
	return res
}

func (r *Reconciler) reconcile(ctx context.Context) *Result {
	log := r.opts.Log.With("environment", r.opts.Environment)
	if err := r.repo.Fetch(ctx); err != nil {
		return &Result{Err: &FetchError{Stage: "fetch", Err: err}}
	}
	rev, err := r.repo.ResolveBranch(r.opts.Revision)
	if err != nil {
		return &Result{Err: &FetchError{Stage: "fetch", Err: err}}
	}
	res := &Result{Revision: rev}
	r.setApplying(rev.Commit)
	defer func() {
		if res.Err == nil {
			r.lastApplied = rev.Commit
			for c := range r.recorded {
				r.recorded[c] = "" // an ancestor of lastApplied: checkHistory passed
			}
		}
	}()
	now := r.opts.Now()
	if c := r.cache; c != nil && c.commit == rev.Commit {
		// Same commit: reuse strata.yaml; render again only if reachability
		// changed or a window opened or closed.
		env, _ := c.cfg.Environment(r.opts.Environment)
		res.healthy = r.probe(ctx, env, r.targets(env))
		if c.healthy == healthyKey(res.healthy) && slices.Equal(c.st.Windows, c.cfg.OpenWindows(r.opts.Environment, now)) {
			res.Gate = c.gate
			res.Clusters = r.rollout(ctx, c.cfg, c.st, rev, c.plan, res.healthy)
			r.autoRevert(ctx, c.cfg, res)
			return res
		}
	}
	snap, err := r.repo.Snapshot(rev)
	if err != nil {
		res.Err = &FetchError{Stage: "fetch", Err: err}
		return res
	}
	cfg, err := desired.LoadConfig(snap)
	if err != nil {
		res.Err = &FetchError{Stage: "render", Err: err}
		log.Error("strata.yaml invalid; nothing applied or pruned", "commit", rev.Short(), "error", err)
		return res
	}
	r.audit.SetRetention(cfg.Audit.MaxAgeOrDefault(), cfg.Audit.MaxBytesOrDefault())
	env, err := cfg.Environment(r.opts.Environment)
	if err != nil {
		res.Err = &FetchError{Stage: "render", Err: err}
		return res
	}
	r.bootstrap(ctx, env)
	if err := r.checkHistory(rev); err != nil {
		log.Error("history rewrite refused; nothing applied or pruned", "commit", rev.Short(), "error", err)
		return r.refuse(ctx, res, env, r.targets(env), rev, err)
	}
	targets := r.targets(env)
	res.healthy = r.probe(ctx, env, targets)
	dopts := desired.Options{Render: desired.DefaultOptions().Render, Healthy: res.healthy, Now: now}
	fp := desired.Fingerprint(snap, cfg, r.opts.Environment, dopts)
	var st *desired.State
	var reused *rolloutPlan
	var windowsBefore []string
	hadBefore := r.cache != nil && r.cache.st != nil
	if hadBefore {
		windowsBefore = r.cache.st.Windows
	}
	if c := r.cache; c != nil && fp != "" && c.fingerprint == fp && c.healthy == healthyKey(res.healthy) && c.targets == healthyKey(targets) {
		// Nothing the environment renders changed (a commit elsewhere in
		// the repository): the objects and their placement are the last
		// revision's. Only the revision differs; the gate still judges it.
		st, reused = c.withRevision(snap.RevisionLabel())
		log.Debug("render unchanged; reusing the last revision's objects", "commit", rev.Short(), "from", short(c.commit))
	} else {
		if c := r.cache; c != nil {
			// Not reused: let the last revision's objects and plan go
			// before the new ones are built, so that the two never fill
			// the heap together. Its strata.yaml stays for checkHistory.
			r.cache = &renderCache{cfg: c.cfg}
		}
		st, err = desired.Build(snap, cfg, r.opts.Environment, dopts)
	}
	if err == nil && hadBefore && !slices.Equal(windowsBefore, st.Windows) {
		log.Info("windows changed", "open", st.Windows, "before", windowsBefore)
	}
	if err == nil {
		d, gerr := r.gate(rev)
		if gerr != nil {
			log.Error("approval gate could not judge the revision; nothing applied", "commit", rev.Short(), "error", gerr)
			return r.refuse(ctx, res, env, targets, rev, gerr)
		}
		if !d.Allowed {
			gerr := &GateError{Environment: r.opts.Environment, Revision: rev.Commit, Decision: d.Decision}
			log.Warn("revision not approved; nothing applied", "commit", rev.Short(), "gate", d.Message)
			res.Gate = d
			return r.refuse(ctx, res, env, targets, rev, gerr)
		}
		plan := reused
		if plan == nil {
			plan, err = newRolloutPlan(st, targets)
			if fp == "" {
				// The first render of these inputs filled the unit cache.
				fp = desired.Fingerprint(snap, cfg, r.opts.Environment, dopts)
			}
		}
		if err == nil {
			r.cache = &renderCache{commit: rev.Commit, healthy: healthyKey(res.healthy), targets: healthyKey(targets), fingerprint: fp,
				cfg: cfg, plan: plan, st: st, gate: d}
			res.Gate = d
			res.Clusters = r.rollout(ctx, cfg, st, rev, plan, res.healthy)
			r.autoRevert(ctx, cfg, res)
			return res
		}
	}
	log.Error("render failed; nothing applied or pruned", "commit", rev.Short(), "error", err)
	return r.refuse(ctx, res, env, targets, rev, &FetchError{Stage: "render", Err: err})
}

// refuse records, in every reachable target cluster, why rev was not
// applied, leaving the clusters as they are.
func (r *Reconciler) refuse(ctx context.Context, res *Result, env config.Environment, targets map[string]bool, rev *source.Revision, err error) *Result {
	res.Err = err
	var ge *GateError
	for _, c := range env.Clusters {
		cr := &ClusterResult{Name: c.Name, Tier: string(c.Tier), Skipped: !targets[c.Name], Err: err, gate: res.Gate}
		res.Clusters = append(res.Clusters, cr)
		if targets[c.Name] && (res.healthy == nil || res.healthy[c.Name]) {
			r.recordFailure(ctx, cr, rev)
			if cl, cerr := r.connect.Connect(c.Name); cerr == nil && errors.As(err, &ge) {
				r.auditor(cl).Record(audit.Event{Kind: audit.GateRefused, Commit: rev.Commit, Cluster: c.Name, Tier: string(c.Tier),
					Sensitivity: string(ge.Decision.Sensitivity), Actor: "strata", Message: ge.Decision.Message})
			}
		}
	}
	return res
}

// recordFailure stores a render failure in a cluster's status, keeping its
// inventory and applied revision as they are.
func (r *Reconciler) recordFailure(ctx context.Context, cr *ClusterResult, rev *source.Revision) {
	cl, err := r.connect.Connect(cr.Name)
	if err != nil {
		return
	}
	inv, err := inventory.Load(ctx, cl.Client, r.opts.Environment)
	if err != nil {
		return
	}
	cr.inv, cr.prev, cr.Reachable, cr.Revision = inv, inv.Status, true, rev.Commit
	cr.Objects = len(inv.Entries)
	cr.Suspended, _ = inventory.LoadSuspension(ctx, cl.Client, r.opts.Environment) // shown with the refusal
	if err := r.saveInventory(ctx, cl, cr, inv.Entries); err != nil {
		r.opts.Log.Error("could not store status", "cluster", cr.Name, "error", err)
	}
	invRef := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: labels.SystemNamespace, Name: labels.InventoryName(r.opts.Environment)}}
	cl.Recorder.AnnotatedEventf(invRef, map[string]string{labels.Revision: rev.Commit}, corev1.EventTypeWarning, reasonOf(cr),
		"revision %s not applied: %v", rev.Short(), cr.Err)
}

// checkHistory refuses a commit that does not descend from the last
// applied one, nor from any revision a cluster records as applied (after a
// restart). Cluster records only add refusals here: a forged record can
// stop strata, never make it apply.
func (r *Reconciler) checkHistory(rev *source.Revision) error {
	if r.opts.AllowNonFastForward || (r.cache != nil && r.cache.cfg.Rollout.AllowNonFastForward) {
		return nil
	}
	seen := map[string]bool{}
	for _, applied := range append([]string{r.lastApplied}, sortedValues(r.recorded)...) {
		if applied == "" || seen[applied] {
			continue
		}
		seen[applied] = true
		ok, err := r.repo.IsAncestor(applied, rev.Commit)
		if err != nil {
			return &FetchError{Stage: "fetch", Err: err}
		}
		if !ok {
			return &HistoryRewriteError{Branch: r.opts.Revision, Applied: applied, New: rev.Commit}
		}
	}
	return nil
}

func sortedValues(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}

// bootstrap reads what the clusters' inventories say was applied, for the
// history check, until every cluster has answered once: a cluster down at
// start-up is read when it comes back.
func (r *Reconciler) bootstrap(ctx context.Context, env config.Environment) {
	if r.bootstrapped {
		return
	}
	if r.recorded == nil {
		r.recorded = map[string]string{}
	}
	complete := true
	for _, c := range env.Clusters {
		if _, done := r.recorded[c.Name]; done || (r.opts.Self != "" && c.Name != r.opts.Self) {
			continue
		}
		cl, err := r.connect.Connect(c.Name)
		if err != nil {
			complete = false
			continue
		}
		inv, err := inventory.LoadStatus(ctx, cl.Client, r.opts.Environment)
		if err != nil {
			complete = false
			r.opts.Log.Warn("cannot read the applied revision of a cluster yet; will retry", "cluster", c.Name, "error", err)
			continue
		}
		r.recorded[c.Name] = inv.Status.Revision
	}
	r.bootstrapped = complete
}

func (r *Reconciler) setApplying(commit string) {
	r.waitMu.Lock()
	defer r.waitMu.Unlock()
	r.applying = commit
}

// healthContext returns the context health waits use.
func (r *Reconciler) healthContext(ctx context.Context) context.Context {
	r.waitMu.Lock()
	defer r.waitMu.Unlock()
	if r.waitCtx != nil {
		return r.waitCtx
	}
	return ctx
}

// targets returns the clusters this process reconciles.
func (r *Reconciler) targets(env config.Environment) map[string]bool {
	out := map[string]bool{}
	for _, c := range env.Clusters {
		if r.opts.Self == "" || c.Name == r.opts.Self {
			out[c.Name] = true
		}
	}
	return out
}

// probe asks every cluster of the environment whether it answers; the
// answer feeds placement (failover) and the reachable gauge.
func (r *Reconciler) probe(ctx context.Context, env config.Environment, targets map[string]bool) map[string]bool {
	var mu sync.Mutex
	healthy := map[string]bool{}
	var wg sync.WaitGroup
	for _, c := range env.Clusters {
		if r.opts.Self != "" && !targets[c.Name] {
			// An agent cannot see the other clusters; it assumes them up so
			// that its own share does not change with their health. (Under
			// mu: the probes of earlier clusters may be writing already.)
			mu.Lock()
			healthy[c.Name] = true
			mu.Unlock()
			continue
		}
		wg.Add(1)
		go func(name string) {
			defer wg.Done()
			ok := false
			if cl, err := r.connect.Connect(name); err == nil {
				ok = cl.Reachable(ctx) == nil
			}
			mu.Lock()
			healthy[name] = ok
			mu.Unlock()
			v := 0.0
			if ok {
				v = 1
			}
			r.opts.Metrics.ClusterReachable.WithLabelValues(r.opts.Environment, name).Set(v)
		}(c.Name)
	}
	wg.Wait()
	return healthy
}

// Last returns the result of the previous reconcile, if any.
func (r *Reconciler) Last() *Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

// IsTransient reports whether err may go away by itself (an unreachable
// cluster, a timeout) as opposed to needing a change in git.
func IsTransient(err error) bool {
	var fe *FetchError
	if errors.As(err, &fe) {
		return fe.Stage == "fetch"
	}
	var mp *MassPruneError
	var hr *HistoryRewriteError
	var ge *GateError
	return !errors.As(err, &mp) && !errors.As(err, &hr) && !errors.As(err, &ge)
}

// healthTimeout reads the override under the lock SetHealthTimeout takes.
func (r *Reconciler) healthTimeout() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.opts.HealthTimeout
}

// SetHealthTimeout overrides strata.yaml's rollout.healthTimeout (0 uses it).
func (r *Reconciler) SetHealthTimeout(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.opts.HealthTimeout = d
}
