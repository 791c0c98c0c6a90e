package placement

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/strata-gitops/strata/internal/config"
	"github.com/strata-gitops/strata/internal/labels"
)

// ---- fixtures ---------------------------------------------------------------

// allSens is how messages list the allowed sensitivities.
var allSens = config.JoinSensitivities(config.Sensitivities)

// prodClusters is the standard prod environment of the design.
func prodClusters() []config.Cluster {
	return []config.Cluster{
		{Name: "public", Tier: config.PublicCloud, Cost: 1},
		{Name: "private", Tier: config.PrivateCloud, Cost: 3},
		{Name: "onprem", Tier: config.OnPrem, Cost: 5},
	}
}

// envClusters returns the clusters of the test environments.
func envClusters(env string) []config.Cluster {
	switch env {
	case "prod":
		return prodClusters()
	case "dev": // no public-cloud cluster
		return []config.Cluster{
			{Name: "private", Tier: config.PrivateCloud},
			{Name: "onprem", Tier: config.OnPrem},
		}
	case "edge": // on-prem only
		return []config.Cluster{{Name: "onprem", Tier: config.OnPrem}}
	case "cloud": // no on-prem cluster
		return []config.Cluster{
			{Name: "public", Tier: config.PublicCloud},
			{Name: "private", Tier: config.PrivateCloud},
		}
	case "prod2": // two private-cloud clusters
		return []config.Cluster{
			{Name: "public", Tier: config.PublicCloud},
			{Name: "private-a", Tier: config.PrivateCloud},
			{Name: "private-b", Tier: config.PrivateCloud},
			{Name: "onprem", Tier: config.OnPrem},
		}
	case "empty":
		return nil
	}
	panic("unknown test environment " + env)
}

func sens(s string) map[string]string { return map[string]string{labels.Sensitivity: s} }

func ann(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func namespace(name string, l map[string]string) Object {
	return Object{Kind: "Namespace", Name: name, ClusterScoped: true, Labels: l}
}

func deploy(ns, name string, l, a map[string]string) Object {
	return Object{Group: "apps", Kind: "Deployment", Namespace: ns, Name: name, Labels: l, Annotations: a}
}

func configMap(ns, name string, l map[string]string) Object {
	return Object{Kind: "ConfigMap", Namespace: ns, Name: name, Labels: l}
}

func clusterRole(ns, name string, l map[string]string) Object {
	return Object{Group: "rbac.authorization.k8s.io", Kind: "ClusterRole", Namespace: ns, Name: name, ClusterScoped: true, Labels: l}
}

func crd(group, kind string, l map[string]string) Object {
	return Object{
		Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition",
		Name: strings.ToLower(kind) + "s." + group, ClusterScoped: true, Labels: l,
		DefinesGroup: group, DefinesKind: kind,
	}
}

func custom(group, kind, ns, name string, l map[string]string) Object {
	return Object{Group: group, Kind: kind, Namespace: ns, Name: name, Labels: l}
}

func tiers(ts ...config.Tier) []config.Tier { return ts }

func names(ns ...string) []string { return ns }

// ---- table runner -----------------------------------------------------------

// wantViolation is an expected violation; Object is taken from the input at
// Index and compared exactly, Message must contain every string of Contains.
type wantViolation struct {
	Index    int
	Rule     Rule
	Contains []string
}

type placeCase struct {
	name     string
	env      string                               // "prod" when empty
	tiers    map[config.Sensitivity][]config.Tier // config.DefaultTiers() when nil
	clusters []config.Cluster                     // envClusters(env) when nil
	healthy  map[string]bool
	objects  []Object
	// want are the full expected decisions in input order; Object is filled
	// in from objects[Index].
	want []Decision
	// wantViolations in the order Place reports them (contents first, then
	// Namespaces and CRDs, each in input order).
	wantViolations []wantViolation
}

func (tc placeCase) input() Input {
	env := tc.env
	if env == "" {
		env = "prod"
	}
	tt := tc.tiers
	if tt == nil {
		tt = config.DefaultTiers()
	}
	cs := tc.clusters
	if cs == nil {
		cs = envClusters(env)
	}
	return Input{Environment: env, Tiers: tt, Clusters: cs, Healthy: tc.healthy, Objects: tc.objects}
}

func runPlaceCases(t *testing.T, cases []placeCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.input()
			res := Place(in)
			checkResult(t, in, res, tc.want, tc.wantViolations)
		})
	}
}

func checkResult(t *testing.T, in Input, res *Result, want []Decision, wantV []wantViolation) {
	t.Helper()
	if res == nil {
		t.Fatal("Place returned nil")
	}
	if res.Environment != in.Environment {
		t.Errorf("Environment = %q, want %q", res.Environment, in.Environment)
	}

	// Decisions: full comparison.
	var wantD []Decision
	for _, d := range want {
		d.Object = in.Objects[d.Index]
		wantD = append(wantD, d)
	}
	if diff := cmp.Diff(wantD, res.Decisions); diff != "" {
		t.Errorf("decisions mismatch (-want +got):\n%s", diff)
	}

	// Violations: Index, Rule and Object exactly, message by content.
	if len(res.Violations) != len(wantV) {
		t.Errorf("got %d violations, want %d:\n%s", len(res.Violations), len(wantV), violationList(res.Violations))
	}
	for i := 0; i < len(wantV) && i < len(res.Violations); i++ {
		w, g := wantV[i], res.Violations[i]
		if g.Index != w.Index || g.Rule != w.Rule {
			t.Errorf("violation %d = index %d rule %s, want index %d rule %s (%s)", i, g.Index, g.Rule, w.Index, w.Rule, g.Message)
			continue
		}
		if diff := cmp.Diff(in.Objects[w.Index], g.Object); diff != "" {
			t.Errorf("violation %d object mismatch (-want +got):\n%s", i, diff)
		}
		for _, s := range w.Contains {
			if !strings.Contains(g.Message, s) {
				t.Errorf("violation %d [%s] message %q does not mention %q", i, g.Rule, g.Message, s)
			}
		}
		if !strings.Contains(g.Message, ": ") {
			t.Errorf("violation %d [%s] message %q does not say what to do", i, g.Rule, g.Message)
		}
	}

	// Invariants: every object has a decision or a violation, never both;
	// decisions keep input order; reasons are one line.
	decided := map[int]bool{}
	last := -1
	for _, d := range res.Decisions {
		if d.Index <= last {
			t.Errorf("decision for index %d after index %d: not in input order", d.Index, last)
		}
		last = d.Index
		decided[d.Index] = true
		if d.Reason == "" || strings.Contains(d.Reason, "\n") {
			t.Errorf("decision %d reason %q is not one line", d.Index, d.Reason)
		}
	}
	violated := map[int]bool{}
	for _, v := range res.Violations {
		violated[v.Index] = true
		if decided[v.Index] {
			t.Errorf("object %d has both a decision and a violation", v.Index)
		}
	}
	for i := range in.Objects {
		if !decided[i] && !violated[i] {
			t.Errorf("object %d (%s) has neither a decision nor a violation", i, in.Objects[i])
		}
	}

	// Err mirrors the violations.
	err := res.Err()
	if len(res.Violations) == 0 {
		if err != nil {
			t.Errorf("Err() = %v, want nil", err)
		}
		return
	}
	var ve *ViolationsError
	if !errors.As(err, &ve) {
		t.Fatalf("Err() = %T %v, want *ViolationsError", err, err)
	}
	if diff := cmp.Diff(res.Violations, ve.Violations); diff != "" {
		t.Errorf("ViolationsError.Violations mismatch (-result +err):\n%s", diff)
	}
}

