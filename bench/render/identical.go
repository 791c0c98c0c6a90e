package main

import (
	"fmt"

	"github.com/strata-gitops/strata/internal/render"
)

// checkIdentical renders the bench environment of the repository in dir
// the way strata does (in units, in parallel) and whole (one kustomize
// build, what kubectl kustomize does), and compares them object for
// object, encoded as kubectl kustomize encodes them. It returns the number
// of units.
func checkIdentical(dir string) (int, error) {
	snap, err := openSnapshot(dir)
	if err != nil {
		return 0, err
	}
	opts := render.DefaultOptions()
	opts.Cache = nil
	units, st, err := render.OverlayStats(snap, benchEnv, "overlays/"+benchEnv, opts)
	if err != nil {
		return 0, err
	}
	if st.Whole != "" {
		return 0, fmt.Errorf("the bench overlay was rendered whole (%s), not in units", st.Whole)
	}
	opts.Whole = true
	whole, err := render.Overlay(snap, benchEnv, "overlays/"+benchEnv, opts)
	if err != nil {
		return 0, err
	}
	if len(units) != len(whole) {
		return 0, fmt.Errorf("in units: %d objects, whole: %d", len(units), len(whole))
	}
	a, err := render.EncodeYAML(units)
	if err != nil {
		return 0, err
	}
	b, err := render.EncodeYAML(whole)
	if err != nil {
		return 0, err
	}
	for i := range a {
		if string(a[i]) != string(b[i]) {
			return 0, fmt.Errorf("object %d differs: in units\n%s\nwhole\n%s", i, a[i], b[i])
		}
	}
	return st.Units, nil
}
