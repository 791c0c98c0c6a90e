package approval

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"

	"github.com/strata-gitops/strata/internal/config"
)

// TestGitReadsStrataNotes: a note written by strata is an ordinary git
// note: `git notes show` prints it and git fsck finds nothing wrong.
func TestGitReadsStrataNotes(t *testing.T) {
	requireGit(t)
	dir, repo := newRepo(t)
	tree := resolve(t, dir, "HEAD").Tree
	alice := sign(t, "alice", stmt("alice", "prod", tree))
	bob := sign(t, "bob", stmt("bob", "prod", tree))
	for _, e := range []Envelope{alice, bob} {
		if err := testStore.Add(repo, tree, "prod", e); err != nil {
			t.Fatal(err)
		}
	}
	want, err := FormatEnvelopes([]Envelope{alice, bob})
	if err != nil {
		t.Fatal(err)
	}
	got := gitCLI(t, dir, nil, "notes", "--ref=strata-approvals", "show", tree)
	if got != strings.TrimSpace(string(want)) {
		t.Errorf("git notes show\n got %s\nwant %s", got, want)
	}
	if list := gitCLI(t, dir, nil, "notes", "--ref=strata-approvals", "list"); !strings.HasSuffix(list, " "+tree) || strings.Count(list, "\n") != 0 {
		t.Errorf("git notes list = %q, want one note on %s", list, tree)
	}
	// The flat layout: the note is a file named by the tree at the root.
	if ls := gitCLI(t, dir, nil, "ls-tree", "--name-only", "refs/notes/strata-approvals"); ls != tree {
		t.Errorf("notes tree holds %q, want %s", ls, tree)
	}
	gitCLI(t, dir, nil, "fsck", "--strict", "--no-dangling")
	// Each line is a DSSE envelope as sigstore writes it.
	for line := range strings.SplitSeq(got, "\n") {
		if !strings.HasPrefix(line, `{"payloadType":"application/vnd.strata.approval+json","payload":"`) {
			t.Errorf("note line %s", line)
		}
	}
}

// TestStrataReadsGitNotes: notes added with the git CLI, in the flat layout
// and in the fanout layout git uses for many notes, are read by strata, and
// strata adds to a fanout notes tree in a way git still reads.
func TestStrataReadsGitNotes(t *testing.T) {
	requireGit(t)
	trust := trustOf(t, reviewer(t, "alice", nil, ""), reviewer(t, "bob", nil, ""))

	t.Run("flat", func(t *testing.T) {
		dir, _ := newRepo(t)
		tree := resolve(t, dir, "HEAD").Tree
		line, _ := sign(t, "alice", stmt("alice", "prod", tree)).MarshalLine()
		gitCLI(t, dir, nil, "notes", "--ref=strata-approvals", "add", "-m", string(line), tree)
		// git notes append separates paragraphs with a blank line.
		line2, _ := sign(t, "bob", stmt("bob", "prod", tree)).MarshalLine()
		gitCLI(t, dir, nil, "notes", "--ref=strata-approvals", "append", "-m", string(line2), tree)

		repo, err := git.PlainOpen(dir) // after git wrote: a fresh go-git view
		if err != nil {
			t.Fatal(err)
		}
		envs, err := testStore.List(repo, tree)
		if err != nil {
			t.Fatal(err)
		}
		d := Gate(trust, "prod", tree, config.Restricted, 2, now, envs)
		if !d.Allowed {
			t.Errorf("notes added with git: %s", d.Message)
		}
	})

	t.Run("fanout", func(t *testing.T) {
		dir, _ := newRepo(t)
		tree := resolve(t, dir, "HEAD").Tree
		// 300 notes make git fan the notes tree out (ab/cdef…).
		var stream strings.Builder
		for i := 1; i <= 300; i++ {
			fmt.Fprintf(&stream, "commit refs/heads/filler\nmark :%d\ncommitter T <t@example.com> %d +0000\ndata %d\n%d\n", i, i, len(strconv.Itoa(i)), i)
		}
		stream.WriteString("commit refs/notes/strata-approvals\ncommitter T <t@example.com> 0 +0000\ndata 0\n")
		for i := 1; i <= 300; i++ {
			fmt.Fprintf(&stream, "N inline :%d\ndata 6\nfiller\n", i)
		}
		gitCLI(t, dir, []byte(stream.String()), "fast-import", "--quiet")
		line, _ := sign(t, "alice", stmt("alice", "prod", tree)).MarshalLine()
		gitCLI(t, dir, nil, "notes", "--ref=strata-approvals", "add", "-m", string(line), tree)
		if ls := gitCLI(t, dir, nil, "ls-tree", "-r", "--name-only", "refs/notes/strata-approvals"); !strings.Contains(ls, tree[:2]+"/"+tree[2:]) {
			t.Fatalf("git did not fan the notes tree out:\n%s", ls)
		}

		repo, err := git.PlainOpen(dir)
		if err != nil {
			t.Fatal(err)
		}
		envs, err := testStore.List(repo, tree)
		if err != nil {
			t.Fatal(err)
		}
		if d := Gate(trust, "prod", tree, config.Internal, 1, now, envs); !d.Allowed {
			t.Errorf("fanout note added with git: %s", d.Message)
		}

		// strata adds bob's approval to the fanout tree; git reads both.
		bob := sign(t, "bob", stmt("bob", "prod", tree))
		if err := testStore.Add(repo, tree, "prod", bob); err != nil {
			t.Fatal(err)
		}
		show := gitCLI(t, dir, nil, "notes", "--ref=strata-approvals", "show", tree)
		if n := len(ParseEnvelopes([]byte(show))); n != 2 {
			t.Errorf("git notes show after strata's add has %d envelopes:\n%s", n, show)
		}
		if n := strings.Count(gitCLI(t, dir, nil, "notes", "--ref=strata-approvals", "list"), "\n") + 1; n != 301 {
			t.Errorf("git notes list has %d notes, want 301", n)
		}
		if ls := gitCLI(t, dir, nil, "ls-tree", "-r", "--name-only", "refs/notes/strata-approvals"); !strings.Contains(ls, tree[:2]+"/"+tree[2:]) {
			t.Errorf("strata moved the note out of the fanout")
		}
		// A note for a new object goes into the fanout too.
		other := resolve(t, dir, "filler").Tree
		if err := testStore.Add(repo, other, "prod", sign(t, "alice", stmt("alice", "prod", other))); err != nil {
			t.Fatal(err)
		}
		if got := gitCLI(t, dir, nil, "notes", "--ref=strata-approvals", "show", other); !strings.Contains(got, PayloadType) {
			t.Errorf("git cannot read strata's new note in a fanout tree: %q", got)
		}
		if ls := gitCLI(t, dir, nil, "ls-tree", "-r", "--name-only", "refs/notes/strata-approvals"); !strings.Contains(ls, other[:2]+"/"+other[2:]) {
			t.Errorf("strata wrote the new note outside the fanout")
		}
		gitCLI(t, dir, nil, "fsck", "--strict", "--no-dangling")
	})
}

