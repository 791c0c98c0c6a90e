package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/strata-gitops/strata/bench/internal/floor"
	"github.com/strata-gitops/strata/bench/internal/results"
)

// sectionHeader is the header of the section -markdown maintains.
const sectionHeader = "## Time to recovery: revert with push hook vs 1 m polling"

type report struct {
	opts        options
	command     string
	date        time.Time
	machine     results.Machine
	build       string
	kubeVersion string
	clustersUp  time.Duration
	layout      *Layout
	scenarios   []*scenarioResult
	loadBefore  string
	loadAfter   string
}

func (r *report) scenario(key string) *scenarioResult {
	for _, s := range r.scenarios {
		if s.key == key {
			return s
		}
	}
	return nil
}

// dur prints a duration as people write it: 1m, 90s, 2s, 300ms.
func dur(d time.Duration) string {
	t := d.String()
	if strings.HasSuffix(t, "m0s") {
		t = strings.TrimSuffix(t, "0s")
	}
	if strings.HasSuffix(t, "h0m") {
		t = strings.TrimSuffix(t, "0m")
	}
	return t
}

func verdict(ok bool) string {
	if ok {
		return "PASS"
	}
	return "MISS"
}

// summary is the result in a few lines (text and markdown share it).
func (r *report) summary() []string {
	a, b := r.scenario("A"), r.scenario("B")
	var out []string
	if a != nil {
		ma := median(a.ttrs())
		med := func(f func(rep) time.Duration) string { return secs(median(mapReps(a.reps, f))) }
		out = append(out, fmt.Sprintf("A (push hook): median time to recovery %s over %d reps — goal ≤ %s: %s (medians from the push: noticed %s, last Deployment applied %s, all rolled out by Kubernetes %s)",
			secs(ma), len(a.reps), secs(goal), verdict(ma <= goal), secs(median(a.detects())),
			med(func(p rep) time.Duration { return p.timeline.applied }), med(func(p rep) time.Duration { return p.timeline.rolledOut })))
	}
	if a != nil {
		strataBefore := median(mapReps(a.reps, func(p rep) time.Duration { return p.timeline.applied }))
		kube := median(mapReps(a.reps, func(p rep) time.Duration { return p.timeline.rolledOut - p.timeline.applied }))
		strataAfter := median(mapReps(a.reps, func(p rep) time.Duration { return p.ttr - p.timeline.rolledOut }))
		out = append(out, fmt.Sprintf("where A's time goes (medians): strata from the push to the last Deployment applied (hook, fetch, render, gate, staged server-side apply in three clusters) %s; Kubernetes rolling the Deployments out (last applied → all Current) %s; strata from all Current to the status written (kstatus poll, prune phase, inventory) %s",
			secs(strataBefore), secs(kube), secs(strataAfter)))
	}
	if f := r.scenario(floorKey); f != nil {
		med := func(g func(rep) time.Duration) time.Duration { return median(mapReps(f.reps, g)) }
		applied := med(func(p rep) time.Duration { return p.timeline.applied })
		line := fmt.Sprintf("F (floor: no tool; the harness applies each commit's objects at the push): median time to recovery %s over %d reps (medians from the push: last Deployment applied %s, all rolled out by Kubernetes %s)",
			secs(median(f.ttrs())), len(f.reps), secs(applied), secs(med(func(p rep) time.Duration { return p.timeline.rolledOut })))
		if a != nil {
			own := median(mapReps(a.reps, func(p rep) time.Duration { return p.timeline.applied }))
			ttrDiff := median(a.ttrs()) - median(f.ttrs())
			line += fmt.Sprintf("; strata's own part (A, push → last Deployment applied) is %s, %s the floor's %s; A's time to recovery is %s F's",
				secs(own), aboveOrBelow(own-applied), secs(applied), aboveOrBelow(ttrDiff))
		}
		out = append(out, line)
	}
	if b != nil {
		out = append(out, fmt.Sprintf("B (polling every %s, no hook): median %s over %d reps (noticed after %s, then %s to apply and become healthy)",
			dur(r.opts.interval), secs(median(b.ttrs())), len(b.reps), secs(median(b.detects())), secs(median(b.applies()))))
	}
	if a != nil && b != nil {
		ma, mb := median(a.ttrs()), median(b.ttrs())
		exp := r.opts.interval/2 + median(b.applies())
		out = append(out, fmt.Sprintf("ratio A/B = %.3f (B takes %.0f× as long); against B's expected value (half an interval + its apply time = %s): A/B = %.3f",
			float64(ma)/float64(mb), float64(mb)/float64(ma), secs(exp), float64(ma)/float64(exp)))
	}
	return out
}

