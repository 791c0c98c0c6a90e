package reconciler

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/strata-gitops/strata/internal/inventory"
)

// A force-push that rewrites the applied history is refused; the clusters
// keep the last good state until it is allowed explicitly.
func TestForcePushIsRefused(t *testing.T) {
	env := "forcepush"
	g := newGitRepo(t)
	files := map[string]string{"strata.yaml": strataYAML(env, 100)}
	first := g.commit("first", merge(files, overlay(env, map[string]string{
		"ns": namespace("fp-vault", "restricted"),
		"cm": configMap("fp-vault", "keep", "v1", ""),
	})))
	r, cls := newTestReconciler(t, g, env, nil)
	ctx := context.Background()
	mustSucceed(t, r.ReconcileOnce(ctx))

	// Rewrite the branch: a commit that does not descend from the applied one.
	c, err := g.repo.CommitObject(plumbing.NewHash(first))
	if err != nil {
		t.Fatal(err)
	}
	orphan := &object.Commit{Author: c.Author, Committer: c.Author, Message: "rewritten", TreeHash: c.TreeHash}
	obj := g.repo.Storer.NewEncodedObject()
	if err := orphan.Encode(obj); err != nil {
		t.Fatal(err)
	}
	h, err := g.repo.Storer.SetEncodedObject(obj)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.repo.Storer.SetReference(plumbing.NewHashReference(plumbing.NewBranchReferenceName(g.branch()), h)); err != nil {
		t.Fatal(err)
	}
	res := r.ReconcileOnce(ctx)
	var hr *HistoryRewriteError
	if !errors.As(res.Err, &hr) {
		t.Fatalf("want HistoryRewriteError, got %v", res.Err)
	}
	if !strings.Contains(res.Err.Error(), "push a revert") {
		t.Errorf("message does not say what to do: %v", res.Err)
	}
	inv, _ := inventory.Load(ctx, cls[env+"-onprem"].Client, env)
	if inv.Status.Revision != first || !strings.Contains(inv.Status.LastError, "rewritten") {
		t.Errorf("status: revision %s lastError %q; want the old revision kept and the refusal recorded", inv.Status.Revision, inv.Status.LastError)
	}
	// A restarted reconciler remembers the applied revision from the clusters.
	fresh, _ := newTestReconciler(t, g, env, nil)
	if res := fresh.ReconcileOnce(ctx); !errors.As(res.Err, &hr) {
		t.Errorf("after a restart: want HistoryRewriteError, got %v", res.Err)
	}
	r.opts.AllowNonFastForward = true
	mustSucceed(t, r.ReconcileOnce(ctx))
}

// A revision whose health wait is stuck does not block the revert that
// fixes it: the newer revision cancels the wait.
func TestNewRevisionCancelsHealthWait(t *testing.T) {
	env := "cancelwait"
	g := newGitRepo(t)
	g.commit("first", merge(map[string]string{"strata.yaml": strataYAML(env, 100)}, overlay(env, map[string]string{
		"ns": namespace("cw-vault", "restricted"),
		"cm": configMap("cw-vault", "keep", "v1", ""),
	})))
	// envtest runs no controllers: this Deployment never becomes Available.
	stuck := "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: stuck\n  namespace: cw-vault\nspec:\n  selector:\n    matchLabels: {app: stuck}\n  template:\n    metadata:\n      labels: {app: stuck}\n    spec:\n      containers:\n      - name: c\n        image: registry.onprem.example.internal/never:1\n"
	bad := g.commit("bad", overlay(env, map[string]string{
		"ns": namespace("cw-vault", "restricted"), "cm": configMap("cw-vault", "keep", "v1", ""), "stuck": stuck,
	}))
	r, cls := newTestReconciler(t, g, env, func(o *Options) {
		o.HealthTimeout = 5 * time.Minute
		o.Interval, o.DriftInterval, o.WatchInterval = time.Minute, time.Minute, 200*time.Millisecond
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	trigger := make(chan struct{}, 1)
	done := make(chan struct{})
	go func() { _ = r.Run(ctx, trigger); close(done) }()
	defer func() { cancel(); <-done }()

	onprem := cls[env+"-onprem"]
	waitFor(t, 20*time.Second, func() bool {
		inv, err := inventory.Load(ctx, onprem.Client, env)
		return err == nil && len(inv.Entries) == 3 // the bad revision is applied and waiting
	})
	_ = bad
	start := time.Now()
	revert := g.commit("Revert \"bad\"", merge(overlay(env, map[string]string{
		"ns": namespace("cw-vault", "restricted"), "cm": configMap("cw-vault", "keep", "v1", ""),
	}), map[string]string{"overlays/" + env + "/stuck.yaml": ""}))
	trigger <- struct{}{}
	waitFor(t, 30*time.Second, func() bool {
		inv, err := inventory.Load(ctx, onprem.Client, env)
		return err == nil && inv.Status.Revision == revert && len(inv.Entries) == 2
	})
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("the revert took %s while the bad revision's 5m health wait was running", d)
	} else {
		t.Logf("revert applied %s after the push, during the bad revision's health wait", d.Round(time.Millisecond))
	}
}
