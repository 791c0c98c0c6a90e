// Package audit records what strata did and refused in each cluster —
// placements, applies, prunes, moves, approvals, denials, break-glass,
// rollbacks — and reads it back for `strata audit`.
//
// The record lives in the clusters, not in the config repository: each
// cluster keeps the audit of what happened to it next to the objects
// concerned, in ConfigMaps of strata-system. It survives restarts of strata,
// is readable with the cluster's own RBAC, needs no git push credentials in
// the webhook, and keeps runtime facts out of the config history.
//
// Storage: ConfigMaps strata-audit-<source>-<YYYYMMDD>-<n> labelled
// strata.dev/audit=true, one per writer (source), UTC day and part; data key
// events.jsonl holds one JSON event per line. A new part starts when a
// ConfigMap would exceed WriterOptions.MaxBytes (~900 KiB). Every line
// carries the hash of the line before it in its ConfigMap, so an edited or
// deleted line is detected when the log is read.
//
// Bounds (retention.go): identical denials aggregate into one line of the
// current part with a count and first/last times, whatever the object's
// name; the log of a cluster is kept under an age and a size (strata.yaml
// audit:), the oldest parts rolled off first, each roll-off recorded as an
// audit-rolled-off event.
package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/strata-gitops/strata/internal/labels"
)

const (
	// Label marks audit ConfigMaps (value "true").
	Label = labels.Prefix + "audit"
	// SourceLabel names the writer of an audit ConfigMap.
	SourceLabel = labels.Prefix + "audit-source"
	// DayLabel is the UTC day (YYYYMMDD) of the events of an audit ConfigMap.
	DayLabel = labels.Prefix + "audit-day"
	// NamePrefix prefixes every audit ConfigMap name.
	NamePrefix = "strata-audit-"
	// DataKey is the ConfigMap data key holding the events, one JSON per line.
	DataKey = "events.jsonl"
	// DayFormat formats DayLabel and the day in names.
	DayFormat = "20060102"
)

// Kind is what happened.
type Kind string

// The kinds of events.
const (
	// Placement: the reconciler placed an object in a cluster (new there or
	// placed differently). Rule is the placement reason.
	Placement Kind = "placement"
	// Apply: the reconciler created or changed an object (or restored it
	// after drift). Message says which.
	Apply Kind = "apply"
	// Prune: the reconciler deleted an object removed from git.
	Prune Kind = "prune"
	// Move: the reconciler deleted an object from this cluster after it
	// became healthy in its new cluster(s) (To).
	Move Kind = "move"
	// Approval: a reviewer's signed approval counted for a commit (one
	// event per reviewer; Actor is the reviewer, Message the gate's message).
	Approval Kind = "approval"
	// GateRefused: a commit was not applied for want of approvals.
	GateRefused Kind = "gate-refused"
	// Denial: the admission webhook denied a request (Rule is the rule).
	Denial Kind = "denial"
	// BreakGlass: the webhook admitted a request that would have been denied
	// (Rule lists the bypassed rules, comma-separated; Message is the reason).
	BreakGlass Kind = "break-glass"
	// Rollback: a commit that returns to a tree applied before (a revert).
	Rollback Kind = "rollback"
	// AutoRevert: strata reverted a commit that failed its health check.
	AutoRevert Kind = "auto-revert"
	// Suspend: reconciliation of the environment in Cluster was suspended
	// (strata suspend; Actor is who, Message why) or the reconciler began
	// to honour a suspension (Source reconciler).
	Suspend Kind = "suspend"
	// Resume: a suspension was lifted (strata resume) or the reconciler
	// reconciled the cluster again after one.
	Resume Kind = "resume"
	// Dropped: the writer dropped events because its buffer was full (Count
	// of them); written by the Writer itself.
	Dropped Kind = "audit-dropped"
	// RolledOff: retention deleted a part of the log (Object names the
	// ConfigMap) holding Count events from From to Until; written by the
	// Writer that deleted it.
	RolledOff Kind = "audit-rolled-off"
)

// Kinds lists every kind, in report order.
var Kinds = []Kind{Placement, Apply, Prune, Move, Approval, GateRefused, Denial, BreakGlass, Rollback, AutoRevert, Suspend, Resume, Dropped, RolledOff}