func violationList(vs []Violation) string {
	var b strings.Builder
	for _, v := range vs {
		b.WriteString("  " + v.String() + "\n")
	}
	return b.String()
}

// ---- rule 1: sensitivity ----------------------------------------------------

func TestPlaceSensitivity(t *testing.T) {
	runPlaceCases(t, []placeCase{
		{
			name:    "only own label, namespace not in the render",
			objects: []Object{deploy("app", "web", sens("restricted"), nil)},
			want: []Decision{{
				Index: 0, Sensitivity: config.Restricted, Tiers: tiers(config.OnPrem), Clusters: names("onprem"),
				Reason: "restricted → allowed [on-prem] → onprem (preferred)",
			}},
		},
		{
			name:    "only own label, namespace in the render is unlabeled",
			objects: []Object{namespace("app", nil), deploy("app", "web", sens("public"), nil)},
			want: []Decision{
				{Index: 0, Sensitivity: "", Contents: config.Public, Tiers: tiers(config.PublicCloud), Clusters: names("public"),
					Reason: "unlabeled Namespace follows the objects in it → public"},
				{Index: 1, Sensitivity: config.Public, Tiers: tiers(config.PublicCloud), Clusters: names("public"),
					Reason: "public → allowed [public-cloud private-cloud on-prem] → public (preferred)"},
			},
		},
		{
			name:    "own label higher than namespace label wins",
			objects: []Object{namespace("app", sens("internal")), deploy("app", "web", sens("restricted"), nil)},
			want: []Decision{
				{Index: 0, Sensitivity: config.Internal, Tiers: tiers(config.OnPrem), Clusters: names("onprem"),
					Reason: "internal Namespace follows the objects in it → onprem"},
				{Index: 1, Sensitivity: config.Restricted, Tiers: tiers(config.OnPrem), Clusters: names("onprem"),
					Reason: "restricted → allowed [on-prem] → onprem (preferred)"},
			},
		},
		{
			name:    "namespace label higher: the floor wins and the reason says so",
			objects: []Object{namespace("app", sens("restricted")), deploy("app", "web", sens("public"), nil)},
			want: []Decision{
				{Index: 0, Sensitivity: config.Restricted, Tiers: tiers(config.OnPrem), Clusters: names("onprem"),
					Reason: "restricted Namespace follows the objects in it → onprem"},
				{Index: 1, Sensitivity: config.Restricted, Tiers: tiers(config.OnPrem), Clusters: names("onprem"),
					Reason: "restricted (namespace app floor, object says public) → allowed [on-prem] → onprem (preferred)"},
			},
		},
		{
			name:    "only namespace label",
			objects: []Object{namespace("app", sens("confidential")), deploy("app", "web", nil, nil)},
			want: []Decision{
				{Index: 0, Sensitivity: config.Confidential, Tiers: tiers(config.PrivateCloud), Clusters: names("private"),
					Reason: "confidential Namespace follows the objects in it → private"},
				{Index: 1, Sensitivity: config.Confidential, Tiers: tiers(config.PrivateCloud), Clusters: names("private"),
					Reason: "confidential (from namespace app) → allowed [private-cloud on-prem] → private (preferred)"},
			},
		},
		{
			name:    "equal own and namespace label: no note",
			objects: []Object{deploy("app", "web", sens("internal"), nil), namespace("app", sens("internal"))},
			want: []Decision{
				{Index: 0, Sensitivity: config.Internal, Tiers: tiers(config.PrivateCloud), Clusters: names("private"),
					Reason: "internal → allowed [private-cloud on-prem] → private (preferred)"},
				{Index: 1, Sensitivity: config.Internal, Tiers: tiers(config.PrivateCloud), Clusters: names("private"),
					Reason: "internal Namespace follows the objects in it → private"},
			},
		},
		{
			name:    "neither own nor namespace label: unlabeled, not placed",
			objects: []Object{deploy("app", "web", nil, nil)},
			wantViolations: []wantViolation{
				{Index: 0, Rule: RuleUnlabeled, Contains: []string{"Namespace app", labels.Sensitivity, allSens}},
			},
		},
		{
			name:    "unlabeled object in unlabeled namespace: both unlabeled",
			objects: []Object{namespace("app", nil), deploy("app", "web", nil, ann(labels.Failover, "true"))},
			wantViolations: []wantViolation{
				{Index: 1, Rule: RuleUnlabeled, Contains: []string{"Namespace app", labels.Sensitivity, allSens}},
				{Index: 0, Rule: RuleUnlabeled, Contains: []string{labels.Sensitivity, "label it"}},
			},
		},
		{
			name:    "unknown own value",
			objects: []Object{deploy("app", "web", sens("secret"), nil)},
			wantViolations: []wantViolation{
				{Index: 0, Rule: RuleUnknownSensitivity, Contains: []string{labels.Sensitivity, `"secret"`, allSens}},
			},
		},
		{
			name:    "unknown own value wins over a valid namespace label",
			objects: []Object{namespace("app", sens("public")), deploy("app", "web", sens("Restricted"), nil)},
			want: []Decision{
				{Index: 0, Sensitivity: config.Public, Tiers: tiers(config.PublicCloud), Clusters: names("public"),
					Reason: "public → allowed [public-cloud private-cloud on-prem] → public (preferred)"},
			},
			wantViolations: []wantViolation{
				{Index: 1, Rule: RuleUnknownSensitivity, Contains: []string{`"Restricted"`, allSens}},
			},
		},
		{
			name:    "empty own value is unknown, not unlabeled",
			objects: []Object{deploy("app", "web", sens(""), nil)},
			wantViolations: []wantViolation{
				{Index: 0, Rule: RuleUnknownSensitivity, Contains: []string{`""`, allSens}},
			},
		},
		{
			name: "namespace with unknown value: its contents and itself are violations",
			objects: []Object{
				namespace("app", sens("top-secret")),
				deploy("app", "web", sens("public"), nil),
				configMap("app", "cfg", nil),
			},
			wantViolations: []wantViolation{
				{Index: 1, Rule: RuleUnknownSensitivity, Contains: []string{"Namespace app", `"top-secret"`, allSens}},
				{Index: 2, Rule: RuleUnknownSensitivity, Contains: []string{"Namespace app", `"top-secret"`, allSens}},
				{Index: 0, Rule: RuleUnknownSensitivity, Contains: []string{`"top-secret"`, allSens}},
			},
		},
		{
			name:    "namespace with empty label value is unknown for its contents",
			objects: []Object{namespace("app", sens("")), deploy("app", "web", sens("internal"), nil)},
			wantViolations: []wantViolation{
				{Index: 1, Rule: RuleUnknownSensitivity, Contains: []string{"Namespace app", `""`}},
				{Index: 0, Rule: RuleUnknownSensitivity, Contains: []string{`""`, allSens}},
			},
		},
		{
			name:    "object in a namespace not in the render with own label is fine",
			objects: []Object{deploy("elsewhere", "web", sens("internal"), nil)},
			want: []Decision{{
				Index: 0, Sensitivity: config.Internal, Tiers: tiers(config.PrivateCloud), Clusters: names("private"),
				Reason: "internal → allowed [private-cloud on-prem] → private (preferred)",
			}},
		},
		{
			name: "other namespace's floor does not apply",
			objects: []Object{
				namespace("secure", sens("restricted")),
				deploy("open", "web", sens("public"), nil),
			},
			want: []Decision{
				{Index: 0, Sensitivity: config.Restricted, Tiers: tiers(config.OnPrem), Clusters: names("onprem"),
					Reason: "restricted → allowed [on-prem] → onprem (preferred)"},
				{Index: 1, Sensitivity: config.Public, Tiers: tiers(config.PublicCloud), Clusters: names("public"),
					Reason: "public → allowed [public-cloud private-cloud on-prem] → public (preferred)"},
			},
		},
	})
}

