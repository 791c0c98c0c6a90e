package approval

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"

	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/strata-gitops/strata/internal/config"
)

// fingerprintPrefix marks a key fingerprint, as ssh-keygen -l writes them.
const fingerprintPrefix = "SHA256:"

// Fingerprint returns "SHA256:<hex>" of a PEM public key's DER form: what an
// operator pins, outside the repository, as the root of trust.
func Fingerprint(pubPEM []byte) (string, error) {
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(pubPEM)
	if err != nil {
		return "", fmt.Errorf("reading the public key: %w", err)
	}
	der, err := cryptoutils.MarshalPublicKeyToDER(pub)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(der)
	return fingerprintPrefix + hex.EncodeToString(sum[:]), nil
}

// Pin is the root of trust given to the reconciler outside the repository
// (flag or chart value): the fingerprints of the reviewers' keys that may
// approve a revision with no approved revision before it. A rewritten
// repository can then not bring its own reviewers.
type Pin struct{ keys map[string]bool }

// ParsePin reads fingerprints ("SHA256:<64 hex>", case-insensitive hex).
func ParsePin(fingerprints []string) (Pin, error) {
	p := Pin{keys: map[string]bool{}}
	for _, f := range fingerprints {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		hexPart, ok := strings.CutPrefix(f, fingerprintPrefix)
		if b, err := hex.DecodeString(hexPart); !ok || err != nil || len(b) != sha256.Size {
			return Pin{}, fmt.Errorf("trusted key %q is not a key fingerprint: give SHA256:<64 hex digits>, as `strata keygen` and `strata approve` print", f)
		}
		p.keys[fingerprintPrefix+strings.ToLower(hexPart)] = true
	}
	return p, nil
}

// Empty reports whether no key is pinned.
func (p Pin) Empty() bool { return len(p.keys) == 0 }

// Len is the number of pinned keys.
func (p Pin) Len() int { return len(p.keys) }

// Fingerprints returns the pinned fingerprints, sorted.
func (p Pin) Fingerprints() []string {
	out := make([]string, 0, len(p.keys))
	for k := range p.keys {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Filter returns t with only the reviewers whose key is pinned.
func (p Pin) Filter(t *config.Trust) *config.Trust {
	out := &config.Trust{APIVersion: t.APIVersion, Kind: t.Kind}
	for _, r := range t.Reviewers {
		if f, err := Fingerprint([]byte(r.PublicKey)); err == nil && p.keys[f] {
			out.Reviewers = append(out.Reviewers, r)
		}
	}
	return out
}

// PinKeys pins these PEM public keys.
func PinKeys(pubPEMs ...[]byte) (Pin, error) {
	fps := make([]string, 0, len(pubPEMs))
	for _, p := range pubPEMs {
		fp, err := Fingerprint(p)
		if err != nil {
			return Pin{}, err
		}
		fps = append(fps, fp)
	}
	return ParsePin(fps)
}
