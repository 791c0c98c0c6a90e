package source_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/pkg/gittestserver"
	"github.com/go-git/go-git/v5"
	gitconfig "github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/google/go-cmp/cmp"

	"github.com/strata-gitops/strata/internal/config"
	"github.com/strata-gitops/strata/internal/source"
)

const (
	configV1 = "apiVersion: strata.dev/v1alpha1\nkind: Config\n# version 1\n"
	configV2 = "apiVersion: strata.dev/v1alpha1\nkind: Config\n# version 2\n"
	configV3 = "apiVersion: strata.dev/v1alpha1\nkind: Config\n# version 3\n"
	prodKust = "resources:\n- ../base\n"

	message1 = "Add the prod overlay\n\nFirst version of strata.yaml.\n"
	message2 = "Bump strata.yaml to version 2\n"
)

var (
	alice = object.Signature{Name: "Alice Example", Email: "alice@example.com",
		When: time.Date(2024, 3, 1, 10, 0, 0, 0, time.FixedZone("CET", 3600))}
	bob = object.Signature{Name: "Bob Example", Email: "bob@example.com",
		When: time.Date(2024, 3, 2, 11, 30, 0, 0, time.UTC)}
)

// fixture is a git repository in a temporary directory:
//
//	commit 1 (tag v1, annotated tag v1-annotated, branch feature): strata.yaml v1, overlays, symlinks
//	commit 2 (master, HEAD): strata.yaml v2
type fixture struct {
	dir    string
	repo   *git.Repository
	c1, c2 plumbing.Hash
}

func writeFile(t testing.TB, dir, rel, content string) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func symlink(t testing.TB, dir, target, rel string) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
}