// ---- rule 2: allowed tiers and strata.dev/tiers -----------------------------

func TestPlaceAllowedTiers(t *testing.T) {
	runPlaceCases(t, []placeCase{
		{
			name: "each sensitivity gets the first tier of its table row",
			objects: []Object{
				deploy("a", "p", sens("public"), nil),
				deploy("a", "i", sens("internal"), nil),
				deploy("a", "c", sens("confidential"), nil),
				deploy("a", "r", sens("restricted"), nil),
			},
			want: []Decision{
				{Index: 0, Sensitivity: config.Public, Tiers: tiers(config.PublicCloud), Clusters: names("public"),
					Reason: "public → allowed [public-cloud private-cloud on-prem] → public (preferred)"},
				{Index: 1, Sensitivity: config.Internal, Tiers: tiers(config.PrivateCloud), Clusters: names("private"),
					Reason: "internal → allowed [private-cloud on-prem] → private (preferred)"},
				{Index: 2, Sensitivity: config.Confidential, Tiers: tiers(config.PrivateCloud), Clusters: names("private"),
					Reason: "confidential → allowed [private-cloud on-prem] → private (preferred)"},
				{Index: 3, Sensitivity: config.Restricted, Tiers: tiers(config.OnPrem), Clusters: names("onprem"),
					Reason: "restricted → allowed [on-prem] → onprem (preferred)"},
			},
		},
		{
			name: "custom tier table: its order is the preference",
			tiers: map[config.Sensitivity][]config.Tier{
				config.Internal: {config.OnPrem, config.PrivateCloud},
			},
			objects: []Object{deploy("a", "i", sens("internal"), nil)},
			want: []Decision{{
				Index: 0, Sensitivity: config.Internal, Tiers: tiers(config.OnPrem), Clusters: names("onprem"),
				Reason: "internal → allowed [on-prem private-cloud] → onprem (preferred)",
			}},
		},
		{
			name:    "tiers annotation narrows, request order respected",
			objects: []Object{deploy("a", "p", sens("public"), ann(labels.Tiers, "on-prem,private-cloud"))},
			want: []Decision{{
				Index: 0, Sensitivity: config.Public, Tiers: tiers(config.OnPrem), Clusters: names("onprem"),
				Reason: "public → allowed [public-cloud private-cloud on-prem] → requested [on-prem private-cloud] → onprem (preferred)",
			}},
		},
		{
			name:    "tiers annotation with one allowed tier",
			objects: []Object{deploy("a", "i", sens("internal"), ann(labels.Tiers, "on-prem"))},
			want: []Decision{{
				Index: 0, Sensitivity: config.Internal, Tiers: tiers(config.OnPrem), Clusters: names("onprem"),
				Reason: "internal → allowed [private-cloud on-prem] → requested [on-prem] → onprem (preferred)",
			}},
		},
		{
			name:    "tiers annotation with spaces and duplicates",
			objects: []Object{deploy("a", "c", sens("confidential"), ann(labels.Tiers, " on-prem, private-cloud on-prem "))},
			want: []Decision{{
				Index: 0, Sensitivity: config.Confidential, Tiers: tiers(config.OnPrem), Clusters: names("onprem"),
				Reason: "confidential → allowed [private-cloud on-prem] → requested [on-prem private-cloud] → onprem (preferred)",
			}},
		},
		{
			name:    "tiers annotation applies after the namespace floor",
			objects: []Object{namespace("a", sens("confidential")), deploy("a", "p", sens("public"), ann(labels.Tiers, "on-prem"))},
			want: []Decision{
				{Index: 0, Sensitivity: config.Confidential, Tiers: tiers(config.OnPrem), Clusters: names("onprem"),
					Reason: "confidential Namespace follows the objects in it → onprem"},
				{Index: 1, Sensitivity: config.Confidential, Tiers: tiers(config.OnPrem), Clusters: names("onprem"),
					Reason: "confidential (namespace a floor, object says public) → allowed [private-cloud on-prem] → requested [on-prem] → onprem (preferred)"},
			},
		},
		{
			name:    "tier outside the allowed list",
			objects: []Object{deploy("a", "r", sens("restricted"), ann(labels.Tiers, "public-cloud"))},
			wantViolations: []wantViolation{{
				Index: 0, Rule: RuleTierNotAllowed,
				Contains: []string{labels.Tiers, "public-cloud", "restricted data is allowed only in [on-prem]", "remove public-cloud"},
			}},
		},
		{
			name: "tier allowed for own label but not for the namespace floor",
			objects: []Object{
				namespace("a", sens("restricted")),
				deploy("a", "i", sens("internal"), ann(labels.Tiers, "private-cloud")),
			},
			// The Namespace has no placed contents left, so its own label places it.
			want: []Decision{{
				Index: 0, Sensitivity: config.Restricted, Tiers: tiers(config.OnPrem), Clusters: names("onprem"),
				Reason: "restricted → allowed [on-prem] → onprem (preferred)",
			}},
			wantViolations: []wantViolation{{
				Index: 1, Rule: RuleTierNotAllowed, Contains: []string{"private-cloud", "restricted data is allowed only in [on-prem]"},
			}},
		},
		{
			name:    "unknown tier name",
			objects: []Object{deploy("a", "i", sens("internal"), ann(labels.Tiers, "moon"))},
			wantViolations: []wantViolation{{
				Index: 0, Rule: RuleUnknownTier, Contains: []string{labels.Tiers, `"moon"`, "[public-cloud private-cloud on-prem]"},
			}},
		},
		{
			name:    "every bad tier of the annotation is reported",
			objects: []Object{deploy("a", "c", sens("confidential"), ann(labels.Tiers, "public-cloud,moon,on-prem"))},
			wantViolations: []wantViolation{
				{Index: 0, Rule: RuleTierNotAllowed, Contains: []string{"public-cloud", "[private-cloud on-prem]"}},
				{Index: 0, Rule: RuleUnknownTier, Contains: []string{`"moon"`, "[public-cloud private-cloud on-prem]"}},
			},
		},
		{
			name:    "unknown tier first: the disallowed one after it is reported too",
			objects: []Object{deploy("a", "r", sens("restricted"), ann(labels.Tiers, "mars, public-cloud, on-prem"))},
			wantViolations: []wantViolation{
				{Index: 0, Rule: RuleUnknownTier, Contains: []string{`"mars"`, "[public-cloud private-cloud on-prem]"}},
				{Index: 0, Rule: RuleTierNotAllowed, Contains: []string{"public-cloud", "[on-prem]"}},
			},
		},
		{
			name:    "empty tiers annotation",
			objects: []Object{deploy("a", "i", sens("internal"), ann(labels.Tiers, ""))},
			wantViolations: []wantViolation{{
				Index: 0, Rule: RuleInvalidAnnotation, Contains: []string{labels.Tiers, "empty", "[private-cloud on-prem]"},
			}},
		},
		{
			name:    "tiers annotation of separators only",
			objects: []Object{deploy("a", "i", sens("internal"), ann(labels.Tiers, " , "))},
			wantViolations: []wantViolation{{
				Index: 0, Rule: RuleInvalidAnnotation, Contains: []string{labels.Tiers, "empty", "[private-cloud on-prem]"},
			}},
		},
		{
			name:    "sensitivity missing from the tier table",
			tiers:   map[config.Sensitivity][]config.Tier{config.Public: {config.PublicCloud}},
			objects: []Object{deploy("a", "r", sens("restricted"), nil)},
			wantViolations: []wantViolation{{
				Index: 0, Rule: RuleNoCluster, Contains: []string{"restricted", "tiers.restricted", "strata.yaml"},
			}},
		},
		{
			name:    "requested tier has no cluster in the environment",
			env:     "cloud",
			objects: []Object{deploy("a", "p", sens("public"), ann(labels.Tiers, "on-prem"))},
			wantViolations: []wantViolation{{
				Index: 0, Rule: RuleNoCluster, Contains: []string{"[on-prem]", "environment cloud", "environments.cloud"},
			}},
		},
	})
}

