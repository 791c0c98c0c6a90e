package approval

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/strata-gitops/strata/internal/config"
)

var (
	now   = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	treeA = strings.Repeat("a1", 20)
	treeB = strings.Repeat("b2", 20)
)

// testKey is a reviewer's key pair.
type testKey struct {
	signer signature.SignerVerifier
	pub    string
}

var (
	keysOnce sync.Once
	keys     map[string]testKey
)

// key returns the key of a test person (generated once per test binary).
func key(t *testing.T, name string) testKey {
	t.Helper()
	keysOnce.Do(func() {
		keys = map[string]testKey{}
		for _, n := range []string{"alice", "bob", "carol", "dave", "mallory"} {
			priv, pub, err := GenerateKey()
			if err != nil {
				panic(err)
			}
			s, err := LoadSigner(priv)
			if err != nil {
				panic(err)
			}
			keys[n] = testKey{signer: s, pub: string(pub)}
		}
	})
	return keys[name]
}

// reviewer returns a trust entry for a test person with their own key.
func reviewer(t *testing.T, name string, envs []string, maxS config.Sensitivity) config.Reviewer {
	return config.Reviewer{Name: name, PublicKey: key(t, name).pub, Environments: envs, MaxSensitivity: maxS}
}

// trustOf returns a valid trust file with these reviewers.
func trustOf(t *testing.T, rs ...config.Reviewer) *config.Trust {
	t.Helper()
	tr := &config.Trust{APIVersion: config.APIVersion, Kind: config.TrustKind, Reviewers: rs}
	if errs := tr.Validate(nil); len(errs) > 0 {
		t.Fatalf("invalid test trust: %v", errs)
	}
	return tr
}

// sign signs st with signer's key; the statement names who it claims.
func sign(t *testing.T, signer string, st Statement) Envelope {
	t.Helper()
	e, err := Sign(key(t, signer).signer, st)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// stmt returns a statement by reviewer for tree in env, signed an hour ago.
func stmt(reviewer, env, tree string) Statement {
	return Statement{Tree: tree, Environment: env, Reviewer: reviewer, Time: now.Add(-time.Hour)}
}

// tamper rewrites the payload of e without re-signing.
func tamper(t *testing.T, e Envelope, edit func(m map[string]any)) Envelope {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(e.Payload)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]any{}
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	raw, err = json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	e.Payload = base64.StdEncoding.EncodeToString(raw)
	return e
}

// gitCLI runs the real git in dir and returns its trimmed stdout.
func gitCLI(t *testing.T, dir string, stdin []byte, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	cmd.Env = append(os.Environ(),
		"GIT_AUTHOR_NAME=Test", "GIT_AUTHOR_EMAIL=test@example.com",
		"GIT_COMMITTER_NAME=Test", "GIT_COMMITTER_EMAIL=test@example.com",
		"GIT_CONFIG_NOSYSTEM=1", "HOME="+t.TempDir(), "LC_ALL=C")
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(stdout.String())
}

func requireGit(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("the git CLI is not installed")
	}
}

func writeFile(t *testing.T, dir, rel, content string) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