// TestPushMergesConcurrentApprovals: alice and bob approve the same change
// in their own clones and both push; the second push merges the first
// instead of overwriting it, and a third clone sees both approvals.
func TestPushMergesConcurrentApprovals(t *testing.T) {
	requireGit(t)
	ctx := context.Background()
	trust := trustOf(t, reviewer(t, "alice", nil, ""), reviewer(t, "bob", nil, ""), reviewer(t, "carol", nil, ""))
	origin, _ := newRepo(t)
	remote := filepath.Join(t.TempDir(), "remote.git")
	gitCLI(t, origin, nil, "clone", "--quiet", "--bare", origin, remote)
	tree := resolve(t, origin, "HEAD").Tree

	approve := func(who string) {
		t.Helper()
		dir := filepath.Join(t.TempDir(), who)
		gitCLI(t, origin, nil, "clone", "--quiet", remote, dir)
		repo, err := git.PlainOpen(dir)
		if err != nil {
			t.Fatal(err)
		}
		if err := testStore.Add(repo, tree, "prod", sign(t, who, Statement{Tree: tree, Environment: "prod", Reviewer: who, Time: time.Now()})); err != nil {
			t.Fatal(err)
		}
		if err := testStore.Push(ctx, dir, "origin"); err != nil {
			t.Fatal(err)
		}
	}
	// Clone both first, so that bob's notes ref diverges from alice's.
	aliceDir := filepath.Join(t.TempDir(), "alice")
	bobDir := filepath.Join(t.TempDir(), "bob")
	for _, d := range []string{aliceDir, bobDir} {
		gitCLI(t, origin, nil, "clone", "--quiet", remote, d)
	}
	for who, dir := range map[string]string{"alice": aliceDir, "bob": bobDir} {
		repo, err := git.PlainOpen(dir)
		if err != nil {
			t.Fatal(err)
		}
		if err := testStore.Add(repo, tree, "prod", sign(t, who, Statement{Tree: tree, Environment: "prod", Reviewer: who, Time: time.Now()})); err != nil {
			t.Fatal(err)
		}
	}
	for _, dir := range []string{aliceDir, bobDir} {
		if err := testStore.Push(ctx, dir, "origin"); err != nil {
			t.Fatal(err)
		}
	}
	// carol approves from a fresh clone that never fetched the notes.
	approve("carol")

	reader := filepath.Join(t.TempDir(), "reader")
	gitCLI(t, origin, nil, "clone", "--quiet", remote, reader)
	gitCLI(t, reader, nil, "fetch", "--quiet", "origin", "refs/notes/strata-approvals:refs/notes/strata-approvals")
	repo, err := git.PlainOpen(reader)
	if err != nil {
		t.Fatal(err)
	}
	envs, err := testStore.List(repo, tree)
	if err != nil {
		t.Fatal(err)
	}
	d := Gate(trust, "prod", tree, config.Restricted, 3, time.Now(), envs)
	if !d.Allowed || d.Message != "restricted change needs 3 approvals, has 3: alice, bob, carol" {
		t.Errorf("after concurrent pushes: %s", d.Message)
	}
	if refs := gitCLI(t, bobDir, nil, "for-each-ref", "--format=%(refname)", "refs/strata/"); refs != "" {
		t.Errorf("push left temporary refs behind: %s", refs)
	}
	// bob's push merged alice's notes: his notes commit has two parents.
	if parents := gitCLI(t, bobDir, nil, "log", "-1", "--format=%P", "refs/notes/strata-approvals"); len(strings.Fields(parents)) != 2 {
		t.Errorf("bob's notes commit has parents %q, want a merge", parents)
	}
	gitCLI(t, remote, nil, "fsck", "--strict", "--no-dangling")
}
