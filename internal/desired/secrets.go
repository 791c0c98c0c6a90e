package desired

import (
	"fmt"

	"github.com/strata-gitops/strata/internal/config"
	"github.com/strata-gitops/strata/internal/placement"
	"github.com/strata-gitops/strata/internal/secrets"
	"github.com/strata-gitops/strata/internal/source"
)

// checkSecrets runs the recipient check over the placed Secrets (no keys
// needed: render and plan run it) and returns the revision's SOPS files by
// MAC, from which the reconciler decrypts right before apply. The
// repository is searched only when the render holds an encrypted manifest
// or an encrypted dotenv file's lines (secretGenerator envs:).
func checkSecrets(snap *source.Snapshot, cfg *config.Config, objs []*Object, result *placement.Result) (map[string]secrets.Source, error) {
	var sources map[string]secrets.Source
	secretMaps := map[int]map[string]any{} // decoded once, Secrets only
	for i, o := range objs {
		if o.place.Kind == "Secret" && o.place.Group == "" {
			secretMaps[i] = o.Map()
		}
	}
	for _, m := range secretMaps {
		if secrets.NeedsSource(m) {
			var err error
			if sources, err = secrets.Sources(snap.FS, snap.Root); err != nil {
				return nil, fmt.Errorf("%s: looking for SOPS files: %w", snap.RevisionLabel(), err)
			}
			break
		}
	}
	result.Violations = append(result.Violations, secrets.CheckPlaced(cfg, func(i int) map[string]any { return secretMaps[i] }, result, sources)...)
	return sources, nil
}
