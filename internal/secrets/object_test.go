package secrets

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/getsops/sops/v3/cmd/sops/formats"
	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/strata-gitops/strata/internal/config"
)

// rendered is what kustomize and strata make of an encrypted file: other
// namespace, strata's labels and annotations (which break SOPS' MAC over
// the rendered object), the values untouched.
func rendered(t *testing.T, enc []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := yaml.Unmarshal(enc, &m); err != nil {
		t.Fatal(err)
	}
	md := m["metadata"].(map[string]any)
	md["namespace"] = "ledger-prod"
	md["labels"].(map[string]any)["strata.dev/managed-by"] = "strata"
	md["annotations"] = map[string]any{"strata.dev/placement": "restricted → allowed [on-prem] → onprem"}
	return m
}

func TestOpenDecryptsARenderedSecretFromItsFile(t *testing.T) {
	k := newTierKeys(t)
	enc, err := Encrypt(readFixture(t, "restricted-secret.yaml"), k.of(config.OnPrem))
	if err != nil {
		t.Fatal(err)
	}
	fs := filesys.MakeFsInMemory()
	if err := fs.WriteFile("/repo/overlays/base/ledger/secret.yaml", append([]byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n---\n"), enc...)); err != nil {
		t.Fatal(err)
	}
	srcs, err := Sources(fs, "/repo")
	if err != nil {
		t.Fatal(err)
	}
	obj := rendered(t, enc)
	src, ok := srcs[MAC(obj)]
	if !ok || src.File != "overlays/base/ledger/secret.yaml" {
		t.Fatalf("source of the rendered Secret = %+v, %v", src, ok)
	}
	out, err := Open(obj, src.Doc, "Secret ledger-prod/ledger-db ("+src.File+")", k.ids(t, config.OnPrem))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"username": "ledger", "password": "s3cr3t-ledger-password"}
	if diff := cmp.Diff(want, out["stringData"]); diff != "" {
		t.Errorf("stringData (-want +got):\n%s", diff)
	}
	if _, ok := out["sops"]; ok {
		t.Error("the sops metadata is still there: the apiserver would get it")
	}
	if ns := out["metadata"].(map[string]any)["namespace"]; ns != "ledger-prod" {
		t.Errorf("namespace = %v: the rendered metadata must win", ns)
	}
	if IsEncrypted(out) {
		t.Error("opened Secret still counts as encrypted")
	}
	if _, ok := obj["sops"]; !ok {
		t.Error("Open modified its input")
	}

	t.Run("a patch changed an encrypted value", func(t *testing.T) {
		patched := rendered(t, enc)
		patched["stringData"].(map[string]any)["password"] = "ENC[AES256_GCM,data:AAAA,iv:AAAA,tag:AAAA,type:str]"
		_, err := Open(patched, src.Doc, "Secret ledger-prod/ledger-db", k.ids(t, config.OnPrem))
		if err == nil || !strings.Contains(err.Error(), "differs from the encrypted file") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("no source", func(t *testing.T) {
		if _, err := Open(obj, nil, "Secret ledger-prod/ledger-db", k.ids(t, config.OnPrem)); err == nil {
			t.Fatal("opened without the committed file: the MAC was not verified")
		}
	})
	t.Run("wrong tier's key", func(t *testing.T) {
		_, err := Open(obj, src.Doc, "Secret ledger-prod/ledger-db ("+src.File+")", k.ids(t, config.PublicCloud))
		if err == nil || !strings.Contains(err.Error(), src.File) || !strings.Contains(err.Error(), k.recipients[config.PublicCloud]) {
			t.Fatalf("err = %v, want it to name the file and the key held", err)
		}
	})
}

// A secretGenerator reads files: an encrypted file (binary format, as
// `sops -e token.txt` writes it) arrives as one value.
func TestOpenDecryptsGeneratedValues(t *testing.T) {
	k := newTierKeys(t, config.PrivateCloud, config.OnPrem)
	plain := []byte("fraud-model-api-key\n")
	doc := encryptBinary(t, plain, k.of(config.PrivateCloud, config.OnPrem))
	obj := map[string]any{
		"apiVersion": "v1", "kind": "Secret",
		"metadata": map[string]any{"name": "scoring-key-7h2k9", "namespace": "fraud"},
		"data": map[string]any{
			"api-key.txt": base64.StdEncoding.EncodeToString(doc),
			"plain":       base64.StdEncoding.EncodeToString([]byte("not secret")),
		},
	}
	if diff := cmp.Diff([]string{"data.api-key.txt"}, EncryptedValues(obj)); diff != "" {
		t.Errorf("EncryptedValues (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(k.of(config.PrivateCloud, config.OnPrem), Recipients(obj), sortStrings); diff != "" {
		t.Errorf("Recipients (-want +got):\n%s", diff)
	}
	out, err := Open(obj, nil, "Secret fraud/scoring-key-7h2k9", k.ids(t, config.PrivateCloud))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := base64.StdEncoding.DecodeString(out["data"].(map[string]any)["api-key.txt"].(string))
	if string(got) != string(plain) {
		t.Errorf("decrypted value = %q, want %q", got, plain)
	}
}

func encryptBinary(t *testing.T, plain []byte, recipients []string) []byte {
	t.Helper()
	b, err := EncryptFile(plain, formats.Binary, recipients)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var sortStrings = cmp.Transformer("sort", func(in []string) []string {
	out := append([]string(nil), in...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
})
