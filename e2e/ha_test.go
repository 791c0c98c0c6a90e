package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-gitops/strata/internal/labels"
	"github.com/strata-gitops/strata/internal/localcluster"
	"github.com/strata-gitops/strata/reconciler"
)

// replica is one of the HA reconcilers, with its metrics endpoint.
type replica struct {
	*strataProc
	metrics string
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// scrape reads the replica's Prometheus metrics (nil while it does not answer).
func (r *replica) scrape() map[string]*dto.MetricFamily {
	resp, err := http.Get("http://" + r.metrics + "/metrics")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil
	}
	return mfs
}

// sum adds up a counter or gauge over its series whose labels include match.
func sum(mfs map[string]*dto.MetricFamily, name string, match map[string]string) (float64, bool) {
	mf, ok := mfs[name]
	if !ok {
		return 0, false
	}
	total, seen := 0.0, false
series:
	for _, m := range mf.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range match {
			if have[k] != v {
				continue series
			}
		}
		seen = true
		switch {
		case m.Counter != nil:
			total += m.GetCounter().GetValue()
		case m.Gauge != nil:
			total += m.GetGauge().GetValue()
		}
	}
	return total, seen
}

// reconciling reports whether the replica's loop has run: only the leader's
// does, and its first probe sets strata_cluster_reachable.
func (r *replica) reconciling() bool {
	_, ok := sum(r.scrape(), reconciler.MetricClusterReachable, nil)
	return ok
}

