package statuspage

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/strata-gitops/strata/internal/apiservertest"
	"github.com/strata-gitops/strata/internal/cluster"
	"github.com/strata-gitops/strata/internal/config"
	"github.com/strata-gitops/strata/internal/inventory"
	"github.com/strata-gitops/strata/internal/labels"
)

// TestLiveReadsInventoryAndBreakGlassEvents runs the page against a real
// apiserver (envtest): an inventory written with inventory.Save, a
// break-glass Event as the webhook records it, and a cluster without
// credentials. Without the binaries (hack/install-tools.sh) it fails, like
// the reconciler's envtest tests.
func TestLiveReadsInventoryAndBreakGlassEvents(t *testing.T) {
	if testing.Short() {
		t.Skip("envtest: not in -short")
	}
	_, cfg := apiservertest.Start(t)
	cl, err := cluster.NewCluster("onprem", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	st := healthy(goodRev, 11)
	st.LastReconcile = time.Now().UTC().Add(-5 * time.Second).Truncate(time.Second)
	st.Healthy, st.Failed = 10, 1
	st.History = append([]inventory.Applied{{Revision: badRev, Outcome: inventory.ReasonHealthFailed, Time: st.LastReconcile}}, st.History...)
	st.LastError = "cluster onprem: health check failed: <timeout>"
	inv := &inventory.Inventory{Environment: "prod", Status: st,
		Entries: []inventory.Ref{{Version: "v1", Kind: "ConfigMap", Namespace: "ledger", Name: "ledger-config"}}}
	if _, err := inventory.Save(ctx, cl.Client, inv); err != nil {
		t.Fatal(err)
	}
	at := metav1.NewTime(time.Now().Add(-time.Minute).Truncate(time.Second))
	for _, ev := range []*corev1.Event{
		{ // as webhook.eventRecorder writes it
			ObjectMeta: metav1.ObjectMeta{GenerateName: "strata-break-glass-", Namespace: labels.SystemNamespace,
				Labels:      map[string]string{labels.ManagedBy: labels.ManagedByValue},
				Annotations: map[string]string{labels.BreakGlass: "INC-4711 ledger hotfix", labels.Prefix + "user": "carol", labels.Prefix + "cluster": "onprem"}},
			InvolvedObject: corev1.ObjectReference{APIVersion: "v1", Kind: "ConfigMap", Namespace: labels.SystemNamespace, Name: "strata-break-glass"},
			Reason:         labels.BreakGlassEventReason, Message: "break-glass by carol (groups [platform-oncall]) on CREATE Deployment ledger/ledger-hotfix",
			Type: corev1.EventTypeWarning, FirstTimestamp: at, LastTimestamp: at, Count: 1,
		},
		{ // another strata event in strata-system: not a denial
			ObjectMeta:     metav1.ObjectMeta{GenerateName: "strata-", Namespace: labels.SystemNamespace, Labels: map[string]string{labels.ManagedBy: labels.ManagedByValue}},
			InvolvedObject: corev1.ObjectReference{APIVersion: "v1", Kind: "ConfigMap", Namespace: labels.SystemNamespace, Name: "strata-inventory-prod"},
			Reason:         "ReconciliationSucceeded", Message: "applied", Type: corev1.EventTypeNormal, FirstTimestamp: at, LastTimestamp: at, Count: 1,
		},
	} {
		if err := cl.Client.Create(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}

	live := &Live{
		Connect: cluster.Static{"onprem": cl},
		Environments: []LiveEnvironment{{Name: "prod", Clusters: []config.Cluster{
			{Name: "private", Tier: config.PrivateCloud}, {Name: "onprem", Tier: config.OnPrem},
		}}},
		Subject: func(_ context.Context, commit string) string {
			return map[string]string{goodRev: "Scale fraud-scoring for month-end", badRev: "fraud-scoring: switch to model v7"}[commit]
		},
	}
	snap, err := live.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	private, onprem := snap.Environments[0].Clusters[0], snap.Environments[0].Clusters[1]
	if private.Reachable || private.Error == "" {
		t.Errorf("private (no credentials) = %+v", private)
	}
	if !onprem.Reachable || !onprem.Reconciled || onprem.Error != "" || onprem.Status.Revision != goodRev || onprem.Status.Failed != 1 {
		t.Errorf("onprem = %+v", onprem)
	}
	if len(snap.BreakGlass) != 1 || snap.BreakGlass[0].User != "carol" || snap.BreakGlass[0].Reason != "INC-4711 ledger hotfix" ||
		snap.BreakGlass[0].Cluster != "onprem" || !snap.BreakGlass[0].Time.Equal(at.Time) {
		t.Errorf("break-glass events = %+v (errors %v)", snap.BreakGlass, snap.EventErrors)
	}

	srv := httptest.NewServer(New(live, Options{KubeconfigDir: kcDir}))
	defer srv.Close()
	res, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	body := string(b)
	class, headline := verdictOf(t, body)
	if res.StatusCode != http.StatusOK || class != "bad" || headline != "2 of 2 clusters failing" {
		t.Errorf("GET / = %d, verdict %s %q", res.StatusCode, class, headline)
	}
	mustContain(t, body,
		`<span class="cl">onprem</span>`, `<td class="num bad">10/11</td>`, "Scale fraud-scoring for month-end",
		"no credentials for cluster private",
		"strata rollback 3f2a9c1d0e4b --push --wait --env prod --kubeconfig-dir /home/oncall/.strata/clusters",
		"INC-4711 ledger hotfix", "<td>carol</td>",
		"cluster onprem: health check failed: &lt;timeout&gt;",
	)
}
