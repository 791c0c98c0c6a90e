package secrets

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/getsops/sops/v3/cmd/sops/formats"

	"github.com/strata-gitops/strata/internal/config"
)

// sopsCLI returns the sops binary hack/install-tools.sh builds from the Go
// module proxy (the version of go.mod).
func sopsCLI(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("STRATA_BIN")
	if dir == "" {
		home, _ := os.UserHomeDir()
		dir = filepath.Join(home, ".cache", "strata", "bin")
	}
	p := filepath.Join(dir, "sops")
	if _, err := os.Stat(p); err != nil {
		t.Skipf("no sops CLI at %s: build it with hack/install-tools.sh sops (make test does)", p)
	}
	return p
}

// runSOPS runs the CLI with nothing of the user's environment but the key
// file given, so that only the keys the test means are used.
func runSOPS(t *testing.T, bin, keyFile string, args ...string) ([]byte, error) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = []string{"HOME=" + t.TempDir(), "PATH=/usr/bin:/bin"}
	if keyFile != "" {
		cmd.Env = append(cmd.Env, "SOPS_AGE_KEY_FILE="+keyFile)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, errors.New(err.Error() + ": " + stderr.String())
	}
	return out, nil
}

func TestInteropSOPSCLIEncryptsStrataDecrypts(t *testing.T) {
	bin := sopsCLI(t)
	k := newTierKeys(t)
	plain := readFixture(t, "restricted-secret.yaml")
	f := filepath.Join(t.TempDir(), "secret.yaml")
	if err := os.WriteFile(f, plain, 0o600); err != nil {
		t.Fatal(err)
	}
	enc, err := runSOPS(t, bin, "", "--encrypt", "--age", k.recipients[config.OnPrem], "--encrypted-regex", EncryptedRegex, f)
	if err != nil {
		t.Fatal(err)
	}
	out, err := Decrypt("secret.yaml", enc, formats.Yaml, k.ids(t, config.OnPrem))
	if err != nil {
		t.Fatalf("strata cannot decrypt what sops encrypted: %v", err)
	}
	assertSameYAML(t, plain, out)

	t.Run("whole file, as sops encrypts by default", func(t *testing.T) {
		enc, err := runSOPS(t, bin, "", "--encrypt", "--age", k.recipients[config.OnPrem], f)
		if err != nil {
			t.Fatal(err)
		}
		out, err := Decrypt("secret.yaml", enc, formats.Yaml, k.ids(t, config.OnPrem))
		if err != nil {
			t.Fatal(err)
		}
		assertSameYAML(t, plain, out)
	})
	t.Run("a generator's binary file", func(t *testing.T) {
		txt := filepath.Join(t.TempDir(), "api-key.txt")
		if err := os.WriteFile(txt, []byte("fraud-model-api-key\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		enc, err := runSOPS(t, bin, "", "--encrypt", "--age", k.recipients[config.PrivateCloud], txt)
		if err != nil {
			t.Fatal(err)
		}
		out, err := Decrypt("api-key.txt", enc, formats.FormatForPath("api-key.txt"), k.ids(t, config.PrivateCloud))
		if err != nil {
			t.Fatal(err)
		}
		if string(out) != "fraud-model-api-key\n" {
			t.Errorf("decrypted %q", out)
		}
	})
	t.Run("tampered", func(t *testing.T) {
		tampered := bytes.Replace(enc, []byte("name: ledger-db"), []byte("name: ledger-dc"), 1)
		_, err := Decrypt("secret.yaml", tampered, formats.Yaml, k.ids(t, config.OnPrem))
		var te *TamperedError
		if !errors.As(err, &te) {
			t.Fatalf("err = %v, want the file refused as tampered", err)
		}
	})
	t.Run("wrong key", func(t *testing.T) {
		_, err := Decrypt("secret.yaml", enc, formats.Yaml, k.ids(t, config.PublicCloud))
		var nk *NoKeyError
		if !errors.As(err, &nk) {
			t.Fatalf("err = %v, want a NoKeyError", err)
		}
	})
}

func TestInteropStrataEncryptsSOPSCLIDecrypts(t *testing.T) {
	bin := sopsCLI(t)
	k := newTierKeys(t)
	plain := readFixture(t, "restricted-secret.yaml")
	enc, err := Encrypt(plain, k.of(config.PrivateCloud, config.OnPrem))
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "secret.yaml")
	if err := os.WriteFile(f, enc, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tier := range []config.Tier{config.PrivateCloud, config.OnPrem} {
		out, err := runSOPS(t, bin, filepath.Join(k.dir, string(tier)+KeyFileSuffix), "--decrypt", f)
		if err != nil {
			t.Fatalf("sops cannot decrypt what strata encrypted with the %s key: %v", tier, err)
		}
		assertSameYAML(t, plain, out)
	}
	_, err = runSOPS(t, bin, filepath.Join(k.dir, "public-cloud"+KeyFileSuffix), "--decrypt", f)
	if err == nil || !strings.Contains(err.Error(), "Failed to get the data key") {
		t.Errorf("sops with the public-cloud key: err = %v, want it refused", err)
	}
}
