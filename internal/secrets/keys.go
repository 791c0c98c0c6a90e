package secrets

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"filippo.io/age"
)

// KeyFileSuffix ends the name of a tier's private key file in a key
// directory: <tier>.agekey, as age-keygen writes it.
const KeyFileSuffix = ".agekey"

// Identities are age private keys, with their public halves for messages.
type Identities struct {
	ids []age.Identity
	// Recipients are the public keys of ids, in the order read.
	Recipients []string
}

// Len returns the number of keys held.
func (i Identities) Len() int { return len(i.ids) }

// ParseIdentities reads age identities (one AGE-SECRET-KEY-1… per line,
// "#" comments allowed) from b; name says where they came from in errors.
func ParseIdentities(name string, b []byte) (Identities, error) {
	ids, err := age.ParseIdentities(strings.NewReader(string(b)))
	if err != nil {
		// age's error never contains the key material, only its position.
		return Identities{}, fmt.Errorf("age key file %s: %v: it must hold AGE-SECRET-KEY-1… lines as age-keygen writes them", name, err)
	}
	var out Identities
	for _, id := range ids {
		x, ok := id.(*age.X25519Identity)
		if !ok {
			return Identities{}, fmt.Errorf("age key file %s: only X25519 keys (AGE-SECRET-KEY-1…) are supported", name)
		}
		out.ids = append(out.ids, x)
		out.Recipients = append(out.Recipients, x.Recipient().String())
	}
	return out, nil
}

// GenerateKey returns a new age key pair as age-keygen writes it (the
// identity file content) and its recipient.
func GenerateKey() (identityFile []byte, recipient string, err error) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return nil, "", fmt.Errorf("generating an age key: %w", err)
	}
	r := id.Recipient().String()
	return []byte("# public key: " + r + "\n" + id.String() + "\n"), r, nil
}

// KeyDir holds the private keys of the tiers a reconciler serves, one file
// <tier>.agekey each (a directory, or a mounted Secret with those keys). It
// is read at every use, so a rotated key Secret takes effect without a
// restart, and it never reads keys from anywhere else (no SOPS_AGE_KEY, no
// ~/.config/sops): a reconciler holds what it was given and nothing more.
type KeyDir struct {
	Dir string
}

// ForTier returns the keys for tier: those of <Dir>/<tier>.agekey. A
// missing file is no error (this reconciler does not serve the tier): the
// result is empty and decryption will say which keys are held.
func (k KeyDir) ForTier(tier string) (Identities, error) {
	if k.Dir == "" {
		return Identities{}, nil
	}
	p := filepath.Join(k.Dir, tier+KeyFileSuffix)
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return Identities{}, nil
	}
	if err != nil {
		return Identities{}, fmt.Errorf("reading the %s key: %w; check the mount of the key Secret (--age-key-dir)", tier, err)
	}
	return ParseIdentities(p, b)
}

// Held describes every key of the directory as "tier (age1…)", for
// messages that say which keys a reconciler holds.
func (k KeyDir) Held() []string {
	tiers, err := k.Tiers()
	if err != nil {
		return nil
	}
	var out []string
	for _, t := range tiers {
		ids, err := k.ForTier(t)
		if err != nil {
			continue
		}
		for _, r := range ids.Recipients {
			out = append(out, t+" ("+r+")")
		}
	}
	return out
}

// Tiers lists the tiers whose keys the directory holds, sorted.
func (k KeyDir) Tiers() ([]string, error) {
	if k.Dir == "" {
		return nil, nil
	}
	ents, err := os.ReadDir(k.Dir)
	if err != nil {
		return nil, fmt.Errorf("reading the age key directory: %w; check --age-key-dir", err)
	}
	var out []string
	for _, e := range ents {
		// A mounted Secret links its keys through ..data/; follow them.
		if n := e.Name(); strings.HasSuffix(n, KeyFileSuffix) && !strings.HasPrefix(n, ".") {
			out = append(out, strings.TrimSuffix(n, KeyFileSuffix))
		}
	}
	sort.Strings(out)
	return out, nil
}

// All returns every key of the directory: what `strata secret rotate`
// decrypts with (the old keys of every tier).
func (k KeyDir) All() (Identities, error) {
	tiers, err := k.Tiers()
	if err != nil {
		return Identities{}, err
	}
	var out Identities
	for _, t := range tiers {
		ids, err := k.ForTier(t)
		if err != nil {
			return Identities{}, err
		}
		out.ids = append(out.ids, ids.ids...)
		out.Recipients = append(out.Recipients, ids.Recipients...)
	}
	return out, nil
}