func commitAll(t testing.TB, repo *git.Repository, msg string, sig object.Signature) plumbing.Hash {
	t.Helper()
	wt, err := repo.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	if err := wt.AddWithOptions(&git.AddOptions{All: true}); err != nil {
		t.Fatal(err)
	}
	h, err := wt.Commit(msg, &git.CommitOptions{Author: &sig, Committer: &sig})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	dir := t.TempDir()
	repo, err := git.PlainInit(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "strata.yaml", configV1)
	writeFile(t, dir, "overlays/base/kustomization.yaml", "resources: []\n")
	writeFile(t, dir, "overlays/prod/kustomization.yaml", prodKust)
	// A link to a file inside the tree, and links that leave it.
	symlink(t, dir, "../prod/kustomization.yaml", "overlays/dev/kustomization.yaml")
	symlink(t, dir, "/etc/hostname", "overlays/absolute-link")
	symlink(t, dir, "../../outside.yaml", "overlays/escaping-link")
	c1 := commitAll(t, repo, message1, alice)

	writeFile(t, dir, "strata.yaml", configV2)
	c2 := commitAll(t, repo, message2, bob)

	if _, err := repo.CreateTag("v1", c1, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := repo.CreateTag("v1-annotated", c1, &git.CreateTagOptions{Tagger: &alice, Message: "release v1"}); err != nil {
		t.Fatal(err)
	}
	if err := repo.Storer.SetReference(plumbing.NewHashReference(plumbing.NewBranchReferenceName("feature"), c1)); err != nil {
		t.Fatal(err)
	}
	return &fixture{dir: dir, repo: repo, c1: c1, c2: c2}
}

// revision returns the expected Revision of commit h asked for as ref.
func (f *fixture) revision(t *testing.T, ref string, h plumbing.Hash) *source.Revision {
	t.Helper()
	c, err := f.repo.CommitObject(h)
	if err != nil {
		t.Fatal(err)
	}
	sig, msg := alice, message1
	if h == f.c2 {
		sig, msg = bob, message2
	}
	return &source.Revision{
		Ref: ref, Commit: h.String(), Tree: c.TreeHash.String(),
		Author: sig.Name, AuthorEmail: sig.Email, Time: sig.When, Message: msg,
	}
}

func open(t testing.TB, location string, opts source.OpenOptions) *source.Repository {
	t.Helper()
	r, err := source.Open(context.Background(), location, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", location, err)
	}
	return r
}

func resolve(t *testing.T, r *source.Repository, rev string) *source.Revision {
	t.Helper()
	got, err := r.Resolve(rev)
	if err != nil {
		t.Fatalf("Resolve(%q): %v", rev, err)
	}
	return got
}

func readSnapshot(t *testing.T, r *source.Repository, rev *source.Revision, rel string) string {
	t.Helper()
	snap, err := r.Snapshot(rev)
	if err != nil {
		t.Fatalf("Snapshot(%s): %v", rev.Short(), err)
	}
	data, err := snap.ReadFile(rel)
	if err != nil {
		t.Fatalf("Snapshot(%s).ReadFile(%s): %v", rev.Short(), rel, err)
	}
	return string(data)
}

func realPath(t *testing.T, p string) string {
	t.Helper()
	r, err := filepath.EvalSymlinks(p)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestOpenLocalAndResolve(t *testing.T) {
	f := newFixture(t)
	// Open from a subdirectory of the work tree finds the repository root.
	r := open(t, filepath.Join(f.dir, "overlays", "prod"), source.OpenOptions{})
	if got, want := realPath(t, r.WorkDir), realPath(t, f.dir); got != want {
		t.Errorf("WorkDir = %q, want the work tree root %q", got, want)
	}

	tests := []struct {
		rev  string
		want plumbing.Hash
	}{
		{"HEAD", f.c2},
		{"", f.c2},
		{"master", f.c2},
		{"v1", f.c1},
		{"v1-annotated", f.c1},
		{"feature", f.c1},
		{"HEAD~1", f.c1},
		{f.c1.String(), f.c1},
		{f.c1.String()[:7], f.c1},
		{f.c2.String()[:12], f.c2},
	}
	for _, tt := range tests {
		t.Run(tt.rev, func(t *testing.T) {
			got := resolve(t, r, tt.rev)
			ref := tt.rev
			if ref == "" {
				ref = "HEAD"
			}
			if diff := cmp.Diff(f.revision(t, ref, tt.want), got); diff != "" {
				t.Errorf("Resolve(%q) mismatch (-want +got):\n%s", tt.rev, diff)
			}
		})
	}

	head := resolve(t, r, "HEAD")
	if got, want := head.Short(), f.c2.String()[:12]; got != want {
		t.Errorf("Short() = %q, want %q", got, want)
	}
	if got, want := head.Subject(), "Bump strata.yaml to version 2"; got != want {
		t.Errorf("Subject() = %q, want %q", got, want)
	}
	if got, want := resolve(t, r, "v1").Subject(), "Add the prod overlay"; got != want {
		t.Errorf("Subject() of a multi-line message = %q, want %q", got, want)
	}
	// The two commits have different content, so different trees.
	if resolve(t, r, "v1").Tree == head.Tree {
		t.Error("commits with different content have the same Tree")
	}
	if err := r.Fetch(context.Background()); err != nil {
		t.Errorf("Fetch on a local repository = %v, want nil (no-op)", err)
	}
}

func TestResolveSameTreeDifferentCommit(t *testing.T) {
	// A revert restores an earlier tree: the Tree identifies content, the
	// Commit does not.
	f := newFixture(t)
	writeFile(t, f.dir, "strata.yaml", configV1)
	c3 := commitAll(t, f.repo, "Revert \"Bump strata.yaml to version 2\"\n", bob)
	r := open(t, f.dir, source.OpenOptions{})
	v1, head := resolve(t, r, "v1"), resolve(t, r, "HEAD")
	if head.Commit != c3.String() {
		t.Fatalf("HEAD = %s, want %s", head.Commit, c3)
	}
	if head.Tree != v1.Tree {
		t.Errorf("reverted HEAD has tree %s, want the tree of v1 %s", head.Tree, v1.Tree)
	}
}

func TestResolveMissingRevision(t *testing.T) {
	f := newFixture(t)
	r := open(t, f.dir, source.OpenOptions{})
	for _, rev := range []string{"no-such-branch", "v9", "HEAD~5", "0123456789abcdef0123456789abcdef01234567"} {
		t.Run(rev, func(t *testing.T) {
			got, err := r.Resolve(rev)
			if err == nil {
				t.Fatalf("Resolve(%q) = %s, want an error", rev, got.Commit)
			}
			var nf *source.RevisionNotFoundError
			if !errors.As(err, &nf) {
				t.Fatalf("Resolve(%q) error is %T (%v), want *source.RevisionNotFoundError", rev, err, err)
			}
			if nf.Revision != rev || nf.Location != f.dir {
				t.Errorf("RevisionNotFoundError = {Revision: %q, Location: %q}, want {%q, %q}", nf.Revision, nf.Location, rev, f.dir)
			}
			for _, s := range []string{`revision "` + rev + `" not found in ` + f.dir, "use a branch, tag or commit that exists there", "git log --oneline"} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error does not contain %q: %v", s, err)
				}
			}
		})
	}
}

