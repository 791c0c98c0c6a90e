package placement

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/strata-gitops/strata/internal/config"
	"github.com/strata-gitops/strata/internal/labels"
)

func withTemplates(o Object, ls ...map[string]string) Object {
	o.TemplateLabels = ls
	return o
}

// volume is a PersistentVolume, bound to a claim in claimNS unless "".
func volume(name string, l map[string]string, claimNS string) Object {
	if name == "" {
		name = "pv-1"
	}
	return Object{Kind: "PersistentVolume", Name: name, ClusterScoped: true, Labels: l, ClaimNamespace: claimNS}
}

func TestClaimNamespace(t *testing.T) {
	bound := map[string]any{"spec": map[string]any{"claimRef": map[string]any{"namespace": "ledger", "name": "data"}}}
	for _, tc := range []struct {
		group, kind string
		obj         map[string]any
		want        string
	}{
		{"", "PersistentVolume", bound, "ledger"},
		{"", "PersistentVolume", map[string]any{"spec": map[string]any{}}, ""},
		{"", "PersistentVolume", map[string]any{"spec": "not an object"}, ""},
		{"example.com", "PersistentVolume", bound, ""}, // a look-alike custom resource has no claim
		{"", "ConfigMap", bound, ""},
	} {
		if got := ClaimNamespace(tc.group, tc.kind, tc.obj); got != tc.want {
			t.Errorf("ClaimNamespace(%q, %q, %v) = %q, want %q", tc.group, tc.kind, tc.obj, got, tc.want)
		}
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		name   string
		object Object
		ns     Namespace
		want   Classification
		say    []string
	}{
		{name: "own label", object: deploy("app", "web", sens("internal"), nil),
			want: Classification{Level: config.Internal, Source: FromObject, Own: config.Internal}},
		{name: "namespace floor raises", object: deploy("app", "web", sens("public"), nil), ns: Namespace{Labels: sens("confidential")},
			want: Classification{Level: config.Confidential, Source: FromNamespace, Own: config.Public}},
		{name: "own label wins a tie", object: deploy("app", "web", sens("internal"), nil), ns: Namespace{Labels: sens("internal")},
			want: Classification{Level: config.Internal, Source: FromObject, Own: config.Internal}},
		{name: "pod template raises", object: withTemplates(deploy("app", "web", sens("public"), nil), sens("restricted")),
			want: Classification{Level: config.Restricted, Source: FromPodTemplate, Own: config.Public}},
		{name: "a CronJob's job and pod templates both count", object: withTemplates(Object{Group: "batch", Kind: "CronJob", Namespace: "app", Name: "c"}, sens("internal"), sens("confidential")),
			want: Classification{Level: config.Confidential, Source: FromPodTemplate}},
		{name: "an unlabeled template does not lower", object: withTemplates(deploy("app", "web", sens("confidential"), nil), nil),
			want: Classification{Level: config.Confidential, Source: FromObject, Own: config.Confidential}},
		{name: "a Namespace has no floor", object: namespace("app", sens("public")), ns: Namespace{Labels: sens("restricted")},
			want: Classification{Level: config.Public, Source: FromObject, Own: config.Public}},
		{name: "a cluster-scoped object has no floor", object: clusterRole("", "r", nil), ns: Namespace{Unknown: true},
			want: Classification{Rule: RuleUnlabeled}, say: []string{"cluster-scoped objects need their own"}},
		{name: "a bound PersistentVolume takes its claim's Namespace's floor", object: volume("", sens("public"), "ledger"), ns: Namespace{Labels: sens("restricted")},
			want: Classification{Level: config.Restricted, Source: FromNamespace, Own: config.Public}},
		{name: "a dynamically provisioned volume is as sensitive as its claim", object: volume("", nil, "ledger"), ns: Namespace{Labels: sens("confidential")},
			want: Classification{Level: config.Confidential, Source: FromNamespace}},
		{name: "a bound volume whose claim's Namespace could not be read", object: volume("", nil, "ledger"), ns: Namespace{Unknown: true},
			want: Classification{Rule: RuleNamespaceUnknown}, say: []string{"Namespace ledger could not be read"}},
		{name: "an unbound unlabeled volume", object: volume("", nil, ""), ns: Namespace{Labels: sens("public")},
			want: Classification{Rule: RuleUnlabeled}, say: []string{"cluster-scoped objects need their own", "PersistentVolume bound to a claim"}},
		{name: "a bound volume in an unlabeled Namespace", object: volume("", nil, "ledger"), ns: Namespace{},
			want: Classification{Rule: RuleUnlabeled}, say: []string{"claim's Namespace ledger"}},
		{name: "unlabeled everywhere", object: deploy("app", "web", nil, nil), ns: Namespace{},
			want: Classification{Rule: RuleUnlabeled}, say: []string{"Namespace app", "label the object or the Namespace"}},
		{name: "unlabeled Namespace", object: namespace("app", nil),
			want: Classification{Rule: RuleUnlabeled}, say: []string{"the Namespace has no"}},
		{name: "unknown own value", object: deploy("app", "web", sens("Secret"), nil),
			want: Classification{Rule: RuleUnknownSensitivity}, say: []string{`"Secret"`, "fix the label"}},
		{name: "empty own value is unknown", object: deploy("app", "web", sens(""), nil), ns: Namespace{Labels: sens("public")},
			want: Classification{Rule: RuleUnknownSensitivity}, say: []string{`""`}},
		{name: "unknown template value", object: withTemplates(deploy("app", "web", sens("public"), nil), sens("top")),
			want: Classification{Rule: RuleUnknownSensitivity}, say: []string{"pod template", `"top"`}},
		{name: "unknown namespace value", object: configMap("app", "c", sens("public")), ns: Namespace{Labels: sens("top")},
			want: Classification{Rule: RuleUnknownSensitivity}, say: []string{"Namespace app", `"top"`, "fix the Namespace's label"}},
		{name: "a Namespace that could not be read", object: configMap("app", "c", sens("restricted")), ns: Namespace{Unknown: true},
			want: Classification{Rule: RuleNamespaceUnknown}, say: []string{"Namespace app could not be read"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Classify(tt.object, tt.ns)
			msg := got.Message
			got.Message = ""
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Classify (-want +got):\n%s", diff)
			}
			if (tt.want.Rule == "") != (msg == "") {
				t.Errorf("message %q with rule %q", msg, tt.want.Rule)
			}
			for _, s := range append(tt.say, allSens) {
				if tt.want.Rule != "" && tt.want.Rule != RuleNamespaceUnknown && !strings.Contains(msg, s) {
					t.Errorf("message %q lacks %q", msg, s)
				}
			}
		})
	}
}