func (r *report) setup() []string {
	return []string{
		fmt.Sprintf("date: %s", r.date.Format("2006-01-02 15:04:05 UTC")),
		fmt.Sprintf("command: `%s`", r.command),
		fmt.Sprintf("machine: %d CPUs (nproc), %s, %s", r.machine.NProc, r.machine.CPU, r.machine.Mem),
		fmt.Sprintf("kernel: %s; go: %s", r.machine.Kernel, r.machine.GoVersion),
		fmt.Sprintf("load average: before %s, after %s", r.loadBefore, r.loadAfter),
		fmt.Sprintf("strata: %s", r.build),
		fmt.Sprintf("clusters: three local kwok clusters (binary runtime: etcd, kube-apiserver %s, kube-controller-manager, kube-scheduler, one fake node) via internal/localcluster in a temporary STRATA_HOME, up in %s", r.kubeVersion, secs(r.clustersUp)),
		fmt.Sprintf("environment `bench`: %s", r.layout.Describe()),
		fmt.Sprintf("objects per cluster: %s", r.layout.PerCluster()),
		"git: fluxcd gittestserver over HTTP in process; pushes with the git CLI; no `.strata/trust.yaml` (no approval gate)",
		fmt.Sprintf("reconciler: in process, reconciler.New + reconciler.Run following `main`, KubeconfigDir connector, PollInterval 300ms (kstatus), WatchInterval 300ms; A: signed push hook (reconciler.HookHandler, X-Hub-Signature-256) POSTed right after each push, Interval/DriftInterval %s; B: no hook, Interval/DriftInterval %s", dur(r.opts.interval), dur(r.opts.interval)),
	}
}

func (r *report) method() []string {
	return []string{
		fmt.Sprintf("Per rep: commit and push a bad change that touches all %d objects (`LOG_LEVEL` info → debug: an annotation on every object, the ConfigMaps' data and the Deployments' pod template env, so every Deployment rolls out new Pods), wait until it has converged everywhere, pause, then `git revert --no-edit HEAD` and push.",
			r.layout.Objects),
		fmt.Sprintf("Timed: from the revert's `git push` returning to every cluster's inventory status (ConfigMap `strata-inventory-bench`) showing the revert commit with all its objects healthy and no error, polled every %s per cluster. In A the hook POST is inside the timed span.", dur(r.opts.every)),
		"The columns in between are a timeline of the same span, all from the push's completion: *noticed* is the reconciler's first fetch after the push (the git server sees its git-upload-pack ref advertisement); *Deployments applied* is when the first and the last Deployment carried the revert's `strata.dev/revision` stamp, *Deployments rolled out* when every Deployment was Current by kstatus (new Pods ready, old ones gone: Kubernetes' part), both seen by watching the Deployments of every cluster; *converged* is when each cluster's inventory status said so (strata writes the final status of every cluster once the health waits of all of them are over, so the three are nearly equal).",
		"After every measurement the clusters themselves are checked, not just strata's account: each object present where placement says, in the right variant, stamped with the commit, and every Deployment fully rolled out (1 updated, ready and available replica, no old one left).",
		fmt.Sprintf("B and the poll phase: the reconciler's timer restarts when a reconcile ends, so a revert pushed right after the bad change converged would wait almost exactly one interval. B therefore pauses %s + a uniformly random 0–%s before pushing the revert (seed %d), which puts the push at a random phase of the timer: B's time to recovery is uniform between its apply time and one interval more (expected value half an interval + apply). With %d rep(s) B's median is a sample of that distribution, not its mean; the expected value is shown next to it. The bad change in B is picked up by polling too (not timed).",
			dur(r.opts.settle), dur(r.opts.interval), r.opts.seed, r.opts.pollReps),
		fmt.Sprintf("F, the floor, is no tool: right after A, on the same clusters with A's reconciler stopped, the same bad change and revert are pushed, but at each push the harness itself applies the commit's objects — rendered and placed by strata's own packages before the push, stamped as strata stamps them — one server-side apply request per object (Namespaces first, then %d in flight, forced, no GET, no dry-run), the clusters at once, and polls kstatus every %s until every object is Current. There is nothing to notice, fetch, render, diff or record, so its *Deployments applied* is the least any tool's own part can be on these clusters, and its time to recovery (every object Current; in the *converged* column per cluster) the least any tool's can.", floor.Concurrency, floor.Poll),
		fmt.Sprintf("A pauses %s between the bad change converging and the revert's push, so that the revert meets an idle reconciler.", dur(r.opts.settle)),
	}
}

