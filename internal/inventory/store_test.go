package inventory_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	"github.com/strata-gitops/strata/internal/inventory"
	"github.com/strata-gitops/strata/internal/labels"
)

// TestStore runs the tests of Load and Save against one real apiserver
// (each its own environment); together about a minute and a half on two
// busy cores, most of it failing Save at each of its writes.
func TestStore(t *testing.T) {
	c, env := startEnvtest(t)
	for _, tt := range []struct {
		name string
		test func(*testing.T, client.Client)
	}{
		{"failing at every write", saveFailingAtEveryWrite},
		{"upgrade from one ConfigMap", loadUpgradesSingleConfigMap},
		{"50,000 objects", inventoryOf50000},
		{"concurrent saves", concurrentSaves},
		{"collect spares the next generation", collectSparesTheNextGeneration},
		{"forgeries fail closed", forgeriesFailClosed},
		{"status only", loadStatusOnly},
	} {
		t.Run(tt.name, func(t *testing.T) { tt.test(t, c) })
	}
	t.Run("readers need get alone", func(t *testing.T) { readersNeedGetAlone(t, c, env) })
}

// Load and LoadStatus need no more than get on ConfigMaps in strata-system:
// an agent reads its peers' inventories with just that (e2e/agent_test.go).
func readersNeedGetAlone(t *testing.T, c client.Client, env *envtest.Environment) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	defer inventory.SmallShards(256, 4<<10)()
	if err := saveNew(ctx, c, "peer", refs(1000, 0, "r"), "r"); err != nil {
		t.Fatal(err)
	}
	meta := metav1.ObjectMeta{Name: "inventory-reader", Namespace: labels.SystemNamespace}
	for _, obj := range []client.Object{
		&rbacv1.Role{ObjectMeta: meta, Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get"}}}},
		&rbacv1.RoleBinding{ObjectMeta: meta, RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: meta.Name},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, Name: "inventory-reader"}}},
	} {
		if err := c.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}
	user, err := env.ControlPlane.AddUser(envtest.User{Name: "inventory-reader"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := client.New(user.Config(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.List(ctx, &corev1.ConfigMapList{}, client.InNamespace(labels.SystemNamespace)); err == nil {
		t.Fatal("the reader may list ConfigMaps: the test would prove nothing")
	}
	if inv, err := inventory.Load(ctx, rc, "peer"); err != nil || len(inv.Entries) != 1000 {
		t.Errorf("Load with get alone: %v", err)
	}
	if inv, err := inventory.LoadStatus(ctx, rc, "peer"); err != nil || inv.Status.Revision != "r" {
		t.Errorf("LoadStatus with get alone: %v", err)
	}
}

// refs returns n entries of a bench-like overlay at rev; from shifts the
// names, so refs(n, 100, rev) shares n-100 objects with refs(n, 0, rev).
func refs(n, from int, rev string) []inventory.Ref {
	kinds := []struct{ g, k string }{{"apps", "Deployment"}, {"", "Service"}, {"", "ConfigMap"}}
	out := make([]inventory.Ref, n)
	for i := range out {
		j := i + from
		k := kinds[j%len(kinds)]
		h := sha256.Sum256([]byte(strconv.Itoa(j)))
		out[i] = inventory.Ref{Group: k.g, Version: "v1", Kind: k.k, Namespace: fmt.Sprintf("bench-%02d", j%20), Name: fmt.Sprintf("app-%06d", j),
			Hash: hex.EncodeToString(h[:12]), Revision: rev, Fingerprint: "g1:" + hex.EncodeToString(h[12:20])}
	}
	return out
}

func sortedByKey(e []inventory.Ref) []inventory.Ref {
	out := slices.Clone(e)
	slices.SortFunc(out, func(a, b inventory.Ref) int { return strings.Compare(a.Key(), b.Key()) })
	return out
}

func saveNew(ctx context.Context, c client.Client, env string, entries []inventory.Ref, rev string) error {
	inv, err := inventory.Load(ctx, c, env)
	if err != nil {
		return err
	}
	inv.Entries, inv.Status.Revision = entries, rev
	_, err = inventory.Save(ctx, c, inv)
	return err
}

// An inventory written before sharding (one ConfigMap, the entries in
// data.entries) is read as it is and moved into shards by the next Save.
func loadUpgradesSingleConfigMap(t *testing.T, c client.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := inventory.EnsureNamespace(ctx, c); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("testdata/single-configmap-before-sharding.yaml")
	if err != nil {
		t.Fatal(err)
	}
	old := &corev1.ConfigMap{}
	if err := yaml.UnmarshalStrict(b, old); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(ctx, old); err != nil {
		t.Fatal(err)
	}
	want := []inventory.Ref{cm, ns, deploy, crole}
	inv, err := inventory.Load(ctx, c, "prod")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, inv.Entries); diff != "" || inv.Status.Revision != "cafebabe" {
		t.Fatalf("old format: revision %q, entries (-want +got):\n%s", inv.Status.Revision, diff)
	}
	inv.Status.Revision = "deadbeef"
	if _, err := inventory.Save(ctx, c, inv); err != nil {
		t.Fatal(err)
	}
	root := &corev1.ConfigMap{}
	if err := c.Get(ctx, client.ObjectKeyFromObject(old), root); err != nil {
		t.Fatal(err)
	}
	if _, ok := root.Data["entries"]; ok || root.Data["format"] != "2" || root.UID != old.UID {
		t.Errorf("after Save the root has data keys %v, uid %s (was %s): want format 2, no entries, the same object", keys(root.Data), root.UID, old.UID)
	}
	if root.Labels["team"] != "platform" {
		t.Errorf("Save dropped a label someone else set: %v", root.Labels)
	}
	again, err := inventory.Load(ctx, c, "prod")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, again.Entries); diff != "" || again.Status.Revision != "deadbeef" {
		t.Errorf("after the upgrade: revision %q, entries (-want +got):\n%s", again.Status.Revision, diff)
	}

	// Downgraded, an older strata applies its single ConfigMap over the
	// root (server-side apply keeps the format-2 keys it does not know);
	// upgraded again, strata reads what the older one wrote last, and its
	// next Save collects the shards from before.
	writeV1(ctx, t, c, "prod", []inventory.Ref{cm, deploy}, "downgraded")
	back, err := inventory.Load(ctx, c, "prod")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]inventory.Ref{cm, deploy}, back.Entries); diff != "" || back.Status.Revision != "downgraded" {
		t.Fatalf("after a downgrade: revision %q, entries (-want +got):\n%s", back.Status.Revision, diff)
	}
	if st, err := inventory.LoadStatus(ctx, c, "prod"); err != nil || st.Status.Revision != "downgraded" {
		t.Errorf("LoadStatus after a downgrade: %+v, %v", st, err)
	}
	if _, err := inventory.Save(ctx, c, back); err != nil {
		t.Fatal(err)
	}
	if orphans, err := inventory.Orphans(ctx, c, "prod"); err != nil || len(orphans) > 0 {
		t.Errorf("shards from before the downgrade remain: %v %v", orphans, err)
	}
	if final, err := inventory.Load(ctx, c, "prod"); err != nil || !cmp.Equal([]inventory.Ref{cm, deploy}, final.Entries) {
		t.Errorf("after upgrading again: %v, %v", final, err)
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// inventoryOf50000 stores 50,000 objects, the goal for one
// cluster, and reports what it takes.
func inventoryOf50000(t *testing.T, c client.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rev := strings.Repeat("c", 40)
	entries := refs(50_000, 0, rev)
	inv := &inventory.Inventory{Environment: "big", Entries: entries, Status: inventory.Status{Revision: rev}}

	start := time.Now()
	counting := &faultClient{Client: c}
	if _, err := inventory.Save(ctx, counting, inv); err != nil {
		t.Fatal(err)
	}
	firstSave := time.Since(start)

	var shards corev1.ConfigMapList
	if err := c.List(ctx, &shards, client.InNamespace(labels.SystemNamespace), client.MatchingLabels{labels.InventoryOf: "big"}); err != nil {
		t.Fatal(err)
	}
	root := &corev1.ConfigMap{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: labels.SystemNamespace, Name: labels.InventoryName("big")}, root); err != nil {
		t.Fatal(err)
	}
	var total, largest int
	for _, sh := range shards.Items {
		n := len(sh.BinaryData["entries.json.gz"])
		total += n
		largest = max(largest, n)
	}

	var got *inventory.Inventory
	var err error
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start = time.Now()
	loadPeak, loadAlloc := heapPeak(func() { got, err = inventory.Load(ctx, c, "big") })
	load := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	retained := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	if diff := cmp.Diff(sortedByKey(entries), got.Entries); diff != "" {
		t.Fatalf("50,000 entries do not round-trip (-want +got):\n%s", diff)
	}

	// One object changed: one shard written, the root, the old shard deleted.
	got.Entries[25_000].Hash, got.Entries[25_000].Revision = "changed", strings.Repeat("d", 40)
	counting.writes = nil
	start = time.Now()
	if _, err := inventory.Save(ctx, counting, got); err != nil {
		t.Fatal(err)
	}
	oneChange := time.Since(start)
	if len(counting.writes) > 5 {
		t.Errorf("a change to one object of 50,000 made %d writes: %v", len(counting.writes), counting.writes)
	}
	oneWrites := strings.Join(counting.writes, ", ")
	// Only the status changed: the root alone.
	got.Status.LastReconcile = time.Now()
	counting.writes = nil
	start = time.Now()
	savePeak, saveAlloc := heapPeak(func() { _, err = inventory.Save(ctx, counting, got) })
	if err != nil {
		t.Fatal(err)
	}
	statusOnly := time.Since(start)
	if len(counting.writes) != 1 || !strings.HasPrefix(counting.writes[0], "update "+labels.InventoryName("big")) {
		t.Errorf("a status-only Save made writes %v, want the root's update alone", counting.writes)
	}
	runtime.KeepAlive(got)
	t.Logf("50,000 entries: %d shards, %d bytes compressed (%.1f bytes an entry, largest shard %d bytes), root %d bytes of data",
		len(shards.Items), total, float64(total)/50_000, largest, len(root.Data["shards"])+len(root.Data["status"]))
	t.Logf("first Save %v; Load %v (heap peak +%d MiB, allocated %d MiB, retained %d MiB); one object changed: Save %v (%s); status only: Save %v (heap peak +%d MiB, allocated %d MiB)",
		firstSave.Round(time.Millisecond), load.Round(time.Millisecond), loadPeak>>20, loadAlloc>>20, retained>>20,
		oneChange.Round(time.Millisecond), oneWrites, statusOnly.Round(time.Millisecond), savePeak>>20, saveAlloc>>20)
}

