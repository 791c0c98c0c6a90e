package audit

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/strata-gitops/strata/internal/config"
)

// ReportOptions shape a report beyond Report's arguments.
type ReportOptions struct {
	Environment string
	// Since and Until bound the period; a zero Until is now.
	Since, Until time.Time
	// Tiers maps a sensitivity to its allowed tiers (strata.yaml's tiers:);
	// nil uses config.DefaultTiers. An object seen in a tier outside its
	// list is a violation.
	Tiers map[config.Sensitivity][]config.Tier
	// ClusterTiers fills the tier of events that have none.
	ClusterTiers map[string]string
	// Clusters are the clusters whose logs were read.
	Clusters []string
	// Gaps are clusters (or logs) that could not be read completely.
	Gaps []Gap
	// MaxRows bounds the rows of a section in markdown and table output
	// (JSON has them all); 0 is 200.
	MaxRows int
}

// Gap is a part of the record the report could not read.
type Gap struct {
	Cluster string `json:"cluster"`
	Reason  string `json:"reason"`
}

// AuditReport answers, for one environment and period: where restricted
// data ran, who approved what, who broke glass, what was denied, rolled
// back, pruned and moved.
type AuditReport struct {
	Environment string    `json:"environment"`
	Since       time.Time `json:"since"`
	Until       time.Time `json:"until"`
	Clusters    []string  `json:"clusters,omitempty"`
	Gaps        []Gap     `json:"gaps,omitempty"`
	Summary     Summary   `json:"summary"`
	// Violations are objects seen in a tier their sensitivity does not allow.
	Violations []Residency `json:"violations"`
	// Residency lists where restricted and confidential objects were.
	Residency  []Residency      `json:"residency"`
	Approvals  []CommitApproval `json:"approvals"`
	BreakGlass []BreakGlassUse  `json:"breakGlass"`
	Denials    []DenialGroup    `json:"denials"`
	Rollbacks  []RollbackEntry  `json:"rollbacks"`
	Changes    []Change         `json:"prunesAndMoves"`

	maxRows int
}

// Summary counts the period's events.
type Summary struct {
	// Events is the number of occurrences in the period, by kind.
	Events             int          `json:"events"`
	ByKind             map[Kind]int `json:"byKind"`
	Violations         int          `json:"violations"`
	RestrictedObjects  int          `json:"restrictedObjects"`
	RestrictedClusters []string     `json:"restrictedClusters,omitempty"`
	ConfidentialObjs   int          `json:"confidentialObjects"`
	Commits            int          `json:"commits"`
	Refused            int          `json:"refusedCommits"`
	Approvers          []string     `json:"approvers,omitempty"`
	BreakGlass         int          `json:"breakGlass"`
	BreakGlassActors   []string     `json:"breakGlassActors,omitempty"`
	Denials            int          `json:"denials"`
	Rollbacks          int          `json:"rollbacks"`
	AutoReverts        int          `json:"autoReverts"`
	Prunes             int          `json:"prunes"`
	Moves              int          `json:"moves"`
	Dropped            int          `json:"dropped"`
	// RolledOff counts the events retention rolled off up to the end of the
	// period, from RolledOffFrom to RolledOffUntil.
	RolledOff      int       `json:"rolledOff"`
	RolledOffFrom  time.Time `json:"rolledOffFrom,omitzero"`
	RolledOffUntil time.Time `json:"rolledOffUntil,omitzero"`
}

// Residency is one object's stay in one cluster.
type Residency struct {
	Sensitivity string `json:"sensitivity"`
	Cluster     string `json:"cluster"`
	Tier        string `json:"tier"`
	Object      string `json:"object"`
	// FirstSeen and LastSeen are the first and last events placing,
	// applying or admitting it there.
	FirstSeen time.Time `json:"firstSeen"`
	LastSeen  time.Time `json:"lastSeen"`
	// Removed is when it was pruned or moved out (zero: still there at the
	// end of the period, as far as the record shows).
	Removed   time.Time `json:"removed,omitzero"`
	RemovedBy Kind      `json:"removedBy,omitempty"`
	// Commit is the last commit that applied it.
	Commit string `json:"commit,omitempty"`
	// Via lists how it got there: placement, apply, break-glass.
	Via []Kind `json:"via"`
	// Actors are the users who broke glass for it.
	Actors []string `json:"actors,omitempty"`
	// Violation says why its tier is not allowed ("" when it is).
	Violation string `json:"violation,omitempty"`
}

