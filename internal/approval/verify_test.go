package approval

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/strata-gitops/strata/internal/config"
)

func TestVerify(t *testing.T) {
	trust := trustOf(t,
		reviewer(t, "alice", nil, ""),
		reviewer(t, "bob", nil, ""),
		reviewer(t, "carol", []string{"dev", "staging"}, ""),
	)
	aliceOK := sign(t, "alice", stmt("alice", "prod", treeA))

	tests := []struct {
		name     string
		noTrust  bool
		envs     []Envelope
		valid    []string
		rejected []string // "reviewer: reason" prefixes, in order
	}{{
		name:  "valid approval",
		envs:  []Envelope{aliceOK},
		valid: []string{"alice"},
	}, {
		name:  "two reviewers, sorted",
		envs:  []Envelope{sign(t, "bob", stmt("bob", "prod", treeA)), aliceOK},
		valid: []string{"alice", "bob"},
	}, {
		name:     "forged: bob's key claims alice",
		envs:     []Envelope{sign(t, "bob", stmt("alice", "prod", treeA))},
		rejected: []string{"alice: forged: signed with bob's key, not alice's"},
	}, {
		name:     "forged: an unknown key claims alice",
		envs:     []Envelope{sign(t, "mallory", stmt("alice", "prod", treeA))},
		rejected: []string{"alice: bad signature: it does not verify with alice's key in .strata/trust.yaml, so it is forged or was altered after signing"},
	}, {
		name:     "tampered payload: environment changed after signing",
		envs:     []Envelope{tamper(t, sign(t, "alice", stmt("alice", "staging", treeA)), func(m map[string]any) { m["environment"] = "prod" })},
		rejected: []string{"alice: bad signature: it does not verify with alice's key"},
	}, {
		name:     "tampered payload: expiry extended after signing",
		envs:     []Envelope{tamper(t, aliceOK, func(m map[string]any) { m["expires"] = "2099-01-01T00:00:00Z" })},
		rejected: []string{"alice: bad signature"},
	}, {
		name: "tampered payload type",
		envs: []Envelope{func() Envelope {
			e := aliceOK
			e.PayloadType = "application/vnd.in-toto+json"
			return e
		}()},
		rejected: []string{`unreadable approval: payloadType is "application/vnd.in-toto+json", want "application/vnd.strata.approval+json"`},
	}, {
		name: "expired (default 30 days)",
		envs: []Envelope{sign(t, "alice", Statement{Tree: treeA, Environment: "prod", Reviewer: "alice",
			Time: now.Add(-31 * 24 * time.Hour)})},
		rejected: []string{"alice: expired at 2026-02-28T12:00:00Z: approve again"},
	}, {
		name: "expired (explicit expiry)",
		envs: []Envelope{sign(t, "alice", Statement{Tree: treeA, Environment: "prod", Reviewer: "alice",
			Time: now.Add(-2 * time.Hour), Expires: now.Add(-time.Hour)})},
		rejected: []string{"alice: expired at 2026-03-01T11:00:00Z"},
	}, {
		name: "expires exactly now",
		envs: []Envelope{sign(t, "alice", Statement{Tree: treeA, Environment: "prod", Reviewer: "alice",
			Time: now.Add(-2 * time.Hour), Expires: now})},
		rejected: []string{"alice: expired at 2026-03-01T12:00:00Z"},
	}, {
		name: "future-dated within clock skew counts",
		envs: []Envelope{sign(t, "alice", Statement{Tree: treeA, Environment: "prod", Reviewer: "alice",
			Time: now.Add(4 * time.Minute)})},
		valid: []string{"alice"},
	}, {
		name: "future-dated beyond clock skew",
		envs: []Envelope{sign(t, "alice", Statement{Tree: treeA, Environment: "prod", Reviewer: "alice",
			Time: now.Add(10 * time.Minute)})},
		rejected: []string{"alice: signed at 2026-03-01T12:10:00Z, more than 5m0s in the future: check the signer's clock"},
	}, {
		name: "duplicate reviewer counts once, the latest is kept",
		envs: []Envelope{
			aliceOK,
			sign(t, "alice", Statement{Tree: treeA, Environment: "prod", Reviewer: "alice", Time: now.Add(-time.Minute)}),
		},
		valid:    []string{"alice"},
		rejected: []string{"alice: duplicate approval, counted once"},
	}, {
		name:     "wrong environment",
		envs:     []Envelope{sign(t, "alice", stmt("alice", "staging", treeA))},
		rejected: []string{"alice: approves environment staging, not prod"},
	}, {
		name:     "wrong tree",
		envs:     []Envelope{sign(t, "alice", stmt("alice", "prod", treeB))},
		rejected: []string{"alice: approves tree b2b2b2b2b2b2, not a1a1a1a1a1a1: the content changed after the approval, approve the new revision"},
	}, {
		name:     "reviewer not in trust",
		envs:     []Envelope{sign(t, "mallory", stmt("mallory", "prod", treeA))},
		rejected: []string{"mallory: not a reviewer in .strata/trust.yaml"},
	}, {
		name:     "reviewer not allowed for the environment",
		envs:     []Envelope{sign(t, "carol", stmt("carol", "prod", treeA))},
		rejected: []string{"carol: may not approve environment prod: .strata/trust.yaml allows only dev, staging"},
	}, {
		name:     "nil trust rejects everyone",
		noTrust:  true,
		envs:     []Envelope{aliceOK},
		rejected: []string{"alice: not a reviewer in .strata/trust.yaml"},
	}, {
		name: "two signatures",
		envs: []Envelope{func() Envelope {
			e := aliceOK
			e.Signatures = append(e.Signatures, sign(t, "bob", stmt("alice", "prod", treeA)).Signatures...)
			return e
		}()},
		rejected: []string{"alice: envelope has 2 signatures, want exactly 1"},
	}, {
		name:     "unreadable line next to a valid one",
		envs:     append(ParseEnvelopes([]byte("not json\n")), aliceOK),
		valid:    []string{"alice"},
		rejected: []string{"unreadable approval: not a DSSE envelope"},
	}, {
		name: "unknown statement field",
		envs: []Envelope{tamper(t, aliceOK, func(m map[string]any) { m["sensitivity"] = "public" })},
		rejected: []string{
			`unreadable approval: statement is not valid JSON: json: unknown field "sensitivity"`,
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := trust
			if tc.noTrust {
				tr = nil
			}
			valid, rejected := Verify(tr, "prod", treeA, now, tc.envs)
			var got []string
			for _, a := range valid {
				got = append(got, a.Reviewer)
				if a.Tree != treeA || a.Environment != "prod" {
					t.Errorf("valid approval %+v is not for tree A in prod", a)
				}
			}
			if diff := cmp.Diff(tc.valid, got); diff != "" {
				t.Errorf("valid reviewers (-want +got):\n%s", diff)
			}
			if len(rejected) != len(tc.rejected) {
				t.Fatalf("rejected = %q, want %d matching %q", rejected, len(tc.rejected), tc.rejected)
			}
			for i, r := range rejected {
				if !strings.HasPrefix(r.String(), tc.rejected[i]) {
					t.Errorf("rejection %d = %q, want prefix %q", i, r, tc.rejected[i])
				}
			}
		})
	}
}

