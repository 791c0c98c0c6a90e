package admission

import (
	"fmt"
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

// pairs returns the load rows as (kyverno, strata) per rate, in rate order.
func (r *Result) pairs() [][2]*LoadRow {
	var out [][2]*LoadRow
	idx := map[int]int{}
	for i := range r.Load {
		row := &r.Load[i]
		j, ok := idx[row.Rate]
		if !ok {
			j = len(out)
			idx[row.Rate] = j
			out = append(out, [2]*LoadRow{})
		}
		if row.Tool == Kyverno {
			out[j][0] = row
		} else {
			out[j][1] = row
		}
	}
	return out
}

func (r *Result) setup() string {
	o := r.Options
	return fmt.Sprintf("Kyverno %s (admission controller, run out of cluster) and `strata webhook` (tier %s, strata.yaml with every sensitivity allowed in every tier so that only the policies deny), each a child process with GOMAXPROCS=%d%s, on one kwok cluster on %s (%d CPUs, %s, %s, %s); load average %s when the load started. Both evaluate the %d ValidatingPolicy files of policies/.",
		r.KyvernoVersion, Tier, o.GOMAXPROCS, r.schedNote(), r.Machine.CPU, r.Machine.NProc, r.Machine.Mem, r.Machine.Kernel, r.Machine.GoVersion, r.LoadAvg, len(r.Policies))
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
	fmt.Fprintf(&b, "The same %d AdmissionReview bodies (CREATEs of the %d parity objects below — Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs, CronJobs, Pods, Services — as the apiserver defaults them, each with its own uid; %d of them denied by both%s) POSTed over HTTPS on loopback to each server's own path (Kyverno: the URL of its `vpol.validate.kyverno.svc-fail` webhook), at a fixed rate for %s after a %s warm-up, open loop: latency counts from the scheduled send time. Errors: no valid answer within %s, or not sent because %d requests were in flight. Rates alternate which tool goes first.\n\n",
		r.Bodies, r.Objects-len(r.ExcludedFromLoad), r.DeniedBodies, r.excludedNote(), o.Duration, o.Warmup, o.Timeout, o.Inflight)
	b.WriteString("| req/s | Kyverno p50 ms | p99 ms | max ms | errors | strata p50 ms | p99 ms | max ms | errors | strata/Kyverno p50 | p99 | max |\n")
	b.WriteString("|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, p := range r.pairs() {
		k, s := p[0], p[1]
		if k == nil || s == nil {
			continue
		}
		fmt.Fprintf(&b, "| %d | %s | %s | %s | %d | %s | %s | %s | %d | %s | %s | %s |\n", k.Rate,
			ms(k.P50), ms(k.P99), ms(k.Max), k.Errors, ms(s.P50), ms(s.P99), ms(s.Max), s.Errors,
			ratio(s.P50, k.P50), ratio(s.P99, k.P99), ratio(s.Max, k.Max))
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
	return "; left out: the bodies of " + strings.Join(r.ExcludedFromLoad, ", ") + ", which strata's own sensitivity rule denies and Kyverno allows"
}

// goalLine judges issue 8's goal per rate. A rate where Kyverno has
// errors says so: there the ratio only shows that Kyverno was overloaded.
func (r *Result) goalLine() string {
	var parts []string
	for _, p := range r.pairs() {
		k, s := p[0], p[1]
		if k == nil || s == nil {
			continue
		}
		var v string
		switch {
		case s.Errors > 0:
			v = fmt.Sprintf("not met (strata: %d errors)", s.Errors)
		case k.Errors > 0:
			v = fmt.Sprintf("met only because Kyverno is overloaded (%d errors)", k.Errors)
		case s.P99*10 <= k.P99:
			v = "met (p99 ratio " + ratio(s.P99, k.P99) + ")"
		default:
			v = "not met (p99 ratio " + ratio(s.P99, k.P99) + ")"
		}
		parts = append(parts, fmt.Sprintf("%d req/s %s", k.Rate, v))
	}
	return "Goal of issue 8, strata's p99 at most 1/10 of Kyverno's at equal load: " + strings.Join(parts, "; ") + ".\n"
}

func (r *Result) loadNotes() string {
	var b strings.Builder
	for _, row := range r.Load {
		proto := "HTTP/1.1"
		if row.HTTP2 {
			proto = "HTTP/2"
		}
		fmt.Fprintf(&b, "- %s at %d req/s: %s, %.0f answered/s, %d denied, most in flight %d, server CPU %s per request (%.0f%% of a core), peak RSS %d MiB",
			row.Tool, row.Rate, proto, row.AchievedPerSec, row.Denied, row.MaxInflight, perRequest(row), 100*row.ServerCPU.Seconds()/row.Duration.Seconds(), row.PeakRSS>>20)
		if row.Wrong > 0 {
			fmt.Fprintf(&b, ", %d verdicts differing from the checked pass", row.Wrong)
		}
		if row.FirstErr != "" {
			fmt.Fprintf(&b, "; first error: %s", oneLine(row.FirstErr, 160))
		}
		b.WriteString("\n")
	}
	return b.String()
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
		for _, d := range r.Diffs {
			fmt.Fprintf(&b, "- `%s`, %s: Kyverno %s; strata %s\n", d.Item, d.Policy, oneLine(d.Kyverno, 300), oneLine(d.Strata, 300))
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
	fmt.Fprintf(&b, "Direct HTTPS, open loop, %s per rate, %d bodies (%d denied):\n", r.Options.Duration, r.Bodies, r.DeniedBodies)
	fmt.Fprintf(&b, "%7s  %-8s %9s %9s %9s %7s   %s\n", "req/s", "tool", "p50 ms", "p99 ms", "max ms", "errors", "strata/kyverno p50 p99 max")
	for _, p := range r.pairs() {
		for i, row := range p {
			if row == nil {
				continue
			}
			extra := ""
			if i == 1 && p[0] != nil {
				extra = fmt.Sprintf("  %s %s %s", ratio(row.P50, p[0].P50), ratio(row.P99, p[0].P99), ratio(row.Max, p[0].Max))
			}
			fmt.Fprintf(&b, "%7d  %-8s %9s %9s %9s %7d  cpu %s/req rss %d MiB%s\n", row.Rate, row.Tool, ms(row.P50), ms(row.P99), ms(row.Max), row.Errors, perRequest(*row), row.PeakRSS>>20, extra)
		}
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
