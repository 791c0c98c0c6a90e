package plan

import (
	"github.com/strata-gitops/strata/internal/secrets"
)

// sealSummary replaces the SOPS metadata of an encrypted Secret with what a
// reviewer needs: who can read it (the age recipients) and when it was
// encrypted. The encrypted values stay masked like any Secret's, so the diff
// shows which keys changed and never a value (plan holds no private key).
// A Secret made from an encrypted dotenv file (secretGenerator envs:)
// carries the metadata as sops_* values: they go into the same summary.
func sealSummary(m map[string]any) {
	if s, ok := m["sops"].(map[string]any); ok {
		m["sops"] = map[string]any{
			"encryptedTo":  secrets.Recipients(m),
			"lastModified": s["lastmodified"],
		}
		return
	}
	field, keys, modified := secrets.EnvMetadata(m)
	if field == "" {
		return
	}
	summary := map[string]any{"encryptedTo": secrets.Recipients(m), "lastModified": modified}
	d, _ := m[field].(map[string]any)
	for _, k := range keys {
		delete(d, k)
	}
	m["sops"] = summary
}
