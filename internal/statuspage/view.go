package statuspage

import (
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/strata-gitops/strata/internal/inventory"
	"github.com/strata-gitops/strata/internal/labels"
)

// level orders how bad a row is; the page's colours follow it.
type level int

const (
	levelOK level = iota
	levelWarn
	levelBad
)

func (l level) class() string {
	switch l {
	case levelBad:
		return "bad"
	case levelWarn:
		return "warn"
	}
	return "ok"
}

// page is what the template renders; every string is escaped by
// html/template.
type page struct {
	Refresh      int
	ReadAt       string
	Environments string
	Verdict      verdictView
	Envs         []envView
	Reverts      []revertView
	Pending      []pendingView
	BreakGlass   []breakGlassView
	// BreakGlassMore counts the admissions not shown.
	BreakGlassMore int
	EventErrors    []string
	DenialsMetric  string
	Error          string
}

type verdictView struct {
	Class    string
	Headline string
	Problems []problemView
	More     int
}

type problemView struct {
	Class, Where, Text string
}

type envView struct {
	Name, Class, Summary string
	Rows                 []rowView
}

type rowView struct {
	Cluster, Tier    string
	Class, State     string
	Note             string
	Reachable        string
	ReachableClass   string
	Rev, RevFull     string
	Subject          string
	SubjectFull      string
	Objects          string
	ObjectsClass     string
	Progressing      int
	Failed           int
	PFClass          string
	Drift            string
	DriftClass       string
	Windows          string
	Age, AgeTitle    string
	AgeClass         string
	Error, ErrorFull string
	ErrorClass       string
}

type pendingView struct {
	Environment, Revision, Subject string
	Message                        string
	Parsed                         bool
	Sensitivity                    string
	Need, Missing                  int
	Have                           string
	Rejected                       []string
	Clusters                       string
	Command                        string
}

type revertView struct {
	Environment, Commit, Short, Subject string
	Clusters, Since, Command            string
}

type breakGlassView struct {
	Time, Age, Cluster, User, Reason string
	Message, MessageFull             string
	Count                            int32
}

const (
	maxErrorRunes   = 140
	maxSubjectRunes = 60
	maxProblems     = 8
)

