package secrets

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"unicode"

	"github.com/getsops/sops/v3/cmd/sops/formats"
)

// A secretGenerator's envs: reads a dotenv file line by line: an encrypted
// one (SOPS' dotenv format) becomes a Secret with one value per line, its
// values ENC[…] and SOPS' metadata flattened into sops_* keys beside them.
// Such a Secret is decrypted from the file it came from (found by its
// sops_mac, as an encrypted manifest is found by its MAC).

// envMACKey is the key SOPS' dotenv format keeps the MAC under.
const envMACKey = "sops_mac"

// envRecipientKey matches the flattened age recipients of SOPS' dotenv
// metadata: sops_age__list_<n>__map_recipient.
func envRecipientKey(k string) bool {
	return strings.HasPrefix(k, "sops_age__list_") && strings.HasSuffix(k, "__map_recipient")
}

// envValues returns the field (data or stringData) of obj that holds the
// lines of an encrypted dotenv file, with its values decoded; "" when obj
// has none.
func envValues(obj map[string]any) (string, map[string]string) {
	for _, f := range valueFields {
		m, _ := obj[f].(map[string]any)
		if _, ok := m[envMACKey]; !ok {
			continue
		}
		out := make(map[string]string, len(m))
		for k, v := range m {
			if b, ok := valueBytes(f, v); ok {
				out[k] = string(b)
			}
		}
		return f, out
	}
	return "", nil
}

// IsEncryptedEnv reports whether obj holds the lines of a SOPS-encrypted
// dotenv file (a secretGenerator's envs:).
func IsEncryptedEnv(obj map[string]any) bool {
	f, _ := envValues(obj)
	return f != ""
}

// NeedsSource reports whether obj can only be decrypted from the committed
// file it was rendered from: an encrypted manifest or the lines of an
// encrypted dotenv file.
func NeedsSource(obj map[string]any) bool {
	return IsEncryptedManifest(obj) || IsEncryptedEnv(obj)
}

// EnvPair is one line of a dotenv file.
type EnvPair struct{ Key, Value string }

// ParseEnv reads dotenv lines as kustomize's envs: does (api/kv): leading
// whitespace trimmed, empty lines and # comments skipped, KEY=VALUE split at
// the first "=", a line without "=" an empty value; a UTF-8 BOM is dropped.
func ParseEnv(b []byte) ([]EnvPair, error) {
	var out []EnvPair
	sc := bufio.NewScanner(bytes.NewReader(bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))))
	sc.Buffer(make([]byte, 0, 64*1024), maxSourceSize)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimLeftFunc(sc.Text(), unicode.IsSpace)
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, _ := strings.Cut(line, "=")
		if k == "" {
			return nil, fmt.Errorf("line %d has no key", n)
		}
		out = append(out, EnvPair{Key: k, Value: v})
	}
	return out, sc.Err()
}

// openEnv replaces, in out, the lines of the encrypted dotenv file src (as
// committed; its MAC is verified) with its decrypted lines. The rendered
// lines must be exactly the file's: a kustomize patch that changed one is
// refused. Other keys of the Secret (literals, files) are kept.
func openEnv(out map[string]any, src []byte, name string, ids Identities) error {
	field, rendered := envValues(out)
	if src == nil {
		return fmt.Errorf("%s: its SOPS dotenv file (secretGenerator envs:) was not found in the repository: commit it as written by `strata secret encrypt` or `sops --encrypt`", name)
	}
	lines, err := ParseEnv(src)
	if err != nil {
		return fmt.Errorf("%s: reading the SOPS dotenv file: %v", name, err)
	}
	for _, p := range lines {
		if got, ok := rendered[p.Key]; !ok || got != p.Value {
			return fmt.Errorf("%s: the rendered value %s differs from the encrypted dotenv file (a kustomize patch or generator changed encrypted values); change the values in the encrypted file instead (sops edit)", name, p.Key)
		}
	}
	plain, err := Decrypt(name, src, formats.Dotenv, ids)
	if err != nil {
		return err
	}
	pairs, err := ParseEnv(plain)
	if err != nil {
		return fmt.Errorf("%s: the decrypted dotenv file: %v", name, err)
	}
	m := out[field].(map[string]any)
	for _, p := range lines {
		delete(m, p.Key)
	}
	for _, p := range pairs {
		if _, clash := m[p.Key]; clash {
			return fmt.Errorf("%s: key %s is both in the encrypted dotenv file and elsewhere in the secretGenerator", name, p.Key)
		}
		if field == "stringData" {
			m[p.Key] = p.Value
		} else {
			m[p.Key] = base64.StdEncoding.EncodeToString([]byte(p.Value))
		}
	}
	return nil
}

// envMAC returns the sops_mac of a dotenv SOPS document ("" if none).
func envMAC(b []byte) string {
	if !bytes.Contains(b, []byte(envMACKey+"=")) {
		return ""
	}
	lines, err := ParseEnv(b)
	if err != nil {
		return ""
	}
	for _, p := range lines {
		if p.Key == envMACKey {
			return p.Value
		}
	}
	return ""
}

// EnvMetadata returns, for a Secret holding the lines of an encrypted
// dotenv file, the field holding them, the keys of SOPS' metadata lines
// (sops_*, sorted) and when it was encrypted; field is "" otherwise. plan
// shows these as a summary instead of as changed values.
func EnvMetadata(obj map[string]any) (field string, keys []string, lastModified string) {
	field, kv := envValues(obj)
	for k := range kv {
		if strings.HasPrefix(k, "sops_") {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return field, keys, kv["sops_lastmodified"]
}
