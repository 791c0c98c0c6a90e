package inventory_test

import (
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/strata-gitops/strata/internal/inventory"
	"github.com/strata-gitops/strata/internal/labels"
)

var (
	deploy = inventory.Ref{Group: "apps", Version: "v1", Kind: "Deployment", Namespace: "risk", Name: "dashboard", Hash: "h1", Revision: "r1", Fingerprint: "f1"}
	cm     = inventory.Ref{Version: "v1", Kind: "ConfigMap", Namespace: "web", Name: "site"}
	ns     = inventory.Ref{Version: "v1", Kind: "Namespace", Name: "web"}
	crole  = inventory.Ref{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "ClusterRole", Name: "reader"}
)

func TestRef(t *testing.T) {
	tests := []struct {
		ref          inventory.Ref
		key, str     string
		gvk          schema.GroupVersionKind
		wantNSInStub string
	}{
		{deploy, "apps/Deployment/risk/dashboard", "Deployment risk/dashboard", schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, "risk"},
		{cm, "/ConfigMap/web/site", "ConfigMap web/site", schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}, "web"},
		{ns, "/Namespace//web", "Namespace web", schema.GroupVersionKind{Version: "v1", Kind: "Namespace"}, ""},
		{crole, "rbac.authorization.k8s.io/ClusterRole//reader", "ClusterRole reader", schema.GroupVersionKind{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "ClusterRole"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.str, func(t *testing.T) {
			if got := tt.ref.Key(); got != tt.key {
				t.Errorf("Key() = %q, want %q", got, tt.key)
			}
			if got := tt.ref.String(); got != tt.str {
				t.Errorf("String() = %q, want %q", got, tt.str)
			}
			if got := tt.ref.GVK(); got != tt.gvk {
				t.Errorf("GVK() = %v, want %v", got, tt.gvk)
			}
			u := tt.ref.Object()
			want := map[string]any{
				"apiVersion": tt.gvk.GroupVersion().String(), "kind": tt.gvk.Kind,
				"metadata": map[string]any{"name": tt.ref.Name},
			}
			if tt.wantNSInStub != "" {
				want["metadata"].(map[string]any)["namespace"] = tt.wantNSInStub
			}
			if diff := cmp.Diff(want, u.Object); diff != "" {
				t.Errorf("Object() (-want +got):\n%s", diff)
			}
			// RefOf inverts Object, without the recorded hashes.
			back := inventory.RefOf(u)
			want2 := inventory.Ref{Group: tt.ref.Group, Version: tt.ref.Version, Kind: tt.ref.Kind, Namespace: tt.ref.Namespace, Name: tt.ref.Name}
			if back != want2 {
				t.Errorf("RefOf(Object()) = %+v, want %+v", back, want2)
			}
		})
	}
	// The key does not depend on the API version or the recorded hashes.
	v2 := deploy
	v2.Version, v2.Hash, v2.Revision, v2.Fingerprint = "v1beta2", "other", "r2", "f2"
	if v2.Key() != deploy.Key() {
		t.Errorf("Key() depends on the version or hashes: %q vs %q", v2.Key(), deploy.Key())
	}
}

func TestRefOf(t *testing.T) {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("batch/v1")
	u.SetKind("CronJob")
	u.SetNamespace("jobs")
	u.SetName("nightly")
	want := inventory.Ref{Group: "batch", Version: "v1", Kind: "CronJob", Namespace: "jobs", Name: "nightly"}
	if got := inventory.RefOf(u); got != want {
		t.Errorf("RefOf = %+v, want %+v", got, want)
	}
}

func TestStale(t *testing.T) {
	svc := inventory.Ref{Version: "v1", Kind: "Service", Namespace: "web", Name: "site"}
	inv := &inventory.Inventory{Environment: "prod", Entries: []inventory.Ref{crole, deploy, cm, ns, svc}}
	deployV2 := deploy
	deployV2.Version, deployV2.Hash = "v2", "new"
	tests := []struct {
		name    string
		desired []inventory.Ref
		want    []inventory.Ref
	}{
		{"nothing desired: all stale, in entry order", nil, []inventory.Ref{crole, deploy, cm, ns, svc}},
		{"all desired", []inventory.Ref{svc, ns, cm, deploy, crole}, nil},
		{"keys ignore the version", []inventory.Ref{deployV2, ns}, []inventory.Ref{crole, cm, svc}},
		{"same name, other kind is stale", []inventory.Ref{cm, deploy, ns, crole}, []inventory.Ref{svc}},
		{"desired objects not in the inventory are ignored", []inventory.Ref{{Version: "v1", Kind: "Secret", Namespace: "web", Name: "x"}}, []inventory.Ref{crole, deploy, cm, ns, svc}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, inv.Stale(tt.desired)); diff != "" {
				t.Errorf("Stale (-want +got):\n%s", diff)
			}
		})
	}
	if got := (&inventory.Inventory{}).Stale([]inventory.Ref{cm}); len(got) != 0 {
		t.Errorf("Stale of an empty inventory = %v", got)
	}
	keys := inv.Keys()
	if len(keys) != 5 || keys[deploy.Key()] != deploy || keys[ns.Key()] != ns {
		t.Errorf("Keys() = %v", keys)
	}
}