func TestResolveRemoteTrackingBranchOfLocalClone(t *testing.T) {
	// A local clone has only its default branch locally; others are
	// origin/<name>, and Resolve finds them by their plain name.
	f := newFixture(t)
	clone := t.TempDir()
	if _, err := git.PlainClone(clone, false, &git.CloneOptions{URL: f.dir}); err != nil {
		t.Fatal(err)
	}
	r := open(t, clone, source.OpenOptions{})
	if got := resolve(t, r, "feature"); got.Commit != f.c1.String() {
		t.Errorf("Resolve(feature) in a clone = %s, want %s", got.Commit, f.c1)
	}
}

func TestOpenNotARepository(t *testing.T) {
	dir := t.TempDir()
	_, err := source.Open(context.Background(), dir, source.OpenOptions{})
	var nar *source.NotARepositoryError
	if !errors.As(err, &nar) {
		t.Fatalf("Open(%s) error = %T (%v), want *source.NotARepositoryError", dir, err, err)
	}
	if nar.Path != dir {
		t.Errorf("NotARepositoryError.Path = %q, want %q", nar.Path, dir)
	}
	for _, s := range []string{dir + " is not in a git repository", "git init", "--worktree"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error does not contain %q: %v", s, err)
		}
	}
}

func TestOpenMissingPath(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-such-dir")
	_, err := source.Open(context.Background(), missing, source.OpenOptions{})
	if err == nil {
		t.Fatal("Open of a missing path returned no error")
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("error does not wrap fs.ErrNotExist: %v", err)
	}
	for _, s := range []string{missing, "--repo"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error does not contain %q: %v", s, err)
		}
	}
}

func TestIsRemote(t *testing.T) {
	for loc, want := range map[string]bool{
		"https://github.com/acme/config.git": true,
		"http://127.0.0.1:8080/config.git":   true,
		"ssh://git@example.com/config.git":   true,
		"git@github.com:acme/config.git":     true,
		"/srv/config":                        false,
		"./config":                           false,
		"file:///srv/config":                 false,
	} {
		if got := source.IsRemote(loc); got != want {
			t.Errorf("IsRemote(%q) = %v, want %v", loc, got, want)
		}
	}
}

