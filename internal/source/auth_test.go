package source_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/fluxcd/gitkit"
	"github.com/fluxcd/pkg/gittestserver"
	"github.com/go-git/go-git/v5"
	gitconfig "github.com/go-git/go-git/v5/config"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
	"k8s.io/client-go/util/cert"

	"github.com/strata-gitops/strata/internal/source"
)

// gitServer is a gittestserver whose config.git holds f's branches.
type gitServer struct {
	*gittestserver.GitServer
}

func newGitServer(t *testing.T, f *fixture) *gitServer {
	t.Helper()
	srv, err := gittestserver.NewTempGitServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(srv.Root()) })
	bare := filepath.Join(srv.Root(), "config.git")
	if _, err := git.PlainInit(bare, true); err != nil {
		t.Fatal(err)
	}
	if _, err := f.repo.CreateRemote(&gitconfig.RemoteConfig{Name: "server", URLs: []string{bare}}); err != nil {
		t.Fatal(err)
	}
	push(t, f, "refs/heads/*:refs/heads/*")
	return &gitServer{srv}
}

// sshKey is a fresh ed25519 key: its private key in OpenSSH PEM (encrypted
// with passphrase when not empty) and its authorized_keys line.
func sshKey(t *testing.T, passphrase string) (private []byte, authorized string) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var block *pem.Block
	if passphrase == "" {
		block, err = ssh.MarshalPrivateKey(priv, "deploy key")
	} else {
		block, err = ssh.MarshalPrivateKeyWithPassphrase(priv, "deploy key", []byte(passphrase))
	}
	if err != nil {
		t.Fatal(err)
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(block), strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sp)))
}

// rsaHostKey is the public key of another RSA key, like the server's type.
func rsaHostKey(t *testing.T) string {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := ssh.NewPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub)))
}

// startSSH serves s over ssh, accepting only the deploy key authorized, and
// returns the repository URL and a known_hosts line for the server.
func (s *gitServer) startSSH(t *testing.T, authorized string) (url, knownHost string) {
	t.Helper()
	keyDir := t.TempDir()
	s.KeyDir(keyDir).Auth("unused", "unused") // Auth switches key checks on
	s.PublicKeyLookupFunc(func(content string) (*gitkit.PublicKey, error) {
		if content != authorized {
			return nil, errors.New("not the deploy key")
		}
		return &gitkit.PublicKey{Id: "deploy"}, nil
	})
	if err := s.ListenSSH(); err != nil {
		t.Fatal(err)
	}
	go s.StartSSH()
	t.Cleanup(func() { s.StopSSH() })
	hostPub, err := os.ReadFile(filepath.Join(keyDir, "gitkit.rsa.pub"))
	if err != nil {
		t.Fatal(err)
	}
	key, _, _, _, err := ssh.ParseAuthorizedKey(hostPub)
	if err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimPrefix(s.SSHAddress(), "ssh://git@")
	return s.SSHAddress() + "/config.git", knownhosts.Line([]string{knownhosts.Normalize(addr)}, key)
}