// TestVerifySameKeyTwice guards against a trust file that lists one key for
// two names (Trust.Validate refuses it, Verify does not rely on that).
func TestVerifySameKeyTwice(t *testing.T) {
	trust := &config.Trust{Reviewers: []config.Reviewer{
		reviewer(t, "alice", nil, ""),
		{Name: "alice2", PublicKey: key(t, "alice").pub},
	}}
	valid, rejected := Verify(trust, "prod", treeA, now, []Envelope{
		sign(t, "alice", stmt("alice", "prod", treeA)),
		sign(t, "alice", Statement{Tree: treeA, Environment: "prod", Reviewer: "alice2", Time: now.Add(-2 * time.Hour)}),
	})
	if len(valid) != 1 || valid[0].Reviewer != "alice" {
		t.Errorf("valid = %+v, want alice only", valid)
	}
	if len(rejected) != 1 || !strings.HasPrefix(rejected[0].String(), "alice2: signed with the same key as alice, counted once") {
		t.Errorf("rejected = %q", rejected)
	}
}

func TestVerifyUnusableTrustKey(t *testing.T) {
	trust := &config.Trust{Reviewers: []config.Reviewer{{Name: "alice", PublicKey: "garbage"}}}
	_, rejected := Verify(trust, "prod", treeA, now, []Envelope{sign(t, "alice", stmt("alice", "prod", treeA))})
	if len(rejected) != 1 || !strings.HasPrefix(rejected[0].String(), "alice: the publicKey in .strata/trust.yaml cannot be used") {
		t.Errorf("rejected = %q", rejected)
	}
}

func TestSignRefusesBadStatements(t *testing.T) {
	for name, st := range map[string]Statement{
		"short tree":         {Tree: "abc", Environment: "prod", Reviewer: "alice"},
		"no environment":     {Tree: treeA, Reviewer: "alice"},
		"no reviewer":        {Tree: treeA, Environment: "prod"},
		"expires before":     {Tree: treeA, Environment: "prod", Reviewer: "alice", Time: now, Expires: now.Add(-time.Second)},
		"uppercase tree":     {Tree: strings.ToUpper(treeA), Environment: "prod", Reviewer: "alice"},
		"abbreviated commit": {Tree: treeA, Environment: "prod", Reviewer: "alice", Commit: "abc123"},
	} {
		if _, err := Sign(key(t, "alice").signer, st); err == nil {
			t.Errorf("%s: Sign accepted %+v", name, st)
		}
	}
}

func TestStatementFormat(t *testing.T) {
	e := sign(t, "alice", Statement{Tree: treeA, Environment: "prod", Reviewer: "alice",
		Time: time.Date(2026, 3, 1, 11, 0, 0, 123456789, time.FixedZone("CET", 3600)), Commit: treeB})
	st, err := e.Statement()
	if err != nil {
		t.Fatal(err)
	}
	payload := mustDecode(t, e.Payload)
	want := `{"_type":"https://strata.dev/approval/v1","tree":"` + treeA + `","environment":"prod","reviewer":"alice",` +
		`"time":"2026-03-01T10:00:00Z","expires":"2026-03-31T10:00:00Z","commit":"` + treeB + `"}`
	if string(payload) != want {
		t.Errorf("payload\n got %s\nwant %s", payload, want)
	}
	if e.PayloadType != PayloadType || len(e.Signatures) != 1 || e.Signatures[0].Sig == "" {
		t.Errorf("envelope = %+v", e)
	}
	if !st.ExpiresAt().Equal(st.Time.Add(DefaultValidity)) {
		t.Errorf("expires %s, want time + 30 days", st.ExpiresAt())
	}
}

func mustDecode(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
