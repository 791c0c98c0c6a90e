// Package rollback reverts commits — with the git CLI for people, so that
// their commit signing, hooks and credentials apply; with go-git for
// strata's own auto-revert — and waits for every cluster to converge on the
// revert.
package rollback

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	gogit "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/strata-gitops/strata/internal/source"
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

// Identity authors strata's own commits (auto-revert).
type Identity struct {
	Name, Email string
}

// AutoRevert reverts commit, the head of branch, with a commit of id's on
// top of it whose tree is the tree before commit (its first parent's: a
// merged pull request is undone as a whole), and pushes it through repo
// with repo's own credentials — go-git, no git CLI, so it works in
// strata's image. reason goes into the commit message. When branch has
// moved on, nothing is pushed (*source.BranchMovedError): the newer
// revision supersedes the failed one.
func AutoRevert(ctx context.Context, repo *source.Repository, branch, commit, reason string, id Identity) (string, error) {
	if err := repo.Fetch(ctx); err != nil {
		return "", err
	}
	head, err := repo.ResolveBranch(branch)
	if err != nil {
		return "", err
	}
	if head.Commit != commit {
		return "", &source.BranchMovedError{Branch: branch, Want: commit, Got: head.Commit}
	}
	var tree, subject string
	err = repo.WithGit(func(g *gogit.Repository) error {
		c, err := g.CommitObject(plumbing.NewHash(commit))
		if err != nil {
			return fmt.Errorf("%w: is %s a commit of this repository?", err, commit)
		}
		if c.NumParents() == 0 {
			return fmt.Errorf("%.12s is the first commit of %s: there is nothing before it to revert to", commit, branch)
		}
		p, err := c.Parent(0)
		if err != nil {
			return err
		}
		tree, subject = p.TreeHash.String(), strings.SplitN(strings.TrimSpace(c.Message), "\n", 2)[0]
		return nil
	})
	if err != nil {
		return "", err
	}
	msg := fmt.Sprintf("Revert \"%s\"\n\nThis reverts commit %s.\n\nstrata reverted %s automatically: %s\n", subject, commit, commit, reason)
	sig := object.Signature{Name: id.Name, Email: id.Email, When: time.Now()}
	return repo.CommitOnto(ctx, branch, commit, tree, msg, sig)
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
