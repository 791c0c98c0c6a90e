package webhook

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	utiljson "k8s.io/apimachinery/pkg/util/json"

	"github.com/strata-gitops/strata/internal/config"
	"github.com/strata-gitops/strata/internal/labels"
	"github.com/strata-gitops/strata/internal/placement"
)

// Run one at a time, for a fixed time (make fuzz-short):
//
//	go test -run='^$' -fuzz='^FuzzDecodeAdmissionReview$' -fuzztime=10s ./webhook/
//	go test -run='^$' -fuzz='^FuzzDecide$' -fuzztime=10s ./webhook/
//
// Seeds: the kube-apiserver fixtures of testdata/admission and the corpus
// of testdata/fuzz/<name>.

// addFixtureSeeds adds every captured AdmissionReview as a seed.
func addFixtureSeeds(f *testing.F, add func(body []byte)) {
	paths, _ := filepath.Glob(filepath.Join("testdata", "admission", "*.json"))
	if len(paths) == 0 {
		f.Fatal("no seeds in testdata/admission")
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		add(b)
	}
}

// FuzzDecodeAdmissionReview: whatever the body, the handler answers (never
// panics), with 200 only for a review it could decode, in that review's
// version and uid; and the one-pass decode agrees with the typed one.
func FuzzDecodeAdmissionReview(f *testing.F) {
	addFixtureSeeds(f, func(b []byte) { f.Add(b) })
	h, _ := attackHandler(config.OnPrem)
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/validate", bytes.NewReader(body)))
		var typed admissionv1.AdmissionReview
		typedErr := utiljson.Unmarshal(body, &typed) // case-sensitive, as the apiserver decodes
		switch rec.Code {
		case http.StatusOK:
			var out admissionv1.AdmissionReview
			if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out.Response == nil {
				t.Fatalf("200 without an AdmissionReview: %v: %s", err, rec.Body)
			}
			if typedErr != nil || typed.Request == nil {
				t.Fatalf("answered a body the typed decode rejects (%v)", typedErr)
			}
			if out.Response.UID != typed.Request.UID || out.APIVersion != typed.APIVersion {
				t.Fatalf("answer uid %q version %q, request uid %q version %q", out.Response.UID, out.APIVersion, typed.Request.UID, typed.APIVersion)
			}
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("HTTP %d: %s", rec.Code, rec.Body)
		}
		r, err := decodeReview(body)
		if err != nil || r.Request == nil || typedErr != nil || typed.Request == nil {
			return
		}
		q, tq := r.Request, typed.Request
		if q.UID != tq.UID || q.Kind != tq.Kind || q.Resource != tq.Resource || q.Namespace != tq.Namespace ||
			q.Name != tq.Name || q.Operation != tq.Operation || q.UserInfo.Username != tq.UserInfo.Username {
			t.Fatalf("one-pass decode %+v differs from the typed decode %+v", q, tq)
		}
	})
}