// startHTTPS serves s over HTTPS with a certificate of a private CA and
// returns the repository URL and the CA's PEM.
func (s *gitServer) startHTTPS(t *testing.T) (url string, ca []byte) {
	t.Helper()
	certs, key, err := cert.GenerateSelfSignedCertKey("127.0.0.1", []net.IP{net.ParseIP("127.0.0.1")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// certs is the serving certificate followed by the CA that signed it.
	leaf, rest := pem.Decode(certs)
	caBlock, _ := pem.Decode(rest)
	if leaf == nil || caBlock == nil {
		t.Fatal("GenerateSelfSignedCertKey returned no certificate chain")
	}
	ca = pem.EncodeToMemory(caBlock)
	if err := s.StartHTTPS(pem.EncodeToMemory(leaf), key, ca, "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.StopHTTP)
	return s.HTTPAddress() + "/config.git", ca
}

// secretFile writes content to dir/name, as a mounted Secret's key.
func secretFile(t *testing.T, dir, name string, content []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	// Like the kubelet, replace the file rather than write into it.
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, content, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
	return p
}

// noSecrets fails when err's text contains any of secrets.
func noSecrets(t *testing.T, err error, secrets ...string) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(err.Error(), s) {
			t.Errorf("error reveals a secret %.12q…: %v", s, err)
		}
	}
}

// mustFollow opens url with creds following master, checks the branch, then
// pushes a new commit and checks that Fetch brings it.
func mustFollow(t *testing.T, f *fixture, url string, creds source.Credentials) *source.Repository {
	t.Helper()
	r := open(t, url, source.OpenOptions{Branch: "master", Credentials: creds})
	if got, err := r.ResolveBranch("master"); err != nil || got.Commit != f.c2.String() {
		t.Fatalf("ResolveBranch(master) after Open = %v, %v; want %s", got, err, f.c2)
	}
	writeFile(t, f.dir, "strata.yaml", configV3)
	c3 := commitAll(t, f.repo, "Version 3\n", bob)
	push(t, f, "refs/heads/master:refs/heads/master")
	if err := r.Fetch(context.Background()); err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if got, err := r.ResolveBranch("master"); err != nil || got.Commit != c3.String() {
		t.Fatalf("ResolveBranch(master) after Fetch = %v, %v; want %s", got, err, c3)
	}
	return r
}

func TestSSHDeployKeyAndKnownHosts(t *testing.T) {
	for _, passphrase := range []string{"", "correct horse"} {
		name := map[bool]string{true: "plain key", false: "encrypted key"}[passphrase == ""]
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			srv := newGitServer(t, f)
			key, authorized := sshKey(t, passphrase)
			url, known := srv.startSSH(t, authorized)
			dir := t.TempDir()
			creds := source.Credentials{
				SSHKeyFile:     secretFile(t, dir, "identity", key),
				KnownHostsFile: secretFile(t, dir, "known_hosts", []byte(known+"\n")),
			}
			if passphrase != "" {
				creds.PasswordFile = secretFile(t, dir, "password", []byte(passphrase+"\n"))
			}
			mustFollow(t, f, url, creds)
		})
	}
}

func TestSSHRefusals(t *testing.T) {
	f := newFixture(t)
	srv := newGitServer(t, f)
	key, authorized := sshKey(t, "")
	url, known := srv.startSSH(t, authorized)
	otherKey, otherAuthorized := sshKey(t, "")
	host, _, _ := strings.Cut(known, " ")
	dir := t.TempDir()
	identity := secretFile(t, dir, "identity", key)

	for _, tc := range []struct {
		name       string
		identity   string
		knownHosts string // content; "" leaves the file out
		want       []string
	}{
		{"unknown host", identity, "[example.com]:22 " + otherAuthorized + "\n",
			[]string{"not in known_hosts", "add this line to known_hosts: " + known}},
		{"host key changed", identity, host + " " + rsaHostKey(t) + "\n",
			[]string{"not the one known_hosts", "someone may be in the middle", "replace that line with: " + known}},
		{"host key type changed", identity, host + " " + otherAuthorized + "\n",
			[]string{"not the one known_hosts", "someone may be in the middle", "replace that line with: " + known}},
		{"wrong deploy key", secretFile(t, dir, "other", otherKey), known + "\n",
			[]string{"unable to authenticate"}},
		{"no known_hosts", identity, "", []string{"needs known_hosts", "never trusts an unknown host"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			creds := source.Credentials{SSHKeyFile: tc.identity}
			if tc.knownHosts != "" {
				creds.KnownHostsFile = secretFile(t, t.TempDir(), "known_hosts", []byte(tc.knownHosts))
			}
			_, err := source.Open(context.Background(), url, source.OpenOptions{Branch: "master", Credentials: creds})
			if err == nil {
				t.Fatal("Open succeeded; want a refusal")
			}
			t.Logf("refused: %v", err)
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%v", w, err)
				}
			}
			noSecrets(t, err, string(key), string(otherKey))
		})
	}
}

func TestHTTPSCustomCA(t *testing.T) {
	f := newFixture(t)
	srv := newGitServer(t, f)
	url, ca := srv.startHTTPS(t)

	_, err := source.Open(context.Background(), url, source.OpenOptions{Branch: "master"})
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("Open without the CA = %v, want a certificate error", err)
	}
	dir := t.TempDir()
	mustFollow(t, f, url, source.Credentials{CAFile: secretFile(t, dir, "ca.crt", ca)})

	_, err = source.Open(context.Background(), url, source.OpenOptions{Branch: "master",
		Credentials: source.Credentials{CAFile: secretFile(t, dir, "not-a-ca", []byte("hello\n"))}})
	if err == nil || !strings.Contains(err.Error(), "holds no PEM certificate") {
		t.Errorf("Open with a CA file without certificates = %v, want \"holds no PEM certificate\"", err)
	}
}

