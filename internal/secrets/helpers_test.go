package secrets

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/strata-gitops/strata/internal/config"
)

// tierKeys are a fresh age key per tier, written as a key directory.
type tierKeys struct {
	dir        string
	recipients map[config.Tier]string
}

func newTierKeys(t *testing.T, tiers ...config.Tier) tierKeys {
	t.Helper()
	if len(tiers) == 0 {
		tiers = config.KnownTiers
	}
	k := tierKeys{dir: t.TempDir(), recipients: map[config.Tier]string{}}
	for _, tier := range tiers {
		id, r, err := GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(k.dir, string(tier)+KeyFileSuffix), id, 0o600); err != nil {
			t.Fatal(err)
		}
		k.recipients[tier] = r
	}
	return k
}

func (k tierKeys) ids(t *testing.T, tier config.Tier) Identities {
	t.Helper()
	ids, err := KeyDir{Dir: k.dir}.ForTier(string(tier))
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func (k tierKeys) of(tiers ...config.Tier) []string {
	var out []string
	for _, t := range tiers {
		out = append(out, k.recipients[t])
	}
	return out
}

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