// build turns a snapshot into the page.
func build(s *Snapshot, err error, o Options, now time.Time) *page {
	p := &page{Refresh: int(o.Refresh / time.Second), DenialsMetric: labels.MetricWebhookDenials}
	if s == nil {
		s = &Snapshot{}
	}
	if s.Time.IsZero() {
		s.Time = now
	}
	p.ReadAt = s.Time.UTC().Format("2006-01-02 15:04:05 UTC")
	names := make([]string, len(s.Environments))
	for i, e := range s.Environments {
		names[i] = e.Name
	}
	p.Environments = strings.Join(names, " · ")

	var problems []problemView
	total, bad, warn := 0, 0, 0
	pending := map[string]*pendingView{}
	var pendingOrder []string
	reverts := map[string]*revertView{}
	var revertOrder []string
	for _, e := range s.Environments {
		ev := envView{Name: e.Name}
		envLevel := levelOK
		revs := map[string]int{}
		var revOrder []string
		nBad, nWarn := 0, 0
		var envNotes []clusterNote
		for _, c := range e.Clusters {
			total++
			row, lvl, notes := buildRow(s, c, o, now)
			if extra := suspensionNotes(e.Name, c); len(extra) > 0 {
				row, lvl, notes = finish(row, append(notes, extra...))
			}
			ev.Rows = append(ev.Rows, row)
			switch lvl {
			case levelBad:
				bad++
				nBad++
			case levelWarn:
				warn++
				nWarn++
			}
			envLevel = max(envLevel, lvl)
			for _, n := range notes {
				envNotes = append(envNotes, clusterNote{c.Name, n})
			}
			if c.Error == "" && c.Reconciled && c.Status.Revision != "" {
				if revs[c.Status.Revision] == 0 {
					revOrder = append(revOrder, c.Status.Revision)
				}
				revs[c.Status.Revision]++
			}
			if c.Error != "" || !c.Reconciled {
				continue
			}
			if g, ok := GateOf(e.Name, c.Status); ok {
				key := e.Name + "\x00" + g.Revision
				pv := pending[key]
				if pv == nil {
					pv = &pendingView{Environment: e.Name, Revision: g.Revision, Subject: subjectOf(s, g.Revision),
						Message: g.Message, Parsed: g.Parsed, Sensitivity: g.Sensitivity, Need: g.Need,
						Missing: g.Missing(), Have: strings.Join(g.Have, ", "), Rejected: g.Rejected, Command: g.Command}
					pending[key] = pv
					pendingOrder = append(pendingOrder, key)
				}
				pv.Clusters = joinNonEmpty(pv.Clusters, c.Name)
			}
			if h, ok := healthFailure(c.Status); ok {
				key := e.Name + "\x00" + h.Revision
				rv := reverts[key]
				if rv == nil {
					rv = &revertView{Environment: e.Name, Commit: h.Revision, Short: short(h.Revision),
						Subject: subjectOf(s, h.Revision), Since: age(now, h.Time),
						Command: rollbackCommand(h.Revision, e.Name, o)}
					reverts[key] = rv
					revertOrder = append(revertOrder, key)
				}
				rv.Clusters = joinNonEmpty(rv.Clusters, c.Name)
			}
		}
		problems = append(problems, groupNotes(e, envNotes)...)
		// Different revisions are worth saying only when nothing else
		// explains them (a failed apply keeps the old revision).
		if len(revOrder) > 1 && nBad+nWarn == 0 {
			envLevel = max(envLevel, levelWarn)
			var parts []string
			for _, r := range revOrder {
				parts = append(parts, fmt.Sprintf("%s on %d", short(r), revs[r]))
			}
			problems = append(problems, problemView{Class: levelWarn.class(), Where: e.Name,
				Text: "clusters at different revisions: " + strings.Join(parts, ", ")})
		}
		ev.Class = envLevel.class()
		switch {
		case len(e.Clusters) == 0:
			ev.Summary = "no clusters"
		case envLevel == levelOK && len(revOrder) == 1:
			ev.Summary = fmt.Sprintf("all %d at %s and healthy", len(e.Clusters), short(revOrder[0]))
		case envLevel == levelOK:
			ev.Summary = fmt.Sprintf("all %d healthy", len(e.Clusters))
		default:
			var parts []string
			if nBad > 0 {
				parts = append(parts, fmt.Sprintf("%d failing", nBad))
			}
			if nWarn > 0 {
				parts = append(parts, fmt.Sprintf("%d need attention", nWarn))
			}
			if nBad+nWarn == 0 {
				parts = append(parts, "clusters at different revisions")
			}
			ev.Summary = strings.Join(parts, ", ")
		}
		p.Envs = append(p.Envs, ev)
	}
	for _, k := range pendingOrder {
		p.Pending = append(p.Pending, *pending[k])
	}
	for _, k := range revertOrder {
		p.Reverts = append(p.Reverts, *reverts[k])
	}
	p.Verdict = verdict(s, problems, total, bad, warn)
	if err != nil {
		p.Error = err.Error()
		p.Verdict.Class, p.Verdict.Headline = levelBad.class(), "status unavailable"
	}
	p.BreakGlass, p.BreakGlassMore = breakGlass(s.BreakGlass, o.MaxBreakGlass, now)
	p.EventErrors = s.EventErrors
	return p
}