// aboveOrBelow words a tool's time less the floor's: "0.12 s above" or, as
// the floor's own time varies from rep to rep, "0.05 s below".
func aboveOrBelow(d time.Duration) string {
	if d < 0 {
		return secs(-d) + " below"
	}
	return secs(d) + " above"
}

// noticed prints when the scenario's tool noticed the push: "–" for the
// floor, which has nothing to notice.
func (s *scenarioResult) noticed(d time.Duration) string {
	if s.key == floorKey {
		return "–"
	}
	return secs(d)
}

type row struct {
	cells []string
}

func perCluster(m map[string]time.Duration) string {
	return fmt.Sprintf("%.2f / %.2f / %.2f s", m["public"].Seconds(), m["private"].Seconds(), m["onprem"].Seconds())
}

func (r *report) rows() []row {
	var rows []row
	for _, s := range r.scenarios {
		for i, p := range s.reps {
			warn := ""
			if len(p.warnings) > 0 {
				warn = fmt.Sprintf(" (%d reconciler warnings)", len(p.warnings))
			}
			rows = append(rows, row{cells: []string{
				fmt.Sprintf("%s (%s)", s.key, s.name), fmt.Sprintf("%d", i+1), secs(p.pause), s.noticed(p.detected),
				secs(p.timeline.firstApplied) + " – " + secs(p.timeline.applied), secs(p.timeline.rolledOut),
				perCluster(p.perCluster), "**" + secs(p.ttr) + "**" + warn, secs(p.badApplied), p.load + " / " + p.loadDone,
			}})
		}
		if len(s.reps) > 0 {
			med := func(f func(rep) time.Duration) time.Duration { return median(mapReps(s.reps, f)) }
			rows = append(rows, row{cells: []string{
				fmt.Sprintf("%s median", s.key), "", "", s.noticed(median(s.detects())),
				secs(med(func(p rep) time.Duration { return p.timeline.firstApplied })) + " – " + secs(med(func(p rep) time.Duration { return p.timeline.applied })),
				secs(med(func(p rep) time.Duration { return p.timeline.rolledOut })),
				perCluster(map[string]time.Duration{
					"public":  med(func(p rep) time.Duration { return p.perCluster["public"] }),
					"private": med(func(p rep) time.Duration { return p.perCluster["private"] }),
					"onprem":  med(func(p rep) time.Duration { return p.perCluster["onprem"] }),
				}),
				"**" + secs(median(s.ttrs())) + "**", secs(med(func(p rep) time.Duration { return p.badApplied })), "",
			}})
		}
	}
	for i := range rows {
		for len(rows[i].cells) < len(header) {
			rows[i].cells = append(rows[i].cells, "")
		}
	}
	return rows
}

var header = []string{"scenario", "rep", "pause before push", "noticed", "Deployments applied (first – last)", "Deployments rolled out", "converged: public / private / onprem", "time to recovery", "bad change: push → converged", "load (1 min) at push / at converged"}

