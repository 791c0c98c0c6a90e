package inventory_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-gitops/strata/internal/inventory"
	"github.com/strata-gitops/strata/internal/labels"
)

// Two writers that Save at once (a leader-election handover gone wrong)
// and a reader: every Load reads one complete inventory that a writer
// stored, never a mix of two, and never a shard that a writer's collection
// removed under another writer's root.
func concurrentSaves(t *testing.T, c client.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	const env = "race"
	// Writer w's i-th inventory has 1,500+i*37+w entries, all of revision
	// "w-i", in shards of about 256 entries.
	defer inventory.SmallShards(256, 4<<10)()
	size := func(w, i int) int { return 1500 + i*37 + w }
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for w := range 2 {
		wg.Go(func() {
			for i := range 12 {
				rev := fmt.Sprintf("%d-%d", w, i)
				inv, err := inventory.Load(ctx, c, env)
				if err != nil {
					errs <- fmt.Errorf("writer %d: Load: %w", w, err)
					return
				}
				inv.Entries, inv.Status.Revision = refs(size(w, i), 0, rev), rev
				if _, err := inventory.Save(ctx, c, inv); err != nil {
					errs <- fmt.Errorf("writer %d: Save %s: %w", w, rev, err)
					return
				}
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	loads := 0
	for reading := true; reading; {
		select {
		case <-done:
			reading = false
		default:
		}
		inv, err := inventory.Load(ctx, c, env)
		if err != nil {
			t.Fatalf("Load during concurrent Saves: %v", err)
		}
		if !inv.Exists {
			continue
		}
		loads++
		var w, i int
		if _, err := fmt.Sscanf(inv.Status.Revision, "%d-%d", &w, &i); err != nil {
			t.Fatalf("revision %q", inv.Status.Revision)
		}
		if len(inv.Entries) != size(w, i) {
			t.Fatalf("Load read %d entries for %s, which stored %d", len(inv.Entries), inv.Status.Revision, size(w, i))
		}
		for _, e := range inv.Entries {
			if e.Revision != inv.Status.Revision {
				t.Fatalf("Load of %s read an entry of %s: a mix of two inventories", inv.Status.Revision, e.Revision)
			}
		}
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// Once the writers are done, one more Save leaves no orphan.
	if err := saveNew(ctx, c, env, refs(100, 0, "last"), "last"); err != nil {
		t.Fatal(err)
	}
	if orphans, err := inventory.Orphans(ctx, c, env); err != nil || len(orphans) > 0 {
		t.Errorf("orphan shards: %v %v", orphans, err)
	}
	t.Logf("%d consistent Loads during 24 concurrent Saves", loads)
}

// Writer A collects old shards while writer B has written the shards of
// its next generation and not yet its root: A must spare B's shards, or
// B's root, once written, would list shards that are gone.
func collectSparesTheNextGeneration(t *testing.T, c client.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const env = "handover"
	if err := saveNew(ctx, c, env, refs(3000, 0, "x"), "x"); err != nil {
		t.Fatal(err)
	}
	bReady, releaseB, bDone := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	b := &faultClient{Client: c, beforeUpdate: func(name string) {
		if name == labels.InventoryName(env) {
			close(bReady) // B's shards are written; its root is next
			<-releaseB
		}
	}}
	var once sync.Once
	a := &faultClient{Client: c, beforeList: func() {
		once.Do(func() { // A wrote its root and starts collecting: B runs up to its root
			go func() { bDone <- saveNew(ctx, b, env, refs(3000, 0, "z"), "z") }()
			<-bReady
		})
	}}
	if err := saveNew(ctx, a, env, refs(3000, 0, "y"), "y"); err != nil {
		t.Fatal(err)
	}
	close(releaseB)
	if err := <-bDone; err != nil {
		t.Fatal(err)
	}
	inv, err := inventory.Load(ctx, c, env)
	if err != nil {
		t.Fatalf("after A collected while B wrote: %v", err)
	}
	if inv.Status.Revision != "z" || len(inv.Entries) != 3000 || inv.Entries[0].Revision != "z" {
		t.Errorf("Load read %d entries of %q, want B's 3000 of z", len(inv.Entries), inv.Status.Revision)
	}
}
