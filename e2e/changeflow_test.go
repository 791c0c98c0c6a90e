package e2e

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/pkg/gittestserver"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-gitops/strata/internal/approval"
	"github.com/strata-gitops/strata/internal/cluster"
	"github.com/strata-gitops/strata/internal/inventory"
	"github.com/strata-gitops/strata/internal/localcluster"
	"github.com/strata-gitops/strata/internal/source"
	"github.com/strata-gitops/strata/reconciler"
)

// workClone is the platform team's checkout, pushing to a real git server
// over HTTP with the git CLI.
type workClone struct {
	t   *testing.T
	dir string
}

func (w *workClone) git(args ...string) string {
	w.t.Helper()
	cmd := exec.Command("git", append([]string{"-c", "user.name=dev", "-c", "user.email=dev@example.com"}, args...)...)
	cmd.Dir = w.dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		w.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

func (w *workClone) commit(msg string) string {
	w.git("add", "-A")
	w.git("commit", "-q", "-m", msg)
	return w.git("rev-parse", "HEAD")
}

// approve signs the tree of commit as each reviewer and pushes the notes.
func (w *workClone) approve(env, commit string, rs ...reviewerKey) {
	w.t.Helper()
	repo, err := git.PlainOpen(w.dir)
	if err != nil {
		w.t.Fatal(err)
	}
	c, err := repo.CommitObject(plumbing.NewHash(commit))
	if err != nil {
		w.t.Fatal(err)
	}
	for _, r := range rs {
		signer, err := approval.LoadSigner(r.priv)
		if err != nil {
			w.t.Fatal(err)
		}
		e, err := approval.Sign(signer, approval.Statement{Tree: c.TreeHash.String(), Environment: env, Reviewer: r.name, Commit: commit})
		if err != nil {
			w.t.Fatal(err)
		}
		if err := (approval.Store{}).Add(repo, c.TreeHash.String(), env, e); err != nil {
			w.t.Fatal(err)
		}
	}
	w.git("push", "-q", "origin", "refs/notes/strata-approvals")
}

type reviewerKey struct {
	name      string
	priv, pub []byte
}

func newReviewerKey(t *testing.T, name string) reviewerKey {
	priv, pub, err := approval.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return reviewerKey{name: name, priv: priv, pub: pub}
}

func trustFile(rs ...reviewerKey) string {
	var b strings.Builder
	b.WriteString("apiVersion: strata.dev/v1alpha1\nkind: Trust\nreviewers:\n")
	for _, r := range rs {
		b.WriteString(strings.TrimPrefix(approval.TrustSnippet(r.name, r.pub), "reviewers:\n"))
	}
	return b.String()
}

// converged reports whether every cluster's inventory says revision and healthy.
func converged(ctx context.Context, connect cluster.Connector, revision string) bool {
	for _, name := range localcluster.DefaultClusters {
		cl, err := connect.Connect(name)
		if err != nil {
			return false
		}
		inv, err := inventory.Load(ctx, cl.Client, env)
		if err != nil || inv.Status.Revision != revision || inv.Status.Healthy != inv.Status.Objects || inv.Status.LastError != "" {
			return false
		}
	}
	return true
}

func lastError(ctx context.Context, t *testing.T, connect cluster.Connector, cluster string) string {
	cl, err := connect.Connect(cluster)
	if err != nil {
		t.Fatal(err)
	}
	inv, err := inventory.Load(ctx, cl.Client, env)
	if err != nil {
		return ""
	}
	return inv.Status.LastError
}

// The change flow on three clusters and a real git server over HTTP:
// approvals gate a restricted change; a revert pushed while a bad
// revision's health wait runs restores every cluster; auto-revert does the
// same by itself; a force-push is refused.
func TestChangeFlow(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test on three kwok clusters; skipped with -short")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	lc := upClusters(t)

	srv, err := gittestserver.NewTempGitServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(srv.Root()) })
	srv.AutoCreate()
	if err := srv.StartHTTP(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.StopHTTP)
	url := srv.HTTPAddress() + "/platform/config.git"

	alice, bob := newReviewerKey(t, "alice"), newReviewerKey(t, "bob")
	dir, _ := demoRepo(t)
	w := &workClone{t: t, dir: dir}
	if err := os.MkdirAll(filepath.Join(dir, ".strata"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".strata", "trust.yaml"), []byte(trustFile(alice, bob)), 0o644); err != nil {
		t.Fatal(err)
	}
	first := w.commit("trust alice and bob")
	w.git("remote", "add", "origin", url)
	w.git("push", "-q", "origin", "HEAD:refs/heads/main")
	w.approve(env, first, alice, bob)

	// The reconciler follows the server's main branch; pushes trigger it
	// through the signed hook.
	repo, err := source.Open(ctx, url, source.OpenOptions{Dir: t.TempDir() + "/mirror", Branch: "main"})
	if err != nil {
		t.Fatal(err)
	}
	connect := &cluster.KubeconfigDir{Dir: lc.KubeconfigDir()}
	t.Cleanup(connect.Close)
	opts := reconciler.DefaultOptions()
	opts.Environment, opts.Revision, opts.TrustedKeys = env, "main", pinOf(t, alice.pub, bob.pub)
	opts.Interval, opts.DriftInterval = time.Minute, time.Minute
	opts.WatchInterval, opts.PollInterval = 300*time.Millisecond, 300*time.Millisecond
	opts.HealthTimeout = 2 * time.Minute
	opts.Log = testLog(t)
	rec := reconciler.New(repo, connect, opts)
	trigger := make(chan struct{}, 1)
	secret := []byte("hook-secret")
	hook := httptest.NewServer(&reconciler.HookHandler{Secret: secret, Trigger: trigger, Log: testLog(t)})
	t.Cleanup(hook.Close)
	notify := func() {
		body := []byte(`{"ref":"refs/heads/main"}`)
		mac := hmac.New(sha256.New, secret)
		mac.Write(body)
		req, _ := http.NewRequest(http.MethodPost, hook.URL+"/hook", bytes.NewReader(body))
		req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != http.StatusAccepted {
			t.Fatalf("push hook: %v %v", err, resp)
		}
		resp.Body.Close()
	}
	loopDone := make(chan struct{})
	go func() { _ = rec.Run(ctx, trigger); close(loopDone) }()
	t.Cleanup(func() { cancel(); <-loopDone })
	waitUntil(t, 90*time.Second, func() bool { return converged(ctx, connect, first) }, "the approved first revision did not converge")
	onprem, _ := connect.Connect("onprem")
	replicas := func(name string) int32 {
		var d appsv1.Deployment
		if err := onprem.Client.Get(ctx, client.ObjectKey{Namespace: "ledger", Name: name}, &d); err != nil {
			t.Fatal(err)
		}
		return *d.Spec.Replicas
	}

	t.Run("an unapproved restricted change is not applied, and status says why", func(t *testing.T) {
		editFile(t, filepath.Join(dir, "overlays/prod/kustomization.yaml"), "{name: ledger,           count: 3}", "{name: ledger,           count: 4}")
		change := w.commit("ledger: 4 replicas")
		w.git("push", "-q", "origin", "HEAD:refs/heads/main")
		notify()
		waitUntil(t, 30*time.Second, func() bool {
			return strings.Contains(lastError(ctx, t, connect, "onprem"), "restricted change needs 2 approvals, has 0")
		}, "status does not say what approval is missing")
		if n := replicas("ledger"); n != 3 {
			t.Fatalf("unapproved change applied: ledger has %d replicas", n)
		}

		// An attacker with write access to strata-system in the public
		// cluster forges its inventory (the unapproved commit applied and
		// succeeded, newest of all), then the reconciler restarts.
		forgeInventory(ctx, t, connect, "public", w, change)
		repo2, err := source.Open(ctx, url, source.OpenOptions{Dir: t.TempDir() + "/mirror", Branch: "main"})
		if err != nil {
			t.Fatal(err)
		}
		res := reconciler.New(repo2, connect, opts).ReconcileOnce(ctx)
		var ge *reconciler.GateError
		if !errors.As(res.Err, &ge) {
			t.Fatalf("restarted reconciler after the forgery: %v, want the gate's refusal", res.Err)
		}
		if n := replicas("ledger"); n != 3 {
			t.Fatalf("forged inventory got the unapproved change applied: ledger has %d replicas", n)
		}
		if e := lastError(ctx, t, connect, "onprem"); !strings.Contains(e, "restricted change needs 2 approvals, has 0") {
			t.Errorf("on-prem status after the forgery does not say why: %q", e)
		}

		w.approve(env, change, alice)
		notify()
		waitUntil(t, 30*time.Second, func() bool {
			return strings.Contains(lastError(ctx, t, connect, "onprem"), "has 1: alice")
		}, "status does not show alice's approval")
		w.approve(env, change, bob)
		notify()
		waitUntil(t, 60*time.Second, func() bool { return converged(ctx, connect, change) }, "approved change did not converge")
		if n := replicas("ledger"); n != 4 {
			t.Errorf("approved change not applied: %d replicas", n)
		}
	})

	t.Run("a revert pushed during a stuck rollout restores every cluster", func(t *testing.T) {
		// Unschedulable on the 64-CPU node: the rollout never completes.
		unschedulable(t, dir)
		bad := w.commit("audit-trail: more CPU")
		w.approve(env, bad, alice, bob)
		w.git("push", "-q", "origin", "HEAD:refs/heads/main")
		notify()
		waitUntil(t, 30*time.Second, func() bool {
			cl, _ := connect.Connect("onprem")
			inv, err := inventory.Load(ctx, cl.Client, env)
			return err == nil && strings.Contains(string(mustJSON(inv.Entries)), bad)
		}, "the bad revision was not rolled out")
		time.Sleep(2 * time.Second) // its health wait (2 minutes) is running
		if converged(ctx, connect, bad) {
			t.Fatal("the bad revision became healthy; the test needs one that does not")
		}
		start := time.Now()
		w.git("revert", "--no-edit", "HEAD")
		revert := w.git("rev-parse", "HEAD")
		w.git("push", "-q", "origin", "HEAD:refs/heads/main")
		notify()
		waitUntil(t, 60*time.Second, func() bool { return converged(ctx, connect, revert) }, "the revert did not restore every cluster")
		t.Logf("time to recovery: %s (revert pushed while the bad revision's 2m health wait ran)", time.Since(start).Round(time.Millisecond))
	})

	t.Run("auto-revert reverts a revision that fails its health check", func(t *testing.T) {
		cfg := filepath.Join(dir, "strata.yaml")
		editFile(t, cfg, "healthTimeout: 5m", "healthTimeout: 10s")
		editFile(t, cfg, "autoRevert: false", "autoRevert: true")
		on := w.commit("rollout: auto-revert after 10s")
		w.approve(env, on, alice, bob)
		w.git("push", "-q", "origin", "HEAD:refs/heads/main")
		notify()
		waitUntil(t, 60*time.Second, func() bool { return converged(ctx, connect, on) }, "auto-revert settings not applied")
		rec.SetHealthTimeout(0) // use strata.yaml's 10s from now on
		unschedulable(t, dir)
		bad := w.commit("audit-trail: more CPU, again")
		w.approve(env, bad, alice, bob)
		w.git("push", "-q", "origin", "HEAD:refs/heads/main")
		notify()
		var head string
		waitUntil(t, 3*time.Minute, func() bool {
			out, err := exec.Command("git", "ls-remote", url, "refs/heads/main").Output()
			head = strings.Fields(string(out) + " x")[0]
			return err == nil && head != bad
		}, "strata did not push a revert")
		waitUntil(t, 60*time.Second, func() bool { return converged(ctx, connect, head) }, "the auto-revert did not restore every cluster")
		w.git("pull", "-q", "--ff-only", "origin", "main")
		if author := w.git("log", "-1", "--format=%an %s"); !strings.HasPrefix(author, "strata Revert") {
			t.Errorf("head commit %q, want strata's revert", author)
		}
	})

	t.Run("a force-push is refused, keeping the last good state", func(t *testing.T) {
		good := w.git("rev-parse", "HEAD")
		w.git("reset", "-q", "--hard", "HEAD~3")
		editFile(t, filepath.Join(dir, "overlays/prod/kustomization.yaml"), "{name: ledger,           count: 4}", "{name: ledger,           count: 1}")
		w.commit("rewritten history")
		w.git("push", "-q", "--force", "origin", "HEAD:refs/heads/main")
		notify()
		waitUntil(t, 30*time.Second, func() bool {
			return strings.Contains(lastError(ctx, t, connect, "onprem"), "was rewritten")
		}, "the force-push was not refused in status")
		if n := replicas("ledger"); n != 4 {
			t.Errorf("force-pushed content applied: ledger has %d replicas", n)
		}
		cl, _ := connect.Connect("onprem")
		if inv, _ := inventory.Load(ctx, cl.Client, env); inv.Status.Revision != good {
			t.Errorf("applied revision %s, want the last good %s", inv.Status.Revision, good)
		}
	})
}

