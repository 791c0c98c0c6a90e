package audit

import (
	"context"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"
)

// A cluster's credentials rotate (a new kubeconfig, a moved apiserver):
// the reconciler connects anew and asks Writers.For with the new client.
// The cluster's audit records must follow it, not keep going to the
// connection made before the rotation.
func TestWritersFollowARotatedClient(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two kube-apiservers; skipped with -short")
	}
	before, after := startAPIServer(t), startAPIServer(t)
	ctx := context.Background()
	ws := &Writers{Source: "reconciler"}
	t.Cleanup(func() { _ = ws.Close(ctx) })

	ws.For("onprem", before).Record(Event{Kind: Apply, Commit: "c1", Cluster: "onprem", Message: "before rotation"})
	if err := ws.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	ws.For("onprem", after).Record(Event{Kind: Apply, Commit: "c2", Cluster: "onprem", Message: "after rotation"})
	if err := ws.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	commits := func(name string, c client.Reader) []string {
		t.Helper()
		evs, err := Read(ctx, c, time.Now().Add(-time.Hour))
		if err != nil {
			t.Fatalf("reading the audit log of the %s apiserver: %v", name, err)
		}
		var out []string
		for _, e := range evs {
			if e.Kind == Apply {
				out = append(out, e.Commit)
			}
		}
		return out
	}
	if got := commits("old", before); len(got) != 1 || got[0] != "c1" {
		t.Errorf("the apiserver before the rotation holds applies %v, want [c1]", got)
	}
	if got := commits("new", after); len(got) != 1 || got[0] != "c2" {
		t.Errorf("the apiserver after the rotation holds applies %v, want [c2]: the writer kept the old connection", got)
	}
}
