// Package plan compares the desired state of an environment at two
// revisions (a pull request's base and head) and says, per cluster, what
// will be added, changed, removed and moved, why, and which approvals the
// change needs. It is pure: both states are computed by the caller.
package plan

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/pmezard/go-difflib/difflib"
	"sigs.k8s.io/yaml"

	"github.com/strata-gitops/strata/internal/config"
	"github.com/strata-gitops/strata/internal/desired"
	"github.com/strata-gitops/strata/internal/labels"
	"github.com/strata-gitops/strata/internal/placement"
)

// Action is what happens to an object in a cluster.
type Action string

const (
	Added    Action = "added"
	Changed  Action = "changed"
	Removed  Action = "removed"
	MovedIn  Action = "moved-in"
	MovedOut Action = "moved-out"
)

// Change is one object's change in one cluster.
type Change struct {
	Action      Action             `json:"action"`
	Kind        string             `json:"kind"`
	Namespace   string             `json:"namespace,omitempty"`
	Name        string             `json:"name"`
	Sensitivity config.Sensitivity `json:"sensitivity,omitempty"`
	// Reason is the head placement reason (the base one for removals).
	Reason string `json:"reason"`
	// Peer is the other cluster of a move.
	Peer string `json:"peer,omitempty"`
	// Diff is a unified diff of the manifest (Secret values masked).
	Diff string `json:"diff,omitempty"`
}

// Ref names the object.
func (c Change) Ref() string {
	if c.Namespace == "" {
		return c.Kind + " " + c.Name
	}
	return c.Kind + " " + c.Namespace + "/" + c.Name
}

// Cluster is the plan of one cluster.
type Cluster struct {
	Name    string   `json:"name"`
	Tier    string   `json:"tier"`
	Changes []Change `json:"changes"`
}

// Count returns how many changes of action the cluster has.
func (c Cluster) Count(a Action) int {
	n := 0
	for _, ch := range c.Changes {
		if ch.Action == a {
			n++
		}
	}
	return n
}

// Environment is the plan of one environment.
type Environment struct {
	Name       string    `json:"name"`
	Clusters   []Cluster `json:"clusters"`
	Violations []string  `json:"violations,omitempty"`
	// Highest is the highest sensitivity among changed objects.
	Highest config.Sensitivity `json:"highestSensitivity,omitempty"`
	// Approvals is the number of signed approvals the change needs.
	Approvals int `json:"approvals"`
	// ApprovalReasons say why beyond the objects changed (a governance file,
	// a window's component).
	ApprovalReasons []string `json:"approvalReasons,omitempty"`
	// NotCounted are reviewers whose approval would not count, and why
	// (they authored or committed part of the change).
	NotCounted []string `json:"notCounted,omitempty"`
	// Windows are the windows open at head (their components are included).
	Windows []string `json:"windows,omitempty"`
	// Cost and BaseCost are the environment's monthly cost at head and at
	// base, per tier, in relative units per cluster (strata.yaml
	// clusters[].cost); nil when the environment is absent on that side.
	Cost     *placement.Cost `json:"cost,omitempty"`
	BaseCost *placement.Cost `json:"baseCost,omitempty"`
}

// Changed reports whether anything changes in the environment.
func (e *Environment) Changed() bool {
	for _, c := range e.Clusters {
		if len(c.Changes) > 0 {
			return true
		}
	}
	return false
}

type entry struct {
	obj      *desired.Object
	stamp    desired.Stamp
	decision placement.Decision
	yaml     string
}

func key(o placement.Object) string { return o.Group + "/" + o.Kind + "/" + o.Namespace + "/" + o.Name }

// index maps cluster → object key → entry for a state (nil state: empty).
func index(st *desired.State) map[string]map[string]*entry {
	out := map[string]map[string]*entry{}
	if st == nil || st.Placement == nil {
		return out
	}
	for _, d := range st.Placement.Decisions {
		// A change to an unlabeled Namespace or CRD touches its contents.
		d.Sensitivity = d.Touches()
		e := &entry{obj: st.Objects[d.Index], stamp: st.StampOf(d), decision: d}
		for _, c := range d.Clusters {
			if out[c] == nil {
				out[c] = map[string]*entry{}
			}
			out[c][key(d.Object)] = e
		}
	}
	return out
}

// manifest renders a comparable YAML of o stamped with s: no revision
// annotation (it changes with every commit), Secret values masked.
func manifest(o *desired.Object, s desired.Stamp) string {
	u := o.Stamped(s)
	m := u.Object
	if md, ok := m["metadata"].(map[string]any); ok {
		if a, ok := md["annotations"].(map[string]any); ok {
			delete(a, labels.Revision)
		}
	}
	if u.GetKind() == "Secret" {
		sealSummary(m)
		for _, field := range []string{"data", "stringData"} {
			if d, ok := m[field].(map[string]any); ok {
				for k, v := range d {
					d[k] = "(masked " + maskOf(fmt.Sprint(v)) + ")"
				}
			}
		}
	}
	b, err := yaml.Marshal(m)
	if err != nil {
		return fmt.Sprintf("# cannot encode: %v\n", err)
	}
	return string(b)
}

