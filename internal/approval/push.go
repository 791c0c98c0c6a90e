package approval

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
)

// fetchedRef holds the remote's approvals while Push merges them.
const fetchedRef = "refs/strata/fetched-approvals"

// pushAttempts bounds the fetch-merge-push rounds when other reviewers push
// at the same time.
const pushAttempts = 3

// Push sends the store's notes ref of the local repository at dir to remote
// with the git CLI (so the user's credentials, SSH agent and remote
// configuration apply). Approvals that others pushed meanwhile are fetched
// and merged first, so two reviewers approving the same change never
// overwrite each other.
func (s Store) Push(ctx context.Context, dir, remote string) error {
	ref := s.ref().String()
	var lastErr error
	for range pushAttempts {
		if err := s.fetchAndMerge(ctx, dir, remote); err != nil {
			return err
		}
		_, stderr, err := runGit(ctx, dir, "push", "--quiet", remote, ref+":"+ref)
		if err == nil {
			return nil
		}
		lastErr = fmt.Errorf("git push %s %s: %v: %s", remote, ref, err, strings.TrimSpace(stderr))
		if !strings.Contains(stderr, "rejected") {
			return lastErr
		}
	}
	return lastErr
}

// fetchAndMerge merges the remote's notes ref into the local one, if the
// remote has it.
func (s Store) fetchAndMerge(ctx context.Context, dir, remote string) error {
	ref := s.ref().String()
	out, stderr, err := runGit(ctx, dir, "ls-remote", remote, ref)
	if err != nil {
		return fmt.Errorf("git ls-remote %s %s: %v: %s", remote, ref, err, strings.TrimSpace(stderr))
	}
	if strings.TrimSpace(out) == "" {
		return nil // the first approvals pushed there
	}
	if _, stderr, err := runGit(ctx, dir, "fetch", "--quiet", "--no-tags", remote, "+"+ref+":"+fetchedRef); err != nil {
		return fmt.Errorf("git fetch %s %s: %v: %s", remote, ref, err, strings.TrimSpace(stderr))
	}
	defer func() { _, _, _ = runGit(context.WithoutCancel(ctx), dir, "update-ref", "-d", fetchedRef) }()
	// A fresh go-git repository sees the objects git fetch just wrote.
	repo, err := git.PlainOpenWithOptions(dir, &git.PlainOpenOptions{DetectDotGit: true})
	if err != nil {
		return err
	}
	if _, err := s.Merge(repo, plumbing.ReferenceName(fetchedRef)); err != nil {
		return fmt.Errorf("merging the approvals of %s: %w", remote, err)
	}
	return nil
}

func runGit(ctx context.Context, dir string, args ...string) (string, string, error) {
	cmd := exec.CommandContext(ctx, "git", append([]string{"-C", dir}, args...)...)
	// English messages, so that a rejected push is recognised.
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}
