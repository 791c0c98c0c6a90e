package audit

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteJSON writes the report as indented JSON (every row).
func (r *AuditReport) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

const mdTime = "2006-01-02 15:04 UTC"

func ts(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(mdTime)
}

func shortCommit(c string) string {
	if len(c) > 12 {
		return c[:12]
	}
	return dash(c)
}

// cell escapes a markdown table cell.
func cell(s string) string {
	s = strings.NewReplacer("|", `\|`, "\n", " ", "\r", " ").Replace(s)
	return dash(s)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}

func days(d time.Duration) string {
	if d >= 48*time.Hour {
		return fmt.Sprintf("%d days", int(d.Hours()/24+0.5))
	}
	return d.Round(time.Minute).String()
}

func joinCounted(cs []Counted) string {
	s := make([]string, len(cs))
	for i, c := range cs {
		s[i] = fmt.Sprintf("%s (%d)", c.Name, c.Count)
	}
	return strings.Join(s, ", ")
}

func kindsString(ks []Kind) string {
	s := make([]string, len(ks))
	for i, k := range ks {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}

// SummaryLines returns the report's summary, one finding per line, the
// violations first.
func (r *AuditReport) SummaryLines() []string {
	s := r.Summary
	var out []string
	if s.Violations > 0 {
		out = append(out, fmt.Sprintf("**VIOLATION: %s ran in a tier its sensitivity does not allow** (see Violations). This should never happen: investigate now.",
			plural(s.Violations, "object", "objects")))
	} else {
		out = append(out, "**No violations:** as far as the record shows, every object stayed in the tiers its sensitivity allows.")
	}
	if s.RestrictedObjects > 0 {
		out = append(out, fmt.Sprintf("Restricted data ran in %s: %s.", strings.Join(s.RestrictedClusters, ", "), plural(s.RestrictedObjects, "object", "objects")))
	} else {
		out = append(out, "No restricted object is in the record for this period.")
	}
	if s.ConfidentialObjs > 0 {
		out = append(out, fmt.Sprintf("Confidential data: %s.", plural(s.ConfidentialObjs, "object", "objects")))
	}
	if s.Commits > 0 {
		line := fmt.Sprintf("%s went through the approval gate: %d approved", plural(s.Commits, "commit", "commits"), s.Commits-s.Refused)
		if len(s.Approvers) > 0 {
			line += " (approvers: " + strings.Join(s.Approvers, ", ") + ")"
		}
		if s.Refused > 0 {
			line += fmt.Sprintf(", %d refused for want of approvals", s.Refused)
		}
		out = append(out, line+".")
	} else {
		out = append(out, "No commit went through the approval gate.")
	}
	if s.BreakGlass > 0 {
		out = append(out, fmt.Sprintf("**Break-glass:** %s by %s.", plural(s.BreakGlass, "use", "uses"), strings.Join(s.BreakGlassActors, ", ")))
	} else {
		out = append(out, "Nobody broke glass.")
	}
	out = append(out, fmt.Sprintf("Denials: %s (%s).", fmt.Sprint(s.Denials), plural(len(r.Denials), "rule and tier", "rules and tiers")))
	out = append(out, fmt.Sprintf("Rollbacks: %d; auto-reverts: %d. Prunes: %d; moves: %d.", s.Rollbacks, s.AutoReverts, s.Prunes, s.Moves))
	for _, g := range r.Gaps {
		out = append(out, fmt.Sprintf("**Gap:** %s: %s. The record of this cluster is missing or incomplete.", g.Cluster, g.Reason))
	}
	switch {
	case s.RolledOff > 0 && !s.RolledOffUntil.Before(r.Since):
		out = append(out, fmt.Sprintf("**Gap:** %s from %s to %s were rolled off by retention (strata.yaml audit: maxAge, maxBytes): the record of that time is incomplete.",
			plural(s.RolledOff, "event", "events"), ts(s.RolledOffFrom), ts(s.RolledOffUntil)))
	case s.RolledOff > 0:
		out = append(out, fmt.Sprintf("Retention rolled off %s from %s to %s, before this period: objects applied then and not changed since may be missing from where data ran.",
			plural(s.RolledOff, "event", "events"), ts(s.RolledOffFrom), ts(s.RolledOffUntil)))
	}
	if s.Dropped > 0 {
		out = append(out, fmt.Sprintf("**Gap:** %s were dropped by a writer whose buffer was full (counted, not recorded).", plural(s.Dropped, "event", "events")))
	}
	return out
}

type mdTable struct {
	w       *bufio.Writer
	maxRows int
	rows    int
	total   int
}

func (t *mdTable) header(cols ...string) {
	fmt.Fprintf(t.w, "| %s |\n|%s\n", strings.Join(cols, " | "), strings.Repeat("---|", len(cols)))
}

func (t *mdTable) row(cells ...string) {
	t.total++
	if t.rows >= t.maxRows {
		return
	}
	t.rows++
	for i, c := range cells {
		cells[i] = cell(c)
	}
	fmt.Fprintf(t.w, "| %s |\n", strings.Join(cells, " | "))
}

func (t *mdTable) end() {
	if t.total > t.rows {
		fmt.Fprintf(t.w, "\n*%d more rows are in the JSON report (`-o json`).*\n", t.total-t.rows)
	}
	t.w.WriteString("\n")
}

// WriteMarkdown writes the report for an auditor: title, summary, then one
// table per question.
func (r *AuditReport) WriteMarkdown(out io.Writer) error {
	w := bufio.NewWriter(out)
	env := r.Environment
	if env == "" {
		env = "all environments"
	}
	fmt.Fprintf(w, "# Audit report: %s\n\n", env)
	fmt.Fprintf(w, "**Period:** %s to %s (%s)  \n", ts(r.Since), ts(r.Until), days(r.Until.Sub(r.Since)))
	if len(r.Clusters) > 0 {
		fmt.Fprintf(w, "**Clusters read:** %s  \n", strings.Join(r.Clusters, ", "))
	}
	fmt.Fprintf(w, "**Events in the period:** %d\n\n", r.Summary.Events)
	w.WriteString("## Summary\n\n")
	for _, l := range r.SummaryLines() {
		fmt.Fprintf(w, "- %s\n", l)
	}
	w.WriteString("\n")
	table := func() *mdTable { return &mdTable{w: w, maxRows: r.maxRows} }
	none := func() { w.WriteString("None in this period.\n\n") }

	if len(r.Violations) > 0 {
		w.WriteString("## Violations\n\n")
		w.WriteString("Objects seen in a tier their sensitivity does not allow. Strata's placement and admission webhook are meant to make this impossible; each row needs an explanation.\n\n")
		t := table()
		t.header("Object", "Sensitivity", "Cluster", "Tier", "Why", "First seen", "Last recorded", "Removed", "How it got there", "Who")
		for _, v := range r.Violations {
			t.row(v.Object, v.Sensitivity, v.Cluster, v.Tier, v.Violation, ts(v.FirstSeen), ts(v.LastSeen), removed(v), kindsString(v.Via), strings.Join(v.Actors, ", "))
		}
		t.end()
	}

	w.WriteString("## 1. Where restricted and confidential data ran\n\n")
	if len(r.Residency) == 0 {
		none()
	} else {
		t := table()
		t.header("Sensitivity", "Cluster", "Tier", "Object", "First seen", "Last recorded", "Removed", "Commit", "How", "Allowed")
		for _, v := range r.Residency {
			ok := "yes"
			if v.Violation != "" {
				ok = "**NO**"
			}
			t.row(v.Sensitivity, v.Cluster, v.Tier, v.Object, ts(v.FirstSeen), ts(v.LastSeen), removed(v), shortCommit(v.Commit), kindsString(v.Via), ok)
		}
		t.end()
	}

	w.WriteString("## 2. Who approved what\n\n")
	if len(r.Approvals) == 0 {
		none()
	} else {
		t := table()
		t.header("Commit", "First seen", "Highest sensitivity", "Approvers", "Outcome", "Gate", "Clusters")
		for _, a := range r.Approvals {
			outcome := "applied"
			if !a.Approved {
				outcome = "refused"
			} else if a.Refusals > 0 {
				outcome = "applied after refusal"
			}
			t.row(shortCommit(a.Commit), ts(a.Time), a.Sensitivity, strings.Join(a.Approvers, ", "), outcome, a.Gate, strings.Join(a.Clusters, ", "))
		}
		t.end()
	}

	w.WriteString("## 3. Break-glass\n\n")
	if len(r.BreakGlass) == 0 {
		none()
	} else {
		t := table()
		t.header("Time", "Who", "Cluster", "Tier", "Object", "Sensitivity", "Reason", "Rules bypassed", "Times")
		for _, u := range r.BreakGlass {
			when := ts(u.Time)
			if !u.Last.IsZero() {
				when += " – " + ts(u.Last)
			}
			t.row(when, u.Actor, u.Cluster, u.Tier, u.Object, u.Sensitivity, u.Reason, strings.Join(u.Bypassed, ", "), fmt.Sprint(u.Count))
		}
		t.end()
	}

	w.WriteString("## 4. Denials by rule and tier\n\n")
	if len(r.Denials) == 0 {
		none()
	} else {
		t := table()
		t.header("Rule", "Tier", "Denials", "Clusters", "Top objects", "Top users", "First", "Last")
		for _, d := range r.Denials {
			t.row(d.Rule, d.Tier, fmt.Sprint(d.Count), strings.Join(d.Clusters, ", "), joinCounted(d.TopObjects), joinCounted(d.TopActors), ts(d.First), ts(d.Last))
		}
		t.end()
	}

	w.WriteString("## 5. Rollbacks and auto-reverts\n\n")
	if len(r.Rollbacks) == 0 {
		none()
	} else {
		t := table()
		t.header("Time", "Kind", "Commit", "By", "Clusters", "Details")
		for _, rb := range r.Rollbacks {
			t.row(ts(rb.Time), string(rb.Kind), shortCommit(rb.Commit), rb.Actor, strings.Join(rb.Clusters, ", "), rb.Message)
		}
		t.end()
	}

	w.WriteString("## 6. Prunes and moves\n\n")
	if len(r.Changes) == 0 {
		none()
	} else {
		t := table()
		t.header("Time", "Kind", "Cluster", "Tier", "Object", "Sensitivity", "Commit", "Moved to")
		for _, c := range r.Changes {
			t.row(ts(c.Time), string(c.Kind), c.Cluster, c.Tier, c.Object, c.Sensitivity, shortCommit(c.Commit), c.To)
		}
		t.end()
	}

	w.WriteString("## About this record\n\n")
	fmt.Fprintf(w, "Each cluster keeps the audit of what strata did and refused there in ConfigMaps `%s*` (label `%s=true`) of namespace `strata-system`, written by the reconciler and by the cluster's admission webhook. "+
		"Every line carries a hash of the line before it, so edited or deleted lines are reported as gaps. "+
		"The log is bounded (strata.yaml audit: maxAge, maxBytes): the oldest parts roll off, each roll-off recorded; denials that differ only in the object's name are counted on one line with a sample of the names. "+
		"Where data ran is reconstructed from placements, applies and break-glass admissions up to the end of the period and from prunes and moves; objects applied before the audit log existed are not in it.\n", NamePrefix, Label)
	return w.Flush()
}

func removed(v Residency) string {
	if v.Removed.IsZero() {
		return "still there"
	}
	return ts(v.Removed) + " (" + string(v.RemovedBy) + ")"
}

// WriteTable writes the report as plain-text tables for a terminal.
func (r *AuditReport) WriteTable(out io.Writer) error {
	w := bufio.NewWriter(out)
	fmt.Fprintf(w, "audit of %s from %s to %s, clusters: %s\n\n", dash(r.Environment), ts(r.Since), ts(r.Until), dash(strings.Join(r.Clusters, ", ")))
	for _, l := range r.SummaryLines() {
		fmt.Fprintf(w, "  %s\n", strings.ReplaceAll(l, "**", ""))
	}
	section := func(title string, n int, header string, rows func(tw *tabwriter.Writer)) {
		fmt.Fprintf(w, "\n%s\n", strings.ToUpper(title))
		if n == 0 {
			w.WriteString("  none\n")
			return
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, header)
		rows(tw)
		tw.Flush()
		if n > r.maxRows {
			fmt.Fprintf(w, "  (%d more rows: -o json)\n", n-r.maxRows)
		}
	}
	limit := func(i int) bool { return i < r.maxRows }
	section("violations", len(r.Violations), "OBJECT\tSENSITIVITY\tCLUSTER\tTIER\tFIRST SEEN\tREMOVED\tHOW\tWHY", func(tw *tabwriter.Writer) {
		for i, v := range r.Violations {
			if limit(i) {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", v.Object, v.Sensitivity, v.Cluster, v.Tier, ts(v.FirstSeen), removed(v), kindsString(v.Via), v.Violation)
			}
		}
	})
	section("restricted and confidential data", len(r.Residency), "SENSITIVITY\tCLUSTER\tTIER\tOBJECT\tFIRST SEEN\tLAST RECORDED\tREMOVED\tCOMMIT", func(tw *tabwriter.Writer) {
		for i, v := range r.Residency {
			if limit(i) {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", v.Sensitivity, v.Cluster, dash(v.Tier), v.Object, ts(v.FirstSeen), ts(v.LastSeen), removed(v), shortCommit(v.Commit))
			}
		}
	})
	section("approvals", len(r.Approvals), "COMMIT\tFIRST SEEN\tSENSITIVITY\tAPPROVERS\tAPPROVED\tGATE", func(tw *tabwriter.Writer) {
		for i, a := range r.Approvals {
			if limit(i) {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%t\t%s\n", shortCommit(a.Commit), ts(a.Time), dash(a.Sensitivity), dash(strings.Join(a.Approvers, ",")), a.Approved, a.Gate)
			}
		}
	})
	section("break-glass", len(r.BreakGlass), "TIME\tWHO\tCLUSTER\tOBJECT\tREASON\tBYPASSED\tTIMES", func(tw *tabwriter.Writer) {
		for i, u := range r.BreakGlass {
			if limit(i) {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%q\t%s\t%d\n", ts(u.Time), u.Actor, u.Cluster, u.Object, u.Reason, strings.Join(u.Bypassed, ","), u.Count)
			}
		}
	})
	section("denials", len(r.Denials), "RULE\tTIER\tCOUNT\tTOP OBJECTS\tTOP USERS", func(tw *tabwriter.Writer) {
		for i, d := range r.Denials {
			if limit(i) {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", d.Rule, dash(d.Tier), d.Count, dash(joinCounted(d.TopObjects)), dash(joinCounted(d.TopActors)))
			}
		}
	})
	section("rollbacks and auto-reverts", len(r.Rollbacks), "TIME\tKIND\tCOMMIT\tBY\tCLUSTERS\tDETAILS", func(tw *tabwriter.Writer) {
		for i, rb := range r.Rollbacks {
			if limit(i) {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", ts(rb.Time), rb.Kind, shortCommit(rb.Commit), dash(rb.Actor), strings.Join(rb.Clusters, ","), rb.Message)
			}
		}
	})
	section("prunes and moves", len(r.Changes), "TIME\tKIND\tCLUSTER\tOBJECT\tSENSITIVITY\tCOMMIT\tTO", func(tw *tabwriter.Writer) {
		for i, c := range r.Changes {
			if limit(i) {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", ts(c.Time), c.Kind, c.Cluster, c.Object, dash(c.Sensitivity), shortCommit(c.Commit), dash(c.To))
			}
		}
	})
	return w.Flush()
}
