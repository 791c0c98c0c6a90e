package webhook

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/strata-gitops/strata/internal/config"
)

func testHandler(tier config.Tier, cluster string) *Handler {
	return &Handler{
		Checker: &Checker{Cluster: cluster, Tier: tier, Tiers: config.DefaultTiers(), ExemptNamespaces: config.DefaultExemptNamespaces()},
		Namespaces: func(name string) (map[string]string, bool) {
			switch name {
			case "ledger":
				return map[string]string{"strata.dev/sensitivity": "restricted"}, true
			case "ml-training":
				return map[string]string{"strata.dev/sensitivity": "public"}, true
			case "scratch":
				return map[string]string{}, true
			}
			return nil, false
		},
		BreakGlassGroups: []string{"platform-oncall"},
		Metrics:          NewMetrics(nil),
		Log:              slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

func deployment(ns, name, sensitivity string, annotations map[string]string) []byte {
	md := map[string]any{"name": name, "namespace": ns}
	if sensitivity != "" {
		md["labels"] = map[string]any{"strata.dev/sensitivity": sensitivity}
	}
	if annotations != nil {
		md["annotations"] = annotations
	}
	b, _ := json.Marshal(map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": md, "spec": map[string]any{}})
	return b
}

type reviewOpt func(*admissionv1.AdmissionRequest)

func review(apiVersion string, op admissionv1.Operation, ns string, obj []byte, opts ...reviewOpt) []byte {
	req := &admissionv1.AdmissionRequest{
		UID: "uid-1", Kind: metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"},
		Resource:  metav1.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"},
		Namespace: ns, Operation: op, Object: runtime.RawExtension{Raw: obj},
		UserInfo: authenticationv1.UserInfo{Username: "dev@example.com", Groups: []string{"developers"}},
	}
	for _, o := range opts {
		o(req)
	}
	b, _ := json.Marshal(admissionv1.AdmissionReview{TypeMeta: metav1.TypeMeta{APIVersion: apiVersion, Kind: "AdmissionReview"}, Request: req})
	return b
}

func post(t *testing.T, h http.Handler, body []byte) (*httptest.ResponseRecorder, *admissionv1.AdmissionReview) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/validate", bytes.NewReader(body)))
	if rec.Code != http.StatusOK {
		return rec, nil
	}
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("response is not an AdmissionReview: %v: %s", err, rec.Body)
	}
	return rec, &out
}

func TestHandlerDecisions(t *testing.T) {
	dryRun := func(r *admissionv1.AdmissionRequest) { v := true; r.DryRun = &v }
	oncall := func(r *admissionv1.AdmissionRequest) {
		r.UserInfo = authenticationv1.UserInfo{Username: "alice", Groups: []string{"platform-oncall"}}
	}
	glass := map[string]string{"strata.dev/break-glass": "INC-1234 ledger down"}
	tests := []struct {
		name        string
		tier        config.Tier
		body        []byte
		wantAllowed bool
		wantInMsg   []string
		wantWarning string
	}{
		{"restricted Deployment into public is denied", config.PublicCloud,
			review("admission.k8s.io/v1", admissionv1.Create, "ledger", deployment("ledger", "ledger", "restricted", nil)), false,
			[]string{"Deployment ledger/ledger is restricted", "tier public-cloud", "allowed only in [on-prem]"}, ""},
		{"the same with dry-run is denied the same way", config.PublicCloud,
			review("admission.k8s.io/v1", admissionv1.Create, "ledger", deployment("ledger", "ledger", "restricted", nil), dryRun), false,
			[]string{"Deployment ledger/ledger is restricted"}, ""},
		{"v1beta1 reviews are answered in v1beta1", config.PublicCloud,
			review("admission.k8s.io/v1beta1", admissionv1.Create, "ledger", deployment("ledger", "ledger", "", nil)), false,
			[]string{"floor of Namespace ledger"}, ""},
		{"compliant object passes", config.PublicCloud,
			review("admission.k8s.io/v1", admissionv1.Create, "ml-training", deployment("ml-training", "train", "public", nil)), true, nil, ""},
		{"DELETE is never denied", config.PublicCloud,
			review("admission.k8s.io/v1", admissionv1.Delete, "ledger", nil), true, nil, ""},
		{"break-glass by an allowed group passes with a warning", config.PublicCloud,
			review("admission.k8s.io/v1", admissionv1.Create, "ledger", deployment("ledger", "ledger", "restricted", glass), oncall), true,
			nil, "break-glass by alice"},
		{"break-glass by anyone else is denied and says why", config.PublicCloud,
			review("admission.k8s.io/v1", admissionv1.Create, "ledger", deployment("ledger", "ledger", "restricted", glass)), false,
			[]string{"break-glass needs", "platform-oncall", "dev@example.com"}, ""},
		{"unlabeled object in an unlabeled namespace is denied on-prem", config.OnPrem,
			review("admission.k8s.io/v1", admissionv1.Create, "scratch", deployment("scratch", "x", "", nil)), false,
			[]string{"has no sensitivity", "label the object or the Namespace"}, ""},
		{"an object that is not a JSON object is denied (fail closed)", config.OnPrem,
			review("admission.k8s.io/v1", admissionv1.Create, "ledger", []byte(`[1, 2]`)), false,
			[]string{"not a JSON object"}, ""},
		{"a CREATE without an object is denied", config.OnPrem,
			review("admission.k8s.io/v1", admissionv1.Create, "ledger", nil), false, []string{"no object"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := testHandler(tt.tier, map[config.Tier]string{config.PublicCloud: "public", config.OnPrem: "onprem"}[tt.tier])
			rec, out := post(t, h, tt.body)
			if out == nil {
				t.Fatalf("HTTP %d: %s", rec.Code, rec.Body)
			}
			var in admissionv1.AdmissionReview
			_ = json.Unmarshal(tt.body, &in)
			if out.APIVersion != in.APIVersion || out.Response == nil || out.Response.UID != "uid-1" {
				t.Fatalf("response version %q uid %v, want %q uid-1", out.APIVersion, out.Response, in.APIVersion)
			}
			if out.Response.Allowed != tt.wantAllowed {
				t.Fatalf("allowed = %v, want %v (%v)", out.Response.Allowed, tt.wantAllowed, out.Response.Result)
			}
			if !tt.wantAllowed && (out.Response.Result == nil || out.Response.Result.Code != http.StatusForbidden) {
				t.Errorf("denial without a 403 status: %+v", out.Response.Result)
			}
			for _, s := range tt.wantInMsg {
				if !strings.Contains(out.Response.Result.Message, s) {
					t.Errorf("message %q lacks %q", out.Response.Result.Message, s)
				}
			}
			if tt.wantWarning != "" && !strings.Contains(strings.Join(out.Response.Warnings, "\n"), tt.wantWarning) {
				t.Errorf("warnings %v lack %q", out.Response.Warnings, tt.wantWarning)
			}
		})
	}
}

func TestHandlerHostileInput(t *testing.T) {
	h := testHandler(config.OnPrem, "onprem")
	huge := review("admission.k8s.io/v1", admissionv1.Create, "ledger",
		deployment("ledger", strings.Repeat("x", MaxRequestBytes), "restricted", nil))
	tests := []struct {
		name     string
		method   string
		body     []byte
		wantCode int
	}{
		{"huge body", http.MethodPost, huge, http.StatusRequestEntityTooLarge},
		{"malformed JSON", http.MethodPost, []byte(`{"apiVersion": "admission.k8s.io/v1", "request": {`), http.StatusBadRequest},
		{"not an object", http.MethodPost, []byte(`[1,2,3]`), http.StatusBadRequest},
		{"unknown version", http.MethodPost, []byte(`{"apiVersion":"admission.k8s.io/v2","kind":"AdmissionReview","request":{"uid":"x"}}`), http.StatusBadRequest},
		{"missing request", http.MethodPost, []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`), http.StatusBadRequest},
		{"missing uid", http.MethodPost, []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{}}`), http.StatusBadRequest},
		{"GET", http.MethodGet, nil, http.StatusMethodNotAllowed},
		{"unknown kind is still judged", http.MethodPost, []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"group":"x.example","version":"v9","kind":"Gizmo"},"operation":"CREATE","namespace":"ledger","object":{"apiVersion":"x.example/v9","kind":"Gizmo","metadata":{"name":"g"}}}}`), http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tt.method, "/validate", bytes.NewReader(tt.body)))
			if rec.Code != tt.wantCode {
				t.Errorf("HTTP %d, want %d: %s", rec.Code, tt.wantCode, rec.Body)
			}
		})
	}
	// The handler still answers after all that.
	_, out := post(t, h, review("admission.k8s.io/v1", admissionv1.Create, "ledger", deployment("ledger", "ok", "restricted", nil)))
	if out == nil || !out.Response.Allowed {
		t.Fatalf("a good request after hostile ones: %+v", out)
	}
}

// The one-pass decode and the typed decode agree on what the policies see.
func TestDecodeReviewKeepsIntegersAndFields(t *testing.T) {
	body := []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u1",` +
		`"kind":{"group":"apps","version":"v1","kind":"Deployment"},"resource":{"group":"apps","version":"v1","resource":"deployments"},` +
		`"name":"web","namespace":"ns","operation":"UPDATE","userInfo":{"username":"alice","groups":["g"]},"dryRun":true,` +
		`"object":{"spec":{"replicas":3}},"oldObject":{"spec":{"replicas":2}}}}`)
	r, err := decodeReview(body)
	if err != nil {
		t.Fatal(err)
	}
	q := r.Request
	if q.UID != "u1" || q.Kind.Kind != "Deployment" || q.Resource.Resource != "deployments" || q.Name != "web" || q.Namespace != "ns" ||
		q.Operation != admissionv1.Update || q.UserInfo.Username != "alice" || q.DryRun == nil || !*q.DryRun {
		t.Errorf("fields lost: %+v", q)
	}
	if got := q.Object["spec"].(map[string]any)["replicas"]; got != int64(3) {
		t.Errorf("object replicas = %#v, want int64(3)", got)
	}
	if got := q.OldObject["spec"].(map[string]any)["replicas"]; got != int64(2) {
		t.Errorf("oldObject replicas = %#v, want int64(2)", got)
	}
}
