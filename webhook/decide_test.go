package webhook

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/strata-gitops/strata/internal/config"
	"github.com/strata-gitops/strata/internal/labels"
	"github.com/strata-gitops/strata/internal/placement"
)

func sens(v string) map[string]any { return map[string]any{labels.Sensitivity: v} }

var (
	deployments = metav1.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	deployKind  = metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}
	configMaps  = metav1.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	cmKind      = metav1.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}
	namespaces  = metav1.GroupVersionResource{Version: "v1", Resource: "namespaces"}
	nsKind      = metav1.GroupVersionKind{Version: "v1", Kind: "Namespace"}
)

// objectWith is a decoded object with labels (nil: none) and extra fields.
func objectWith(name string, l map[string]any, extra map[string]any) map[string]any {
	md := map[string]any{"name": name}
	if l != nil {
		md["labels"] = l
	}
	o := map[string]any{"metadata": md}
	for k, v := range extra {
		o[k] = v
	}
	return o
}

func podTemplate(l map[string]any) map[string]any {
	return map[string]any{"template": map[string]any{"metadata": map[string]any{"labels": l}}}
}

func testChecker(tier config.Tier) *Checker {
	cfg := &config.Config{Tiers: config.DefaultTiers()}
	return NewChecker(cfg, map[config.Tier]string{config.PublicCloud: "public", config.PrivateCloud: "private", config.OnPrem: "onprem"}[tier], tier)
}

func lookup(name string) (map[string]string, bool) {
	switch name {
	case "ledger":
		return map[string]string{labels.Sensitivity: "restricted"}, true
	case "risk":
		return map[string]string{labels.Sensitivity: "internal"}, true
	case "fraud":
		return map[string]string{labels.Sensitivity: "confidential"}, true
	case "odd":
		return map[string]string{labels.Sensitivity: "top"}, true
	case "scratch":
		return map[string]string{}, true
	}
	return nil, false
}