func leaseHolder(ctx context.Context, c client.Client) string {
	var l coordinationv1.Lease
	if err := c.Get(ctx, client.ObjectKey{Namespace: labels.SystemNamespace, Name: reconciler.LeaseID(env)}, &l); err != nil || l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

// generations maps every Deployment, StatefulSet and CronJob strata manages
// in a cluster to its metadata.generation: the apiserver raises it at each
// change of the spec, so an object applied twice with different content,
// or rolled back and forth, shows up as an extra step.
func generations(t *testing.T, c client.Client) map[string]int64 {
	t.Helper()
	ctx := context.Background()
	own := client.MatchingLabels{labels.ManagedBy: labels.ManagedByValue}
	out := map[string]int64{}
	var ds appsv1.DeploymentList
	var ss appsv1.StatefulSetList
	var cj batchv1.CronJobList
	for _, l := range []client.ObjectList{&ds, &ss, &cj} {
		if err := c.List(ctx, l, own); err != nil {
			t.Fatal(err)
		}
	}
	for _, o := range ds.Items {
		out["Deployment "+o.Namespace+"/"+o.Name] = o.Generation
	}
	for _, o := range ss.Items {
		out["StatefulSet "+o.Namespace+"/"+o.Name] = o.Generation
	}
	for _, o := range cj.Items {
		out["CronJob "+o.Namespace+"/"+o.Name] = o.Generation
	}
	return out
}

// HA push mode: two reconciler processes elect a leader with a Lease in
// strata-system of the cluster they run in (onprem here). The leader is
// killed with SIGKILL in the middle of a rollout (its health wait on a
// slow Deployment); the other replica takes the lease, finishes the
// rollout, applies nothing a second time and prunes exactly what left git.
func TestHAPushMode(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test on three kwok clusters; skipped with -short")
	}
	// Built before the clusters start: on a loaded machine a link running
	// beside three starting apiservers can stall them past
	// kube-controller-manager's start-up wait.
	bin := buildStrata(t)()
	lc := upClusters(t)
	clients := clusterClients(t, lc)
	g := serveDemo(t)
	first := g.head()
	ctx := context.Background()
	all := localcluster.DefaultClusters
	home := clients["onprem"]
	// The chart creates strata-system; the Lease is made in it.
	if err := home.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: labels.SystemNamespace}}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	const leaseDuration, renewDeadline, retryPeriod = 6 * time.Second, 4 * time.Second, time.Second
	var replicas []*replica
	for i := range 2 {
		r := &replica{metrics: freeAddr(t)}
		args := append([]string{"reconcile", "--repo", g.url, "--branch", "main", "--env", env,
			"--kubeconfig-dir", lc.KubeconfigDir(), "--kubeconfig", lc.KubeconfigPath("onprem"),
			"--enable-leader-election", "--leader-election-lease-duration", leaseDuration.String(),
			"--leader-election-renew-deadline", renewDeadline.String(), "--leader-election-retry-period", retryPeriod.String(),
			"--interval", "2s", "--drift-interval", "2s", "--health-timeout", "3m", "--metrics-addr", r.metrics,
			"--cache-dir", filepath.Join(t.TempDir(), "mirror")}, pinArgs(t)...)
		r.strataProc = startStrata(t, bin, fmt.Sprintf("replica-%d", i), args...)
		replicas = append(replicas, r)
	}
	waitApplied(t, clients, first, 2*time.Minute, all...)

	var leader, standby *replica
	for _, r := range replicas {
		if r.reconciling() {
			if leader != nil {
				t.Fatal("both replicas reconcile: leader election does not hold")
			}
			leader = r
		} else {
			standby = r
		}
	}
	if leader == nil || standby == nil {
		t.Fatalf("want one leader and one standby, got leader %v", leader)
	}
	holder := leaseHolder(ctx, home)
	if holder == "" {
		t.Fatalf("no Lease %s/%s holder in onprem", labels.SystemNamespace, reconciler.LeaseID(env))
	}
	before := map[string]map[string]int64{}
	for _, name := range all {
		before[name] = generations(t, clients[name])
	}

	// A rollout in every cluster; on-prem's is slow (audit-trail's new pods
	// must stay ready 15 s each, one at a time), and private loses an object.
	rollout := g.change("audit-trail 1.8.3 (minReadySeconds 15), fraud-scoring 5.0.4, model-training at 3 a.m., risk-dashboard without its Service", func() {
		prod := filepath.Join(g.dir, "overlays/prod/kustomization.yaml")
		editFile(t, prod, "finance-ai/audit-trail, newTag: 1.8.2}", "finance-ai/audit-trail, newTag: 1.8.3}")
		editFile(t, prod, "finance-ai/fraud-scoring,          newTag: 5.0.3}", "finance-ai/fraud-scoring,          newTag: 5.0.4}")
		editFile(t, filepath.Join(g.dir, "overlays/base/ledger/audit-trail.yaml"),
			"  replicas: 2\n  revisionHistoryLimit: 5", "  replicas: 2\n  minReadySeconds: 15\n  revisionHistoryLimit: 5")
		editFile(t, filepath.Join(g.dir, "overlays/base/model-training/cronjob.yaml"), `schedule: "0 2 * * *"`, `schedule: "0 3 * * *"`)
		editFile(t, filepath.Join(g.dir, "overlays/base/risk-dashboard/kustomization.yaml"), "  - service.yaml\n", "")
	})
	changed := map[string]string{"onprem": "Deployment ledger/audit-trail", "private": "Deployment fraud/fraud-scoring", "public": "CronJob ml-training/model-training"}
	// Kill the leader once it has applied the revision everywhere and waits
	// for health.
	seen := map[string]string{}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		for name, key := range changed {
			seen[name] = revisionOf(t, clients[name], key)
		}
		if seen["public"] == rollout && seen["private"] == rollout && seen["onprem"] == rollout {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the leader did not apply the rollout %.12s to every cluster in 60s (first %.12s): %v", rollout, first, seen)
		}
	}
	if appliedAt(ctx, home, rollout) {
		t.Fatal("on-prem is already healthy at the new revision: the test needs a rollout in progress")
	}
	killed := time.Now()
	leader.kill()

	var took, reconciles time.Duration
	waitUntil(t, leaseDuration+10*retryPeriod+30*time.Second, func() bool {
		if took == 0 {
			if h := leaseHolder(ctx, home); h != "" && h != holder {
				took = time.Since(killed)
			}
		}
		if reconciles == 0 && standby.reconciling() {
			reconciles = time.Since(killed)
		}
		return took > 0 && reconciles > 0
	}, "the standby did not take over")
	waitApplied(t, clients, rollout, 2*time.Minute, all...)
	done := time.Since(killed)
	t.Logf("takeover after SIGKILL of the leader (lease %s, renew %s, retry %s): lease acquired %s, first reconcile %s, every cluster healthy at the new revision %s",
		leaseDuration, renewDeadline, retryPeriod, took.Round(10*time.Millisecond), reconciles.Round(10*time.Millisecond), done.Round(10*time.Millisecond))
	// client-go takes an expired lease at its next retry; the slack is for
	// a loaded machine.
	if limit := leaseDuration + renewDeadline + 5*retryPeriod; took > limit {
		t.Errorf("lease taken %s after the kill; want within %s (lease duration %s, then the standby's next retries)", took, limit, leaseDuration)
	}

	t.Run("the new leader applied nothing a second time", func(t *testing.T) {
		mfs := standby.scrape()
		if n, _ := sum(mfs, reconciler.MetricObjectsApplied, nil); n != 0 {
			t.Errorf("the new leader created or configured %v objects; the killed leader had applied them all", n)
		}
		for _, name := range all {
			after := generations(t, clients[name])
			want := map[string]int64{}
			for k, v := range before[name] {
				want[k] = v
				if changed[name] == k {
					want[k] = v + 1
				}
			}
			if diff := cmp.Diff(want, after); diff != "" {
				t.Errorf("cluster %s: generations (-one change each +seen):\n%s", name, diff)
			}
		}
	})

	t.Run("the new leader pruned exactly what left git", func(t *testing.T) {
		mfs := standby.scrape()
		if n, _ := sum(mfs, reconciler.MetricObjectsPruned, map[string]string{"cluster": "private"}); n != 1 {
			t.Errorf("the new leader pruned %v objects in private, want 1 (Service risk/risk-dashboard)", n)
		}
		if n, _ := sum(mfs, reconciler.MetricObjectsPruned, nil); n != 1 {
			t.Errorf("the new leader pruned %v objects in all, want 1", n)
		}
		var svc corev1.Service
		if err := clients["private"].Get(ctx, client.ObjectKey{Namespace: "risk", Name: "risk-dashboard"}, &svc); !apierrors.IsNotFound(err) {
			t.Errorf("Service risk/risk-dashboard: %v, want it pruned", err)
		}
		want := placedKeys(t, g.dir)
		for _, name := range all {
			if diff := cmp.Diff(want[name], inventoryKeys(t, clients[name])); diff != "" {
				t.Errorf("cluster %s: inventory differs from its placement (-placement +inventory):\n%s", name, diff)
			}
		}
		checkPlacement(t, g.dir, clients, nil)
	})
	if !standby.running() {
		t.Errorf("the new leader exited:\n%s", standby.tail(20))
	}
}

// revisionOf is the strata.dev/revision annotation of a live object named
// "Kind namespace/name".
func revisionOf(t *testing.T, c client.Client, key string) string {
	t.Helper()
	kind, nn, _ := strings.Cut(key, " ")
	ns, name, _ := strings.Cut(nn, "/")
	var obj client.Object
	switch kind {
	case "Deployment":
		obj = &appsv1.Deployment{}
	case "CronJob":
		obj = &batchv1.CronJob{}
	default:
		t.Fatalf("revisionOf: kind %s", kind)
	}
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, obj); err != nil {
		return ""
	}
	return obj.GetAnnotations()[labels.Revision]
}