// CommitApproval is the approval record of one commit.
type CommitApproval struct {
	Commit string    `json:"commit"`
	Time   time.Time `json:"time"`
	// Sensitivity is the highest sensitivity the change touched.
	Sensitivity string   `json:"sensitivity,omitempty"`
	Approvers   []string `json:"approvers"`
	Gate        string   `json:"gate"`
	// Approved is false when the gate only ever refused it.
	Approved bool `json:"approved"`
	// Refusals counts the gate's refusals (each cluster, each attempt).
	Refusals int      `json:"refusals,omitempty"`
	Clusters []string `json:"clusters"`
}

// BreakGlassUse is one (or Count identical) emergency bypass.
type BreakGlassUse struct {
	Time        time.Time `json:"time"`
	Last        time.Time `json:"last,omitzero"`
	Count       int       `json:"count"`
	Actor       string    `json:"actor"`
	Cluster     string    `json:"cluster"`
	Tier        string    `json:"tier"`
	Object      string    `json:"object"`
	Sensitivity string    `json:"sensitivity,omitempty"`
	Reason      string    `json:"reason"`
	Bypassed    []string  `json:"bypassed"`
	Violation   string    `json:"violation,omitempty"`
}

// DenialGroup counts the denials of one rule in one tier.
type DenialGroup struct {
	Rule       string    `json:"rule"`
	Tier       string    `json:"tier"`
	Count      int       `json:"count"`
	Clusters   []string  `json:"clusters"`
	TopObjects []Counted `json:"topObjects"`
	TopActors  []Counted `json:"topActors"`
	First      time.Time `json:"first"`
	Last       time.Time `json:"last"`
}

// Counted is a name and how often it occurred.
type Counted struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
}

// RollbackEntry is a rollback or auto-revert, merged across clusters.
type RollbackEntry struct {
	Time     time.Time `json:"time"`
	Kind     Kind      `json:"kind"`
	Commit   string    `json:"commit"`
	Actor    string    `json:"actor,omitempty"`
	Message  string    `json:"message"`
	Clusters []string  `json:"clusters"`
}

// Change is one prune or move.
type Change struct {
	Time        time.Time `json:"time"`
	Kind        Kind      `json:"kind"`
	Cluster     string    `json:"cluster"`
	Tier        string    `json:"tier,omitempty"`
	Object      string    `json:"object"`
	Sensitivity string    `json:"sensitivity,omitempty"`
	Commit      string    `json:"commit,omitempty"`
	To          string    `json:"to,omitempty"`
	Actor       string    `json:"actor,omitempty"`
	Message     string    `json:"message,omitempty"`
}

// Report builds the audit report of env for the period from since to now,
// judging tiers by the default tier table. Pass every event read (not only
// those since since): where data ran during the period depends on what
// was applied before it.
func Report(events []Event, env string, since time.Time) *AuditReport {
	return BuildReport(events, ReportOptions{Environment: env, Since: since})
}

