package main

import (
	"strings"
	"testing"
	"time"
)

func TestGoalsAgainstTheFasterFlux(t *testing.T) {
	s := time.Second
	side := func(change []time.Duration, reconciles []int) *sideResult {
		return &sideResult{times: map[string][]time.Duration{"change": change}, reconciles: map[string][]int{"change": reconciles},
			peakKiB: 100 << 10, cpu: []time.Duration{s}}
	}
	sc := &scenario{key: "1", title: "change", steps: []step{{name: "change", goal: 0.1}}}
	res := &scenarioResult{sc: sc, tools: []string{toolStrata, toolFlux, toolFluxTuned}, sides: map[string]*sideResult{
		toolStrata: side([]time.Duration{s / 2, s / 2, s}, []int{1, 1, 1}),
		// Tuned Flux is faster: the goal is judged against it.
		toolFlux:      side([]time.Duration{10 * s, 10 * s, 12 * s}, []int{2, 2, 3}),
		toolFluxTuned: side([]time.Duration{4 * s, 4 * s, 5 * s}, []int{2, 2, 2}),
	}}
	r := &report{opts: options{reps: 3, fluxTuned: fluxTunedDefault}, tools: res.tools, gitops: []*scenarioResult{res}}
	goals := r.goals()
	if len(goals) != 1 || !strings.Contains(goals[0], "Flux tuned 4.00 s = 0.12×") || !strings.Contains(goals[0], "**MISS**") {
		t.Fatalf("goals = %q, want a miss against Flux tuned", goals)
	}
	md := r.markdown()
	for _, want := range []string{
		"| 1 | change | 0.50 s (0.50–1.00) | 10.00 s (10.00–12.00) | 4.00 s (4.00–5.00) | 0.05 | 0.12 | ≤ 0.10: MISS |",
		"| 1 | change | 1 | 2 (2–3) | 2 |",
		"--concurrent-ssa=16",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	res.sides[toolFluxTuned].times["change"] = []time.Duration{6 * s, 6 * s, 6 * s}
	if goals := r.goals(); !strings.Contains(goals[0], "**PASS**") {
		t.Fatalf("goals = %q, want a pass at 0.5 s / 6 s", goals)
	}
}

// The floor is no peer: the goal is still judged against the faster Flux,
// and each tool's time above the floor is reported beside it.
func TestFloorIsNoPeer(t *testing.T) {
	s := time.Second
	side := func(change ...time.Duration) *sideResult {
		return &sideResult{times: map[string][]time.Duration{"change": change}, reconciles: map[string][]int{"change": {1}},
			peakKiB: 100 << 10, cpu: []time.Duration{s}}
	}
	sc := &scenario{key: "2", title: "change", steps: []step{{name: "change", goal: 0.1}}}
	res := &scenarioResult{sc: sc, tools: []string{toolStrata, toolFlux, toolFloor}, sides: map[string]*sideResult{
		toolStrata: side(1500 * time.Millisecond), toolFlux: side(7 * s), toolFloor: side(s),
	}}
	if got := res.peers(); len(got) != 1 || got[0] != toolFlux {
		t.Fatalf("peers = %q, want only Flux", got)
	}
	r := &report{opts: options{reps: 1}, tools: res.tools, gitops: []*scenarioResult{res}}
	goals := r.goals()
	for _, want := range []string{"Flux 7.00 s = 0.21×", "**MISS**", "the floor (no tool: the harness applying the split itself) takes 1.00 s, above it strata takes 0.50 s and Flux 6.00 s = 0.08×"} {
		if len(goals) != 1 || !strings.Contains(goals[0], want) {
			t.Errorf("goals = %q, want %q", goals, want)
		}
	}
	md := r.markdown()
	for _, want := range []string{
		"| 2 | change | 1.50 s (1.50–1.50) | 7.00 s (7.00–7.00) | 1.00 s (1.00–1.00) | 0.21 | 0.08 (0.50 / 6.00 s) | ≤ 0.10: MISS |",
		"| 2 | peak RSS (all of the tool's processes, largest rep) | 100 MiB | 100 MiB | – | 1.00 | – | – |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	// strata's median below the floor's reads "at the floor", not a negative ratio.
	res.sides[toolStrata].times["change"] = []time.Duration{900 * time.Millisecond}
	if md := r.markdown(); !strings.Contains(md, "| 0.13 | at the floor (-0.10 / 6.00 s) |") {
		t.Errorf("markdown lacks the at-the-floor cell:\n%s", md)
	}
}
