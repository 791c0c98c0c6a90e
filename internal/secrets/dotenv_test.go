package secrets

import (
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/getsops/sops/v3/cmd/sops/formats"
	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/strata-gitops/strata/internal/config"
)

// generatorRepo copies testdata/generator into an in-memory repository at
// /repo/overlays/ledger with db.env and api-key.txt replaced by enc(name,
// plaintext).
func generatorRepo(t *testing.T, enc func(name string, plain []byte) []byte) filesys.FileSystem {
	t.Helper()
	fs := filesys.MakeFsInMemory()
	for _, name := range []string{"kustomization.yaml", "db.env", "api-key.txt"} {
		b := readFixture(t, filepath.Join("generator", name))
		if name != "kustomization.yaml" {
			b = enc(name, b)
		}
		if err := fs.WriteFile("/repo/overlays/ledger/"+name, b); err != nil {
			t.Fatal(err)
		}
	}
	return fs
}

// build renders the generator with kustomize, as strata's render does.
func build(t *testing.T, fs filesys.FileSystem) map[string]any {
	t.Helper()
	rm, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(fs, "/repo/overlays/ledger")
	if err != nil {
		t.Fatal(err)
	}
	if rm.Size() != 1 {
		t.Fatalf("rendered %d objects", rm.Size())
	}
	m, err := rm.Resources()[0].Map()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func strataEncrypts(t *testing.T, rs []string) func(string, []byte) []byte {
	return func(name string, plain []byte) []byte {
		t.Helper()
		format := formats.FormatForPath(name)
		if name == "db.env" {
			format = formats.Dotenv
		}
		b, err := EncryptFile(plain, format, rs)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
}

func decoded(t *testing.T, m map[string]any) map[string]string {
	t.Helper()
	out := map[string]string{}
	for k, v := range m["data"].(map[string]any) {
		b, err := base64.StdEncoding.DecodeString(v.(string))
		if err != nil {
			t.Fatal(err)
		}
		out[k] = string(b)
	}
	return out
}

// What kustomize makes of the plaintext files is what strata applies.
var generatorPlain = map[string]string{
	"DB_USER":     "ledger",
	"DB_PASSWORD": "s3cr3t=with=equals",
	"DB_URL":      "postgres://ledger-db:5432/ledger?sslmode=require",
	"api-key.txt": "ledger-api-key-0123\n",
	"mode":        "primary",
}

func TestOpenDecryptsAGeneratedSecretFromEnvsAndFiles(t *testing.T) {
	k := newTierKeys(t)
	fs := generatorRepo(t, strataEncrypts(t, k.of(config.OnPrem)))
	obj := build(t, fs)
	if !IsEncryptedEnv(obj) || !NeedsSource(obj) || !IsEncrypted(obj) {
		t.Fatalf("the generated Secret does not count as an encrypted dotenv Secret: %v", obj["data"])
	}
	if got := Recipients(obj); !cmp.Equal(got, k.of(config.OnPrem)) {
		t.Errorf("Recipients = %v, want the on-prem recipient", got)
	}
	envOnly := build(t, fs)
	delete(envOnly["data"].(map[string]any), "api-key.txt")
	if got := Recipients(envOnly); !cmp.Equal(got, k.of(config.OnPrem)) {
		t.Errorf("Recipients of the dotenv lines alone = %v, want the on-prem recipient", got)
	}
	srcs, err := Sources(fs, "/repo")
	if err != nil {
		t.Fatal(err)
	}
	src, ok := srcs[MAC(obj)]
	if !ok || src.File != "overlays/ledger/db.env" {
		t.Fatalf("source of the generated Secret = %+v, %v; want overlays/ledger/db.env", src, ok)
	}
	out, err := Open(obj, src.Doc, "Secret ledger/ledger-db", k.ids(t, config.OnPrem))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(generatorPlain, decoded(t, out)); diff != "" {
		t.Errorf("opened values (-want +got):\n%s", diff)
	}
	if IsEncrypted(out) {
		t.Error("the opened Secret still counts as encrypted")
	}

	t.Run("the public-cloud key", func(t *testing.T) {
		_, err := Open(obj, src.Doc, "Secret ledger/ledger-db (overlays/ledger/db.env)", k.ids(t, config.PublicCloud))
		var nk *NoKeyError
		if !errors.As(err, &nk) || !strings.Contains(err.Error(), "overlays/ledger/db.env") || !strings.Contains(err.Error(), k.recipients[config.OnPrem]) {
			t.Fatalf("err = %v, want a NoKeyError naming the file and its recipient", err)
		}
	})
	t.Run("a kustomize patch changed an encrypted line", func(t *testing.T) {
		patched := build(t, fs)
		patched["data"].(map[string]any)["DB_USER"] = base64.StdEncoding.EncodeToString([]byte("ENC[AES256_GCM,data:AAAA,iv:AAAA,tag:AAAA,type:str]"))
		_, err := Open(patched, src.Doc, "Secret ledger/ledger-db", k.ids(t, config.OnPrem))
		if err == nil || !strings.Contains(err.Error(), "DB_USER differs from the encrypted dotenv file") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("the committed file was tampered with", func(t *testing.T) {
		tampered := []byte(strings.Replace(string(src.Doc), "DB_USER=ENC[AES256_GCM,data:", "DB_USER=ENC[AES256_GCM,data:AA", 1))
		fs2 := generatorRepo(t, func(name string, plain []byte) []byte {
			if name == "db.env" {
				return tampered
			}
			return strataEncrypts(t, k.of(config.OnPrem))(name, plain)
		})
		obj := build(t, fs2)
		_, err := Open(obj, tampered, "Secret ledger/ledger-db (overlays/ledger/db.env)", k.ids(t, config.OnPrem))
		var te *TamperedError
		if !errors.As(err, &te) || !strings.Contains(err.Error(), "overlays/ledger/db.env") {
			t.Fatalf("err = %v, want the file refused as tampered", err)
		}
	})
	t.Run("no source", func(t *testing.T) {
		if _, err := Open(obj, nil, "Secret ledger/ledger-db", k.ids(t, config.OnPrem)); err == nil || !strings.Contains(err.Error(), "was not found") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestParseEnvReadsLinesAsKustomizeDoes(t *testing.T) {
	got, err := ParseEnv([]byte("\xef\xbb\xbf# comment\n\n  A=1\nB=x=y\nC\n\tD=\"q\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []EnvPair{{"A", "1"}, {"B", "x=y"}, {"C", ""}, {"D", `"q"`}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// The sops CLI encrypts the dotenv file and the files: file; kustomize
// builds the generator; strata decrypts. And back: strata encrypts the
// dotenv file, the sops CLI decrypts it.
func TestInteropDotenvWithTheSOPSCLI(t *testing.T) {
	bin := sopsCLI(t)
	k := newTierKeys(t)
	dir := t.TempDir()
	fs := generatorRepo(t, func(name string, plain []byte) []byte {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, plain, 0o600); err != nil {
			t.Fatal(err)
		}
		args := []string{"--encrypt", "--age", k.recipients[config.OnPrem]}
		if name == "db.env" {
			args = append(args, "--input-type", "dotenv", "--output-type", "dotenv")
		}
		enc, err := runSOPS(t, bin, "", append(args, p)...)
		if err != nil {
			t.Fatal(err)
		}
		return enc
	})
	obj := build(t, fs)
	srcs, err := Sources(fs, "/repo")
	if err != nil {
		t.Fatal(err)
	}
	out, err := Open(obj, srcs[MAC(obj)].Doc, "Secret ledger/ledger-db", k.ids(t, config.OnPrem))
	if err != nil {
		t.Fatalf("strata cannot open what sops encrypted: %v", err)
	}
	if diff := cmp.Diff(generatorPlain, decoded(t, out)); diff != "" {
		t.Errorf("opened values (-want +got):\n%s", diff)
	}

	plain := readFixture(t, filepath.Join("generator", "db.env"))
	enc, err := EncryptFile(plain, formats.Dotenv, k.of(config.PrivateCloud, config.OnPrem))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "strata.env")
	if err := os.WriteFile(p, enc, 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := runSOPS(t, bin, filepath.Join(k.dir, "private-cloud"+KeyFileSuffix), "--decrypt", "--input-type", "dotenv", "--output-type", "dotenv", p)
	if err != nil {
		t.Fatalf("sops cannot decrypt the dotenv file strata encrypted: %v", err)
	}
	wantPairs, _ := ParseEnv(plain)
	gotPairs, err := ParseEnv(got)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantPairs, gotPairs); diff != "" {
		t.Errorf("sops --decrypt (-want +got):\n%s", diff)
	}
	if _, err := runSOPS(t, bin, filepath.Join(k.dir, "public-cloud"+KeyFileSuffix), "--decrypt", "--input-type", "dotenv", "--output-type", "dotenv", p); err == nil {
		t.Error("sops decrypted the dotenv file with the public-cloud key")
	}
}
