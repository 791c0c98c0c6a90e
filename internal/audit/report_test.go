package audit

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

var (
	t0    = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	since = t0.AddDate(0, 0, 10)
	until = t0.AddDate(0, 0, 40)
)

func at(day int) time.Time { return t0.AddDate(0, 0, day) }

func build(evs []Event) *AuditReport {
	return BuildReport(evs, ReportOptions{Environment: "prod", Since: since, Until: until,
		ClusterTiers: map[string]string{"public": "public-cloud", "private": "private-cloud", "onprem": "on-prem"},
		Clusters:     []string{"onprem", "private", "public"}})
}

func TestResidency(t *testing.T) {
	ledger := "Deployment ledger/ledger"
	tests := []struct {
		name       string
		events     []Event
		residency  []string // cluster|object|sensitivity of the rows
		violations []string // cluster|object
	}{
		{
			name: "restricted on-prem only",
			events: []Event{
				{Time: at(12), Kind: Placement, Cluster: "onprem", Tier: "on-prem", Object: ledger, Sensitivity: "restricted", Commit: "c1"},
				{Time: at(12), Kind: Apply, Cluster: "onprem", Tier: "on-prem", Object: ledger, Sensitivity: "restricted", Commit: "c1"},
			},
			residency: []string{"onprem|" + ledger + "|restricted"},
		},
		{
			name: "restricted in public-cloud is a violation",
			events: []Event{
				{Time: at(15), Kind: Apply, Cluster: "public", Tier: "public-cloud", Object: ledger, Sensitivity: "restricted", Commit: "c2"},
				{Time: at(16), Kind: Move, Cluster: "public", Tier: "public-cloud", Object: ledger, Sensitivity: "restricted", To: "onprem"},
			},
			residency:  []string{"public|" + ledger + "|restricted"},
			violations: []string{"public|" + ledger},
		},
		{
			name: "restricted via break-glass in public-cloud is a violation",
			events: []Event{
				{Time: at(20), Kind: BreakGlass, Cluster: "public", Object: ledger, Sensitivity: "restricted", Actor: "carol",
					Rule: "tier-not-allowed", Message: "incident 42"},
			},
			residency:  []string{"public|" + ledger + "|restricted"},
			violations: []string{"public|" + ledger},
		},
		{
			name: "tier filled from the cluster when the event has none",
			events: []Event{
				{Time: at(20), Kind: Apply, Cluster: "private", Object: ledger, Sensitivity: "restricted"},
			},
			residency:  []string{"private|" + ledger + "|restricted"},
			violations: []string{"private|" + ledger},
		},
		{
			name: "pruned before the period is not listed",
			events: []Event{
				{Time: at(1), Kind: Apply, Cluster: "onprem", Tier: "on-prem", Object: ledger, Sensitivity: "restricted"},
				{Time: at(5), Kind: Prune, Cluster: "onprem", Tier: "on-prem", Object: ledger},
			},
		},
		{
			name: "applied before the period and still there is listed",
			events: []Event{
				{Time: at(1), Kind: Apply, Cluster: "onprem", Tier: "on-prem", Object: ledger, Sensitivity: "restricted"},
			},
			residency: []string{"onprem|" + ledger + "|restricted"},
		},
		{
			name: "applied after the period is not listed",
			events: []Event{
				{Time: at(41), Kind: Apply, Cluster: "public", Tier: "public-cloud", Object: ledger, Sensitivity: "restricted"},
			},
		},
		{
			name: "confidential listed, internal in public-cloud flagged but not listed",
			events: []Event{
				{Time: at(12), Kind: Apply, Cluster: "private", Tier: "private-cloud", Object: "Deployment fraud/scoring", Sensitivity: "confidential"},
				{Time: at(12), Kind: Apply, Cluster: "public", Tier: "public-cloud", Object: "Deployment risk/dashboard", Sensitivity: "internal"},
				{Time: at(12), Kind: Apply, Cluster: "public", Tier: "public-cloud", Object: "Deployment ml/training", Sensitivity: "public"},
			},
			residency:  []string{"private|Deployment fraud/scoring|confidential"},
			violations: []string{"public|Deployment risk/dashboard"},
		},
		{
			name: "other environments are left out",
			events: []Event{
				{Time: at(12), Kind: Apply, Environment: "staging", Cluster: "public", Tier: "public-cloud", Object: ledger, Sensitivity: "restricted"},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := build(tc.events)
			var got, viol []string
			for _, s := range r.Residency {
				got = append(got, s.Cluster+"|"+s.Object+"|"+s.Sensitivity)
			}
			for _, v := range r.Violations {
				viol = append(viol, v.Cluster+"|"+v.Object)
				if v.Violation == "" {
					t.Errorf("violation row without a reason: %+v", v)
				}
			}
			if !slices.Equal(got, tc.residency) {
				t.Errorf("residency = %v, want %v", got, tc.residency)
			}
			if !slices.Equal(viol, tc.violations) {
				t.Errorf("violations = %v, want %v", viol, tc.violations)
			}
			if r.Summary.Violations != len(tc.violations) {
				t.Errorf("summary counts %d violations, want %d", r.Summary.Violations, len(tc.violations))
			}
			var md bytes.Buffer
			if err := r.WriteMarkdown(&md); err != nil {
				t.Fatal(err)
			}
			if flagged := strings.Contains(md.String(), "**VIOLATION"); flagged != (len(tc.violations) > 0) {
				t.Errorf("markdown flags a violation: %v, want %v\n%s", flagged, len(tc.violations) > 0, md.String())
			}
		})
	}
}