// BuildReport builds the audit report with opts.
func BuildReport(events []Event, opts ReportOptions) *AuditReport {
	if opts.Until.IsZero() {
		opts.Until = time.Now().UTC()
	}
	if opts.Tiers == nil {
		opts.Tiers = config.DefaultTiers()
	}
	if opts.MaxRows <= 0 {
		opts.MaxRows = 200
	}
	r := &AuditReport{
		Environment: opts.Environment, Since: opts.Since.UTC(), Until: opts.Until.UTC(),
		Clusters: slices.Clone(opts.Clusters), Gaps: slices.Clone(opts.Gaps), maxRows: opts.MaxRows,
		Violations: []Residency{}, Residency: []Residency{}, Approvals: []CommitApproval{}, BreakGlass: []BreakGlassUse{},
		Denials: []DenialGroup{}, Rollbacks: []RollbackEntry{}, Changes: []Change{},
		Summary: Summary{ByKind: map[Kind]int{}},
	}
	sort.Strings(r.Clusters)
	evs := make([]Event, 0, len(events))
	for _, e := range events {
		if opts.Environment != "" && e.Environment != "" && e.Environment != opts.Environment {
			continue
		}
		if e.Tier == "" {
			e.Tier = opts.ClusterTiers[e.Cluster]
		}
		if e.Time.After(r.Until) {
			continue
		}
		evs = append(evs, e)
	}
	Sort(evs)
	inPeriod := func(e Event) bool {
		return !e.Time.Before(r.Since) || (!e.Last.IsZero() && !e.Last.Before(r.Since))
	}
	b := builder{r: r, tiers: opts.Tiers, stays: map[string]*Residency{}, approvals: map[string]*CommitApproval{},
		denials: map[string]*denialAcc{}, rollbacks: map[string]*RollbackEntry{}}
	for _, e := range evs {
		if e.Kind == RolledOff {
			// Not an occurrence: a note that the record is shorter.
			s := &r.Summary
			s.RolledOff += e.Count
			if s.RolledOffFrom.IsZero() || e.From.Before(s.RolledOffFrom) {
				s.RolledOffFrom = e.From
			}
			if e.Until.After(s.RolledOffUntil) {
				s.RolledOffUntil = e.Until
			}
			continue
		}
		b.residency(e)
		if !inPeriod(e) {
			continue
		}
		r.Summary.Events += e.N()
		r.Summary.ByKind[e.Kind] += e.N()
		switch e.Kind {
		case Approval, GateRefused:
			b.approval(e)
		case BreakGlass:
			b.breakGlass(e)
		case Denial:
			b.denial(e)
		case Rollback, AutoRevert:
			b.rollback(e)
		case Prune, Move:
			r.Changes = append(r.Changes, Change{Time: e.Time, Kind: e.Kind, Cluster: e.Cluster, Tier: e.Tier, Object: e.Object,
				Sensitivity: e.Sensitivity, Commit: e.Commit, To: e.To, Actor: e.Actor, Message: e.Message})
		case Dropped:
			r.Summary.Dropped += e.N()
		}
	}
	b.finish()
	return r
}

type builder struct {
	r         *AuditReport
	tiers     map[config.Sensitivity][]config.Tier
	stays     map[string]*Residency
	order     []string
	approvals map[string]*CommitApproval
	apOrder   []string
	denials   map[string]*denialAcc
	rollbacks map[string]*RollbackEntry
	rbOrder   []string
}

type denialAcc struct {
	g       DenialGroup
	objects map[string]int
	actors  map[string]int
}

// violation says why sensitivity s may not be in tier t, or "".
func (b *builder) violation(s, t string) string {
	if s == "" || t == "" {
		return ""
	}
	allowed, ok := b.tiers[config.Sensitivity(s)]
	if !ok {
		return ""
	}
	for _, a := range allowed {
		if string(a) == t {
			return ""
		}
	}
	names := make([]string, len(allowed))
	for i, a := range allowed {
		names[i] = string(a)
	}
	return fmt.Sprintf("%s data in %s: allowed only in [%s]", s, t, strings.Join(names, ", "))
}

