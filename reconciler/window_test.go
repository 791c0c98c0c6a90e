package reconciler

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/strata-gitops/strata/internal/inventory"
)

// The reconciler enters and leaves a window by itself: no commit, only the clock.
func TestWindowsOpenAndClose(t *testing.T) {
	env := "windows"
	g := newGitRepo(t)
	strata := strataYAML(env, 100) + `windows:
  month-end:
    environments: [` + env + `]
    component: overlays/month-end
    timezone: Europe/Zurich
    lastDaysOfMonth: 3
`
	files := merge(map[string]string{"strata.yaml": strata}, overlay(env, map[string]string{
		"ns": namespace("wn-fraud", "confidential"),
		"cm": configMap("wn-fraud", "capacity", "normal", ""),
	}), map[string]string{
		"overlays/month-end/kustomization.yaml": "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\npatches:\n- patch: |\n    apiVersion: v1\n    kind: ConfigMap\n    metadata: {name: capacity, namespace: wn-fraud}\n    data: {value: peak}\n",
	})
	g.commit("window", files)
	zurich, _ := time.LoadLocation("Europe/Zurich")
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, zurich)
	r, cls := newTestReconciler(t, g, env, func(o *Options) { o.Now = func() time.Time { return now } })
	ctx := context.Background()
	priv := cls[env+"-private"]
	value := func() string {
		cm, ok := getCM(t, priv, "wn-fraud", "capacity")
		if !ok {
			t.Fatal("capacity ConfigMap missing")
		}
		return cm.Data["value"]
	}
	mustSucceed(t, r.ReconcileOnce(ctx))
	if v := value(); v != "normal" {
		t.Fatalf("before the window: %q", v)
	}
	now = time.Date(2026, 11, 28, 0, 5, 0, 0, zurich)
	mustSucceed(t, r.ReconcileOnce(ctx))
	if v := value(); v != "peak" {
		t.Fatalf("in the window: %q", v)
	}
	inv, _ := inventory.Load(ctx, priv.Client, env)
	if !slices.Equal(inv.Status.Windows, []string{"month-end"}) {
		t.Errorf("status windows %v", inv.Status.Windows)
	}
	now = time.Date(2026, 12, 1, 0, 5, 0, 0, zurich)
	mustSucceed(t, r.ReconcileOnce(ctx))
	if v := value(); v != "normal" {
		t.Fatalf("after the window: %q", v)
	}
}
