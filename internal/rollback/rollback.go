// Package rollback reverts commits with the git CLI — so that the user's
// commit signing, hooks and credentials apply — and waits for every cluster
// to converge on the revert.
package rollback

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

// git runs the git CLI in dir and returns its trimmed stdout.
func git(ctx context.Context, dir string, env []string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return strings.TrimSpace(out.String()), nil
}

// Revert runs `git revert --no-edit COMMIT` in the work tree dir and
// returns the new commit.
func Revert(ctx context.Context, dir, commit string) (string, error) {
	args, err := revertArgs(ctx, dir, commit)
	if err != nil {
		return "", err
	}
	if _, err := git(ctx, dir, nil, args...); err != nil {
		_, _ = git(ctx, dir, nil, "revert", "--abort")
		return "", fmt.Errorf("%w: resolve the conflict by hand (git revert %s), or revert a later commit first", err, commit)
	}
	return git(ctx, dir, nil, "rev-parse", "HEAD")
}

// Push pushes the current branch of dir to remote.
func Push(ctx context.Context, dir, remote string) error {
	branch, err := git(ctx, dir, nil, "rev-parse", "--abbrev-ref", "HEAD")
	if err != nil {
		return err
	}
	_, err = git(ctx, dir, nil, "push", remote, "HEAD:refs/heads/"+branch)
	return err
}

// Identity signs strata's own commits (auto-revert).
type Identity struct {
	Name, Email string
	// SigningKey, when set, is an SSH private key file the commit is signed with.
	SigningKey string
}

// AutoRevert clones url, reverts commit on branch as id, pushes, and
// returns the revert commit. reason goes into the commit message.
func AutoRevert(ctx context.Context, url, branch, commit, reason string, id Identity) (string, error) {
	dir, err := os.MkdirTemp("", "strata-autorevert-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	if _, err := git(ctx, "", nil, "clone", "--quiet", "--branch", branch, url, dir); err != nil {
		return "", err
	}
	env := []string{"GIT_AUTHOR_NAME=" + id.Name, "GIT_AUTHOR_EMAIL=" + id.Email,
		"GIT_COMMITTER_NAME=" + id.Name, "GIT_COMMITTER_EMAIL=" + id.Email}
	args := []string{"-c", "core.hooksPath=/dev/null"}
	if id.SigningKey != "" {
		args = append(args, "-c", "gpg.format=ssh", "-c", "user.signingkey="+id.SigningKey, "-c", "commit.gpgsign=true")
	}
	rargs, err := revertArgs(ctx, dir, commit)
	if err != nil {
		return "", err
	}
	if _, err := git(ctx, dir, env, append(args, rargs...)...); err != nil {
		return "", err
	}
	subject, _ := git(ctx, dir, env, "log", "-1", "--format=%s")
	msg := fmt.Sprintf("%s\n\nstrata reverted %s automatically: %s\n", subject, commit, reason)
	if _, err := git(ctx, dir, env, append(args, "commit", "--amend", "-m", msg)...); err != nil {
		return "", err
	}
	if _, err := git(ctx, dir, env, "push", "--quiet", "origin", "HEAD:refs/heads/"+branch); err != nil {
		return "", fmt.Errorf("%w: someone pushed meanwhile; strata retries at the next failure", err)
	}
	return git(ctx, dir, nil, "rev-parse", "HEAD")
}

// ClusterState is what Wait needs to know of one cluster.
type ClusterState struct {
	Revision  string
	Converged bool // at the revision and healthy
	Detail    string
}

// Wait polls every cluster through state until each has converged on
// revision, calling progress once per cluster when it does, and returns the
// time from start to the last one.
func Wait(ctx context.Context, clusters []string, revision string, start time.Time, state func(ctx context.Context, cluster string) ClusterState, progress func(cluster string, after time.Duration, s ClusterState)) (time.Duration, error) {
	done := map[string]bool{}
	last := map[string]ClusterState{}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		for _, c := range clusters {
			if done[c] {
				continue
			}
			s := state(ctx, c)
			last[c] = s
			if s.Converged && s.Revision == revision {
				done[c] = true
				progress(c, time.Since(start), s)
			}
		}
		if len(done) == len(clusters) {
			return time.Since(start), nil
		}
		select {
		case <-ctx.Done():
			var pending []string
			for _, c := range clusters {
				if !done[c] {
					pending = append(pending, fmt.Sprintf("%s (at %.12s: %s)", c, last[c].Revision, last[c].Detail))
				}
			}
			return time.Since(start), fmt.Errorf("not converged on %.12s: %s", revision, strings.Join(pending, ", "))
		case <-tick.C:
		}
	}
}

// revertArgs reverts commit; a merge commit (a pull request merged with a
// merge commit) is reverted against its first parent, the branch it was
// merged into.
func revertArgs(ctx context.Context, dir, commit string) ([]string, error) {
	parents, err := git(ctx, dir, nil, "rev-list", "--parents", "-n", "1", commit)
	if err != nil {
		return nil, fmt.Errorf("%w: is %s a commit of this repository?", err, commit)
	}
	if len(strings.Fields(parents)) > 2 {
		return []string{"revert", "--no-edit", "-m", "1", commit}, nil
	}
	return []string{"revert", "--no-edit", commit}, nil
}