// residency follows objects into and out of clusters, over all events.
func (b *builder) residency(e Event) {
	if e.Object == "" || e.Cluster == "" {
		return
	}
	k := e.Cluster + "|" + e.Object
	switch e.Kind {
	case Placement, Apply, BreakGlass:
		st := b.stays[k]
		if st == nil {
			st = &Residency{Cluster: e.Cluster, Tier: e.Tier, Object: e.Object, FirstSeen: e.Time}
			b.stays[k] = st
			b.order = append(b.order, k)
		}
		if !st.Removed.IsZero() { // back again
			st.Removed, st.RemovedBy = time.Time{}, ""
		}
		if config.Sensitivity(e.Sensitivity).Rank() > config.Sensitivity(st.Sensitivity).Rank() || st.Sensitivity == "" {
			st.Sensitivity = e.Sensitivity
		}
		if e.Tier != "" {
			st.Tier = e.Tier
		}
		st.LastSeen = e.Time
		if e.Last.After(st.LastSeen) {
			st.LastSeen = e.Last
		}
		if e.Commit != "" {
			st.Commit = e.Commit
		}
		if !slices.Contains(st.Via, e.Kind) {
			st.Via = append(st.Via, e.Kind)
		}
		if e.Kind == BreakGlass && e.Actor != "" && !slices.Contains(st.Actors, e.Actor) {
			st.Actors = append(st.Actors, e.Actor)
		}
	case Prune, Move:
		if st := b.stays[k]; st != nil {
			st.Removed, st.RemovedBy = e.Time, e.Kind
		}
	}
}

func (b *builder) approval(e Event) {
	ca := b.approvals[e.Commit]
	if ca == nil {
		ca = &CommitApproval{Commit: e.Commit, Time: e.Time, Approvers: []string{}, Clusters: []string{}}
		b.approvals[e.Commit] = ca
		b.apOrder = append(b.apOrder, e.Commit)
	}
	if e.Sensitivity != "" {
		ca.Sensitivity = e.Sensitivity
	}
	if e.Cluster != "" && !slices.Contains(ca.Clusters, e.Cluster) {
		ca.Clusters = append(ca.Clusters, e.Cluster)
	}
	switch e.Kind {
	case Approval:
		ca.Approved = true
		if e.Actor != "" && !slices.Contains(ca.Approvers, e.Actor) {
			ca.Approvers = append(ca.Approvers, e.Actor)
		}
		if e.Message != "" {
			ca.Gate = e.Message
		}
	case GateRefused:
		ca.Refusals += e.N()
		if !ca.Approved && e.Message != "" {
			ca.Gate = e.Message
		}
	}
}

func (b *builder) breakGlass(e Event) {
	var bypassed []string
	for _, r := range strings.Split(e.Rule, ",") {
		if r = strings.TrimSpace(r); r != "" {
			bypassed = append(bypassed, r)
		}
	}
	if bypassed == nil {
		bypassed = []string{}
	}
	b.r.BreakGlass = append(b.r.BreakGlass, BreakGlassUse{Time: e.Time, Last: e.Last, Count: e.N(), Actor: e.Actor, Cluster: e.Cluster,
		Tier: e.Tier, Object: e.Object, Sensitivity: e.Sensitivity, Reason: e.Message, Bypassed: bypassed,
		Violation: b.violation(e.Sensitivity, e.Tier)})
}

func (b *builder) denial(e Event) {
	k := e.Rule + "|" + e.Tier
	d := b.denials[k]
	if d == nil {
		d = &denialAcc{g: DenialGroup{Rule: e.Rule, Tier: e.Tier, First: e.Time, Clusters: []string{}}, objects: map[string]int{}, actors: map[string]int{}}
		b.denials[k] = d
	}
	d.g.Count += e.N()
	last := e.Time
	if e.Last.After(last) {
		last = e.Last
	}
	if last.After(d.g.Last) {
		d.g.Last = last
	}
	if e.Cluster != "" && !slices.Contains(d.g.Clusters, e.Cluster) {
		d.g.Clusters = append(d.g.Clusters, e.Cluster)
	}
	if e.Object != "" {
		d.objects[e.Object] += e.N()
	}
	if e.Actor != "" {
		d.actors[e.Actor] += e.N()
	}
}

func (b *builder) rollback(e Event) {
	k := string(e.Kind) + "|" + e.Commit + "|" + e.Message
	rb := b.rollbacks[k]
	if rb == nil {
		rb = &RollbackEntry{Time: e.Time, Kind: e.Kind, Commit: e.Commit, Actor: e.Actor, Message: e.Message, Clusters: []string{}}
		b.rollbacks[k] = rb
		b.rbOrder = append(b.rbOrder, k)
	}
	if e.Cluster != "" && !slices.Contains(rb.Clusters, e.Cluster) {
		rb.Clusters = append(rb.Clusters, e.Cluster)
	}
	if rb.Actor == "" {
		rb.Actor = e.Actor
	}
}

