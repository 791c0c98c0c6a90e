package source_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/strata-gitops/strata/internal/source"
)

var strataSig = object.Signature{Name: "strata", Email: "strata@example.com", When: time.Unix(1700000000, 0)}

// serverHead is the server's master.
func serverHead(t *testing.T, srv *gitServer) string {
	t.Helper()
	bare, err := git.PlainOpen(filepath.Join(srv.Root(), "config.git"))
	if err != nil {
		t.Fatal(err)
	}
	ref, err := bare.Reference(plumbing.NewBranchReferenceName("master"), true)
	if err != nil {
		t.Fatal(err)
	}
	return ref.Hash().String()
}

// strata's own commits (auto-revert) are pushed with the credentials the
// fetches use, read from files — over HTTPS with basic auth and a private
// CA, and over ssh with a deploy key and known_hosts — with go-git, so
// that they work in strata's image, which has no git CLI.
func TestCommitOntoPushesWithFileCredentials(t *testing.T) {
	for _, tc := range []struct {
		name  string
		serve func(t *testing.T, srv *gitServer) (string, source.Credentials)
	}{
		{"https basic auth", func(t *testing.T, srv *gitServer) (string, source.Credentials) {
			srv.Auth("writer", "s3cret-pass")
			url, ca := srv.startHTTPS(t)
			dir := t.TempDir()
			return url, source.Credentials{CAFile: secretFile(t, dir, "ca.crt", ca),
				UsernameFile: secretFile(t, dir, "username", []byte("writer\n")),
				PasswordFile: secretFile(t, dir, "password", []byte("s3cret-pass\n"))}
		}},
		{"ssh deploy key", func(t *testing.T, srv *gitServer) (string, source.Credentials) {
			key, authorized := sshKey(t, "")
			url, known := srv.startSSH(t, authorized)
			dir := t.TempDir()
			return url, source.Credentials{SSHKeyFile: secretFile(t, dir, "identity", key),
				KnownHostsFile: secretFile(t, dir, "known_hosts", []byte(known+"\n"))}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			srv := newGitServer(t, f)
			url, creds := tc.serve(t, srv)
			r := open(t, url, source.OpenOptions{Branch: "master", Credentials: creds})
			head, err := r.ResolveBranch("master")
			if err != nil {
				t.Fatal(err)
			}
			first, err := r.Resolve(f.c1.String())
			if err != nil {
				t.Fatal(err)
			}
			got, err := r.CommitOnto(context.Background(), "master", head.Commit, first.Tree, "Revert \"v2\"\n", strataSig)
			if err != nil {
				t.Fatalf("CommitOnto: %v", err)
			}
			if s := serverHead(t, srv); s != got {
				t.Fatalf("the server's master is %s, want the pushed commit %s", s, got)
			}
			if err := r.Fetch(context.Background()); err != nil {
				t.Fatal(err)
			}
			now, err := r.ResolveBranch("master")
			if err != nil || now.Commit != got || now.Tree != first.Tree {
				t.Errorf("after a fetch master = %+v, %v; want %s with the first commit's tree %s", now, err, got, first.Tree)
			}
		})
	}
}

// Someone pushed after strata looked: nothing is pushed over their
// revision, and the error says it was superseded.
func TestCommitOntoRefusesAMovedBranch(t *testing.T) {
	f := newFixture(t)
	srv := newGitServer(t, f)
	url, ca := srv.startHTTPS(t)
	r := open(t, url, source.OpenOptions{Branch: "master", Credentials: source.Credentials{CAFile: secretFile(t, t.TempDir(), "ca.crt", ca)}})
	stale, err := r.ResolveBranch("master")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, f.dir, "strata.yaml", configV3)
	newer := commitAll(t, f.repo, "Version 3\n", bob)
	push(t, f, "refs/heads/master:refs/heads/master")

	_, err = r.CommitOnto(context.Background(), "master", stale.Commit, stale.Tree, "Revert\n", strataSig)
	var moved *source.BranchMovedError
	if !errors.As(err, &moved) || !strings.Contains(err.Error(), "newer revision") {
		t.Fatalf("CommitOnto over a moved branch = %v, want a BranchMovedError", err)
	}
	if s := serverHead(t, srv); s != newer.String() {
		t.Errorf("the server's master moved to %s; want the newer revision %s kept", s, newer)
	}
}

// A branch checked out in a work tree is not moved under it.
func TestCommitOntoLeavesACheckedOutBranch(t *testing.T) {
	f := newFixture(t)
	r := open(t, f.dir, source.OpenOptions{})
	head, err := r.ResolveBranch("master")
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.CommitOnto(context.Background(), "master", head.Commit, head.Tree, "Revert\n", strataSig)
	if err == nil || !strings.Contains(err.Error(), "checked out") {
		t.Fatalf("CommitOnto on a checked-out branch = %v, want a refusal", err)
	}
}
