package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/strata-gitops/strata/internal/approval"
	"github.com/strata-gitops/strata/internal/config"
	"github.com/strata-gitops/strata/internal/labels"
	"github.com/strata-gitops/strata/internal/source"
)

type keygenOptions struct {
	out         string
	name        string
	force       bool
	fingerprint string
}

func newKeygenCommand() *cobra.Command {
	o := &keygenOptions{}
	cmd := &cobra.Command{
		Use:   "keygen",
		Short: "Create a reviewer's key pair for signing approvals",
		Long: `keygen writes NAME.key (an ECDSA P-256 private key, PEM PKCS#8, mode 0600)
and NAME.pub (its PEM public key) and prints the entry to add to
.strata/trust.yaml. Keep the .key file private and out of git; strata approve
signs with it.`,
		Example: `  strata keygen --out ~/.strata/alice
  strata keygen --out keys/bob --name bob`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.run(cmd) },
	}
	cmd.Flags().StringVar(&o.out, "out", "", "write OUT.key and OUT.pub")
	cmd.Flags().StringVar(&o.name, "name", "", "reviewer name for the trust.yaml entry (default: the base name of --out)")
	cmd.Flags().BoolVar(&o.force, "force", false, "replace existing key files")
	cmd.Flags().StringVar(&o.fingerprint, "fingerprint", "", "print the fingerprint of this public key file (for strata reconcile --trusted-keys) and exit")
	return cmd
}

func (o *keygenOptions) run(cmd *cobra.Command) error {
	if o.fingerprint != "" {
		data, err := os.ReadFile(o.fingerprint)
		if err != nil {
			return err
		}
		fp, err := approval.Fingerprint(data)
		if err != nil {
			return fmt.Errorf("%s: %w", o.fingerprint, err)
		}
		fmt.Fprintln(cmd.OutOrStdout(), fp)
		return nil
	}
	if o.out == "" {
		return fmt.Errorf("--out is required: keygen writes OUT.key and OUT.pub")
	}
	kf, err := approval.WriteKeyPair(o.out, o.force)
	if err != nil {
		return err
	}
	name := o.name
	if name == "" {
		name = filepath.Base(strings.TrimSuffix(kf.Private, ".key"))
	}
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "wrote %s (private: keep it secret, never commit it) and %s\n", kf.Private, kf.Public)
	fmt.Fprintf(out, "Add the reviewer to %s (environments: and maxSensitivity: limit what they may approve):\n\n", config.TrustFile)
	fmt.Fprint(out, approval.TrustSnippet(name, kf.PublicPEM))
	if fp, err := approval.Fingerprint(kf.PublicPEM); err == nil {
		fmt.Fprintf(out, "\nKey fingerprint, for the reconciler's root of trust (--trusted-keys): %s\n", fp)
	}
	return nil
}

type approveOptions struct {
	repo     string
	key      string
	reviewer string
	env      string
	expires  time.Duration
	push     bool
	remote   string
	force    bool
}

