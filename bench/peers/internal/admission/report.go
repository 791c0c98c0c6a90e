package admission

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// ms formats a duration in milliseconds; "∞" for a request never answered.
func ms(d time.Duration) string {
	if d == time.Duration(1<<63-1) {
		return "∞"
	}
	return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond))
}

// ratio is a/b for the strata/kyverno columns.
func ratio(s, k time.Duration) string {
	if k <= 0 || s == time.Duration(1<<63-1) || k == time.Duration(1<<63-1) {
		return "–"
	}
	return fmt.Sprintf("%.3f", float64(s)/float64(k))
}

// point is one load setting: both servers' GOMAXPROCS and the rate.
type point struct{ gomaxprocs, rate int }

// pointRows are the runs of both tools, and of the floor, at one point.
type pointRows struct {
	point
	kyv, str, floor []*LoadRow
}

// points groups the load rows by point: the main GOMAXPROCS first.
func (r *Result) points() []*pointRows {
	var out []*pointRows
	idx := map[point]*pointRows{}
	for i := range r.Load {
		row := &r.Load[i]
		pt := point{row.GOMAXPROCS, row.Rate}
		p, ok := idx[pt]
		if !ok {
			p = &pointRows{point: pt}
			idx[pt] = p
			out = append(out, p)
		}
		switch row.Tool {
		case Kyverno:
			p.kyv = append(p.kyv, row)
		case Floor:
			p.floor = append(p.floor, row)
		default:
			p.str = append(p.str, row)
		}
	}
	// The main GOMAXPROCS first, then by GOMAXPROCS and rate.
	main := r.Options.GOMAXPROCS
	slices.SortStableFunc(out, func(a, b *pointRows) int {
		if (a.gomaxprocs == main) != (b.gomaxprocs == main) {
			if a.gomaxprocs == main {
				return -1
			}
			return 1
		}
		if a.gomaxprocs != b.gomaxprocs {
			return a.gomaxprocs - b.gomaxprocs
		}
		return a.rate - b.rate
	})
	return out
}

// stat is the median, min and max of f over rows (∞ sorts last).
func stat(rows []*LoadRow, f func(*LoadRow) time.Duration) (med, lo, hi time.Duration) {
	ds := make([]time.Duration, len(rows))
	for i, r := range rows {
		ds[i] = f(r)
	}
	slices.Sort(ds)
	if len(ds) == 0 {
		return 0, 0, 0
	}
	return ds[(len(ds)-1)/2], ds[0], ds[len(ds)-1]
}

func p50(r *LoadRow) time.Duration  { return r.P50 }
func p99(r *LoadRow) time.Duration  { return r.P99 }
func pmax(r *LoadRow) time.Duration { return r.Max }

func errorsOf(rows []*LoadRow) int {
	n := 0
	for _, r := range rows {
		n += r.Errors
	}
	return n
}

// medRange is "median (min–max)" in ms, or the one value of a single run.
func medRange(rows []*LoadRow, f func(*LoadRow) time.Duration) string {
	med, lo, hi := stat(rows, f)
	if len(rows) < 2 {
		return ms(med)
	}
	return fmt.Sprintf("%s (%s–%s)", ms(med), ms(lo), ms(hi))
}

// GoalRate is the rate of issue 16's admission goal: strata's p99 at most
// GoalRatio of Kyverno's as shipped and at most GoalP99.
const (
	GoalRate  = 100
	GoalRatio = 0.1
	GoalP99   = 500 * time.Microsecond
)