func TestHTTPSBasicAuthFromFiles(t *testing.T) {
	f := newFixture(t)
	srv := newGitServer(t, f)
	srv.Auth("reader", "s3cret-pass")
	url, ca := srv.startHTTPS(t)
	dir := t.TempDir()
	creds := source.Credentials{
		CAFile:       secretFile(t, dir, "ca.crt", ca),
		UsernameFile: secretFile(t, dir, "username", []byte("reader\n")),
		PasswordFile: secretFile(t, dir, "password", []byte("s3cret-pass\n")),
	}
	mustFollow(t, f, url, creds)

	creds.PasswordFile = secretFile(t, dir, "wrong", []byte("wrong-pass-123"))
	_, err := source.Open(context.Background(), url, source.OpenOptions{Branch: "master", Credentials: creds})
	if err == nil || !strings.Contains(err.Error(), "authentication") {
		t.Errorf("Open with a wrong password = %v, want an authentication error", err)
	}
	noSecrets(t, err, "s3cret-pass", "wrong-pass-123")
}

// authGate accepts requests whose Authorization header is *want, so that a
// test can rotate what the server accepts while it runs.
func authGate(want *atomic.Pointer[string]) gittestserver.HTTPMiddleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != *want.Load() {
				w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// A rotated password is used at the next Fetch, without reopening; the
// credentials come from a directory named like a Flux secret's keys.
func TestHTTPSPasswordRotation(t *testing.T) {
	f := newFixture(t)
	srv := newGitServer(t, f)
	var want atomic.Pointer[string]
	basic := func(user, pass string) *string {
		r, _ := http.NewRequest(http.MethodGet, "https://x", nil)
		r.SetBasicAuth(user, pass)
		v := r.Header.Get("Authorization")
		return &v
	}
	want.Store(basic("reader", "first-pass-1"))
	srv.AddHTTPMiddlewares(authGate(&want))
	url, ca := srv.startHTTPS(t)
	dir := t.TempDir()
	secretFile(t, dir, source.KeyCA, ca)
	secretFile(t, dir, source.KeyUsername, []byte("reader"))
	secretFile(t, dir, source.KeyPassword, []byte("first-pass-1"))
	r := mustFollow(t, f, url, source.Credentials{Dir: dir})

	// The server now takes only the new password; the Secret is not updated yet.
	want.Store(basic("reader", "second-pass-2"))
	writeFile(t, f.dir, "strata.yaml", "# version 4\n")
	c4 := commitAll(t, f.repo, "Version 4\n", bob)
	push(t, f, "refs/heads/master:refs/heads/master")
	err := r.Fetch(context.Background())
	if err == nil || !strings.Contains(err.Error(), "authentication") {
		t.Fatalf("Fetch with the old password = %v, want an authentication error", err)
	}
	noSecrets(t, err, "first-pass-1", "second-pass-2")

	secretFile(t, dir, source.KeyPassword, []byte("second-pass-2\n"))
	if err := r.Fetch(context.Background()); err != nil {
		t.Fatalf("Fetch after the password file was rotated: %v", err)
	}
	if got, err := r.ResolveBranch("master"); err != nil || got.Commit != c4.String() {
		t.Errorf("ResolveBranch(master) after the rotated Fetch = %v, %v; want %s", got, err, c4)
	}
}

func TestHTTPSBearerToken(t *testing.T) {
	f := newFixture(t)
	srv := newGitServer(t, f)
	var want atomic.Pointer[string]
	header := "Bearer tok-abc-123"
	want.Store(&header)
	srv.AddHTTPMiddlewares(authGate(&want))
	url, ca := srv.startHTTPS(t)
	dir := t.TempDir()
	creds := source.Credentials{CAFile: secretFile(t, dir, "ca.crt", ca), BearerTokenFile: secretFile(t, dir, "bearerToken", []byte("tok-abc-123\n"))}
	mustFollow(t, f, url, creds)

	creds.BearerTokenFile = secretFile(t, dir, "other", []byte("tok-wrong-456"))
	_, err := source.Open(context.Background(), url, source.OpenOptions{Branch: "master", Credentials: creds})
	if err == nil {
		t.Fatal("Open with a wrong token succeeded")
	}
	noSecrets(t, err, "tok-abc-123", "tok-wrong-456")
}

// Credentials in a URL authenticate but never show: not in Location, not in
// errors, not in the mirror's config.
func TestURLCredentialsRedacted(t *testing.T) {
	f := newFixture(t)
	srv := newGitServer(t, f)
	srv.Auth("reader", "url-secret-77")
	base, ca := srv.startHTTPS(t)
	withCreds := strings.Replace(base, "https://", "https://reader:url-secret-77@", 1)
	mirror := filepath.Join(t.TempDir(), "mirror")
	caFile := secretFile(t, t.TempDir(), "ca.crt", ca)

	r, err := source.Open(context.Background(), withCreds, source.OpenOptions{Branch: "master", Dir: mirror,
		Credentials: source.Credentials{CAFile: caFile}})
	noSecrets(t, err, "url-secret-77", "reader:")
	if err != nil {
		t.Fatalf("Open with credentials in the URL: %v", err)
	}
	if r.Location != base {
		t.Errorf("Location = %q, want %q (no userinfo)", r.Location, base)
	}
	cfg, err := os.ReadFile(filepath.Join(mirror, "config"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(cfg), "url-secret-77") {
		t.Errorf("the mirror's config keeps the URL's password:\n%s", cfg)
	}

	for _, tc := range []struct{ name, url, want string }{
		{"plain http", "http://reader:url-secret-77@127.0.0.1:1/config.git", "plain http"},
		{"ssh password", "ssh://git:url-secret-77@127.0.0.1:1/config.git", "deploy key only"},
		{"unparsable", "https://reader:url-secret-77@127.0.0.1:bad port/x", "does not parse"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := source.Open(context.Background(), tc.url, source.OpenOptions{Branch: "master"})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Open = %v, want an error containing %q", err, tc.want)
			}
			noSecrets(t, err, "url-secret-77")
		})
	}
}

