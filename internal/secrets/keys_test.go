package secrets

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/getsops/sops/v3/cmd/sops/formats"

	"github.com/strata-gitops/strata/internal/config"
)

// During a rotation a tier's key file holds the old and the new key, one
// per line: Secrets encrypted to either decrypt.
func TestKeyFileWithOldAndNewKeyDecryptsBoth(t *testing.T) {
	old := newTierKeys(t, config.OnPrem)
	next := newTierKeys(t, config.OnPrem)
	oldKey, err := os.ReadFile(filepath.Join(old.dir, "on-prem"+KeyFileSuffix))
	if err != nil {
		t.Fatal(err)
	}
	newKey, err := os.ReadFile(filepath.Join(next.dir, "on-prem"+KeyFileSuffix))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "on-prem"+KeyFileSuffix), append(oldKey, newKey...), 0o600); err != nil {
		t.Fatal(err)
	}
	ids, err := KeyDir{Dir: dir}.ForTier("on-prem")
	if err != nil || ids.Len() != 2 {
		t.Fatalf("ForTier = %d keys, %v; want 2", ids.Len(), err)
	}
	for _, k := range []tierKeys{old, next} {
		enc, err := Encrypt(readFixture(t, "restricted-secret.yaml"), k.of(config.OnPrem))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Decrypt("secret.yaml", enc, formats.Yaml, ids); err != nil {
			t.Errorf("a Secret encrypted to %s: %v", k.recipients[config.OnPrem], err)
		}
	}
}
