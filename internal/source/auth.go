package source

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Credentials name the files that hold what a remote repository asks for.
// They are read again at every fetch, so that a rotated Secret takes effect
// without a restart, and their content never reaches a URL, log or error.
type Credentials struct {
	// Dir holds files named like the keys of Flux's GitRepository secretRef
	// (identity, known_hosts, username, password, bearerToken, ca.crt): a
	// mounted Secret. Those present at a fetch are used, so a Secret that
	// switches from a password to a token needs no new flags.
	Dir string
	// SSHKeyFile is the private key (deploy key) for an ssh URL.
	SSHKeyFile string
	// KnownHostsFile lists the ssh server's host keys; an unknown or
	// different host key is refused.
	KnownHostsFile string
	// UsernameFile and PasswordFile are HTTPS basic auth; with an ssh URL,
	// PasswordFile is the passphrase of an encrypted key (as in Flux).
	UsernameFile, PasswordFile string
	// BearerTokenFile is sent as "Authorization: Bearer" over HTTPS.
	BearerTokenFile string
	// CAFile holds the PEM certificates that sign the HTTPS server's
	// certificate, trusted beside the system's.
	CAFile string
}

// The keys of a credentials Secret, as Flux's GitRepository secretRef names
// them, so that one Secret serves both.
const (
	KeyIdentity    = "identity"
	KeyKnownHosts  = "known_hosts"
	KeyUsername    = "username"
	KeyPassword    = "password"
	KeyBearerToken = "bearerToken"
	KeyCA          = "ca.crt"
)

// sshTimeout bounds the ssh handshake: go-git dials without the fetch's
// context, and a silent server would otherwise hold the loop.
const sshTimeout = 30 * time.Second

// IsZero reports whether no credentials are configured.
func (c Credentials) IsZero() bool { return c == Credentials{} }

// files returns the file of each key: the explicit one, else Dir/<key> when
// that exists now.
func (c Credentials) files() (map[string]string, error) {
	explicit := map[string]string{
		KeyIdentity: c.SSHKeyFile, KeyKnownHosts: c.KnownHostsFile, KeyUsername: c.UsernameFile,
		KeyPassword: c.PasswordFile, KeyBearerToken: c.BearerTokenFile, KeyCA: c.CAFile,
	}
	out := map[string]string{}
	for key, path := range explicit {
		if path != "" {
			out[key] = path
			continue
		}
		if c.Dir == "" {
			continue
		}
		p := filepath.Join(c.Dir, key)
		switch _, err := os.Stat(p); {
		case err == nil:
			out[key] = p
		case !errors.Is(err, os.ErrNotExist):
			return nil, fmt.Errorf("git credentials: %w", err)
		}
	}
	return out, nil
}

// readSecret reads one credentials file, without its trailing newline.
func readSecret(key, path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("git credentials: reading %s (%s): %w", key, path, err)
	}
	if key != KeyIdentity && key != KeyKnownHosts && key != KeyCA {
		data = []byte(strings.TrimRight(string(data), "\r\n"))
	}
	if len(data) == 0 {
		return nil, fmt.Errorf("git credentials: %s (%s) is empty: put the %s in it", key, path, key)
	}
	return data, nil
}

// remoteURL is a remote location split into what may be shown and what
// must not: the URL without a password (and for http(s) without any user,
// which may be a token) and the credentials that were in it.
type remoteURL struct {
	clean    string // safe to log and to store in the mirror's config
	scheme   string // ssh, http or https
	user     string // ssh user
	hostPort string // ssh host:port, as known_hosts sees it
	urlAuth  transport.AuthMethod
}

// parseRemote splits location. Errors never quote the location: it may
// hold a token.
func parseRemote(location string) (*remoteURL, error) {
	if strings.HasPrefix(location, "git@") && !strings.Contains(location, "://") {
		// scp-like git@host:path: no password can be in it.
		hostPath := strings.TrimPrefix(location, "git@")
		host, _, ok := strings.Cut(hostPath, ":")
		if !ok || host == "" {
			return nil, errors.New("the repository address git@HOST:PATH has no HOST:PATH")
		}
		return &remoteURL{clean: location, scheme: "ssh", user: "git", hostPort: net.JoinHostPort(host, "22")}, nil
	}
	u, err := url.Parse(location)
	if err != nil {
		return nil, errors.New("the repository URL does not parse (not shown: it may hold a secret); check --repo")
	}
	r := &remoteURL{scheme: u.Scheme}
	switch u.Scheme {
	case "ssh":
		if _, has := u.User.Password(); has {
			return nil, fmt.Errorf("the ssh URL of %s holds a password: strata authenticates over ssh with a deploy key only (--git-ssh-key-file); remove the password from the URL", u.Host)
		}
		r.user = u.User.Username()
		if r.user == "" {
			r.user = gitssh.DefaultUsername
		}
		port := u.Port()
		if port == "" {
			port = strconv.Itoa(gitssh.DefaultPort)
		}
		r.hostPort = net.JoinHostPort(u.Hostname(), port)
		u.User = url.User(r.user)
	case "http", "https":
		if u.User != nil {
			pass, _ := u.User.Password()
			r.urlAuth = &githttp.BasicAuth{Username: u.User.Username(), Password: pass}
			u.User = nil
		}
	default:
		return nil, fmt.Errorf("unsupported repository URL scheme %q: use https://, ssh:// or git@host:path", u.Scheme)
	}
	r.clean = u.String()
	return r, nil
}