func TestResidencyDetails(t *testing.T) {
	ledger := "Deployment ledger/ledger"
	r := build([]Event{
		{Time: at(2), Kind: Apply, Cluster: "onprem", Tier: "on-prem", Object: ledger, Sensitivity: "restricted", Commit: "c0"},
		{Time: at(12), Kind: Apply, Cluster: "onprem", Tier: "on-prem", Object: ledger, Sensitivity: "restricted", Commit: "c1"},
		{Time: at(30), Kind: Prune, Cluster: "onprem", Tier: "on-prem", Object: ledger, Commit: "c2"},
	})
	if len(r.Residency) != 1 {
		t.Fatalf("residency %+v", r.Residency)
	}
	s := r.Residency[0]
	if !s.FirstSeen.Equal(at(2)) || !s.LastSeen.Equal(at(12)) || !s.Removed.Equal(at(30)) || s.RemovedBy != Prune || s.Commit != "c1" {
		t.Fatalf("residency %+v: want first seen day 2, last seen day 12, pruned day 30, commit c1", s)
	}
	if r.Summary.RestrictedObjects != 1 || !slices.Equal(r.Summary.RestrictedClusters, []string{"onprem (on-prem)"}) {
		t.Fatalf("summary %+v", r.Summary)
	}
}

func TestApprovals(t *testing.T) {
	gate1 := "restricted change needs 2 approvals, has 2: alice, bob"
	var evs []Event
	for _, c := range []string{"onprem", "private"} { // recorded in every cluster
		evs = append(evs,
			Event{Time: at(11), Kind: Approval, Cluster: c, Commit: "c1", Actor: "bob", Sensitivity: "restricted", Message: gate1},
			Event{Time: at(11), Kind: Approval, Cluster: c, Commit: "c1", Actor: "alice", Sensitivity: "restricted", Message: gate1},
		)
	}
	evs = append(evs,
		Event{Time: at(12), Kind: GateRefused, Cluster: "onprem", Commit: "c2", Sensitivity: "internal", Message: "internal change needs 1 approval, has 0", Count: 2},
		Event{Time: at(13), Kind: Approval, Cluster: "onprem", Commit: "c2", Actor: "carol", Sensitivity: "internal", Message: "internal change needs 1 approval, has 1: carol"},
		Event{Time: at(14), Kind: GateRefused, Cluster: "onprem", Commit: "c3", Sensitivity: "restricted", Message: "restricted change needs 2 approvals, has 1: alice"},
		Event{Time: at(15), Kind: Approval, Cluster: "onprem", Commit: "c4", Message: "no object changes: nothing to approve"},
		Event{Time: at(5), Kind: Approval, Cluster: "onprem", Commit: "c0", Actor: "dave"}, // before the period
	)
	r := build(evs)
	want := []struct {
		commit    string
		approvers []string
		approved  bool
		refusals  int
		gate      string
		clusters  []string
	}{
		{"c1", []string{"alice", "bob"}, true, 0, gate1, []string{"onprem", "private"}},
		{"c2", []string{"carol"}, true, 2, "internal change needs 1 approval, has 1: carol", []string{"onprem"}},
		{"c3", []string{}, false, 1, "restricted change needs 2 approvals, has 1: alice", []string{"onprem"}},
		{"c4", []string{}, true, 0, "no object changes: nothing to approve", []string{"onprem"}},
	}
	if len(r.Approvals) != len(want) {
		t.Fatalf("approvals %+v", r.Approvals)
	}
	for i, w := range want {
		a := r.Approvals[i]
		if a.Commit != w.commit || !slices.Equal(a.Approvers, w.approvers) || a.Approved != w.approved || a.Refusals != w.refusals ||
			a.Gate != w.gate || !slices.Equal(a.Clusters, w.clusters) {
			t.Errorf("approval %d = %+v, want %+v", i, a, w)
		}
	}
	if r.Summary.Commits != 4 || r.Summary.Refused != 1 || !slices.Equal(r.Summary.Approvers, []string{"alice", "bob", "carol"}) {
		t.Errorf("summary %+v", r.Summary)
	}
}

