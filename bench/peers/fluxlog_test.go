package main

import (
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCountFluxReconciles(t *testing.T) {
	data, err := os.ReadFile("testdata/kustomize-controller-two-steps.log")
	if err != nil {
		t.Fatal(err)
	}
	got := countFluxReconciles(data)
	want := map[string]int{"public": 3, "private": 2}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("reconciles per Kustomization (-want +got):\n%s", diff)
	}
}