// ---- rule 3: chosen tier, health and failover -------------------------------

func TestPlaceChosenTier(t *testing.T) {
	up := func(ns ...string) map[string]bool {
		m := map[string]bool{}
		for _, n := range ns {
			m[n] = true
		}
		return m
	}
	failover := ann(labels.Failover, "true")
	runPlaceCases(t, []placeCase{
		{
			name:    "Healthy nil means all clusters are healthy",
			healthy: nil,
			objects: []Object{deploy("a", "i", sens("internal"), failover)},
			want: []Decision{{
				Index: 0, Sensitivity: config.Internal, Tiers: tiers(config.PrivateCloud), Clusters: names("private"),
				Reason: "internal → allowed [private-cloud on-prem] → private (preferred)",
			}},
		},
		{
			name:    "all clusters explicitly healthy",
			healthy: map[string]bool{"public": true, "private": true, "onprem": true},
			objects: []Object{deploy("a", "p", sens("public"), nil)},
			want: []Decision{{
				Index: 0, Sensitivity: config.Public, Tiers: tiers(config.PublicCloud), Clusters: names("public"),
				Reason: "public → allowed [public-cloud private-cloud on-prem] → public (preferred)",
			}},
		},
		{
			name:    "tier without clusters in the environment is skipped",
			env:     "dev",
			objects: []Object{deploy("a", "p", sens("public"), nil)},
			want: []Decision{{
				Index: 0, Sensitivity: config.Public, Tiers: tiers(config.PrivateCloud), Clusters: names("private"),
				Reason: "public → allowed [public-cloud private-cloud on-prem] → private (no public-cloud cluster in dev)",
			}},
		},
		{
			name:    "two tiers without clusters are skipped",
			env:     "edge",
			objects: []Object{deploy("a", "p", sens("public"), nil)},
			want: []Decision{{
				Index: 0, Sensitivity: config.Public, Tiers: tiers(config.OnPrem), Clusters: names("onprem"),
				Reason: "public → allowed [public-cloud private-cloud on-prem] → onprem (no public-cloud or private-cloud cluster in edge)",
			}},
		},
		{
			name:    "skipping a tier without clusters needs no failover even when others are down",
			env:     "dev",
			healthy: up("private"),
			objects: []Object{deploy("a", "p", sens("public"), nil)},
			want: []Decision{{
				Index: 0, Sensitivity: config.Public, Tiers: tiers(config.PrivateCloud), Clusters: names("private"),
				Reason: "public → allowed [public-cloud private-cloud on-prem] → private (no public-cloud cluster in dev)",
			}},
		},
		{
			name:    "first tier down, no failover: stays and waits (cluster absent from Healthy)",
			healthy: up("public", "onprem"),
			objects: []Object{deploy("a", "i", sens("internal"), nil)},
			want: []Decision{{
				Index: 0, Sensitivity: config.Internal, Tiers: tiers(config.PrivateCloud), Clusters: names("private"),
				Reason: "internal → allowed [private-cloud on-prem] → private (private-cloud clusters down; waiting for them, no " + labels.Failover + ")",
			}},
		},
		{
			name:    "first tier down, failover false: stays and waits (cluster false in Healthy)",
			healthy: map[string]bool{"public": true, "private": false, "onprem": true},
			objects: []Object{deploy("a", "i", sens("internal"), ann(labels.Failover, "false"))},
			want: []Decision{{
				Index: 0, Sensitivity: config.Internal, Tiers: tiers(config.PrivateCloud), Clusters: names("private"),
				Reason: "internal → allowed [private-cloud on-prem] → private (private-cloud clusters down; waiting for them, no " + labels.Failover + ")",
			}},
		},
		{
			name:    "first tier down, failover true: moves to the next allowed tier",
			healthy: up("public", "onprem"),
			objects: []Object{deploy("a", "i", sens("internal"), failover)},
			want: []Decision{{
				Index: 0, Sensitivity: config.Internal, Tiers: tiers(config.OnPrem), Clusters: names("onprem"),
				Reason: "internal → allowed [private-cloud on-prem] → onprem (failover: private-cloud clusters down)",
			}},
		},
		{
			name:    "failover passes several down tiers",
			healthy: up("onprem"),
			objects: []Object{deploy("a", "p", sens("public"), failover)},
			want: []Decision{{
				Index: 0, Sensitivity: config.Public, Tiers: tiers(config.OnPrem), Clusters: names("onprem"),
				Reason: "public → allowed [public-cloud private-cloud on-prem] → onprem (failover: public-cloud, private-cloud clusters down)",
			}},
		},
		{
			name:    "failover after a tier without clusters",
			env:     "dev",
			healthy: up("onprem"),
			objects: []Object{deploy("a", "p", sens("public"), failover)},
			want: []Decision{{
				Index: 0, Sensitivity: config.Public, Tiers: tiers(config.OnPrem), Clusters: names("onprem"),
				Reason: "public → allowed [public-cloud private-cloud on-prem] → onprem (failover: private-cloud clusters down)",
			}},
		},
		{
			name:    "failover with the first tier healthy stays on it",
			objects: []Object{deploy("a", "c", sens("confidential"), failover)},
			want: []Decision{{
				Index: 0, Sensitivity: config.Confidential, Tiers: tiers(config.PrivateCloud), Clusters: names("private"),
				Reason: "confidential → allowed [private-cloud on-prem] → private (preferred)",
			}},
		},
		{
			name:    "never to a disallowed tier: restricted with failover and on-prem down stays on-prem",
			healthy: up("public", "private"),
			objects: []Object{deploy("a", "r", sens("restricted"), failover)},
			want: []Decision{{
				Index: 0, Sensitivity: config.Restricted, Tiers: tiers(config.OnPrem), Clusters: names("onprem"),
				Reason: "restricted → allowed [on-prem] → onprem (all allowed clusters down; waiting for on-prem)",
			}},
		},
		{
			name:    "never to an unrequested tier: failover stays inside strata.dev/tiers",
			healthy: up("public", "onprem"),
			objects: []Object{deploy("a", "p", sens("public"), ann(labels.Tiers, "private-cloud", labels.Failover, "true"))},
			want: []Decision{{
				Index: 0, Sensitivity: config.Public, Tiers: tiers(config.PrivateCloud), Clusters: names("private"),
				Reason: "public → allowed [public-cloud private-cloud on-prem] → requested [private-cloud] → private (all allowed clusters down; waiting for private-cloud)",
			}},
		},
		{
			name:    "failover across requested tiers in request order",
			healthy: up("public", "private"),
			objects: []Object{deploy("a", "p", sens("public"), ann(labels.Tiers, "on-prem,private-cloud", labels.Failover, "true"))},
			want: []Decision{{
				Index: 0, Sensitivity: config.Public, Tiers: tiers(config.PrivateCloud), Clusters: names("private"),
				Reason: "public → allowed [public-cloud private-cloud on-prem] → requested [on-prem private-cloud] → private (failover: on-prem clusters down)",
			}},
		},
		{
			name:    "all down with failover: stays on the first tier",
			healthy: map[string]bool{},
			objects: []Object{deploy("a", "i", sens("internal"), failover)},
			want: []Decision{{
				Index: 0, Sensitivity: config.Internal, Tiers: tiers(config.PrivateCloud), Clusters: names("private"),
				Reason: "internal → allowed [private-cloud on-prem] → private (all allowed clusters down; waiting for private-cloud)",
			}},
		},
		{
			name:    "invalid failover value",
			objects: []Object{deploy("a", "i", sens("internal"), ann(labels.Failover, "yes"))},
			wantViolations: []wantViolation{{
				Index: 0, Rule: RuleInvalidAnnotation, Contains: []string{labels.Failover, `"yes"`, `"true"`, `"false"`},
			}},
		},
	})
}

