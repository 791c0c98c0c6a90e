// Package e2e runs strata against three real local clusters (kwok with the
// binary runtime: etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler and a fake node), so that Deployments really become
// Available. Every cluster is torn down when the test ends, even on failure.
package e2e

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-gitops/strata/internal/approval"
	"github.com/strata-gitops/strata/internal/audit"
	"github.com/strata-gitops/strata/internal/cluster"
	"github.com/strata-gitops/strata/internal/desired"
	"github.com/strata-gitops/strata/internal/labels"
	"github.com/strata-gitops/strata/internal/localcluster"
	"github.com/strata-gitops/strata/internal/source"
	"github.com/strata-gitops/strata/reconciler"
)

const env = "prod"

// demoRepo copies the project's demo config repo (strata.yaml, overlays/)
// into a new git repository and commits it.
func demoRepo(t *testing.T) (string, *git.Repository) {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cmd := exec.Command("cp", "-r", filepath.Join(root, "strata.yaml"), filepath.Join(root, "overlays"), filepath.Join(root, "policies"), filepath.Join(root, ".strata"), dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("copying the demo: %v: %s", err, out)
	}
	r, err := git.PlainInit(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	approveDemo(t, r, commitAll(t, r, "demo"))
	return dir, r
}

// demoReviewers are the demo's reviewers, whose keys ship in hack/demo-keys.
var demoReviewers = []string{"alice", "bob"}

// approveDemo signs commit's tree for env as every demo reviewer.
func approveDemo(t *testing.T, r *git.Repository, commit string) {
	t.Helper()
	c, err := r.CommitObject(plumbing.NewHash(commit))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range demoReviewers {
		signer, err := approval.LoadSignerFile(filepath.Join("..", "hack", "demo-keys", name+".key"))
		if err != nil {
			t.Fatal(err)
		}
		e, err := approval.Sign(signer, approval.Statement{Tree: c.TreeHash.String(), Environment: env, Reviewer: name, Commit: commit})
		if err != nil {
			t.Fatal(err)
		}
		if err := (approval.Store{}).Add(r, c.TreeHash.String(), env, e); err != nil {
			t.Fatal(err)
		}
	}
}

// pinOf is the root of trust of these public keys (PEM).
func pinOf(t *testing.T, pubs ...[]byte) approval.Pin {
	t.Helper()
	pin, err := approval.PinKeys(pubs...)
	if err != nil {
		t.Fatal(err)
	}
	return pin
}

// demoPin pins the demo reviewers' keys.
func demoPin(t *testing.T) approval.Pin {
	t.Helper()
	var pubs [][]byte
	for _, name := range demoReviewers {
		b, err := os.ReadFile(filepath.Join("..", "hack", "demo-keys", name+".pub"))
		if err != nil {
			t.Fatal(err)
		}
		pubs = append(pubs, b)
	}
	return pinOf(t, pubs...)
}

func commitAll(t *testing.T, r *git.Repository, msg string) string {
	t.Helper()
	wt, err := r.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	if err := wt.AddGlob("."); err != nil {
		t.Fatal(err)
	}
	h, err := wt.Commit(msg, &git.CommitOptions{All: true, Author: &object.Signature{Name: "e2e", Email: "e2e@example.com", When: time.Now()}})
	if err != nil {
		t.Fatal(err)
	}
	return h.String()
}

func editFile(t *testing.T, path, old, new string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		t.Fatalf("%s does not contain %q", path, old)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(b), old, new, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// availableDeployments lists the Available Deployments strata applied to a cluster.
func availableDeployments(t *testing.T, c client.Client) []string {
	t.Helper()
	var list appsv1.DeploymentList
	if err := c.List(context.Background(), &list, client.MatchingLabels{labels.ManagedBy: labels.ManagedByValue}); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range list.Items {
		for _, c := range d.Status.Conditions {
			if c.Type == appsv1.DeploymentAvailable && c.Status == corev1.ConditionTrue {
				out = append(out, d.Namespace+"/"+d.Name)
			}
		}
	}
	slices.Sort(out)
	return out
}

// placedDeployments is what placement says each cluster should run.
func placedDeployments(t *testing.T, dir string, healthy map[string]bool) map[string][]string {
	t.Helper()
	repo, err := source.Open(context.Background(), dir, source.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rev, err := repo.Resolve("HEAD")
	if err != nil {
		t.Fatal(err)
	}
	snap, err := repo.Snapshot(rev)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := desired.LoadConfig(snap)
	if err != nil {
		t.Fatal(err)
	}
	opts := desired.DefaultOptions()
	opts.Healthy = healthy
	st, err := desired.Build(snap, cfg, env, opts)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, name := range st.ClusterNames() {
		out[name] = nil
		for _, d := range st.Placement.ForCluster(name) {
			if d.Object.Kind == "Deployment" {
				out[name] = append(out[name], d.Object.Namespace+"/"+d.Object.Name)
			}
		}
		slices.Sort(out[name])
	}
	return out
}

func checkPlacement(t *testing.T, dir string, clients map[string]client.Client, healthy map[string]bool) {
	t.Helper()
	for name, want := range placedDeployments(t, dir, healthy) {
		if healthy != nil && !healthy[name] {
			continue
		}
		got := availableDeployments(t, clients[name])
		if !slices.Equal(got, want) {
			t.Errorf("cluster %s: Available Deployments %v, placement says %v", name, got, want)
		}
	}
}

func mustSucceed(t *testing.T, res *reconciler.Result, except ...string) {
	t.Helper()
	if res.Err != nil {
		t.Fatalf("reconcile: %v", res.Err)
	}
	for _, c := range res.Clusters {
		if c.Err != nil && !slices.Contains(except, c.Name) {
			t.Fatalf("cluster %s: %v", c.Name, c.Err)
		}
	}
}

func TestDemoOnThreeClusters(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test on three kwok clusters; skipped with -short")
	}
	ctx := context.Background()
	lc := upClusters(t)

	dir, gitRepo := demoRepo(t)
	repo, err := source.Open(ctx, dir, source.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	connect := &cluster.KubeconfigDir{Dir: lc.KubeconfigDir()}
	t.Cleanup(connect.Close)
	clients := map[string]client.Client{}
	for _, name := range localcluster.DefaultClusters {
		cl, err := connect.Connect(name)
		if err != nil {
			t.Fatal(err)
		}
		clients[name] = cl.Client
	}
	opts := reconciler.DefaultOptions()
	head, err := gitRepo.Head()
	if err != nil {
		t.Fatal(err)
	}
	opts.Environment, opts.Revision, opts.TrustedKeys = env, head.Name().Short(), demoPin(t)
	opts.HealthTimeout = 3 * time.Minute
	opts.PollInterval = 500 * time.Millisecond
	opts.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		opts.Log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	rec := reconciler.New(repo, connect, opts)
	wh := startWebhooks(t, ctx, lc, dir)

	t.Run("reconcile the demo: every Deployment Available exactly where placement says", func(t *testing.T) {
		start := time.Now()
		mustSucceed(t, rec.ReconcileOnce(ctx))
		t.Logf("first reconcile (apply + health) in %s", time.Since(start).Round(time.Millisecond))
		checkPlacement(t, dir, clients, nil)
		var sts appsv1.StatefulSet
		if err := clients["onprem"].Get(ctx, client.ObjectKey{Namespace: "ledger", Name: "ledger-db"}, &sts); err != nil {
			t.Fatal(err)
		}
		if sts.Status.ReadyReplicas != *sts.Spec.Replicas {
			t.Errorf("ledger-db: %d of %d replicas ready", sts.Status.ReadyReplicas, *sts.Spec.Replicas)
		}
		for _, name := range localcluster.DefaultClusters {
			if n := wh.denials(t, name); n != 0 {
				t.Errorf("webhook of %s denied %v requests while strata applied the demo", name, n)
			}
		}
	})

	t.Run("webhooks deny what does not belong, whoever sends it", func(t *testing.T) {
		out, err := kubectl(t, lc, "public", restrictedDeployment("ledger-copy", ""), "apply", "-f", "-")
		if err == nil || !strings.Contains(out, "Deployment default/ledger-copy is restricted") || !strings.Contains(out, "tier public-cloud") {
			t.Errorf("kubectl apply of a restricted Deployment into public: err %v, output:\n%s", err, out)
		}
		out, err = kubectl(t, lc, "public", restrictedDeployment("ledger-copy", ""), "apply", "--dry-run=server", "-f", "-")
		if err == nil || !strings.Contains(out, "is restricted") {
			t.Errorf("the same with --dry-run=server: err %v, output:\n%s", err, out)
		}
		if out, err := kubectl(t, lc, "onprem", restrictedDeployment("ledger-copy", ""), "apply", "--dry-run=server", "-f", "-"); err != nil {
			t.Errorf("the same object on-prem (dry-run) was denied: %v\n%s", err, out)
		}
		cm := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: notes, namespace: ml-training}\ndata: {a: b}\n"
		if out, err := kubectl(t, lc, "public", cm, "apply", "-f", "-"); err != nil {
			t.Errorf("a compliant ConfigMap was denied: %v\n%s", err, out)
		}
		if out, err := kubectl(t, lc, "public", "", "delete", "configmap", "notes", "-n", "ml-training"); err != nil {
			t.Errorf("DELETE was denied: %v\n%s", err, out)
		}
		// Impersonated users need RBAC to get as far as admission.
		if out, err := kubectl(t, lc, "public", "", "create", "clusterrolebinding", "e2e-people",
			"--clusterrole=cluster-admin", "--group=platform-oncall", "--group=developers"); err != nil {
			t.Fatalf("rbac: %v\n%s", err, out)
		}
		glass := "  annotations: {strata.dev/break-glass: \"INC-4711 ledger failover drill\"}\n"
		out, err = kubectl(t, lc, "public", restrictedDeployment("ledger-glass", glass), "apply", "-f", "-", "--as=bob", "--as-group=developers")
		if err == nil || !strings.Contains(out, "break-glass needs") {
			t.Errorf("break-glass by a developer: err %v, output:\n%s", err, out)
		}
		out, err = kubectl(t, lc, "public", restrictedDeployment("ledger-glass", glass), "apply", "-f", "-", "--as=alice", "--as-group=platform-oncall")
		if err != nil || !strings.Contains(out, "break-glass by alice") {
			t.Errorf("break-glass by on-call: err %v, output:\n%s", err, out)
		}
		waitUntil(t, 10*time.Second, func() bool {
			out, _ := kubectl(t, lc, "public", "", "get", "events", "-n", "strata-system", "--field-selector", "reason=BreakGlass", "-o", "name")
			return strings.TrimSpace(out) != ""
		}, "no BreakGlass event recorded in strata-system")
		_, _ = kubectl(t, lc, "public", "", "delete", "deployment", "ledger-glass", "-n", "default", "--wait=false")
	})

	t.Run("no way around the webhooks: Namespaces, look-alike kinds, unlabeled, pod templates, finalizers", func(t *testing.T) {
		webhookClosesTheHoles(t, lc)
	})

	t.Run("relabel moves an object make-before-break", func(t *testing.T) {
		editFile(t, filepath.Join(dir, "overlays/base/risk-dashboard/deployment.yaml"),
			"strata.dev/sensitivity: internal", "strata.dev/sensitivity: restricted")
		// Restricted images come from the on-prem registry (policy restricted-images-onprem-registry).
		editFile(t, filepath.Join(dir, "overlays/prod/kustomization.yaml"),
			"{name: registry.example.com/finance-ai/risk-dashboard,", "{name: registry.example.com/finance-ai/risk-dashboard, newName: registry.onprem.example.internal/finance-ai/risk-dashboard,")
		approveDemo(t, gitRepo, commitAll(t, gitRepo, "risk-dashboard holds restricted data now"))
		res := rec.ReconcileOnce(ctx)
		mustSucceed(t, res)
		if c := res.Cluster("private"); !slices.ContainsFunc(c.MovedOut, func(r inventoryRef) bool { return r.Name == "risk-dashboard" && r.Kind == "Deployment" }) {
			t.Errorf("private moved out %v, want Deployment risk/risk-dashboard", c.MovedOut)
		}
		checkPlacement(t, dir, clients, nil)
	})

	t.Run("a down cluster: the others converge, failover objects move, it catches up", func(t *testing.T) {
		if err := lc.Stop(ctx, "private"); err != nil {
			t.Fatal(err)
		}
		editFile(t, filepath.Join(dir, "overlays/prod/kustomization.yaml"), "{name: ledger,           count: 3}", "{name: ledger,           count: 2}")
		approveDemo(t, gitRepo, commitAll(t, gitRepo, "ledger: 2 replicas"))
		res := rec.ReconcileOnce(ctx)
		mustSucceed(t, res, "private")
		var ue *reconciler.UnreachableError
		if c := res.Cluster("private"); !errors.As(c.Err, &ue) {
			t.Fatalf("private: want UnreachableError, got %v", c.Err)
		}
		down := map[string]bool{"public": true, "onprem": true}
		checkPlacement(t, dir, clients, down)
		if got := availableDeployments(t, clients["onprem"]); !slices.Contains(got, "fraud/fraud-scoring") {
			t.Errorf("fraud-scoring (failover) is not Available on-prem while private is down: %v", got)
		}
		var ledger appsv1.Deployment
		if err := clients["onprem"].Get(ctx, client.ObjectKey{Namespace: "ledger", Name: "ledger"}, &ledger); err != nil || *ledger.Spec.Replicas != 2 {
			t.Errorf("onprem did not converge while private was down: %v", err)
		}

		if err := lc.Start(ctx, "private"); err != nil {
			t.Fatal(err)
		}
		res = rec.ReconcileOnce(ctx)
		mustSucceed(t, res)
		checkPlacement(t, dir, clients, nil)
		if got := availableDeployments(t, clients["onprem"]); slices.Contains(got, "fraud/fraud-scoring") {
			t.Errorf("fraud-scoring still on-prem after private returned")
		}
	})

	t.Run("an object deleted by hand is restored", func(t *testing.T) {
		var d appsv1.Deployment
		if err := clients["onprem"].Get(ctx, client.ObjectKey{Namespace: "ledger", Name: "audit-trail"}, &d); err != nil {
			t.Fatal(err)
		}
		if err := clients["onprem"].Delete(ctx, &d); err != nil {
			t.Fatal(err)
		}
		res := rec.ReconcileOnce(ctx)
		mustSucceed(t, res)
		if c := res.Cluster("onprem"); c.Drifted < 1 {
			t.Errorf("onprem drifted %d, want at least 1", c.Drifted)
		}
		err := clients["onprem"].Get(ctx, client.ObjectKey{Namespace: "ledger", Name: "audit-trail"}, &d)
		if apierrors.IsNotFound(err) {
			t.Fatal("audit-trail was not restored")
		}
		checkPlacement(t, dir, clients, nil)
	})

	t.Run("audit: where restricted data ran, who broke glass, what was denied", func(t *testing.T) {
		if err := rec.Close(ctx); err != nil {
			t.Fatal(err)
		}
		var events []audit.Event
		waitUntil(t, 15*time.Second, func() bool {
			events = nil
			for _, name := range localcluster.DefaultClusters {
				evs, err := audit.Read(ctx, clients[name], time.Now().Add(-time.Hour))
				if err != nil {
					return false
				}
				events = append(events, evs...)
			}
			return slices.ContainsFunc(events, func(e audit.Event) bool { return e.Kind == audit.BreakGlass })
		}, "no break-glass in the audit log (the webhook flushes every 2 s)")
		var restrictedApplies, denials int
		for _, e := range events {
			switch {
			case e.Kind == audit.Apply && e.Sensitivity == "restricted":
				restrictedApplies++
				if e.Cluster != "onprem" {
					t.Errorf("restricted data applied in %s (%s): %+v", e.Cluster, e.Tier, e)
				}
			case e.Kind == audit.Denial:
				denials++
			case e.Kind == audit.BreakGlass && e.Actor != "alice":
				t.Errorf("break-glass by %q, want alice", e.Actor)
			}
		}
		if restrictedApplies == 0 || denials == 0 {
			t.Errorf("audit: %d restricted applies, %d denials; want some of each", restrictedApplies, denials)
		}
	})
}

func waitUntil(t *testing.T, d time.Duration, cond func() bool, msg string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal(msg)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func testLog(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// upClusters brings up the three local clusters and tears them down when
// the test ends, even when it fails.
func upClusters(t *testing.T) *localcluster.Manager {
	t.Helper()
	home := filepath.Join(os.TempDir(), "strata-e2e-"+strings.ReplaceAll(time.Now().Format("150405.000000"), ".", ""))
	progress := io.Discard
	if testing.Verbose() {
		progress = os.Stderr
	}
	lc := localcluster.New(localcluster.Options{Home: home, Progress: progress})
	for _, b := range localcluster.Binaries {
		if _, err := os.Stat(filepath.Join(lc.Bin(), b)); err != nil {
			t.Fatalf("%s missing in %s: run make tools (hack/install-tools.sh all)", b, lc.Bin())
		}
	}
	// However the test binary ends (even a panic in a goroutine), the clusters end with it.
	if err := lc.KillOnExit(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := lc.Down(context.Background()); err != nil {
			t.Errorf("tearing down the clusters: %v", err)
		}
		os.RemoveAll(home)
	})
	start := time.Now()
	if err := lc.Up(context.Background(), localcluster.DefaultClusters...); err != nil {
		t.Fatalf("bringing up the clusters: %v", err)
	}
	t.Logf("three clusters up in %s", time.Since(start).Round(time.Millisecond))
	return lc
}
