package results

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Issue 16 §4: every binary measured is built from a clean commit named in
// the results. A benchmark builds strata (and runs itself) from the working
// tree, so the tree must equal HEAD: these checks refuse to record figures
// otherwise. The results files themselves (RESULTS.md, which the programs
// of one bench/run-all sitting write one after the other) do not count.

// ResultsFile is the base name of the files the benchmarks record into;
// changes to them do not make a checkout unclean.
const ResultsFile = "RESULTS.md"

// dirtyPaths lists `git status --porcelain` of the checkout in dir, except
// files named ResultsFile.
func dirtyPaths(dir string) ([]string, error) {
	out, err := exec.Command("git", "-C", dir, "status", "--porcelain", "--untracked-files=normal").Output()
	if err != nil {
		return nil, fmt.Errorf("git status in %s: %w", dir, exitText(err))
	}
	var dirty []string
	for _, l := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		if len(l) < 4 {
			continue
		}
		p := strings.Trim(l[3:], `"`)
		if _, to, ok := strings.Cut(p, " -> "); ok {
			p = to
		}
		if filepath.Base(p) == ResultsFile {
			continue
		}
		dirty = append(dirty, p)
	}
	return dirty, nil
}

func exitText(err error) error {
	var ee *exec.ExitError
	if errors.As(err, &ee) && len(ee.Stderr) > 0 {
		return fmt.Errorf("%v: %s", err, strings.TrimSpace(string(ee.Stderr)))
	}
	return err
}

// CleanCommit returns the short HEAD commit of the git checkout in dir if
// its work tree equals HEAD (files named RESULTS.md aside), and otherwise
// an error naming the differing paths and what to do.
func CleanCommit(dir string) (string, error) {
	head, err := exec.Command("git", "-C", dir, "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "", fmt.Errorf("%s is not a git checkout with a commit (%v): figures must name the commit they were measured at", dir, exitText(err))
	}
	commit := strings.TrimSpace(string(head))
	dirty, err := dirtyPaths(dir)
	if err != nil {
		return "", err
	}
	if len(dirty) > 0 {
		shown := dirty
		if len(shown) > 8 {
			shown = append(shown[:8:8], fmt.Sprintf("… %d more", len(dirty)-8))
		}
		return "", fmt.Errorf("%s differs from its commit %s in %d paths (%s): figures are recorded only for binaries built from a clean commit; "+
			"commit or set aside those changes, or run from a clean checkout of HEAD (git worktree add /tmp/strata-bench HEAD)",
			dir, commit, len(dirty), strings.Join(shown, ", "))
	}
	return commit, nil
}

// CheckRecordable is nil if figures may be written into file: file is
// outside any git checkout (a scratch file), or its checkout is clean
// (CleanCommit). Benchmarks call it before they start, so that a run is
// not wasted, and UpdateSection calls it again before it writes.
func CheckRecordable(file string) error {
	abs, err := filepath.Abs(file)
	if err != nil {
		return err
	}
	dir := filepath.Dir(abs)
	for {
		if _, err := os.Stat(dir); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return nil
		}
		dir = parent
	}
	top, err := exec.Command("git", "-C", dir, "rev-parse", "--show-toplevel").Output()
	if err != nil {
		return nil // not in a git checkout: a scratch file
	}
	if _, err := CleanCommit(strings.TrimSpace(string(top))); err != nil {
		return fmt.Errorf("refusing to record into %s: %w", file, err)
	}
	return nil
}
