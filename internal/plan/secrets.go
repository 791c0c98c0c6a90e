package plan

import (
	"github.com/strata-gitops/strata/internal/secrets"
)

// sealSummary replaces the SOPS metadata of an encrypted Secret with what a
// reviewer needs: who can read it (the age recipients) and when it was
// encrypted. The encrypted values stay masked like any Secret's, so the diff
// shows which keys changed and never a value (plan holds no private key).
func sealSummary(m map[string]any) {
	s, ok := m["sops"].(map[string]any)
	if !ok {
		return
	}
	m["sops"] = map[string]any{
		"encryptedTo":  secrets.Recipients(m),
		"lastModified": s["lastmodified"],
	}
}
