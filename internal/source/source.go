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
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/storage/memory"

	"github.com/strata-gitops/strata/internal/labels"
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
	// url is the remote without secrets; creds are re-read at every fetch
	// into auth and ca.
	url      *remoteURL
	creds    Credentials
	ca       []byte
	baseAuth transport.AuthMethod // Auth or the URL's, when no file holds any
	// refSpecs are what Fetch brings in: everything for a mirror, or only
	// the followed branch and the approvals notes.
	refSpecs []config.RefSpec
	// mu serializes fetches with reads: go-git's storage is not safe for a
	// fetch running beside a resolve (the reconciler watches for new
	// revisions while it applies).
	mu sync.Mutex
}

// OpenOptions tune Open.
type OpenOptions struct {
	// Auth authenticates to a remote repository.
	Auth transport.AuthMethod
	// Credentials name the files of a deploy key, known_hosts, basic auth,
	// bearer token or CA bundle, read again at every fetch (rotation).
	Credentials Credentials
	// Dir keeps a remote repository's mirror on disk (reused between runs);
	// empty keeps it in memory.
	Dir string
	// Branch, when set, fetches only refs/heads/<Branch> and the approvals
	// notes ref: a pushed tag or another ref named like the branch can then
	// never stand in for it (the reconciler follows exactly one branch).
	Branch string
}

