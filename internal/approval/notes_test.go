package approval

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/strata-gitops/strata/internal/config"
	"github.com/strata-gitops/strata/internal/source"
)

var committer = object.Signature{Name: "Test", Email: "test@example.com", When: now}

// testStore writes notes commits with a fixed committer and time.
var testStore = Store{Committer: &committer, Now: func() time.Time { return now }}

// newRepo returns a go-git repository in a temporary directory with one
// commit (overlays/prod/app.yaml v1) on master.
func newRepo(t *testing.T) (string, *git.Repository) {
	t.Helper()
	dir := t.TempDir()
	repo, err := git.PlainInit(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "strata.yaml", "apiVersion: strata.dev/v1alpha1\nkind: Config\n")
	writeFile(t, dir, "overlays/prod/app.yaml", "v1\n")
	commit(t, repo, "initial")
	return dir, repo
}

func commit(t *testing.T, repo *git.Repository, msg string) plumbing.Hash {
	t.Helper()
	wt, err := repo.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	if err := wt.AddWithOptions(&git.AddOptions{All: true}); err != nil {
		t.Fatal(err)
	}
	sig := committer
	sig.When = time.Now()
	h, err := wt.Commit(msg, &git.CommitOptions{Author: &sig, Committer: &sig, AllowEmptyCommits: true})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func resolve(t *testing.T, dir, rev string) *source.Revision {
	t.Helper()
	r, err := source.Open(context.Background(), dir, source.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rev2, err := r.Resolve(rev)
	if err != nil {
		t.Fatal(err)
	}
	return rev2
}

// TestKeygenApproveVerify is the whole path: strata keygen writes the key
// files, strata approve signs a revision's tree and stores the note, the
// reconciler lists the notes of the tree it is about to apply and gates it.
func TestKeygenApproveVerify(t *testing.T) {
	dir, repo := newRepo(t)
	keyDir := t.TempDir()

	var trust config.Trust
	trust.APIVersion, trust.Kind = config.APIVersion, config.TrustKind
	signers := map[string]string{}
	for _, name := range []string{"alice", "bob"} {
		kf, err := WriteKeyPair(filepath.Join(keyDir, "keys", name), false)
		if err != nil {
			t.Fatal(err)
		}
		info, err := os.Stat(kf.Private)
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", kf.Private, info.Mode().Perm())
		}
		priv, _ := os.ReadFile(kf.Private)
		if !strings.HasPrefix(string(priv), "-----BEGIN PRIVATE KEY-----\n") {
			t.Errorf("%s is not PEM PKCS#8:\n%s", kf.Private, priv)
		}
		if !strings.HasPrefix(string(kf.PublicPEM), "-----BEGIN PUBLIC KEY-----\n") {
			t.Errorf("%s is not a PEM public key:\n%s", kf.Public, kf.PublicPEM)
		}
		// The snippet keygen prints is a valid trust file.
		snippet := "apiVersion: strata.dev/v1alpha1\nkind: Trust\n" + TrustSnippet(name, kf.PublicPEM)
		one, err := config.ParseTrust("snippet", []byte(snippet), nil)
		if err != nil {
			t.Fatalf("the trust snippet does not parse: %v\n%s", err, snippet)
		}
		trust.Reviewers = append(trust.Reviewers, one.Reviewers...)
		signers[name] = kf.Private
	}
	if _, err := WriteKeyPair(filepath.Join(keyDir, "keys", "alice"), false); err == nil {
		t.Error("keygen overwrote an existing key without --force")
	}

	rev := resolve(t, dir, "HEAD")
	for _, name := range []string{"alice", "bob"} {
		s, err := LoadSignerFile(signers[name])
		if err != nil {
			t.Fatal(err)
		}
		e, err := Sign(s, Statement{Tree: rev.Tree, Environment: "prod", Reviewer: name, Commit: rev.Commit})
		if err != nil {
			t.Fatal(err)
		}
		if err := testStore.Add(repo, rev.Tree, "prod", e); err != nil {
			t.Fatal(err)
		}
	}

	envs, err := testStore.List(repo, rev.Tree)
	if err != nil {
		t.Fatal(err)
	}
	d := Gate(&trust, "prod", rev.Tree, config.Restricted, 2, time.Now(), envs)
	if !d.Allowed || d.Message != "restricted change needs 2 approvals, has 2: alice, bob" {
		t.Errorf("gate: allowed %v, %q", d.Allowed, d.Message)
	}
	for _, a := range d.Approvals {
		if a.Commit != rev.Commit {
			t.Errorf("approval records commit %s, want %s", a.Commit, rev.Commit)
		}
	}
	// The notes ref is a notes commit whose tree has the tree's note.
	ref, err := repo.Reference(plumbing.ReferenceName("refs/notes/strata-approvals"), true)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := repo.CommitObject(ref.Hash())
	if len(c.ParentHashes) != 1 || !strings.HasPrefix(c.Message, "Notes added by 'strata approve'") {
		t.Errorf("second notes commit: parents %v, message %q", c.ParentHashes, c.Message)
	}
}

// TestSquashMergeKeepsApproval: the approval is on the tree, so a squash
// commit with the same content (a different commit) passes the gate; a
// commit with different content does not.
func TestSquashMergeKeepsApproval(t *testing.T) {
	dir, repo := newRepo(t)
	trust := trustOf(t, reviewer(t, "alice", nil, ""))
	wt, _ := repo.Worktree()
	base := resolve(t, dir, "HEAD")

	// The pull request: two commits on a branch.
	if err := wt.Checkout(&git.CheckoutOptions{Branch: "refs/heads/feature", Create: true}); err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "overlays/prod/app.yaml", "v2-draft\n")
	commit(t, repo, "draft")
	writeFile(t, dir, "overlays/prod/app.yaml", "v2\n")
	commit(t, repo, "finish")
	pr := resolve(t, dir, "feature")
	e := sign(t, "alice", Statement{Tree: pr.Tree, Environment: "prod", Reviewer: "alice", Time: time.Now().Add(-time.Minute), Commit: pr.Commit})
	if err := testStore.Add(repo, pr.Tree, "prod", e); err != nil {
		t.Fatal(err)
	}

	// Squash-merged into master: one new commit with the same content.
	if err := wt.Checkout(&git.CheckoutOptions{Branch: "refs/heads/master"}); err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "overlays/prod/app.yaml", "v2\n")
	commit(t, repo, "Update app (#12)")
	squash := resolve(t, dir, "master")
	if squash.Commit == pr.Commit || squash.Tree != pr.Tree {
		t.Fatalf("squash commit %s tree %s, PR commit %s tree %s", squash.Commit, squash.Tree, pr.Commit, pr.Tree)
	}
	if squash.Commit == base.Commit {
		t.Fatal("no squash commit")
	}
	d, err := testStore.Decide(repo, trust, "prod", squash.Tree, config.Internal, 1, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if !d.Allowed || d.Message != "internal change needs 1 approval, has 1: alice" {
		t.Errorf("squash commit with the approved tree: allowed %v, %q", d.Allowed, d.Message)
	}

	// A follow-up change has another tree: no approval for it.
	writeFile(t, dir, "overlays/prod/app.yaml", "v3\n")
	commit(t, repo, "v3")
	next := resolve(t, dir, "master")
	envs, err := testStore.List(repo, next.Tree)
	if err != nil {
		t.Fatal(err)
	}
	d = Gate(trust, "prod", next.Tree, config.Internal, 1, time.Now(), envs)
	if d.Allowed || d.Message != "internal change needs 1 approval, has 0" {
		t.Errorf("changed tree: allowed %v, %q", d.Allowed, d.Message)
	}
	// Even the old approval, presented for the new tree, is stale.
	d = Gate(trust, "prod", next.Tree, config.Internal, 1, time.Now(), []Envelope{e})
	want := fmt.Sprintf("internal change needs 1 approval, has 0; rejected alice: approves tree %s, not %s: the content changed after the approval, approve the new revision",
		pr.Tree[:12], next.Tree[:12])
	if d.Allowed || d.Message != want {
		t.Errorf("stale approval: allowed %v\n got %q\nwant %q", d.Allowed, d.Message, want)
	}
}

