package plan_test

import (
	"encoding/base64"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/strata-gitops/strata/internal/config"
	"github.com/strata-gitops/strata/internal/desired"
	"github.com/strata-gitops/strata/internal/placement"
	"github.com/strata-gitops/strata/internal/plan"
	"github.com/strata-gitops/strata/internal/source"
)

const (
	baseCommit = "1111111111111111111111111111111111111111"
	headCommit = "2222222222222222222222222222222222222222"
)

const strataYAML = `apiVersion: strata.dev/v1alpha1
kind: Config
tiers:
  public:       [public-cloud, private-cloud, on-prem]
  internal:     [private-cloud, on-prem]
  confidential: [private-cloud, on-prem]
  restricted:   [on-prem]
environments:
  prod:
    path: overlays/prod
    clusters:
      - {name: public,  tier: public-cloud,  cost: 1}
      - {name: private, tier: private-cloud, cost: 3}
      - {name: onprem,  tier: on-prem,       cost: 5}
approvals:
  public: 0
  internal: 1
  confidential: 1
  restricted: 2
`

// The base revision of overlays/prod, one file per object so that a case
// adds, changes or removes a file.
var baseObjects = map[string]string{
	"ns-web.yaml": `apiVersion: v1
kind: Namespace
metadata:
  name: web
  labels:
    strata.dev/sensitivity: public
`,
	"web-site.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  name: site
  namespace: web
data:
  greeting: hello
`,
	"web-old.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  name: old
  namespace: web
data:
  legacy: "true"
`,
	// shared spans private (internal objects) and onprem (restricted ones),
	// so that moving an object between them does not move the Namespace.
	"ns-shared.yaml": `apiVersion: v1
kind: Namespace
metadata:
  name: shared
  labels:
    strata.dev/sensitivity: internal
`,
	"shared-a.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  name: a
  namespace: shared
data:
  k: v
`,
	"shared-b.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  name: b
  namespace: shared
  labels:
    strata.dev/sensitivity: restricted
data:
  k: v
`,
	"shared-model.yaml":     modelYAML("internal"),
	"shared-dashboard.yaml": dashboardYAML("v1"),
	"shared-creds.yaml": `apiVersion: v1
kind: Secret
metadata:
  name: creds
  namespace: shared
type: Opaque
data:
  password: ` + b64(basePassword) + `
`,
}

