// Package render builds an environment's overlay with kustomize/api (krusty)
// over a revision's filesystem.
package render

import (
	"fmt"
	"path"
	"strings"
	"sync/atomic"

	"sigs.k8s.io/kustomize/api/konfig"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/resource"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/strata-gitops/strata/internal/source"
)

// Options tune a render.
type Options struct {
	// LoadRestrictions keeps kustomize inside the repository by default.
	LoadRestrictions types.LoadRestrictions
	// Components are repository-relative Kustomize Components added to the
	// overlay (the components of open windows).
	Components []string
	// Whole renders the environment as one kustomization (kustomize build)
	// instead of in units (see units.go).
	Whole bool
	// Cache, when set, keeps rendered units for later renders.
	Cache *Cache
	// Parallel bounds the units rendered at once; 0 means GOMAXPROCS.
	Parallel int
}

// DefaultOptions returns the options strata renders with: files only from
// inside the repository, no exec or Go plugins, no Helm.
func DefaultOptions() Options {
	return Options{LoadRestrictions: types.LoadRestrictionsRootOnly, Cache: defaultCache.Load()}
}

var defaultCache atomic.Pointer[Cache]

func init() {
	// Every process shares one in-memory cache by default: the reconciler
	// renders each commit again on every reconcile, the approval gate
	// renders base and head with and without windows, plan renders base
	// and head. Entries are keyed by content, so sharing is sound; a
	// one-shot render pays only the encoding of each unit's output.
	c, _ := NewCache(CacheOptions{})
	defaultCache.Store(c)
}

// SetDefaultCache replaces the cache DefaultOptions carry (nil: none), for
// example with one that also keeps entries on disk.
func SetDefaultCache(c *Cache) { defaultCache.Store(c) }

// Error is a failed render: the environment, the overlay and kustomize's
// message, which names the file.
type Error struct {
	Environment string
	Overlay     string
	Err         error
}

func (e *Error) Error() string {
	return fmt.Sprintf("rendering environment %s (overlay %s): %v", e.Environment, e.Overlay, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Overlay renders the overlay at the repository-relative path overlay of
// snap. env names the environment in errors.
func Overlay(snap *source.Snapshot, env, overlay string, opts Options) ([]*resource.Resource, error) {
	res, _, err := overlayStats(snap, env, overlay, opts)
	return res, err
}

func overlayStats(snap *source.Snapshot, env, overlay string, opts Options) ([]*resource.Resource, Stats, error) {
	overlay = path.Clean(overlay)
	dir := snap.Path(overlay)
	if err := checkOverlay(snap, env, overlay, dir); err != nil {
		return nil, Stats{}, err
	}
	if opts.Whole {
		res, err := whole(snap, env, overlay, dir, opts)
		return res, Stats{Units: 1, Rendered: 1, Whole: "asked for"}, err
	}
	outs, st, err := incremental(snap, overlay, dir, opts, nil)
	if err != nil {
		return nil, st, err
	}
	if outs == nil {
		res, err := whole(snap, env, overlay, dir, opts)
		return res, st, err
	}
	n := 0
	for _, o := range outs {
		n += len(o.res)
	}
	res := make([]*resource.Resource, 0, n)
	for _, o := range outs {
		res = append(res, o.res...)
	}
	return res, st, nil
}

// checkOverlay fails when the overlay directory or its kustomization is
// missing, saying what to create.
func checkOverlay(snap *source.Snapshot, env, overlay, dir string) error {
	if !snap.FS.IsDir(dir) {
		return &Error{Environment: env, Overlay: overlay, Err: fmt.Errorf(
			"directory %s does not exist in %s: create it with a kustomization.yaml, or fix environments.%s.path in strata.yaml", overlay, snap.RevisionLabel(), env)}
	}
	if !hasKustomization(snap, dir) {
		return &Error{Environment: env, Overlay: overlay, Err: fmt.Errorf(
			"%s has no kustomization file (one of %s) in %s: add one listing the resources of %s",
			overlay, strings.Join(konfig.RecognizedKustomizationFileNames(), ", "), snap.RevisionLabel(), env)}
	}
	return nil
}

// whole renders the overlay as one kustomization, the way kustomize build
// does.
func whole(snap *source.Snapshot, env, overlay, dir string, opts Options) ([]*resource.Resource, error) {
	ko := krusty.MakeDefaultOptions()
	ko.LoadRestrictions = opts.LoadRestrictions
	fsys := snap.FS
	if len(opts.Components) > 0 {
		var err error
		if fsys, dir, err = withComponents(snap, overlay, opts.Components); err != nil {
			return nil, &Error{Environment: env, Overlay: overlay, Err: err}
		}
	}
	m, err := krusty.MakeKustomizer(ko).Run(fsys, dir)
	if err != nil {
		return nil, renderError(env, overlay, opts, err)
	}
	return m.Resources(), nil
}

func renderError(env, overlay string, opts Options, err error) error {
	if len(opts.Components) > 0 {
		err = fmt.Errorf("%v (with the components of open windows: %s)", err, strings.Join(opts.Components, ", "))
	}
	return &Error{Environment: env, Overlay: overlay, Err: fmt.Errorf("%v: fix the file named above and commit it", err)}
}

// withComponents returns a filesystem and directory that render overlay
// with components added, without writing to the repository.
func withComponents(snap *source.Snapshot, overlay string, components []string) (filesys.FileSystem, string, error) {
	return wrap(snap, overlay, windowPrefix, func(base string) string {
		return windowKustomization(overlay, base, components)
	})
}

// windowPrefix starts the name of the directory, next to the overlay, of
// the kustomization that adds the components of open windows.
const windowPrefix = ".strata-window-"

// windowKustomization is that kustomization for an overlay whose
// directory is named base.
func windowKustomization(overlay, base string, components []string) string {
	var b strings.Builder
	b.WriteString("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n")
	fmt.Fprintf(&b, "- %q\ncomponents:\n", "../"+base)
	depth := strings.Count(path.Clean(overlay), "/") + 1
	up := strings.Repeat("../", depth)
	for _, c := range components {
		fmt.Fprintf(&b, "- %q\n", up+path.Clean(c))
	}
	return b.String()
}

func hasKustomization(snap *source.Snapshot, dir string) bool {
	for _, name := range konfig.RecognizedKustomizationFileNames() {
		if snap.FS.Exists(path.Join(dir, name)) {
			return true
		}
	}
	return false
}