// topN returns the n most frequent names.
func topN(m map[string]int, n int) []Counted {
	out := make([]Counted, 0, len(m))
	for k, v := range m {
		out = append(out, Counted{k, v})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Name < out[j].Name
	})
	if len(out) > n {
		out = out[:n]
	}
	return out
}

func (b *builder) finish() {
	r := b.r
	s := &r.Summary
	restrictedClusters := map[string]bool{}
	for _, k := range b.order {
		st := b.stays[k]
		// Present during the period: arrived before its end, not removed
		// before its start.
		if st.FirstSeen.After(r.Until) || (!st.Removed.IsZero() && st.Removed.Before(r.Since)) {
			continue
		}
		sort.Strings(st.Actors)
		st.Violation = b.violation(st.Sensitivity, st.Tier)
		if st.Violation != "" {
			r.Violations = append(r.Violations, *st)
		}
		switch config.Sensitivity(st.Sensitivity) {
		case config.Restricted:
			s.RestrictedObjects++
			restrictedClusters[st.Cluster+" ("+dash(st.Tier)+")"] = true
		case config.Confidential:
			s.ConfidentialObjs++
		default:
			continue
		}
		r.Residency = append(r.Residency, *st)
	}
	for c := range restrictedClusters {
		s.RestrictedClusters = append(s.RestrictedClusters, c)
	}
	sort.Strings(s.RestrictedClusters)
	sort.SliceStable(r.Residency, func(i, j int) bool {
		a, b := r.Residency[i], r.Residency[j]
		if a.Sensitivity != b.Sensitivity {
			return config.Sensitivity(a.Sensitivity).Rank() > config.Sensitivity(b.Sensitivity).Rank()
		}
		if a.Cluster != b.Cluster {
			return a.Cluster < b.Cluster
		}
		return a.Object < b.Object
	})
	s.Violations = len(r.Violations)

	approvers := map[string]bool{}
	for _, c := range b.apOrder {
		ca := b.approvals[c]
		sort.Strings(ca.Approvers)
		sort.Strings(ca.Clusters)
		for _, a := range ca.Approvers {
			approvers[a] = true
		}
		if !ca.Approved {
			s.Refused++
		}
		r.Approvals = append(r.Approvals, *ca)
	}
	s.Commits = len(r.Approvals)
	for a := range approvers {
		s.Approvers = append(s.Approvers, a)
	}
	sort.Strings(s.Approvers)

	actors := map[string]bool{}
	for _, u := range r.BreakGlass {
		s.BreakGlass += u.Count
		actors[u.Actor] = true
	}
	for a := range actors {
		s.BreakGlassActors = append(s.BreakGlassActors, a)
	}
	sort.Strings(s.BreakGlassActors)

	for _, d := range b.denials {
		d.g.TopObjects, d.g.TopActors = topN(d.objects, 3), topN(d.actors, 3)
		sort.Strings(d.g.Clusters)
		r.Denials = append(r.Denials, d.g)
		s.Denials += d.g.Count
	}
	sort.Slice(r.Denials, func(i, j int) bool {
		a, b := r.Denials[i], r.Denials[j]
		if a.Count != b.Count {
			return a.Count > b.Count
		}
		if a.Rule != b.Rule {
			return a.Rule < b.Rule
		}
		return a.Tier < b.Tier
	})

	for _, k := range b.rbOrder {
		rb := b.rollbacks[k]
		sort.Strings(rb.Clusters)
		r.Rollbacks = append(r.Rollbacks, *rb)
		if rb.Kind == AutoRevert {
			s.AutoReverts++
		} else {
			s.Rollbacks++
		}
	}
	for _, c := range r.Changes {
		if c.Kind == Move {
			s.Moves++
		} else {
			s.Prunes++
		}
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
