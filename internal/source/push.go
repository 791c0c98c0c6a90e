package source

import (
	"context"
	"errors"
	"fmt"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// BranchMovedError says a branch is no longer at the commit a change was
// made on top of: someone pushed meanwhile, and their revision supersedes.
type BranchMovedError struct {
	Branch, Want, Got string
}

func (e *BranchMovedError) Error() string {
	return fmt.Sprintf("branch %s is at %.12s, no longer at %.12s: a newer revision was pushed meanwhile and is reconciled next; nothing was pushed", e.Branch, e.Got, e.Want)
}

// pushRef is the local ref a commit is pushed from.
const pushRef = plumbing.ReferenceName("refs/strata/push")

// CommitOnto writes a commit of tree with message and sig on top of parent
// and moves branch to it, only while branch is still at parent: in the
// remote by a fast-forward push with the same credentials and CA bundle as
// the fetches (so it works where there is no git CLI, as in strata's
// image), or in a local repository's branch. It returns the new commit.
func (r *Repository) CommitOnto(ctx context.Context, branch, parent, tree, message string, sig object.Signature) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := &object.Commit{Author: sig, Committer: sig, Message: message,
		TreeHash: plumbing.NewHash(tree), ParentHashes: []plumbing.Hash{plumbing.NewHash(parent)}}
	obj := r.repo.Storer.NewEncodedObject()
	if err := c.Encode(obj); err != nil {
		return "", err
	}
	h, err := r.repo.Storer.SetEncodedObject(obj)
	if err != nil {
		return "", fmt.Errorf("writing the commit: %w", err)
	}
	ref := plumbing.NewBranchReferenceName(branch)
	if !r.remote {
		return h.String(), r.moveLocal(ref, parent, h)
	}
	if err := r.loadCredentials(); err != nil {
		return "", fmt.Errorf("pushing to %s: %w", r.Location, err)
	}
	if err := r.repo.Storer.SetReference(plumbing.NewHashReference(pushRef, h)); err != nil {
		return "", err
	}
	defer func() { _ = r.repo.Storer.RemoveReference(pushRef) }()
	err = r.repo.PushContext(ctx, &git.PushOptions{
		RemoteName: "origin",
		RefSpecs:   []config.RefSpec{config.RefSpec(pushRef.String() + ":" + ref.String())},
		// The push goes through only while the remote branch is at parent.
		RequireRemoteRefs: []config.RefSpec{config.RefSpec(parent + ":" + ref.String())},
		Auth:              r.auth,
		CABundle:          r.ca,
	})
	if err != nil {
		if got, ok := r.remoteHead(ctx, ref); ok && got != parent {
			return "", &BranchMovedError{Branch: branch, Want: parent, Got: got}
		}
		return "", fmt.Errorf("pushing %.12s to %s of %s: %w", h, branch, r.Location, explainRefusal(err, r.url))
	}
	return h.String(), nil
}

// moveLocal moves a local repository's branch from parent to h. The branch
// checked out in a work tree is not moved: its files would not follow.
func (r *Repository) moveLocal(ref plumbing.ReferenceName, parent string, h plumbing.Hash) error {
	if head, err := r.repo.Storer.Reference(plumbing.HEAD); err == nil && r.WorkDir != "" && head.Target() == ref {
		return fmt.Errorf("%s is checked out in %s: strata does not move a checked-out branch; follow a bare or remote repository", ref.Short(), r.WorkDir)
	}
	cur, err := r.repo.Storer.Reference(ref)
	if err != nil {
		return fmt.Errorf("branch %s: %w", ref.Short(), err)
	}
	if cur.Hash().String() != parent {
		return &BranchMovedError{Branch: ref.Short(), Want: parent, Got: cur.Hash().String()}
	}
	if err := r.repo.Storer.CheckAndSetReference(plumbing.NewHashReference(ref, h), cur); err != nil {
		if errors.Is(err, plumbing.ErrReferenceNotFound) {
			return fmt.Errorf("branch %s: %w", ref.Short(), err)
		}
		return &BranchMovedError{Branch: ref.Short(), Want: parent, Got: "another commit"}
	}
	return nil
}

// remoteHead lists the remote's ref.
func (r *Repository) remoteHead(ctx context.Context, ref plumbing.ReferenceName) (string, bool) {
	remote, err := r.repo.Remote("origin")
	if err != nil {
		return "", false
	}
	refs, err := remote.ListContext(ctx, &git.ListOptions{Auth: r.auth, CABundle: r.ca})
	if err != nil {
		return "", false
	}
	for _, x := range refs {
		if x.Name() == ref {
			return x.Hash().String(), true
		}
	}
	return "", false
}