// access is what one fetch authenticates with.
type access struct {
	auth transport.AuthMethod
	ca   []byte
}

// load reads the credentials for a fetch from u. The files are read every
// time: a rotated Secret is used at the next fetch.
func (c Credentials) load(u *remoteURL) (access, error) {
	files, err := c.files()
	if err != nil {
		return access{}, err
	}
	if u.scheme == "ssh" {
		return c.loadSSH(u, files)
	}
	return loadHTTP(u, files)
}

func (c Credentials) loadSSH(u *remoteURL, files map[string]string) (access, error) {
	for _, key := range []string{KeyUsername, KeyBearerToken, KeyCA} {
		if files[key] != "" {
			return access{}, fmt.Errorf("git credentials: %s (%s) is for HTTPS but the repository URL is ssh: remove it, or use the https URL", key, files[key])
		}
	}
	keyFile := files[KeyIdentity]
	if keyFile == "" {
		where := "--git-ssh-key-file"
		if c.Dir != "" {
			where = "the key " + KeyIdentity + " of the credentials Secret (" + c.Dir + ")"
		}
		return access{}, fmt.Errorf("git credentials: an ssh repository needs a deploy key: put its private key in %s", where)
	}
	pem, err := readSecret(KeyIdentity, keyFile)
	if err != nil {
		return access{}, err
	}
	signer, err := ssh.ParsePrivateKey(pem)
	var missing *ssh.PassphraseMissingError
	if errors.As(err, &missing) {
		if files[KeyPassword] == "" {
			return access{}, fmt.Errorf("git credentials: the ssh key %s is encrypted: put its passphrase in %s (--git-password-file)", keyFile, KeyPassword)
		}
		pass, perr := readSecret(KeyPassword, files[KeyPassword])
		if perr != nil {
			return access{}, perr
		}
		signer, err = ssh.ParsePrivateKeyWithPassphrase(pem, pass)
	}
	if err != nil {
		return access{}, fmt.Errorf("git credentials: the ssh key %s does not parse (%v): it must be a PEM or OpenSSH private key", keyFile, err)
	}
	khFile := files[KeyKnownHosts]
	if khFile == "" {
		return access{}, fmt.Errorf("git credentials: an ssh repository needs known_hosts with the server's host key (--git-known-hosts-file, or the key %s of the credentials Secret): strata never trusts an unknown host (ssh-keyscan -p PORT HOST prints the line; check its fingerprint with the server's operator)", KeyKnownHosts)
	}
	if _, err := readSecret(KeyKnownHosts, khFile); err != nil {
		return access{}, err
	}
	db, err := gitssh.NewKnownHostsDb(khFile)
	if err != nil {
		return access{}, fmt.Errorf("git credentials: known_hosts %s: %w", khFile, err)
	}
	pk := &gitssh.PublicKeys{User: u.user, Signer: signer}
	pk.HostKeyCallback = checkHostKey(db.HostKeyCallback(), khFile)
	pk.HostKeyAlgorithms = hostKeyAlgorithms(db.HostKeyAlgorithms(u.hostPort))
	return access{auth: timedSSH{pk}}, nil
}

