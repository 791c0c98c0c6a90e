package render_test

import (
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/strata-gitops/strata/internal/render"
)

// TestCacheRendersOnlyWhatChanged commits changes to a generated repository
// and checks which units kustomize renders again: only those whose files
// changed; all of them when strata.yaml or the windows change; none in a
// new process that finds them in the disk cache.
func TestCacheRendersOnlyWhatChanged(t *testing.T) {
	m := newModel(rand.New(rand.NewPCG(11, 11)))
	for _, a := range m.apps {
		a.shared = false
	}
	m.apps["app02"].shared, m.apps["app05"].shared = true, true
	dir := t.TempDir()
	gitRun(t, dir, "init", "-q", "-b", "main")
	cacheDir := t.TempDir()
	cache, err := render.NewCache(render.CacheOptions{Dir: cacheDir})
	if err != nil {
		t.Fatal(err)
	}
	var windows []string
	readme := "a file outside the environment\n"
	// fps are the fingerprints after each step's render (render.Fingerprint).
	var fps []string
	step := func(name string, change func()) render.Stats {
		t.Helper()
		change()
		files := m.files()
		files["README.md"] = readme
		writeModel(t, dir, files)
		gitRun(t, dir, "add", "-A")
		gitRun(t, dir, "commit", "-q", "--allow-empty", "-m", name)
		opts := render.DefaultOptions()
		opts.Cache, opts.Components = cache, windows
		snap := snapshotOf(t, dir)
		before := render.Fingerprint(snap, "overlays/env", opts)
		got, st, err := render.OverlayStats(snap, "env", "overlays/env", opts)
		if err != nil || st.Whole != "" {
			t.Fatalf("%s: %v (%+v)", name, err, st)
		}
		// Known before rendering exactly when nothing needs rendering, and
		// then the render's own.
		after := render.Fingerprint(snap, "overlays/env", opts)
		// (A new process has only the disk cache, which Fingerprint does not read.)
		if after == "" || (before != "") != (st.Rendered == 0 && name != "new process") || (before != "" && before != after) {
			t.Errorf("%s: fingerprint before %q, after %q, with %+v", name, before, after, st)
		}
		if len(fps) > 0 && (after == fps[len(fps)-1]) != (st.Rendered == 0 && name != "close it again") {
			t.Errorf("%s: fingerprint %q, the previous step's %q, with %+v: the same exactly when nothing was rendered", name, after, fps[len(fps)-1], st)
		}
		fps = append(fps, after)
		opts.Cache, opts.Whole = nil, true
		want, _, err := render.OverlayStats(snap, "env", "overlays/env", opts)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(docs(t, want), docs(t, got)); diff != "" {
			t.Fatalf("%s: differs from the whole render (-whole +units):\n%s", name, diff)
		}
		return st
	}
	first := step("initial", func() {})
	if first.Units < 10 || first.Rendered != first.Units {
		t.Fatalf("first render: %+v, want every unit rendered (at least 10)", first)
	}
	for _, tc := range []struct {
		name     string
		change   func()
		rendered int // -1: all, -2: group 2's
	}{
		{"nothing changed", func() {}, 0},
		{"change a file outside the environment", func() { readme += "more\n" }, 0},
		{"edit one app", func() { m.apps["app03"].version++ }, 1},
		{"add a file to one app", func() { m.apps["app04"].extra++ }, 1},
		{"change the base two apps share", func() { m.shared++ }, 2},
		{"move an app to another group", func() {
			from := 0
			for i, g := range m.groups {
				if len(g) > len(m.groups[from]) {
					from = i
				}
			}
			to := (from + 1) % len(m.groups)
			m.groups[to] = append(m.groups[to], m.groups[from][0])
			m.groups[from] = m.groups[from][1:]
		}, 1},
		{"change a group's labels", func() { m.groupLabel[2] = !m.groupLabel[2] }, -2},
		{"change strata.yaml", func() { m.strataVersion++ }, -1},
		{"open a window", func() { windows = []string{"components/c0"} }, -1},
		{"change the window's component", func() { m.comp[0]++ }, -1},
		{"close it again", func() { windows = nil }, 0},
	} {
		st := step(tc.name, tc.change)
		want := tc.rendered
		switch want {
		case -1:
			want = st.Units
		case -2: // the units of group 2: each app's files, and the shared base
			want = len(m.groups[2]) + countShared(m, 2)
		}
		if st.Rendered != want || st.Cached != st.Units-st.Rendered {
			t.Errorf("%s: %+v, want %d units rendered and the others cached", tc.name, st, want)
		}
	}
	// Closing the window returns to the objects of "change strata.yaml".
	if n := len(fps); fps[n-1] != fps[n-4] {
		t.Errorf("closing the window: fingerprint %q, want that of the render before it opened, %q", fps[n-1], fps[n-4])
	}
	// A new process: everything comes from the disk cache.
	cache, err = render.NewCache(render.CacheOptions{Dir: cacheDir})
	if err != nil {
		t.Fatal(err)
	}
	if st := step("new process", func() {}); st.Rendered != 0 {
		t.Errorf("with the disk cache of an earlier process: %+v, want nothing rendered", st)
	}
}

// countShared counts the extra units of group g's apps that include the
// shared base: the base, and the files after it (a second run of files).
func countShared(m *model, g int) int {
	n := 0
	for _, a := range m.groups[g] {
		if m.apps[a].shared {
			n += 2
		}
	}
	return n
}