// forgeInventory writes, as a cluster admin could, that commit was applied
// to cluster and succeeded, dated after every real record.
func forgeInventory(ctx context.Context, t *testing.T, connect cluster.Connector, cluster string, w *workClone, commit string) {
	t.Helper()
	cl, err := connect.Connect(cluster)
	if err != nil {
		t.Fatal(err)
	}
	inv, err := inventory.Load(ctx, cl.Client, env)
	if err != nil {
		t.Fatal(err)
	}
	future := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	tree := w.git("rev-parse", commit+"^{tree}")
	inv.Status.Revision, inv.Status.LastReconcile, inv.Status.LastError = commit, future, ""
	inv.Status.Record(inventory.Applied{Revision: commit, Tree: tree, Time: future, Outcome: inventory.ReasonSucceeded, Approvers: []string{"alice", "bob"}})
	if _, err := inventory.Save(ctx, cl.Client, inv); err != nil {
		t.Fatal(err)
	}
}

// unschedulable asks audit-trail for more CPU than the fake node has: its
// new pods stay Pending and the rollout never completes.
func unschedulable(t *testing.T, dir string) {
	t.Helper()
	f := filepath.Join(dir, "overlays/base/ledger/audit-trail.yaml")
	editFile(t, f, "cpu: 500m", "cpu: \"600\"")
	editFile(t, f, "cpu: 250m", "cpu: \"500\"")
}