const (
	basePassword = "hunter2-base-value"
	headPassword = "correct-horse-battery-staple"
	tokenValue   = "plain-token-value-in-stringData"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func modelYAML(sensitivity string) string {
	return `apiVersion: v1
kind: ConfigMap
metadata:
  name: model
  namespace: shared
  labels:
    strata.dev/sensitivity: ` + sensitivity + `
data:
  weights: "0.1,0.2"
`
}

func dashboardYAML(tag string) string {
	return `apiVersion: apps/v1
kind: Deployment
metadata:
  name: dashboard
  namespace: shared
spec:
  replicas: 2
  selector:
    matchLabels: {app: dashboard}
  template:
    metadata:
      labels: {app: dashboard}
    spec:
      containers:
      - name: dashboard
        image: registry.example.com/dashboard:` + tag + `
        ports:
        - containerPort: 8080
`
}

// files returns a config repository with overlays/prod made of objects.
func files(objects map[string]string) map[string]string {
	out := map[string]string{"strata.yaml": strataYAML}
	var k strings.Builder
	k.WriteString("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n")
	for _, name := range slices.Sorted(maps.Keys(objects)) {
		k.WriteString("- " + name + "\n")
		out["overlays/prod/"+name] = objects[name]
	}
	out["overlays/prod/kustomization.yaml"] = k.String()
	return out
}

func snapshot(t *testing.T, commit string, fs map[string]string) *source.Snapshot {
	t.Helper()
	mem := filesys.MakeFsInMemory()
	for p, content := range fs {
		if err := mem.WriteFile("/"+p, []byte(content)); err != nil {
			t.Fatalf("writing %s: %v", p, err)
		}
	}
	return &source.Snapshot{FS: mem, Root: "/", Revision: &source.Revision{Commit: commit}}
}

// state builds prod of objects at commit; a placement violation returns
// the state and the error, as the plan command gets them.
func state(t *testing.T, commit string, objects map[string]string) (*desired.State, error) {
	t.Helper()
	snap := snapshot(t, commit, files(objects))
	cfg, err := desired.LoadConfig(snap)
	if err != nil {
		t.Fatalf("LoadConfig: %v", err)
	}
	return desired.Build(snap, cfg, "prod", desired.DefaultOptions())
}

func mustState(t *testing.T, commit string, objects map[string]string) *desired.State {
	t.Helper()
	st, err := state(t, commit, objects)
	if err != nil {
		t.Fatalf("Build at %s: %v", commit, err)
	}
	return st
}

// with returns base's objects with changes applied ("" removes a file).
func with(changes map[string]string) map[string]string {
	out := maps.Clone(baseObjects)
	for k, v := range changes {
		if v == "" {
			delete(out, k)
		} else {
			out[k] = v
		}
	}
	return out
}

// change is the comparable part of a plan.Change.
type change struct {
	Cluster string
	Action  plan.Action
	Ref     string
	Peer    string
}

func changesOf(e *plan.Environment) []change {
	var out []change
	for _, c := range e.Clusters {
		for _, ch := range c.Changes {
			out = append(out, change{c.Name, ch.Action, ch.Ref(), ch.Peer})
		}
	}
	return out
}

// diffOf returns the diff of ref's change in cluster.
func diffOf(t *testing.T, e *plan.Environment, cluster, ref string) string {
	t.Helper()
	for _, c := range e.Clusters {
		for _, ch := range c.Changes {
			if c.Name == cluster && ch.Ref() == ref {
				return ch.Diff
			}
		}
	}
	t.Fatalf("no change of %s in %s", ref, cluster)
	return ""
}

func TestCompare(t *testing.T) {
	defaultApprovals := map[config.Sensitivity]int{config.Public: 0, config.Internal: 1, config.Confidential: 1, config.Restricted: 2}
	tests := []struct {
		name      string
		head      map[string]string // changes to baseObjects
		approvals map[config.Sensitivity]int
		want      []change
		highest   config.Sensitivity
		approved  int
		// diffs: cluster/ref → lines the diff must contain.
		diffs map[[2]string][]string
		// secrets never appear in any diff.
		secrets []string
	}{
		{
			name: "no change, only the revision differs",
		},
		{
			name: "added",
			head: map[string]string{"web-new.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  name: new
  namespace: web
data:
  fresh: "yes"
`},
			want:    []change{{"public", plan.Added, "ConfigMap web/new", ""}},
			highest: config.Public,
			diffs: map[[2]string][]string{{"public", "ConfigMap web/new"}: {
				"--- base/ConfigMap web/new", "+++ head/ConfigMap web/new", "+  name: new", "+  fresh: \"yes\"",
				"+    strata.dev/managed-by: strata", "+    strata.dev/environment: prod",
			}},
		},
		{
			name:     "changed",
			head:     map[string]string{"shared-dashboard.yaml": dashboardYAML("v2")},
			want:     []change{{"private", plan.Changed, "Deployment shared/dashboard", ""}},
			highest:  config.Internal,
			approved: 1,
			diffs: map[[2]string][]string{{"private", "Deployment shared/dashboard"}: {
				"--- base/Deployment shared/dashboard", "+++ head/Deployment shared/dashboard",
				"-      - image: registry.example.com/dashboard:v1", "+      - image: registry.example.com/dashboard:v2",
			}},
		},
		{
			name:    "removed",
			head:    map[string]string{"web-old.yaml": ""},
			want:    []change{{"public", plan.Removed, "ConfigMap web/old", ""}},
			highest: config.Public,
		},
		{
			name: "moved between clusters",
			head: map[string]string{"shared-model.yaml": modelYAML("restricted")},
			want: []change{
				{"private", plan.MovedOut, "ConfigMap shared/model", "onprem"},
				{"onprem", plan.MovedIn, "ConfigMap shared/model", "private"},
			},
			highest:  config.Restricted,
			approved: 2,
			diffs: map[[2]string][]string{{"onprem", "ConfigMap shared/model"}: {
				// Against the old object, not against nothing.
				"-    strata.dev/sensitivity: internal", "+    strata.dev/sensitivity: restricted",
				"-    strata.dev/placement: internal → allowed [private-cloud on-prem] → private (preferred)",
				"+    strata.dev/placement: restricted → allowed [on-prem] → onprem (preferred)",
				"   name: model",
			}},
		},
		{
			name: "secret values are masked",
			head: map[string]string{
				"shared-creds.yaml": strings.Replace(baseObjects["shared-creds.yaml"], b64(basePassword), b64(headPassword), 1),
				"shared-token.yaml": `apiVersion: v1
kind: Secret
metadata:
  name: token
  namespace: shared
stringData:
  token: ` + tokenValue + `
`,
			},
			want: []change{
				{"private", plan.Added, "Secret shared/token", ""},
				{"private", plan.Changed, "Secret shared/creds", ""},
			},
			highest:  config.Internal,
			approved: 1,
			diffs: map[[2]string][]string{
				{"private", "Secret shared/creds"}: {
					"-  password: (masked " + plan.MaskOf(b64(basePassword)) + ")",
					"+  password: (masked " + plan.MaskOf(b64(headPassword)) + ")",
				},
				{"private", "Secret shared/token"}: {"+  token: (masked " + plan.MaskOf(tokenValue) + ")"},
			},
			secrets: []string{basePassword, headPassword, b64(basePassword), b64(headPassword), tokenValue},
		},
		{
			name:      "approvals come from the table given",
			head:      map[string]string{"shared-dashboard.yaml": dashboardYAML("v2")},
			approvals: map[config.Sensitivity]int{config.Internal: 4},
			want:      []change{{"private", plan.Changed, "Deployment shared/dashboard", ""}},
			highest:   config.Internal,
			approved:  4,
		},
		{
			name: "highest sensitivity of several changes",
			head: map[string]string{
				"web-old.yaml":          "",
				"shared-dashboard.yaml": dashboardYAML("v3"),
				"shared-b.yaml":         strings.Replace(baseObjects["shared-b.yaml"], "k: v", "k: w", 1),
			},
			want: []change{
				{"public", plan.Removed, "ConfigMap web/old", ""},
				{"private", plan.Changed, "Deployment shared/dashboard", ""},
				{"onprem", plan.Changed, "ConfigMap shared/b", ""},
			},
			highest:  config.Restricted,
			approved: 2,
			diffs:    map[[2]string][]string{{"onprem", "ConfigMap shared/b"}: {"-  k: v", "+  k: w"}},
		},
	}
	base := mustState(t, baseCommit, baseObjects)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			head := mustState(t, headCommit, with(tt.head))
			approvals := tt.approvals
			if approvals == nil {
				approvals = defaultApprovals
			}
			got := plan.Compare("prod", base, head, approvals)
			if got.Name != "prod" {
				t.Errorf("Name = %q", got.Name)
			}
			var names []string
			for _, c := range got.Clusters {
				names = append(names, c.Name+"/"+c.Tier)
			}
			if diff := cmp.Diff([]string{"public/public-cloud", "private/private-cloud", "onprem/on-prem"}, names); diff != "" {
				t.Errorf("clusters (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.want, changesOf(got)); diff != "" {
				t.Errorf("changes (-want +got):\n%s", diff)
			}
			if got.Highest != tt.highest || got.Approvals != tt.approved {
				t.Errorf("Highest, Approvals = %q, %d; want %q, %d", got.Highest, got.Approvals, tt.highest, tt.approved)
			}
			if got.Changed() != (len(tt.want) > 0) {
				t.Errorf("Changed() = %v", got.Changed())
			}
			if len(got.Violations) != 0 {
				t.Errorf("Violations = %v", got.Violations)
			}
			for where, lines := range tt.diffs {
				d := diffOf(t, got, where[0], where[1])
				for _, l := range lines {
					if !containsLine(d, l) {
						t.Errorf("diff of %s in %s lacks the line %q:\n%s", where[1], where[0], l, d)
					}
				}
			}
			for _, c := range got.Clusters {
				for _, ch := range c.Changes {
					if ch.Reason == "" {
						t.Errorf("%s %s in %s has no reason", ch.Action, ch.Ref(), c.Name)
					}
					if strings.Contains(ch.Diff, "strata.dev/revision") {
						t.Errorf("diff of %s shows the revision annotation:\n%s", ch.Ref(), ch.Diff)
					}
					for _, s := range tt.secrets {
						if strings.Contains(ch.Diff, s) || strings.Contains(ch.Reason, s) {
							t.Errorf("the diff of %s reveals the secret value %q:\n%s", ch.Ref(), s, ch.Diff)
						}
					}
				}
			}
		})
	}
}

func containsLine(diff, line string) bool {
	for _, l := range strings.Split(diff, "\n") {
		if l == line {
			return true
		}
	}
	return false
}

func TestCompareMovedReasonsAndSensitivity(t *testing.T) {
	base := mustState(t, baseCommit, baseObjects)
	head := mustState(t, headCommit, with(map[string]string{"shared-model.yaml": modelYAML("restricted")}))
	got := plan.Compare("prod", base, head, nil)
	for _, c := range got.Clusters {
		for _, ch := range c.Changes {
			// Both sides of the move carry the head placement: where it goes and why.
			if ch.Reason != "restricted → allowed [on-prem] → onprem (preferred)" {
				t.Errorf("%s %s in %s: reason %q", ch.Action, ch.Ref(), c.Name, ch.Reason)
			}
			switch ch.Action {
			case plan.MovedOut:
				if ch.Sensitivity != config.Internal || ch.Diff != "" {
					t.Errorf("moved-out: sensitivity %q (want the base one, internal), diff %q", ch.Sensitivity, ch.Diff)
				}
			case plan.MovedIn:
				if ch.Sensitivity != config.Restricted {
					t.Errorf("moved-in: sensitivity %q, want restricted", ch.Sensitivity)
				}
			}
		}
	}
	// A nil approval table needs nothing.
	if got.Highest != config.Restricted || got.Approvals != 0 {
		t.Errorf("Highest, Approvals = %q, %d", got.Highest, got.Approvals)
	}
}

func TestCompareEnvironmentOnlyOnOneSide(t *testing.T) {
	approvals := map[config.Sensitivity]int{config.Public: 0, config.Internal: 1, config.Restricted: 2}
	st := mustState(t, headCommit, baseObjects)
	want := func(a plan.Action) []change {
		var out []change
		for _, c := range []struct{ cluster, ref string }{
			{"public", "ConfigMap web/old"}, {"public", "ConfigMap web/site"}, {"public", "Namespace web"},
			{"private", "ConfigMap shared/a"}, {"private", "ConfigMap shared/model"}, {"private", "Deployment shared/dashboard"},
			{"private", "Namespace shared"}, {"private", "Secret shared/creds"},
			{"onprem", "ConfigMap shared/b"}, {"onprem", "Namespace shared"},
		} {
			out = append(out, change{c.cluster, a, c.ref, ""})
		}
		return out
	}
	for _, tt := range []struct {
		name       string
		base, head *desired.State
		action     plan.Action
	}{
		{"only in head", nil, st, plan.Added},
		{"only in base", st, nil, plan.Removed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := plan.Compare("prod", tt.base, tt.head, approvals)
			if diff := cmp.Diff(want(tt.action), changesOf(got)); diff != "" {
				t.Errorf("changes (-want +got):\n%s", diff)
			}
			if got.Highest != config.Restricted || got.Approvals != 2 {
				t.Errorf("Highest, Approvals = %q, %d; want restricted, 2", got.Highest, got.Approvals)
			}
			if tt.action == plan.Added {
				d := diffOf(t, got, "private", "Secret shared/creds")
				if strings.Contains(d, b64(basePassword)) || !containsLine(d, "+  password: (masked "+plan.MaskOf(b64(basePassword))+")") {
					t.Errorf("added Secret diff:\n%s", d)
				}
			}
		})
	}
	t.Run("in neither", func(t *testing.T) {
		got := plan.Compare("gone", nil, nil, approvals)
		if got.Name != "gone" || got.Changed() || len(got.Clusters) != 0 || got.Highest != "" || got.Approvals != 0 {
			t.Errorf("Compare(nil, nil) = %+v", got)
		}
	})
}

func TestCompareListsPlacementViolations(t *testing.T) {
	base := mustState(t, baseCommit, baseObjects)
	head, err := state(t, headCommit, with(map[string]string{
		"ns-loose.yaml": "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: loose\n",
		"loose.yaml":    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: stray\n  namespace: loose\n",
	}))
	var verr *placement.ViolationsError
	if !errors.As(err, &verr) || head == nil {
		t.Fatalf("Build = %v, %v; want the state and a *placement.ViolationsError", head, err)
	}
	got := plan.Compare("prod", base, head, nil)
	if len(got.Violations) != len(verr.Violations) || len(got.Violations) == 0 {
		t.Fatalf("Violations = %q, want one per placement violation (%v)", got.Violations, verr)
	}
	for i, v := range verr.Violations {
		if got.Violations[i] != v.String() {
			t.Errorf("Violations[%d] = %q, want %q", i, got.Violations[i], v.String())
		}
	}
	joined := strings.Join(got.Violations, "\n")
	for _, s := range []string{"ConfigMap loose/stray", "overlays/prod/loose.yaml", string(placement.RuleUnlabeled)} {
		if !strings.Contains(joined, s) {
			t.Errorf("violations do not mention %q:\n%s", s, joined)
		}
	}
	// Violations in base only are not the change's problem.
	if got := plan.Compare("prod", head, base, nil); len(got.Violations) != 0 {
		t.Errorf("violations of base listed: %q", got.Violations)
	}
}

func TestStricterApprovals(t *testing.T) {
	tests := []struct {
		name string
		a, b map[config.Sensitivity]int
		want map[config.Sensitivity]int
	}{
		{
			name: "max per key",
			a:    map[config.Sensitivity]int{config.Public: 0, config.Internal: 2, config.Restricted: 2},
			b:    map[config.Sensitivity]int{config.Public: 1, config.Internal: 1, config.Confidential: 3},
			want: map[config.Sensitivity]int{config.Public: 1, config.Internal: 2, config.Confidential: 3, config.Restricted: 2},
		},
		{
			name: "head lowering its own threshold is ignored",
			a:    map[config.Sensitivity]int{config.Restricted: 2},
			b:    map[config.Sensitivity]int{config.Restricted: 0},
			want: map[config.Sensitivity]int{config.Restricted: 2},
		},
		{
			name: "nil sides",
			a:    nil,
			b:    map[config.Sensitivity]int{config.Internal: 1},
			want: map[config.Sensitivity]int{config.Internal: 1},
		},
		{
			name: "both nil",
			want: map[config.Sensitivity]int{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := maps.Clone(tt.a), maps.Clone(tt.b)
			if diff := cmp.Diff(tt.want, plan.StricterApprovals(tt.a, tt.b)); diff != "" {
				t.Errorf("StricterApprovals (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.want, plan.StricterApprovals(tt.b, tt.a)); diff != "" {
				t.Errorf("StricterApprovals swapped (-want +got):\n%s", diff)
			}
			if !cmp.Equal(a, tt.a) || !cmp.Equal(b, tt.b) {
				t.Errorf("inputs modified")
			}
		})
	}
}

func TestClusterCountAndChangeRef(t *testing.T) {
	c := plan.Cluster{Changes: []plan.Change{
		{Action: plan.Added, Kind: "Namespace", Name: "web"},
		{Action: plan.Added, Kind: "ConfigMap", Namespace: "web", Name: "a"},
		{Action: plan.Removed, Kind: "ConfigMap", Namespace: "web", Name: "b"},
	}}
	for a, want := range map[plan.Action]int{plan.Added: 2, plan.Removed: 1, plan.Changed: 0, plan.MovedIn: 0, plan.MovedOut: 0} {
		if got := c.Count(a); got != want {
			t.Errorf("Count(%s) = %d, want %d", a, got, want)
		}
	}
	if got := c.Changes[0].Ref(); got != "Namespace web" {
		t.Errorf("Ref() = %q", got)
	}
	if got := c.Changes[1].Ref(); got != "ConfigMap web/a" {
		t.Errorf("Ref() = %q", got)
	}
}

func TestCompareSortsChanges(t *testing.T) {
	base := mustState(t, baseCommit, baseObjects)
	head := mustState(t, headCommit, with(map[string]string{
		"web-old.yaml":  "",
		"web-site.yaml": strings.Replace(baseObjects["web-site.yaml"], "hello", "bonjour", 1),
		"web-z.yaml":    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: z\n  namespace: web\n",
		"web-a.yaml":    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  namespace: web\n",
	}))
	got := plan.Compare("prod", base, head, nil)
	// Added, moved-in, changed, moved-out, removed; by reference within each.
	want := []change{
		{"public", plan.Added, "ConfigMap web/a", ""},
		{"public", plan.Added, "ConfigMap web/z", ""},
		{"public", plan.Changed, "ConfigMap web/site", ""},
		{"public", plan.Removed, "ConfigMap web/old", ""},
	}
	if diff := cmp.Diff(want, changesOf(got)); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}
}

// A Secret whose value changes to another of the same length is a change:
// it must show in the plan and count toward the approvals (the reconciler's
// approval gate takes Highest from Compare).
func TestCompareSecretValueChangeOfSameLength(t *testing.T) {
	objects := with(map[string]string{"shared-b-secret.yaml": `apiVersion: v1
kind: Secret
metadata:
  name: vault
  namespace: shared
  labels:
    strata.dev/sensitivity: restricted
data:
  key: ` + b64("aaaaaaaa") + `
`})
	base := mustState(t, baseCommit, objects)
	objects["shared-b-secret.yaml"] = strings.Replace(objects["shared-b-secret.yaml"], b64("aaaaaaaa"), b64("bbbbbbbb"), 1)
	head := mustState(t, headCommit, objects)
	got := plan.Compare("prod", base, head, map[config.Sensitivity]int{config.Restricted: 2})
	if diff := cmp.Diff([]change{{"onprem", plan.Changed, "Secret shared/vault", ""}}, changesOf(got)); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}
	if got.Highest != config.Restricted || got.Approvals != 2 {
		t.Errorf("Highest, Approvals = %q, %d; want restricted, 2", got.Highest, got.Approvals)
	}
	for _, c := range got.Clusters {
		for _, ch := range c.Changes {
			for _, s := range []string{"aaaaaaaa", "bbbbbbbb", b64("aaaaaaaa"), b64("bbbbbbbb")} {
				if strings.Contains(ch.Diff, s) {
					t.Errorf("diff reveals %q:\n%s", s, ch.Diff)
				}
			}
		}
	}
}

// A change to an unlabeled Namespace (or CRD) that only follows its
// contents touches those contents' data: it needs the approvals of the
// most sensitive object it holds, as any change to them would.
func TestCompareFollowerChangeCountsItsContents(t *testing.T) {
	objects := with(map[string]string{
		"ns-vault.yaml": "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: vault\n",
		"vault.yaml":    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: keys\n  namespace: vault\n  labels:\n    strata.dev/sensitivity: restricted\n",
	})
	base := mustState(t, baseCommit, objects)
	objects["ns-vault.yaml"] = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: vault\n  labels:\n    pod-security.kubernetes.io/enforce: privileged\n"
	head := mustState(t, headCommit, objects)
	got := plan.Compare("prod", base, head, map[config.Sensitivity]int{config.Restricted: 2})
	if diff := cmp.Diff([]change{{"onprem", plan.Changed, "Namespace vault", ""}}, changesOf(got)); diff != "" {
		t.Fatalf("changes (-want +got):\n%s", diff)
	}
	if got.Highest != config.Restricted || got.Approvals != 2 {
		t.Errorf("Highest, Approvals = %q, %d; want restricted, 2", got.Highest, got.Approvals)
	}
}