func verdict(s *Snapshot, problems []problemView, total, bad, warn int) verdictView {
	sort.SliceStable(problems, func(i, j int) bool { return rank(problems[i].Class) > rank(problems[j].Class) })
	v := verdictView{Problems: problems}
	if len(problems) > maxProblems {
		v.Problems, v.More = problems[:maxProblems], len(problems)-maxProblems
	}
	switch {
	case total == 0:
		v.Class, v.Headline = levelWarn.class(), "no clusters to show"
	case bad > 0:
		v.Class, v.Headline = levelBad.class(), fmt.Sprintf("%d of %d %s failing", bad, total, plural(total, "cluster", "clusters"))
		if warn > 0 {
			v.Headline += fmt.Sprintf(", %d %s attention", warn, plural(warn, "needs", "need"))
		}
	case warn > 0:
		v.Class, v.Headline = levelWarn.class(), fmt.Sprintf("%d of %d %s attention", warn, total, plural(warn, "cluster needs", "clusters need"))
	case len(problems) > 0: // healthy clusters at different revisions
		v.Class, v.Headline = levelWarn.class(), fmt.Sprintf("all %d clusters healthy, not all at one revision", total)
	default:
		v.Class = levelOK.class()
		var at []string
		for _, e := range s.Environments {
			if len(e.Clusters) > 0 {
				at = append(at, e.Name+" at "+short(e.Clusters[0].Status.Revision))
			}
		}
		if len(s.Environments) == 1 && len(s.Environments[0].Clusters) > 0 {
			v.Headline = fmt.Sprintf("all %d %s at %s and healthy", total, plural(total, "cluster", "clusters"),
				short(s.Environments[0].Clusters[0].Status.Revision))
		} else {
			v.Headline = fmt.Sprintf("all %d clusters healthy: %s", total, strings.Join(at, ", "))
		}
	}
	return v
}

func rank(class string) int {
	switch class {
	case "bad":
		return 2
	case "warn":
		return 1
	}
	return 0
}

type clusterNote struct {
	cluster string
	note
}

// groupNotes says once what several clusters of e have in common (a gate
// refusal is the same in every cluster).
func groupNotes(e Environment, notes []clusterNote) []problemView {
	type group struct {
		level    level
		text     string
		clusters []string
	}
	var groups []*group
	byText := map[string]*group{}
	for _, n := range notes {
		key := n.level.class() + "\x00" + n.text
		g := byText[key]
		if g == nil {
			g = &group{level: n.level, text: n.text}
			byText[key] = g
			groups = append(groups, g)
		}
		g.clusters = append(g.clusters, n.cluster)
	}
	out := make([]problemView, len(groups))
	for i, g := range groups {
		where := e.Name + "/" + strings.Join(g.clusters, ", ")
		if len(g.clusters) > 1 && len(g.clusters) == len(e.Clusters) {
			where = fmt.Sprintf("%s (all %d clusters)", e.Name, len(g.clusters))
		}
		out[i] = problemView{Class: g.level.class(), Where: where, Text: g.text}
	}
	return out
}

type note struct {
	level       level
	brief, text string
}

