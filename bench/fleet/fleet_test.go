package main

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/strata-gitops/strata/bench/internal/configrepo"
	"github.com/strata-gitops/strata/internal/desired"
	"github.com/strata-gitops/strata/internal/source"
)

// The generated fleet, rendered and placed by strata itself, gives every
// cluster exactly its own Namespace and share of objects, in both variants.
func TestFleetPlacesEachClusterItsShare(t *testing.T) {
	for _, v := range []Variant{good, bad} {
		f, err := NewFleet(4, 20, true)
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		if err := f.Write(dir, v); err != nil {
			t.Fatal(err)
		}
		if err := configrepo.Commit(dir); err != nil {
			t.Fatal(err)
		}
		repo, err := source.Open(context.Background(), dir, source.OpenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		rev, err := repo.Resolve("HEAD")
		if err != nil {
			t.Fatal(err)
		}
		snap, err := repo.Snapshot(rev)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := desired.LoadConfig(snap)
		if err != nil {
			t.Fatal(err)
		}
		opts := desired.DefaultOptions()
		opts.KeepResources = true // the test reads kustomize's resources
		st, err := desired.Build(snap, cfg, fleetEnv, opts)
		if err != nil {
			t.Fatalf("%s: %v", v.Name, err)
		}
		if diff := cmp.Diff([]string{"public-01", "private-02", "onprem-03", "public-04"}, st.ClusterNames()); diff != "" {
			t.Errorf("clusters (-want +got):\n%s", diff)
		}
		for _, c := range st.ClusterNames() {
			got := map[string]int{}
			for _, r := range st.ForCluster(c) {
				got[r.GetKind()]++
				if r.GetNamespace() != "" && r.GetNamespace() != "fleet-"+c {
					t.Errorf("%s: %s %s/%s is in another cluster's Namespace", c, r.GetKind(), r.GetNamespace(), r.GetName())
				}
				if a := r.GetAnnotations()[logLevelKey]; a != v.LogLevel {
					t.Errorf("%s: %s %s has log level %q, want %q", c, r.GetKind(), r.GetName(), a, v.LogLevel)
				}
			}
			want := map[string]int{"Namespace": 1, "Deployment": 6, "Service": 6, "ConfigMap": 7}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s %s: kinds (-want +got):\n%s", v.Name, c, diff)
			}
		}
	}
}

func TestNewFleetRefusesWhatTheClustersCannotHold(t *testing.T) {
	for _, c := range []struct{ n, objects int }{{0, 100}, {100, 100}, {3, 3}, {3, 401}} {
		if _, err := NewFleet(c.n, c.objects, true); err == nil {
			t.Errorf("NewFleet(%d, %d) = nil error, want a refusal", c.n, c.objects)
		}
	}
}

func TestLinearFit(t *testing.T) {
	f, ok := linearFit([]float64{1, 3, 10}, []float64{2.5, 3.5, 7})
	if !ok || math.Abs(f.b-0.5) > 1e-9 || math.Abs(f.a-2) > 1e-9 {
		t.Errorf("fit = %+v, %v; want a=2 b=0.5", f, ok)
	}
	if _, ok := linearFit([]float64{3}, []float64{1}); ok {
		t.Error("a fit through one point succeeded")
	}
}

func TestParseSizes(t *testing.T) {
	got, err := parseSizes("1, 3,10")
	if err != nil || !cmp.Equal(got, []int{1, 3, 10}) {
		t.Errorf("parseSizes = %v, %v", got, err)
	}
	for _, bad := range []string{"3,1", "0", "1,,3", "x"} {
		if _, err := parseSizes(bad); err == nil {
			t.Errorf("parseSizes(%q) accepted", bad)
		}
	}
}

// A run on a busy machine says so at the top of its section.
func TestMarkdownLabelsLoad(t *testing.T) {
	rep := repResult{TTR: 2 * time.Second, PerCluster: map[string]time.Duration{"public-01": 2 * time.Second}, CPU: time.Second, Load: "9.0 8.0 7.0"}
	r := &report{opts: options{maxLoad: 3, maxOther: 0.25}, loadBefore: "9.0 8.0 7.0", maxLoad: 9, clustersUp: map[int]time.Duration{1: time.Second},
		runs: []*runResult{{Mode: Push, N: 1, Procs: 1, Reps: []repResult{rep}, Final: Usage{PeakSumKiB: 100 << 10, PeakMaxKiB: 100 << 10}}}}
	md := r.markdown()
	if !strings.Contains(md, "not a result") {
		t.Errorf("markdown of a loaded run does not say so:\n%s", md)
	}
	if !strings.Contains(md, "| push | 1 | 1 |") {
		t.Errorf("markdown has no push row:\n%s", md)
	}
	r.loadBefore = "1.0 8.0 7.0" // the run's own clusters may load the machine later
	if strings.Contains(r.markdown(), "not a result") {
		t.Error("a quiet run is labelled as under load")
	}
}
