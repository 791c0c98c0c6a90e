package cli

import (
	"github.com/spf13/pflag"

	"github.com/strata-gitops/strata/internal/source"
)

// addGitCredentialFlags registers the files a remote config repository's
// credentials are read from. The files are read again at every fetch, so a
// rotated Secret takes effect without a restart; their content never shows
// in a log, an error or the status.
func addGitCredentialFlags(f *pflag.FlagSet, c *source.Credentials) {
	f.StringVar(&c.Dir, "git-credentials-dir", "", "directory with the git credentials under the keys of a Flux git Secret: "+
		source.KeyIdentity+" and "+source.KeyKnownHosts+" (ssh), "+source.KeyUsername+" and "+source.KeyPassword+" or "+source.KeyBearerToken+
		" (https), "+source.KeyCA+"; the keys present at each fetch are used (a mounted Secret)")
	f.StringVar(&c.SSHKeyFile, "git-ssh-key-file", "", "private key (deploy key) for an ssh:// or git@host:path repository")
	f.StringVar(&c.KnownHostsFile, "git-known-hosts-file", "", "known_hosts with the ssh server's host key; an unknown or changed host key is refused")
	f.StringVar(&c.UsernameFile, "git-username-file", "", "file with the HTTPS basic auth username")
	f.StringVar(&c.PasswordFile, "git-password-file", "", "file with the HTTPS basic auth password (or token), or the passphrase of an encrypted ssh key")
	f.StringVar(&c.BearerTokenFile, "git-bearer-token-file", "", "file with a token sent as \"Authorization: Bearer\" over HTTPS")
	f.StringVar(&c.CAFile, "git-ca-file", "", "PEM bundle of the CA(s) that sign the git server's HTTPS certificate, trusted beside the system's")
}