func newApproveCommand() *cobra.Command {
	o := &approveOptions{}
	cmd := &cobra.Command{
		Use:   "approve REV",
		Short: "Sign an approval of a revision's content for an environment",
		Long: `approve signs a statement "REVIEWER approves the tree of REV for ENV" (a DSSE
envelope made with sigstore) and stores it as a git note on the tree under
` + labels.ApprovalsNotesRef + `. The approval belongs to the content, not the
commit: a squash or merge with the same tree keeps it, any other change needs
a new one. Approving again replaces your earlier approval of that tree and
environment.

The reconciler counts approvals by distinct reviewers of .strata/trust.yaml as
it was at the last applied revision, as many as strata.yaml's approvals: asks
for the highest sensitivity the change touches.

The note is local until pushed: pass --push, or run
git push origin ` + labels.ApprovalsNotesRef + `.`,
		Example: `  strata approve HEAD --key ~/.strata/alice.key --env prod --push
  strata approve origin/feature --key alice.key --reviewer alice --env prod --expires 168h`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return o.run(cmd, args[0]) },
	}
	cmd.Flags().StringVar(&o.repo, "repo", ".", "local clone of the config repository")
	cmd.Flags().StringVar(&o.key, "key", "", "private key file written by strata keygen")
	cmd.Flags().StringVar(&o.reviewer, "reviewer", "", "your name in .strata/trust.yaml (default: the reviewer whose publicKey matches --key)")
	cmd.Flags().StringVar(&o.env, "env", "", "environment the approval is for (may be left out when strata.yaml has only one)")
	cmd.Flags().DurationVar(&o.expires, "expires", approval.DefaultValidity, "how long the approval stays valid")
	cmd.Flags().BoolVar(&o.push, "push", false, "push "+labels.ApprovalsNotesRef+" to --remote with git, merging approvals pushed by others")
	cmd.Flags().StringVar(&o.remote, "remote", "origin", "remote for --push")
	cmd.Flags().BoolVar(&o.force, "force", false, "sign even though --key is not --reviewer's publicKey in .strata/trust.yaml at REV (while rotating a key)")
	_ = cmd.MarkFlagRequired("key")
	return cmd
}

func (o *approveOptions) run(cmd *cobra.Command, rev string) error {
	ctx := cmd.Context()
	if source.IsRemote(o.repo) {
		return fmt.Errorf("approve writes a git note into a local clone; %s is a URL: clone it and pass --repo with the clone's path", o.repo)
	}
	if o.expires <= 0 {
		return fmt.Errorf("--expires %s: give a positive duration such as 720h", o.expires)
	}
	repo, err := source.Open(ctx, o.repo, source.OpenOptions{})
	if err != nil {
		return err
	}
	r, err := repo.Resolve(rev)
	if err != nil {
		return err
	}
	signer, err := approval.LoadSignerFile(o.key)
	if err != nil {
		return err
	}
	pubPEM, err := approval.PublicKeyPEM(signer)
	if err != nil {
		return err
	}
	warn := func(format string, args ...any) {
		fmt.Fprintf(cmd.ErrOrStderr(), "warning: "+format+"\n", args...)
	}

	// strata.yaml and the trust file of the revision pick and check the
	// environment and the reviewer. They are only a check: the reconciler
	// judges with the trust file of the last applied revision.
	snap, err := repo.Snapshot(r)
	if err != nil {
		return err
	}
	at := r.Short()
	env := o.env
	cfg, cfgErr := config.Load(snap.ReadFile)
	switch {
	case cfgErr == nil && env == "":
		names := cfg.EnvironmentNames()
		if len(names) != 1 {
			return fmt.Errorf("--env is required: %s at %s has environments %v", config.ConfigFile, at, names)
		}
		env = names[0]
	case cfgErr == nil:
		if _, err := cfg.Environment(env); err != nil {
			return err
		}
	case env == "":
		return fmt.Errorf("--env is required: %s at %s cannot be read to pick one: %w", config.ConfigFile, at, cfgErr)
	default:
		warn("%s at %s: %v", config.ConfigFile, at, cfgErr)
		cfg = nil
	}
	reviewer, err := o.checkReviewer(snap, cfg, at, env, pubPEM, warn)
	if err != nil {
		return err
	}

	now := time.Now()
	e, err := approval.Sign(signer, approval.Statement{
		Tree: r.Tree, Environment: env, Reviewer: reviewer,
		Time: now, Expires: now.Add(o.expires), Commit: r.Commit,
	})
	if err != nil {
		return err
	}
	store := approval.Store{}
	if err := store.Add(repo.Git(), r.Tree, env, e); err != nil {
		return fmt.Errorf("storing the approval in %s: %w", labels.ApprovalsNotesRef, err)
	}
	st, _ := e.Statement()
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "approved tree %s of %s %q for %s as %s, valid until %s\n",
		r.Tree[:12], r.Short(), r.Subject(), env, reviewer, st.ExpiresAt().UTC().Format(time.RFC3339))
	// What the reconciler's gate will say, by the same rule (approval.Chain).
	// The reconciler's pinned keys are not known here: the preview pins the
	// reviewers of this revision's trust file.
	var pubs [][]byte
	if t, err := config.LoadTrust(snap.ReadFile, cfg); err == nil {
		for _, rv := range t.Reviewers {
			pubs = append(pubs, []byte(rv.PublicKey))
		}
	}
	pin, _ := approval.PinKeys(pubs...)
	if v, err := (&approval.Chain{Repo: repo, Env: env, Pin: pin}).Decide(r.Commit, now); err != nil {
		warn("cannot tell what the gate will decide: %v", err)
	} else if v.Base != "" {
		fmt.Fprintf(out, "gate, judged from the approved revision %s: %s\n", v.Base[:12], v.Message)
	} else {
		fmt.Fprintf(out, "gate (no approved revision before this one; assuming the reconciler pins this trust file's reviewers): %s\n", v.Message)
	}
	if !o.push {
		fmt.Fprintf(out, "stored in %s; share it: git push %s %s (or approve with --push)\n", labels.ApprovalsNotesRef, o.remote, labels.ApprovalsNotesRef)
		return nil
	}
	dir := repo.WorkDir
	if dir == "" {
		dir = o.repo
	}
	if err := store.Push(ctx, dir, o.remote); err != nil {
		return fmt.Errorf("the approval is stored locally but not pushed: %w", err)
	}
	fmt.Fprintf(out, "pushed %s to %s\n", labels.ApprovalsNotesRef, o.remote)
	return nil
}