func (r *Result) setup() string {
	o := r.Options
	return fmt.Sprintf("Kyverno %s (admission controller as its Helm chart "+kyvernoChartVersion+" ships it with default values — the chart's arguments and its ConfigMaps `kyverno` and `kyverno-metrics`, except admission reports, which are off (the chart ships them on; with them Kyverno's report writes starved its leader lease at 100 req/s and it exited: kyvernochart.go), resource filters on (ReplicaSets skipped); bench/peers/internal/admission/kyvernochart.go maps each to the chart — run out of cluster) and `strata webhook` (tier %s, strata.yaml with every sensitivity allowed in every tier so that only the policies deny), each a child process with GOMAXPROCS=%d (and a GOMAXPROCS=%d point)%s, on one kwok cluster on %s (%d CPUs, %s, %s, %s); load average %s when the load started. Both evaluate the %d ValidatingPolicy files of policies/.",
		r.KyvernoVersion, Tier, o.GOMAXPROCS, o.ExtraGOMAXPROCS, r.schedNote(), r.Machine.CPU, r.Machine.NProc, r.Machine.Mem, r.Machine.Kernel, r.Machine.GoVersion, r.LoadAvg, len(r.Policies))
}

func (r *Result) schedNote() string {
	if r.Options.RT == 0 {
		return " and normal scheduling (the machine's other work competes with both)"
	}
	return fmt.Sprintf(" under SCHED_FIFO priority %d (as the load generator during the load), standing in for a dedicated core", r.Options.RT)
}

// Markdown is a section body for bench/RESULTS.md.
func (r *Result) Markdown() string {
	var b strings.Builder
	o := r.Options
	fmt.Fprintf(&b, "%s Full run: %s.\n\n", r.setup(), r.Elapsed.Round(time.Second))
	b.WriteString("#### Scenario 4: admission latency, webhook servers called directly\n\n")
	fmt.Fprintf(&b, "%d AdmissionReview bodies (%d CREATEs and %d UPDATEs of %d of the parity objects below — Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs, CronJobs, Pods, Services — as the apiserver defaults them; an UPDATE changes the annotation `%s` of the stored object; each body with its own uid; %d of them (%.0f %%) denied by both, the rest allowed, as in a cluster where most requests pass%s) POSTed over HTTPS on loopback to each server's own path (Kyverno: the URL of its `vpol.validate.kyverno.svc-fail` webhook), at a fixed rate for %s after a %s warm-up, open loop: latency counts from the scheduled send time. Errors: no valid answer within %s, or not sent because %d requests were in flight. The same load also goes to a **floor**: bench/peers/nullwebhook, a server that reads each body and its uid and answers allowed over the same HTTPS and HTTP/2, judging nothing, run like the two tools — what the machine, TLS, HTTP/2 and the load generator cost before any policy work. %d runs per rate and server, taking turns in a rotating order; each runs alone during its load: strata's webhook is stopped during the others' runs, and Kyverno (which exits when it loses its leader lease, so it cannot be stopped) runs at nice 19 under normal scheduling during strata's and the floor's. Cells: median of the runs (min–max).\n\n",
		r.Bodies, r.Bodies-r.UpdateBodies, r.UpdateBodies, r.Objects-len(r.ExcludedFromLoad), changeCause, r.DeniedBodies, 100*float64(r.DeniedBodies)/float64(max(r.Bodies, 1)), r.excludedNote(), o.Duration, o.Warmup, o.Timeout, o.Inflight, o.Runs)
	b.WriteString("| GOMAXPROCS | req/s | Kyverno p50 ms | p99 ms | max ms | errors | strata p50 ms | p99 ms | max ms | errors | strata/Kyverno p50 | p99 | floor p50 ms | p99 ms |\n")
	b.WriteString("|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, p := range r.points() {
		if len(p.kyv) == 0 || len(p.str) == 0 {
			continue
		}
		k50, _, _ := stat(p.kyv, p50)
		s50, _, _ := stat(p.str, p50)
		k99, _, _ := stat(p.kyv, p99)
		s99, _, _ := stat(p.str, p99)
		_, _, kmax := stat(p.kyv, pmax)
		_, _, smax := stat(p.str, pmax)
		fmt.Fprintf(&b, "| %d | %d | %s | %s | %s | %d | %s | %s | %s | %d | %s | %s | %s | %s |\n", p.gomaxprocs, p.rate,
			medRange(p.kyv, p50), medRange(p.kyv, p99), ms(kmax), errorsOf(p.kyv),
			medRange(p.str, p50), medRange(p.str, p99), ms(smax), errorsOf(p.str),
			ratio(s50, k50), ratio(s99, k99), medRange(p.floor, p50), medRange(p.floor, p99))
	}
	b.WriteString("\n")
	b.WriteString(r.goalLine())
	b.WriteString("\n")
	b.WriteString(r.loadNotes())
	b.WriteString("\n#### Scenario 4: end to end through the apiserver\n\n")
	fmt.Fprintf(&b, "`kubectl create --dry-run=server` equivalents (a client-go dry-run create from this process, so no kubectl start-up is counted), %d calls per object, the two objects taking turns, after one unmeasured round, with only one tool's webhooks registered (Kyverno's own validating and mutating configurations, or strata's `strata-validate`) and both servers under normal scheduling.\n\n", o.E2ECalls)
	b.WriteString("| object | verdict | no webhook median ms | Kyverno median ms (min–max) | strata median ms (min–max) | strata/Kyverno median |\n|---|---|--:|--:|--:|--:|\n")
	for _, item := range []string{e2eAllowed, e2eDenied} {
		var none, k, s *E2ERow
		for i := range r.E2E {
			e := &r.E2E[i]
			if e.Item != item {
				continue
			}
			switch e.Tool {
			case "none":
				none = e
			case Kyverno:
				k = e
			case Strata:
				s = e
			}
		}
		if none == nil || k == nil || s == nil {
			continue
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s (%s–%s) | %s (%s–%s) | %s |\n", item, k.Verdict, ms(none.Median),
			ms(k.Median), ms(k.Min), ms(k.Max), ms(s.Median), ms(s.Min), ms(s.Max), ratio(s.Median, k.Median))
	}
	b.WriteString("\n#### Scenario 5: verdict parity\n\n")
	b.WriteString(r.parityMarkdown())
	return b.String()
}