// buildRow renders one cluster and says how bad it is and why.
func buildRow(s *Snapshot, c Cluster, o Options, now time.Time) (rowView, level, []note) {
	st := c.Status
	r := rowView{Cluster: c.Name, Tier: dash(c.Tier), Reachable: "yes", ReachableClass: "ok",
		Rev: "-", Subject: "", Objects: "-", Drift: "-", Windows: "-", Age: "-"}
	var notes []note
	// add notes a problem: brief for the row, text for the verdict.
	add := func(l level, brief, text string) {
		if text == "" {
			text = brief
		}
		notes = append(notes, note{level: l, brief: brief, text: text})
	}
	if !c.Reachable {
		r.Reachable, r.ReachableClass = "no", "bad"
	}
	switch {
	case c.Error != "":
		r.Error, r.ErrorFull, r.ErrorClass = truncate(c.Error, maxErrorRunes), c.Error, "bad"
		if !c.Reachable {
			add(levelBad, "unreachable", truncate(firstLine(c.Error), 90))
		} else {
			add(levelBad, "status unreadable", "status unreadable: "+truncate(firstLine(c.Error), 90))
		}
		return finish(r, notes)
	case !c.Reconciled:
		r.Error, r.ErrorFull = "never reconciled: run strata reconcile", "never reconciled: run strata reconcile"
		add(levelWarn, "never reconciled", "")
		return finish(r, notes)
	}
	if st.Revision != "" {
		r.Rev, r.RevFull = short(st.Revision), st.Revision
		subj := subjectOf(s, st.Revision)
		r.Subject, r.SubjectFull = truncate(subj, maxSubjectRunes), subj
	}
	r.Objects = fmt.Sprintf("%d/%d", st.Healthy, st.Objects)
	switch {
	case st.Failed > 0:
		r.ObjectsClass = "bad"
	case st.Healthy < st.Objects:
		r.ObjectsClass = "warn"
	}
	r.Progressing, r.Failed = st.Progressing, st.Failed
	switch {
	case st.Failed > 0:
		r.PFClass = "bad"
	case st.Progressing > 0:
		r.PFClass = "warn"
	}
	r.Drift = fmt.Sprintf("%d / %d", st.Drifted, st.DriftTotal)
	if st.Drifted > 0 {
		r.DriftClass = "warn"
	}
	if len(st.Windows) > 0 {
		r.Windows = strings.Join(st.Windows, ", ")
	}
	if !st.LastReconcile.IsZero() {
		r.Age, r.AgeTitle = age(now, st.LastReconcile), st.LastReconcile.UTC().Format(time.RFC3339)
		if o.StaleAfter > 0 && now.Sub(st.LastReconcile) > o.StaleAfter {
			r.AgeClass = "warn"
			d := roughDuration(now.Sub(st.LastReconcile))
			add(levelWarn, "no reconcile for "+d, "no reconcile for "+d+": is strata reconcile running?")
		}
	}
	if st.LastError != "" {
		r.Error, r.ErrorFull = truncate(st.LastError, maxErrorRunes), st.LastError
	}
	ready, readyReason := readyOf(st)
	if g := st.Gate; g != nil && !g.Enforced {
		add(levelWarn, "approval gate OFF",
			"the approval gate is OFF (approvals.enforce: false in strata.yaml): revisions are applied without signed approvals")
	}
	gate, gated := GateOf("", st)
	health, healthFailed := healthFailure(st)
	if healthFailed {
		r.ErrorClass = "bad"
		add(levelBad, short(health.Revision)+" failed its health check",
			fmt.Sprintf("revision %s failed its health check (%d failed, %d progressing)", short(health.Revision), st.Failed, st.Progressing))
	}
	switch {
	case gated:
		if !healthFailed {
			r.ErrorClass = "warn"
			// The pending-approvals box has the command; the full error is in the title.
			r.Error = "not approved: " + truncate(gate.Message, maxErrorRunes)
		}
		add(levelWarn, short(gate.Revision)+" waits for approvals",
			fmt.Sprintf("revision %s waits for approvals: %s", short(gate.Revision), truncate(gate.Message, 90)))
	case healthFailed:
	case st.LastError != "":
		r.ErrorClass = "bad"
		reason := readyReason
		if reason == "" {
			reason = "error"
		}
		add(levelBad, "last reconcile failed ("+reason+")",
			fmt.Sprintf("last reconcile failed (%s): %s", reason, truncate(firstLine(st.LastError), 90)))
	case st.Failed > 0:
		add(levelBad, fmt.Sprintf("%d %s failed", st.Failed, plural(st.Failed, "object", "objects")), "")
	case ready == "False" && readyReason == inventory.ReasonWaitingForMove:
		add(levelWarn, "objects wait for a move to another cluster", "")
	}
	if st.Progressing > 0 && !healthFailed {
		add(levelWarn, fmt.Sprintf("%d %s progressing", st.Progressing, plural(st.Progressing, "object", "objects")), "")
	}
	return finish(r, notes)
}