func applied(rev string, i int) inventory.Applied {
	return inventory.Applied{Revision: rev, Tree: "t" + rev, Time: time.Date(2025, 1, 1, 0, i, 0, 0, time.UTC), Outcome: "Succeeded"}
}

func revisions(h []inventory.Applied) []string {
	out := make([]string, len(h))
	for i, a := range h {
		out[i] = a.Revision
	}
	return out
}

func TestStatusRecord(t *testing.T) {
	var s inventory.Status
	s.Record(applied("a", 1))
	s.Record(applied("b", 2))
	s.Record(applied("c", 3))
	if diff := cmp.Diff([]string{"c", "b", "a"}, revisions(s.History)); diff != "" {
		t.Fatalf("newest first (-want +got):\n%s", diff)
	}
	// The same revision again replaces its entry and becomes the newest.
	again := applied("b", 4)
	again.Outcome = "health check failed"
	again.Approvers = []string{"alice", "bob"}
	s.Record(again)
	if diff := cmp.Diff([]string{"b", "c", "a"}, revisions(s.History)); diff != "" {
		t.Fatalf("replacing b (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(again, s.History[0]); diff != "" {
		t.Errorf("the replaced entry (-want +got):\n%s", diff)
	}
	// Bounded at MaxHistory, dropping the oldest.
	for i := 0; i < inventory.MaxHistory+10; i++ {
		s.Record(applied(fmt.Sprintf("r%02d", i), i))
	}
	if len(s.History) != inventory.MaxHistory {
		t.Fatalf("%d entries, want MaxHistory = %d", len(s.History), inventory.MaxHistory)
	}
	last := fmt.Sprintf("r%02d", inventory.MaxHistory+9)
	oldest := fmt.Sprintf("r%02d", 10)
	if s.History[0].Revision != last || s.History[inventory.MaxHistory-1].Revision != oldest {
		t.Errorf("history runs %s … %s, want %s … %s", s.History[0].Revision, s.History[len(s.History)-1].Revision, last, oldest)
	}
	// Replacing at the bound keeps the bound and loses nothing else.
	s.Record(applied(oldest, 99))
	if len(s.History) != inventory.MaxHistory || s.History[0].Revision != oldest || s.History[1].Revision != last {
		t.Errorf("after re-recording the oldest: %d entries, %v", len(s.History), revisions(s.History)[:3])
	}
	if s.History[inventory.MaxHistory-1].Revision != fmt.Sprintf("r%02d", 11) {
		t.Errorf("oldest entry %s, want r11", s.History[inventory.MaxHistory-1].Revision)
	}
}

func sampleInventory() *inventory.Inventory {
	st := inventory.Status{
		Revision: "cafebabe", Objects: 4, Healthy: 3, Progressing: 1, Drifted: 1, DriftTotal: 7,
		LastError:     "Deployment risk/dashboard: 0/2 ready",
		LastReconcile: time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC),
		Conditions: []metav1.Condition{{
			Type: "Ready", Status: metav1.ConditionFalse, Reason: "Progressing", Message: "waiting",
			LastTransitionTime: metav1.NewTime(time.Date(2025, 3, 4, 5, 6, 0, 0, time.UTC)),
		}},
	}
	st.Record(inventory.Applied{Revision: "cafebabe", Tree: "tree1", Time: time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC), Outcome: "Succeeded", Approvers: []string{"alice"}, Gate: "1 of 1 approvals"})
	return &inventory.Inventory{
		Environment: "prod",
		// Not sorted: Object sorts by key.
		Entries: []inventory.Ref{deploy, cm, crole, ns},
		Status:  st,
	}
}

