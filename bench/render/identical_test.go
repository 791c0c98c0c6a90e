package main

import (
	"testing"
)

// TestUnitsIdenticalToWhole checks, on a small generated bench repository,
// what the benchmark checks on the large one: strata's rendering in units
// gives kubectl kustomize's objects exactly.
func TestUnitsIdenticalToWhole(t *testing.T) {
	repo, err := Generate(t.TempDir(), Spec{Objects: 400, Namespaces: 8})
	if err != nil {
		t.Fatal(err)
	}
	units, err := checkIdentical(repo.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if units != 8 {
		t.Errorf("%d units, want one per namespace (8)", units)
	}
}
