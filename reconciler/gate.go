package reconciler

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/strata-gitops/strata/internal/approval"
	"github.com/strata-gitops/strata/internal/config"
	"github.com/strata-gitops/strata/internal/desired"
	"github.com/strata-gitops/strata/internal/plan"
	"github.com/strata-gitops/strata/internal/source"
)

// GateError is a revision without the signed approvals it needs: nothing
// is applied until they arrive (they are looked for at every tick).
type GateError struct {
	Environment string
	Revision    string
	Decision    approval.Decision
}

func (e *GateError) Error() string {
	return fmt.Sprintf("revision %s is not approved for %s: %s; reviewers sign it with `strata approve %s --env %s --key KEY --push`",
		short(e.Revision), e.Environment, e.Decision.Message, short(e.Revision), e.Environment)
}

// governancePaths change who may approve what or what is enforced: a change
// to any of them needs the approvals of a restricted change.
var governancePaths = []string{config.TrustFile, config.ConfigFile, desired.PoliciesDir}

// gate decides whether rev may be applied: the highest sensitivity of any
// object changed since the last applied revision needs approvals[sensitivity]
// valid signatures from distinct reviewers of the trust file as it was at
// the last applied revision. A tree applied and approved before (a rollback
// target) needs none. Without a trust file at either revision the gate is
// not configured and says so.
func (r *Reconciler) gate(ctx context.Context, rev *source.Revision, snap *source.Snapshot, cfg *config.Config, st *desired.State) (*approval.Decision, error) {
	env := r.opts.Environment
	if r.lastApplied == rev.Commit {
		return nil, nil
	}
	headTrust, err := config.LoadTrust(snap.ReadFile, cfg)
	if err != nil {
		return nil, err
	}
	var base *source.Snapshot
	var baseCfg *config.Config
	trust := headTrust
	if r.lastApplied != "" {
		if lr, err := r.repo.Resolve(r.lastApplied); err == nil {
			if base, err = r.repo.Snapshot(lr); err == nil {
				if baseCfg, err = desired.LoadConfig(base); err == nil {
					if t, err := config.LoadTrust(base.ReadFile, baseCfg); err == nil && len(t.Reviewers) > 0 {
						trust = t // a trust change is approved under the old trust
					}
				}
			}
		}
	}
	if len(trust.Reviewers) == 0 && len(headTrust.Reviewers) == 0 {
		d := approval.Decision{Allowed: true, Message: "approvals are not enforced: no reviewers in " + config.TrustFile}
		return &d, nil
	}
	// Only an enforced gate pays for rendering the applied revision.
	var baseSt *desired.State
	if baseCfg != nil {
		baseSt, _ = desired.Build(base, baseCfg, env, desired.DefaultOptions())
	}
	approvals := cfg.Approvals
	if baseCfg != nil {
		approvals = plan.StricterApprovals(baseCfg.Approvals, cfg.Approvals)
	}
	highest := plan.Compare(env, baseSt, st, approvals).Highest
	if base == nil || r.governanceChanged(base, snap) {
		highest = config.Restricted
	}
	if highest == "" {
		d := approval.Decision{Allowed: true, Have: []string{}, Message: "no object changes: nothing to approve"}
		return &d, nil
	}
	if slices.Contains(r.approvedTrees, rev.Tree) {
		d := approval.PreviouslyApproved(highest, rev.Tree)
		return &d, nil
	}
	d, err := approval.Store{}.Decide(r.repo.Git(), trust, env, rev.Tree, highest, approvals[highest], time.Now())
	if err != nil {
		return nil, err
	}
	return &d, nil
}

// governanceChanged reports whether the trust file, strata.yaml or the
// policies differ between two snapshots.
func (r *Reconciler) governanceChanged(a, b *source.Snapshot) bool {
	for _, p := range governancePaths {
		if digestOf(a, p) != digestOf(b, p) {
			return true
		}
	}
	return false
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

// gateOf returns the gate decision cached for commit.
func (r *Reconciler) gateOf(commit string) *approval.Decision {
	if r.cache != nil && r.cache.commit == commit {
		return r.cache.gate
	}
	return nil
}

// rememberApproved records that tree was applied with the gate's consent.
func (r *Reconciler) rememberApproved(res *Result) {
	if res.Revision == nil || res.Failed() || res.Gate == nil || !res.Gate.Allowed {
		return
	}
	if !slices.Contains(r.approvedTrees, res.Revision.Tree) {
		r.approvedTrees = append(r.approvedTrees, res.Revision.Tree)
	}
}