func (e *entry) manifest() string {
	if e.yaml == "" {
		e.yaml = manifest(e.obj, e.stamp)
	}
	return e.yaml
}

func unifiedDiff(name, a, b string) string {
	d, err := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: difflib.SplitLines(a), B: difflib.SplitLines(b), FromFile: "base/" + name, ToFile: "head/" + name, Context: 3,
	})
	if err != nil {
		return ""
	}
	return d
}

// Compare plans the change of one environment from base to head. Either
// state may be nil (an environment added or removed). cfgApprovals is the
// approval table to apply (the stricter of base's and head's).
func Compare(env string, base, head *desired.State, approvals map[config.Sensitivity]int) *Environment {
	out := &Environment{Name: env}
	bi, hi := index(base), index(head)
	var clusters []config.Cluster
	seen := map[string]bool{}
	for _, st := range []*desired.State{head, base} {
		if st == nil {
			continue
		}
		for _, c := range st.Clusters {
			if !seen[c.Name] {
				seen[c.Name] = true
				clusters = append(clusters, c)
			}
		}
	}
	if head != nil {
		out.Windows = head.Windows
	}
	out.BaseCost, out.Cost = costOf(base), costOf(head)
	if head != nil && head.Placement != nil {
		for _, v := range head.Placement.Violations {
			out.Violations = append(out.Violations, v.String())
		}
	}
	where := func(ix map[string]map[string]*entry, k string, except string) string {
		var names []string
		for c, objs := range ix {
			if _, ok := objs[k]; ok && c != except {
				names = append(names, c)
			}
		}
		sort.Strings(names)
		return strings.Join(names, ", ")
	}
	touch := func(s config.Sensitivity) {
		if s.Rank() > out.Highest.Rank() {
			out.Highest = s
		}
	}
	for _, c := range clusters {
		pc := Cluster{Name: c.Name, Tier: string(c.Tier)}
		b, h := bi[c.Name], hi[c.Name]
		for k, he := range h {
			ch := Change{Kind: he.decision.Object.Kind, Namespace: he.decision.Object.Namespace, Name: he.decision.Object.Name,
				Sensitivity: he.decision.Sensitivity, Reason: he.decision.Reason}
			be, had := b[k]
			switch {
			case !had:
				ch.Action = Added
				old := ""
				if from := where(bi, k, c.Name); from != "" {
					ch.Action, ch.Peer = MovedIn, from
					old = firstEntry(bi, k).manifest()
				}
				ch.Diff = unifiedDiff(ch.Ref(), old, he.manifest())
			case be.manifest() != he.manifest():
				ch.Action = Changed
				ch.Diff = unifiedDiff(ch.Ref(), be.manifest(), he.manifest())
			default:
				continue
			}
			touch(ch.Sensitivity)
			if had {
				touch(be.decision.Sensitivity)
			}
			pc.Changes = append(pc.Changes, ch)
		}
		for k, be := range b {
			if _, ok := h[k]; ok {
				continue
			}
			ch := Change{Action: Removed, Kind: be.decision.Object.Kind, Namespace: be.decision.Object.Namespace,
				Name: be.decision.Object.Name, Sensitivity: be.decision.Sensitivity, Reason: be.decision.Reason}
			if to := where(hi, k, c.Name); to != "" {
				ch.Action, ch.Peer = MovedOut, to
				if he := firstEntry(hi, k); he != nil {
					ch.Reason = he.decision.Reason
				}
			}
			touch(ch.Sensitivity)
			pc.Changes = append(pc.Changes, ch)
		}
		sortChanges(pc.Changes)
		out.Clusters = append(out.Clusters, pc)
	}
	if out.Highest != "" {
		out.Approvals = approvals[out.Highest]
	}
	return out
}

func firstEntry(ix map[string]map[string]*entry, k string) *entry {
	names := make([]string, 0, len(ix))
	for c := range ix {
		names = append(names, c)
	}
	sort.Strings(names)
	for _, c := range names {
		if e, ok := ix[c][k]; ok {
			return e
		}
	}
	return nil
}

var actionOrder = []Action{Added, MovedIn, Changed, MovedOut, Removed}

func sortChanges(cs []Change) {
	sort.SliceStable(cs, func(i, j int) bool {
		ai, aj := slices.Index(actionOrder, cs[i].Action), slices.Index(actionOrder, cs[j].Action)
		if ai != aj {
			return ai < aj
		}
		return cs[i].Ref() < cs[j].Ref()
	})
}

// StricterApprovals returns, per sensitivity, the higher count of a and b,
// so that a pull request cannot lower its own approval threshold.
func StricterApprovals(a, b map[config.Sensitivity]int) map[config.Sensitivity]int {
	out := map[config.Sensitivity]int{}
	for _, m := range []map[config.Sensitivity]int{a, b} {
		for k, v := range m {
			out[k] = max(out[k], v)
		}
	}
	return out
}

// maskKey keys the masks of Secret values: equal values mask equally within
// one process (so a change shows, even of the same length), while the
// printed mask reveals nothing that could be looked up.
var maskKey = func() []byte {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	return k
}()

func maskOf(v string) string {
	mac := hmac.New(sha256.New, maskKey)
	mac.Write([]byte(v))
	return hex.EncodeToString(mac.Sum(nil))[:12]
}
