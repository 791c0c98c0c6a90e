package approval

import (
	"errors"
	"fmt"
	"slices"

	"github.com/strata-gitops/strata/internal/config"
	"github.com/strata-gitops/strata/internal/desired"
	"github.com/strata-gitops/strata/internal/placement"
	"github.com/strata-gitops/strata/internal/plan"
	"github.com/strata-gitops/strata/internal/source"
)

// Side is one revision of a change: its content and strata.yaml.
type Side struct {
	Snap *source.Snapshot
	Cfg  *config.Config
}

// Need is what a change of one environment needs before it may be applied.
type Need struct {
	// Sensitivity is the highest sensitivity the change touches ("" when
	// nothing changes).
	Sensitivity config.Sensitivity `json:"sensitivity,omitempty"`
	// Count is the number of signed approvals from distinct reviewers.
	Count int `json:"count"`
	// Reasons say why, one line each (a governance file changed, a window
	// adds something, no approved base).
	Reasons []string `json:"reasons,omitempty"`
	// Approvals is the approval table applied: base's, never lowered by head.
	Approvals map[config.Sensitivity]int `json:"-"`
}

// GovernancePaths change who may approve what or what is enforced: a
// change to any of them needs the approvals of a restricted change.
var GovernancePaths = []string{config.TrustFile, config.ConfigFile, desired.PoliciesDir}

// Needed computes the approvals a change of env from base to head needs. It
// is the one rule that plan, the gate, the status page and approve share:
//   - the highest sensitivity of any object added, changed, removed or moved,
//     judged with every peak window's component applied as well as without
//     (what a window will add is approved when it is committed, not when the
//     window opens);
//   - restricted when the trust file, strata.yaml or policies/ change;
//   - restricted when there is no approved base (base nil: all is new);
//   - the count from base's approval table, never lowered by head's.
//
// A base that no longer renders counts as empty (everything in head is
// new): the gate asks for more, never less. A head that does not render
// is an error.
func Needed(env string, base, head *Side) (Need, error) {
	n := Need{}
	table := config.DefaultApprovals()
	if base != nil {
		table = base.Cfg.Approvals.Required
	}
	n.Approvals = plan.StricterApprovals(table, head.Cfg.Approvals.Required)
	touch := func(s config.Sensitivity, why string) {
		if s.Rank() > n.Sensitivity.Rank() {
			n.Sensitivity = s
		}
		if why != "" {
			n.Reasons = append(n.Reasons, why)
		}
	}
	if base == nil {
		touch(config.Restricted, "no approved base revision: the whole content is judged as new, like a restricted change")
	} else {
		for _, p := range GovernancePaths {
			if digestOf(base.Snap, p) != digestOf(head.Snap, p) {
				touch(config.Restricted, fmt.Sprintf("changes %s: who may approve or what is enforced changes, so it needs the approvals of a restricted change", p))
			}
		}
	}
	for _, windows := range windowVariants(env, base, head) {
		hst, err := build(head, env, windows)
		if err != nil {
			return n, err
		}
		var bst *desired.State
		if base != nil {
			if bst, err = build(base, env, windows); err != nil {
				bst = nil
				touch("", fmt.Sprintf("the base revision does not render (%v): every object counts as changed", err))
			}
		}
		h := plan.Compare(env, bst, hst, n.Approvals).Highest
		if len(windows) > 0 && h.Rank() > n.Sensitivity.Rank() {
			touch(h, fmt.Sprintf("with window %v open the change touches %s data", windows, h))
		} else {
			touch(h, "")
		}
	}
	if n.Sensitivity != "" {
		n.Count = n.Approvals[n.Sensitivity]
	}
	return n, nil
}

// windowVariants are the sets of windows a change is judged under: none,
// all of them, and each alone (components may interact).
func windowVariants(env string, sides ...*Side) [][]string {
	var all []string
	for _, s := range sides {
		if s == nil {
			continue
		}
		for _, w := range s.Cfg.EnvironmentWindows(env, nil) {
			if !slices.Contains(all, w) {
				all = append(all, w)
			}
		}
	}
	slices.Sort(all)
	out := [][]string{{}}
	if len(all) == 0 {
		return out
	}
	out = append(out, all)
	if len(all) > 1 {
		for _, w := range all {
			out = append(out, []string{w})
		}
	}
	return out
}

// build renders env of a side with exactly windows open, every cluster
// assumed healthy: the gate judges content, not today's reachability. A
// state with placement violations is still compared (its placed part).
func build(s *Side, env string, windows []string) (*desired.State, error) {
	if _, ok := s.Cfg.Environments[env]; !ok {
		return nil, nil // the environment is absent on this side
	}
	opts := desired.DefaultOptions()
	opts.Windows = windows
	st, err := desired.Build(s.Snap, s.Cfg, env, opts)
	var ve *placement.ViolationsError
	if err != nil && st != nil && errors.As(err, &ve) {
		return st, nil
	}
	return st, err
}

// digestOf concatenates a file, or every file of a directory, for comparison.
func digestOf(s *source.Snapshot, p string) string {
	if data, err := s.ReadFile(p); err == nil {
		return string(data)
	}
	names, err := s.FS.ReadDir(s.Path(p))
	if err != nil {
		return ""
	}
	slices.Sort(names)
	out := ""
	for _, n := range names {
		data, _ := s.ReadFile(p + "/" + n)
		out += n + "\x00" + string(data) + "\x00"
	}
	return out
}