// hostKeyAlgorithms prefers the algorithms of the keys known_hosts lists
// for the host, so that a server with several host keys shows a listed one,
// then offers the others, so that a server whose key type changed shows its
// new key and is refused with a clear message rather than "no common
// algorithm".
func hostKeyAlgorithms(known []string) []string {
	if len(known) == 0 {
		return nil // unknown host: the defaults, and the callback refuses
	}
	out := slices.Clone(known)
	for _, a := range ssh.SupportedAlgorithms().HostKeys {
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

// timedSSH is a deploy key whose handshake times out.
type timedSSH struct{ *gitssh.PublicKeys }

func (a timedSSH) ClientConfig() (*ssh.ClientConfig, error) {
	cfg, err := a.PublicKeys.ClientConfig()
	if err == nil {
		cfg.Timeout = sshTimeout
	}
	return cfg, err
}

// checkHostKey turns knownhosts' refusals into errors that say what to do.
func checkHostKey(cb ssh.HostKeyCallback, file string) ssh.HostKeyCallback {
	return func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		err := cb(hostname, remote, key)
		var ke *knownhosts.KeyError
		if err == nil || !errors.As(err, &ke) {
			return err
		}
		line := knownhosts.Line([]string{knownhosts.Normalize(hostname)}, key)
		if len(ke.Want) == 0 {
			return fmt.Errorf("host %s is not in known_hosts %s, refusing to connect: check that its key fingerprint %s is the server's (ask its operator), then add this line to known_hosts: %s",
				hostname, file, ssh.FingerprintSHA256(key), line)
		}
		return fmt.Errorf("host %s presented key %s, which is not the one known_hosts %s lists for it (line %d), refusing to connect: someone may be in the middle; if the server's key was rotated, replace that line with: %s",
			hostname, ssh.FingerprintSHA256(key), file, ke.Want[0].Line, line)
	}
}

func loadHTTP(u *remoteURL, files map[string]string) (access, error) {
	for _, key := range []string{KeyIdentity, KeyKnownHosts} {
		if files[key] != "" {
			return access{}, fmt.Errorf("git credentials: %s (%s) is for ssh but the repository URL is %s: remove it, or use the ssh URL", key, files[key], u.scheme)
		}
	}
	var a access
	if f := files[KeyCA]; f != "" {
		ca, err := readSecret(KeyCA, f)
		if err != nil {
			return access{}, err
		}
		if !x509.NewCertPool().AppendCertsFromPEM(ca) {
			return access{}, fmt.Errorf("git credentials: %s (%s) holds no PEM certificate: put the CA that signs the git server's certificate in it", KeyCA, f)
		}
		a.ca = ca
	}
	user, pass, token := files[KeyUsername], files[KeyPassword], files[KeyBearerToken]
	switch {
	case token != "" && (user != "" || pass != ""):
		return access{}, errors.New("git credentials: both a bearer token and a username/password are given: keep one")
	case (user == "") != (pass == "") && token == "":
		return access{}, errors.New("git credentials: basic auth needs both username and password (--git-username-file and --git-password-file)")
	case token == "" && user == "":
		return a, nil
	case u.scheme != "https":
		return access{}, errors.New("git credentials: refusing to send them over plain http, where anyone on the path can read them: use the https URL")
	case token != "":
		t, err := readSecret(KeyBearerToken, token)
		if err != nil {
			return access{}, err
		}
		a.auth = &githttp.TokenAuth{Token: string(t)}
	default:
		name, err := readSecret(KeyUsername, user)
		if err != nil {
			return access{}, err
		}
		p, err := readSecret(KeyPassword, pass)
		if err != nil {
			return access{}, err
		}
		a.auth = &githttp.BasicAuth{Username: string(name), Password: string(p)}
	}
	return a, nil
}

// remoteOf checks location against the credentials given with it.
func remoteOf(location string, opts OpenOptions) (*remoteURL, error) {
	u, err := parseRemote(location)
	if err != nil {
		return nil, err
	}
	if u.urlAuth != nil {
		c := opts.Credentials
		c.CAFile = "" // a CA bundle goes with any credentials
		switch {
		case !c.IsZero():
			return nil, fmt.Errorf("%s: credentials are both in the repository URL and in files: remove them from the URL", u.clean)
		case u.scheme != "https":
			return nil, fmt.Errorf("%s: the URL holds credentials but is plain http, where anyone on the path can read them: use https, with --git-username-file and --git-password-file", u.clean)
		}
	}
	if opts.Auth != nil && !opts.Credentials.IsZero() {
		return nil, errors.New("both an auth method and credential files are given: pass one")
	}
	return u, nil
}

// loadCredentials refreshes auth and ca from the credential files, if any.
// The caller holds r.mu.
func (r *Repository) loadCredentials() error {
	if r.creds.IsZero() {
		return nil
	}
	a, err := r.creds.load(r.url)
	if err != nil {
		return err
	}
	r.auth, r.ca = a.auth, a.ca
	if r.auth == nil {
		r.auth = r.baseAuth
	}
	return nil
}

// pointOrigin makes a reused mirror fetch from url: a mirror made from a
// URL with a token in it must not keep the token in its config.
func pointOrigin(repo *git.Repository, url string) error {
	cfg, err := repo.Config()
	if err != nil {
		return fmt.Errorf("reading the mirror's config: %w", err)
	}
	origin, ok := cfg.Remotes["origin"]
	if !ok || (len(origin.URLs) == 1 && origin.URLs[0] == url) {
		return nil
	}
	origin.URLs = []string{url}
	if err := repo.SetConfig(cfg); err != nil {
		return fmt.Errorf("pointing the mirror at %s: %w", url, err)
	}
	return nil
}

// explainRefusal adds what to do to a server's refusal of the credentials.
func explainRefusal(err error, u *remoteURL) error {
	switch {
	case err == nil || u == nil:
		return err
	case u.scheme == "ssh" && strings.Contains(err.Error(), "ssh: unable to authenticate"):
		return fmt.Errorf("%w: the server refused the deploy key; register its public key (ssh-keygen -y -f KEY) as a read-only deploy key of the repository, or check that the identity file is the rotated one", err)
	case errors.Is(err, transport.ErrAuthenticationRequired), errors.Is(err, transport.ErrAuthorizationFailed):
		return fmt.Errorf("%w: the server refused the credentials; check the username and password or bearer token files (a rotated Secret takes effect at the next fetch)", err)
	}
	return err
}