// ---- rule 4: target clusters and strata.dev/clusters ------------------------

func TestPlaceTargetClusters(t *testing.T) {
	runPlaceCases(t, []placeCase{
		{
			name:    "every cluster of the chosen tier",
			env:     "prod2",
			objects: []Object{deploy("a", "c", sens("confidential"), nil)},
			want: []Decision{{
				Index: 0, Sensitivity: config.Confidential, Tiers: tiers(config.PrivateCloud), Clusters: names("private-a", "private-b"),
				Reason: "confidential → allowed [private-cloud on-prem] → private-a, private-b (preferred)",
			}},
		},
		{
			name:    "one cluster of the tier down: the tier is still chosen with all its clusters",
			env:     "prod2",
			healthy: map[string]bool{"public": true, "private-a": false, "private-b": true, "onprem": true},
			objects: []Object{deploy("a", "c", sens("confidential"), nil)},
			want: []Decision{{
				Index: 0, Sensitivity: config.Confidential, Tiers: tiers(config.PrivateCloud), Clusters: names("private-a", "private-b"),
				Reason: "confidential → allowed [private-cloud on-prem] → private-a, private-b (preferred)",
			}},
		},
		{
			name:    "clusters annotation narrows within the chosen tier",
			env:     "prod2",
			objects: []Object{deploy("a", "c", sens("confidential"), ann(labels.Clusters, "private-b"))},
			want: []Decision{{
				Index: 0, Sensitivity: config.Confidential, Tiers: tiers(config.PrivateCloud), Clusters: names("private-b"),
				Reason: "confidential → allowed [private-cloud on-prem] → clusters [private-b] → private-b (preferred)",
			}},
		},
		{
			name:    "clusters annotation naming clusters of two tiers: first tier wins",
			env:     "prod2",
			objects: []Object{deploy("a", "c", sens("confidential"), ann(labels.Clusters, "onprem, private-a"))},
			want: []Decision{{
				Index: 0, Sensitivity: config.Confidential, Tiers: tiers(config.PrivateCloud), Clusters: names("private-a"),
				Reason: "confidential → allowed [private-cloud on-prem] → clusters [onprem private-a] → private-a (preferred)",
			}},
		},
		{
			name:    "named cluster down: unnamed healthy cluster of the tier does not count",
			env:     "prod2",
			healthy: map[string]bool{"public": true, "private-b": true, "onprem": true},
			objects: []Object{deploy("a", "i", sens("internal"), ann(labels.Clusters, "private-a onprem", labels.Failover, "true"))},
			want: []Decision{{
				Index: 0, Sensitivity: config.Internal, Tiers: tiers(config.OnPrem), Clusters: names("onprem"),
				Reason: "internal → allowed [private-cloud on-prem] → clusters [private-a onprem] → onprem (failover: private-cloud clusters down)",
			}},
		},
		{
			name:    "tiers and clusters annotations together",
			env:     "prod2",
			objects: []Object{deploy("a", "p", sens("public"), ann(labels.Tiers, "private-cloud", labels.Clusters, "private-a"))},
			want: []Decision{{
				Index: 0, Sensitivity: config.Public, Tiers: tiers(config.PrivateCloud), Clusters: names("private-a"),
				Reason: "public → allowed [public-cloud private-cloud on-prem] → requested [private-cloud] → clusters [private-a] → private-a (preferred)",
			}},
		},
		{
			name:    "unknown cluster",
			env:     "prod2",
			objects: []Object{deploy("a", "c", sens("confidential"), ann(labels.Clusters, "private-c"))},
			wantViolations: []wantViolation{{
				Index: 0, Rule: RuleUnknownCluster,
				Contains: []string{labels.Clusters, `"private-c"`, "environment prod2", "public, private-a, private-b, onprem"},
			}},
		},
		{
			name:    "cluster of a disallowed tier",
			objects: []Object{deploy("a", "r", sens("restricted"), ann(labels.Clusters, "public"))},
			wantViolations: []wantViolation{{
				Index: 0, Rule: RuleClusterNotAllowed,
				Contains: []string{labels.Clusters, "public, a public-cloud cluster", "restricted data may run only in [on-prem]", "remove public"},
			}},
		},
		{
			name:    "cluster outside the requested tiers",
			objects: []Object{deploy("a", "p", sens("public"), ann(labels.Tiers, "on-prem", labels.Clusters, "private"))},
			wantViolations: []wantViolation{{
				Index: 0, Rule: RuleClusterNotAllowed, Contains: []string{"private, a private-cloud cluster", "[on-prem]"},
			}},
		},
		{
			name:    "every bad cluster of the annotation is reported",
			objects: []Object{deploy("a", "r", sens("restricted"), ann(labels.Clusters, "nope,public,onprem"))},
			wantViolations: []wantViolation{
				{Index: 0, Rule: RuleUnknownCluster, Contains: []string{`"nope"`, "public, private, onprem"}},
				{Index: 0, Rule: RuleClusterNotAllowed, Contains: []string{"public", "[on-prem]"}},
			},
		},
		{
			name:    "empty clusters annotation",
			objects: []Object{deploy("a", "i", sens("internal"), ann(labels.Clusters, ""))},
			wantViolations: []wantViolation{{
				Index: 0, Rule: RuleInvalidAnnotation, Contains: []string{labels.Clusters, "empty"},
			}},
		},
		{
			name:    "no cluster in any allowed tier",
			env:     "cloud",
			objects: []Object{deploy("a", "r", sens("restricted"), nil)},
			wantViolations: []wantViolation{{
				Index: 0, Rule: RuleNoCluster,
				Contains: []string{"restricted data may run in [on-prem]", "environment cloud has no cluster there", "environments.cloud"},
			}},
		},
		{
			name:    "environment without clusters",
			env:     "empty",
			objects: []Object{deploy("a", "p", sens("public"), nil)},
			wantViolations: []wantViolation{{
				Index: 0, Rule: RuleNoCluster, Contains: []string{"[public-cloud private-cloud on-prem]", "environments.empty"},
			}},
		},
	})
}

// ---- rule 5: Namespaces, CRDs and cluster-scoped objects --------------------

