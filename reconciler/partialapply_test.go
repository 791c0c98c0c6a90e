package reconciler

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

// TestPartiallyAppliedObjectsArePrunedLater: an apply that fails on one
// object (here a ConfigMap key the apiserver rejects) has already created
// others — the Namespace stage always, and with concurrent chunks other
// objects of the same stage. Those are strata's objects in the cluster: a
// later revision that drops them must prune them, not leave them behind
// unmanaged.
func TestPartiallyAppliedObjectsArePrunedLater(t *testing.T) {
	env := "partial"
	objs := map[string]string{"ns": namespace("pa-open", "public")}
	for i := range 40 {
		objs[fmt.Sprintf("cm-%02d", i)] = configMap("pa-open", fmt.Sprintf("cm-%02d", i), "v1", "")
	}
	objs["cm-bad"] = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bad\n  namespace: pa-open\ndata:\n  \"not a valid key!\": x\n"
	g := newGitRepo(t)
	g.commit("with an invalid ConfigMap", merge(map[string]string{"strata.yaml": strataYAML(env, 100)}, overlay(env, objs)))
	r, cls := newTestReconciler(t, g, env, nil)
	ctx := context.Background()
	pub := cls[env+"-public"]

	res := r.ReconcileOnce(ctx)
	c := res.Cluster(env + "-public")
	var ae *ApplyError
	if !errors.As(c.Err, &ae) {
		t.Fatalf("public: want an ApplyError naming the bad ConfigMap, got %v", c.Err)
	}
	var created []string
	for i := range 40 {
		if _, ok := getCM(t, pub, "pa-open", fmt.Sprintf("cm-%02d", i)); ok {
			created = append(created, fmt.Sprintf("cm-%02d", i))
		}
	}
	t.Logf("the failed apply left %d of 40 ConfigMaps created", len(created))

	// The fix drops every ConfigMap: whatever the failed apply created must go.
	drop := map[string]string{}
	for name := range objs {
		if name != "ns" {
			drop["overlays/"+env+"/"+name+".yaml"] = ""
		}
	}
	g.commit("only the Namespace", merge(overlay(env, map[string]string{"ns": namespace("pa-open", "public")}), drop))
	mustSucceed(t, r.ReconcileOnce(ctx))
	for _, name := range created {
		if _, ok := getCM(t, pub, "pa-open", name); ok {
			t.Errorf("ConfigMap pa-open/%s, created by the failed apply, was left behind after git dropped it", name)
		}
	}
}