func TestDescribe(t *testing.T) {
	refs := []inventory.Ref{deploy, cm, ns, crole}
	tests := []struct {
		n    int
		want string
	}{
		{10, "Deployment risk/dashboard, ConfigMap web/site, Namespace web, ClusterRole reader"},
		{4, "Deployment risk/dashboard, ConfigMap web/site, Namespace web, ClusterRole reader"},
		{3, "Deployment risk/dashboard, ConfigMap web/site, Namespace web, and 1 more"},
		{1, "Deployment risk/dashboard, and 3 more"},
		{0, "and 4 more"},
	}
	for _, tt := range tests {
		if got := inventory.Describe(refs, tt.n); got != tt.want {
			t.Errorf("Describe(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
	if got := inventory.Describe(nil, 5); got != "" {
		t.Errorf("Describe(nil) = %q", got)
	}
}

// startAPIServer starts a real apiserver (envtest: kube-apiserver + etcd)
// and returns a client for it. Without the binaries the test fails: they
// are part of the development setup (make tools-envtest).
func startAPIServer(t *testing.T) client.Client {
	t.Helper()
	c, _ := startEnvtest(t)
	return c
}

// startEnvtest is startAPIServer that also returns the environment, to add
// users with their own rights.
func startEnvtest(t *testing.T) (client.Client, *envtest.Environment) {
	t.Helper()
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			t.Fatal(err)
		}
		assets = filepath.Join(home, ".cache", "strata", "bin")
		t.Setenv("KUBEBUILDER_ASSETS", assets)
	}
	for _, bin := range []string{"kube-apiserver", "etcd"} {
		if _, err := os.Stat(filepath.Join(assets, bin)); err != nil {
			t.Fatalf("envtest binary %s is missing from KUBEBUILDER_ASSETS=%s (%v): run make tools-envtest", bin, assets, err)
		}
	}
	env := &envtest.Environment{}
	cfg, err := env.Start()
	if err != nil {
		_ = env.Stop()
		t.Fatalf("starting envtest (KUBEBUILDER_ASSETS=%s; run make tools-envtest): %v", assets, err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stopping envtest: %v", err)
		}
	})
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return c, env
}

