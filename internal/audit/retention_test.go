package audit

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-gitops/strata/internal/labels"
)

var rolledOffMessage = regexp.MustCompile(`^\d+ events from \S+ to \S+ rolled off by retention: `)

// testSizeBound: two writers record distinct events (nothing aggregates)
// far beyond RetainBytes; after every flush the cluster's audit log is
// within the bound, every rolled-off part is recorded, the counts add up,
// and Read still finds the log intact (also after the records of early
// roll-offs rolled off themselves).
func testSizeBound(t *testing.T, c client.Client) {
	ctx := context.Background()
	const bound = 64 << 10
	opts := WriterOptions{FlushInterval: time.Hour, RetainBytes: bound, Retention: -1, Cluster: "onprem"}
	rec := NewWriter(c, "reconciler", opts)
	wh := NewWriter(c, "webhook-pod-a", opts)
	recorded := 0
	for round := 0; round < 40; round++ {
		for i := 0; i < 30; i++ {
			rec.Record(Event{Kind: Apply, Object: fmt.Sprintf("ConfigMap ledger/cm-%d-%d", round, i), Sensitivity: "restricted",
				Commit: strings.Repeat("c", 40), Message: "created"})
			wh.Record(Event{Kind: BreakGlass, Object: fmt.Sprintf("Deployment ledger/d-%d-%d", round, i), Actor: "carol",
				Rule: "tier-not-allowed", Message: "incident 42"})
			recorded += 2
		}
		for _, w := range []*Writer{rec, wh} {
			if err := w.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			if size, n := auditBytes(t, c); size > bound {
				t.Fatalf("round %d: the audit log holds %d bytes in %d ConfigMaps, over the bound of %d", round, size, n, bound)
			}
		}
	}
	for _, w := range []*Writer{rec, wh} {
		if err := w.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	evs, err := Read(ctx, c, time.Time{})
	if err != nil {
		t.Fatalf("Read after roll-offs: %v", err)
	}
	kept, rolled, records := 0, 0, 0
	objects := map[string]bool{}
	for _, e := range evs {
		switch e.Kind {
		case Apply, BreakGlass:
			kept += e.N()
			objects[e.Object] = true
		case RolledOff:
			records++
			if !rolledOffMessage.MatchString(e.Message) || !strings.Contains(e.Message, "over maxBytes 64Ki") ||
				e.From.IsZero() || e.Until.Before(e.From) || !strings.HasPrefix(e.Object, "ConfigMap strata-system/strata-audit-") {
				t.Errorf("roll-off record %+v", e)
			}
		}
	}
	st := []Stats{rec.Stats(), wh.Stats()}
	parts := 0
	for _, s := range st {
		rolled += s.RolledOffEvents
		parts += s.RolledOff
	}
	if records == 0 || rolled == 0 {
		t.Fatalf("nothing was rolled off: stats %+v", st)
	}
	// Every roll-off wrote a record; those no longer readable rolled off
	// themselves and are counted among the rolled-off events.
	if kept+rolled != recorded+parts-records {
		t.Errorf("%d events kept + %d rolled off != %d recorded + %d roll-off records - %d still readable", kept, rolled, recorded, parts, records)
	}
	for _, o := range []string{"ConfigMap ledger/cm-39-29", "Deployment ledger/d-39-29"} {
		if !objects[o] {
			t.Errorf("the newest event, of %s, was rolled off: the oldest must go first", o)
		}
	}
	t.Logf("%d events recorded, %d kept, %d rolled off in %d parts (%d records still readable); ConfigMaps %v",
		recorded, kept, rolled, parts, records, auditConfigMaps(t, c))

	// A hole between parts that are left is still damage.
	names := auditConfigMaps(t, c)
	var victim string
	for i := 1; i+1 < len(names); i++ {
		if strings.HasPrefix(names[i], NamePrefix+"reconciler-") && strings.HasPrefix(names[i+1], NamePrefix+"reconciler-") &&
			strings.HasPrefix(names[i-1], NamePrefix+"reconciler-") {
			victim = names[i]
			break
		}
	}
	if victim == "" {
		t.Fatalf("no reconciler part between two others in %v", names)
	}
	if err := c.Delete(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: labels.SystemNamespace, Name: victim}}); err != nil {
		t.Fatal(err)
	}
	var ie *IntegrityError
	if _, err := Read(ctx, c, time.Time{}); !errors.As(err, &ie) || !strings.Contains(err.Error(), "is missing") {
		t.Fatalf("Read after deleting %s by hand = %v, want an IntegrityError", victim, err)
	}
}

