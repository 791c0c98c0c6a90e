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
