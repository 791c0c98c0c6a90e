package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
)

// Hidden profiling switches (not flags, so that the documented command line
// stays the benchmark's):
//
//	STRATA_BENCH_CPUPROFILE=FILE  CPU profile of `strata render -o yaml`
//	STRATA_BENCH_MEMPROFILE=FILE  allocation profile of the same runs
//	STRATA_BENCH_PROFILE_RUNS=N   in-process runs profiled (default 10)
//
// With -reps 0 the benchmark only generates the repository and profiles
// (no strata binary, no timed runs).
// The runs do in this process what the binary does after start-up (see
// pipeline.go), so they cover everything but package init, which
// `GODEBUG=inittrace=1 strata version` shows.
func profileIfAsked(repo *Repo) error {
	if !profiling() {
		return nil
	}
	cpuFile, memFile := os.Getenv("STRATA_BENCH_CPUPROFILE"), os.Getenv("STRATA_BENCH_MEMPROFILE")
	runs := 10
	if v := os.Getenv("STRATA_BENCH_PROFILE_RUNS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return fmt.Errorf("STRATA_BENCH_PROFILE_RUNS=%q: want a positive number", v)
		}
		runs = n
	}
	if memFile != "" {
		runtime.MemProfileRate = 64 << 10
	}
	if cpuFile != "" {
		f, err := os.Create(cpuFile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	for i := 0; i < runs; i++ {
		if _, _, err := renderYAML(repo.Dir, io.Discard); err != nil {
			return err
		}
	}
	if memFile != "" {
		f, err := os.Create(memFile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "profiled %d in-process renders of %s (cpu %q, allocs %q)\n", runs, repo.Dir, cpuFile, memFile)
	return nil
}

// profiling reports whether a profile was asked for.
func profiling() bool {
	return os.Getenv("STRATA_BENCH_CPUPROFILE") != "" || os.Getenv("STRATA_BENCH_MEMPROFILE") != ""
}
