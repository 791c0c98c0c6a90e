// Command nullwebhook is the admission benchmark's floor: a validating
// webhook server that answers every AdmissionReview "allowed" without
// judging anything. It reads the body and its request uid and answers in
// the same version over HTTPS with HTTP/2, as any webhook must; nothing
// more. Loaded like strata and Kyverno, its latency is what the machine,
// TLS, HTTP/2 and the load generator cost before any policy work.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"

	"github.com/strata-gitops/strata/webhook"
)

func main() {
	certDir := flag.String("cert-dir", "", "directory with the serving certificate (strata's file names)")
	addr := flag.String("addr", "127.0.0.1:9443", "address to serve on")
	flag.Parse()
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	mux.HandleFunc("/validate", allow)
	err := http.ListenAndServeTLS(*addr, filepath.Join(*certDir, webhook.CertFile), filepath.Join(*certDir, webhook.KeyFile), mux)
	fmt.Fprintln(os.Stderr, "nullwebhook:", err)
	os.Exit(1)
}

// review is the part of an AdmissionReview the answer needs.
type review struct {
	APIVersion string `json:"apiVersion"`
	Request    struct {
		UID string `json:"uid"`
	} `json:"request"`
}

func allow(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, webhook.MaxRequestBytes))
	var in review
	if err == nil {
		err = json.Unmarshal(body, &in)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"apiVersion": in.APIVersion, "kind": "AdmissionReview",
		"response": map[string]any{"uid": in.Request.UID, "allowed": true},
	})
}