// heapPeak runs f and returns how far the live heap rose above where it
// started (sampled every 100µs) and how much f allocated.
func heapPeak(f func()) (peak, allocated uint64) {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/gc/heap/allocs:bytes"}}
	runtime.GC()
	metrics.Read(s)
	base, alloc0 := s[0].Value.Uint64(), s[1].Value.Uint64()
	stop, done := make(chan struct{}), make(chan uint64)
	go func() {
		m := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		var top uint64
		for {
			metrics.Read(m)
			top = max(top, m[0].Value.Uint64())
			select {
			case <-stop:
				done <- top
				return
			case <-time.After(100 * time.Microsecond):
			}
		}
	}()
	f()
	close(stop)
	top := <-done
	metrics.Read(s)
	return max(top, base) - base, s[1].Value.Uint64() - alloc0
}

// LoadStatus reads the root alone (for the readers of status), notices a
// missing shard, and what it returns cannot be saved over the entries.
func loadStatusOnly(t *testing.T, c client.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	defer inventory.SmallShards(256, 4<<10)()
	if inv, err := inventory.LoadStatus(ctx, c, "status-none"); err != nil || inv.Exists {
		t.Fatalf("LoadStatus of no inventory = %+v, %v", inv, err)
	}
	if err := saveNew(ctx, c, "status", refs(1000, 0, "r1"), "r1"); err != nil {
		t.Fatal(err)
	}
	inv, err := inventory.LoadStatus(ctx, c, "status")
	if err != nil || !inv.Exists || inv.Status.Revision != "r1" || inv.Entries != nil {
		t.Fatalf("LoadStatus = exists %v, revision %q, %d entries, %v; want r1 and no entries", inv.Exists, inv.Status.Revision, len(inv.Entries), err)
	}
	if _, err := inventory.Save(ctx, c, inv); err == nil || !strings.Contains(err.Error(), "cannot be saved") {
		t.Errorf("Save of a status-only inventory: %v", err)
	}
	if full, err := inventory.Load(ctx, c, "status"); err != nil || len(full.Entries) != 1000 {
		t.Fatalf("after the refused Save, Load read %d entries, %v", len(full.Entries), err)
	}
	writeV1(ctx, t, c, "status-v1", refs(10, 0, "old"), "old")
	if inv, err := inventory.LoadStatus(ctx, c, "status-v1"); err != nil || inv.Status.Revision != "old" {
		t.Errorf("LoadStatus of a single-ConfigMap inventory = %+v, %v", inv, err)
	}
	var shards corev1.ConfigMapList
	if err := c.List(ctx, &shards, client.InNamespace(labels.SystemNamespace), client.MatchingLabels{labels.InventoryOf: "status"}); err != nil || len(shards.Items) < 2 {
		t.Fatalf("%d shards, %v", len(shards.Items), err)
	}
	if err := c.Delete(ctx, &shards.Items[1]); err != nil {
		t.Fatal(err)
	}
	if _, err := inventory.LoadStatus(ctx, c, "status"); err == nil || !strings.Contains(err.Error(), "is missing") {
		t.Errorf("LoadStatus with a shard missing: %v", err)
	}
}