func finish(r rowView, notes []note) (rowView, level, []note) {
	lvl := levelOK
	var texts []string
	for _, n := range notes {
		lvl = max(lvl, n.level)
		texts = append(texts, n.brief)
	}
	r.Class = lvl.class()
	r.Note = strings.Join(texts, "; ")
	switch lvl {
	case levelBad:
		r.State = "failing"
	case levelWarn:
		r.State = "attention"
	default:
		r.State = "ok"
	}
	return r, lvl, notes
}

// healthFailure returns the newest applied revision when it failed its
// health check. A health wait cancelled by a newer revision is recorded
// the same way; it is no failure of the revision.
func healthFailure(st inventory.Status) (inventory.Applied, bool) {
	if len(st.History) == 0 || st.History[0].Outcome != inventory.ReasonHealthFailed ||
		strings.Contains(st.LastError, "cancelled by a newer revision") {
		return inventory.Applied{}, false
	}
	return st.History[0], true
}

func readyOf(st inventory.Status) (status, reason string) {
	for _, c := range st.Conditions {
		if c.Type == "Ready" {
			return string(c.Status), c.Reason
		}
	}
	return "", ""
}

// rollbackCommand is the command that reverts commit in env.
func rollbackCommand(commit, env string, o Options) string {
	dir := o.KubeconfigDir
	if dir == "" {
		dir = "DIR"
	}
	args := []string{"strata", "rollback", short(commit), "--push", "--wait", "--env", shellQuote(env), "--kubeconfig-dir", shellQuote(dir)}
	if o.Repo != "" && o.Repo != "." {
		args = append(args, "--repo", shellQuote(o.Repo))
	}
	return strings.Join(args, " ")
}

func breakGlass(events []BreakGlass, n int, now time.Time) ([]breakGlassView, int) {
	events = append([]BreakGlass(nil), events...)
	sort.SliceStable(events, func(i, j int) bool { return events[i].Time.After(events[j].Time) })
	more := 0
	if len(events) > n {
		events, more = events[:n], len(events)-n
	}
	out := make([]breakGlassView, len(events))
	for i, e := range events {
		out[i] = breakGlassView{Time: e.Time.UTC().Format("2006-01-02 15:04:05Z"), Age: age(now, e.Time), Cluster: dash(e.Cluster),
			User: dash(e.User), Reason: dash(e.Reason), Message: truncate(e.Message, maxErrorRunes), MessageFull: e.Message, Count: max(e.Count, 1)}
	}
	return out, more
}

func subjectOf(s *Snapshot, rev string) string {
	if rev == "" || s.Subjects == nil {
		return ""
	}
	if v, ok := s.Subjects[rev]; ok {
		return v
	}
	if v, ok := s.Subjects[short(rev)]; ok {
		return v
	}
	if len(rev) >= 7 { // a short commit, e.g. from a gate message
		for k, v := range s.Subjects {
			if strings.HasPrefix(k, rev) && v != "" {
				return v
			}
		}
	}
	return ""
}

func short(rev string) string {
	sha, rest, _ := strings.Cut(rev, "+")
	if len(sha) > 12 {
		sha = sha[:12]
	}
	if rest != "" {
		return sha + "+" + rest
	}
	return sha
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func joinNonEmpty(a, b string) string {
	if a == "" {
		return b
	}
	return a + ", " + b
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return l
}

// truncate shortens s to n runes with an ellipsis.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return strings.TrimSpace(string(r[:n-1])) + "…"
}

// age says how long ago t was, roughly.
func age(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := now.Sub(t)
	if d < 0 {
		d = 0
	}
	return roughDuration(d) + " ago"
}

func roughDuration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	}
	return fmt.Sprintf("%dd", int(d/(24*time.Hour)))
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=@+~,", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
