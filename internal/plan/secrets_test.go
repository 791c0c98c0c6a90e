package plan_test

import (
	"strings"
	"testing"

	"github.com/getsops/sops/v3/cmd/sops/formats"

	"github.com/strata-gitops/strata/internal/config"
	"github.com/strata-gitops/strata/internal/desired"
	"github.com/strata-gitops/strata/internal/plan"
	"github.com/strata-gitops/strata/internal/secrets"
)

// plan runs without private keys: it shows that an encrypted Secret
// changed, which of its keys and who can read it, never a value.
func TestCompareEncryptedSecretShowsKeysAndRecipientsOnly(t *testing.T) {
	recipients := map[config.Tier]string{}
	for _, tier := range config.KnownTiers {
		_, r, err := secrets.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		recipients[tier] = r
	}
	cfg := strataYAML + "secrets:\n  recipients:\n"
	for _, tier := range config.KnownTiers {
		cfg += "    " + string(tier) + ": " + recipients[tier] + "\n"
	}
	build := func(commit, values string) *desired.State {
		t.Helper()
		enc, err := secrets.Encrypt([]byte("apiVersion: v1\nkind: Secret\nmetadata:\n  name: ledger-db\n  namespace: ledger\n  labels:\n    strata.dev/sensitivity: restricted\nstringData:\n"+values), []string{recipients[config.OnPrem]})
		if err != nil {
			t.Fatal(err)
		}
		snap := snapshot(t, commit, map[string]string{
			"strata.yaml":                      cfg,
			"overlays/prod/kustomization.yaml": "resources:\n- secret.yaml\n",
			"overlays/prod/secret.yaml":        string(enc),
		})
		c, err := desired.LoadConfig(snap)
		if err != nil {
			t.Fatal(err)
		}
		st, err := desired.Build(snap, c, "prod", desired.DefaultOptions())
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	base := build(baseCommit, "  password: old-ledger-password\n")
	head := build(headCommit, "  password: new-ledger-password\n  user: ledger\n")
	got := plan.Compare("prod", base, head, map[config.Sensitivity]int{config.Restricted: 2})
	d := diffOf(t, got, "onprem", "Secret ledger/ledger-db")
	for _, want := range []string{"+  user: (masked", "+  password: (masked", recipients[config.OnPrem]} {
		if !strings.Contains(d, want) {
			t.Errorf("diff lacks %q:\n%s", want, d)
		}
	}
	for _, never := range []string{"ledger-password", "ENC[", "enc: |", "mac:"} {
		if strings.Contains(d, never) {
			t.Errorf("diff shows %q:\n%s", never, d)
		}
	}
}

// A Secret a secretGenerator makes from an encrypted dotenv file, across a
// rotation of the on-prem key: the diff names the changed lines and the
// recipients, never a value or SOPS' sops_* lines.
func TestCompareGeneratedDotenvSecretShowsKeysAndRecipientsOnly(t *testing.T) {
	build := func(commit, env string) (*desired.State, string) {
		t.Helper()
		cfg := strataYAML + "secrets:\n  recipients:\n"
		var onprem string
		for _, tier := range config.KnownTiers {
			_, r, err := secrets.GenerateKey()
			if err != nil {
				t.Fatal(err)
			}
			if tier == config.OnPrem {
				onprem = r
			}
			cfg += "    " + string(tier) + ": " + r + "\n"
		}
		enc, err := secrets.EncryptFile([]byte(env), formats.Dotenv, []string{onprem})
		if err != nil {
			t.Fatal(err)
		}
		snap := snapshot(t, commit, map[string]string{
			"strata.yaml": cfg,
			"overlays/prod/kustomization.yaml": "secretGenerator:\n- name: ledger-db\n  namespace: ledger\n  envs: [db.env]\n" +
				"  options: {disableNameSuffixHash: true, labels: {strata.dev/sensitivity: restricted}}\n",
			"overlays/prod/db.env": string(enc),
		})
		c, err := desired.LoadConfig(snap)
		if err != nil {
			t.Fatal(err)
		}
		st, err := desired.Build(snap, c, "prod", desired.DefaultOptions())
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Placement.Violations) > 0 {
			t.Fatalf("violations: %v", st.Placement.Violations)
		}
		return st, onprem
	}
	base, oldR := build(baseCommit, "PASSWORD=old-ledger-password\n")
	head, newR := build(headCommit, "PASSWORD=new-ledger-password\nUSER=ledger\n")
	got := plan.Compare("prod", base, head, map[config.Sensitivity]int{config.Restricted: 2})
	d := diffOf(t, got, "onprem", "Secret ledger/ledger-db")
	for _, want := range []string{"+  USER: (masked", "+  PASSWORD: (masked", "encryptedTo", "-  - " + oldR, "+  - " + newR} {
		if !strings.Contains(d, want) {
			t.Errorf("diff lacks %q:\n%s", want, d)
		}
	}
	for _, never := range []string{"ledger-password", "ENC[", "sops_"} {
		if strings.Contains(d, never) {
			t.Errorf("diff shows %q:\n%s", never, d)
		}
	}
}
