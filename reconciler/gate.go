package reconciler

import (
	"fmt"

	"github.com/strata-gitops/strata/internal/approval"
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

// GateUnknownError is a revision the gate could not judge (its history,
// its approved base or its approvals could not be read): refused, since
// never judging is never approving.
type GateUnknownError struct {
	Revision string
	Err      error
}

func (e *GateUnknownError) Error() string {
	return fmt.Sprintf("revision %s cannot be judged by the approval gate, so nothing is applied: %v; fix the repository or its approvals notes and strata retries", short(e.Revision), e.Err)
}

func (e *GateUnknownError) Unwrap() error { return e.Err }

// gate decides, from git alone (approval.Chain), whether rev may be applied.
// Nothing read from a cluster takes part: an inventory can make strata
// refuse (the history check), never apply.
func (r *Reconciler) gate(rev *source.Revision) (*approval.Verdict, error) {
	v, err := r.chain.Decide(rev.Commit, r.opts.Now())
	if err != nil {
		return nil, &GateUnknownError{Revision: rev.Commit, Err: err}
	}
	r.recordGate(v)
	return v, nil
}

// recordGate says loudly when the gate is off or its trust unpinned.
func (r *Reconciler) recordGate(v *approval.Verdict) {
	env, m := r.opts.Environment, r.opts.Metrics
	m.GateEnforced.WithLabelValues(env).Set(boolGauge(v.Enforced))
	m.TrustPinned.WithLabelValues(env).Set(boolGauge(v.Pinned))
	if !v.Allowed {
		m.GateRefusals.WithLabelValues(env).Inc()
	}
	if !v.Enforced {
		r.opts.Log.Warn("the approval gate is OFF: revisions are applied without signed approvals", "environment", env, "commit", short(v.Commit), "gate", v.Message)
	}
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// gateOf returns the gate decision cached for commit.
func (r *Reconciler) gateOf(commit string) *approval.Verdict {
	if r.cache != nil && r.cache.commit == commit {
		return r.cache.gate
	}
	return nil
}
