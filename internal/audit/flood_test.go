package audit

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-gitops/strata/internal/labels"
)

// auditBytes is the size of the data of every audit ConfigMap of the cluster.
func auditBytes(t *testing.T, c client.Client) (int, int) {
	t.Helper()
	var list corev1.ConfigMapList
	if err := c.List(context.Background(), &list, client.InNamespace(labels.SystemNamespace), client.MatchingLabels{Label: "true"}); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, cm := range list.Items {
		n += len(cm.Data[DataKey])
	}
	return n, len(list.Items)
}

// testDenialFlood is issue 13's loop: `kubectl create --dry-run=server` of
// denied objects with a new name each time. Every request is a distinct
// denial by name, and the log grew by a line per request until etcd's
// quota stopped the cluster. Denials that differ only in the object's name
// now aggregate into one line per segment, across flushes.
func testDenialFlood(t *testing.T, c client.Client) {
	ctx := context.Background()
	w := NewWriter(c, "webhook-pod-flood", WriterOptions{FlushInterval: time.Hour, MaxBytes: 16 << 10,
		Cluster: "public", Tier: "public-cloud"})
	const rounds, perRound = 20, 250
	start := time.Now().UTC().Truncate(time.Second)
	for r := 0; r < rounds; r++ {
		for i := 0; i < perRound; i++ {
			name := fmt.Sprintf("ledger-export-%d-%d", r, i)
			w.Record(Event{Time: start.Add(time.Duration(r*perRound+i) * time.Millisecond), Kind: Denial,
				Rule: "tier-not-allowed", Sensitivity: "restricted", Actor: "mallory",
				Object:  Object("ConfigMap", "ledger", name),
				Message: "dry-run: ConfigMap ledger/" + name + ": restricted data is not allowed in tier public-cloud (allowed: [on-prem])"})
		}
		// One flush per round: the webhook flushes every 2 s during the loop.
		if err := w.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// One more denial of another rule: aggregation keeps rules apart.
	w.Record(Event{Kind: Denial, Rule: "policy:require-owner", Actor: "mallory", Object: Object("ConfigMap", "ledger", "x"),
		Message: "ConfigMap ledger/x: needs an owner label"})
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	size, cms := auditBytes(t, c)
	if size > 16<<10 || cms != 1 {
		t.Fatalf("%d denials left %d bytes in %d ConfigMaps; want them aggregated into one part of at most 16 KiB (the log grows with every request)",
			rounds*perRound, size, cms)
	}
	evs, err := Read(ctx, c, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 {
		t.Fatalf("%d lines, want 2 (one per rule): %+v", len(evs), evs)
	}
	agg := evs[0]
	if agg.Rule != "tier-not-allowed" {
		agg = evs[1]
	}
	if agg.N() != rounds*perRound {
		t.Errorf("aggregated denial counts %d, want %d", agg.N(), rounds*perRound)
	}
	if agg.Object != "ConfigMap ledger/*" || !strings.Contains(agg.Message, "ConfigMap ledger/*: restricted data") {
		t.Errorf("aggregated denial object %q message %q: want the name masked", agg.Object, agg.Message)
	}
	if want := start.Add((rounds*perRound - 1) * time.Millisecond); !agg.Time.Equal(start) || !agg.Last.Equal(want) {
		t.Errorf("aggregated denial from %v to %v, want %v to %v", agg.Time, agg.Last, start, want)
	}
}
