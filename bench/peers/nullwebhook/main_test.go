package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The floor answers every review allowed, with the request's uid and
// version; a body that is not JSON is a bad request.
func TestAllowAnswersWithTheUID(t *testing.T) {
	w := httptest.NewRecorder()
	allow(w, httptest.NewRequest(http.MethodPost, "/validate", strings.NewReader(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u-1","object":{"kind":"Pod"}}}`)))
	var got struct {
		APIVersion string
		Response   struct {
			UID     string
			Allowed bool
		}
	}
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || got.APIVersion != "admission.k8s.io/v1" || got.Response.UID != "u-1" || !got.Response.Allowed {
		t.Errorf("answer %s (%v)", w.Body, err)
	}
	w = httptest.NewRecorder()
	allow(w, httptest.NewRequest(http.MethodPost, "/validate", strings.NewReader(`not json`)))
	if w.Code != http.StatusBadRequest {
		t.Errorf("bad body: HTTP %d, want 400", w.Code)
	}
}