func TestSnapshotReadsCommittedContentOnly(t *testing.T) {
	f := newFixture(t)
	// Uncommitted change and untracked file in the work tree.
	writeFile(t, f.dir, "strata.yaml", "uncommitted edit\n")
	writeFile(t, f.dir, "overlays/prod/untracked.yaml", "kind: Untracked\n")

	r := open(t, f.dir, source.OpenOptions{})
	head := resolve(t, r, "HEAD")
	snap, err := r.Snapshot(head)
	if err != nil {
		t.Fatal(err)
	}
	if snap.WorkTree {
		t.Error("Snapshot(HEAD).WorkTree = true")
	}
	if got, want := snap.RevisionLabel(), f.c2.String(); got != want {
		t.Errorf("RevisionLabel() = %q, want %q", got, want)
	}
	if got, err := snap.ReadFile("strata.yaml"); err != nil || string(got) != configV2 {
		t.Errorf("Snapshot(HEAD).ReadFile(strata.yaml) = %q, %v; want the committed %q", got, err, configV2)
	}
	if got, err := snap.ReadFile("overlays/prod/kustomization.yaml"); err != nil || string(got) != prodKust {
		t.Errorf("Snapshot(HEAD).ReadFile(overlays/prod/kustomization.yaml) = %q, %v", got, err)
	}
	_, err = snap.ReadFile("overlays/prod/untracked.yaml")
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Snapshot(HEAD).ReadFile(untracked) error = %v, want fs.ErrNotExist", err)
	}
	if snap.FS.Exists(snap.Path("overlays/prod/untracked.yaml")) {
		t.Error("the untracked file exists in the snapshot")
	}
	if !snap.FS.IsDir(snap.Path("overlays/prod")) {
		t.Error("overlays/prod is not a directory in the snapshot")
	}

	// An older revision has its own content.
	if got := readSnapshot(t, r, resolve(t, r, "v1"), "strata.yaml"); got != configV1 {
		t.Errorf("Snapshot(v1).ReadFile(strata.yaml) = %q, want %q", got, configV1)
	}

	// The work tree sees both.
	wts, err := r.WorkTreeSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	if !wts.WorkTree || wts.Revision == nil || wts.Revision.Commit != f.c2.String() {
		t.Errorf("WorkTreeSnapshot = {WorkTree: %v, Revision: %+v}, want WorkTree at HEAD %s", wts.WorkTree, wts.Revision, f.c2)
	}
	if got, want := wts.RevisionLabel(), f.c2.String()+"+worktree"; got != want {
		t.Errorf("WorkTreeSnapshot.RevisionLabel() = %q, want %q", got, want)
	}
	if got, err := wts.ReadFile("strata.yaml"); err != nil || string(got) != "uncommitted edit\n" {
		t.Errorf("WorkTreeSnapshot.ReadFile(strata.yaml) = %q, %v; want the uncommitted edit", got, err)
	}
	if got, err := wts.ReadFile("overlays/prod/untracked.yaml"); err != nil || string(got) != "kind: Untracked\n" {
		t.Errorf("WorkTreeSnapshot.ReadFile(untracked) = %q, %v", got, err)
	}
}

