package approval

import (
	"fmt"
	"strings"
	"time"

	"github.com/go-git/go-git/v5"

	"github.com/strata-gitops/strata/internal/config"
)

// Decision is the gate's verdict on one tree for one environment.
type Decision struct {
	// Allowed is true when the tree may be applied.
	Allowed bool `json:"allowed"`
	// Sensitivity is the highest sensitivity the change touches.
	Sensitivity config.Sensitivity `json:"sensitivity"`
	// Need is the number of approvals from distinct reviewers required.
	Need int `json:"need"`
	// Have lists the reviewers whose approvals count, sorted.
	Have []string `json:"have"`
	// Approvals are the approvals that count.
	Approvals []Approval `json:"approvals,omitempty"`
	// Rejected are the approvals that do not count, with reasons.
	Rejected []Rejection `json:"rejected,omitempty"`
	// Message says in one line what is there and what is missing, e.g.
	// "restricted change needs 2 approvals, has 1: alice".
	Message string `json:"message"`
}

// Gate decides whether tree may be applied to env. highest is the highest
// sensitivity of any object changed since the last applied revision,
// required the number of approvals strata.yaml asks for it, trust the trust
// file of the last applied revision (a change of the trust file is approved
// under the old one). An approval counts when Verify accepts it and its
// reviewer may approve env at highest (a reviewer limited to internal does
// not count for a restricted change).
//
// A tree that was applied and approved before (a rollback target) needs no
// new approval: the caller passes required 0 for it.
func Gate(trust *config.Trust, env, tree string, highest config.Sensitivity, required int, now time.Time, envs []Envelope) Decision {
	return GateWith(GateInput{Trust: trust, Env: env, Tree: tree, Highest: highest, Required: required, Clock: Clock{Now: now}, Envelopes: envs})
}

// GateInput is everything one gate decision is made from.
type GateInput struct {
	// Trust is the trust file of the base (a change of the trust file is
	// approved under the old one).
	Trust     *config.Trust
	Env, Tree string
	// Highest is the highest sensitivity the change touches and Required
	// the approvals it needs (see Needed).
	Highest  config.Sensitivity
	Required int
	Clock    Clock
	// Envelopes are the approvals stored for Tree.
	Envelopes []Envelope
	// Excluded maps a reviewer to why their approval does not count for
	// this change (they authored or committed part of it: four eyes).
	Excluded map[string]string
}

// GateWith decides one change; see Gate.
func GateWith(in GateInput) Decision {
	trust, env, highest := in.Trust, in.Env, in.Highest
	d := Decision{Sensitivity: highest, Need: max(in.Required, 0), Have: []string{}}
	valid, rejected := VerifyAt(trust, env, in.Tree, in.Clock, in.Envelopes)
	d.Rejected = rejected
	if trust == nil {
		trust = &config.Trust{}
	}
	for _, a := range valid {
		if why, ok := in.Excluded[a.Reviewer]; ok {
			d.Rejected = append(d.Rejected, Rejection{Reviewer: a.Reviewer, Reason: why})
			continue
		}
		r, _ := trust.Reviewer(a.Reviewer)
		if highest.Valid() && !r.MayApprove(env, highest) {
			maxS := r.MaxSensitivity
			if maxS == "" {
				maxS = config.Restricted
			}
			d.Rejected = append(d.Rejected, Rejection{Reviewer: a.Reviewer,
				Reason: fmt.Sprintf("may approve changes up to %s, this one is %s", maxS, highest)})
			continue
		}
		d.Approvals = append(d.Approvals, a)
		d.Have = append(d.Have, a.Reviewer)
	}
	subject := "change"
	if highest != "" {
		subject = string(highest) + " change"
	}
	if d.Need == 0 {
		d.Allowed = true
		d.Message = subject + " needs no approval"
		return d
	}
	var b strings.Builder
	if !highest.Valid() {
		// Fail closed: without a known sensitivity no reviewer's limit can be checked.
		fmt.Fprintf(&b, "change of unknown sensitivity %q cannot be approved", highest)
		d.Approvals, d.Have = nil, []string{}
	} else {
		noun := "approvals"
		if d.Need == 1 {
			noun = "approval"
		}
		fmt.Fprintf(&b, "%s needs %d %s, has %d", subject, d.Need, noun, len(d.Have))
		if len(d.Have) > 0 {
			fmt.Fprintf(&b, ": %s", strings.Join(d.Have, ", "))
		}
		d.Allowed = len(d.Have) >= d.Need
	}
	for _, r := range d.Rejected {
		fmt.Fprintf(&b, "; rejected %s", r)
	}
	d.Message = b.String()
	return d
}

// PreviouslyApproved is the decision for a tree that was applied and
// approved before (a rollback target): it needs no new approval.
func PreviouslyApproved(highest config.Sensitivity, tree string) Decision {
	return Decision{Allowed: true, Sensitivity: highest, Have: []string{},
		Message: fmt.Sprintf("%s change to tree %s, applied and approved before, needs no new approval", highest, shortHash(tree))}
}

// Decide lists the approvals stored for tree and gates them (see Gate).
func (s Store) Decide(repo *git.Repository, trust *config.Trust, env, tree string, highest config.Sensitivity, required int, now time.Time) (Decision, error) {
	envs, err := s.List(repo, tree)
	if err != nil {
		return Decision{}, fmt.Errorf("reading the approvals of tree %s: %w", shortHash(tree), err)
	}
	return Gate(trust, env, tree, highest, required, now, envs), nil
}