// Event is one audited fact.
type Event struct {
	// ID is set by the Writer; Read removes duplicates by it.
	ID string `json:"id,omitempty"`
	// Time is when it happened (set by Record when zero), UTC.
	Time time.Time `json:"time"`
	// Last is the time of the last occurrence when Count > 1.
	Last        time.Time `json:"last,omitzero"`
	Kind        Kind      `json:"kind"`
	Environment string    `json:"env,omitempty"`
	Commit      string    `json:"commit,omitempty"`
	Cluster     string    `json:"cluster,omitempty"`
	Tier        string    `json:"tier,omitempty"`
	// Object is "Kind namespace/name" (or "Kind name" when cluster-scoped).
	Object      string `json:"object,omitempty"`
	Sensitivity string `json:"sensitivity,omitempty"`
	Rule        string `json:"rule,omitempty"`
	// Actor is who did it: a reviewer, a Kubernetes user, "strata".
	Actor   string `json:"actor,omitempty"`
	Message string `json:"message,omitempty"`
	// To lists the destination clusters of a move, comma-separated.
	To string `json:"to,omitempty"`
	// Count > 1 when identical events were aggregated (denials: in one part
	// of the log, whatever the object's name).
	Count int `json:"count,omitempty"`
	// Names samples the object names an aggregated denial stands for (at
	// most MaxNames) when they differ; Object then ends in "*".
	Names []string `json:"names,omitempty"`
	// From and Until span the events a roll-off record stands for.
	From  time.Time `json:"from,omitzero"`
	Until time.Time `json:"until,omitzero"`
	// Source is the writer ("reconciler", "webhook-<pod>"), set by the Writer.
	Source string `json:"source,omitempty"`
}

// N returns the number of occurrences the event stands for (at least 1).
func (e Event) N() int {
	if e.Count < 1 {
		return 1
	}
	return e.Count
}

// occurrences is what the event adds to a count of events: a roll-off
// record is one event, whatever number it reports.
func (e Event) occurrences() int {
	if e.Kind == RolledOff {
		return 1
	}
	return e.N()
}

// key identifies identical events for aggregation: everything but the
// times, the count and the ID.
func (e Event) key() string {
	return strings.Join([]string{string(e.Kind), e.Environment, e.Commit, e.Cluster, e.Tier, e.Object,
		e.Sensitivity, e.Rule, e.Actor, e.Message, e.To}, "\x00")
}

// Object formats an object reference as Event.Object expects it.
func Object(kind, namespace, name string) string {
	if namespace == "" {
		return kind + " " + name
	}
	return kind + " " + namespace + "/" + name
}

// Field length limits: a line stays small whatever a request carries.
const (
	maxMessage = 2048
	maxField   = 512
)

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Cut on a rune boundary.
	cut := n - len("…")
	for cut > 0 && !isRuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

func (e *Event) bound() {
	e.Message = truncate(e.Message, maxMessage)
	for _, f := range []*string{&e.Environment, &e.Commit, &e.Cluster, &e.Tier, &e.Object, &e.Sensitivity, &e.Rule, &e.Actor, &e.To} {
		*f = truncate(*f, maxField)
	}
	if len(e.Names) > MaxNames {
		e.Names = e.Names[:MaxNames]
	}
	for i := range e.Names {
		e.Names[i] = truncate(e.Names[i], maxField)
	}
}

// SourceName makes a writer source safe for names and label values:
// lowercase alphanumerics and '-', at most 40 characters (longer ones keep a
// hash of the whole so that two pods never share a name by truncation).
func SourceName(source string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(source) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	s := strings.Trim(b.String(), "-")
	if s == "" {
		s = "unknown"
	}
	if len(s) > 40 {
		sum := sha256.Sum256([]byte(source))
		s = strings.TrimRight(s[:31], "-") + "-" + hex.EncodeToString(sum[:4])
	}
	return s
}

// ConfigMapName returns the name of part n of source's ConfigMap for day.
func ConfigMapName(source string, day time.Time, n int) string {
	return fmt.Sprintf("%s%s-%s-%d", NamePrefix, SourceName(source), day.UTC().Format(DayFormat), n)
}

// partOf returns n of a ConfigMap name ending in -<n>.
func partOf(name string) int {
	i := strings.LastIndexByte(name, '-')
	if i < 0 {
		return 0
	}
	n, err := strconv.Atoi(name[i+1:])
	if err != nil {
		return 0
	}
	return n
}

// chainHash is the hash a line carries of the line before it.
func chainHash(line string) string {
	sum := sha256.Sum256([]byte(line))
	return hex.EncodeToString(sum[:8])
}

// lastLine returns the last line of data (without its newline).
func lastLine(data string) string {
	data = strings.TrimSuffix(data, "\n")
	if i := strings.LastIndexByte(data, '\n'); i >= 0 {
		return data[i+1:]
	}
	return data
}

// stored is an event as a line of a ConfigMap.
type stored struct {
	Event
	// Merged holds the IDs of the last batches merged into this line, so
	// that a write retried after an ambiguous failure is not counted twice.
	Merged []string `json:"merged,omitempty"`
	// Prev is chainHash of the previous line of the ConfigMap ("" for the
	// first). It is the last field: rechaining rewrites only it.
	Prev string `json:"prev,omitempty"`
}
