// Package configrepo turns a generated benchmark config repository into a
// git repository, as strata reads committed content only.
package configrepo

import (
	"bytes"
	"fmt"
	"os/exec"
	"strings"
)

// Commit makes dir a git repository (branch main) with one commit of
// everything in it, independent of the user's git config.
func Commit(dir string) error {
	steps := [][]string{
		{"-c", "init.defaultBranch=main", "init", "-q"},
		{"add", "-A"},
		{"-c", "user.name=strata bench", "-c", "user.email=bench@strata.invalid", "-c", "commit.gpgsign=false",
			"commit", "-q", "--no-verify", "-m", "bench: generated config repository"},
	}
	for _, args := range steps {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("git %s in %s: %v: %s", strings.Join(args, " "), dir, err, strings.TrimSpace(stderr.String()))
		}
	}
	return nil
}
