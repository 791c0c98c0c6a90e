package main

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/strata-gitops/strata/bench/internal/floor"
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
	tools                       []string
	gitops                      []*scenarioResult
	admission                   *admission.Result
}

type scenarioResult struct {
	sc    *scenario
	tools []string // strata first, then the Flux configurations, then the floor (if run)
	sides map[string]*sideResult
}

func median[T int | time.Duration](ds []T) T {
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

// countCell is "median (min–max)" of counts.
func countCell(ns []int) string {
	if len(ns) == 0 {
		return "–"
	}
	if slices.Min(ns) == slices.Max(ns) {
		return fmt.Sprint(ns[0])
	}
	return fmt.Sprintf("%d (%d–%d)", median(ns), slices.Min(ns), slices.Max(ns))
}

func verdict(ok bool) string {
	if ok {
		return "PASS"
	}
	return "MISS"
}

// peers are the tools strata is compared with (the floor is none).
func (s *scenarioResult) peers() []string { return peersOf(s.tools) }

func peersOf(tools []string) []string {
	var out []string
	for _, t := range tools[1:] {
		if t != toolFloor {
			out = append(out, t)
		}
	}
	return out
}

func hasFloor(tools []string) bool { return slices.Contains(tools, toolFloor) }

// fastestPeer is the peer configuration with the shortest median time of
// step, and strata's ratio to it (the largest ratio).
func (s *scenarioResult) fastestPeer(step string) (string, float64) {
	st := s.sides[toolStrata]
	worst, against := 0.0, ""
	for _, p := range s.peers() {
		ratio := float64(median(st.times[step])) / float64(median(s.sides[p].times[step]))
		if ratio >= worst {
			worst, against = ratio, p
		}
	}
	return against, worst
}

// aboveFloor is strata's and the fastest peer's median time of step less
// the floor's, and their ratio; ok is false without a floor or a peer, or
// when the peer is not above the floor.
func (s *scenarioResult) aboveFloor(step string) (strata, peer time.Duration, ratio float64, ok bool) {
	p, _ := s.fastestPeer(step)
	if !hasFloor(s.tools) || p == "" {
		return 0, 0, 0, false
	}
	floor := median(s.sides[toolFloor].times[step])
	strata = median(s.sides[toolStrata].times[step]) - floor
	peer = median(s.sides[p].times[step]) - floor
	if peer <= 0 {
		return strata, peer, 0, false
	}
	return strata, peer, float64(strata) / float64(peer), true
}

// rows are the scenario's table rows: scenario, step, one time per tool,
// strata/peer per peer, goal. The goal is judged against the fastest peer
// configuration (the largest ratio).
func (s *scenarioResult) rows() [][]string {
	st := s.sides[toolStrata]
	var rows [][]string
	for _, step := range s.sc.steps {
		row := []string{s.sc.key, step.name}
		for _, t := range s.tools {
			row = append(row, cell(s.sides[t].times[step.name]))
		}
		for _, p := range s.peers() {
			ratio := float64(median(st.times[step.name])) / float64(median(s.sides[p].times[step.name]))
			row = append(row, fmt.Sprintf("%.2f", ratio))
		}
		_, worst := s.fastestPeer(step.name)
		if hasFloor(s.tools) {
			a := "–"
			if sa, pa, ratio, ok := s.aboveFloor(step.name); ok {
				a = fmt.Sprintf("%.2f (%.2f / %.2f s)", ratio, sa.Seconds(), pa.Seconds())
				if sa <= 0 { // strata's median is not above the floor's
					a = fmt.Sprintf("at the floor (%+.2f / %.2f s)", sa.Seconds(), pa.Seconds())
				}
			}
			row = append(row, a)
		}
		g := "–"
		if step.goal > 0 && len(s.peers()) > 0 {
			g = fmt.Sprintf("≤ %.2f: %s", step.goal, verdict(worst <= step.goal))
		}
		rows = append(rows, append(row, g))
	}
	mem := []string{s.sc.key, "peak RSS (all of the tool's processes, largest rep)"}
	cpu := []string{s.sc.key, "CPU time per rep (median)"}
	for _, t := range s.tools {
		if t == toolFloor { // it runs in the harness
			mem, cpu = append(mem, "–"), append(cpu, "–")
			continue
		}
		mem = append(mem, mib(s.sides[t].peakKiB))
		cpu = append(cpu, fmt.Sprintf("%.1f s", median(s.sides[t].cpu).Seconds()))
	}
	for _, p := range s.peers() {
		mem = append(mem, fmt.Sprintf("%.2f", float64(st.peakKiB)/float64(s.sides[p].peakKiB)))
		cpu = append(cpu, fmt.Sprintf("%.2f", median(st.cpu).Seconds()/median(s.sides[p].cpu).Seconds()))
	}
	if hasFloor(s.tools) {
		mem, cpu = append(mem, "–"), append(cpu, "–")
	}
	return append(rows, append(mem, "–"), append(cpu, "–"))
}

// reconcileRows: scenario, step, reconciles per tool.
func (s *scenarioResult) reconcileRows() [][]string {
	var rows [][]string
	for _, step := range s.sc.steps {
		row := []string{s.sc.key, step.name}
		for _, t := range s.tools {
			row = append(row, countCell(s.sides[t].reconciles[step.name]))
		}
		rows = append(rows, row)
	}
	return rows
}

func mib(kib int64) string { return fmt.Sprintf("%d MiB", kib>>10) }

func (s *scenarioResult) text() string {
	var b strings.Builder
	ratios := ""
	if len(s.peers()) > 0 {
		ratios = "; ratios strata/" + strings.Join(s.peers(), ", strata/")
	}
	if hasFloor(s.tools) {
		ratios += "; above the floor: strata/Flux (strata / Flux)"
	}
	fmt.Fprintf(&b, "scenario %s: %s (%s%s)\n", s.sc.key, s.sc.title, strings.Join(s.tools, " | "), ratios)
	for i, r := range s.rows() {
		fmt.Fprintf(&b, "  %-52s %s\n", r[1], strings.Join(r[2:], " | "))
		if i < len(s.sc.steps) {
			fmt.Fprintf(&b, "  %-52s %s\n", "  reconciles", strings.Join(s.reconcileRows()[i][2:], " | "))
		}
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
	if goals := r.goals(); len(goals) > 0 {
		b.WriteString("Goals of issue 16, measured side by side in this run:\n\n")
		for _, g := range goals {
			b.WriteString("- " + g + "\n")
		}
		b.WriteString("\n")
	}
	if len(r.gitops) > 0 {
		tools, peers := r.tools, peersOf(r.tools)
		b.WriteString("### GitOps: strata reconcile vs Flux\n\n")
		fmt.Fprintf(&b, "Each tool runs as its own processes following its own copy of the same repository on the same in-process git server (fluxcd's gittestserver over HTTP), on clusters recreated for each tool and rep; the tools take turns within each rep, the order rotating from rep to rep. Right after each `git push`, strata gets its signed push hook; Flux is triggered as `flux reconcile kustomization NAME --with-source` does: `reconcile.fluxcd.io/requestedAt` on the GitRepository, then, once source-controller has handled it and holds the new commit's artifact, on every Kustomization (that wait counts in Flux's time). A step's time runs from the push's completion until every cluster has the commit applied with all objects healthy: strata's inventory status per cluster; Flux's Kustomizations Ready at the commit with `wait: true`, `prune: true` and the expected inventory. Flux's manifests are strata's render split per cluster with strata's stamps removed (`flux/<cluster>/`, committed with each change), one Kustomization per cluster, the others reached through `spec.kubeConfig.secretRef`. \"Flux\" is kustomize-controller with its defaults (`--concurrent=4 --concurrent-ssa=4`); \"Flux tuned\" adds `%s`. Times: median (min–max) over %d reps; ratio = strata / that Flux of the medians; a goal is judged against the faster Flux.\n\n", r.opts.fluxTuned, r.opts.reps)
		if hasFloor(tools) {
			fmt.Fprintf(&b, "The **floor** is no GitOps tool: right after the push the harness itself applies each cluster's split (the objects both tools must end up with) in the clusters at once, one server-side apply request per object (Namespaces first, then the rest %d at a time, no dry-run), deletes what left the split, and polls kstatus every %v until every object is Current — no fetch, no render, no diff, no controller, no status to write: what the apiservers and Kubernetes' rollouts cost the step here. *Above the floor* is each tool's median less the floor's: strata's and the faster Flux's own time, and their ratio.\n\n", floor.Concurrency, floor.Poll)
		}
		b.WriteString("| scenario | step | " + strings.Join(tools, " | "))
		for _, p := range peers {
			b.WriteString(" | strata/" + p)
		}
		extra := 0
		if hasFloor(tools) {
			b.WriteString(" | above the floor: strata/Flux (strata / Flux)")
			extra = 1
		}
		b.WriteString(" | goal |\n|---|---|" + strings.Repeat("--:|", len(tools)+len(peers)+extra) + "---|\n")
		for _, s := range r.gitops {
			for _, row := range s.rows() {
				b.WriteString("| " + strings.Join(row, " | ") + " |\n")
			}
		}
		b.WriteString("\nReconciles per step, summed over the clusters, median (min–max) over the reps, counted from the step's trigger to the next step's (the last step: until 3 s after it was healthy): strata's `" + "strata_reconcile_duration_seconds_count" + "` per cluster; Flux's kustomize-controller log lines \"Reconciliation finished in …\" or \"Reconciliation failed after …\" of the Kustomizations (a reconcile it starts by itself on the new artifact and the one requested then both count).\n\n")
		b.WriteString("| scenario | step | " + strings.Join(tools, " | ") + " |\n|---|---|" + strings.Repeat("--:|", len(tools)) + "\n")
		for _, s := range r.gitops {
			for _, row := range s.reconcileRows() {
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
		b.WriteString(". Peak RSS is the largest VmHWM over the reps of the tool's processes (Flux: source-controller + kustomize-controller), CPU is user+system time of those processes per rep (first sync included).\n\n")
	}
	if r.admission != nil {
		b.WriteString("### Admission: strata webhook vs Kyverno\n\n")
		b.WriteString(r.admission.Markdown())
		b.WriteString("\n")
	}
	return b.String()
}

// goals are issue 16's peer goals with this run's figures: every step with
// a goal (against the faster Flux) and the admission goal.
func (r *report) goals() []string {
	var out []string
	for _, s := range r.gitops {
		st := s.sides[toolStrata]
		for _, step := range s.sc.steps {
			if step.goal == 0 || len(s.peers()) == 0 {
				continue
			}
			against, worst := s.fastestPeer(step.name)
			line := fmt.Sprintf("scenario %s, %s: strata %.2f s / %s %.2f s = %.2f× (goal ≤ %.2f×): **%s**", s.sc.key, step.name,
				median(st.times[step.name]).Seconds(), against, median(s.sides[against].times[step.name]).Seconds(), worst, step.goal, verdict(worst <= step.goal))
			if sa, pa, ratio, ok := s.aboveFloor(step.name); ok {
				line += fmt.Sprintf("; the floor (no tool: the harness applying the split itself) takes %.2f s, above it strata takes %.2f s and %s %.2f s = %.2f×",
					median(s.sides[toolFloor].times[step.name]).Seconds(), sa.Seconds(), against, pa.Seconds(), ratio)
				if sa <= 0 {
					line += " (strata at the floor)"
				}
			}
			out = append(out, line)
		}
	}
	if r.admission != nil {
		if ok, s99, k99, found := r.admission.GoalMet(); found {
			out = append(out, fmt.Sprintf("admission p99 at %d req/s, GOMAXPROCS=%d: strata %.2f ms / Kyverno as shipped %.2f ms = %.3f× (goal ≤ %.1f× and strata ≤ %.1f ms): **%s**",
				admission.GoalRate, r.admission.Options.GOMAXPROCS, float64(s99)/1e6, float64(k99)/1e6, float64(s99)/float64(k99), admission.GoalRatio, float64(admission.GoalP99)/1e6, verdict(ok)))
		}
	}
	return out
}

func orUnknown(s string) string {
	if s == "" {
		return "version unknown"
	}
	return s
}