func TestAllowed(t *testing.T) {
	tiers := config.DefaultTiers()
	for _, tt := range []struct {
		level config.Sensitivity
		tier  config.Tier
		want  bool
	}{
		{config.Public, config.PublicCloud, true},
		{config.Internal, config.PublicCloud, false},
		{config.Confidential, config.PrivateCloud, true},
		{config.Restricted, config.PrivateCloud, false},
		{config.Restricted, config.OnPrem, true},
		{"", config.OnPrem, false},
		{"secret", config.OnPrem, false},
	} {
		if got := Allowed(tiers, tt.level, tt.tier); got != tt.want {
			t.Errorf("Allowed(%q, %s) = %v, want %v", tt.level, tt.tier, got, tt.want)
		}
	}
}

func TestTemplateLabels(t *testing.T) {
	tmpl := func(l map[string]any) map[string]any {
		return map[string]any{"metadata": map[string]any{"labels": l}}
	}
	r := map[string]any{labels.Sensitivity: "restricted"}
	tests := []struct {
		group, kind string
		obj         map[string]any
		want        []map[string]string
	}{
		{"apps", "Deployment", map[string]any{"spec": map[string]any{"template": tmpl(r)}}, []map[string]string{sens("restricted")}},
		{"apps", "Deployment", map[string]any{"spec": map[string]any{}}, []map[string]string{nil}},
		{"batch", "CronJob", map[string]any{"spec": map[string]any{"jobTemplate": map[string]any{
			"metadata": map[string]any{"labels": map[string]any{"a": "b"}}, "spec": map[string]any{"template": tmpl(r)}}}},
			[]map[string]string{{"a": "b"}, sens("restricted")}},
		{"", "PodTemplate", map[string]any{"template": tmpl(r)}, []map[string]string{sens("restricted")}},
		{"example.com", "Deployment", map[string]any{"spec": map[string]any{"template": tmpl(r)}}, nil},
		{"", "ConfigMap", map[string]any{"spec": "not a map"}, nil},
		{"apps", "StatefulSet", map[string]any{"spec": "not a map"}, []map[string]string{nil}},
		// A label the apiserver would never send is kept, unreadable.
		{"apps", "DaemonSet", map[string]any{"spec": map[string]any{"template": tmpl(map[string]any{labels.Sensitivity: int64(1)})}},
			[]map[string]string{sens("1")}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, TemplateLabels(tt.group, tt.kind, tt.obj)); diff != "" {
			t.Errorf("TemplateLabels(%s/%s) (-want +got):\n%s", tt.group, tt.kind, diff)
		}
	}
}

// Placement and the webhook agree: a public Deployment with a restricted
// pod template goes on-prem, and the reason says why.
func TestPlacePodTemplate(t *testing.T) {
	runPlaceCases(t, []placeCase{{
		name:    "the pod template raises a workload",
		objects: []Object{withTemplates(deploy("app", "web", sens("public"), nil), sens("restricted"))},
		want: []Decision{{Index: 0, Sensitivity: config.Restricted, Tiers: tiers(config.OnPrem), Clusters: names("onprem"),
			Reason: "restricted (pod template, object says public) → allowed [on-prem] → onprem (preferred)"}},
	}, {
		name:           "an unknown template value is a violation",
		objects:        []Object{withTemplates(deploy("app", "web", sens("public"), nil), sens("Restricted"))},
		wantViolations: []wantViolation{{Index: 0, Rule: RuleUnknownSensitivity, Contains: []string{"pod template", `"Restricted"`}}},
	}, {
		name:           "requesting a tier the template does not allow",
		objects:        []Object{withTemplates(deploy("app", "web", sens("public"), ann(labels.Tiers, "public-cloud")), sens("internal"))},
		wantViolations: []wantViolation{{Index: 0, Rule: RuleTierNotAllowed, Contains: []string{"on its pod template"}}},
	}})
}
