package inventory_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-gitops/strata/internal/inventory"
	"github.com/strata-gitops/strata/internal/labels"
)

// faultClient is the real client, except that its Nth write (create,
// update, patch or delete) fails, and with crash every write after it too:
// the process died there.
type faultClient struct {
	client.Client
	failAt int
	crash  bool

	mu     sync.Mutex
	writes []string // every write attempted, as "verb name"

	// beforeList and beforeUpdate, when set, run before the call reaches
	// the apiserver: they interleave two writers at chosen points.
	beforeList   func()
	beforeUpdate func(name string)
}

func (f *faultClient) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	if f.beforeList != nil {
		f.beforeList()
	}
	return f.Client.List(ctx, list, opts...)
}

var errInjected = errors.New("injected failure")

func (f *faultClient) write(verb string, obj client.Object) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writes = append(f.writes, verb+" "+obj.GetName())
	n := len(f.writes)
	if n == f.failAt || f.crash && f.failAt > 0 && n > f.failAt {
		return fmt.Errorf("%w at write %d (%s %s)", errInjected, n, verb, obj.GetName())
	}
	return nil
}

func (f *faultClient) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	if err := f.write("create", obj); err != nil {
		return err
	}
	return f.Client.Create(ctx, obj, opts...)
}

func (f *faultClient) Update(ctx context.Context, obj client.Object, opts ...client.UpdateOption) error {
	if f.beforeUpdate != nil {
		f.beforeUpdate(obj.GetName())
	}
	if err := f.write("update", obj); err != nil {
		return err
	}
	return f.Client.Update(ctx, obj, opts...)
}

func (f *faultClient) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
	if err := f.write("patch", obj); err != nil {
		return err
	}
	return f.Client.Patch(ctx, obj, patch, opts...)
}

func (f *faultClient) Delete(ctx context.Context, obj client.Object, opts ...client.DeleteOption) error {
	if err := f.write("delete", obj); err != nil {
		return err
	}
	return f.Client.Delete(ctx, obj, opts...)
}

// writeV1 stores entries as strata wrote inventories before sharding: one
// ConfigMap, the entries as JSON under data.entries.
func writeV1(ctx context.Context, t *testing.T, c client.Client, env string, entries []inventory.Ref, rev string) {
	t.Helper()
	e, _ := json.Marshal(sortedByKey(entries))
	s, _ := json.Marshal(inventory.Status{Revision: rev})
	cm := &corev1.ConfigMap{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Namespace: labels.SystemNamespace, Name: labels.InventoryName(env),
			Labels: map[string]string{labels.ManagedBy: labels.ManagedByValue, labels.Environment: env}},
		Data: map[string]string{"entries": string(e), "status": string(s)},
	}
	if err := c.Patch(ctx, cm, client.Apply, client.FieldOwner(labels.FieldManager), client.ForceOwnership); err != nil {
		t.Fatal(err)
	}
}