func (r *Result) excludedNote() string {
	if len(r.ExcludedFromLoad) == 0 {
		return ""
	}
	return "; left out: the requests of " + strings.Join(r.ExcludedFromLoad, ", ") + ", which the two tools judge differently (see scenario 5)"
}

// goalLine judges issue 16's goal at GoalRate and each point's p99 ratio
// against GoalRatio. A point where Kyverno has errors says so: there the
// ratio only shows that Kyverno was overloaded.
func (r *Result) goalLine() string {
	var parts []string
	goal := ""
	for _, p := range r.points() {
		if len(p.kyv) == 0 || len(p.str) == 0 {
			continue
		}
		k99, _, _ := stat(p.kyv, p99)
		s99, _, shi := stat(p.str, p99)
		rt := ratio(s99, k99)
		var v string
		switch {
		case errorsOf(p.str) > 0:
			v = fmt.Sprintf("not met (strata: %d errors)", errorsOf(p.str))
		case errorsOf(p.kyv) > 0:
			v = fmt.Sprintf("met only because Kyverno is overloaded (%d errors)", errorsOf(p.kyv))
		case float64(s99) <= GoalRatio*float64(k99):
			v = "met (p99 ratio " + rt + ")"
		default:
			v = "not met (p99 ratio " + rt + ")"
		}
		parts = append(parts, fmt.Sprintf("GOMAXPROCS=%d %d req/s %s", p.gomaxprocs, p.rate, v))
		if p.rate == GoalRate && p.gomaxprocs == r.Options.GOMAXPROCS && goal == "" {
			ok := errorsOf(p.str) == 0 && errorsOf(p.kyv) == 0 && float64(s99) <= GoalRatio*float64(k99) && s99 <= GoalP99
			goal = fmt.Sprintf("**Goal of issue 16, at %d req/s strata's p99 ≤ %.1f× Kyverno's as shipped and ≤ %s ms: strata p99 %s ms (worst run %s ms), Kyverno %s ms, ratio %s — %s.**%s\n\n",
				GoalRate, GoalRatio, ms(GoalP99), ms(s99), ms(shi), ms(k99), rt, verdict(ok), floorNote(p, k99))
		}
	}
	return goal + fmt.Sprintf("Per point, strata's p99 at most %.1f× Kyverno's (median of the runs): ", GoalRatio) + strings.Join(parts, "; ") + ".\n"
}