func TestSnapshotMissingFileWorksWithConfigLoad(t *testing.T) {
	// config.Load tells a missing strata.yaml apart from a read error through
	// fs.ErrNotExist; a snapshot must keep that distinction.
	dir := t.TempDir()
	repo, err := git.PlainInit(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "README.md", "no strata.yaml here\n")
	commitAll(t, repo, "init\n", alice)
	r := open(t, dir, source.OpenOptions{})
	snap, err := r.Snapshot(resolve(t, r, "HEAD"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = config.Load(snap.ReadFile)
	if err == nil || !strings.Contains(err.Error(), "strata.yaml not found at the root of the config repository") {
		t.Errorf("config.Load(snapshot without strata.yaml) = %v, want the not-found message", err)
	}
	trust, err := config.LoadTrust(snap.ReadFile, nil)
	if err != nil || len(trust.Reviewers) != 0 {
		t.Errorf("config.LoadTrust(snapshot without trust file) = %+v, %v; want an empty trust", trust, err)
	}
}

func TestSnapshotIsReadOnly(t *testing.T) {
	f := newFixture(t)
	r := open(t, f.dir, source.OpenOptions{})
	snap, err := r.Snapshot(resolve(t, r, "HEAD"))
	if err != nil {
		t.Fatal(err)
	}
	p := snap.Path("strata.yaml")
	if err := snap.FS.WriteFile(p, []byte("changed")); err == nil {
		t.Error("WriteFile on a revision snapshot succeeded")
	}
	if err := snap.FS.WriteFile(snap.Path("new.yaml"), []byte("new")); err == nil {
		t.Error("WriteFile of a new file on a revision snapshot succeeded")
	}
	if _, err := snap.FS.Create(snap.Path("created.yaml")); err == nil {
		t.Error("Create on a revision snapshot succeeded")
	}
	if err := snap.FS.Mkdir(snap.Path("newdir")); err == nil {
		t.Error("Mkdir on a revision snapshot succeeded")
	}
	if err := snap.FS.MkdirAll(snap.Path("a/b")); err == nil {
		t.Error("MkdirAll on a revision snapshot succeeded")
	}
	if err := snap.FS.RemoveAll(snap.Path("overlays")); err == nil {
		t.Error("RemoveAll on a revision snapshot succeeded")
	}
	if got, err := snap.ReadFile("strata.yaml"); err != nil || string(got) != configV2 {
		t.Errorf("after the refused writes ReadFile(strata.yaml) = %q, %v; want %q", got, err, configV2)
	}
	if !snap.FS.Exists(snap.Path("overlays/prod/kustomization.yaml")) {
		t.Error("RemoveAll changed the snapshot")
	}
	// The content on disk is untouched too.
	if got, _ := os.ReadFile(filepath.Join(f.dir, "strata.yaml")); string(got) != configV2 {
		t.Errorf("work tree strata.yaml = %q after writes to the snapshot", got)
	}
}

func TestSnapshotOpenIsReadOnly(t *testing.T) {
	f := newFixture(t)
	r := open(t, f.dir, source.OpenOptions{})
	snap, err := r.Snapshot(resolve(t, r, "HEAD"))
	if err != nil {
		t.Fatal(err)
	}
	file, err := snap.FS.Open(snap.Path("strata.yaml"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if _, err := file.Write([]byte("changed through Open")); err == nil {
		t.Error("Write to a File opened from a revision snapshot succeeded")
	}
	if err := file.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if got, err := snap.ReadFile("strata.yaml"); err != nil || string(got) != configV2 {
		t.Errorf("after a write through Open ReadFile(strata.yaml) = %q, %v; want %q", got, err, configV2)
	}
}

func TestSnapshotFollowsSymlinks(t *testing.T) {
	f := newFixture(t)
	r := open(t, f.dir, source.OpenOptions{})
	snap, err := r.Snapshot(resolve(t, r, "HEAD"))
	if err != nil {
		t.Fatal(err)
	}
	// overlays/dev/kustomization.yaml -> ../prod/kustomization.yaml
	if got, err := snap.ReadFile("overlays/dev/kustomization.yaml"); err != nil || string(got) != prodKust {
		t.Errorf("ReadFile(symlink to overlays/prod/kustomization.yaml) = %q, %v; want the target's content %q", got, err, prodKust)
	}
	// Links out of the tree are absent, never read from the host.
	for _, rel := range []string{"overlays/absolute-link", "overlays/escaping-link"} {
		if _, err := snap.ReadFile(rel); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("ReadFile(%s, a link out of the tree) error = %v, want fs.ErrNotExist", rel, err)
		}
	}
}

func TestSnapshotSymlinkChainAndLoop(t *testing.T) {
	f := newFixture(t)
	symlink(t, f.dir, "../dev/kustomization.yaml", "overlays/staging/kustomization.yaml") // link -> link -> file
	symlink(t, f.dir, "loop-b", "overlays/loop-a")
	symlink(t, f.dir, "loop-a", "overlays/loop-b")
	commitAll(t, f.repo, "More links\n", bob)
	r := open(t, f.dir, source.OpenOptions{})
	snap, err := r.Snapshot(resolve(t, r, "HEAD"))
	if err != nil {
		t.Fatalf("Snapshot with a symlink loop: %v", err)
	}
	if got, err := snap.ReadFile("overlays/staging/kustomization.yaml"); err != nil || string(got) != prodKust {
		t.Errorf("ReadFile(link to a link) = %q, %v; want %q", got, err, prodKust)
	}
	if _, err := snap.ReadFile("overlays/loop-a"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadFile(symlink loop) error = %v, want fs.ErrNotExist", err)
	}
}

func TestSnapshotSymlinkToDirectory(t *testing.T) {
	// A link to a directory must not break the snapshot of the whole tree.
	// Files under it are not readable through the link today (only links to
	// files are followed), so this test does not ask for them.
	f := newFixture(t)
	symlink(t, f.dir, "prod", "overlays/prod-alias")
	commitAll(t, f.repo, "Alias prod\n", bob)
	r := open(t, f.dir, source.OpenOptions{})
	snap, err := r.Snapshot(resolve(t, r, "HEAD"))
	if err != nil {
		t.Fatalf("Snapshot with a symlink to a directory: %v", err)
	}
	if got, err := snap.ReadFile("overlays/prod/kustomization.yaml"); err != nil || string(got) != prodKust {
		t.Errorf("ReadFile(overlays/prod/kustomization.yaml) = %q, %v", got, err)
	}
}

func TestWorkTreeSnapshotWithoutCommits(t *testing.T) {
	dir := t.TempDir()
	if _, err := git.PlainInit(dir, false); err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "strata.yaml", configV1)
	r := open(t, dir, source.OpenOptions{})
	snap, err := r.WorkTreeSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	if snap.Revision != nil || snap.RevisionLabel() != "worktree" {
		t.Errorf("WorkTreeSnapshot without commits = {Revision: %+v, label %q}, want no revision, label worktree", snap.Revision, snap.RevisionLabel())
	}
	if got, err := snap.ReadFile("strata.yaml"); err != nil || string(got) != configV1 {
		t.Errorf("ReadFile(strata.yaml) = %q, %v", got, err)
	}
	_, err = r.Resolve("HEAD")
	var nf *source.RevisionNotFoundError
	if !errors.As(err, &nf) {
		t.Errorf("Resolve(HEAD) without commits error = %v, want *RevisionNotFoundError", err)
	}
}

func TestDirSnapshot(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "overlays/prod/kustomization.yaml", prodKust)
	snap, err := source.DirSnapshot(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !snap.WorkTree || snap.Revision != nil || snap.RevisionLabel() != "worktree" {
		t.Errorf("DirSnapshot = %+v, label %q", snap, snap.RevisionLabel())
	}
	if got, err := snap.ReadFile("overlays/prod/kustomization.yaml"); err != nil || string(got) != prodKust {
		t.Errorf("ReadFile = %q, %v", got, err)
	}
}

// --- remote repositories over smart HTTP ---

// server serves a bare repository config.git over HTTP (git smart protocol
// through gittestserver/gitkit) and pushes f's branches and tags into it.
func server(t testing.TB, f *fixture) string {
	t.Helper()
	srv, err := gittestserver.NewTempGitServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(srv.Root()) })
	if err := srv.StartHTTP(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.StopHTTP)
	if _, err := git.PlainInit(filepath.Join(srv.Root(), "config.git"), true); err != nil {
		t.Fatal(err)
	}
	url := srv.HTTPAddress() + "/config.git"
	if !strings.HasPrefix(url, "http://") {
		t.Fatalf("server URL %q is not http", url)
	}
	if _, err := f.repo.CreateRemote(&gitconfig.RemoteConfig{Name: "server", URLs: []string{url}}); err != nil {
		t.Fatal(err)
	}
	push(t, f, "refs/heads/*:refs/heads/*", "refs/tags/*:refs/tags/*")
	return url
}

