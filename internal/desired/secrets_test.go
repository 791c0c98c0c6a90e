package desired_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/strata-gitops/strata/internal/config"
	"github.com/strata-gitops/strata/internal/desired"
	"github.com/strata-gitops/strata/internal/placement"
	"github.com/strata-gitops/strata/internal/secrets"
)

func secretManifest(name, ns, sens string) string {
	return "apiVersion: v1\nkind: Secret\nmetadata:\n  name: " + name + "\n  namespace: " + ns +
		"\n  labels:\n    strata.dev/sensitivity: " + sens + "\nstringData:\n  password: hunter2-" + name + "\n"
}

// Render keeps the ciphertext and the recipient check sees who can read
// each Secret: a restricted Secret readable by public-cloud is a violation
// naming its file, while correctly encrypted ones pass and their committed
// files are found for the reconciler.
func TestBuildChecksSecretRecipients(t *testing.T) {
	recipients := map[config.Tier]string{}
	for _, tier := range config.KnownTiers {
		_, r, err := secrets.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		recipients[tier] = r
	}
	enc := func(name, ns, sens string, tiers ...config.Tier) string {
		var rs []string
		for _, tr := range tiers {
			rs = append(rs, recipients[tr])
		}
		b, err := secrets.Encrypt([]byte(secretManifest(name, ns, sens)), rs)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	cfgYAML := strataYAML + "secrets:\n  recipients:\n"
	for _, tier := range config.KnownTiers {
		cfgYAML += "    " + string(tier) + ": " + recipients[tier] + "\n"
	}
	files := map[string]string{
		"strata.yaml":                      cfgYAML,
		"overlays/base/kustomization.yaml": "resources:\n- ledger-secret.yaml\n- fraud-secret.yaml\n",
		"overlays/base/ledger-secret.yaml": enc("ledger-db", "ledger", "restricted", config.OnPrem),
		"overlays/base/fraud-secret.yaml":  enc("scoring", "fraud", "confidential", config.PrivateCloud, config.OnPrem),
		// commonLabels changes what the MAC covers: decryption must use the file.
		"overlays/prod/kustomization.yaml": "resources:\n- ../base\ncommonLabels:\n  team: finance\n",
	}
	snap := snapshot(t, "c0ffee", files)
	cfg, err := desired.LoadConfig(snap)
	if err != nil {
		t.Fatal(err)
	}
	st, err := desired.Build(snap, cfg, "prod", desired.DefaultOptions())
	if err != nil {
		t.Fatalf("correctly encrypted Secrets refused: %v", err)
	}
	if len(st.Sources) != 2 {
		t.Errorf("found %d SOPS files, want 2", len(st.Sources))
	}
	for _, o := range st.Objects {
		if m := o.Map(); !secrets.IsEncryptedManifest(m) {
			t.Errorf("%s lost its SOPS metadata in the render", o.Key())
		}
		if b, _ := json.Marshal(o.Map()); strings.Contains(string(b), "hunter2") {
			t.Errorf("plaintext in the render of %s", o.Key())
		}
	}

	// A restricted Secret encrypted to the public-cloud recipient.
	files["overlays/base/ledger-secret.yaml"] = enc("ledger-db", "ledger", "restricted", config.PublicCloud)
	// A plaintext confidential Secret.
	files["overlays/base/fraud-secret.yaml"] = secretManifest("scoring", "fraud", "confidential")
	snap = snapshot(t, "c0ffee", files)
	_, err = desired.Build(snap, cfg, "prod", desired.DefaultOptions())
	var ve *placement.ViolationsError
	if !errors.As(err, &ve) {
		t.Fatalf("err = %v, want violations", err)
	}
	got := map[placement.Rule]string{}
	for _, v := range ve.Violations {
		got[v.Rule] = v.String()
	}
	for rule, want := range map[placement.Rule][]string{
		secrets.RuleRecipients: {"Secret ledger/ledger-db", "overlays/base/ledger-secret.yaml", "readable by public-cloud", "strata secret encrypt"},
		secrets.RulePlaintext:  {"Secret fraud/scoring", "plaintext confidential Secret"},
	} {
		for _, w := range want {
			if !strings.Contains(got[rule], w) {
				t.Errorf("[%s] violation lacks %q: %q", rule, w, got[rule])
			}
		}
	}
}
