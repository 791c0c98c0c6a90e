package approval

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/strata-gitops/strata/internal/config"
)

var update = flag.Bool("update", false, "rewrite testdata/v1 with a new key and approval")

// TestApprovalV1Fixture verifies an approval note written by an earlier
// build: the statement format, the DSSE encoding and sigstore's signatures
// must stay readable, or approvals already in repositories would stop
// counting. Regenerate (only on purpose) with go test -run V1Fixture -update.
func TestApprovalV1Fixture(t *testing.T) {
	dir := filepath.Join("testdata", "v1")
	tree := "4b825dc642cb6eb9a060e54bf8d69288fbee4904" // the empty tree
	signed := time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)
	if *update {
		priv, pub, err := GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		s, err := LoadSigner(priv)
		if err != nil {
			t.Fatal(err)
		}
		e, err := Sign(s, Statement{Tree: tree, Environment: "prod", Reviewer: "alice", Time: signed,
			Commit: "1111111111111111111111111111111111111111"})
		if err != nil {
			t.Fatal(err)
		}
		note, err := FormatEnvelopes([]Envelope{e})
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		trust := "apiVersion: strata.dev/v1alpha1\nkind: Trust\n" + TrustSnippet("alice", pub)
		for name, data := range map[string][]byte{"trust.yaml": []byte(trust), "note": note} {
			if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	trustData, err := os.ReadFile(filepath.Join(dir, "trust.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	trust, err := config.ParseTrust("trust.yaml", trustData, nil)
	if err != nil {
		t.Fatal(err)
	}
	note, err := os.ReadFile(filepath.Join(dir, "note"))
	if err != nil {
		t.Fatal(err)
	}
	envs := ParseEnvelopes(note)
	d := Gate(trust, "prod", tree, config.Restricted, 1, signed.Add(24*time.Hour), envs)
	if !d.Allowed || d.Message != "restricted change needs 1 approval, has 1: alice" {
		t.Errorf("fixture approval: %s", d.Message)
	}
	want := Approval{Reviewer: "alice", Environment: "prod", Tree: tree, Commit: "1111111111111111111111111111111111111111",
		Time: signed, Expires: signed.Add(DefaultValidity)}
	if len(d.Approvals) != 1 || d.Approvals[0] != want {
		t.Errorf("fixture approval = %+v, want %+v", d.Approvals, want)
	}
	// 31 days later it has expired.
	if d := Gate(trust, "prod", tree, config.Restricted, 1, signed.Add(31*24*time.Hour), envs); d.Allowed {
		t.Errorf("fixture approval still valid after 31 days: %s", d.Message)
	}
}