func TestBreakGlassAndDenials(t *testing.T) {
	r := build([]Event{
		{Time: at(20), Kind: BreakGlass, Cluster: "public", Tier: "public-cloud", Object: "Deployment ledger/ledger", Sensitivity: "restricted",
			Actor: "carol", Rule: "tier-not-allowed,require-limits", Message: "INC-42: ledger down on-prem"},
		{Time: at(21), Kind: BreakGlass, Cluster: "onprem", Tier: "on-prem", Object: "Deployment ledger/ledger-db", Sensitivity: "restricted",
			Actor: "dan", Rule: "require-limits", Message: "hotfix", Count: 3, Last: at(21).Add(time.Minute)},
		{Time: at(22), Kind: Denial, Cluster: "public", Tier: "public-cloud", Object: "Secret ledger/creds", Actor: "eve", Rule: "tier-not-allowed", Count: 40},
		{Time: at(23), Kind: Denial, Cluster: "public", Tier: "public-cloud", Object: "Secret ledger/keys", Actor: "eve", Rule: "tier-not-allowed", Count: 2},
		{Time: at(23), Kind: Denial, Cluster: "public", Tier: "public-cloud", Object: "Secret ledger/keys", Actor: "mallory", Rule: "tier-not-allowed"},
		{Time: at(24), Kind: Denial, Cluster: "private", Tier: "private-cloud", Object: "Pod ml/x", Actor: "frank", Rule: "unlabeled"},
		{Time: at(25), Kind: AutoRevert, Cluster: "public", Commit: "bad", Actor: "strata", Message: "reverted with r1: health check failed in public"},
		{Time: at(25), Kind: AutoRevert, Cluster: "private", Commit: "bad", Actor: "strata", Message: "reverted with r1: health check failed in public"},
		{Time: at(26), Kind: Rollback, Cluster: "onprem", Commit: "r2", Actor: "alice", Message: "tree abc applied before"},
		{Time: at(27), Kind: Move, Cluster: "private", Object: "Deployment fraud/scoring", Sensitivity: "confidential", To: "onprem", Commit: "c9"},
		{Time: at(27), Kind: Prune, Cluster: "public", Object: "ConfigMap ml/old", Commit: "c9"},
		{Time: at(28), Kind: Dropped, Cluster: "public", Count: 7},
	})
	if len(r.BreakGlass) != 2 {
		t.Fatalf("break-glass %+v", r.BreakGlass)
	}
	bg := r.BreakGlass[0]
	if bg.Actor != "carol" || bg.Reason != "INC-42: ledger down on-prem" || !slices.Equal(bg.Bypassed, []string{"tier-not-allowed", "require-limits"}) ||
		bg.Cluster != "public" || bg.Violation == "" {
		t.Errorf("break-glass row %+v", bg)
	}
	if r.BreakGlass[1].Count != 3 || r.BreakGlass[1].Violation != "" || r.Summary.BreakGlass != 4 ||
		!slices.Equal(r.Summary.BreakGlassActors, []string{"carol", "dan"}) {
		t.Errorf("break-glass %+v, summary %+v", r.BreakGlass[1], r.Summary)
	}
	if len(r.Denials) != 2 || r.Denials[0].Rule != "tier-not-allowed" || r.Denials[0].Count != 43 || r.Summary.Denials != 44 {
		t.Fatalf("denials %+v", r.Denials)
	}
	d := r.Denials[0]
	if !slices.Equal(d.TopObjects, []Counted{{"Secret ledger/creds", 40}, {"Secret ledger/keys", 3}}) ||
		!slices.Equal(d.TopActors, []Counted{{"eve", 42}, {"mallory", 1}}) {
		t.Errorf("top objects %v, top actors %v", d.TopObjects, d.TopActors)
	}
	if len(r.Rollbacks) != 2 || !slices.Equal(r.Rollbacks[0].Clusters, []string{"private", "public"}) || r.Summary.AutoReverts != 1 || r.Summary.Rollbacks != 1 {
		t.Errorf("rollbacks %+v", r.Rollbacks)
	}
	if len(r.Changes) != 2 || r.Summary.Moves != 1 || r.Summary.Prunes != 1 || r.Changes[0].To != "onprem" {
		t.Errorf("changes %+v", r.Changes)
	}
	if r.Summary.Dropped != 7 {
		t.Errorf("dropped %d", r.Summary.Dropped)
	}

	var md bytes.Buffer
	if err := r.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	out := md.String()
	for _, want := range []string{
		"# Audit report: prod",
		"**Period:** 2026-03-11 00:00 UTC to 2026-04-10 00:00 UTC (30 days)",
		"## Summary",
		"## Violations",
		"## 1. Where restricted and confidential data ran",
		"## 2. Who approved what",
		"## 3. Break-glass",
		"| Time | Who | Cluster | Tier | Object | Sensitivity | Reason | Rules bypassed | Times |",
		"| carol | public | public-cloud | Deployment ledger/ledger | restricted | INC-42: ledger down on-prem | tier-not-allowed, require-limits | 1 |",
		"## 4. Denials by rule and tier",
		"| tier-not-allowed | public-cloud | 43 | public | Secret ledger/creds (40), Secret ledger/keys (3) | eve (42), mallory (1) |",
		"## 5. Rollbacks and auto-reverts",
		"## 6. Prunes and moves",
		"**Break-glass:** 4 uses by carol, dan.",
		"7 events were dropped",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("markdown lacks %q", want)
		}
	}
	if i, j := strings.Index(out, "## Summary"), strings.Index(out, "## 1."); i < 0 || i > j {
		t.Error("the summary does not come first")
	}
	if strings.Count(out, "None in this period.") != 1 { // only approvals are empty
		t.Errorf("empty sections: %d\n%s", strings.Count(out, "None in this period."), out)
	}

	var js bytes.Buffer
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back AuditReport
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || len(back.BreakGlass) != 2 || back.Summary.Denials != 44 {
		t.Fatalf("JSON round trip: %v %+v", err, back.Summary)
	}
	var tbl bytes.Buffer
	if err := r.WriteTable(&tbl); err != nil || !strings.Contains(tbl.String(), "BREAK-GLASS") {
		t.Fatalf("table: %v\n%s", err, tbl.String())
	}
}