func push(t testing.TB, f *fixture, specs ...string) {
	t.Helper()
	refSpecs := make([]gitconfig.RefSpec, len(specs))
	for i, s := range specs {
		refSpecs[i] = gitconfig.RefSpec(s)
	}
	err := f.repo.Push(&git.PushOptions{RemoteName: "server", RefSpecs: refSpecs})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		t.Fatalf("push %v: %v", specs, err)
	}
}

func TestRemoteResolveOlderRevisions(t *testing.T) {
	f := newFixture(t)
	url := server(t, f)
	r := open(t, url, source.OpenOptions{})
	if r.WorkDir != "" || r.Location != url {
		t.Errorf("remote Repository = {WorkDir: %q, Location: %q}", r.WorkDir, r.Location)
	}

	tests := []struct {
		rev     string
		want    plumbing.Hash
		content string
	}{
		{"HEAD", f.c2, configV2},
		{"master", f.c2, configV2},
		{"v1", f.c1, configV1},
		{"v1-annotated", f.c1, configV1},
		{"feature", f.c1, configV1},
		{"HEAD~1", f.c1, configV1},
		{f.c1.String(), f.c1, configV1},
		{f.c1.String()[:10], f.c1, configV1},
	}
	for _, tt := range tests {
		t.Run(tt.rev, func(t *testing.T) {
			got := resolve(t, r, tt.rev)
			if diff := cmp.Diff(f.revision(t, tt.rev, tt.want), got); diff != "" {
				t.Errorf("Resolve(%q) mismatch (-want +got):\n%s", tt.rev, diff)
			}
			if content := readSnapshot(t, r, got, "strata.yaml"); content != tt.content {
				t.Errorf("Snapshot(%s).ReadFile(strata.yaml) = %q, want %q", tt.rev, content, tt.content)
			}
		})
	}

	// Symlinks survive the transport.
	if got := readSnapshot(t, r, resolve(t, r, "v1"), "overlays/dev/kustomization.yaml"); got != prodKust {
		t.Errorf("remote Snapshot(v1) symlink content = %q, want %q", got, prodKust)
	}

	_, err := r.Resolve("no-such-branch")
	var nf *source.RevisionNotFoundError
	if !errors.As(err, &nf) || !strings.Contains(err.Error(), url) {
		t.Errorf("remote Resolve(no-such-branch) error = %v, want a *RevisionNotFoundError naming %s", err, url)
	}
	if _, err := r.WorkTreeSnapshot(); err == nil || !strings.Contains(err.Error(), "has no work tree") {
		t.Errorf("remote WorkTreeSnapshot error = %v, want \"has no work tree\"", err)
	}
}

