package source

import (
	"errors"
	"fmt"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// Commit is one commit of a history walk: who made it and what it holds.
type Commit struct {
	Revision
	// Committer and CommitterEmail made the commit (the author may differ).
	Committer, CommitterEmail string
	CommitTime                time.Time
	// Parents are the parent commits, first parent first.
	Parents []string
}

func commitOf(c *object.Commit) Commit {
	out := Commit{Revision: *revisionOf(c.Hash.String(), c), Committer: c.Committer.Name,
		CommitterEmail: c.Committer.Email, CommitTime: c.Committer.When}
	for _, p := range c.ParentHashes {
		out.Parents = append(out.Parents, p.String())
	}
	return out
}

// ErrHistoryTooLong is a walk that reached its bound before its end.
var ErrHistoryTooLong = errors.New("history longer than the walk's bound")

// FirstParents returns the first-parent ancestors of commit, nearest first,
// commit itself excluded, at most max of them (ErrHistoryTooLong beyond).
// Only the first parent is followed: the branch's own line of merges and
// commits, not the side branches merged into it.
func (r *Repository) FirstParents(commit string, max int) ([]Commit, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, err := r.repo.CommitObject(plumbing.NewHash(commit))
	if err != nil {
		return nil, fmt.Errorf("reading commit %s: %w", shortSHA(commit), err)
	}
	var out []Commit
	for len(c.ParentHashes) > 0 {
		if len(out) >= max {
			return out, fmt.Errorf("%w: more than %d first-parent ancestors of %s", ErrHistoryTooLong, max, shortSHA(commit))
		}
		p, err := r.repo.CommitObject(c.ParentHashes[0])
		if err != nil {
			return out, fmt.Errorf("reading commit %s, an ancestor of %s: %w", shortSHA(c.ParentHashes[0].String()), shortSHA(commit), err)
		}
		out = append(out, commitOf(p))
		c = p
	}
	return out, nil
}

// Between returns the commits reachable from head but not from base (every
// parent followed, merged side branches included), at most max of them.
// An empty base means every ancestor of head. head itself is included.
func (r *Repository) Between(base, head string, max int) ([]Commit, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	stop := map[plumbing.Hash]bool{}
	if base != "" {
		b, err := r.repo.CommitObject(plumbing.NewHash(base))
		if err != nil {
			return nil, fmt.Errorf("reading commit %s: %w", shortSHA(base), err)
		}
		// Everything reachable from base is not part of the change.
		err = object.NewCommitPreorderIter(b, nil, nil).ForEach(func(c *object.Commit) error {
			stop[c.Hash] = true
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	h, err := r.repo.CommitObject(plumbing.NewHash(head))
	if err != nil {
		return nil, fmt.Errorf("reading commit %s: %w", shortSHA(head), err)
	}
	var out []Commit
	ignore := make([]plumbing.Hash, 0, len(stop))
	for k := range stop {
		ignore = append(ignore, k)
	}
	err = object.NewCommitPreorderIter(h, nil, ignore).ForEach(func(c *object.Commit) error {
		if len(out) >= max {
			return fmt.Errorf("%w: more than %d commits between %s and %s", ErrHistoryTooLong, max, shortSHA(base), shortSHA(head))
		}
		out = append(out, commitOf(c))
		return nil
	})
	if err != nil && !errors.Is(err, storer.ErrStop) {
		return out, err
	}
	return out, nil
}

// WithGit runs fn with the go-git repository while no fetch can run beside
// it: go-git's storage is not safe for a fetch racing a read.
func (r *Repository) WithGit(fn func(*git.Repository) error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return fn(r.repo)
}

func shortSHA(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

// Commit returns one commit.
func (r *Repository) Commit(hash string) (Commit, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, err := r.repo.CommitObject(plumbing.NewHash(hash))
	if err != nil {
		return Commit{}, fmt.Errorf("reading commit %s: %w", shortSHA(hash), err)
	}
	return commitOf(c), nil
}
