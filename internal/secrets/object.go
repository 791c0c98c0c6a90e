package secrets

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"path"
	"reflect"
	"sort"
	"strings"

	"github.com/getsops/sops/v3/cmd/sops/formats"
	"sigs.k8s.io/yaml"
)

// valueFields are the fields of a Secret that hold its values.
var valueFields = []string{"data", "stringData"}

// IsSecret reports whether obj is a core/v1 Secret.
func IsSecret(obj map[string]any) bool {
	return obj["kind"] == "Secret" && obj["apiVersion"] == "v1"
}

// IsEncryptedManifest reports whether obj is a Secret manifest encrypted
// with SOPS (it carries SOPS' top-level "sops" metadata).
func IsEncryptedManifest(obj map[string]any) bool {
	_, ok := obj["sops"].(map[string]any)
	return ok
}

// EncryptedValues returns the keys of obj's values that are whole SOPS
// files (what a secretGenerator makes of an encrypted file), sorted.
func EncryptedValues(obj map[string]any) []string {
	var out []string
	for _, f := range valueFields {
		m, _ := obj[f].(map[string]any)
		for k, v := range m {
			if b, ok := valueBytes(f, v); ok && isSOPSDocument(b) {
				out = append(out, f+"."+k)
			}
		}
	}
	sort.Strings(out)
	return out
}

// IsEncrypted reports whether obj holds any SOPS ciphertext.
func IsEncrypted(obj map[string]any) bool {
	return NeedsSource(obj) || len(EncryptedValues(obj)) > 0
}

func valueBytes(field string, v any) ([]byte, bool) {
	s, ok := v.(string)
	if !ok {
		return nil, false
	}
	if field == "stringData" {
		return []byte(s), true
	}
	b, err := base64.StdEncoding.DecodeString(s)
	return b, err == nil
}

// isSOPSDocument recognises a SOPS file in any of its formats by its MAC
// and its ciphertext marker.
func isSOPSDocument(b []byte) bool {
	return bytes.Contains(b, []byte("ENC[AES256_GCM,")) &&
		(bytes.Contains(b, []byte("sops_mac=")) || bytes.Contains(b, []byte("sops")) && bytes.Contains(b, []byte("mac")))
}

// Recipients lists the age recipients an encrypted Secret (its manifest and
// its encrypted values) is encrypted to, sorted and unique.
func Recipients(obj map[string]any) []string {
	seen := map[string]bool{}
	if s, ok := obj["sops"].(map[string]any); ok {
		metaRecipients(s, seen)
	}
	for _, f := range valueFields {
		m, _ := obj[f].(map[string]any)
		for _, v := range m {
			if b, ok := valueBytes(f, v); ok && isSOPSDocument(b) {
				docRecipients(b, seen)
			}
		}
	}
	if _, env := envValues(obj); env != nil {
		for k, v := range env {
			if envRecipientKey(k) {
				seen[v] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for r := range seen {
		out = append(out, r)
	}
	sort.Strings(out)
	return out
}

func metaRecipients(s map[string]any, seen map[string]bool) {
	add := func(l any) {
		items, _ := l.([]any)
		for _, it := range items {
			if m, ok := it.(map[string]any); ok {
				if r, ok := m["recipient"].(string); ok {
					seen[r] = true
				}
			}
		}
	}
	add(s["age"])
	groups, _ := s["key_groups"].([]any)
	for _, g := range groups {
		if m, ok := g.(map[string]any); ok {
			add(m["age"])
		}
	}
	// Other key types (KMS, PGP) count as recipients too: the check
	// refuses them, as no tier's key can be told apart.
	for _, kind := range []string{"kms", "gcp_kms", "azure_kv", "hc_vault", "pgp"} {
		if l, ok := s[kind].([]any); ok && len(l) > 0 {
			seen[kind+":(not age)"] = true
		}
	}
}

func docRecipients(b []byte, seen map[string]bool) {
	var m map[string]any
	if yaml.Unmarshal(b, &m) == nil {
		if s, ok := m["sops"].(map[string]any); ok {
			metaRecipients(s, seen)
			return
		}
	}
	// dotenv: sops_age__list_0__map_recipient=age1…
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok && envRecipientKey(k) {
			seen[v] = true
		}
	}
}

// Open returns a copy of the rendered Secret obj with every value decrypted
// with ids, ready to apply: for an encrypted manifest, the values of its
// source document src (the file as committed, whose MAC is verified),
// which must still match the rendered ciphertext; for the lines of an
// encrypted dotenv file (secretGenerator envs:), the lines of src, the
// dotenv file as committed; for values that are whole SOPS files
// (secretGenerator files:), each file decrypted. name names the
// object and file in errors. obj is not modified; the copy is the only
// place the plaintext is kept.
func Open(obj map[string]any, src []byte, name string, ids Identities) (map[string]any, error) {
	out, err := deepCopy(obj)
	if err != nil {
		return nil, err
	}
	if IsEncryptedManifest(obj) {
		if src == nil {
			return nil, fmt.Errorf("%s: its SOPS file was not found in the repository (kustomize changed its encrypted values, or it was not read from a file): commit it as written by `strata secret encrypt`", name)
		}
		var cipherDoc map[string]any
		if err := yaml.Unmarshal(src, &cipherDoc); err != nil {
			return nil, fmt.Errorf("%s: reading the SOPS file: %v", name, err)
		}
		for _, f := range valueFields {
			if !reflect.DeepEqual(obj[f], cipherDoc[f]) {
				return nil, fmt.Errorf("%s: the rendered %s differs from the encrypted file (a kustomize patch or generator changed encrypted values); change the values in the encrypted file instead (sops edit)", name, f)
			}
		}
		plain, err := Decrypt(name, src, formats.Yaml, ids)
		if err != nil {
			return nil, err
		}
		var p map[string]any
		if err := yaml.Unmarshal(plain, &p); err != nil {
			return nil, fmt.Errorf("%s: the decrypted file is no YAML document", name)
		}
		for _, f := range valueFields {
			if v, ok := p[f]; ok {
				out[f] = v
			} else {
				delete(out, f)
			}
		}
		delete(out, "sops")
	} else if IsEncryptedEnv(obj) {
		if err := openEnv(out, src, name, ids); err != nil {
			return nil, err
		}
	}
	for _, f := range valueFields {
		m, _ := out[f].(map[string]any)
		for k, v := range m {
			b, ok := valueBytes(f, v)
			if !ok || !isSOPSDocument(b) {
				continue
			}
			plain, err := Decrypt(fmt.Sprintf("%s (value %s.%s)", name, f, k), b, formats.FormatForPath(path.Base(k)), ids)
			if err != nil {
				return nil, err
			}
			if f == "stringData" {
				m[k] = string(plain)
			} else {
				m[k] = base64.StdEncoding.EncodeToString(plain)
			}
		}
	}
	return out, nil
}

func deepCopy(obj map[string]any) (map[string]any, error) {
	b, err := yaml.Marshal(obj)
	if err != nil {
		return nil, err
	}
	var out map[string]any
	if err := yaml.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	return out, nil
}