func (r *report) text() string {
	var b strings.Builder
	b.WriteString("\nTime to recovery: revert with push hook vs polling\n\n")
	for _, l := range r.setup() {
		fmt.Fprintf(&b, "  %s\n", strings.ReplaceAll(l, "`", ""))
	}
	b.WriteString("\n")
	widths := make([]int, len(header))
	rows := r.rows()
	for i, h := range header {
		widths[i] = len([]rune(h))
		for _, rw := range rows {
			widths[i] = max(widths[i], len([]rune(strings.ReplaceAll(rw.cells[i], "**", ""))))
		}
	}
	line := func(cells []string) {
		for i, c := range cells {
			c = strings.ReplaceAll(c, "**", "")
			fmt.Fprintf(&b, "%-*s  ", widths[i], c)
		}
		b.WriteString("\n")
	}
	line(header)
	for _, rw := range rows {
		line(rw.cells)
	}
	b.WriteString("\n")
	for _, s := range r.scenarios {
		if s.key != floorKey {
			fmt.Fprintf(&b, "%s: reconciler's first reconcile (start-up, %s) converged in %s\n", s.key, s.name, secs(s.startup))
		}
		for i, p := range s.reps {
			for _, w := range p.warnings {
				fmt.Fprintf(&b, "%s rep %d: reconciler warning: %s\n", s.key, i+1, w)
			}
		}
	}
	b.WriteString("\n")
	for _, l := range r.summary() {
		fmt.Fprintf(&b, "%s\n", l)
	}
	return b.String()
}

func (r *report) markdown() string {
	var b strings.Builder
	b.WriteString(sectionHeader + "\n\n")
	flux := ""
	if r.opts.interval == time.Minute {
		flux = " (Flux's default interval)"
	}
	fmt.Fprintf(&b, "Goal: with the push hook, ≤ %s from the push of a revert touching %d objects across three clusters to every cluster converged and healthy; the same revert with the reconciler polling every %s%s and no hook, for the ratio.\n\n",
		secs(goal), r.layout.Objects, dur(r.opts.interval), flux)
	if a := r.scenario("A"); a != nil {
		ma := median(a.ttrs())
		fmt.Fprintf(&b, "**Result: %s median with the push hook — %s**", secs(ma), verdict(ma <= goal))
		if bs := r.scenario("B"); bs != nil {
			mb := median(bs.ttrs())
			fmt.Fprintf(&b, "; polling every %s: %s median; **A/B = %.3f** (%.0f× faster with the hook)", dur(r.opts.interval), secs(mb), float64(ma)/float64(mb), float64(mb)/float64(ma))
		}
		b.WriteString("\n\n")
	}
	for _, l := range r.summary() {
		fmt.Fprintf(&b, "- %s\n", l)
	}
	b.WriteString("\n")
	for _, l := range r.setup() {
		fmt.Fprintf(&b, "- %s\n", l)
	}
	b.WriteString("\n")
	for _, l := range r.method() {
		fmt.Fprintf(&b, "%s\n\n", l)
	}
	b.WriteString("| " + strings.Join(header, " | ") + " |\n|")
	for i := range header {
		if i < 2 {
			b.WriteString("---|")
		} else {
			b.WriteString("--:|")
		}
	}
	b.WriteString("\n")
	for _, rw := range r.rows() {
		b.WriteString("| " + strings.Join(rw.cells, " | ") + " |\n")
	}
	b.WriteString("\n")
	for _, s := range r.scenarios {
		if s.key != floorKey {
			fmt.Fprintf(&b, "- %s: the reconciler's start-up reconcile converged in %s.\n", s.key, secs(s.startup))
		}
		for i, p := range s.reps {
			for _, w := range p.warnings {
				fmt.Fprintf(&b, "- %s rep %d: reconciler warning while the revert was applied: `%s`\n", s.key, i+1, w)
			}
		}
	}
	b.WriteString("\n")
	return b.String()
}

func commandLine() string {
	return strings.TrimSpace("go run ./bench/ttr " + strings.Join(os.Args[1:], " "))
}

// loadavg1 is the 1-minute load average.
func loadavg1() string {
	f := strings.Fields(results.LoadAvg())
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}