// fetchSpecs returns the refspecs of a remote's fetch.
func fetchSpecs(branch string) []config.RefSpec {
	if branch == "" {
		return []config.RefSpec{"+refs/*:refs/*"}
	}
	head := "refs/heads/" + branch
	return []config.RefSpec{config.RefSpec("+" + head + ":" + head), config.RefSpec("+" + labels.ApprovalsNotesRef + ":" + labels.ApprovalsNotesRef)}
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
	if !opts.Credentials.IsZero() {
		return nil, fmt.Errorf("git credentials are given but %s is a local repository: drop them, or pass the remote's URL", location)
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
	if errors.Is(err, git.ErrRepositoryNotExists) {
		// go-git looks for a .git directory upwards, which a bare
		// repository has not.
		repo, err = git.PlainOpen(abs)
	}
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

func openRemote(ctx context.Context, location string, opts OpenOptions) (*Repository, error) {
	if opts.Branch != "" && plumbing.NewBranchReferenceName(opts.Branch).Validate() != nil {
		return nil, fmt.Errorf("branch %q is not a valid branch name: pass the name without refs/heads/", opts.Branch)
	}
	u, err := remoteOf(location, opts)
	if err != nil {
		return nil, err
	}
	// From here on only the URL without secrets is shown or stored.
	url := u.clean
	auth := opts.Auth
	if auth == nil {
		auth = u.urlAuth
	}
	r := &Repository{Location: url, remote: true, auth: auth, baseAuth: auth, url: u, creds: opts.Credentials, refSpecs: fetchSpecs(opts.Branch)}
	if opts.Dir != "" {
		if repo, err := git.PlainOpen(opts.Dir); err == nil {
			r.repo = repo
			if err := pointOrigin(repo, url); err != nil {
				return nil, err
			}
			return r, r.Fetch(ctx)
		}
	}
	// An empty repository plus a mirror fetch, rather than a clone: a clone
	// fails when the server's HEAD names a branch that does not exist.
	var repo *git.Repository
	if opts.Dir != "" {
		repo, err = git.PlainInit(opts.Dir, true)
	} else {
		repo, err = git.Init(memory.NewStorage(), nil)
	}
	if err != nil {
		return nil, fmt.Errorf("preparing a mirror of %s: %w", url, err)
	}
	if _, err := repo.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{url}, Fetch: r.refSpecs}); err != nil {
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
// notes, forced, as a mirror; or only the followed branch and the approvals
// notes). It is a no-op for a local repository.
func (r *Repository) Fetch(ctx context.Context) (err error) {
	if !r.remote {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	defer func() { err = explainRefusal(err, r.url) }()
	if err := r.loadCredentials(); err != nil {
		return fmt.Errorf("fetching %s: %w", r.Location, err)
	}
	specs := r.refSpecs
	if r.branchOnly() {
		if specs, err = r.presentSpecs(ctx); err != nil || len(specs) == 0 {
			return err
		}
	}
	err = r.repo.FetchContext(ctx, &git.FetchOptions{
		RemoteName: "origin",
		RefSpecs:   specs,
		Auth:       r.auth,
		CABundle:   r.ca,
		Force:      true,
		Prune:      true,
		Tags:       r.tagMode(),
	})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return fmt.Errorf("fetching %s: %w", r.Location, err)
	}
	if !r.branchOnly() {
		r.followRemoteHEAD(ctx)
	}
	return nil
}

func (r *Repository) branchOnly() bool { return len(r.refSpecs) == 2 }

// tagMode fetches tags only for a mirror: a branch follower has no use for
// them, and a tag must never be mistaken for the branch.
func (r *Repository) tagMode() git.TagMode {
	if r.branchOnly() {
		return git.NoTags
	}
	return git.AllTags
}

// presentSpecs returns the branch follower's refspecs whose refs the server
// has and that moved: the notes ref is absent until somebody approves, and
// an unchanged branch needs no fetch. A missing branch is an error.
func (r *Repository) presentSpecs(ctx context.Context) ([]config.RefSpec, error) {
	remote, err := r.repo.Remote("origin")
	if err != nil {
		return nil, err
	}
	refs, err := remote.ListContext(ctx, &git.ListOptions{Auth: r.auth, CABundle: r.ca})
	if err != nil {
		return nil, fmt.Errorf("listing the refs of %s: %w", r.Location, err)
	}
	have := map[plumbing.ReferenceName]plumbing.Hash{}
	for _, ref := range refs {
		have[ref.Name()] = ref.Hash()
	}
	var out []config.RefSpec
	for i, spec := range r.refSpecs {
		name := plumbing.ReferenceName(spec.Src())
		h, ok := have[name]
		if !ok {
			if i == 0 {
				return nil, fmt.Errorf("%s has no branch %s", r.Location, name)
			}
			// Approvals removed on the server are removed here too.
			_ = r.repo.Storer.RemoveReference(name)
			continue
		}
		if local, err := r.repo.Reference(name, true); err == nil && local.Hash() == h {
			continue
		}
		out = append(out, spec)
	}
	return out, nil
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
	refs, err := remote.ListContext(ctx, &git.ListOptions{Auth: r.auth, CABundle: r.ca})
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
	return revisionOf(rev, c), nil
}

// ResolveBranch returns the commit at refs/heads/<branch>, and nothing else:
// unlike Resolve, no tag, remote-tracking ref or refs/<name> is tried, so
// another ref named like the branch can never be followed in its place.
func (r *Repository) ResolveBranch(branch string) (*Revision, error) {
	name := plumbing.NewBranchReferenceName(branch)
	if err := name.Validate(); err != nil || branch == "" {
		return nil, &RevisionNotFoundError{Revision: branch, Location: r.Location, Err: fmt.Errorf("not a valid branch name")}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	ref, err := r.repo.Reference(name, true)
	if err != nil {
		return nil, &RevisionNotFoundError{Revision: branch, Location: r.Location, Err: fmt.Errorf("no branch %s: %w", name, err)}
	}
	c, err := r.repo.CommitObject(ref.Hash())
	if err != nil {
		return nil, &RevisionNotFoundError{Revision: branch, Location: r.Location, Err: fmt.Errorf("%s is not a commit: %w", ref.Hash(), err)}
	}
	return revisionOf(branch, c), nil
}

func revisionOf(ref string, c *object.Commit) *Revision {
	return &Revision{
		Ref: ref, Commit: c.Hash.String(), Tree: c.TreeHash.String(),
		Author: c.Author.Name, AuthorEmail: c.Author.Email, Time: c.Author.When, Message: c.Message,
	}
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
