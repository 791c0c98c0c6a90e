// Package desired computes the desired state of an environment at a
// revision: strata.yaml from that revision, the rendered overlay, the
// placement of every object, and the manifests per cluster stamped with
// strata's labels and annotations. render, plan and the reconciler share it.
package desired

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"sigs.k8s.io/kustomize/api/resource"

	"github.com/strata-gitops/strata/internal/config"
	"github.com/strata-gitops/strata/internal/placement"
	"github.com/strata-gitops/strata/internal/render"
	"github.com/strata-gitops/strata/internal/secrets"
	"github.com/strata-gitops/strata/internal/source"
)

// Options tune Build.
type Options struct {
	Render render.Options
	// Healthy is the set of reachable clusters; nil means all (rule 3).
	Healthy map[string]bool
	// Now decides which windows are open; zero means the current time.
	Now time.Time
	// Windows, when not nil, are the windows to open whatever the time (the
	// approval gate judges a change with and without them); names the
	// environment does not have are ignored.
	Windows []string
	// KeepResources also keeps kustomize's objects, stamped, in
	// State.Resources: for output in kustomize's own field order (strata
	// render). Without it, units whose inputs did not change since an
	// earlier render are neither rendered nor decoded again.
	KeepResources bool
}

// DefaultOptions returns Build's defaults.
func DefaultOptions() Options { return Options{Render: render.DefaultOptions()} }

// State is the desired state of one environment at one revision.
type State struct {
	Environment string
	// Revision labels the content (a commit, or a commit+worktree).
	Revision string
	Config   *config.Config
	Clusters []config.Cluster
	// Objects are the rendered objects in render order, without strata's
	// stamps (Object.Stamped adds them). Shared with the render cache:
	// never modify one.
	Objects []*Object
	// Resources are kustomize's objects, stamped, parallel to Objects;
	// only with Options.KeepResources.
	Resources []*resource.Resource
	Placement *placement.Result
	// Windows are the windows open for the render, whose components were added.
	Windows []string
	// Sources are the revision's SOPS files by MAC (see checkSecrets).
	Sources map[string]secrets.Source
}

// LoadConfig reads strata.yaml from the snapshot.
func LoadConfig(snap *source.Snapshot) (*config.Config, error) {
	cfg, err := config.Load(snap.ReadFile)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", snap.RevisionLabel(), err)
	}
	return cfg, nil
}

// Build renders env of snap with cfg and places every object. On a
// placement violation it returns the state (for reporting) and a
// *placement.ViolationsError; callers must not apply such a state.
func Build(snap *source.Snapshot, cfg *config.Config, env string, opts Options) (*State, error) {
	e, err := cfg.Environment(env)
	if err != nil {
		return nil, err
	}
	ropts, windows := renderOptions(cfg, env, opts)
	var res []*resource.Resource
	var objs []*Object
	if opts.KeepResources {
		if res, err = render.Overlay(snap, env, e.Path, ropts); err != nil {
			return nil, err
		}
		v, _, err := convert(res)
		if err != nil {
			return nil, &render.Error{Environment: env, Overlay: e.Path, Err: err}
		}
		objs = v.([]*Object)
	} else {
		parts, _, err := render.OverlayConverted(snap, env, e.Path, ropts, converter)
		if err != nil {
			return nil, err
		}
		for _, p := range parts {
			objs = append(objs, p.([]*Object)...)
		}
	}
	result := placement.Place(placement.Input{
		Environment: env, Tiers: cfg.Tiers, Clusters: e.Clusters, Healthy: opts.Healthy, Objects: placeObjects(objs),
	})
	sources, err := checkSecrets(snap, cfg, objs, result)
	if err != nil {
		return nil, err
	}
	s := &State{
		Environment: env, Revision: snap.RevisionLabel(), Config: cfg, Clusters: e.Clusters,
		Objects: objs, Resources: res, Placement: result, Windows: windows, Sources: sources,
	}
	if len(result.Violations) > 0 {
		// Name the file of every violating object. Only this failure path
		// pays for the second render; without origins the message is still
		// correct, just without the file.
		if origins, err := render.Origins(snap, e.Path, opts.Render); err == nil {
			for i, v := range result.Violations {
				if v.Index < 0 || v.Index >= len(objs) {
					continue
				}
				if file, ok := origins[objs[v.Index].Key()]; ok {
					result.Violations[i].Object.Source = file
				}
			}
		}
	}
	if err := result.Err(); err != nil {
		return s, err
	}
	if res != nil {
		if err := s.stamp(); err != nil {
			return s, err
		}
	}
	return s, nil
}

// StampOf returns the stamp of the object of decision d at the state's
// revision.
func (s *State) StampOf(d placement.Decision) Stamp {
	return Stamp{Environment: s.Environment, Revision: s.Revision, Reason: d.Reason}
}

// stamp adds strata's labels and annotations to every placed resource.
func (s *State) stamp() error {
	for _, d := range s.Placement.Decisions {
		r := s.Resources[d.Index]
		l, a := r.GetLabels(), r.GetAnnotations()
		s.StampOf(d).AddTo(l, a)
		if err := r.SetLabels(l); err != nil {
			return fmt.Errorf("labeling %s: %w", d.Object, err)
		}
		if err := r.SetAnnotations(a); err != nil {
			return fmt.Errorf("annotating %s: %w", d.Object, err)
		}
	}
	return nil
}

// ForCluster returns the stamped manifests for cluster, in render order;
// only with Options.KeepResources.
func (s *State) ForCluster(cluster string) []*resource.Resource {
	ds := s.Placement.ForCluster(cluster)
	out := make([]*resource.Resource, len(ds))
	for i, d := range ds {
		out[i] = s.Resources[d.Index]
	}
	return out
}

// ClusterNames returns the environment's clusters in strata.yaml order.
func (s *State) ClusterNames() []string {
	out := make([]string, len(s.Clusters))
	for i, c := range s.Clusters {
		out[i] = c.Name
	}
	return out
}

// Fingerprint names the objects Build would render for env of snap with
// cfg and opts (render.Fingerprint), with the windows open then; "" when
// it cannot tell. Placement also depends on opts.Healthy, which callers
// compare themselves.
func Fingerprint(snap *source.Snapshot, cfg *config.Config, env string, opts Options) string {
	e, err := cfg.Environment(env)
	if err != nil {
		return ""
	}
	ropts, windows := renderOptions(cfg, env, opts)
	fp := render.Fingerprint(snap, e.Path, ropts)
	if fp == "" {
		return ""
	}
	return fp + "/" + strings.Join(windows, ",")
}

// renderOptions returns the render options of env with the components of
// the windows open at opts.Now (or of opts.Windows), and those windows.
func renderOptions(cfg *config.Config, env string, opts Options) (render.Options, []string) {
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	windows := cfg.OpenWindows(env, now)
	if opts.Windows != nil {
		windows = cfg.EnvironmentWindows(env, opts.Windows)
	}
	ropts := opts.Render
	ropts.Components = append(slices.Clone(ropts.Components), cfg.WindowComponents(windows)...)
	return ropts, windows
}