// floorNote compares the goal with the floor at its point: a goal below
// what a server that judges nothing gets cannot be met on this machine by
// any webhook.
func floorNote(p *pointRows, k99 time.Duration) string {
	if len(p.floor) == 0 {
		return ""
	}
	f50, _, _ := stat(p.floor, p50)
	f99, flo, fhi := stat(p.floor, p99)
	s50, _, _ := stat(p.str, p50)
	s99, _, _ := stat(p.str, p99)
	bound := min(GoalP99, time.Duration(GoalRatio*float64(k99)))
	below := "below"
	if bound >= f99 {
		below = "at or above"
	}
	return fmt.Sprintf(" The floor (a null webhook, same harness) has p50 %s ms and p99 %s ms (runs %s–%s ms) here: the goal's bound, %s ms, is %s it. Above the floor, strata adds %s ms at p50 and %s ms at p99.",
		ms(f50), ms(f99), ms(flo), ms(fhi), ms(bound), below, ms(s50-f50), ms(s99-f99))
}

func verdict(ok bool) string {
	if ok {
		return "PASS"
	}
	return "MISS"
}

// GoalMet reports issue 16's admission goal and the figures it rests on.
func (r *Result) GoalMet() (ok bool, strataP99, kyvernoP99 time.Duration, found bool) {
	for _, p := range r.points() {
		if p.rate != GoalRate || p.gomaxprocs != r.Options.GOMAXPROCS || len(p.kyv) == 0 || len(p.str) == 0 {
			continue
		}
		k99, _, _ := stat(p.kyv, p99)
		s99, _, _ := stat(p.str, p99)
		ok := errorsOf(p.str) == 0 && errorsOf(p.kyv) == 0 && float64(s99) <= GoalRatio*float64(k99) && s99 <= GoalP99
		return ok, s99, k99, true
	}
	return false, 0, 0, false
}

func (r *Result) loadNotes() string {
	var b strings.Builder
	for _, p := range r.points() {
		for _, rows := range [][]*LoadRow{p.kyv, p.str, p.floor} {
			if len(rows) == 0 {
				continue
			}
			row := rows[0]
			proto := "HTTP/1.1"
			if row.HTTP2 {
				proto = "HTTP/2"
			}
			var cpu, other time.Duration
			var peak int64
			denied, wrong, answered := 0, 0, 0.0
			for _, x := range rows {
				cpu += x.ServerCPU
				other += x.OtherCPU
				peak = max(peak, x.PeakRSS)
				denied += x.Denied
				wrong += x.Wrong
				answered += x.AchievedPerSec
			}
			n := time.Duration(len(rows))
			fmt.Fprintf(&b, "- %s, GOMAXPROCS=%d, %d req/s (%d runs): %s, %.0f answered/s, %d denied, server CPU %s per request (%.0f%% of a core), peak RSS %d MiB",
				row.Tool, p.gomaxprocs, p.rate, len(rows), proto, answered/float64(len(rows)), denied, perRequestOf(cpu/n, row.Scheduled),
				100*(cpu/n).Seconds()/row.Duration.Seconds(), peak>>20)
			if row.Tool != Kyverno {
				fmt.Fprintf(&b, "; Kyverno, niced, used %.1f%% of a core meanwhile", 100*(other/n).Seconds()/row.Duration.Seconds())
			}
			if row.Tool == Floor {
				b.WriteString(" (the floor allows every request)")
			} else if wrong > 0 {
				fmt.Fprintf(&b, ", %d verdicts differing from the checked pass", wrong)
			}
			for _, x := range rows {
				if x.FirstErr != "" {
					fmt.Fprintf(&b, "; first error (run %d): %s", x.Run, oneLine(x.FirstErr, 160))
					break
				}
			}
			b.WriteString("\n")
		}
	}
	return b.String()
}