func TestPlaceFollowersAndClusterScoped(t *testing.T) {
	const ex = "example.com"
	runPlaceCases(t, []placeCase{
		{
			name: "namespace follows its contents across tiers (input order kept)",
			objects: []Object{
				deploy("shop", "web", sens("public"), nil),
				configMap("shop", "keys", sens("restricted")),
				deploy("shop", "api", sens("internal"), nil),
				namespace("shop", nil),
			},
			want: []Decision{
				{Index: 0, Sensitivity: config.Public, Tiers: tiers(config.PublicCloud), Clusters: names("public"),
					Reason: "public → allowed [public-cloud private-cloud on-prem] → public (preferred)"},
				{Index: 1, Sensitivity: config.Restricted, Tiers: tiers(config.OnPrem), Clusters: names("onprem"),
					Reason: "restricted → allowed [on-prem] → onprem (preferred)"},
				{Index: 2, Sensitivity: config.Internal, Tiers: tiers(config.PrivateCloud), Clusters: names("private"),
					Reason: "internal → allowed [private-cloud on-prem] → private (preferred)"},
				{Index: 3, Sensitivity: "", Contents: config.Restricted, Tiers: tiers(config.PublicCloud, config.PrivateCloud, config.OnPrem),
					Clusters: names("public", "private", "onprem"),
					Reason:   "unlabeled Namespace follows the objects in it → public, private, onprem"},
			},
		},
		{
			name: "namespace union has each cluster once",
			objects: []Object{
				namespace("shop", nil),
				deploy("shop", "a", sens("internal"), nil),
				deploy("shop", "b", sens("confidential"), nil),
			},
			want: []Decision{
				{Index: 0, Sensitivity: "", Contents: config.Confidential, Tiers: tiers(config.PrivateCloud), Clusters: names("private"),
					Reason: "unlabeled Namespace follows the objects in it → private"},
				{Index: 1, Sensitivity: config.Internal, Tiers: tiers(config.PrivateCloud), Clusters: names("private"),
					Reason: "internal → allowed [private-cloud on-prem] → private (preferred)"},
				{Index: 2, Sensitivity: config.Confidential, Tiers: tiers(config.PrivateCloud), Clusters: names("private"),
					Reason: "confidential → allowed [private-cloud on-prem] → private (preferred)"},
			},
		},
		{
			name:    "namespace goes to both clusters of a tier",
			env:     "prod2",
			objects: []Object{namespace("shop", nil), deploy("shop", "a", sens("confidential"), nil)},
			want: []Decision{
				{Index: 0, Sensitivity: "", Contents: config.Confidential, Tiers: tiers(config.PrivateCloud), Clusters: names("private-a", "private-b"),
					Reason: "unlabeled Namespace follows the objects in it → private-a, private-b"},
				{Index: 1, Sensitivity: config.Confidential, Tiers: tiers(config.PrivateCloud), Clusters: names("private-a", "private-b"),
					Reason: "confidential → allowed [private-cloud on-prem] → private-a, private-b (preferred)"},
			},
		},
		{
			name: "namespace follows a failed-over object",
			healthy: map[string]bool{
				"public": true, "onprem": true,
			},
			objects: []Object{namespace("shop", sens("internal")), deploy("shop", "a", nil, ann(labels.Failover, "true"))},
			want: []Decision{
				{Index: 0, Sensitivity: config.Internal, Tiers: tiers(config.OnPrem), Clusters: names("onprem"),
					Reason: "internal Namespace follows the objects in it → onprem"},
				{Index: 1, Sensitivity: config.Internal, Tiers: tiers(config.OnPrem), Clusters: names("onprem"),
					Reason: "internal (from namespace shop) → allowed [private-cloud on-prem] → onprem (failover: private-cloud clusters down)"},
			},
		},
		{
			name: "objects of other namespaces and cluster-scoped objects do not pull a namespace",
			objects: []Object{
				namespace("a", sens("public")),
				deploy("a", "web", sens("internal"), nil),
				deploy("b", "db", sens("restricted"), nil),
				clusterRole("a", "admin", sens("restricted")),
			},
			want: []Decision{
				{Index: 0, Sensitivity: config.Public, Tiers: tiers(config.PrivateCloud), Clusters: names("private"),
					Reason: "public Namespace follows the objects in it → private"},
				{Index: 1, Sensitivity: config.Internal, Tiers: tiers(config.PrivateCloud), Clusters: names("private"),
					Reason: "internal → allowed [private-cloud on-prem] → private (preferred)"},
				{Index: 2, Sensitivity: config.Restricted, Tiers: tiers(config.OnPrem), Clusters: names("onprem"),
					Reason: "restricted → allowed [on-prem] → onprem (preferred)"},
				{Index: 3, Sensitivity: config.Restricted, Tiers: tiers(config.OnPrem), Clusters: names("onprem"),
					Reason: "restricted → allowed [on-prem] → onprem (preferred)"},
			},
		},
		{
			name: "labeled namespace whose contents go where its own label is not allowed",
			tiers: map[config.Sensitivity][]config.Tier{
				config.Public:     {config.PublicCloud},
				config.Restricted: {config.OnPrem},
			},
			objects: []Object{namespace("a", sens("public")), deploy("a", "db", sens("restricted"), nil)},
			want: []Decision{
				{Index: 1, Sensitivity: config.Restricted, Tiers: tiers(config.OnPrem), Clusters: names("onprem"),
					Reason: "restricted → allowed [on-prem] → onprem (preferred)"},
			},
			wantViolations: []wantViolation{{
				Index: 0, Rule: RuleTierNotAllowed, Contains: []string{"onprem (on-prem)", "public"},
			}},
		},
		{
			name:    "empty labeled namespace is placed by its own label",
			objects: []Object{namespace("empty", sens("confidential"))},
			want: []Decision{{
				Index: 0, Sensitivity: config.Confidential, Tiers: tiers(config.PrivateCloud), Clusters: names("private"),
				Reason: "confidential → allowed [private-cloud on-prem] → private (preferred)",
			}},
		},
		{
			name:    "empty unlabeled namespace",
			objects: []Object{namespace("empty", nil)},
			wantViolations: []wantViolation{{
				Index: 0, Rule: RuleUnlabeled, Contains: []string{"no placed object", labels.Sensitivity},
			}},
		},
		{
			name:    "empty namespace with unknown label",
			objects: []Object{namespace("empty", sens("nope"))},
			wantViolations: []wantViolation{{
				Index: 0, Rule: RuleUnknownSensitivity, Contains: []string{`"nope"`, allSens},
			}},
		},
		{
			name: "CRD follows its custom resources only",
			objects: []Object{
				crd(ex, "Widget", nil),
				custom(ex, "Widget", "x", "a", sens("restricted")),
				custom(ex, "Widget", "y", "b", sens("public")),
				custom(ex, "Gadget", "y", "c", sens("internal")),
				custom("other.io", "Widget", "y", "d", sens("internal")),
			},
			want: []Decision{
				{Index: 0, Sensitivity: "", Contents: config.Restricted, Tiers: tiers(config.PublicCloud, config.OnPrem), Clusters: names("public", "onprem"),
					Reason: "unlabeled CustomResourceDefinition follows its Widget resources → public, onprem"},
				{Index: 1, Sensitivity: config.Restricted, Tiers: tiers(config.OnPrem), Clusters: names("onprem"),
					Reason: "restricted → allowed [on-prem] → onprem (preferred)"},
				{Index: 2, Sensitivity: config.Public, Tiers: tiers(config.PublicCloud), Clusters: names("public"),
					Reason: "public → allowed [public-cloud private-cloud on-prem] → public (preferred)"},
				{Index: 3, Sensitivity: config.Internal, Tiers: tiers(config.PrivateCloud), Clusters: names("private"),
					Reason: "internal → allowed [private-cloud on-prem] → private (preferred)"},
				{Index: 4, Sensitivity: config.Internal, Tiers: tiers(config.PrivateCloud), Clusters: names("private"),
					Reason: "internal → allowed [private-cloud on-prem] → private (preferred)"},
			},
		},
		{
			name: "labeled CRD with resources keeps its own sensitivity",
			objects: []Object{
				custom(ex, "Widget", "x", "a", sens("internal")),
				crd(ex, "Widget", sens("public")),
			},
			want: []Decision{
				{Index: 0, Sensitivity: config.Internal, Tiers: tiers(config.PrivateCloud), Clusters: names("private"),
					Reason: "internal → allowed [private-cloud on-prem] → private (preferred)"},
				{Index: 1, Sensitivity: config.Public, Tiers: tiers(config.PrivateCloud), Clusters: names("private"),
					Reason: "public CustomResourceDefinition follows its Widget resources → private"},
			},
		},
		{
			name: "labeled CRD whose resources go to a tier its label forbids",
			objects: []Object{
				crd(ex, "Widget", sens("restricted")),
				custom(ex, "Widget", "x", "a", sens("public")),
			},
			want: []Decision{
				{Index: 1, Sensitivity: config.Public, Tiers: tiers(config.PublicCloud), Clusters: names("public"),
					Reason: "public → allowed [public-cloud private-cloud on-prem] → public (preferred)"},
			},
			wantViolations: []wantViolation{{
				Index: 0, Rule: RuleTierNotAllowed, Contains: []string{"public (public-cloud)", "restricted"},
			}},
		},
		{
			name: "CRD with unknown label and resources",
			objects: []Object{
				crd(ex, "Widget", sens("nope")),
				custom(ex, "Widget", "x", "a", sens("public")),
			},
			want: []Decision{
				{Index: 1, Sensitivity: config.Public, Tiers: tiers(config.PublicCloud), Clusters: names("public"),
					Reason: "public → allowed [public-cloud private-cloud on-prem] → public (preferred)"},
			},
			wantViolations: []wantViolation{{
				Index: 0, Rule: RuleUnknownSensitivity, Contains: []string{`"nope"`, allSens},
			}},
		},
		{
			name:    "CRD without resources is placed by its own label",
			objects: []Object{crd(ex, "Widget", sens("internal"))},
			want: []Decision{{
				Index: 0, Sensitivity: config.Internal, Tiers: tiers(config.PrivateCloud), Clusters: names("private"),
				Reason: "internal → allowed [private-cloud on-prem] → private (preferred)",
			}},
		},
		{
			name: "CRD without placed resources and without label",
			objects: []Object{
				crd(ex, "Widget", nil),
				custom(ex, "Widget", "x", "a", nil),
			},
			wantViolations: []wantViolation{
				{Index: 1, Rule: RuleUnlabeled, Contains: []string{labels.Sensitivity, allSens}},
				{Index: 0, Rule: RuleUnlabeled, Contains: []string{"cluster-scoped", labels.Sensitivity, allSens}},
			},
		},
		{
			name:    "cluster-scoped object without own label",
			objects: []Object{clusterRole("", "reader", nil)},
			wantViolations: []wantViolation{{
				Index: 0, Rule: RuleUnlabeled, Contains: []string{"cluster-scoped", labels.Sensitivity, allSens},
			}},
		},
		{
			name:    "cluster-scoped object with own label",
			objects: []Object{clusterRole("", "reader", sens("confidential"))},
			want: []Decision{{
				Index: 0, Sensitivity: config.Confidential, Tiers: tiers(config.PrivateCloud), Clusters: names("private"),
				Reason: "confidential → allowed [private-cloud on-prem] → private (preferred)",
			}},
		},
		{
			name:    "cluster-scoped object ignores its Namespace field: no floor",
			objects: []Object{namespace("app", sens("restricted")), clusterRole("app", "reader", nil)},
			want: []Decision{{
				Index: 0, Sensitivity: config.Restricted, Tiers: tiers(config.OnPrem), Clusters: names("onprem"),
				Reason: "restricted → allowed [on-prem] → onprem (preferred)",
			}},
			wantViolations: []wantViolation{{
				Index: 1, Rule: RuleUnlabeled, Contains: []string{"cluster-scoped", labels.Sensitivity},
			}},
		},
		{
			name:    "cluster-scoped object ignores its Namespace field: floor not raised",
			objects: []Object{namespace("app", sens("restricted")), clusterRole("app", "reader", sens("public"))},
			want: []Decision{
				{Index: 0, Sensitivity: config.Restricted, Tiers: tiers(config.OnPrem), Clusters: names("onprem"),
					Reason: "restricted → allowed [on-prem] → onprem (preferred)"},
				{Index: 1, Sensitivity: config.Public, Tiers: tiers(config.PublicCloud), Clusters: names("public"),
					Reason: "public → allowed [public-cloud private-cloud on-prem] → public (preferred)"},
			},
		},
		{
			name:    "cluster-scoped object ignores its Namespace field: unknown namespace label does not matter",
			objects: []Object{namespace("app", sens("top-secret")), clusterRole("app", "reader", sens("public"))},
			want: []Decision{
				{Index: 1, Sensitivity: config.Public, Tiers: tiers(config.PublicCloud), Clusters: names("public"),
					Reason: "public → allowed [public-cloud private-cloud on-prem] → public (preferred)"},
			},
			wantViolations: []wantViolation{{
				Index: 0, Rule: RuleUnknownSensitivity, Contains: []string{`"top-secret"`, allSens},
			}},
		},
	})
}

