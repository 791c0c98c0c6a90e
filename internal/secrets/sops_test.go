package secrets

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/getsops/sops/v3/cmd/sops/formats"
	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"

	"github.com/strata-gitops/strata/internal/config"
)

func TestEncryptDecryptRoundTrip(t *testing.T) {
	k := newTierKeys(t)
	plain := readFixture(t, "restricted-secret.yaml")
	enc, err := Encrypt(plain, k.of(config.OnPrem))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(enc, []byte("s3cr3t-ledger-password")) || bytes.Contains(enc, []byte("dG9wLXNlY3JldC10b2tlbg==")) {
		t.Fatalf("plaintext value in the encrypted file:\n%s", enc)
	}
	// Metadata stays readable for kustomize, placement and the check.
	var m map[string]any
	if err := yaml.Unmarshal(enc, &m); err != nil {
		t.Fatal(err)
	}
	if got := m["metadata"].(map[string]any)["labels"].(map[string]any)["strata.dev/sensitivity"]; got != "restricted" {
		t.Errorf("sensitivity label = %v, want it readable", got)
	}
	if diff := cmp.Diff(k.of(config.OnPrem), Recipients(m)); diff != "" {
		t.Errorf("Recipients (-want +got):\n%s", diff)
	}
	out, err := Decrypt("ledger.yaml", enc, formats.Yaml, k.ids(t, config.OnPrem))
	if err != nil {
		t.Fatal(err)
	}
	assertSameYAML(t, plain, out)
}

func TestDecryptWithoutFittingKeySaysWhoCanRead(t *testing.T) {
	k := newTierKeys(t)
	enc, err := Encrypt(readFixture(t, "restricted-secret.yaml"), k.of(config.OnPrem))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		ids  Identities
		held string
	}{
		{"public-cloud key", k.ids(t, config.PublicCloud), "keys for [" + k.recipients[config.PublicCloud] + "]"},
		{"no key", Identities{}, "no age key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decrypt("overlays/base/ledger/secret.yaml", enc, formats.Yaml, tc.ids)
			var nk *NoKeyError
			if !errors.As(err, &nk) {
				t.Fatalf("err = %v, want a NoKeyError", err)
			}
			msg := err.Error()
			for _, want := range []string{"overlays/base/ledger/secret.yaml", k.recipients[config.OnPrem], tc.held, "strata secret encrypt"} {
				if !strings.Contains(msg, want) {
					t.Errorf("message lacks %q:\n%s", want, msg)
				}
			}
			if strings.Contains(msg, "\n") || strings.Contains(msg, "Group 0") {
				t.Errorf("want one line, not SOPS' group block:\n%s", msg)
			}
		})
	}
}

func TestDecryptRefusesTamperedFile(t *testing.T) {
	k := newTierKeys(t, config.OnPrem)
	enc, err := Encrypt(readFixture(t, "restricted-secret.yaml"), k.of(config.OnPrem))
	if err != nil {
		t.Fatal(err)
	}
	for name, tamper := range map[string]func([]byte) []byte{
		// A readable value the MAC covers: the namespace moved.
		"metadata changed": func(b []byte) []byte {
			return bytes.Replace(b, []byte("namespace: ledger"), []byte("namespace: public"), 1)
		},
		// One byte of a ciphertext flipped: GCM refuses it.
		"ciphertext changed": func(b []byte) []byte {
			i := bytes.Index(b, []byte("ENC[AES256_GCM,data:")) + len("ENC[AES256_GCM,data:")
			c := bytes.Clone(b)
			if c[i] == 'A' {
				c[i] = 'B'
			} else {
				c[i] = 'A'
			}
			return c
		},
		// A value swapped for another's ciphertext: authenticated by path.
		"values swapped": func(b []byte) []byte {
			var m map[string]any
			if err := yaml.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			sd := m["stringData"].(map[string]any)
			sd["username"], sd["password"] = sd["password"], sd["username"]
			out, err := yaml.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			return out
		},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Decrypt("ledger.yaml", tamper(enc), formats.Yaml, k.ids(t, config.OnPrem))
			var te *TamperedError
			if !errors.As(err, &te) {
				t.Fatalf("err = %v, want a TamperedError", err)
			}
			if !strings.Contains(err.Error(), "ledger.yaml") {
				t.Errorf("message does not name the file: %v", err)
			}
		})
	}
}

func TestKeyDirIsReadAtEveryUse(t *testing.T) {
	k := newTierKeys(t, config.OnPrem)
	enc, err := Encrypt(readFixture(t, "restricted-secret.yaml"), k.of(config.OnPrem))
	if err != nil {
		t.Fatal(err)
	}
	kd := KeyDir{Dir: k.dir}
	// Rotate: a new key replaces the file; the old file is no longer held.
	id, r, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(k.dir, "on-prem"+KeyFileSuffix), id, 0o600); err != nil {
		t.Fatal(err)
	}
	ids, err := kd.ForTier("on-prem")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Decrypt("ledger.yaml", enc, formats.Yaml, ids); err == nil {
		t.Fatal("decrypted with the rotated-away key")
	}
	enc2, err := Encrypt(readFixture(t, "restricted-secret.yaml"), []string{r})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Decrypt("ledger.yaml", enc2, formats.Yaml, ids); err != nil {
		t.Fatalf("the new key does not decrypt what was encrypted to it: %v", err)
	}
	tiers, err := kd.Tiers()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"on-prem"}, tiers); diff != "" {
		t.Errorf("Tiers (-want +got):\n%s", diff)
	}
}

func assertSameYAML(t *testing.T, want, got []byte) {
	t.Helper()
	var w, g map[string]any
	if err := yaml.Unmarshal(want, &w); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(got, &g); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(w, g); diff != "" {
		t.Errorf("decrypted document (-want +got):\n%s", diff)
	}
}
