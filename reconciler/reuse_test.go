package reconciler

import (
	"context"
	"testing"

	"github.com/strata-gitops/strata/internal/inventory"
	"github.com/strata-gitops/strata/internal/labels"
	"github.com/strata-gitops/strata/internal/render"
)

// TestUnchangedRenderIsReused: a commit that changes nothing the
// environment reads (a README) is applied without rendering: the clusters
// record the new revision, the objects keep theirs. A commit that changes
// an object renders again and applies it.
func TestUnchangedRenderIsReused(t *testing.T) {
	env := "reuse"
	objs := map[string]string{"ns": namespace("ru-open", "public"), "cm": configMap("ru-open", "app", "v1", "")}
	g := newGitRepo(t)
	first := g.commit("first", merge(map[string]string{"strata.yaml": strataYAML(env, 100)}, overlay(env, objs)))
	r, cls := newTestReconciler(t, g, env, nil)
	ctx := context.Background()
	pub := cls[env+"-public"]
	mustSucceed(t, r.ReconcileOnce(ctx))
	cache := render.DefaultOptions().Cache
	renders := func() int64 { return cache.Hits() + cache.Misses() }

	before := renders()
	readme := g.commit("docs only", map[string]string{"README.md": "about this repository\n"})
	mustSucceed(t, r.ReconcileOnce(ctx))
	if n := renders() - before; n != 0 {
		t.Errorf("a commit outside the environment looked up %d units in the render cache, want none (the last render reused)", n)
	}
	inv, err := inventory.LoadStatus(ctx, pub.Client, env)
	if err != nil {
		t.Fatal(err)
	}
	if inv.Status.Revision != readme {
		t.Errorf("public records revision %s, want the new commit %s", inv.Status.Revision, readme)
	}
	if cm, _ := getCM(t, pub, "ru-open", "app"); cm == nil || cm.Annotations[labels.Revision] != first {
		t.Errorf("ConfigMap restamped or missing: %+v, want revision %s", cm, first)
	}

	before = renders()
	objs["cm"] = configMap("ru-open", "app", "v2", "")
	changed := g.commit("change the ConfigMap", overlay(env, objs))
	mustSucceed(t, r.ReconcileOnce(ctx))
	if renders() == before {
		t.Error("a commit that changes an object was not rendered")
	}
	if cm, _ := getCM(t, pub, "ru-open", "app"); cm == nil || cm.Data["value"] != "v2" || cm.Annotations[labels.Revision] != changed {
		t.Errorf("ConfigMap after the change: %+v, want value v2 at %s", cm, changed)
	}
}