// testAgeRollOff: a part older than Retention, written before parts had
// summary annotations, is rolled off and recorded; Read accepts the gap.
func testAgeRollOff(t *testing.T, c client.Client) {
	ctx := context.Background()
	now := time.Date(2026, 9, 1, 12, 0, 0, 0, time.UTC)
	old := now.AddDate(0, 0, -100)
	// Two chained lines, as the previous writer stored them (no annotations).
	l1 := `{"id":"a1","time":"` + old.Format(time.RFC3339Nano) + `","kind":"apply","object":"Deployment ledger/ledger","source":"reconciler"}`
	l2 := `{"id":"a2","time":"` + old.Add(time.Hour).Format(time.RFC3339Nano) + `","kind":"prune","object":"ConfigMap ledger/x","source":"reconciler","prev":"` + chainHash(l1) + `"}`
	legacy := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: labels.SystemNamespace, Name: ConfigMapName("reconciler", old, 1),
		Labels: map[string]string{Label: "true", SourceLabel: "reconciler", DayLabel: old.Format(DayFormat)}},
		Data: map[string]string{DataKey: l1 + "\n" + l2 + "\n"}}
	if err := c.Create(ctx, legacy); err != nil {
		t.Fatal(err)
	}
	w := NewWriter(c, "webhook-pod-b", WriterOptions{FlushInterval: time.Hour, Retention: 30 * 24 * time.Hour, Now: func() time.Time { return now }})
	w.Record(Event{Kind: Denial, Object: "Pod ns/p", Rule: "tier-not-allowed"})
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	evs, err := Read(ctx, c, time.Time{})
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	var got []Event
	for _, e := range evs {
		if e.Kind == RolledOff {
			e.ID = ""
			got = append(got, e)
		}
	}
	want := []Event{{Time: now, Kind: RolledOff, Count: 2, From: old, Until: old.Add(time.Hour), Source: "webhook-pod-b",
		Object:  "ConfigMap strata-system/" + legacy.Name,
		Message: "2 events from 2026-05-24T12:00:00Z to 2026-05-24T13:00:00Z rolled off by retention: older than maxAge 720h0m0s"}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("roll-off records (-want +got):\n%s", d)
	}
	if names := auditConfigMaps(t, c); len(names) != 1 || strings.Contains(names[0], old.Format(DayFormat)) {
		t.Errorf("ConfigMaps %v: the 100-day-old part should be gone", names)
	}
}

// testSegmentAggregation: denials that differ only in the object's name
// join one line of the current part across flushes; other reasons stay
// apart; a write retried after a lost answer is not counted twice; a part
// whose chain is broken is only appended to.
func testSegmentAggregation(t *testing.T, c client.Client) {
	ctx := context.Background()
	w := NewWriter(c, "webhook-pod-c", WriterOptions{FlushInterval: time.Hour})
	deny := func(name, why string) Event {
		return Event{Kind: Denial, Rule: "tier-not-allowed", Actor: "mallory", Object: Object("Secret", "ledger", name),
			Message: "Secret ledger/" + name + ": " + why}
	}
	for i, name := range []string{"db-password", "db-password", "api-token", "a"} {
		w.Record(deny(name, "restricted data is not allowed in public-cloud"))
		w.Record(deny(name, "needs an owner label"))
		if err := w.Flush(ctx); err != nil {
			t.Fatalf("flush %d: %v", i, err)
		}
	}
	evs, err := Read(ctx, c, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	type line struct {
		Object, Message string
		Count           int
		Names           []string
	}
	var got []line
	for _, e := range evs {
		got = append(got, line{e.Object, e.Message, e.N(), e.Names})
	}
	sort.Slice(got, func(i, j int) bool { return got[i].Message < got[j].Message })
	want := []line{
		{"Secret ledger/*", "Secret ledger/*: needs an owner label", 4, []string{"db-password", "api-token", "a"}},
		{"Secret ledger/*", "Secret ledger/*: restricted data is not allowed in public-cloud", 4, []string{"db-password", "api-token", "a"}},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("lines (-want +got):\n%s", d)
	}

	// The same batch written twice (the first answer was lost): counted once.
	batch := []Event{deny("x-1", "needs an owner label"), deny("fresh", "another reason")}
	for i := range batch {
		batch[i].ID, batch[i].Time, batch[i].Count, batch[i].Source = newID(), time.Now().UTC(), 1, w.Source()
	}
	for i := 0; i < 2; i++ {
		w.flushMu.Lock()
		_, err := w.write(ctx, batch)
		w.flushMu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
	}
	evs, err = Read(ctx, c, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	counts := countBy(evs, func(e Event) string { return e.Message })
	if counts["Secret ledger/*: needs an owner label"] != 5 || counts["Secret ledger/fresh: another reason"] != 1 || len(evs) != 3 {
		t.Fatalf("after a repeated write: %v in %d lines; want 5, 1 in 3 lines", counts, len(evs))
	}

	// Break the chain by hand: the writer appends and never rechains it.
	cm := &corev1.ConfigMap{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: labels.SystemNamespace, Name: ConfigMapName(w.Source(), time.Now(), 1)}, cm); err != nil {
		t.Fatal(err)
	}
	cm.Data[DataKey] = strings.Replace(cm.Data[DataKey], "mallory", "someone", 1)
	if err := c.Update(ctx, cm); err != nil {
		t.Fatal(err)
	}
	w.Record(deny("db-password", "needs an owner label"))
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	var ie *IntegrityError
	if evs, err = Read(ctx, c, time.Time{}); !errors.As(err, &ie) || len(evs) != 4 {
		t.Fatalf("after tampering: %d lines, %v; want 4 lines (appended, not merged) and an IntegrityError", len(evs), err)
	}
}