// FuzzDecide: for any request, in every tier, the webhook never panics and
// never allows an object whose sensitivity it cannot determine, nor one
// whose sensitivity the tier does not allow, unless an exemption or
// break-glass says so. The oracle below works the answer out on its own,
// the simple way, from the request.
func FuzzDecide(f *testing.F) {
	addFixtureSeeds(f, func(b []byte) {
		r, err := decodeReview(b)
		if err != nil || r.Request == nil {
			f.Fatalf("fixture does not decode: %v", err)
		}
		q := r.Request
		obj, _ := json.Marshal(q.Object)
		old, _ := json.Marshal(q.OldObject)
		grp := ""
		if len(q.UserInfo.Groups) > 0 {
			grp = q.UserInfo.Groups[0]
		}
		f.Add(string(q.Operation), q.Kind.Group, q.Kind.Version, q.Kind.Kind, q.Resource.Resource, q.Namespace, obj, old, grp, q.DryRun != nil && *q.DryRun)
	})
	tiers := []config.Tier{config.PublicCloud, config.PrivateCloud, config.OnPrem}
	handlers := map[config.Tier]*Handler{}
	for _, tier := range tiers {
		handlers[tier], _ = attackHandler(tier)
	}
	f.Fuzz(func(t *testing.T, op, group, version, kind, resource, namespace string, object, oldObject []byte, userGroup string, dryRun bool) {
		req := map[string]any{
			"uid": "u", "operation": op, "namespace": namespace,
			"kind":     map[string]any{"group": group, "version": version, "kind": kind},
			"resource": map[string]any{"group": group, "version": version, "resource": resource},
			"userInfo": map[string]any{"username": "fuzz", "groups": []string{userGroup}}, "dryRun": dryRun,
		}
		for k, raw := range map[string][]byte{"object": object, "oldObject": oldObject} {
			if json.Valid(raw) {
				req[k] = json.RawMessage(raw)
			}
		}
		body, err := json.Marshal(map[string]any{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": req})
		if err != nil {
			return
		}
		parsed, err := decodeReview(body)
		if err != nil {
			return
		}
		for _, tier := range tiers {
			h := handlers[tier]
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/validate", bytes.NewReader(body)))
			var out admissionv1.AdmissionReview
			if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &out) != nil || out.Response == nil {
				t.Fatalf("%s: HTTP %d: %s", tier, rec.Code, rec.Body)
			}
			if out.Response.Allowed && !mayAllow(h, parsed.Request) {
				t.Fatalf("%s allowed %s %s/%s %s %s in %q: object %s", tier, op, group, version, kind, resource, namespace, object)
			}
			if !out.Response.Allowed && (out.Response.Result == nil || out.Response.Result.Message == "") {
				t.Fatalf("%s: a denial that does not say why", tier)
			}
		}
	})
}

// mayAllow is the fuzz oracle: may the webhook of h let q through?
func mayAllow(h *Handler, q *request) bool {
	switch {
	case q.Operation == admissionv1.Delete || q.Operation == admissionv1.Connect:
		return true
	case q.Namespace != "" && slices.Contains(h.Checker.ExemptNamespaces, q.Namespace):
		return true
	case placement.IsControlPlaneRecord(q.Kind.Group, q.Kind.Version, q.Kind.Kind): // the list is policy, TestExemptionsLink pins it
		return true
	case q.Object == nil:
		return false
	}
	if md, _ := q.OldObject["metadata"].(map[string]any); q.Operation == admissionv1.Update && md["deletionTimestamp"] != nil {
		return true // maybe a finalizer removal; TestExemptionsLink pins which
	}
	if md, _ := q.Object["metadata"].(map[string]any); md != nil {
		if ann, _ := md["annotations"].(map[string]any); ann[labels.BreakGlass] != nil && slices.Contains(q.UserInfo.Groups, "platform-oncall") {
			return true
		}
	}
	// Every sensitivity label that applies, each a known value.
	isNS := q.Resource.Group == "" && q.Resource.Resource == "namespaces" || q.Kind.Group == "" && q.Kind.Kind == "Namespace"
	var values []any
	label := func(o map[string]any, path ...string) {
		for _, k := range path {
			o, _ = o[k].(map[string]any)
		}
		md, _ := o["metadata"].(map[string]any)
		l, _ := md["labels"].(map[string]any)
		if v, ok := l[labels.Sensitivity]; ok {
			values = append(values, v)
		}
	}
	label(q.Object)
	switch {
	case q.Kind.Group == "batch" && q.Kind.Kind == "CronJob":
		label(q.Object, "spec", "jobTemplate")
		label(q.Object, "spec", "jobTemplate", "spec", "template")
	case q.Kind.Group == "" && q.Kind.Kind == "PodTemplate":
		label(q.Object, "template")
	case q.Kind.Group == "apps" && slices.Contains([]string{"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"}, q.Kind.Kind) ||
		q.Kind.Group == "batch" && q.Kind.Kind == "Job" || q.Kind.Group == "" && q.Kind.Kind == "ReplicationController":
		label(q.Object, "spec", "template")
	}
	namespaced := !isNS && q.Namespace != ""
	floor := ""
	switch {
	case namespaced:
		floor = q.Namespace
	case !isNS && q.Kind.Group == "" && q.Kind.Kind == "PersistentVolume":
		// A volume bound to a claim: the claim's Namespace is its floor.
		spec, _ := q.Object["spec"].(map[string]any)
		ref, _ := spec["claimRef"].(map[string]any)
		floor, _ = ref["namespace"].(string)
	}
	if floor != "" {
		l, ok := attackLookup(floor)
		if !ok {
			return false
		}
		if v, ok := l[labels.Sensitivity]; ok {
			values = append(values, v)
		}
	}
	if len(values) == 0 {
		return !namespaced && (isNS || placement.HoldsNoData(q.Kind.Group, q.Kind.Kind))
	}
	highest := config.Sensitivity("")
	for _, v := range values {
		s, ok := v.(string)
		if !ok || !config.Sensitivity(s).Valid() {
			return false
		}
		highest = config.Max(highest, config.Sensitivity(s))
	}
	return slices.Contains(h.Checker.Tiers[highest], h.Checker.Tier)
}
