package reconciler

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"strings"
)

// MaxHookBytes bounds a push payload.
const MaxHookBytes = 1 << 20

// HookHandler receives push notifications from GitHub, Gitea or GitLab and
// triggers an immediate reconcile, so a revert is applied without waiting
// for the poll interval. Every request must be signed with the shared
// secret: GitHub's X-Hub-Signature-256 (HMAC-SHA256), Gitea's
// X-Gitea-Signature (HMAC-SHA256) or GitLab's X-Gitlab-Token.
type HookHandler struct {
	Secret  []byte
	Trigger chan<- struct{}
	Log     *slog.Logger
}

func (h *HookHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "push hooks are POSTed", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxHookBytes))
	if err != nil {
		http.Error(w, "reading payload: "+err.Error(), http.StatusRequestEntityTooLarge)
		return
	}
	if !h.verify(r.Header, body) {
		h.Log.Warn("push hook with a missing or wrong signature refused", "remote", r.RemoteAddr)
		http.Error(w, "signature missing or wrong: sign with the shared secret (X-Hub-Signature-256, X-Gitea-Signature or X-Gitlab-Token)", http.StatusUnauthorized)
		return
	}
	select {
	case h.Trigger <- struct{}{}:
	default: // a reconcile is already pending
	}
	h.Log.Info("push hook: reconcile requested", "event", firstHeader(r.Header, "X-GitHub-Event", "X-Gitea-Event", "X-Gitlab-Event"))
	w.WriteHeader(http.StatusAccepted)
	_, _ = w.Write([]byte("reconcile requested\n"))
}

func (h *HookHandler) verify(hdr http.Header, body []byte) bool {
	if len(h.Secret) == 0 {
		return false
	}
	mac := hmac.New(sha256.New, h.Secret)
	mac.Write(body)
	want := mac.Sum(nil)
	if sig := hdr.Get("X-Hub-Signature-256"); sig != "" {
		got, err := hex.DecodeString(strings.TrimPrefix(sig, "sha256="))
		return err == nil && hmac.Equal(got, want)
	}
	if sig := hdr.Get("X-Gitea-Signature"); sig != "" {
		got, err := hex.DecodeString(sig)
		return err == nil && hmac.Equal(got, want)
	}
	if tok := hdr.Get("X-Gitlab-Token"); tok != "" {
		return subtle.ConstantTimeCompare([]byte(tok), h.Secret) == 1
	}
	return false
}

func firstHeader(h http.Header, keys ...string) string {
	for _, k := range keys {
		if v := h.Get(k); v != "" {
			return v
		}
	}
	return ""
}
