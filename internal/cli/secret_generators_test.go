package cli_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// sopsDecryptAs runs the sops CLI's --decrypt with one key file and extra
// arguments (the dotenv format).
func sopsDecryptAs(t *testing.T, keyFile, file string, args ...string) (string, error) {
	t.Helper()
	bin := filepath.Join(os.Getenv("HOME"), ".cache", "strata", "bin", "sops")
	if d := os.Getenv("STRATA_BIN"); d != "" {
		bin = filepath.Join(d, "sops")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("no sops CLI at %s: hack/install-tools.sh sops", bin)
	}
	cmd := exec.Command(bin, append(append([]string{"--decrypt"}, args...), file)...)
	cmd.Env = []string{"HOME=" + t.TempDir(), "SOPS_AGE_KEY_FILE=" + keyFile}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// generatorRepo is a work tree whose restricted ledger Namespace gets a
// Secret from a secretGenerator reading a dotenv file (envs:, named
// db.properties: the format comes from envs:, not the name) and a file
// (files:, under the key api-key).
func generatorRepo(t *testing.T, recipients string) string {
	dir := t.TempDir()
	writeFile(t, dir, "strata.yaml", secretStrataYAML+recipients)
	writeFile(t, dir, "overlays/prod/kustomization.yaml", "resources:\n- ns.yaml\n- ../../apps/ledger\n")
	writeFile(t, dir, "overlays/prod/ns.yaml", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ledger\n  labels:\n    strata.dev/sensitivity: restricted\n")
	writeFile(t, dir, "apps/ledger/kustomization.yaml", `namespace: ledger
secretGenerator:
  - name: ledger-db
    envs: [db.properties]
    files: [api-key=api-key.txt]
`)
	writeFile(t, dir, "apps/ledger/db.properties", "DB_USER=ledger\nDB_PASSWORD=ledger-password\n")
	writeFile(t, dir, "apps/ledger/api-key.txt", "ledger-api-key\n")
	return dir
}

func TestSecretEncryptAndRotateGeneratorFiles(t *testing.T) {
	keys := t.TempDir()
	repo := generatorRepo(t, mustRun(t, "secret", "keygen", "--dir", keys))
	env := filepath.Join(repo, "apps/ledger/db.properties")
	txt := filepath.Join(repo, "apps/ledger/api-key.txt")

	code, _, stderr := strata(t, "render", "--repo", repo, "--worktree", "--env", "prod")
	if code != 1 || !strings.Contains(stderr, "secret-plaintext") {
		t.Fatalf("render of a plaintext restricted generated Secret: exit %d\n%s", code, stderr)
	}
	// The sensitivity comes from the generator's Namespace, the format from envs:.
	out := mustRun(t, "secret", "encrypt", "--repo", repo, env, txt)
	if strings.Count(out, "encrypted for [on-prem]") != 2 {
		t.Fatalf("encrypt said %q, want both files for [on-prem]", out)
	}
	if b := readFile(t, env); !strings.Contains(b, "DB_PASSWORD=ENC[AES256_GCM,") || !strings.Contains(b, "sops_mac=") {
		t.Fatalf("db.properties is not in SOPS' dotenv format:\n%s", b)
	}
	mustRun(t, "render", "--repo", repo, "--worktree", "--env", "prod")

	// Rotate every tier's key: the new recipients in strata.yaml, rotate with the old keys.
	newKeys := t.TempDir()
	writeFile(t, repo, "strata.yaml", secretStrataYAML+mustRun(t, "secret", "keygen", "--dir", newKeys))
	code, _, stderr = strata(t, "render", "--repo", repo, "--worktree", "--env", "prod")
	if code != 1 || !strings.Contains(stderr, "secret-recipients") {
		t.Fatalf("render after the recipients changed and before rotate: exit %d\n%s", code, stderr)
	}
	out = mustRun(t, "secret", "rotate", "--repo", repo, "--age-key-dir", keys)
	for _, f := range []string{"db.properties: re-encrypted for [on-prem]", "api-key.txt: re-encrypted for [on-prem]"} {
		if !strings.Contains(out, f) {
			t.Errorf("rotate said %q, want %q", out, f)
		}
	}
	mustRun(t, "render", "--repo", repo, "--worktree", "--env", "prod")
	got, err := sopsDecryptAs(t, filepath.Join(newKeys, "on-prem.agekey"), env, "--input-type", "dotenv", "--output-type", "dotenv")
	if err != nil || !strings.Contains(got, "DB_PASSWORD=ledger-password") {
		t.Fatalf("the new on-prem key does not decrypt db.properties after rotate: %v\n%s", err, got)
	}
	if got, err := sopsDecryptAs(t, filepath.Join(newKeys, "on-prem.agekey"), txt); err != nil || got != "ledger-api-key\n" {
		t.Fatalf("the new on-prem key does not decrypt api-key.txt after rotate: %v\n%q", err, got)
	}
	if _, err := sopsDecryptAs(t, filepath.Join(keys, "on-prem.agekey"), txt); err == nil {
		t.Error("the old on-prem key still decrypts api-key.txt after rotate")
	}
}
