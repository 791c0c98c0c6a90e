package source_test

import (
	"testing"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"

	"github.com/strata-gitops/strata/internal/labels"
	"github.com/strata-gitops/strata/internal/source"
)

// An attacker who may push tags (but not to the protected branch) pushes a
// tag named like the branch, pointing at a commit nobody approved. The
// follower must still follow the branch.
func TestTagNamedLikeBranchIsNotFollowed(t *testing.T) {
	f := newFixture(t)
	// master is c2; the forged tag "master" points at c1.
	if _, err := f.repo.CreateTag("master", f.c1, nil); err != nil {
		t.Fatal(err)
	}
	url := server(t, f)

	r := open(t, url, source.OpenOptions{Branch: "master"})
	got, err := r.ResolveBranch("master")
	if err != nil {
		t.Fatal(err)
	}
	if got.Commit != f.c2.String() {
		t.Errorf("ResolveBranch(master) = %s, want the branch's %s (not the tag's %s)", got.Short(), f.c2, f.c1)
	}
	// Only the branch and the approvals notes are mirrored.
	var names []string
	_ = r.WithGit(func(g *git.Repository) error {
		refs, _ := g.References()
		return refs.ForEach(func(ref *plumbing.Reference) error {
			names = append(names, ref.Name().String())
			return nil
		})
	})
	for _, n := range names {
		if n != "refs/heads/master" && n != labels.ApprovalsNotesRef && n != "HEAD" {
			t.Errorf("branch follower fetched %s: only refs/heads/master and %s may be fetched", n, labels.ApprovalsNotesRef)
		}
	}
	// A local repository too: the tag never stands in for the branch.
	local := open(t, f.dir, source.OpenOptions{})
	if got, err := local.ResolveBranch("master"); err != nil || got.Commit != f.c2.String() {
		t.Errorf("local ResolveBranch(master) = %v, %v; want %s", got, err, f.c2)
	}
	if _, err := local.ResolveBranch("v1"); err == nil {
		t.Error("ResolveBranch(v1) resolved a tag; want an error: only branches are followed")
	}
}
