// Package source opens the config repository with go-git, resolves
// revisions and exposes the tree of a commit as a read-only filesystem, so
// that renders never see uncommitted files.
package source

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/storage/memory"
)

// Repository is an opened config repository, local or remote.
type Repository struct {
	repo *git.Repository
	// Location is what Open was given: a path or a URL.
	Location string
	// WorkDir is the work tree of a local repository ("" for a remote one).
	WorkDir string
	remote  bool
	auth    transport.AuthMethod
	// mu serializes fetches with reads: go-git's storage is not safe for a
	// fetch running beside a resolve (the reconciler watches for new
	// revisions while it applies).
	mu sync.Mutex
}

// OpenOptions tune Open.
type OpenOptions struct {
	// Auth authenticates to a remote repository.
	Auth transport.AuthMethod
	// Dir keeps a remote repository's mirror on disk (reused between runs);
	// empty keeps it in memory.
	Dir string
}

// Revision is one commit of the config repository.
type Revision struct {
	// Ref is the revision as asked for (branch, tag, sha, HEAD~1, …).
	Ref         string    `json:"ref"`
	Commit      string    `json:"commit"`
	Tree        string    `json:"tree"`
	Author      string    `json:"author"`
	AuthorEmail string    `json:"authorEmail"`
	Time        time.Time `json:"time"`
	Message     string    `json:"message"`
}

// Short returns the first 12 characters of the commit.
func (r *Revision) Short() string {
	if len(r.Commit) > 12 {
		return r.Commit[:12]
	}
	return r.Commit
}

// Subject returns the first line of the commit message.
func (r *Revision) Subject() string {
	s, _, _ := strings.Cut(strings.TrimSpace(r.Message), "\n")
	return s
}

// IsRemote reports whether location is a URL that Open clones.
func IsRemote(location string) bool {
	for _, p := range []string{"http://", "https://", "ssh://", "git@"} {
		if strings.HasPrefix(location, p) {
			return true
		}
	}
	return false
}

// Open opens a local repository (a path inside its work tree, or a bare
// repository) or clones a remote one as a mirror.
func Open(ctx context.Context, location string, opts OpenOptions) (*Repository, error) {
	if IsRemote(location) {
		return openRemote(ctx, location, opts)
	}
	path := strings.TrimPrefix(location, "file://")
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(abs); err != nil {
		return nil, fmt.Errorf("config repository %s: %w: pass --repo with a local path or an http(s) URL", location, err)
	}
	repo, err := git.PlainOpenWithOptions(abs, &git.PlainOpenOptions{DetectDotGit: true})
	if err != nil {
		if errors.Is(err, git.ErrRepositoryNotExists) {
			return nil, &NotARepositoryError{Path: abs}
		}
		return nil, fmt.Errorf("opening config repository %s: %w", location, err)
	}
	r := &Repository{repo: repo, Location: location}
	if wt, err := repo.Worktree(); err == nil {
		r.WorkDir = wt.Filesystem.Root()
	}
	return r, nil
}

// NotARepositoryError says a local path is not inside a git repository.
type NotARepositoryError struct{ Path string }

func (e *NotARepositoryError) Error() string {
	return fmt.Sprintf("%s is not in a git repository: strata renders committed content only; run git init and commit, or pass --worktree to render the files as they are", e.Path)
}

func openRemote(ctx context.Context, url string, opts OpenOptions) (*Repository, error) {
	r := &Repository{Location: url, remote: true, auth: opts.Auth}
	if opts.Dir != "" {
		if repo, err := git.PlainOpen(opts.Dir); err == nil {
			r.repo = repo
			return r, r.Fetch(ctx)
		}
	}
	// An empty repository plus a mirror fetch, rather than a clone: a clone
	// fails when the server's HEAD names a branch that does not exist.
	var repo *git.Repository
	var err error
	if opts.Dir != "" {
		repo, err = git.PlainInit(opts.Dir, true)
	} else {
		repo, err = git.Init(memory.NewStorage(), nil)
	}
	if err != nil {
		return nil, fmt.Errorf("preparing a mirror of %s: %w", url, err)
	}
	if _, err := repo.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{url}, Fetch: []config.RefSpec{"+refs/*:refs/*"}}); err != nil {
		return nil, err
	}
	r.repo = repo
	if err := r.Fetch(ctx); err != nil {
		if opts.Dir != "" {
			_ = os.RemoveAll(opts.Dir)
		}
		return nil, fmt.Errorf("cloning %s: %w: check the URL and credentials", url, err)
	}
	return r, nil
}

