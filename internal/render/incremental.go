package render

import (
	"bytes"
	"errors"
	"fmt"
	"path"
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

// Converter turns the objects of one rendered unit into the caller's own
// compact form. It runs in the unit's goroutine right after kustomize, so
// that kustomize's objects of a unit are dropped as soon as it returns,
// and its value is kept in the cache in place of them: a unit whose inputs
// did not change costs neither a render nor a decode.
type Converter struct {
	// ID names the conversion; a value made by another is never reused.
	ID string
	// Convert returns the value and about how many bytes it holds (for
	// the cache's bound). It must not keep res, and nobody may modify the
	// value afterwards: later renders share it.
	Convert func(res []*resource.Resource) (value any, size int64, err error)
}

// OverlayConverted renders the overlay like Overlay and returns, in render
// order, what conv made of each part of it: one value per unit, or one
// for the whole environment when it is rendered whole.
func OverlayConverted(snap *source.Snapshot, env, overlay string, opts Options, conv Converter) ([]any, Stats, error) {
	overlay = path.Clean(overlay)
	dir := snap.Path(overlay)
	if err := checkOverlay(snap, env, overlay, dir); err != nil {
		return nil, Stats{}, err
	}
	var outs []unitOut
	st := Stats{Units: 1, Rendered: 1, Whole: "asked for"}
	if !opts.Whole {
		var err error
		if outs, st, err = incremental(snap, overlay, dir, opts, &conv); err != nil {
			return nil, st, err
		}
	}
	if outs == nil {
		res, err := whole(snap, env, overlay, dir, opts)
		if err != nil {
			return nil, st, err
		}
		v, _, err := conv.Convert(res)
		if err != nil {
			return nil, st, &Error{Environment: env, Overlay: overlay, Err: err}
		}
		return []any{v}, st, nil
	}
	vals := make([]any, len(outs))
	for i, o := range outs {
		vals[i] = o.value
	}
	return vals, st, nil
}

// unitOut is the output of one unit: its objects (without a Converter) or
// the Converter's value, and its facts.
type unitOut struct {
	res    []*resource.Resource
	value  any
	facts  []fact
	cached bool
}

// incremental renders the environment unit by unit (units.go), units in
// parallel, each taken from opts.Cache when everything it read is
// unchanged. It returns nil outputs when the environment must be rendered
// whole (Stats.Whole says why).
func incremental(snap *source.Snapshot, overlay, dir string, opts Options, conv *Converter) ([]unitOut, Stats, error) {
	top, files := windowView(snap, dir, overlay, opts.Components)
	pl := planEnvironment(snap.FS, top, files)
	if pl.whole != "" {
		return nil, Stats{Units: 1, Rendered: 1, Whole: pl.whole}, nil
	}
	cache := opts.Cache
	if !pl.cacheable {
		cache = nil
	}
	prefix := cachePrefix(snap, opts)
	st := Stats{Units: len(pl.units)}
	outs, errs := make([]unitOut, len(pl.units)), make([]error, len(pl.units))
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
			outs[i], errs[i] = renderUnit(snap, u, prefix, cache, opts, conv)
		}()
	}
	wg.Wait()
	for _, o := range outs {
		if o.cached {
			st.Cached++
		} else {
			st.Rendered++
		}
	}
	reason := ""
	if i := slices.IndexFunc(errs, func(e error) bool { return e != nil }); i >= 0 {
		var ce *convertError
		if errors.As(errs[i], &ce) {
			return nil, st, ce.err
		}
		reason = fmt.Sprintf("unit %s did not render alone: %v", pl.units[i].id, errs[i])
	} else {
		facts := make([][]fact, len(outs))
		for i, o := range outs {
			facts[i] = o.facts
		}
		reason = crossUnit(pl.units, facts)
	}
	if reason != "" {
		// The whole render gives kustomize's own result and messages.
		return nil, Stats{Units: 1, Rendered: 1, Whole: reason}, nil
	}
	return outs, st, nil
}

// convertError is a Converter's failure: the objects rendered, but the
// caller refused them (no whole render would do better).
type convertError struct{ err error }

func (e *convertError) Error() string { return e.err.Error() }

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

// renderUnit renders u, or takes it from the cache; with conv, it returns
// conv's value instead of the objects.
func renderUnit(snap *source.Snapshot, u *unit, prefix string, cache *Cache, opts Options, conv *Converter) (unitOut, error) {
	key := unitKey(prefix, u)
	if cache != nil {
		if e, ok := cache.get(key, snap.FS); ok {
			if conv != nil && e.conv == conv.ID {
				return unitOut{value: e.value, facts: e.Facts, cached: true}, nil
			}
			if res, err := decode(e.Data); e.Data != nil && err == nil {
				out := unitOut{res: res, facts: e.Facts, cached: true}
				if conv != nil {
					if err := out.convert(cache, e, conv); err != nil {
						return out, err
					}
				}
				return out, nil
			}
		}
	}
	rec := newRecordingFS(snap.FS)
	ko := krusty.MakeDefaultOptions()
	ko.LoadRestrictions = opts.LoadRestrictions
	m, err := krusty.MakeKustomizer(ko).Run(newViewFS(rec, u.files), u.top)
	if err != nil {
		return unitOut{}, err
	}
	out := unitOut{res: m.Resources()}
	out.facts = factsOf(out.res)
	e := &cacheEntry{Key: key, Obs: rec.observations(), Facts: out.facts}
	if conv == nil || (cache != nil && cache.dir != "") {
		// YAML only where it is read back: by renders without a
		// Converter, and from disk by a later process.
		if data, err := encode(out.res); err == nil {
			e.Data = data
		}
	}
	if conv != nil {
		return out, out.convert(cache, e, conv)
	}
	if cache != nil && e.Data != nil {
		cache.put(e)
	}
	return out, nil
}

// convert replaces o's objects with conv's value, which it stores with e.
func (o *unitOut) convert(cache *Cache, e *cacheEntry, conv *Converter) error {
	v, size, err := conv.Convert(o.res)
	if err != nil {
		return &convertError{err}
	}
	o.res, o.value = nil, v
	if cache != nil {
		m := *e
		m.conv, m.value, m.valueSize = conv.ID, v, size
		cache.put(&m)
	}
	return nil
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
	b := bytes.NewBuffer([]byte{}) // never nil: an empty unit is cached too
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
