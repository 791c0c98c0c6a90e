package results

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// gitRepo makes a git repository with one committed file and RESULTS.md.
func gitRepo(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not in PATH")
	}
	dir := t.TempDir()
	git := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=t", "-c", "user.email=t@example.com"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	git("init", "-q")
	for name, text := range map[string]string{"main.go": "package main\n", "bench/RESULTS.md": "# strata benchmarks\n"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git("add", ".")
	git("commit", "-q", "-m", "seed")
	return dir
}

func TestRecordingNeedsACleanCommit(t *testing.T) {
	dir := gitRepo(t)
	results := filepath.Join(dir, "bench", "RESULTS.md")
	const header = "## Render"

	// Clean: recorded, and the commit is named.
	commit, err := CleanCommit(dir)
	if err != nil || commit == "" {
		t.Fatalf("clean checkout: commit %q, %v", commit, err)
	}
	if err := UpdateSection(results, header, header+"\n\nfirst\n"); err != nil {
		t.Fatalf("clean checkout: %v", err)
	}
	// The results file itself being modified (an earlier program of the
	// same sitting) does not count.
	if err := UpdateSection(results, header, header+"\n\nsecond\n"); err != nil {
		t.Fatalf("only RESULTS.md modified: %v", err)
	}
	if got := GitState(dir); got != " at commit "+commit {
		t.Fatalf("GitState with only RESULTS.md modified = %q", got)
	}

	// A modified source file or an untracked one: refused, with the path.
	for _, dirty := range []struct{ name, why string }{{"main.go", "modified"}, {"new.go", "untracked"}} {
		t.Run(dirty.why, func(t *testing.T) {
			p := filepath.Join(dir, dirty.name)
			old, _ := os.ReadFile(p)
			if err := os.WriteFile(p, []byte("package main // changed\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if old == nil {
					os.Remove(p)
				} else {
					os.WriteFile(p, old, 0o644)
				}
			})
			err := UpdateSection(results, header, header+"\n\nthird\n")
			if err == nil || !strings.Contains(err.Error(), dirty.name) || !strings.Contains(err.Error(), "clean commit") {
				t.Fatalf("UpdateSection with %s %s: %v, want a refusal naming it", dirty.why, dirty.name, err)
			}
			if got, _ := os.ReadFile(results); !strings.Contains(string(got), "second") || strings.Contains(string(got), "third") {
				t.Fatalf("refused, yet the file changed:\n%s", got)
			}
			if _, err := CleanCommit(dir); err == nil {
				t.Fatal("CleanCommit: want an error")
			}
			if got := GitState(dir); !strings.Contains(got, "uncommitted changes (1 paths") {
				t.Fatalf("GitState = %q", got)
			}
		})
	}

	// Outside any checkout: a scratch file, always written.
	if err := CheckRecordable(filepath.Join(t.TempDir(), "sub", "RESULTS.md")); err != nil {
		t.Fatalf("scratch file: %v", err)
	}
}