// TestSensitivityLink runs the sensitivity link alone: what it adds to the
// attempt, with the words of every denial.
func TestSensitivityLink(t *testing.T) {
	tests := []struct {
		name     string
		tier     config.Tier
		req      request
		wantRule placement.Rule
		wantSens config.Sensitivity
		wantSay  []string
	}{
		{name: "restricted object in public cloud is denied", tier: config.PublicCloud,
			req:      request{Kind: deployKind, Resource: deployments, Namespace: "ledger", Object: objectWith("ledger", sens("restricted"), nil)},
			wantRule: placement.RuleTierNotAllowed, wantSens: config.Restricted,
			wantSay: []string{"Deployment ledger/ledger is restricted (label on the object)", "cluster public is in tier public-cloud", "allowed only in [on-prem]", "deploy it through strata"}},
		{name: "restricted object on-prem is allowed", tier: config.OnPrem,
			req:      request{Kind: deployKind, Resource: deployments, Namespace: "ledger", Object: objectWith("ledger", sens("restricted"), nil)},
			wantSens: config.Restricted},
		{name: "namespace floor raises an internal object", tier: config.PrivateCloud,
			req:      request{Kind: cmKind, Resource: configMaps, Namespace: "ledger", Object: objectWith("c", sens("internal"), nil)},
			wantRule: placement.RuleTierNotAllowed, wantSens: config.Restricted, wantSay: []string{"floor of Namespace ledger"}},
		{name: "the pod template raises a workload", tier: config.PrivateCloud,
			req: request{Kind: deployKind, Resource: deployments, Namespace: "risk",
				Object: objectWith("web", sens("internal"), map[string]any{"spec": podTemplate(sens("restricted"))})},
			wantRule: placement.RuleTierNotAllowed, wantSens: config.Restricted, wantSay: []string{"restricted (label on its pod template)"}},
		{name: "an unknown template value is denied", tier: config.OnPrem,
			req: request{Kind: deployKind, Resource: deployments, Namespace: "risk",
				Object: objectWith("web", sens("internal"), map[string]any{"spec": podTemplate(sens("Secret"))})},
			wantRule: placement.RuleUnknownSensitivity, wantSay: []string{"cannot be classified", "pod template", `"Secret"`}},
		{name: "a Namespace is judged by its own label, not its old one", tier: config.PublicCloud,
			req: request{Kind: nsKind, Resource: namespaces, Namespace: "ledger", Name: "ledger",
				Object: objectWith("ledger", sens("public"), nil)},
			wantSens: config.Public},
		{name: "a Namespace's own restricted label is denied in public cloud", tier: config.PublicCloud,
			req: request{Kind: nsKind, Resource: namespaces, Namespace: "scratch", Name: "scratch",
				Object: objectWith("scratch", sens("restricted"), nil)},
			wantRule: placement.RuleTierNotAllowed, wantSens: config.Restricted, wantSay: []string{"Namespace scratch is restricted"}},
		{name: "an unlabeled Namespace holds no data", tier: config.OnPrem,
			req: request{Kind: nsKind, Resource: namespaces, Namespace: "new", Name: "new", Object: objectWith("new", nil, nil)}},
		{name: "unknown sensitivity is denied", tier: config.OnPrem,
			req:      request{Kind: cmKind, Resource: configMaps, Namespace: "scratch", Object: objectWith("s", sens("secret"), nil)},
			wantRule: placement.RuleUnknownSensitivity, wantSay: []string{`"secret"`, "public, internal, confidential, restricted"}},
		{name: "unknown namespace sensitivity is denied", tier: config.OnPrem,
			req:      request{Kind: cmKind, Resource: configMaps, Namespace: "odd", Object: objectWith("s", nil, nil)},
			wantRule: placement.RuleUnknownSensitivity, wantSay: []string{"Namespace odd", `"top"`, "fix the Namespace's label"}},
		{name: "unlabeled in unlabeled namespace is denied in every tier", tier: config.PublicCloud,
			req:      request{Kind: deployKind, Resource: deployments, Namespace: "scratch", Object: objectWith("x", nil, nil)},
			wantRule: placement.RuleUnlabeled, wantSay: []string{"Deployment scratch/x has no sensitivity", "tier public-cloud", "label the object or the Namespace"}},
		{name: "a failed Namespace lookup denies", tier: config.OnPrem,
			req:      request{Kind: cmKind, Resource: configMaps, Namespace: "gone", Object: objectWith("c", sens("restricted"), nil)},
			wantRule: placement.RuleNamespaceUnknown, wantSay: []string{"Namespace gone could not be read"}},
		{name: "unlabeled ClusterRole passes", tier: config.OnPrem,
			req: request{Kind: metav1.GroupVersionKind{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "ClusterRole"},
				Resource: metav1.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterroles"}, Object: objectWith("x", nil, nil)}},
		{name: "unlabeled cluster-scoped custom resource is denied", tier: config.OnPrem,
			req: request{Kind: metav1.GroupVersionKind{Group: "example.com", Version: "v1", Kind: "Vault"},
				Resource: metav1.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "vaults"}, Object: objectWith("v", nil, nil)},
			wantRule: placement.RuleUnlabeled, wantSay: []string{"Vault v has no sensitivity", "need their own"}},
		{name: "labeled cluster-scoped object is checked", tier: config.PublicCloud,
			req: request{Kind: metav1.GroupVersionKind{Version: "v1", Kind: "PersistentVolume"},
				Resource: metav1.GroupVersionResource{Version: "v1", Resource: "persistentvolumes"}, Object: objectWith("pv", sens("confidential"), nil)},
			wantRule: placement.RuleTierNotAllowed, wantSens: config.Confidential},
		{name: "no object is denied", tier: config.OnPrem,
			req:      request{Kind: cmKind, Resource: configMaps, Namespace: "ledger", Name: "c"},
			wantRule: placement.RuleMalformedObject, wantSay: []string{"no object", "fail closed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &Handler{Checker: testChecker(tt.tier), Namespaces: lookup, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
			var got *attempt
			h.sensitivity(func(a *attempt) *response { got = a; return nil })(&attempt{ctx: context.Background(), req: &tt.req, object: subject(&tt.req)})
			if got == nil {
				t.Fatal("the link did not call the next one")
			}
			var rule placement.Rule
			msg := ""
			if len(got.denials) > 0 {
				rule, msg = got.denials[0].rule, got.denials[0].msg
			}
			if len(got.denials) > 1 {
				t.Errorf("%d denials, want at most 1: %v", len(got.denials), got.denials)
			}
			if diff := cmp.Diff([]any{tt.wantRule, tt.wantSens}, []any{rule, got.class.Level}); diff != "" {
				t.Errorf("rule, sensitivity (-want +got):\n%s\nmessage: %s", diff, msg)
			}
			for _, s := range tt.wantSay {
				if !strings.Contains(msg, s) {
					t.Errorf("message %q lacks %q", msg, s)
				}
			}
		})
	}
}

// A Namespace request carries the Namespace's own name as request.namespace:
// it is cluster-scoped all the same, and other objects are scoped by it.
func TestSubjectScope(t *testing.T) {
	tests := []struct {
		req  request
		want placement.Object
	}{
		{request{Kind: nsKind, Resource: namespaces, Namespace: "ledger", Name: "ledger"},
			placement.Object{Kind: "Namespace", Name: "ledger", ClusterScoped: true}},
		{request{Kind: cmKind, Resource: configMaps, Namespace: "ledger", Name: "c"},
			placement.Object{Kind: "ConfigMap", Namespace: "ledger", Name: "c"}},
		{request{Kind: metav1.GroupVersionKind{Version: "v1", Kind: "PersistentVolume"}, Resource: metav1.GroupVersionResource{Version: "v1", Resource: "persistentvolumes"}, Name: "pv"},
			placement.Object{Kind: "PersistentVolume", Name: "pv", ClusterScoped: true}},
		{request{Kind: cmKind, Resource: configMaps, Namespace: "ledger", Object: map[string]any{"metadata": map[string]any{"generateName": "c-"}}},
			placement.Object{Kind: "ConfigMap", Namespace: "ledger", Name: "c-"}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, subject(&tt.req)); diff != "" {
			t.Errorf("subject(%s %s) (-want +got):\n%s", tt.req.Kind.Kind, tt.req.Name, diff)
		}
	}
}
