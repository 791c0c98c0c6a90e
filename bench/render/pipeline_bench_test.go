package main

import (
	"io"
	"os"
	"strconv"
	"sync"
	"testing"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/strata-gitops/strata/internal/desired"
	"github.com/strata-gitops/strata/internal/placement"
	"github.com/strata-gitops/strata/internal/source"
)

// The in-process benchmarks share one generated repository of
// STRATA_BENCH_OBJECTS objects (default 4000), made on first use:
//
//	go test ./bench/render -run x -bench . -benchtime 3x
//
// BenchmarkRenderPipeline is what `strata render -o yaml` does after
// start-up; BenchmarkKrustyOnly is kustomize alone on the work tree, what
// `kubectl kustomize` does; BenchmarkPipelineSteps splits strata's pipeline.

var (
	benchOnce sync.Once
	benchRepo *Repo
	benchErr  error
	benchTmp  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if benchTmp != "" {
		os.RemoveAll(benchTmp)
	}
	os.Exit(code)
}

func repoForBench(b *testing.B) *Repo {
	b.Helper()
	benchOnce.Do(func() {
		n := 4000
		if v := os.Getenv("STRATA_BENCH_OBJECTS"); v != "" {
			if n, benchErr = strconv.Atoi(v); benchErr != nil {
				return
			}
		}
		if benchTmp, benchErr = os.MkdirTemp("", "strata-bench-pipeline-"); benchErr != nil {
			return
		}
		benchRepo, benchErr = Generate(benchTmp+"/repo", Spec{Objects: n, Namespaces: 40})
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return benchRepo
}

func snapshot(b *testing.B, dir string) *source.Snapshot {
	snap, err := openSnapshot(dir)
	if err != nil {
		b.Fatal(err)
	}
	return snap
}

func build(b *testing.B, snap *source.Snapshot) *desired.State {
	st, err := buildState(snap)
	if err != nil {
		b.Fatal(err)
	}
	return st
}

func encode(b *testing.B, st *desired.State) int64 {
	n, err := writeYAML(io.Discard, st)
	if err != nil {
		b.Fatal(err)
	}
	return n
}

func BenchmarkRenderPipeline(b *testing.B) {
	repo := repoForBench(b)
	b.ReportAllocs()
	for b.Loop() {
		st, n, err := renderYAML(repo.Dir, io.Discard)
		if err != nil {
			b.Fatal(err)
		}
		if len(st.Resources) != repo.Total() {
			b.Fatalf("rendered %d objects, want %d", len(st.Resources), repo.Total())
		}
		b.SetBytes(n)
	}
	b.ReportMetric(float64(repo.Total()), "objects")
}

func BenchmarkKrustyOnly(b *testing.B) {
	repo := repoForBench(b)
	run := func(b *testing.B, withYAML bool) {
		b.ReportAllocs()
		for b.Loop() {
			m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), repo.Overlay)
			if err != nil {
				b.Fatal(err)
			}
			if m.Size() != repo.Total() {
				b.Fatalf("rendered %d objects, want %d", m.Size(), repo.Total())
			}
			if withYAML {
				y, err := m.AsYaml()
				if err != nil {
					b.Fatal(err)
				}
				b.SetBytes(int64(len(y)))
			}
		}
		b.ReportMetric(float64(repo.Total()), "objects")
	}
	b.Run("run", func(b *testing.B) { run(b, false) })
	b.Run("run+yaml", func(b *testing.B) { run(b, true) })
}

// BenchmarkPipelineSteps times each step of the pipeline on its own.
func BenchmarkPipelineSteps(b *testing.B) {
	repo := repoForBench(b)
	snap := snapshot(b, repo.Dir)
	st := build(b, snap)
	b.Run("snapshot", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			snapshot(b, repo.Dir)
		}
	})
	b.Run("krusty-on-snapshot", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(snap.FS, snap.Path("overlays/"+benchEnv)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("build", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			build(b, snap)
		}
	})
	b.Run("yaml", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			b.SetBytes(encode(b, st))
		}
	})
	b.Run("place", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			res := placement.Place(placement.Input{
				Environment: benchEnv, Tiers: st.Config.Tiers, Clusters: st.Clusters,
				Objects: desired.Objects(st.Resources),
			})
			if len(res.Decisions) != repo.Total() {
				b.Fatalf("placed %d objects, want %d", len(res.Decisions), repo.Total())
			}
		}
	})
}