// ---- rule 6: reasons --------------------------------------------------------

func TestPlaceReasonDesignExample(t *testing.T) {
	res := Place(Input{
		Environment: "prod",
		Tiers:       config.DefaultTiers(),
		Clusters:    prodClusters(),
		Objects:     []Object{deploy("vault", "vault", sens("restricted"), nil)},
	})
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	if len(res.Decisions) != 1 {
		t.Fatalf("got %d decisions, want 1", len(res.Decisions))
	}
	const want = "restricted → allowed [on-prem] → onprem (preferred)"
	if got := res.Decisions[0].Reason; got != want {
		t.Errorf("Reason = %q, want %q", got, want)
	}
}

// ---- all violations, Err, ForCluster, String --------------------------------

func TestPlaceReportsAllViolations(t *testing.T) {
	in := Input{
		Environment: "prod",
		Tiers:       config.DefaultTiers(),
		Clusters:    prodClusters(),
		Objects: []Object{
			namespace("app", nil),
			deploy("app", "a", nil, nil),
			deploy("app", "b", sens("secret"), nil),
			deploy("app", "c", sens("restricted"), ann(labels.Tiers, "public-cloud")),
			deploy("app", "d", sens("internal"), ann(labels.Failover, "maybe")),
			deploy("app", "e", sens("public"), nil),
			deploy("x", "f", sens("confidential"), ann(labels.Clusters, "nope,public")),
		},
	}
	res := Place(in)
	checkResult(t, in, res,
		[]Decision{
			{Index: 0, Sensitivity: "", Contents: config.Public, Tiers: tiers(config.PublicCloud), Clusters: names("public"),
				Reason: "unlabeled Namespace follows the objects in it → public"},
			{Index: 5, Sensitivity: config.Public, Tiers: tiers(config.PublicCloud), Clusters: names("public"),
				Reason: "public → allowed [public-cloud private-cloud on-prem] → public (preferred)"},
		},
		[]wantViolation{
			{Index: 1, Rule: RuleUnlabeled},
			{Index: 2, Rule: RuleUnknownSensitivity},
			{Index: 3, Rule: RuleTierNotAllowed},
			{Index: 4, Rule: RuleInvalidAnnotation},
			{Index: 6, Rule: RuleUnknownCluster},
			{Index: 6, Rule: RuleClusterNotAllowed},
		})

	err := res.Err()
	var ve *ViolationsError
	if !errors.As(err, &ve) {
		t.Fatalf("Err() = %T, want *ViolationsError", err)
	}
	if ve.Environment != "prod" {
		t.Errorf("ViolationsError.Environment = %q, want prod", ve.Environment)
	}
	msg := err.Error()
	lines := strings.Split(msg, "\n")
	if want := "5 objects cannot be placed in environment prod; nothing was applied or written:"; lines[0] != want {
		t.Errorf("first line = %q, want %q", lines[0], want)
	}
	if len(lines) != 1+len(res.Violations) {
		t.Fatalf("Error() has %d lines, want %d:\n%s", len(lines), 1+len(res.Violations), msg)
	}
	for i, v := range res.Violations {
		if want := "  " + v.String(); lines[i+1] != want {
			t.Errorf("line %d = %q, want %q", i+1, lines[i+1], want)
		}
	}
	for _, s := range []string{"Deployment app/a: [unlabeled]", "Deployment x/f: [unknown-cluster]", "Deployment x/f: [cluster-not-allowed]"} {
		if !strings.Contains(msg, s) {
			t.Errorf("Error() does not mention %q:\n%s", s, msg)
		}
	}
}

