package render

import (
	"bytes"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/provider"
	"sigs.k8s.io/kustomize/api/resource"

	"github.com/strata-gitops/strata/internal/source"
)

// Stats says how an environment was rendered.
type Stats struct {
	// Units is the number of units the environment was cut into.
	Units int
	// Rendered units went through kustomize; Cached ones came from the cache.
	Rendered, Cached int
	// Whole says why the environment was rendered as one unit, "" when it
	// was rendered in units.
	Whole string
}

// OverlayStats is Overlay, also saying how the environment was rendered.
func OverlayStats(snap *source.Snapshot, env, overlay string, opts Options) ([]*resource.Resource, Stats, error) {
	return overlayStats(snap, env, overlay, opts)
}

// incremental renders the environment unit by unit (units.go), units in
// parallel, each taken from opts.Cache when everything it read is
// unchanged. Whatever it cannot do soundly in units it renders whole.
func incremental(snap *source.Snapshot, env, overlay, dir string, opts Options) ([]*resource.Resource, Stats, error) {
	top, files := windowView(snap, dir, overlay, opts.Components)
	pl := planEnvironment(snap.FS, top, files)
	st := Stats{Units: len(pl.units), Whole: pl.whole}
	cache := opts.Cache
	if !pl.cacheable {
		cache = nil
	}
	prefix := cachePrefix(snap, opts)
	outs, errs := make([][]*resource.Resource, len(pl.units)), make([]error, len(pl.units))
	cached := make([]bool, len(pl.units))
	par := opts.Parallel
	if par <= 0 {
		par = runtime.GOMAXPROCS(0)
	}
	sem := make(chan struct{}, par)
	var wg sync.WaitGroup
	for i, u := range pl.units {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			outs[i], cached[i], errs[i] = renderUnit(snap, u, prefix, cache, opts)
		}()
	}
	wg.Wait()
	for i := range pl.units {
		if cached[i] {
			st.Cached++
		} else {
			st.Rendered++
		}
	}
	reason := ""
	if i := slices.IndexFunc(errs, func(e error) bool { return e != nil }); i >= 0 {
		reason = fmt.Sprintf("unit %s did not render alone: %v", pl.units[i].id, errs[i])
	} else if pl.whole == "" {
		reason = crossUnit(pl.units, outs)
	}
	if reason != "" || pl.whole != "" {
		// The whole render gives kustomize's own result and messages.
		if pl.whole == "" {
			st = Stats{Units: 1, Rendered: 1, Whole: reason}
		}
		res, err := whole(snap, env, overlay, dir, opts)
		return res, st, err
	}
	n := 0
	for _, o := range outs {
		n += len(o)
	}
	res := make([]*resource.Resource, 0, n)
	for _, o := range outs {
		res = append(res, o...)
	}
	return res, st, nil
}

// windowView returns where kustomize starts for the overlay in dir and the
// files added to the revision's view: with components (open windows), a
// kustomization next to the overlay that adds them to it.
func windowView(snap *source.Snapshot, dir, overlay string, components []string) (string, map[string][]byte) {
	top, files := dir, map[string][]byte{}
	if len(components) > 0 {
		parent, base := filepath.Split(dir)
		top = filepath.Join(parent, windowPrefix+base)
		for i := 2; snap.FS.Exists(top); i++ {
			top = filepath.Join(parent, fmt.Sprintf("%s%s-%d", windowPrefix, base, i))
		}
		files[filepath.Join(top, "kustomization.yaml")] = []byte(windowKustomization(overlay, base, components))
	}
	return top, files
}

// renderUnit renders u, or takes it from the cache.
func renderUnit(snap *source.Snapshot, u *unit, prefix string, cache *Cache, opts Options) ([]*resource.Resource, bool, error) {
	key := unitKey(prefix, u)
	if cache != nil {
		if data, ok := cache.get(key, snap.FS); ok {
			res, err := decode(data)
			if err == nil {
				return res, true, nil
			}
		}
	}
	rec := newRecordingFS(snap.FS)
	ko := krusty.MakeDefaultOptions()
	ko.LoadRestrictions = opts.LoadRestrictions
	m, err := krusty.MakeKustomizer(ko).Run(newViewFS(rec, u.files), u.top)
	if err != nil {
		return nil, false, err
	}
	res := m.Resources()
	if cache != nil {
		if data, err := encode(res); err == nil {
			cache.put(key, rec.observations(), data)
		}
	}
	return res, false, nil
}

// cachePrefix is the part of every unit's key that is not the unit's own:
// strata's and kustomize's build, strata.yaml, the windows' components
// and the load restrictions.
func cachePrefix(snap *source.Snapshot, opts Options) string {
	cfg := ask(snap.FS, opRead, snap.Path("strata.yaml"))
	return digest(strings.Join([]string{buildID, cfg, strings.Join(opts.Components, ","), opts.LoadRestrictions.String()}, "\x00"))
}

// unitKey names a unit: where it starts and the kustomizations it
// replaces, with their content.
func unitKey(prefix string, u *unit) string {
	var b strings.Builder
	b.WriteString(prefix + "\x00" + u.top + "\x00")
	paths := make([]string, 0, len(u.files))
	for p := range u.files {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	for _, p := range paths {
		b.WriteString(p + "\x00")
		b.Write(u.files[p])
		b.WriteString("\x00")
	}
	return digest(b.String())
}

var factory = provider.NewDefaultDepProvider().GetResourceFactory()

// encode writes a unit's objects as YAML documents.
func encode(res []*resource.Resource) ([]byte, error) {
	var b bytes.Buffer
	for _, r := range res {
		s, err := r.RNode.String()
		if err != nil {
			return nil, err
		}
		b.WriteString("---\n")
		b.WriteString(s)
	}
	return b.Bytes(), nil
}

// decode reads what encode wrote.
func decode(data []byte) ([]*resource.Resource, error) {
	if len(data) == 0 {
		return nil, nil
	}
	return factory.SliceFromBytes(data)
}

// EncodeYAML returns each object as YAML (resource.AsYAML, the encoding
// of kubectl kustomize), encoding on every CPU; an object given twice is
// encoded once.
func EncodeYAML(res []*resource.Resource) ([][]byte, error) {
	out := make([][]byte, len(res))
	first := make(map[*resource.Resource]int, len(res))
	var todo []int
	for i, r := range res {
		if _, ok := first[r]; !ok {
			first[r] = i
			todo = append(todo, i)
		}
	}
	errs := make([]error, len(res))
	var wg sync.WaitGroup
	workers := runtime.GOMAXPROCS(0)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := w; k < len(todo); k += workers {
				i := todo[k]
				if out[i], errs[i] = res[i].AsYAML(); errs[i] != nil {
					errs[i] = fmt.Errorf("encoding %s: %w", res[i].CurId(), errs[i])
				}
			}
		}()
	}
	wg.Wait()
	for i, r := range res {
		if errs[i] != nil {
			return nil, errs[i]
		}
		out[i] = out[first[r]]
	}
	return out, nil
}