// saveFailingAtEveryWrite fails Save at each of its writes (alone, and
// as a crash that stops every write after it) and checks that Load then
// reads the complete old or the complete new inventory, never a mix, that
// a Save that said it succeeded stored the new one, and that Save again
// stores it and leaves no orphan shard.
func saveFailingAtEveryWrite(t *testing.T, c client.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := inventory.EnsureNamespace(ctx, c); err != nil {
		t.Fatal(err)
	}
	oldRev, newRev := strings.Repeat("a", 40), strings.Repeat("b", 40)
	// With shards of about 256 entries, 1,500 objects take several; the new
	// revision removes the Services of two namespaces, adds 300 Deployments
	// and changes the ConfigMaps of another, so that Save writes new shards,
	// reuses others and collects the rest.
	defer inventory.SmallShards(256, 4<<10)()
	oldEntries := refs(1_500, 0, oldRev)
	var newEntries []inventory.Ref
	for _, e := range oldEntries {
		switch {
		case e.Kind == "Service" && (e.Namespace == "bench-03" || e.Namespace == "bench-04"):
			continue
		case e.Kind == "ConfigMap" && e.Namespace == "bench-17":
			e.Hash, e.Revision = "changed", newRev
		}
		newEntries = append(newEntries, e)
	}
	for _, e := range refs(900, 20_000, newRev) {
		if e.Kind == "Deployment" {
			newEntries = append(newEntries, e)
		}
	}
	scenarios := []struct {
		name  string
		setup func(t *testing.T, env string)
		old   []inventory.Ref
	}{
		{"sharded", func(t *testing.T, env string) {
			if _, err := inventory.Save(ctx, c, &inventory.Inventory{Environment: env, Entries: oldEntries, Status: inventory.Status{Revision: oldRev}}); err != nil {
				t.Fatal(err)
			}
		}, oldEntries},
		{"v1", func(t *testing.T, env string) { writeV1(ctx, t, c, env, oldEntries[:600], oldRev) }, oldEntries[:600]},
		{"none", func(t *testing.T, env string) {}, nil},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			// A clean Save tells how many writes there are to fail.
			probe := &faultClient{Client: c}
			sc.setup(t, sc.name+"-probe")
			if err := saveNew(ctx, probe, sc.name+"-probe", newEntries, newRev); err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: a Save makes %d writes: %s", sc.name, len(probe.writes), strings.Join(probe.writes, ", "))
			for n := 1; n <= len(probe.writes); n++ {
				// Save stops at its first failed write, so a crash and a single
				// failure differ only if that changes: both for one scenario.
				modes := []bool{true}
				if sc.name == "sharded" {
					modes = []bool{false, true}
				}
				for _, crash := range modes {
					env := fmt.Sprintf("%s-%d-%v", sc.name, n, crash)
					sc.setup(t, env)
					fc := &faultClient{Client: c, failAt: n, crash: crash}
					saveErr := saveNew(ctx, fc, env, newEntries, newRev)
					if saveErr != nil && !errors.Is(saveErr, errInjected) {
						t.Fatalf("%s: Save failed otherwise: %v", env, saveErr)
					}
					got, err := inventory.Load(ctx, c, env)
					if err != nil {
						t.Fatalf("%s: after failing write %d (%s): Load: %v", env, n, probe.writes[n-1], err)
					}
					isOld := cmp.Equal(sortedByKey(sc.old), got.Entries, emptyNil) && got.Status.Revision == revOf(sc.old, oldRev)
					isNew := cmp.Equal(sortedByKey(newEntries), got.Entries, emptyNil) && got.Status.Revision == newRev
					switch {
					case !isOld && !isNew:
						t.Fatalf("%s: after failing write %d (%s), Load read %d entries at %q: neither the old (%d) nor the new (%d) inventory",
							env, n, probe.writes[n-1], len(got.Entries), got.Status.Revision, len(sc.old), len(newEntries))
					case saveErr == nil && !isNew:
						t.Fatalf("%s: Save succeeded but Load reads the old inventory", env)
					}
					// Save again converges and collects what the failed one left.
					if err := saveNew(ctx, c, env, newEntries, newRev); err != nil {
						t.Fatalf("%s: Save again: %v", env, err)
					}
					got, err = inventory.Load(ctx, c, env)
					if err != nil || !cmp.Equal(sortedByKey(newEntries), got.Entries) {
						t.Fatalf("%s: after Save again: %d entries, %v", env, len(got.Entries), err)
					}
					if orphans, err := inventory.Orphans(ctx, c, env); err != nil || len(orphans) > 0 {
						t.Fatalf("%s: orphan shards after Save again: %v %v", env, orphans, err)
					}
				}
			}
		})
	}
}

var emptyNil = cmp.Comparer(func(a, b []inventory.Ref) bool {
	return len(a) == 0 && len(b) == 0 || cmp.Equal(a, b)
})

func revOf(old []inventory.Ref, rev string) string {
	if old == nil {
		return ""
	}
	return rev
}