// Credentials that do not fit the URL are refused before any connection.
func TestCredentialsMisconfigured(t *testing.T) {
	dir := t.TempDir()
	file := func(name string) string { return secretFile(t, dir, name, []byte("x-"+name+"-value\n")) }
	for _, tc := range []struct {
		name  string
		url   string
		creds source.Credentials
		want  string
	}{
		{"CA for ssh", "ssh://git@127.0.0.1:1/c.git", source.Credentials{SSHKeyFile: file("identity"), CAFile: file("ca.crt")}, "is for HTTPS"},
		{"no deploy key for ssh", "git@127.0.0.1:c.git", source.Credentials{KnownHostsFile: file("known_hosts")}, "needs a deploy key"},
		{"deploy key for https", "https://127.0.0.1:1/c.git", source.Credentials{SSHKeyFile: file("identity")}, "is for ssh"},
		{"token and password", "https://127.0.0.1:1/c.git", source.Credentials{BearerTokenFile: file("token"), UsernameFile: file("u"), PasswordFile: file("p")}, "keep one"},
		{"username alone", "https://127.0.0.1:1/c.git", source.Credentials{UsernameFile: file("u")}, "needs both username and password"},
		{"password over http", "http://127.0.0.1:1/c.git", source.Credentials{UsernameFile: file("u"), PasswordFile: file("p")}, "plain http"},
		{"missing file", "https://127.0.0.1:1/c.git", source.Credentials{BearerTokenFile: filepath.Join(dir, "absent")}, "reading bearerToken"},
		{"empty file", "https://127.0.0.1:1/c.git", source.Credentials{BearerTokenFile: secretFile(t, dir, "empty", []byte("\n"))}, "is empty"},
		{"bad key", "ssh://git@127.0.0.1:1/c.git", source.Credentials{SSHKeyFile: file("identity"), KnownHostsFile: file("known_hosts")}, "does not parse"},
		{"local repository", t.TempDir(), source.Credentials{BearerTokenFile: file("token")}, "local repository"},
		{"URL and files", "https://u:p@127.0.0.1:1/c.git", source.Credentials{BearerTokenFile: file("token")}, "both in the repository URL and in files"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := source.Open(context.Background(), tc.url, source.OpenOptions{Branch: "main", Credentials: tc.creds})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Open = %v, want an error containing %q", err, tc.want)
			}
			noSecrets(t, err, "-value")
		})
	}
}