// TestStoreAddReplacesOwnApproval: re-signing replaces the reviewer's own
// approval for that environment and keeps everything else.
func TestStoreAddReplacesOwnApproval(t *testing.T) {
	dir, repo := newRepo(t)
	tree := resolve(t, dir, "HEAD").Tree

	first := sign(t, "alice", Statement{Tree: tree, Environment: "prod", Reviewer: "alice", Time: now.Add(-2 * time.Hour)})
	staging := sign(t, "alice", Statement{Tree: tree, Environment: "staging", Reviewer: "alice", Time: now.Add(-2 * time.Hour)})
	bob := sign(t, "bob", Statement{Tree: tree, Environment: "prod", Reviewer: "bob", Time: now.Add(-2 * time.Hour)})
	second := sign(t, "alice", Statement{Tree: tree, Environment: "prod", Reviewer: "alice", Time: now.Add(-time.Hour)})
	for _, e := range []Envelope{first, staging, bob, second} {
		st, _ := e.Statement()
		if err := testStore.Add(repo, tree, st.Environment, e); err != nil {
			t.Fatal(err)
		}
	}
	envs, err := testStore.List(repo, tree)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range envs {
		st, _ := e.Statement()
		got = append(got, fmt.Sprintf("%s/%s/%s", st.Reviewer, st.Environment, formatTime(st.Time)))
	}
	want := map[string]bool{
		"alice/prod/" + formatTime(now.Add(-time.Hour)):      true,
		"alice/staging/" + formatTime(now.Add(-2*time.Hour)): true,
		"bob/prod/" + formatTime(now.Add(-2*time.Hour)):      true,
	}
	if len(got) != len(want) {
		t.Fatalf("note holds %v, want %v", got, want)
	}
	for _, g := range got {
		if !want[g] {
			t.Errorf("unexpected approval %s in %v", g, got)
		}
	}

	// Add refuses an envelope for another tree or environment.
	if err := testStore.Add(repo, treeA, "prod", second); err == nil {
		t.Error("Add stored an approval of another tree")
	}
	if err := testStore.Add(repo, tree, "staging", second); err == nil {
		t.Error("Add stored an approval of another environment")
	}
	// No notes ref, no approvals.
	if envs, err := (Store{Ref: "refs/notes/none"}).List(repo, tree); err != nil || envs != nil {
		t.Errorf("List without a notes ref = %v, %v", envs, err)
	}
}
