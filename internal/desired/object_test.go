package desired_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/strata-gitops/strata/internal/desired"
	"github.com/strata-gitops/strata/internal/labels"
	"github.com/strata-gitops/strata/internal/render"
)

// The reconciler applies Objects (rendered unit by unit, kept in the render
// cache, stamped on a copy); strata render prints kustomize's resources,
// stamped in place. Over the demo repository (every environment, windows
// closed and open) both give the same placement and the same stamped
// objects.
func TestObjectsMatchKeptResources(t *testing.T) {
	snap, cfg := demoRepository(t)
	for _, env := range cfg.EnvironmentNames() {
		for _, windows := range [][]string{{}, cfg.EnvironmentWindows(env, nil)} {
			opts := desired.DefaultOptions()
			opts.Windows = windows
			compact, err := desired.Build(snap, cfg, env, opts)
			if err != nil {
				t.Fatalf("%s: %v", env, err)
			}
			opts.KeepResources = true
			kept, err := desired.Build(snap, cfg, env, opts)
			if err != nil {
				t.Fatalf("%s: %v", env, err)
			}
			if compact.Resources != nil {
				t.Errorf("%s: resources kept without KeepResources", env)
			}
			if diff := cmp.Diff(kept.Placement, compact.Placement); diff != "" {
				t.Errorf("%s (windows %v): placement (-kept +compact):\n%s", env, windows, diff)
			}
			for _, d := range kept.Placement.Decisions {
				b, err := kept.Resources[d.Index].MarshalJSON()
				if err != nil {
					t.Fatal(err)
				}
				want := &unstructured.Unstructured{}
				if err := want.UnmarshalJSON(b); err != nil {
					t.Fatal(err)
				}
				got := compact.Objects[d.Index].Stamped(compact.StampOf(d))
				if diff := cmp.Diff(want.Object, got.Object); diff != "" {
					t.Errorf("%s: %s stamped (-kept +compact):\n%s", env, d.Object, diff)
				}
			}
		}
	}
}

// Objects are shared by every revision that renders their unit the same:
// a second render of an unchanged overlay returns the very same objects
// (nothing rendered or decoded), and stamping never changes them.
func TestObjectsAreSharedAndNeverModified(t *testing.T) {
	snap := snapshot(t, "abc", prodFiles())
	cfg, err := desired.LoadConfig(snap)
	if err != nil {
		t.Fatal(err)
	}
	opts := desired.DefaultOptions()
	opts.Render.Cache, err = render.NewCache(render.CacheOptions{})
	if err != nil {
		t.Fatal(err)
	}
	first, err := desired.Build(snap, cfg, "prod", opts)
	if err != nil {
		t.Fatal(err)
	}
	second, err := desired.Build(snapshot(t, "def", prodFiles()), cfg, "prod", opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(first.Objects) == 0 || len(first.Objects) != len(second.Objects) {
		t.Fatalf("%d objects, then %d", len(first.Objects), len(second.Objects))
	}
	for i := range first.Objects {
		if first.Objects[i] != second.Objects[i] {
			t.Errorf("object %s was made again for an unchanged render", first.Objects[i].Key())
		}
	}
	o := first.Objects[0]
	before := runtime.DeepCopyJSON(o.Map())
	u := o.Stamped(desired.Stamp{Environment: "prod", Revision: "abc", Reason: "why", DefaultNamespace: true})
	u.SetLabels(map[string]string{"x": "y"})
	u.Object["spec"] = "changed"
	if diff := cmp.Diff(before, o.Map()); diff != "" {
		t.Errorf("stamping changed the shared object (-before +after):\n%s", diff)
	}
	if _, ok := o.Map()["metadata"].(map[string]any)["labels"].(map[string]any)[labels.ManagedBy]; ok {
		t.Errorf("the shared object carries strata's label")
	}
}
