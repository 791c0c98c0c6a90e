package audit

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-gitops/strata/internal/apiservertest"
	"github.com/strata-gitops/strata/internal/labels"
)

// startAPIServer starts a real apiserver (envtest: kube-apiserver + etcd)
// and stops it when t ends. Without binaries the test fails, naming the
// make target that installs them.
func startAPIServer(t *testing.T) client.Client {
	t.Helper()
	_, cfg := apiservertest.Start(t)
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestStore runs the storage tests against one apiserver; each subtest
// starts from an empty audit log.
func TestStore(t *testing.T) {
	c := startAPIServer(t)
	ctx := context.Background()
	reset := func(t *testing.T) {
		t.Helper()
		if err := c.DeleteAllOf(ctx, &corev1.ConfigMap{}, client.InNamespace(labels.SystemNamespace), client.MatchingLabels{Label: "true"}); err != nil {
			t.Fatal(err)
		}
	}
	// Runs first: strata-system does not exist yet.
	t.Run("creates namespace", func(t *testing.T) {
		w := NewWriter(c, "reconciler", WriterOptions{FlushInterval: time.Hour})
		w.Record(Event{Kind: Apply, Object: "Deployment ledger/ledger", Cluster: "onprem"})
		if err := w.Close(ctx); err != nil {
			t.Fatal(err)
		}
		evs, err := Read(ctx, c, time.Time{})
		if err != nil || len(evs) != 1 {
			t.Fatalf("Read = %v, %v; want one event", evs, err)
		}
		reset(t)
	})
	t.Run("concurrent records and aggregation", func(t *testing.T) { reset(t); testConcurrent(t, c) })
	t.Run("rotation", func(t *testing.T) { reset(t); testRotation(t, c) })
	t.Run("rotation at default size", func(t *testing.T) { reset(t); testRotationDefault(t, c) })
	t.Run("two sources", func(t *testing.T) { reset(t); testTwoWriters(t, c, "reconciler", "webhook-pod-a") })
	t.Run("same source conflicts", func(t *testing.T) { reset(t); testSameSource(t, c) })
	t.Run("survives restart", func(t *testing.T) { reset(t); testRestart(t, c) })
	t.Run("background flush", func(t *testing.T) { reset(t); testBackgroundFlush(t, c) })
	t.Run("bounded buffer", func(t *testing.T) { reset(t); testBoundedBuffer(t, c) })
	t.Run("tampering detected", func(t *testing.T) { reset(t); testTamper(t, c) })
	t.Run("since and retention", func(t *testing.T) { reset(t); testSinceRetention(t, c) })
	t.Run("writers per cluster", func(t *testing.T) { reset(t); testWriters(t, c) })
	t.Run("denial flood stays bounded", func(t *testing.T) { reset(t); testDenialFlood(t, c) })
	t.Run("segment aggregation", func(t *testing.T) { reset(t); testSegmentAggregation(t, c) })
	t.Run("size bound", func(t *testing.T) { reset(t); testSizeBound(t, c) })
	t.Run("age roll-off", func(t *testing.T) { reset(t); testAgeRollOff(t, c) })
}

func countBy(evs []Event, f func(Event) string) map[string]int {
	m := map[string]int{}
	for _, e := range evs {
		m[f(e)] += e.N()
	}
	return m
}

func auditConfigMaps(t *testing.T, c client.Client) []string {
	t.Helper()
	var list corev1.ConfigMapList
	if err := c.List(context.Background(), &list, client.InNamespace(labels.SystemNamespace), client.MatchingLabels{Label: "true"}); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, cm := range list.Items {
		names = append(names, cm.Name)
	}
	sort.Strings(names)
	return names
}

// testConcurrent: 50 goroutines record 40 distinct events each, 10 times
// every one (identical events aggregate), plus a flush racing them.
func testConcurrent(t *testing.T, c client.Client) {
	ctx := context.Background()
	w := NewWriter(c, "webhook-pod-1", WriterOptions{FlushInterval: 50 * time.Millisecond, Cluster: "public", Tier: "public-cloud"})
	const goroutines, distinct, repeats = 50, 40, 10
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for r := 0; r < repeats; r++ {
				for d := 0; d < distinct; d++ {
					// Placements: identical only when every field is (denials
					// merge across names, see testDenialFlood).
					w.Record(Event{Kind: Placement, Rule: "tier-not-allowed", Sensitivity: "restricted",
						Object: fmt.Sprintf("ConfigMap ns/obj-%d-%d", g, d), Actor: fmt.Sprintf("user-%d", g%5),
						Message: "restricted data is not allowed in public-cloud"})
				}
			}
		}(g)
	}
	// Flushes race the records.
	stop := make(chan struct{})
	flushed := make(chan error)
	go func() {
		for {
			select {
			case <-stop:
				flushed <- nil
				return
			default:
				if err := w.Flush(ctx); err != nil {
					flushed <- err
					return
				}
			}
		}
	}()
	wg.Wait()
	close(stop)
	if err := <-flushed; err != nil {
		t.Fatal(err)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	st := w.Stats()
	evs, err := Read(ctx, c, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, e := range evs {
		total += e.N()
		if e.Cluster != "public" || e.Tier != "public-cloud" || e.Source != "webhook-pod-1" || e.ID == "" {
			t.Fatalf("event without writer defaults: %+v", e)
		}
		if e.Count > 1 && e.Last.Before(e.Time) {
			t.Fatalf("aggregated event with last %v before time %v", e.Last, e.Time)
		}
	}
	if want := goroutines * distinct * repeats; total != want || st.Recorded != want || st.Written != want || st.Dropped != 0 {
		t.Fatalf("occurrences read %d, recorded %d, written %d, dropped %d; want %d", total, st.Recorded, st.Written, st.Dropped, want)
	}
	perObject := countBy(evs, func(e Event) string { return e.Object })
	if len(perObject) != goroutines*distinct {
		t.Fatalf("%d distinct objects, want %d", len(perObject), goroutines*distinct)
	}
	for o, n := range perObject {
		if n != repeats {
			t.Fatalf("%s counted %d times, want %d", o, n, repeats)
		}
	}
	if len(evs) >= total {
		t.Fatalf("%d lines for %d occurrences: nothing was aggregated", len(evs), total)
	}
	t.Logf("%d occurrences in %d lines, %d flushes, %d conflicts, ConfigMaps %v", total, len(evs), st.Flushes, st.Conflicts, auditConfigMaps(t, c))
}

// testRotation: a small MaxBytes makes the writer start parts -2, -3, ….
func testRotation(t *testing.T, c client.Client) {
	ctx := context.Background()
	day := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	w := NewWriter(c, "reconciler", WriterOptions{FlushInterval: time.Hour, MaxBytes: 8 << 10, Retention: -1})
	for i := 0; i < 200; i++ {
		w.Record(Event{Time: day.Add(time.Duration(i) * time.Second), Kind: Apply, Cluster: "onprem", Tier: "on-prem",
			Object: fmt.Sprintf("ConfigMap ledger/cm-%03d", i), Sensitivity: "restricted", Commit: strings.Repeat("a", 40)})
		if i%50 == 49 {
			if err := w.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	names := auditConfigMaps(t, c)
	if len(names) < 3 || !containsName(names, ConfigMapName("reconciler", day, 2)) {
		t.Fatalf("ConfigMaps %v: want parts -1, -2, …", names)
	}
	var list corev1.ConfigMapList
	_ = c.List(ctx, &list, client.InNamespace(labels.SystemNamespace), client.MatchingLabels{Label: "true"})
	for _, cm := range list.Items {
		if n := len(cm.Data[DataKey]); n > 8<<10 {
			t.Fatalf("%s holds %d bytes, more than MaxBytes", cm.Name, n)
		}
	}
	evs, err := Read(ctx, c, time.Time{})
	if err != nil || len(evs) != 200 {
		t.Fatalf("Read = %d events, %v; want 200", len(evs), err)
	}
	for i, e := range evs {
		if want := fmt.Sprintf("ConfigMap ledger/cm-%03d", i); e.Object != want {
			t.Fatalf("event %d is %s, want %s (sorted by time)", i, e.Object, want)
		}
	}
}

// testRotationDefault writes more than 900 KiB in one flush: the default
// limit rotates before the apiserver's 1 MiB limit refuses the ConfigMap.
func testRotationDefault(t *testing.T, c client.Client) {
	ctx := context.Background()
	w := NewWriter(c, "webhook-big", WriterOptions{FlushInterval: time.Hour})
	msg := strings.Repeat("x", 1800)
	const n = 700 // ~1.4 MB
	now := time.Now().UTC()
	for i := 0; i < n; i++ {
		w.Record(Event{Time: now, Kind: Apply, Object: fmt.Sprintf("Secret ns/s-%d", i), Message: msg})
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	names := auditConfigMaps(t, c)
	if len(names) != 2 || !strings.HasSuffix(names[1], "-2") {
		t.Fatalf("ConfigMaps %v: want parts -1 and -2", names)
	}
	evs, err := Read(ctx, c, time.Time{})
	if err != nil || len(evs) != n {
		t.Fatalf("Read = %d events, %v; want %d", len(evs), err, n)
	}
}

func containsName(names []string, n string) bool {
	for _, x := range names {
		if x == n {
			return true
		}
	}
	return false
}

// testTwoWriters: writers of different sources write side by side.
func testTwoWriters(t *testing.T, c client.Client, a, b string) {
	ctx := context.Background()
	wa := NewWriter(c, a, WriterOptions{FlushInterval: 20 * time.Millisecond})
	wb := NewWriter(c, b, WriterOptions{FlushInterval: 20 * time.Millisecond})
	var wg sync.WaitGroup
	for _, w := range []*Writer{wa, wb} {
		wg.Add(1)
		go func(w *Writer) {
			defer wg.Done()
			for i := 0; i < 300; i++ {
				w.Record(Event{Kind: Apply, Object: fmt.Sprintf("ConfigMap ns/%s-%d", w.Source(), i)})
				if i%30 == 0 {
					time.Sleep(5 * time.Millisecond)
				}
			}
		}(w)
	}
	wg.Wait()
	for _, w := range []*Writer{wa, wb} {
		if err := w.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	evs, err := Read(ctx, c, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	bySource := countBy(evs, func(e Event) string { return e.Source })
	if bySource[a] != 300 || bySource[b] != 300 || len(evs) != 600 {
		t.Fatalf("events by source %v (%d lines), want 300 each", bySource, len(evs))
	}
}

// testSameSource: two writers with one source (two replicas, or a restart
// overlapping the old process) append to the same ConfigMaps; conflicts are
// retried and nothing is lost or duplicated.
func testSameSource(t *testing.T, c client.Client) {
	ctx := context.Background()
	opts := WriterOptions{FlushInterval: 10 * time.Millisecond, MaxBytes: 16 << 10}
	w1 := NewWriter(c, "reconciler", opts)
	w2 := NewWriter(c, "reconciler", opts)
	var wg sync.WaitGroup
	for k, w := range []*Writer{w1, w2} {
		wg.Add(1)
		go func(k int, w *Writer) {
			defer wg.Done()
			for i := 0; i < 400; i++ {
				w.Record(Event{Kind: Prune, Object: fmt.Sprintf("ConfigMap ns/w%d-%d", k, i)})
				if i%20 == 0 {
					time.Sleep(3 * time.Millisecond)
				}
			}
		}(k, w)
	}
	wg.Wait()
	for _, w := range []*Writer{w1, w2} {
		if err := w.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// A deterministic conflict, on a day of its own: w1's cached ConfigMap
	// is stale after w2 appended to it.
	day := time.Date(2026, 6, 1, 8, 0, 0, 0, time.UTC)
	w1.Record(Event{Time: day, Kind: Prune, Object: "ConfigMap ns/last-1"})
	if err := w1.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	w2.Record(Event{Time: day, Kind: Prune, Object: "ConfigMap ns/last-2"})
	if err := w2.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	before := w1.Stats().Conflicts
	w1.Record(Event{Time: day, Kind: Prune, Object: "ConfigMap ns/last-3"})
	if err := w1.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for _, w := range []*Writer{w1, w2} {
		if err := w.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if w1.Stats().Conflicts == before {
		t.Fatalf("w1 appended with a stale resourceVersion without a conflict")
	}
	conflicts := w1.Stats().Conflicts + w2.Stats().Conflicts
	evs, err := Read(ctx, c, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, e := range evs {
		seen[e.Object]++
	}
	if len(evs) != 803 || len(seen) != 803 {
		t.Fatalf("%d events, %d distinct objects; want 803 of each (lost or duplicated events)", len(evs), len(seen))
	}
	t.Logf("%d conflicts retried; ConfigMaps %v", conflicts, auditConfigMaps(t, c))
}

// testRestart: a new Writer (strata restarted) appends to the same day's
// ConfigMap, and Read returns the events of both.
func testRestart(t *testing.T, c client.Client) {
	ctx := context.Background()
	w := NewWriter(c, "reconciler", WriterOptions{FlushInterval: time.Hour})
	w.Record(Event{Kind: Approval, Commit: "c1", Actor: "alice", Message: "restricted change needs 2 approvals, has 2: alice, bob"})
	w.Record(Event{Kind: Approval, Commit: "c1", Actor: "bob", Message: "restricted change needs 2 approvals, has 2: alice, bob"})
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	w2 := NewWriter(c, "reconciler", WriterOptions{FlushInterval: time.Hour})
	w2.Record(Event{Kind: Apply, Commit: "c1", Object: "Deployment ledger/ledger"})
	if err := w2.Close(ctx); err != nil {
		t.Fatal(err)
	}
	evs, err := Read(ctx, c, time.Time{})
	if err != nil || len(evs) != 3 {
		t.Fatalf("Read = %v, %v; want 3 events", evs, err)
	}
	if names := auditConfigMaps(t, c); len(names) != 1 {
		t.Fatalf("ConfigMaps %v: the restarted writer should append to the same part", names)
	}
	byActor := countBy(evs, func(e Event) string { return e.Actor })
	if byActor["alice"] != 1 || byActor["bob"] != 1 {
		t.Fatalf("approvals by actor %v", byActor)
	}
}

func testBackgroundFlush(t *testing.T, c client.Client) {
	ctx := context.Background()
	w := NewWriter(c, "reconciler", WriterOptions{FlushInterval: 50 * time.Millisecond})
	defer w.Close(ctx)
	w.Record(Event{Kind: BreakGlass, Actor: "carol", Object: "Deployment ledger/ledger", Message: "incident 42", Rule: "tier-not-allowed"})
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if evs, err := Read(ctx, c, time.Time{}); err == nil && len(evs) == 1 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("the event was not flushed in the background")
}

// testBoundedBuffer: while the cluster cannot be written (a cancelled
// context stands in for an outage) events stay buffered up to MaxBuffer;
// the rest are counted and recorded as one audit-dropped event.
func testBoundedBuffer(t *testing.T, c client.Client) {
	ctx := context.Background()
	w := NewWriter(c, "webhook-pod-2", WriterOptions{FlushInterval: time.Hour, MaxBuffer: 100})
	for i := 0; i < 80; i++ {
		w.Record(Event{Kind: Apply, Object: fmt.Sprintf("Pod ns/p-%d", i)})
	}
	dead, cancel := context.WithCancel(ctx)
	cancel()
	if err := w.Flush(dead); err == nil {
		t.Fatal("flush with a cancelled context succeeded")
	}
	start := time.Now()
	for i := 80; i < 250; i++ {
		w.Record(Event{Kind: Apply, Object: fmt.Sprintf("Pod ns/p-%d", i)})
	}
	// Identical to a buffered event, but that one waits for a retry and
	// takes no more occurrences: this one is new, and dropped.
	w.Record(Event{Kind: Apply, Object: "Pod ns/p-0"})
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Record blocked for %v", d)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	evs, err := Read(ctx, c, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	byKind := countBy(evs, func(e Event) string { return string(e.Kind) })
	st := w.Stats()
	if byKind[string(Apply)] != 100 || byKind[string(Dropped)] != st.Dropped || st.Dropped != 151 {
		t.Fatalf("by kind %v, stats %+v: want 100 applies kept and 151 dropped", byKind, st)
	}
}

// testTamper: editing or deleting a line, or deleting a part, is reported.
func testTamper(t *testing.T, c client.Client) {
	ctx := context.Background()
	day := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	w := NewWriter(c, "reconciler", WriterOptions{FlushInterval: time.Hour, MaxBytes: 2 << 10, Retention: -1})
	for i := 0; i < 30; i++ {
		w.Record(Event{Time: day.Add(time.Duration(i) * time.Minute), Kind: Apply, Object: fmt.Sprintf("Deployment ns/d-%d", i)})
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(ctx, c, time.Time{}); err != nil {
		t.Fatalf("intact log reported damaged: %v", err)
	}
	cm := &corev1.ConfigMap{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: labels.SystemNamespace, Name: ConfigMapName("reconciler", day, 1)}, cm); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(cm.Data[DataKey], "\n"), "\n")
	lines = append(lines[:1], lines[2:]...) // delete the second line
	cm.Data[DataKey] = strings.Join(lines, "\n") + "\n"
	if err := c.Update(ctx, cm); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: labels.SystemNamespace, Name: ConfigMapName("reconciler", day, 2)}}); err != nil {
		t.Fatal(err)
	}
	evs, err := Read(ctx, c, time.Time{})
	var ie *IntegrityError
	if !errors.As(err, &ie) || len(evs) == 0 {
		t.Fatalf("Read = %d events, %v; want events and an IntegrityError", len(evs), err)
	}
	msg := ie.Error()
	if !strings.Contains(msg, "does not follow") || !strings.Contains(msg, "part 2 is missing") {
		t.Fatalf("integrity error %q does not name the removed line and the missing part", msg)
	}
}

// testSinceRetention: Read filters by time; Retention rolls off old parts
// and records it.
func testSinceRetention(t *testing.T, c client.Client) {
	ctx := context.Background()
	now := time.Date(2026, 5, 20, 12, 0, 0, 0, time.UTC)
	w := NewWriter(c, "reconciler", WriterOptions{FlushInterval: time.Hour, Retention: -1, Now: func() time.Time { return now }})
	for _, d := range []int{100, 40, 10, 1, 0} {
		w.Record(Event{Time: now.AddDate(0, 0, -d), Kind: Apply, Object: fmt.Sprintf("ConfigMap ns/d%d", d)})
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	evs, err := Read(ctx, c, now.AddDate(0, 0, -30))
	if err != nil || len(evs) != 3 {
		t.Fatalf("Read since 30 days = %v, %v; want 3 events", evs, err)
	}
	w2 := NewWriter(c, "webhook-x", WriterOptions{FlushInterval: time.Hour, Retention: 60 * 24 * time.Hour, Now: func() time.Time { return now }})
	w2.Record(Event{Kind: Denial, Object: "Pod ns/p"})
	if err := w2.Close(ctx); err != nil {
		t.Fatal(err)
	}
	evs, err = Read(ctx, c, time.Time{})
	if err != nil || len(evs) != 6 {
		t.Fatalf("after retention Read = %v, %v; want 5 events and a roll-off record (the 100-day-old one rolled off)", evs, err)
	}
	for _, e := range evs {
		if e.Object == "ConfigMap ns/d100" {
			t.Fatal("retention kept an event older than 60 days")
		}
		if e.Kind == RolledOff && (e.Count != 1 || !e.From.Equal(now.AddDate(0, 0, -100)) || e.Source != "webhook-x") {
			t.Fatalf("roll-off record %+v", e)
		}
	}
}

// testWriters: one Writer per cluster, closed together; nil writers are
// harmless.
func testWriters(t *testing.T, c client.Client) {
	ctx := context.Background()
	ws := &Writers{Source: "reconciler", Options: WriterOptions{FlushInterval: time.Hour, Environment: "prod"}}
	a := ws.For("onprem", c)
	if ws.For("onprem", c) != a {
		t.Fatal("For returned a second writer for one cluster")
	}
	a.Record(Event{Kind: Apply, Object: "Deployment ledger/ledger"})
	// strata.yaml's audit: reaches present and future writers, from their
	// next flush on.
	ws.SetRetention(time.Hour, 4<<20)
	b := ws.For("private", c)
	b.Record(Event{Kind: Prune, Object: "ConfigMap x/y"})
	if err := ws.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for _, w := range []*Writer{a, b} {
		if w.opts.Retention != time.Hour || w.opts.RetainBytes != 4<<20 || w.opts.MaxBytes != 512<<10 {
			t.Fatalf("after SetRetention: retention %v, bound %d, parts of %d", w.opts.Retention, w.opts.RetainBytes, w.opts.MaxBytes)
		}
	}
	if w := ws.For("onprem", c); w != nil {
		t.Fatal("For after Close returned a writer")
	}
	var nilW *Writer
	nilW.Record(Event{Kind: Apply})
	if err := nilW.Close(ctx); err != nil {
		t.Fatal(err)
	}
	evs, err := Read(ctx, c, time.Time{})
	if err != nil || len(evs) != 2 {
		t.Fatalf("Read = %v, %v", evs, err)
	}
	clusters := countBy(evs, func(e Event) string { return e.Cluster + "/" + e.Environment })
	if clusters["onprem/prod"] != 1 || clusters["private/prod"] != 1 {
		t.Fatalf("events by cluster %v: the writers' defaults were not applied", clusters)
	}
}
