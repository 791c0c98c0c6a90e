package webhook

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/strata-gitops/strata/internal/config"
	"github.com/strata-gitops/strata/internal/labels"
	"github.com/strata-gitops/strata/internal/placement"
	"github.com/strata-gitops/strata/internal/policy"
)

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// runLink runs one link on req and reports whether it passed the attempt on.
func runLink(link func(decider) decider, a *attempt) (resp *response, passed bool) {
	resp = link(func(*attempt) *response { passed = true; return allow() })(a)
	return resp, passed
}

func newAttempt(req *request) *attempt {
	return &attempt{ctx: context.Background(), req: req, object: subject(req)}
}

func terminatingCM(finalizers []any, data string) map[string]any {
	md := map[string]any{"name": "held", "namespace": "ledger", "resourceVersion": "7",
		"deletionTimestamp": "2026-12-04T10:05:00Z", "labels": map[string]any{labels.Sensitivity: "restricted"}}
	if finalizers != nil {
		md["finalizers"] = finalizers
	}
	return map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": md, "data": map[string]any{"ledger": data}}
}

func TestExemptionsLink(t *testing.T) {
	h := &Handler{Checker: &Checker{ExemptNamespaces: []string{"kube-system", "tools"}}}
	old := terminatingCM([]any{"example.com/hold", "example.com/other"}, "books")
	notTerminating := terminatingCM([]any{"example.com/hold"}, "books")
	delete(notTerminating["metadata"].(map[string]any), "deletionTimestamp")
	relabeled := terminatingCM(nil, "books")
	relabeled["metadata"].(map[string]any)["labels"] = map[string]any{labels.Sensitivity: "public"}
	tests := []struct {
		name   string
		req    request
		exempt bool
	}{
		{"DELETE", request{Operation: admissionv1.Delete, Kind: cmKind, Namespace: "ledger"}, true},
		{"CONNECT", request{Operation: admissionv1.Connect, Kind: cmKind, Namespace: "ledger"}, true},
		{"exempt namespace", request{Operation: admissionv1.Create, Kind: cmKind, Namespace: "tools"}, true},
		{"an exempt Namespace itself", request{Operation: admissionv1.Update, Kind: nsKind, Resource: namespaces, Namespace: "kube-system", Name: "kube-system"}, true},
		{"other namespace", request{Operation: admissionv1.Create, Kind: cmKind, Namespace: "ledger"}, false},
		{"core v1 Event", request{Operation: admissionv1.Create, Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Event"}, Namespace: "ledger"}, true},
		{"events.k8s.io/v1 Event", request{Operation: admissionv1.Create, Kind: metav1.GroupVersionKind{Group: "events.k8s.io", Version: "v1", Kind: "Event"}, Namespace: "ledger"}, true},
		{"coordination.k8s.io/v1 Lease", request{Operation: admissionv1.Update, Kind: metav1.GroupVersionKind{Group: "coordination.k8s.io", Version: "v1", Kind: "Lease"}, Namespace: "ledger"}, true},
		{"networking.k8s.io/v1 IPAddress", request{Operation: admissionv1.Create, Kind: metav1.GroupVersionKind{Group: "networking.k8s.io", Version: "v1", Kind: "IPAddress"}}, true},
		{"a custom Event", request{Operation: admissionv1.Create, Kind: metav1.GroupVersionKind{Group: "example.com", Version: "v1", Kind: "Event"}, Namespace: "ledger"}, false},
		{"a Lease of another version", request{Operation: admissionv1.Create, Kind: metav1.GroupVersionKind{Group: "coordination.k8s.io", Version: "v1beta1", Kind: "Lease"}, Namespace: "ledger"}, false},
		{"an Event of another group", request{Operation: admissionv1.Create, Kind: metav1.GroupVersionKind{Group: "events.example.com", Version: "v1", Kind: "Event"}, Namespace: "ledger"}, false},
		{"terminating: one finalizer removed", request{Operation: admissionv1.Update, Kind: cmKind, Namespace: "ledger",
			OldObject: old, Object: terminatingCM([]any{"example.com/other"}, "books")}, true},
		{"terminating: all finalizers removed", request{Operation: admissionv1.Update, Kind: cmKind, Namespace: "ledger",
			OldObject: old, Object: terminatingCM(nil, "books")}, true},
		{"terminating: finalizer removed and data changed", request{Operation: admissionv1.Update, Kind: cmKind, Namespace: "ledger",
			OldObject: old, Object: terminatingCM(nil, "rewritten")}, false},
		{"terminating: finalizer removed and label changed", request{Operation: admissionv1.Update, Kind: cmKind, Namespace: "ledger",
			OldObject: old, Object: relabeled}, false},
		{"terminating: finalizer swapped", request{Operation: admissionv1.Update, Kind: cmKind, Namespace: "ledger",
			OldObject: old, Object: terminatingCM([]any{"example.com/new"}, "books")}, false},
		{"terminating: nothing removed", request{Operation: admissionv1.Update, Kind: cmKind, Namespace: "ledger",
			OldObject: old, Object: terminatingCM([]any{"example.com/hold", "example.com/other"}, "books")}, false},
		{"terminating: finalizers not strings", request{Operation: admissionv1.Update, Kind: cmKind, Namespace: "ledger",
			OldObject: old, Object: terminatingCM([]any{int64(1)}, "books")}, false},
		{"not terminating: finalizer removed", request{Operation: admissionv1.Update, Kind: cmKind, Namespace: "ledger",
			OldObject: notTerminating, Object: func() map[string]any {
				o := terminatingCM(nil, "books")
				delete(o["metadata"].(map[string]any), "deletionTimestamp")
				return o
			}()}, false},
		{"CREATE with a deletionTimestamp", request{Operation: admissionv1.Create, Kind: cmKind, Namespace: "ledger",
			Object: terminatingCM(nil, "books")}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, passed := runLink(h.exemptions, newAttempt(&tt.req))
			if passed == tt.exempt {
				t.Errorf("passed on = %v, want %v", passed, !tt.exempt)
			}
			if tt.exempt && (resp == nil || !resp.Allowed) {
				t.Errorf("exempt but not allowed: %+v", resp)
			}
		})
	}
}

type fakePolicies []policy.Verdict

func (f fakePolicies) Evaluate(_ context.Context, in policy.Input) []policy.Verdict {
	if in.Namespace == nil || in.Tier != config.OnPrem {
		return []policy.Verdict{{Policy: "input", Action: "Deny", Message: "namespaceObject or tier missing"}}
	}
	return f
}

func TestPoliciesLink(t *testing.T) {
	req := &request{Operation: admissionv1.Create, Kind: cmKind, Resource: configMaps, Namespace: "ledger", Object: objectWith("c", nil, nil)}
	h := &Handler{Checker: testChecker(config.OnPrem), Namespaces: lookup, Log: discard, Policies: fakePolicies{
		{Policy: "no-hostpath", Rule: "validations[0]", Action: "Deny", Message: "no hostPath"},
		{Policy: "labels", Action: "Warn", Message: "add app.kubernetes.io/name"},
		{Policy: "audit-only", Action: "Audit", Message: "noted"},
	}}
	a := newAttempt(req)
	// The sensitivity link reads the Namespace the policies see.
	runLink(h.sensitivity, a)
	if _, passed := runLink(h.policies, a); !passed {
		t.Fatal("the policies link did not pass the attempt on")
	}
	want := []denial{{rule: "no-hostpath", msg: "policy no-hostpath (validations[0]): no hostPath"}}
	if diff := cmp.Diff(want, a.denials, cmp.AllowUnexported(denial{})); diff != "" {
		t.Errorf("denials (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"policy labels: add app.kubernetes.io/name"}, a.warnings); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
	// No policies: nothing to add.
	b := newAttempt(req)
	if _, passed := runLink((&Handler{Checker: h.Checker}).policies, b); !passed || len(b.denials) != 0 {
		t.Errorf("without policies: passed %v, denials %v", passed, b.denials)
	}
}

func TestBreakGlassLink(t *testing.T) {
	h := &Handler{Checker: testChecker(config.PublicCloud), BreakGlassGroups: []string{"platform-oncall"}}
	glass := map[string]any{labels.BreakGlass: "INC-1234 ledger down"}
	oncall := authenticationv1.UserInfo{Username: "alice", Groups: []string{"platform-oncall"}}
	dev := authenticationv1.UserInfo{Username: "bob", Groups: []string{"developers"}}
	withAnn := func(ann map[string]any) map[string]any {
		o := objectWith("ledger", sens("restricted"), nil)
		o["metadata"].(map[string]any)["annotations"] = ann
		return o
	}
	tests := []struct {
		name      string
		user      authenticationv1.UserInfo
		object    map[string]any
		denied    bool
		wantGlass bool
		wantRules []string
	}{
		{"nothing denied: nothing to bypass", oncall, withAnn(glass), false, false, nil},
		{"on-call bypasses", oncall, withAnn(glass), true, true, []string{"tier-not-allowed"}},
		{"a developer cannot", dev, withAnn(glass), true, false, []string{"tier-not-allowed", "break-glass-not-allowed"}},
		{"an empty reason does not count", oncall, withAnn(map[string]any{labels.BreakGlass: " "}), true, false, []string{"tier-not-allowed", "break-glass-not-allowed"}},
		{"no annotation", oncall, withAnn(nil), true, false, []string{"tier-not-allowed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAttempt(&request{Operation: admissionv1.Create, Kind: deployKind, Namespace: "ledger", UserInfo: tt.user, Object: tt.object})
			if tt.denied {
				a.deny(placement.RuleTierNotAllowed, "restricted")
			}
			runLink(h.breakGlass, a)
			if (a.glass != nil) != tt.wantGlass {
				t.Errorf("break-glass = %+v, want %v", a.glass, tt.wantGlass)
			}
			if diff := cmp.Diff(tt.wantRules, rulesOf(a.denials), cmp.Comparer(func(a, b []string) bool { return strings.Join(a, ",") == strings.Join(b, ",") })); diff != "" {
				t.Errorf("rules (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRespondLink(t *testing.T) {
	yes := true
	for _, dry := range []bool{false, true} {
		t.Run(map[bool]string{false: "recorded", true: "dry-run leaves no record"}[dry], func(t *testing.T) {
			rec := &attackRecords{reg: prometheus.NewRegistry()}
			h := &Handler{Checker: testChecker(config.PublicCloud), Audit: rec, Recorder: rec, Metrics: NewMetrics(rec.reg), Log: discard}
			req := &request{Operation: admissionv1.Create, Kind: deployKind, Namespace: "ledger", Object: objectWith("ledger", nil, nil)}
			if dry {
				req.DryRun = &yes
			}
			a := newAttempt(req)
			a.deny(placement.RuleTierNotAllowed, "first")
			a.deny("resource-limits", "second")
			resp := h.respond(a)
			if resp.Allowed || resp.Result.Code != http.StatusForbidden || resp.Result.Message != "strata: first; second" {
				t.Errorf("denial = %+v", resp.Result)
			}
			b := newAttempt(req)
			b.glass = &BreakGlassEvent{Object: "Deployment ledger/ledger", User: "alice", Bypassed: []string{"tier-not-allowed"}}
			if resp := h.respond(b); !resp.Allowed {
				t.Errorf("break-glass not allowed: %+v", resp)
			}
			records := len(rec.audit) + len(rec.breakGlass)
			if want := map[bool]int{false: 4, true: 0}[dry]; records != want {
				t.Errorf("%d records, want %d: %+v %+v", records, want, rec.audit, rec.breakGlass)
			}
			if n := rec.counted(t); (n == 0) != dry {
				t.Errorf("metrics counted %v", n)
			}
		})
	}
}

// webhook.exemptNamespaces of strata.yaml reaches the handler.
func TestExemptNamespacesFromConfig(t *testing.T) {
	cfg := &config.Config{Webhook: config.Webhook{ExemptNamespaces: []string{"tools"}}}
	cfg.SetDefaults()
	h := &Handler{Checker: NewChecker(cfg, "public", config.PublicCloud), Namespaces: attackLookup, Metrics: NewMetrics(nil), Log: discard}
	if resp := admit(t, h, "configmap-create-unlabeled-in-tools"); !resp.Allowed {
		t.Errorf("an unlabeled ConfigMap in exempt Namespace tools was denied: %v", resp.Result)
	}
	h, _ = attackHandler(config.PublicCloud)
	if resp := admit(t, h, "configmap-create-unlabeled-in-tools"); resp.Allowed {
		t.Error("with the default exempt namespaces, an unlabeled ConfigMap in tools was allowed")
	}
	if got, want := Configuration(Target{URL: "https://x", ExemptNamespaces: cfg.Webhook.ExemptNamespaces}, nil).Webhooks[0].NamespaceSelector.MatchExpressions[0].Values, []string{"tools"}; !cmp.Equal(got, want) {
		t.Errorf("registration skips %v, want %v", got, want)
	}
}
