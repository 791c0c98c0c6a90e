package cli_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const secretStrataYAML = `apiVersion: strata.dev/v1alpha1
kind: Config
tiers:
  public:       [public-cloud, private-cloud, on-prem]
  internal:     [private-cloud, on-prem]
  confidential: [private-cloud, on-prem]
  restricted:   [on-prem]
environments:
  prod:
    path: overlays/prod
    clusters:
      - {name: public,  tier: public-cloud}
      - {name: private, tier: private-cloud}
      - {name: onprem,  tier: on-prem}
approvals: {public: 0, internal: 0, confidential: 0, restricted: 0, enforce: false}
`

// secretRepo is a work tree with the ledger's restricted Namespace and a
// plaintext Secret in it (labelled through its Namespace only).
func secretRepo(t *testing.T, recipients string) string {
	dir := t.TempDir()
	writeFile(t, dir, "strata.yaml", secretStrataYAML+recipients)
	writeFile(t, dir, "overlays/prod/kustomization.yaml", "resources:\n- ns.yaml\n- ledger-secret.yaml\n")
	writeFile(t, dir, "overlays/prod/ns.yaml", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ledger\n  labels:\n    strata.dev/sensitivity: restricted\n")
	writeFile(t, dir, "overlays/prod/ledger-secret.yaml", "apiVersion: v1\nkind: Secret\nmetadata:\n  name: ledger-db\n  namespace: ledger\nstringData:\n  password: ledger-password\n")
	return dir
}

func sopsDecrypt(t *testing.T, keyFile, file string) (string, error) {
	t.Helper()
	bin := filepath.Join(os.Getenv("HOME"), ".cache", "strata", "bin", "sops")
	if d := os.Getenv("STRATA_BIN"); d != "" {
		bin = filepath.Join(d, "sops")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("no sops CLI at %s: hack/install-tools.sh sops", bin)
	}
	cmd := exec.Command(bin, "--decrypt", file)
	cmd.Env = []string{"HOME=" + t.TempDir(), "SOPS_AGE_KEY_FILE=" + keyFile}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestSecretEncryptRenderAndRotate(t *testing.T) {
	keys := t.TempDir()
	recipients := mustRun(t, "secret", "keygen", "--dir", keys)
	repo := secretRepo(t, recipients)
	file := filepath.Join(repo, "overlays/prod/ledger-secret.yaml")

	// A plaintext restricted Secret is a violation.
	code, _, stderr := strata(t, "render", "--repo", repo, "--worktree", "--env", "prod")
	if code != 1 || !strings.Contains(stderr, "secret-plaintext") || !strings.Contains(stderr, "strata secret encrypt") {
		t.Fatalf("render of a plaintext restricted Secret: exit %d\n%s", code, stderr)
	}

	out := mustRun(t, "secret", "encrypt", "--repo", repo, file)
	if !strings.Contains(out, "encrypted for [on-prem]") {
		t.Errorf("encrypt said %q, want the Namespace's restricted floor to give [on-prem]", out)
	}
	if strings.Contains(readFile(t, file), "ledger-password") {
		t.Fatal("plaintext left in the file")
	}
	mustRun(t, "render", "--repo", repo, "--worktree", "--env", "prod")
	if got, err := sopsDecrypt(t, filepath.Join(keys, "on-prem.agekey"), file); err != nil || !strings.Contains(got, "ledger-password") {
		t.Fatalf("sops --decrypt with the on-prem key: %v\n%s", err, got)
	}
	if got, err := sopsDecrypt(t, filepath.Join(keys, "public-cloud.agekey"), file); err == nil {
		t.Fatalf("sops decrypted the restricted Secret with the public-cloud key:\n%s", got)
	}

	// A restricted Secret encrypted to the public-cloud recipient (by hand,
	// with --sensitivity public) is caught by render.
	encrypted := readFile(t, file)
	writeFile(t, repo, "overlays/prod/ledger-secret.yaml", "apiVersion: v1\nkind: Secret\nmetadata:\n  name: ledger-db\n  namespace: ledger\nstringData:\n  password: x\n")
	writeFile(t, repo, "overlays/prod/ns.yaml", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ledger\n  labels:\n    strata.dev/sensitivity: public\n")
	mustRun(t, "secret", "encrypt", "--repo", repo, file)
	writeFile(t, repo, "overlays/prod/ns.yaml", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ledger\n  labels:\n    strata.dev/sensitivity: restricted\n")
	code, _, stderr = strata(t, "render", "--repo", repo, "--worktree", "--env", "prod")
	if code != 1 || !strings.Contains(stderr, "readable by public-cloud") || !strings.Contains(stderr, "ledger-secret.yaml") {
		t.Fatalf("render of a restricted Secret readable by public-cloud: exit %d\n%s", code, stderr)
	}
	writeFile(t, repo, "overlays/prod/ledger-secret.yaml", encrypted)

	// Rotate the on-prem key: new recipient in strata.yaml, rotate with the old keys.
	newKeys := t.TempDir()
	newRecipients := mustRun(t, "secret", "keygen", "--dir", newKeys)
	writeFile(t, repo, "strata.yaml", secretStrataYAML+newRecipients)
	out = mustRun(t, "secret", "rotate", "--repo", repo, "--age-key-dir", keys)
	if !strings.Contains(out, "re-encrypted for [on-prem]") {
		t.Errorf("rotate said %q", out)
	}
	if got, err := sopsDecrypt(t, filepath.Join(newKeys, "on-prem.agekey"), file); err != nil || !strings.Contains(got, "ledger-password") {
		t.Fatalf("the new on-prem key does not decrypt after rotate: %v\n%s", err, got)
	}
	if _, err := sopsDecrypt(t, filepath.Join(keys, "on-prem.agekey"), file); err == nil {
		t.Fatal("the old on-prem key still decrypts after rotate")
	}
	mustRun(t, "render", "--repo", repo, "--worktree", "--env", "prod")
}