func TestRemoteOpenFailure(t *testing.T) {
	f := newFixture(t)
	url := server(t, f)
	missing := strings.TrimSuffix(url, "config.git") + "missing.git"
	_, err := source.Open(context.Background(), missing, source.OpenOptions{})
	if err == nil {
		t.Fatalf("Open(%s) of a repository the server does not have returned no error", missing)
	}
	for _, s := range []string{"cloning " + missing, "check the URL and credentials"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error does not contain %q: %v", s, err)
		}
	}
	dir := filepath.Join(t.TempDir(), "mirror")
	if _, err := source.Open(context.Background(), missing, source.OpenOptions{Dir: dir}); err == nil {
		t.Fatal("Open with Dir of a missing remote returned no error")
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a failed clone left %s behind (stat: %v)", dir, err)
	}
}

func TestRemoteMirrorOnDiskFetch(t *testing.T) {
	f := newFixture(t)
	url := server(t, f)
	mirror := filepath.Join(t.TempDir(), "mirror")
	ctx := context.Background()

	r := open(t, url, source.OpenOptions{Dir: mirror})
	if got := resolve(t, r, "HEAD"); got.Commit != f.c2.String() {
		t.Fatalf("Resolve(HEAD) after clone = %s, want %s", got.Short(), f.c2)
	}
	if _, err := git.PlainOpen(mirror); err != nil {
		t.Fatalf("the mirror is not a repository on disk: %v", err)
	}
	if err := r.Fetch(ctx); err != nil {
		t.Errorf("Fetch with nothing new = %v, want nil", err)
	}

	// A new commit and a new tag are pushed to the server.
	writeFile(t, f.dir, "strata.yaml", configV3)
	c3 := commitAll(t, f.repo, "Version 3\n", bob)
	if _, err := f.repo.CreateTag("v3", c3, nil); err != nil {
		t.Fatal(err)
	}
	push(t, f, "refs/heads/master:refs/heads/master", "refs/tags/v3:refs/tags/v3")

	if got := resolve(t, r, "HEAD"); got.Commit != f.c2.String() {
		t.Errorf("Resolve(HEAD) before Fetch = %s, want the old %s", got.Short(), f.c2)
	}
	if err := r.Fetch(ctx); err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	for _, rev := range []string{"HEAD", "master", "v3"} {
		got := resolve(t, r, rev)
		if got.Commit != c3.String() {
			t.Errorf("Resolve(%s) after Fetch = %s, want %s", rev, got.Short(), c3)
			continue
		}
		if content := readSnapshot(t, r, got, "strata.yaml"); content != configV3 {
			t.Errorf("Snapshot(%s).ReadFile(strata.yaml) = %q, want %q", rev, content, configV3)
		}
	}
	if got := readSnapshot(t, r, resolve(t, r, "v1"), "strata.yaml"); got != configV1 {
		t.Errorf("Snapshot(v1) after Fetch = %q, want %q", got, configV1)
	}

	// Reopening the same Dir reuses the mirror and fetches what is new.
	writeFile(t, f.dir, "strata.yaml", "# version 4\n")
	c4 := commitAll(t, f.repo, "Version 4\n", bob)
	push(t, f, "refs/heads/master:refs/heads/master")
	r2 := open(t, url, source.OpenOptions{Dir: mirror})
	if got := resolve(t, r2, "HEAD"); got.Commit != c4.String() {
		t.Errorf("Resolve(HEAD) after reopening the mirror = %s, want %s", got.Short(), c4)
	}

	// A force-push (history rewrite) is mirrored as it is.
	push(t, f, "+"+f.c1.String()+":refs/heads/master")
	if err := r2.Fetch(ctx); err != nil {
		t.Fatalf("Fetch after a force-push: %v", err)
	}
	if got := resolve(t, r2, "master"); got.Commit != f.c1.String() {
		t.Errorf("Resolve(master) after a force-push to v1 = %s, want %s", got.Short(), f.c1)
	}
}

