package webhook

import (
	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	utiljson "k8s.io/apimachinery/pkg/util/json"
)

// decodedReview is an AdmissionReview (v1 and v1beta1 share the shape) as the
// handler needs it.
type decodedReview struct {
	APIVersion string   `json:"apiVersion"`
	Request    *request `json:"request"`
}

// request is an AdmissionRequest whose objects are decoded straight into
// maps with int64 numbers (as the apiserver decodes objects, so CEL sees
// integers where the object has them). Decoding the typed
// admissionv1.AdmissionReview and then its raw objects scanned every body
// twice: half of the webhook's CPU went to JSON.
type request struct {
	UID         types.UID                   `json:"uid"`
	Kind        metav1.GroupVersionKind     `json:"kind"`
	Resource    metav1.GroupVersionResource `json:"resource"`
	SubResource string                      `json:"subResource,omitempty"`
	Name        string                      `json:"name,omitempty"`
	Namespace   string                      `json:"namespace,omitempty"`
	Operation   admissionv1.Operation       `json:"operation"`
	UserInfo    authenticationv1.UserInfo   `json:"userInfo"`
	Object      map[string]any              `json:"object,omitempty"`
	OldObject   map[string]any              `json:"oldObject,omitempty"`
	DryRun      *bool                       `json:"dryRun,omitempty"`

	// objectErr says why Object is nil although the request carried one.
	objectErr error
}

// decodeReview decodes body in one pass. A body whose object is valid JSON
// but not a JSON object fails that pass; the typed decode then tells a
// malformed review (an error) from a request whose object cannot be
// classified (denied by decide, fail closed).
func decodeReview(body []byte) (*decodedReview, error) {
	var r decodedReview
	if err := utiljson.Unmarshal(body, &r); err == nil {
		return &r, nil
	}
	// Case-sensitive like the first pass and the apiserver: a key in the
	// wrong case is no key at all, whichever pass reads it.
	var typed admissionv1.AdmissionReview
	if err := utiljson.Unmarshal(body, &typed); err != nil {
		return nil, err
	}
	r = decodedReview{APIVersion: typed.APIVersion}
	if q := typed.Request; q != nil {
		r.Request = &request{UID: q.UID, Kind: q.Kind, Resource: q.Resource, SubResource: q.SubResource, Name: q.Name,
			Namespace: q.Namespace, Operation: q.Operation, UserInfo: q.UserInfo, DryRun: q.DryRun}
		var err error
		if r.Request.Object, err = objectOf(q.Object.Raw); err != nil {
			r.Request.objectErr = err
		}
		r.Request.OldObject, _ = objectOf(q.OldObject.Raw)
	}
	return &r, nil
}

func objectOf(raw []byte) (map[string]any, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var m map[string]any
	if err := utiljson.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	return m, nil
}