func perRequestOf(cpu time.Duration, scheduled int) string {
	if scheduled == 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f µs", float64(cpu.Microseconds())/float64(scheduled))
}

// perRequest is the server's CPU time per scheduled request.
func perRequest(row LoadRow) string {
	if row.Scheduled == 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f µs", float64(row.ServerCPU.Microseconds())/float64(row.Scheduled))
}

// short abbreviates policy names for the table's columns.
func short(p string) string {
	var parts []string
	for _, w := range strings.Split(p, "-") {
		parts = append(parts, w[:1])
	}
	return strings.Join(parts, "")
}

func cell(v Verdict, p string) string {
	if _, ok := v.Denied[p]; ok {
		return "deny"
	}
	if v.Err != "" {
		return "err"
	}
	return "ok"
}

func (r *Result) parityMarkdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Every object dry-run created through the apiserver with only Kyverno's webhooks registered, then with only strata's; the policies that denied are read from each denial message (Kyverno: `Policy NAME failed: …`, strata: `policy NAME (validations[i]): …`). Each cell is Kyverno/strata; **bold** marks a difference. %d objects × %d policies: **%d differences**.\n\n",
		len(r.Parity), len(r.Policies), len(r.Diffs))
	b.WriteString("| object | kind |")
	for _, p := range r.Policies {
		fmt.Fprintf(&b, " %s |", short(p))
	}
	b.WriteString(" strata's own sensitivity rule |\n|---|---|")
	for range r.Policies {
		b.WriteString("---|")
	}
	b.WriteString("---|\n")
	for _, row := range r.Parity {
		fmt.Fprintf(&b, "| `%s` | %s |", row.Item, row.Kind)
		for _, p := range r.Policies {
			k, s := cell(row.Kyverno, p), cell(row.Strata, p)
			c := k + "/" + s
			if k == "ok" && s == "ok" {
				c = "·"
			}
			if k != s {
				c = "**" + c + "**"
			}
			fmt.Fprintf(&b, " %s |", c)
		}
		fmt.Fprintf(&b, " %s |\n", orDot(oneLine(row.Strata.Other, 80)))
	}
	b.WriteString("\nColumns: ")
	for i, p := range r.Policies {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s = `%s`", short(p), p)
	}
	b.WriteString(". Edge cases:\n\n")
	for _, row := range r.Parity {
		if row.Why != "" {
			fmt.Fprintf(&b, "- `%s`: %s\n", row.Item, row.Why)
		}
	}
	b.WriteString("\n")
	if len(r.Diffs) > 0 {
		b.WriteString("Differences:\n\n")
		kinds := map[string]string{}
		for _, row := range r.Parity {
			kinds[row.Item] = row.Kind
		}
		for _, d := range r.Diffs {
			fmt.Fprintf(&b, "- `%s`, %s: Kyverno %s; strata %s", d.Item, d.Policy, oneLine(d.Kyverno, 300), oneLine(d.Strata, 300))
			if kinds[d.Item] == "ReplicaSet" {
				b.WriteString(" (Kyverno as its chart ships it skips ReplicaSets: `[ReplicaSet,*,*]` in its ConfigMap's resourceFilters)")
			}
			b.WriteString("\n")
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "Messages: where both deny, the policy's message is identical for %d of %d denials.", r.denialCount()-len(r.MessageDiffs), r.denialCount())
	if len(r.MessageDiffs) > 0 {
		for _, d := range r.MessageDiffs {
			if strings.Contains(d.Strata, " | ") {
				b.WriteString(" Where a policy has several failing validations, strata reports each (joined by \" | \" here) and Kyverno only the first: its evaluator returns at the first failing validation; the verdict is the same.")
				break
			}
		}
		b.WriteString(" Different:\n\n")
		for _, d := range r.MessageDiffs {
			fmt.Fprintf(&b, "- `%s`, %s: Kyverno %q; strata %q\n", d.Item, d.Policy, oneLine(d.Kyverno, 300), oneLine(d.Strata, 300))
		}
	}
	b.WriteString("\n")
	if len(r.DirectDiffs) == 0 {
		b.WriteString("\nCross-check: POSTed directly (the load bodies), each tool denied every object by the same policies as through the apiserver.\n")
	} else {
		b.WriteString("\nCross-check, direct POST vs the apiserver path, denying policies differ:\n\n")
		for _, d := range r.DirectDiffs {
			fmt.Fprintf(&b, "- `%s`, %s: apiserver [%s], direct [%s]\n", d.Item, d.Tool, d.APIServer, d.Direct)
		}
	}
	return b.String()
}

