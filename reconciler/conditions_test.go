package reconciler

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	fluxmeta "github.com/fluxcd/pkg/apis/meta"
	"github.com/google/go-cmp/cmp"

	"github.com/strata-gitops/strata/internal/inventory"
)

func deployment(ns, name string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: %s
  namespace: %s
spec:
  selector:
    matchLabels: {app: %s}
  template:
    metadata:
      labels: {app: %s}
    spec:
      containers:
      - name: app
        image: registry.example.com/app:v1
`, name, ns, name, name)
}

// While strata waits for health the stored status says Reconciling=True and
// Ready=Unknown (Progressing); when the wait fails, Ready=False with the
// reason and Reconciling=False; a refused mass prune is Stalled. envtest
// runs no controllers, so a Deployment never becomes available.
func TestStoredConditionsFollowTheReconcile(t *testing.T) {
	env := "conditions"
	g := newGitRepo(t)
	g.commit("v1", merge(map[string]string{"strata.yaml": strataYAML(env, 50)}, overlay(env, map[string]string{
		"ns":  namespace("cd-vault", "restricted"),
		"cm1": configMap("cd-vault", "a", "v", ""),
		"cm2": configMap("cd-vault", "b", "v", ""),
		"dep": deployment("cd-vault", "ledger"),
	})))
	r, cls := newTestReconciler(t, g, env, nil)
	r.SetHealthTimeout(4 * time.Second)
	onprem := cls[env+"-onprem"]
	ctx := context.Background()
	done := make(chan *Result, 1)
	go func() { done <- r.ReconcileOnce(ctx) }()
	waitFor(t, 20*time.Second, func() bool {
		conds, _ := storedConditions(t, onprem, env)
		return conds[fluxmeta.ReconcilingCondition] == "True/"+fluxmeta.ProgressingReason
	})
	conds, _ := storedConditions(t, onprem, env)
	if conds[fluxmeta.ReadyCondition] != "Unknown/"+fluxmeta.ProgressingReason {
		t.Errorf("while waiting: %v", conds)
	}
	res := <-done
	var he *HealthError
	if c := res.Cluster(env + "-onprem"); !errors.As(c.Err, &he) {
		t.Fatalf("want a HealthError, got %v", c.Err)
	}
	conds, _ = storedConditions(t, onprem, env)
	want := map[string]string{
		fluxmeta.ReadyCondition:       "False/" + inventory.ReasonHealthFailed,
		fluxmeta.ReconcilingCondition: "False/" + inventory.ReasonHealthFailed,
		fluxmeta.StalledCondition:     "False/" + inventory.ReasonHealthFailed,
	}
	if diff := cmp.Diff(want, conds); diff != "" {
		t.Errorf("after a failed health wait (-want +got):\n%s", diff)
	}

	// Dropping 3 of 4 objects (75% > 50%) is refused: Stalled, retrying cannot help.
	g.commit("drop most", merge(overlay(env, map[string]string{"ns": namespace("cd-vault", "restricted")}),
		map[string]string{"overlays/" + env + "/cm1.yaml": "", "overlays/" + env + "/cm2.yaml": "", "overlays/" + env + "/dep.yaml": ""}))
	r.ReconcileOnce(ctx)
	conds, _ = storedConditions(t, onprem, env)
	if conds[fluxmeta.StalledCondition] != "True/"+inventory.ReasonMassPruneRefused || conds[fluxmeta.ReadyCondition] != "False/"+inventory.ReasonMassPruneRefused {
		t.Errorf("after a refused mass prune: %v", conds)
	}
}
