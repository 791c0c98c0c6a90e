package reconciler

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHookHandler(t *testing.T) {
	secret := []byte("s3cret")
	body := `{"ref":"refs/heads/main"}`
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(body))
	sig := hex.EncodeToString(mac.Sum(nil))
	tests := []struct {
		name       string
		headers    map[string]string
		body       string
		wantCode   int
		wantSignal bool
	}{
		{"github signature", map[string]string{"X-Hub-Signature-256": "sha256=" + sig, "X-GitHub-Event": "push"}, body, http.StatusAccepted, true},
		{"gitea signature", map[string]string{"X-Gitea-Signature": sig}, body, http.StatusAccepted, true},
		{"gitlab token", map[string]string{"X-Gitlab-Token": "s3cret"}, body, http.StatusAccepted, true},
		{"no signature", nil, body, http.StatusUnauthorized, false},
		{"wrong signature", map[string]string{"X-Hub-Signature-256": "sha256=" + strings.Repeat("0", 64)}, body, http.StatusUnauthorized, false},
		{"tampered body", map[string]string{"X-Hub-Signature-256": "sha256=" + sig}, body + " ", http.StatusUnauthorized, false},
		{"wrong gitlab token", map[string]string{"X-Gitlab-Token": "guess"}, body, http.StatusUnauthorized, false},
		{"huge body", map[string]string{"X-Hub-Signature-256": "sha256=" + sig}, strings.Repeat("x", MaxHookBytes+1), http.StatusRequestEntityTooLarge, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			trigger := make(chan struct{}, 1)
			h := &HookHandler{Secret: secret, Trigger: trigger, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
			req := httptest.NewRequest(http.MethodPost, "/hook", strings.NewReader(tt.body))
			for k, v := range tt.headers {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.wantCode {
				t.Errorf("HTTP %d, want %d: %s", rec.Code, tt.wantCode, rec.Body)
			}
			if got := len(trigger) == 1; got != tt.wantSignal {
				t.Errorf("triggered = %v, want %v", got, tt.wantSignal)
			}
		})
	}
}