func TestMarkdownEmptyAndGaps(t *testing.T) {
	r := BuildReport(nil, ReportOptions{Environment: "prod", Since: since, Until: until, Clusters: []string{"onprem"},
		Gaps: []Gap{{Cluster: "public", Reason: "unreachable: connection refused"}}, MaxRows: 1})
	var md bytes.Buffer
	if err := r.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	out := md.String()
	for _, want := range []string{"**No violations:**", "Nobody broke glass.", "**Gap:** public: unreachable: connection refused", "None in this period."} {
		if !strings.Contains(out, want) {
			t.Errorf("markdown lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "## Violations") {
		t.Error("a report without violations has a Violations section")
	}
}

func TestMarkdownEscapesAndLimitsRows(t *testing.T) {
	var evs []Event
	for i := 0; i < 5; i++ {
		evs = append(evs, Event{Time: at(20 + i), Kind: Prune, Cluster: "onprem", Object: "ConfigMap a/b", Message: "x|y\nz"})
	}
	evs = append(evs, Event{Time: at(20), Kind: BreakGlass, Cluster: "onprem", Actor: "a|b", Message: "line1\nline2 | pipe"})
	r := BuildReport(evs, ReportOptions{Environment: "prod", Since: since, Until: until, MaxRows: 2})
	var md bytes.Buffer
	if err := r.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	out := md.String()
	if !strings.Contains(out, `a\|b`) || !strings.Contains(out, `line1 line2 \| pipe`) {
		t.Errorf("cells not escaped:\n%s", out)
	}
	if !strings.Contains(out, "*3 more rows are in the JSON report") {
		t.Errorf("rows not limited:\n%s", out)
	}
}

func TestRecordBoundsAndSourceName(t *testing.T) {
	e := Event{Message: strings.Repeat("é", 3000), Object: strings.Repeat("o", 1000)}
	e.bound()
	if len(e.Message) > maxMessage || len(e.Object) > maxField || !strings.HasSuffix(e.Message, "…") {
		t.Fatalf("bound: message %d bytes, object %d bytes", len(e.Message), len(e.Object))
	}
	if !json.Valid([]byte(`"` + e.Message + `"`)) {
		t.Fatal("cut inside a rune")
	}
	for in, want := range map[string]string{
		"reconciler":                 "reconciler",
		"webhook-strata-webhook-7d4": "webhook-strata-webhook-7d4",
		"Webhook_Pod.1":              "webhook-pod-1",
		"":                           "unknown",
	} {
		if got := SourceName(in); got != want {
			t.Errorf("SourceName(%q) = %q, want %q", in, got, want)
		}
	}
	long1, long2 := SourceName("webhook-"+strings.Repeat("a", 60)+"-1"), SourceName("webhook-"+strings.Repeat("a", 60)+"-2")
	if len(long1) > 40 || long1 == long2 {
		t.Errorf("long sources: %q, %q", long1, long2)
	}
	if got := ConfigMapName("reconciler", at(0), 2); got != "strata-audit-reconciler-20260301-2" {
		t.Errorf("ConfigMapName = %q", got)
	}
}

// TestReportRollOff: roll-off records are not occurrences; the summary
// says the record is incomplete, as a gap when the period lost events.
func TestReportRollOff(t *testing.T) {
	for _, tc := range []struct {
		name     string
		from, to time.Time
		want     string
	}{
		{"in the period", at(11), at(13), "**Gap:** 120 events from 2026-03-12 00:00 UTC to 2026-03-14 00:00 UTC were rolled off by retention"},
		{"before the period", at(1), at(3), "Retention rolled off 120 events from 2026-03-02 00:00 UTC to 2026-03-04 00:00 UTC, before this period"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := build([]Event{
				{Time: at(12), Kind: Denial, Cluster: "public", Rule: "tier-not-allowed", Count: 3},
				{Time: at(20), Kind: RolledOff, Cluster: "public", Count: 100, From: tc.from, Until: tc.to.Add(-time.Hour)},
				{Time: at(21), Kind: RolledOff, Cluster: "public", Count: 20, From: tc.from.Add(time.Hour), Until: tc.to},
			})
			if r.Summary.Events != 3 || r.Summary.ByKind[RolledOff] != 0 || r.Summary.RolledOff != 120 {
				t.Errorf("summary %+v: want 3 events in the period and 120 rolled off, not counted as occurrences", r.Summary)
			}
			var md bytes.Buffer
			if err := r.WriteMarkdown(&md); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(md.String(), tc.want) {
				t.Errorf("markdown lacks %q:\n%s", tc.want, md.String())
			}
		})
	}
}
