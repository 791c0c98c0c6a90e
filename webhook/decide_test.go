package webhook

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/strata-gitops/strata/internal/config"
	"github.com/strata-gitops/strata/internal/labels"
)

func sens(v string) map[string]string { return map[string]string{labels.Sensitivity: v} }

func TestCheck(t *testing.T) {
	tiers := config.DefaultTiers()
	tests := []struct {
		name          string
		tier          config.Tier
		denyUnlabeled bool
		subject       Subject
		wantAllowed   bool
		wantRule      string
		wantSens      config.Sensitivity
		wantInMessage []string
	}{
		{name: "restricted object in public cloud is denied", tier: config.PublicCloud,
			subject:  Subject{Kind: "Deployment", Namespace: "ledger", Name: "ledger", Labels: sens("restricted")},
			wantRule: RuleTierNotAllowed, wantSens: config.Restricted,
			wantInMessage: []string{"Deployment ledger/ledger is restricted (label on the object)", "cluster public is in tier public-cloud", "allowed only in [on-prem]", "deploy it through strata"}},
		{name: "restricted object on-prem is allowed", tier: config.OnPrem,
			subject:     Subject{Kind: "Deployment", Namespace: "ledger", Name: "ledger", Labels: sens("restricted")},
			wantAllowed: true, wantSens: config.Restricted},
		{name: "namespace floor raises an internal object", tier: config.PrivateCloud,
			subject:  Subject{Kind: "ConfigMap", Namespace: "ledger", Name: "c", Labels: sens("internal"), NamespaceLabels: sens("restricted")},
			wantRule: RuleTierNotAllowed, wantSens: config.Restricted, wantInMessage: []string{"floor of Namespace ledger"}},
		{name: "unlabeled object inherits the floor", tier: config.PublicCloud,
			subject:  Subject{Kind: "ConfigMap", Namespace: "fraud", Name: "c", NamespaceLabels: sens("confidential")},
			wantRule: RuleTierNotAllowed, wantSens: config.Confidential},
		{name: "object label above the floor wins", tier: config.OnPrem,
			subject:     Subject{Kind: "ConfigMap", Namespace: "risk", Name: "c", Labels: sens("restricted"), NamespaceLabels: sens("internal")},
			wantAllowed: true, wantSens: config.Restricted},
		{name: "a Namespace is checked by its own label", tier: config.PublicCloud,
			subject:  Subject{Kind: "Namespace", Name: "ledger", ClusterScoped: true, Labels: sens("restricted")},
			wantRule: RuleTierNotAllowed, wantSens: config.Restricted, wantInMessage: []string{"Namespace ledger is restricted"}},
		{name: "unknown sensitivity is denied", tier: config.OnPrem,
			subject:  Subject{Kind: "Secret", Namespace: "a", Name: "s", Labels: sens("secret")},
			wantRule: RuleUnknownSensitivity, wantInMessage: []string{`"secret"`, "public, internal, confidential, restricted"}},
		{name: "unknown namespace sensitivity is denied", tier: config.OnPrem,
			subject:  Subject{Kind: "Secret", Namespace: "a", Name: "s", NamespaceLabels: sens("top")},
			wantRule: RuleUnknownSensitivity, wantInMessage: []string{"Namespace a", `"top"`}},
		{name: "unlabeled in unlabeled namespace denied on-prem", tier: config.OnPrem, denyUnlabeled: true,
			subject:  Subject{Kind: "Deployment", Namespace: "scratch", Name: "x", NamespaceLabels: map[string]string{}},
			wantRule: RuleUnlabeled, wantInMessage: []string{"no strata.dev/sensitivity label", "label the object or its Namespace"}},
		{name: "unlabeled in unlabeled namespace allowed in public cloud", tier: config.PublicCloud,
			subject:     Subject{Kind: "Deployment", Namespace: "scratch", Name: "x"},
			wantAllowed: true},
		{name: "unlabeled cluster-scoped object passes", tier: config.OnPrem, denyUnlabeled: true,
			subject:     Subject{Kind: "ClusterRole", Name: "x", ClusterScoped: true},
			wantAllowed: true},
		{name: "labeled cluster-scoped object is checked", tier: config.PublicCloud,
			subject:  Subject{Kind: "PersistentVolume", Name: "pv", ClusterScoped: true, Labels: sens("confidential")},
			wantRule: RuleTierNotAllowed, wantSens: config.Confidential},
		{name: "kube-system is excluded", tier: config.PublicCloud, denyUnlabeled: true,
			subject:     Subject{Kind: "ConfigMap", Namespace: "kube-system", Name: "x", Labels: sens("restricted")},
			wantAllowed: true},
		{name: "events are exempt (the cluster's own records)", tier: config.PrivateCloud, denyUnlabeled: true,
			subject:     Subject{Kind: "Event", Namespace: "default", Name: "node.123"},
			wantAllowed: true},
		{name: "strata-system is excluded", tier: config.OnPrem, denyUnlabeled: true,
			subject:     Subject{Kind: "ConfigMap", Namespace: labels.SystemNamespace, Name: "strata-inventory-prod"},
			wantAllowed: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Checker{Cluster: map[config.Tier]string{config.PublicCloud: "public", config.PrivateCloud: "private", config.OnPrem: "onprem"}[tt.tier],
				Tier: tt.tier, Tiers: tiers, DenyUnlabeled: tt.denyUnlabeled}
			got := c.Check(tt.subject)
			want := Check{Allowed: tt.wantAllowed, Rule: tt.wantRule, Sensitivity: tt.wantSens, Message: got.Message}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Check (-want +got):\n%s", diff)
			}
			if tt.wantAllowed && got.Message != "" {
				t.Errorf("allowed with a message: %q", got.Message)
			}
			for _, s := range tt.wantInMessage {
				if !strings.Contains(got.Message, s) {
					t.Errorf("message %q lacks %q", got.Message, s)
				}
			}
		})
	}
}