// checkReviewer returns --reviewer, or the reviewer of the trust file at the
// revision whose key is the signing key, and warns about an approval that
// the gate would not count under that trust file.
func (o *approveOptions) checkReviewer(snap *source.Snapshot, cfg *config.Config, at, env string, pubPEM []byte, warn func(string, ...any)) (string, error) {
	trust, err := config.LoadTrust(snap.ReadFile, cfg)
	if err != nil {
		if o.reviewer == "" {
			return "", fmt.Errorf("--reviewer is required: %s at %s cannot be read to find your key: %w", config.TrustFile, at, err)
		}
		warn("%s at %s: %v", config.TrustFile, at, err)
		return o.reviewer, nil
	}
	if o.reviewer == "" {
		for _, r := range trust.Reviewers {
			if approval.SameKey(pubPEM, []byte(r.PublicKey)) {
				return r.Name, nil
			}
		}
		return "", fmt.Errorf("--reviewer is required: no reviewer in %s at %s has the key %s; add yours (strata keygen prints the entry) or pass --reviewer", config.TrustFile, at, o.key)
	}
	r, ok := trust.Reviewer(o.reviewer)
	switch {
	case !ok:
		warn("%s is not a reviewer in %s at %s: the gate counts this approval only once a trust file that lists %s has been applied", o.reviewer, config.TrustFile, at, o.reviewer)
	case !approval.SameKey(pubPEM, []byte(r.PublicKey)) && !o.force:
		// Signing would replace the reviewer's approval with one the gate rejects.
		return "", fmt.Errorf("%s is not %s's publicKey in %s at %s: the gate would reject this approval as forged; use your own key, or pass --force while rotating your key", o.key, o.reviewer, config.TrustFile, at)
	case !approval.SameKey(pubPEM, []byte(r.PublicKey)):
		warn("%s is not %s's publicKey in %s at %s: the approval counts only where the trust file lists this key", o.key, o.reviewer, config.TrustFile, at)
	case !r.MayApprove(env, config.Public):
		warn("%s may not approve environment %s (%s at %s allows %s): the gate will not count this approval", o.reviewer, env, config.TrustFile, at, strings.Join(r.Environments, ", "))
	}
	return o.reviewer, nil
}
