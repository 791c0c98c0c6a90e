package approval

import (
	"bytes"
	"crypto"
	"crypto/elliptic"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/dsse"
)

// GenerateKey returns a new ECDSA P-256 key pair: the private key as PEM
// PKCS#8 ("PRIVATE KEY") and the public key as PEM "PUBLIC KEY".
func GenerateKey() (privPEM, pubPEM []byte, err error) {
	return cryptoutils.GeneratePEMEncodedECDSAKeyPair(elliptic.P256(), nil)
}

// KeyFiles are the files WriteKeyPair wrote.
type KeyFiles struct {
	Private, Public string
	PublicPEM       []byte
}

// WriteKeyPair generates a key pair and writes base.key (mode 0600) and
// base.pub. It refuses to overwrite existing files unless force is set.
func WriteKeyPair(base string, force bool) (*KeyFiles, error) {
	base = strings.TrimSuffix(strings.TrimSuffix(base, ".key"), ".pub")
	if base == "" {
		return nil, errors.New("--out needs a file name without extension, e.g. --out alice")
	}
	kf := &KeyFiles{Private: base + ".key", Public: base + ".pub"}
	if !force {
		for _, p := range []string{kf.Private, kf.Public} {
			if _, err := os.Stat(p); err == nil {
				return nil, fmt.Errorf("%s already exists: pick another --out or pass --force to replace the key (approvals signed with the old key stop counting once trust.yaml has the new one)", p)
			}
		}
	}
	priv, pub, err := GenerateKey()
	if err != nil {
		return nil, fmt.Errorf("generating a key: %w", err)
	}
	if dir := filepath.Dir(base); dir != "." {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
	}
	flags := os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	if !force {
		flags |= os.O_EXCL
	}
	if err := writeKeyFile(kf.Private, priv, flags, 0o600); err != nil {
		return nil, err
	}
	if err := writeKeyFile(kf.Public, pub, flags, 0o644); err != nil {
		return nil, err
	}
	kf.PublicPEM = pub
	return kf, nil
}

func writeKeyFile(path string, data []byte, flags int, mode fs.FileMode) error {
	f, err := os.OpenFile(path, flags, mode)
	if err != nil {
		return err
	}
	// An existing file keeps its mode on O_TRUNC: make sure a private key
	// is never left readable by others.
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// TrustSnippet returns the reviewers: entry of .strata/trust.yaml for a
// reviewer with this public key.
func TrustSnippet(name string, pubPEM []byte) string {
	var b strings.Builder
	b.WriteString("reviewers:\n")
	fmt.Fprintf(&b, "  - name: %s\n", name)
	b.WriteString("    publicKey: |\n")
	for line := range strings.SplitSeq(strings.TrimSpace(string(pubPEM)), "\n") {
		fmt.Fprintf(&b, "      %s\n", line)
	}
	return b.String()
}

// LoadSigner reads a PEM private key (PKCS#8 "PRIVATE KEY" as strata keygen
// writes, or "EC PRIVATE KEY"/"RSA PRIVATE KEY"; ECDSA, Ed25519 or RSA).
// Encrypted keys are not supported.
func LoadSigner(privPEM []byte) (signature.SignerVerifier, error) {
	priv, err := cryptoutils.UnmarshalPEMToPrivateKey(privPEM, nil)
	if err != nil {
		return nil, fmt.Errorf("reading the private key: %w: pass the .key file that strata keygen wrote", err)
	}
	sv, err := signature.LoadSignerVerifier(priv, crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("loading the private key: %w", err)
	}
	return sv, nil
}

// LoadSignerFile reads a private key file with LoadSigner.
func LoadSignerFile(path string) (signature.SignerVerifier, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	sv, err := LoadSigner(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return sv, nil
}

// PublicKeyPEM returns the PEM "PUBLIC KEY" of a signer.
func PublicKeyPEM(s signature.Signer) ([]byte, error) {
	pub, err := s.PublicKey()
	if err != nil {
		return nil, err
	}
	return cryptoutils.MarshalPublicKeyToPEM(pub)
}

// SameKey reports whether two PEM public keys are the same key.
func SameKey(aPEM, bPEM []byte) bool {
	a, err := cryptoutils.UnmarshalPEMToPublicKey(aPEM)
	if err != nil {
		return false
	}
	b, err := cryptoutils.UnmarshalPEMToPublicKey(bPEM)
	if err != nil {
		return false
	}
	return cryptoutils.EqualKeys(a, b) == nil
}

// Sign signs st with s as a DSSE envelope of PayloadType. A zero Time is
// now; a zero Expires is Time + DefaultValidity. Times are written in UTC
// with second precision (RFC 3339).
func Sign(s signature.Signer, st Statement) (Envelope, error) {
	if st.Type == "" {
		st.Type = StatementType
	}
	if st.Time.IsZero() {
		st.Time = time.Now()
	}
	st.Time = st.Time.UTC().Truncate(time.Second)
	if st.Expires.IsZero() {
		st.Expires = st.Time.Add(DefaultValidity)
	}
	st.Expires = st.Expires.UTC().Truncate(time.Second)
	if err := st.check(); err != nil {
		return Envelope{}, err
	}
	payload, err := json.Marshal(st)
	if err != nil {
		return Envelope{}, err
	}
	raw, err := dsse.WrapSigner(s, PayloadType).SignMessage(bytes.NewReader(payload))
	if err != nil {
		return Envelope{}, fmt.Errorf("signing the approval: %w", err)
	}
	envs := ParseEnvelopes(raw)
	if len(envs) != 1 || envs[0].parseErr != nil {
		return Envelope{}, fmt.Errorf("signing the approval: unexpected envelope %s", raw)
	}
	return envs[0], nil
}

// verifySignature checks e's signature with pub and returns the payload.
func verifySignature(e *Envelope, pub crypto.PublicKey) ([]byte, error) {
	v, err := signature.LoadVerifier(pub, crypto.SHA256)
	if err != nil {
		return nil, err
	}
	raw, err := e.MarshalLine()
	if err != nil {
		return nil, err
	}
	var payload []byte
	w := dsse.WrapVerifier(v, dsse.WithExpectedPayloadType(PayloadType), dsse.WithDecodedPayload(&payload))
	if err := w.VerifySignature(bytes.NewReader(raw), nil); err != nil {
		return nil, err
	}
	return payload, nil
}