// Fetch brings a remote repository up to date (all branches, tags and
// notes, forced, as a mirror). It is a no-op for a local repository.
func (r *Repository) Fetch(ctx context.Context) error {
	if !r.remote {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	err := r.repo.FetchContext(ctx, &git.FetchOptions{
		RemoteName: "origin",
		RefSpecs:   []config.RefSpec{"+refs/*:refs/*"},
		Auth:       r.auth,
		Force:      true,
		Prune:      true,
		Tags:       git.AllTags,
	})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return fmt.Errorf("fetching %s: %w", r.Location, err)
	}
	r.followRemoteHEAD(ctx)
	return nil
}

// followRemoteHEAD points the mirror's HEAD where the server's points, when
// that branch exists, so that "HEAD" means the default branch.
func (r *Repository) followRemoteHEAD(ctx context.Context) {
	if _, err := r.repo.Head(); err == nil {
		return // resolved already; spare a round trip per fetch
	}
	remote, err := r.repo.Remote("origin")
	if err != nil {
		return
	}
	refs, err := remote.ListContext(ctx, &git.ListOptions{Auth: r.auth})
	if err != nil {
		return
	}
	for _, ref := range refs {
		if ref.Name() != plumbing.HEAD {
			continue
		}
		target := ref.Target()
		if ref.Type() != plumbing.SymbolicReference {
			return
		}
		if _, err := r.repo.Reference(target, false); err == nil {
			_ = r.repo.Storer.SetReference(plumbing.NewSymbolicReference(plumbing.HEAD, target))
		}
		return
	}
}

// Git returns the underlying go-git repository.
func (r *Repository) Git() *git.Repository { return r.repo }

// Resolve finds rev (a branch, tag, full or short sha, or an expression
// such as HEAD~1) and returns its commit.
func (r *Repository) Resolve(rev string) (*Revision, error) {
	if rev == "" {
		rev = "HEAD"
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	hash, err := r.repo.ResolveRevision(plumbing.Revision(rev))
	if err != nil && !r.remote {
		// A local clone names the remote's branches origin/<name>.
		if h, err2 := r.repo.ResolveRevision(plumbing.Revision("refs/remotes/origin/" + rev)); err2 == nil {
			hash, err = h, nil
		}
	}
	if err != nil {
		return nil, &RevisionNotFoundError{Revision: rev, Location: r.Location, Err: err}
	}
	c, err := r.repo.CommitObject(*hash)
	if err != nil {
		// A tag may point at a tree or blob rather than a commit.
		return nil, &RevisionNotFoundError{Revision: rev, Location: r.Location, Err: fmt.Errorf("%s is not a commit: %w", hash, err)}
	}
	return &Revision{
		Ref: rev, Commit: c.Hash.String(), Tree: c.TreeHash.String(),
		Author: c.Author.Name, AuthorEmail: c.Author.Email, Time: c.Author.When, Message: c.Message,
	}, nil
}

// RevisionNotFoundError says a revision does not exist in the repository.
type RevisionNotFoundError struct {
	Revision, Location string
	Err                error
}

func (e *RevisionNotFoundError) Error() string {
	return fmt.Sprintf("revision %q not found in %s (%v): use a branch, tag or commit that exists there (git log --oneline, git branch -a)", e.Revision, e.Location, e.Err)
}

func (e *RevisionNotFoundError) Unwrap() error { return e.Err }

// IsAncestor reports whether commit ancestor is reachable from commit
// descendant (equal commits count), to refuse history rewrites.
func (r *Repository) IsAncestor(ancestor, descendant string) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ancestor == descendant {
		return true, nil
	}
	a, err := r.repo.CommitObject(plumbing.NewHash(ancestor))
	if err != nil {
		// The old commit is gone from the repository: history was rewritten.
		return false, nil
	}
	d, err := r.repo.CommitObject(plumbing.NewHash(descendant))
	if err != nil {
		return false, err
	}
	return a.IsAncestor(d)
}
