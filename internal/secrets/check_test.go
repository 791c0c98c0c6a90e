package secrets

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/strata-gitops/strata/internal/config"
	"github.com/strata-gitops/strata/internal/placement"
)

func demoConfig(k tierKeys) *config.Config {
	return &config.Config{
		Tiers: map[config.Sensitivity][]config.Tier{
			config.Public:       {config.PublicCloud, config.PrivateCloud, config.OnPrem},
			config.Internal:     {config.PrivateCloud, config.OnPrem},
			config.Confidential: {config.PrivateCloud, config.OnPrem},
			config.Restricted:   {config.OnPrem},
		},
		Secrets: config.Secrets{Recipients: k.recipients},
	}
}

func TestCheck(t *testing.T) {
	k := newTierKeys(t)
	stranger := newTierKeys(t, config.OnPrem).recipients[config.OnPrem]
	cfg := demoConfig(k)
	obj := placement.Object{Kind: "Secret", Namespace: "ledger", Name: "ledger-db", Source: "overlays/base/ledger/secret.yaml"}
	for _, tc := range []struct {
		name string
		item Item
		// rule is "" when the Secret passes; want are parts of the message.
		rule placement.Rule
		want []string
	}{
		{"restricted to on-prem", Item{Sensitivity: config.Restricted, Tiers: []config.Tier{config.OnPrem}, Encrypted: true, Recipients: k.of(config.OnPrem)}, "", nil},
		{"restricted readable by public-cloud", Item{Sensitivity: config.Restricted, Tiers: []config.Tier{config.OnPrem}, Encrypted: true, Recipients: k.of(config.PublicCloud, config.OnPrem)},
			RuleRecipients, []string{"readable by public-cloud", "restricted data may not reach", "strata secret encrypt overlays/base/ledger/secret.yaml"}},
		{"restricted to public-cloud only", Item{Sensitivity: config.Restricted, Tiers: []config.Tier{config.OnPrem}, Encrypted: true, Recipients: k.of(config.PublicCloud)},
			RuleRecipients, []string{"readable by public-cloud", "placed in on-prem but not encrypted to on-prem's recipient"}},
		{"confidential to private and on-prem", Item{Sensitivity: config.Confidential, Tiers: []config.Tier{config.PrivateCloud}, Encrypted: true, Recipients: k.of(config.PrivateCloud, config.OnPrem)}, "", nil},
		{"confidential placed where it cannot be read", Item{Sensitivity: config.Confidential, Tiers: []config.Tier{config.PrivateCloud}, Encrypted: true, Recipients: k.of(config.OnPrem)},
			RuleRecipients, []string{"placed in private-cloud but not encrypted to private-cloud's recipient"}},
		{"a key strata.yaml does not know", Item{Sensitivity: config.Restricted, Tiers: []config.Tier{config.OnPrem}, Encrypted: true, Recipients: append(k.of(config.OnPrem), stranger)},
			RuleRecipients, []string{"which is no tier's recipient"}},
		{"plaintext restricted", Item{Sensitivity: config.Restricted, Tiers: []config.Tier{config.OnPrem}}, RulePlaintext, []string{"plaintext restricted Secret", "strata secret encrypt"}},
		{"plaintext confidential", Item{Sensitivity: config.Confidential, Tiers: []config.Tier{config.PrivateCloud}}, RulePlaintext, nil},
		{"plaintext internal is allowed by default", Item{Sensitivity: config.Internal, Tiers: []config.Tier{config.PrivateCloud}}, "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.item.Object = obj
			vs := Check(cfg, tc.item)
			var rules []placement.Rule
			for _, v := range vs {
				rules = append(rules, v.Rule)
			}
			var want []placement.Rule
			if tc.rule != "" {
				want = []placement.Rule{tc.rule}
			}
			if diff := cmp.Diff(want, rules); diff != "" {
				t.Fatalf("rules (-want +got):\n%s\n%v", diff, vs)
			}
			for _, w := range tc.want {
				if !strings.Contains(vs[0].String(), w) {
					t.Errorf("violation lacks %q:\n%s", w, vs[0])
				}
			}
		})
	}
}

func TestCheckPlaintextConfigurable(t *testing.T) {
	k := newTierKeys(t)
	cfg := demoConfig(k)
	cfg.Secrets.PlaintextAllowedIn = []config.Sensitivity{config.Public}
	vs := Check(cfg, Item{Object: placement.Object{Kind: "Secret", Name: "x"}, Sensitivity: config.Internal, Tiers: []config.Tier{config.PrivateCloud}})
	if len(vs) != 1 || vs[0].Rule != RulePlaintext {
		t.Fatalf("violations = %v, want a plaintext internal Secret refused", vs)
	}
	cfg.Secrets = config.Secrets{}
	if vs := Check(cfg, Item{Sensitivity: config.Restricted}); len(vs) != 0 {
		t.Errorf("without secrets: in strata.yaml the check is off, got %v", vs)
	}
	if vs := Check(cfg, Item{Sensitivity: config.Restricted, Encrypted: true}); len(vs) != 1 {
		t.Errorf("an encrypted Secret without recipients in strata.yaml must be flagged, got %v", vs)
	}
}

func TestAllowedRecipients(t *testing.T) {
	k := newTierKeys(t)
	cfg := demoConfig(k)
	rs, tiers, err := AllowedRecipients(cfg, config.Confidential)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(k.of(config.PrivateCloud, config.OnPrem), rs); diff != "" {
		t.Errorf("recipients (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]config.Tier{config.PrivateCloud, config.OnPrem}, tiers); diff != "" {
		t.Errorf("tiers (-want +got):\n%s", diff)
	}
}
