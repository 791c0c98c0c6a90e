package desired_test

import (
	"path/filepath"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/strata-gitops/strata/internal/config"
	"github.com/strata-gitops/strata/internal/desired"
	"github.com/strata-gitops/strata/internal/labels"
	"github.com/strata-gitops/strata/internal/source"
)

// The demo config repository (this repository's strata.yaml and overlays/)
// labels everything: in every environment, with its windows closed and
// open, every object places without a violation and has an effective
// sensitivity, or is a Namespace or CRD that follows its contents — so the
// fail-closed webhooks admit all of it, and the Pods its workloads create
// (labeled like their templates, in labeled Namespaces) too.
func TestDemoLabelsEverything(t *testing.T) {
	snap, cfg := demoRepository(t)
	for _, env := range cfg.EnvironmentNames() {
		for _, windows := range [][]string{{}, cfg.EnvironmentWindows(env, nil)} {
			opts := desired.DefaultOptions()
			opts.Windows = windows
			st, err := desired.Build(snap, cfg, env, opts)
			if err != nil {
				t.Fatalf("%s (windows %v): %v", env, windows, err)
			}
			floors := map[string]bool{} // labeled Namespaces of the render
			for _, d := range st.Placement.Decisions {
				if d.Object.Kind == "Namespace" && d.Object.Labels[labels.Sensitivity] != "" {
					floors[d.Object.Name] = true
				}
			}
			for _, d := range st.Placement.Decisions {
				if d.Sensitivity == "" && d.Contents == "" {
					t.Errorf("%s: %s has no sensitivity", env, d.Object)
				}
				// What a workload creates carries its templates' labels.
				for _, tl := range d.Object.TemplateLabels {
					if tl[labels.Sensitivity] == "" && !floors[d.Object.Namespace] {
						t.Errorf("%s: %s creates objects with no sensitivity (unlabeled template, unlabeled Namespace)", env, d.Object)
					}
				}
			}
		}
	}
}

// demoRepository is this repository's own config (strata.yaml, overlays/)
// as a snapshot, with its strata.yaml.
func demoRepository(t *testing.T) (*source.Snapshot, *config.Config) {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	snap := &source.Snapshot{FS: filesys.MakeFsOnDisk(), Root: root}
	cfg, err := desired.LoadConfig(snap)
	if err != nil {
		t.Fatal(err)
	}
	return snap, cfg
}