func TestRemoteFetchInMemory(t *testing.T) {
	f := newFixture(t)
	url := server(t, f)
	r := open(t, url, source.OpenOptions{})
	writeFile(t, f.dir, "strata.yaml", configV3)
	c3 := commitAll(t, f.repo, "Version 3\n", bob)
	push(t, f, "refs/heads/master:refs/heads/master")
	if err := r.Fetch(context.Background()); err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	got := resolve(t, r, "HEAD")
	if got.Commit != c3.String() {
		t.Fatalf("Resolve(HEAD) after Fetch = %s, want %s", got.Short(), c3)
	}
	if content := readSnapshot(t, r, got, "strata.yaml"); content != configV3 {
		t.Errorf("Snapshot(HEAD).ReadFile(strata.yaml) = %q, want %q", content, configV3)
	}
}

func TestRemoteFetchPrunesDeletedBranch(t *testing.T) {
	f := newFixture(t)
	url := server(t, f)
	r := open(t, url, source.OpenOptions{Dir: filepath.Join(t.TempDir(), "mirror")})
	resolve(t, r, "feature")
	push(t, f, ":refs/heads/feature") // delete the branch on the server
	if err := r.Fetch(context.Background()); err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	_, err := r.Resolve("feature")
	var nf *source.RevisionNotFoundError
	if !errors.As(err, &nf) {
		t.Errorf("Resolve(feature) after the branch was deleted on the server: error = %v, want *RevisionNotFoundError", err)
	}
}
