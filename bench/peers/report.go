package main

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/strata-gitops/strata/bench/internal/results"
	"github.com/strata-gitops/strata/bench/peers/internal/admission"
)

// sectionHeader is the header of the section -markdown maintains.
const sectionHeader = "## Side by side: strata vs Flux and Kyverno"

type report struct {
	opts                        options
	command                     string
	date                        time.Time
	machine                     results.Machine
	loadBefore, loadAfter       string
	strata, kube                string
	fluxVersion, kyvernoVersion string
	gitops                      []*scenarioResult
	admission                   *admission.Result
}

type scenarioResult struct {
	sc    *scenario
	sides map[string]*sideResult
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// cell is "median (min–max)" in seconds.
func cell(ds []time.Duration) string {
	if len(ds) == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f s (%.2f–%.2f)", median(ds).Seconds(), slices.Min(ds).Seconds(), slices.Max(ds).Seconds())
}

func verdict(ok bool) string {
	if ok {
		return "PASS"
	}
	return "MISS"
}

// rows are the scenario's table rows: step, strata, Flux, ratio, goal.
func (s *scenarioResult) rows() [][]string {
	st, fx := s.sides["strata"], s.sides["Flux"]
	var rows [][]string
	for _, step := range s.sc.steps {
		if step.untimed {
			continue
		}
		a, b := st.times[step.name], fx.times[step.name]
		ratio := float64(median(a)) / float64(median(b))
		rows = append(rows, []string{s.sc.key, step.name, cell(a), cell(b), fmt.Sprintf("%.2f", ratio),
			fmt.Sprintf("≤ %.2f: %s", s.sc.goal, verdict(ratio <= s.sc.goal))})
	}
	su, fu := st.use, fx.use
	mem := float64(su.peakKiB) / float64(fu.peakKiB)
	rows = append(rows, []string{s.sc.key, "peak RSS (all of the tool's processes)", mib(su.peakKiB), mib(fu.peakKiB), fmt.Sprintf("%.2f", mem), memGoal(s.sc, mem)},
		[]string{s.sc.key, "CPU time over the scenario", fmt.Sprintf("%.1f s", su.cpu.Seconds()), fmt.Sprintf("%.1f s", fu.cpu.Seconds()),
			fmt.Sprintf("%.2f", su.cpu.Seconds()/fu.cpu.Seconds()), "–"})
	return rows
}

func memGoal(sc *scenario, ratio float64) string {
	if sc.key != "3" {
		return "–"
	}
	return "≤ 1.00: " + verdict(ratio <= 1)
}

func mib(kib int64) string { return fmt.Sprintf("%d MiB", kib>>10) }

func (s *scenarioResult) text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "scenario %s: %s\n", s.sc.key, s.sc.title)
	for _, r := range s.rows() {
		fmt.Fprintf(&b, "  %-40s strata %-24s Flux %-24s ratio %s  %s\n", r[1], r[2], r[3], r[4], r[5])
	}
	return b.String()
}

func (r *report) text() string {
	var b strings.Builder
	b.WriteString("strata vs Flux and Kyverno\n")
	for _, s := range r.gitops {
		b.WriteString(s.text())
	}
	if r.admission != nil {
		b.WriteString(r.admission.Text())
	}
	return b.String()
}

func (r *report) markdown() string {
	var b strings.Builder
	b.WriteString(sectionHeader + "\n\n")
	fmt.Fprintf(&b, "- date: %s\n- machine: %d CPUs (nproc), %s, %s, %s, %s\n- command: `%s`\n- strata: %s\n- Flux %s, Kyverno %s, built from the Go module proxy by bench/peers/build.sh and run out of cluster\n- clusters: local kwok clusters (internal/localcluster, %s), recreated before every tool's run of a scenario\n- load average before / after: %s / %s\n\n",
		r.date.Format("2006-01-02 15:04 UTC"), r.machine.NProc, r.machine.CPU, r.machine.Mem, r.machine.Kernel, r.machine.GoVersion,
		r.command, r.strata, r.fluxVersion, r.kyvernoVersion, orUnknown(r.kube), r.loadBefore, r.loadAfter)
	if len(r.gitops) > 0 {
		b.WriteString("### GitOps: strata reconcile vs Flux\n\n")
		b.WriteString("Each tool runs as its own processes following its own copy of the same repository on the same in-process git server (fluxcd's gittestserver over HTTP). Right after each `git push`, strata gets its signed push hook and Flux gets `reconcile.fluxcd.io/requestedAt` on the GitRepository and every Kustomization (what `flux reconcile` does). A step's time runs from the push's completion until every cluster has the commit applied with all objects healthy: strata's inventory status per cluster; Flux's Kustomizations Ready at the commit with `wait: true`, `prune: true` and the expected inventory. Flux's manifests are strata's render split per cluster with strata's stamps removed (`flux/<cluster>/`, committed with each change), one Kustomization per cluster, the others reached through `spec.kubeConfig.secretRef`. Times: median (min–max) over the reps; ratio = strata / Flux of the medians.\n\n")
		fmt.Fprintf(&b, "| scenario | step | strata | Flux | ratio | goal |\n|---|---|--:|--:|--:|---|\n")
		for _, s := range r.gitops {
			for _, row := range s.rows() {
				b.WriteString("| " + strings.Join(row, " | ") + " |\n")
			}
		}
		b.WriteString("\nScenarios: ")
		for i, s := range r.gitops {
			if i > 0 {
				b.WriteString("; ")
			}
			fmt.Fprintf(&b, "%s = %s (%d reps)", s.sc.key, s.sc.title, r.opts.reps)
		}
		b.WriteString(". Peak RSS is VmHWM of each process over the whole scenario (Flux: source-controller + kustomize-controller), CPU is user+system time of those processes.\n\n")
	}
	if r.admission != nil {
		b.WriteString("### Admission: strata webhook vs Kyverno\n\n")
		b.WriteString(r.admission.Markdown())
		b.WriteString("\n")
	}
	return b.String()
}

func orUnknown(s string) string {
	if s == "" {
		return "version unknown"
	}
	return s
}