func TestLoadSave(t *testing.T) {
	c := startAPIServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	t.Run("missing inventory", func(t *testing.T) {
		inv, err := inventory.Load(ctx, c, "prod")
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		if inv.Exists || inv.Environment != "prod" || len(inv.Entries) != 0 || inv.Status.Revision != "" {
			t.Errorf("Load of a missing inventory = %+v, want an empty one with Exists false", inv)
		}
		// Not even the namespace exists yet.
		err = c.Get(ctx, client.ObjectKey{Name: labels.SystemNamespace}, &corev1.Namespace{})
		if err == nil {
			t.Fatalf("%s exists before the first Save", labels.SystemNamespace)
		}
	})

	t.Run("save creates the namespace and the ConfigMap", func(t *testing.T) {
		inv := sampleInventory()
		stored, err := inventory.Save(ctx, c, inv)
		if err != nil {
			t.Fatalf("Save: %v", err)
		}
		if !inv.Exists {
			t.Error("Save did not set Exists")
		}
		if stored.Name != "strata-inventory-prod" || stored.Namespace != labels.SystemNamespace || stored.UID == "" {
			t.Errorf("Save returned %s/%s uid %q, want the stored object", stored.Namespace, stored.Name, stored.UID)
		}
		var nsObj corev1.Namespace
		if err := c.Get(ctx, client.ObjectKey{Name: labels.SystemNamespace}, &nsObj); err != nil {
			t.Fatalf("namespace %s: %v", labels.SystemNamespace, err)
		}
		if nsObj.Labels[labels.ManagedBy] != labels.ManagedByValue {
			t.Errorf("namespace labels %v", nsObj.Labels)
		}
		var live corev1.ConfigMap
		if err := c.Get(ctx, client.ObjectKey{Namespace: labels.SystemNamespace, Name: "strata-inventory-prod"}, &live); err != nil {
			t.Fatalf("ConfigMap: %v", err)
		}
		if live.Labels[labels.Environment] != "prod" || live.Annotations[labels.Revision] != "cafebabe" {
			t.Errorf("ConfigMap metadata: labels %v annotations %v", live.Labels, live.Annotations)
		}
		managers := map[string]bool{}
		for _, f := range live.ManagedFields {
			managers[f.Manager] = true
		}
		if !managers[labels.FieldManager] {
			t.Errorf("field managers %v, want %s", managers, labels.FieldManager)
		}
		// The root lists one shard, which holds the entries sorted by key
		// under short JSON field names.
		if live.Data["format"] != "2" || live.Data["count"] != "4" || live.Data["entries"] != "" {
			t.Errorf("root data %v", live.Data)
		}
		var shards corev1.ConfigMapList
		if err := c.List(ctx, &shards, client.InNamespace(labels.SystemNamespace), client.MatchingLabels{labels.InventoryOf: "prod"}); err != nil {
			t.Fatal(err)
		}
		if len(shards.Items) != 1 || !strings.Contains(live.Data["shards"], shards.Items[0].Name) {
			t.Fatalf("%d shards, root lists %s", len(shards.Items), live.Data["shards"])
		}
		raw := gunzip(t, shards.Items[0].BinaryData["entries.json.gz"])
		if !strings.Contains(raw, `{"g":"apps","v":"v1","k":"Deployment","ns":"risk","n":"dashboard","h":"h1","r":"r1","f":"f1"}`) {
			t.Errorf("shard JSON: %s", raw)
		}
		if sh := shards.Items[0]; sh.Labels[labels.Environment] != "" || sh.Labels[labels.ManagedBy] != labels.ManagedByValue {
			t.Errorf("shard labels %v: want managed-by and no environment (the reconciler's drift LIST selects on both)", sh.Labels)
		}

		got, err := inventory.Load(ctx, c, "prod")
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		if !got.Exists || got.Environment != "prod" {
			t.Errorf("Load: Exists %v, Environment %q", got.Exists, got.Environment)
		}
		if diff := cmp.Diff([]inventory.Ref{cm, ns, deploy, crole}, got.Entries); diff != "" {
			t.Errorf("entries round trip (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(inv.Status, got.Status); diff != "" {
			t.Errorf("status round trip (-want +got):\n%s", diff)
		}
	})

	t.Run("save again updates in place", func(t *testing.T) {
		inv, err := inventory.Load(ctx, c, "prod")
		if err != nil {
			t.Fatal(err)
		}
		inv.Entries = inv.Entries[:1]
		inv.Status.Revision = "deadbeef"
		inv.Status.Record(inventory.Applied{Revision: "deadbeef", Tree: "tree2", Time: time.Date(2025, 3, 5, 0, 0, 0, 0, time.UTC), Outcome: "Succeeded"})
		if _, err := inventory.Save(ctx, c, inv); err != nil {
			t.Fatalf("Save: %v", err)
		}
		got, err := inventory.Load(ctx, c, "prod")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]inventory.Ref{cm}, got.Entries); diff != "" {
			t.Errorf("entries (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"deadbeef", "cafebabe"}, revisions(got.Status.History)); diff != "" {
			t.Errorf("history (-want +got):\n%s", diff)
		}
		// Another environment is another ConfigMap.
		other, err := inventory.Load(ctx, c, "staging")
		if err != nil || other.Exists {
			t.Errorf("Load(staging) = %+v, %v; want a missing inventory", other, err)
		}
	})

	t.Run("corrupt entries", func(t *testing.T) {
		bad := &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Namespace: labels.SystemNamespace, Name: labels.InventoryName("broken")},
			Data:       map[string]string{"entries": `[{"k": "ConfigMap", `, "status": `{"revision": "x"}`},
		}
		if err := c.Create(ctx, bad); err != nil {
			t.Fatal(err)
		}
		inv, err := inventory.Load(ctx, c, "broken")
		if err == nil {
			t.Fatalf("Load of a corrupt inventory = %+v, want an error", inv)
		}
		for _, want := range []string{"strata-system/strata-inventory-broken is corrupt", "strata will not prune", "fix or delete the ConfigMap"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not say %q", err, want)
			}
		}
	})

	t.Run("corrupt status is informational", func(t *testing.T) {
		bad := &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Namespace: labels.SystemNamespace, Name: labels.InventoryName("oddstatus")},
			Data:       map[string]string{"entries": `[{"v":"v1","k":"ConfigMap","ns":"web","n":"site"}]`, "status": "{not json"},
		}
		if err := c.Create(ctx, bad); err != nil {
			t.Fatal(err)
		}
		inv, err := inventory.Load(ctx, c, "oddstatus")
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		if diff := cmp.Diff([]inventory.Ref{cm}, inv.Entries); diff != "" || !inv.Exists {
			t.Errorf("entries (-want +got):\n%s", diff)
		}
	})

	t.Run("empty data is an empty inventory", func(t *testing.T) {
		empty := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: labels.SystemNamespace, Name: labels.InventoryName("empty")}}
		if err := c.Create(ctx, empty); err != nil {
			t.Fatal(err)
		}
		inv, err := inventory.Load(ctx, c, "empty")
		if err != nil || !inv.Exists || len(inv.Entries) != 0 {
			t.Errorf("Load = %+v, %v", inv, err)
		}
	})
}

func gunzip(t *testing.T, b []byte) string {
	t.Helper()
	zr, err := gzip.NewReader(strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}
