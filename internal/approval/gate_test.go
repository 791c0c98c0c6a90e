package approval

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/strata-gitops/strata/internal/config"
)

func TestGate(t *testing.T) {
	trust := trustOf(t,
		reviewer(t, "alice", nil, ""),
		reviewer(t, "bob", nil, ""),
		reviewer(t, "carol", nil, config.Internal),
		reviewer(t, "dave", []string{"dev"}, ""),
	)
	alice := sign(t, "alice", stmt("alice", "prod", treeA))
	bob := sign(t, "bob", stmt("bob", "prod", treeA))
	carol := sign(t, "carol", stmt("carol", "prod", treeA))
	bobExpired := sign(t, "bob", Statement{Tree: treeA, Environment: "prod", Reviewer: "bob",
		Time: now.Add(-48 * time.Hour), Expires: now.Add(-24 * time.Hour)})
	forged := sign(t, "mallory", stmt("bob", "prod", treeA))

	tests := []struct {
		name     string
		highest  config.Sensitivity
		required int
		envs     []Envelope
		allowed  bool
		have     []string
		message  string
	}{{
		name: "public change needs no approval", highest: config.Public, required: 0,
		allowed: true, have: []string{},
		message: "public change needs no approval",
	}, {
		name: "no approval needed even with approvals present", highest: config.Public, required: 0,
		envs:    []Envelope{alice},
		allowed: true, have: []string{"alice"},
		message: "public change needs no approval",
	}, {
		name: "restricted, none", highest: config.Restricted, required: 2,
		have:    []string{},
		message: "restricted change needs 2 approvals, has 0",
	}, {
		name: "restricted, one", highest: config.Restricted, required: 2,
		envs:    []Envelope{alice},
		have:    []string{"alice"},
		message: "restricted change needs 2 approvals, has 1: alice",
	}, {
		name: "restricted, two", highest: config.Restricted, required: 2,
		envs:    []Envelope{bob, alice},
		allowed: true, have: []string{"alice", "bob"},
		message: "restricted change needs 2 approvals, has 2: alice, bob",
	}, {
		name: "restricted, one plus rejected ones with reasons", highest: config.Restricted, required: 2,
		envs: []Envelope{alice, bobExpired, forged},
		have: []string{"alice"},
		message: "restricted change needs 2 approvals, has 1: alice" +
			"; rejected bob: expired at 2026-02-28T12:00:00Z: approve again (an approval counts for at most 720h0m0s, approvals.maxLifetime)" +
			"; rejected bob: bad signature: it does not verify with bob's key in .strata/trust.yaml, so it is forged or was altered after signing",
	}, {
		name: "duplicate approvals of one reviewer count once", highest: config.Restricted, required: 2,
		envs: []Envelope{alice, sign(t, "alice", Statement{Tree: treeA, Environment: "prod", Reviewer: "alice", Time: now.Add(-3 * time.Hour)})},
		have: []string{"alice"},
		message: "restricted change needs 2 approvals, has 1: alice" +
			"; rejected alice: duplicate approval, counted once",
	}, {
		name: "a reviewer limited to internal does not count for restricted", highest: config.Restricted, required: 2,
		envs: []Envelope{alice, carol},
		have: []string{"alice"},
		message: "restricted change needs 2 approvals, has 1: alice" +
			"; rejected carol: may approve changes up to internal, this one is restricted",
	}, {
		name: "a reviewer limited to internal counts for internal", highest: config.Internal, required: 1,
		envs:    []Envelope{carol},
		allowed: true, have: []string{"carol"},
		message: "internal change needs 1 approval, has 1: carol",
	}, {
		name: "a reviewer limited to dev", highest: config.Internal, required: 1,
		envs: []Envelope{sign(t, "dave", stmt("dave", "prod", treeA))},
		have: []string{},
		message: "internal change needs 1 approval, has 0" +
			"; rejected dave: may not approve environment prod: .strata/trust.yaml allows only dev",
	}, {
		name: "more approvals than needed", highest: config.Confidential, required: 1,
		envs:    []Envelope{alice, bob, carol},
		allowed: true, have: []string{"alice", "bob"},
		message: "confidential change needs 1 approval, has 2: alice, bob" +
			"; rejected carol: may approve changes up to internal, this one is confidential",
	}, {
		name: "unknown sensitivity fails closed", highest: "secret", required: 1,
		envs:    []Envelope{alice},
		have:    []string{},
		message: `change of unknown sensitivity "secret" cannot be approved`,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := Gate(trust, "prod", treeA, tc.highest, tc.required, now, tc.envs)
			if d.Allowed != tc.allowed {
				t.Errorf("Allowed = %v, want %v (%s)", d.Allowed, tc.allowed, d.Message)
			}
			if d.Message != tc.message {
				t.Errorf("Message\n got %q\nwant %q", d.Message, tc.message)
			}
			if diff := cmp.Diff(tc.have, d.Have); diff != "" {
				t.Errorf("Have (-want +got):\n%s", diff)
			}
			if d.Need != tc.required || d.Sensitivity != tc.highest {
				t.Errorf("Need, Sensitivity = %d, %s; want %d, %s", d.Need, d.Sensitivity, tc.required, tc.highest)
			}
		})
	}
}

// TestGateTrustChange: the gate judges with the trust file of the last
// applied revision. A revision that adds carol to the trust file cannot be
// approved by carol: under the old trust her approval does not count.
func TestGateTrustChange(t *testing.T) {
	oldTrust := trustOf(t, reviewer(t, "alice", nil, ""), reviewer(t, "bob", nil, ""))
	newTrust := trustOf(t, reviewer(t, "alice", nil, ""), reviewer(t, "bob", nil, ""), reviewer(t, "carol", nil, ""))
	envs := []Envelope{
		sign(t, "alice", stmt("alice", "prod", treeA)),
		sign(t, "carol", stmt("carol", "prod", treeA)),
	}

	d := Gate(oldTrust, "prod", treeA, config.Restricted, 2, now, envs)
	if d.Allowed {
		t.Errorf("under the old trust the change is allowed: %s", d.Message)
	}
	want := "restricted change needs 2 approvals, has 1: alice; rejected carol: not a reviewer in .strata/trust.yaml"
	if d.Message != want {
		t.Errorf("old trust message\n got %q\nwant %q", d.Message, want)
	}

	// Once the trust change is applied (approved by alice and bob), carol counts.
	d = Gate(newTrust, "prod", treeA, config.Restricted, 2, now, envs)
	if !d.Allowed || d.Message != "restricted change needs 2 approvals, has 2: alice, carol" {
		t.Errorf("new trust: allowed %v, %q", d.Allowed, d.Message)
	}

	// Removing a reviewer from the trust file takes effect the same way.
	d = Gate(trustOf(t, reviewer(t, "carol", nil, "")), "prod", treeA, config.Restricted, 1, now, envs)
	if d.Message != "restricted change needs 1 approval, has 1: carol; rejected alice: not a reviewer in .strata/trust.yaml" {
		t.Errorf("removed reviewer: %q", d.Message)
	}
}

func TestPreviouslyApproved(t *testing.T) {
	d := PreviouslyApproved(config.Restricted, treeA)
	if !d.Allowed || d.Message != "restricted change to tree a1a1a1a1a1a1, applied and approved before, needs no new approval" {
		t.Errorf("%+v", d)
	}
}