func TestViolationsErrorCountsObjects(t *testing.T) {
	one := deploy("a", "w", nil, nil)
	two := clusterRole("", "r", nil)
	tests := []struct {
		name string
		vs   []Violation
		want string
	}{
		{
			name: "one object, two violations",
			vs: []Violation{
				{Index: 3, Object: one, Rule: RuleUnknownTier, Message: "m1"},
				{Index: 3, Object: one, Rule: RuleTierNotAllowed, Message: "m2"},
			},
			want: "1 object cannot be placed in environment dev; nothing was applied or written:" +
				"\n  Deployment a/w: [unknown-tier] m1" +
				"\n  Deployment a/w: [tier-not-allowed] m2",
		},
		{
			name: "two objects",
			vs: []Violation{
				{Index: 0, Object: one, Rule: RuleUnlabeled, Message: "m1"},
				{Index: 1, Object: two, Rule: RuleUnlabeled, Message: "m2"},
			},
			want: "2 objects cannot be placed in environment dev; nothing was applied or written:" +
				"\n  Deployment a/w: [unlabeled] m1" +
				"\n  ClusterRole r: [unlabeled] m2",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &Result{Environment: "dev", Violations: tc.vs}
			err := r.Err()
			if err == nil {
				t.Fatal("Err() = nil")
			}
			if diff := cmp.Diff(tc.want, err.Error()); diff != "" {
				t.Errorf("Error() mismatch (-want +got):\n%s", diff)
			}
		})
	}
	if err := (&Result{Environment: "dev", Decisions: []Decision{{Index: 0}}}).Err(); err != nil {
		t.Errorf("Err() without violations = %v, want nil", err)
	}
}

func TestResultForCluster(t *testing.T) {
	res := Place(Input{
		Environment: "prod",
		Tiers:       config.DefaultTiers(),
		Clusters:    prodClusters(),
		Objects: []Object{
			deploy("a", "x", sens("public"), nil),                                       // public
			namespace("a", nil),                                                         // public, onprem
			deploy("a", "y", sens("restricted"), nil),                                   // onprem
			deploy("b", "z", sens("internal"), nil),                                     // private
			deploy("c", "bad", nil, nil),                                                // violation
			deploy("c", "w", sens("public"), ann(labels.Tiers, "on-prem,public-cloud")), // onprem
			clusterRole("", "viewer", sens("public")),                                   // public
		},
	})
	tests := []struct {
		cluster string
		want    []int
	}{
		{"public", []int{0, 1, 6}},
		{"private", []int{3}},
		{"onprem", []int{1, 2, 5}},
		{"nope", nil},
	}
	for _, tc := range tests {
		t.Run(tc.cluster, func(t *testing.T) {
			var got []int
			for _, d := range res.ForCluster(tc.cluster) {
				got = append(got, d.Index)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ForCluster(%q) indexes mismatch (-want +got):\n%s", tc.cluster, diff)
			}
		})
	}
}

func TestStrings(t *testing.T) {
	tests := []struct {
		name string
		got  string
		want string
	}{
		{"namespaced object", deploy("app", "web", nil, nil).String(), "Deployment app/web"},
		{"cluster-scoped object", clusterRole("", "reader", nil).String(), "ClusterRole reader"},
		{"namespace", namespace("app", nil).String(), "Namespace app"},
		{"violation", Violation{Object: deploy("app", "web", nil, nil), Rule: RuleNoCluster, Message: "add one: x"}.String(),
			"Deployment app/web: [no-cluster] add one: x"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("got %q, want %q", tc.got, tc.want)
			}
		})
	}
}

// ---- known bugs -------------------------------------------------------------

// A reason must be true. When strata.dev/clusters leaves out every cluster of
// a preferred tier, the environment still has clusters of that tier; the
// reason must not claim it has none.
func TestPlaceReasonTruthfulWhenClustersAnnotationSkipsATier(t *testing.T) {
	tests := []struct {
		name        string
		healthy     map[string]bool
		annotations map[string]string
		wantPrefix  string
		notContains string
	}{
		{
			name:        "named cluster in the second tier only",
			annotations: ann(labels.Clusters, "onprem"),
			wantPrefix:  "internal → allowed [private-cloud on-prem] → clusters [onprem] → onprem (",
			notContains: "no private-cloud cluster in prod",
		},
		{
			name:        "named cluster in the second tier only, with failover",
			healthy:     map[string]bool{"public": true, "onprem": true},
			annotations: ann(labels.Clusters, "onprem", labels.Failover, "true"),
			wantPrefix:  "internal → allowed [private-cloud on-prem] → clusters [onprem] → onprem (",
			notContains: "no private-cloud cluster in prod",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := Input{
				Environment: "prod",
				Tiers:       config.DefaultTiers(),
				Clusters:    prodClusters(),
				Healthy:     tc.healthy,
				Objects:     []Object{deploy("a", "i", sens("internal"), tc.annotations)},
			}
			res := Place(in)
			if err := res.Err(); err != nil {
				t.Fatal(err)
			}
			if len(res.Decisions) != 1 {
				t.Fatalf("got %d decisions, want 1", len(res.Decisions))
			}
			d := res.Decisions[0]
			if diff := cmp.Diff(names("onprem"), d.Clusters); diff != "" {
				t.Errorf("Clusters mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tiers(config.OnPrem), d.Tiers); diff != "" {
				t.Errorf("Tiers mismatch (-want +got):\n%s", diff)
			}
			if !strings.HasPrefix(d.Reason, tc.wantPrefix) {
				t.Errorf("Reason = %q, want prefix %q", d.Reason, tc.wantPrefix)
			}
			if strings.Contains(d.Reason, tc.notContains) {
				t.Errorf("Reason = %q claims %q, but prod has a private-cloud cluster", d.Reason, tc.notContains)
			}
		})
	}
}