func (r *Result) denialCount() int {
	n := 0
	for _, row := range r.Parity {
		for p := range row.Kyverno.Denied {
			if _, ok := row.Strata.Denied[p]; ok {
				n++
			}
		}
	}
	return n
}

func orDot(s string) string {
	if s == "" {
		return "·"
	}
	return s
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		s = s[:n] + "…"
	}
	return s
}

// Text is a plain-text summary for the terminal.
func (r *Result) Text() string {
	var b strings.Builder
	b.WriteString("Admission: Kyverno vs strata\n" + r.setup() + "\n\n")
	fmt.Fprintf(&b, "Direct HTTPS, open loop, %s per run, %d bodies (%d UPDATEs, %d denied), %d runs:\n", r.Options.Duration, r.Bodies, r.UpdateBodies, r.DeniedBodies, r.Options.Runs)
	for _, row := range r.Load {
		fmt.Fprintf(&b, "  GOMAXPROCS=%d %5d req/s run %d %-8s p50 %s p99 %s max %s ms, %d errors, cpu %s/req, rss %d MiB\n", row.GOMAXPROCS, row.Rate, row.Run, row.Tool,
			ms(row.P50), ms(row.P99), ms(row.Max), row.Errors, perRequest(row), row.PeakRSS>>20)
	}
	b.WriteString(r.goalLine())
	b.WriteString("\nThrough the apiserver (dry-run create, median of " + fmt.Sprint(r.Options.E2ECalls) + "):\n")
	for _, e := range r.E2E {
		fmt.Fprintf(&b, "  %-8s %-50s %-8s median %s ms (min %s, max %s)\n", e.Tool, e.Item, e.Verdict, ms(e.Median), ms(e.Min), ms(e.Max))
	}
	fmt.Fprintf(&b, "\nParity: %d objects × %d policies, %d differences, %d message differences, %d direct/apiserver differences\n",
		len(r.Parity), len(r.Policies), len(r.Diffs), len(r.MessageDiffs), len(r.DirectDiffs))
	for _, row := range r.Parity {
		fmt.Fprintf(&b, "  %-62s kyverno [%s]  strata [%s]", row.Item, strings.Join(row.Kyverno.denials(), ","), strings.Join(row.Strata.denials(), ","))
		if row.Strata.Other != "" {
			fmt.Fprintf(&b, "  strata rule: %s", oneLine(row.Strata.Other, 60))
		}
		b.WriteString("\n")
	}
	for _, d := range r.Diffs {
		fmt.Fprintf(&b, "DIFFERENCE %s %s: kyverno %s | strata %s\n", d.Item, d.Policy, oneLine(d.Kyverno, 200), oneLine(d.Strata, 200))
	}
	for _, d := range r.DirectDiffs {
		fmt.Fprintf(&b, "DIRECT≠APISERVER %s %s: apiserver [%s] direct [%s]\n", d.Item, d.Tool, d.APIServer, d.Direct)
	}
	if r.WorkDir != "" {
		fmt.Fprintf(&b, "logs: %s\n", r.WorkDir)
	}
	return b.String()
}
