package cli

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/getsops/sops/v3/cmd/sops/formats"
	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/strata-gitops/strata/internal/config"
	"github.com/strata-gitops/strata/internal/labels"
	"github.com/strata-gitops/strata/internal/secrets"
)

func newSecretCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "secret",
		Short: "Encrypt Secrets for the tiers their sensitivity allows (SOPS + age)",
		Long: `Secrets live in git encrypted with SOPS to the age recipients (one per tier,
secrets.recipients in strata.yaml) of exactly the tiers their sensitivity
allows. Each reconciler holds only the private keys of the tiers it serves
(--age-key-dir) and decrypts right before apply.`,
	}
	cmd.AddCommand(newSecretKeygenCommand(), newSecretEncryptCommand(), newSecretRotateCommand())
	return cmd
}

type secretFlags struct {
	repo        string
	sensitivity string
}

func (f *secretFlags) config() (*config.Config, error) {
	return config.Load(func(rel string) ([]byte, error) { return os.ReadFile(filepath.Join(f.repo, rel)) })
}

func newSecretKeygenCommand() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "keygen --dir DIR",
		Short: "Make one age key per tier (DIR/<tier>.agekey) and print the recipients for strata.yaml",
		Long: `keygen writes DIR/<tier>.agekey for every tier (mode 0600; existing files are
kept) and prints the secrets: block for strata.yaml. Give each reconciler only
the files of the tiers it serves (--age-key-dir, or a Secret mounted there).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" {
				return fmt.Errorf("--dir is required: where to write the <tier>.agekey files")
			}
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return err
			}
			var b strings.Builder
			b.WriteString("secrets:\n  recipients:\n")
			for _, t := range config.KnownTiers {
				p := filepath.Join(dir, string(t)+secrets.KeyFileSuffix)
				if _, err := os.Stat(p); err != nil {
					id, _, err := secrets.GenerateKey()
					if err != nil {
						return err
					}
					if err := os.WriteFile(p, id, 0o600); err != nil {
						return fmt.Errorf("writing %s: %w", p, err)
					}
				}
				ids, err := secrets.KeyDir{Dir: dir}.ForTier(string(t))
				if err != nil {
					return err
				}
				fmt.Fprintf(&b, "    %s: %s\n", t, ids.Recipients[0])
			}
			_, err := fmt.Fprint(cmd.OutOrStdout(), b.String())
			return err
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "directory for the <tier>.agekey files")
	return cmd
}

func newSecretEncryptCommand() *cobra.Command {
	f := &secretFlags{}
	cmd := &cobra.Command{
		Use:   "encrypt FILE...",
		Short: "Encrypt a Secret manifest in place for exactly the tiers its sensitivity allows",
		Long: `encrypt reads strata.yaml (--repo) and the Secret's sensitivity (its label,
raised by its Namespace's label found in the repository) and encrypts the
file in place in SOPS format to the recipients of the allowed tiers: only
data and stringData are encrypted, so kustomize and placement still read the
rest. A file a kustomize secretGenerator reads is encrypted whole: in SOPS'
dotenv format when the generator reads it with envs:, else in the format the
sops CLI picks from its Secret key's name (files:); its sensitivity is the
higher of the generator's strata.dev/sensitivity label (options.labels,
labels, commonLabels) and its Namespace's, or --sensitivity. The sops CLI
decrypts the result.`,
		Example: `  strata secret encrypt overlays/base/ledger/db-secret.yaml
  strata secret encrypt overlays/base/ledger/db.env      # read by a secretGenerator's envs:
  strata secret encrypt --sensitivity confidential overlays/base/fraud/api-key.txt`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := f.config()
			if err != nil {
				return err
			}
			gens, err := secrets.GeneratorFiles(f.repo)
			if err != nil {
				return fmt.Errorf("looking for secretGenerators: %w", err)
			}
			for _, file := range args {
				plain, err := os.ReadFile(file)
				if err != nil {
					return err
				}
				out, tiers, err := encryptFor(cfg, f, file, plain, usesOf(gens, file))
				if err != nil {
					return fmt.Errorf("%s: %w", file, err)
				}
				if err := writeInPlace(file, out); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: encrypted for %s\n", file, config.JoinTiers(tiers))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&f.repo, "repo", ".", "the config repository (its strata.yaml and Namespaces)")
	cmd.Flags().StringVar(&f.sensitivity, "sensitivity", "", "sensitivity of a file that is no Secret manifest (or to raise a manifest's)")
	return cmd
}

// encryptFor encrypts plain (the content of file) for the tiers its
// sensitivity allows; uses are the secretGenerators reading file.
func encryptFor(cfg *config.Config, f *secretFlags, file string, plain []byte, uses []secrets.GeneratorFile) ([]byte, []config.Tier, error) {
	var obj map[string]any
	manifest := len(uses) == 0 && yaml.Unmarshal(plain, &obj) == nil && secrets.IsSecret(obj)
	sens := config.Sensitivity(f.sensitivity)
	if manifest {
		s, err := manifestSensitivity(f.repo, obj)
		if err != nil {
			return nil, nil, err
		}
		sens = config.Max(sens, s)
	}
	for _, u := range uses {
		s, err := generatorSensitivity(f.repo, u)
		if err != nil {
			return nil, nil, err
		}
		sens = config.Max(sens, s)
	}
	if sens == "" {
		if len(uses) > 0 {
			return nil, nil, fmt.Errorf("no sensitivity: label the secretGenerator in %s %s (options.labels) or its Namespace %q, or pass --sensitivity", uses[0].Kustomization, labels.Sensitivity, uses[0].Namespace)
		}
		return nil, nil, fmt.Errorf("no sensitivity: label the Secret (or its Namespace) %s, or pass --sensitivity", labels.Sensitivity)
	}
	if !sens.Valid() {
		return nil, nil, fmt.Errorf("unknown sensitivity %q: allowed values are %s", sens, config.JoinSensitivities(config.Sensitivities))
	}
	rs, tiers, err := secrets.AllowedRecipients(cfg, sens)
	if err != nil {
		return nil, nil, err
	}
	var out []byte
	if manifest {
		out, err = secrets.Encrypt(plain, rs)
	} else {
		format, ferr := generatorFormat(file, uses)
		if ferr != nil {
			return nil, nil, ferr
		}
		out, err = secrets.EncryptFile(plain, format, rs)
	}
	return out, tiers, err
}

// manifestSensitivity is the higher of the Secret's label and its
// Namespace's, looked up among the repository's manifests.
func manifestSensitivity(repo string, obj map[string]any) (config.Sensitivity, error) {
	md, _ := obj["metadata"].(map[string]any)
	own := labelOf(md)
	ns, _ := md["namespace"].(string)
	floor := config.Sensitivity("")
	if ns != "" {
		floor = namespaceSensitivity(repo, ns)
	}
	for _, s := range []config.Sensitivity{own, floor} {
		if s != "" && !s.Valid() {
			return "", fmt.Errorf("unknown sensitivity %q: allowed values are %s", s, config.JoinSensitivities(config.Sensitivities))
		}
	}
	return config.Max(own, floor), nil
}

func labelOf(md map[string]any) config.Sensitivity {
	l, _ := md["labels"].(map[string]any)
	s, _ := l[labels.Sensitivity].(string)
	return config.Sensitivity(s)
}

// namespaceSensitivity finds the Namespace ns among the repository's YAML
// files and returns its label ("" when not found).
func namespaceSensitivity(repo, ns string) config.Sensitivity {
	var found config.Sensitivity
	_ = filepath.WalkDir(repo, func(p string, d fs.DirEntry, err error) error {
		if err != nil || found != "" {
			return nil
		}
		if d.IsDir() {
			if d.Name() == ".git" {
				return filepath.SkipDir
			}
			return nil
		}
		if ext := filepath.Ext(p); ext != ".yaml" && ext != ".yml" {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(b, []byte("Namespace")) {
			return nil
		}
		for _, doc := range strings.Split(string(b), "\n---") {
			var m map[string]any
			if yaml.Unmarshal([]byte(doc), &m) != nil || m["kind"] != "Namespace" {
				continue
			}
			if md, _ := m["metadata"].(map[string]any); md["name"] == ns {
				found = labelOf(md)
			}
		}
		return nil
	})
	return found
}

// writeInPlace replaces file atomically, keeping its mode.
func writeInPlace(file string, b []byte) error {
	st, err := os.Stat(file)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(file), ".strata-secret-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(st.Mode().Perm()); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), file)
}

func newSecretRotateCommand() *cobra.Command {
	f := &secretFlags{}
	var keyDir string
	cmd := &cobra.Command{
		Use:   "rotate --age-key-dir DIR",
		Short: "Re-encrypt every encrypted Secret of the repository for the recipients strata.yaml names now",
		Long: `rotate finds every SOPS-encrypted Secret manifest of the repository, decrypts
it in memory with the keys in --age-key-dir (the keys it is encrypted to now)
and encrypts it again, in place, for the recipients of the tiers its
sensitivity allows under the current secrets.recipients. Files a kustomize
secretGenerator reads (files: and envs:) are re-encrypted too, in their
format (dotenv for envs:), for the sensitivity of the generator (its
strata.dev/sensitivity label or its Namespace's). Rotate a tier's key: put
the new recipient in strata.yaml, run rotate with the old keys, commit, then
give the reconcilers the new key. Other encrypted files are listed, not
rotated.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.config()
			if err != nil {
				return err
			}
			ids, err := secrets.KeyDir{Dir: keyDir}.All()
			if err != nil {
				return err
			}
			srcs, err := repoSources(f.repo)
			if err != nil {
				return err
			}
			if len(srcs) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "no encrypted Secrets found")
				return nil
			}
			gens, err := secrets.GeneratorFiles(f.repo)
			if err != nil {
				return fmt.Errorf("looking for secretGenerators: %w", err)
			}
			for _, file := range srcs {
				if err := rotateFile(cmd, cfg, f, file, ids, usesOf(gens, file)); err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&f.repo, "repo", ".", "the config repository (its strata.yaml and Namespaces)")
	cmd.Flags().StringVar(&keyDir, "age-key-dir", "", "directory with the current private keys, <tier>.agekey each")
	return cmd
}

// repoSources lists the files of repo holding SOPS documents, sorted.
func repoSources(repo string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(repo, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == ".git" {
				return filepath.SkipDir
			}
			return nil
		}
		b, err := os.ReadFile(p)
		if err == nil && bytes.Contains(b, []byte("ENC[AES256_GCM,")) {
			out = append(out, p)
		}
		return nil
	})
	slices.Sort(out)
	return out, err
}

func rotateFile(cmd *cobra.Command, cfg *config.Config, f *secretFlags, file string, ids secrets.Identities, uses []secrets.GeneratorFile) error {
	doc, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var obj map[string]any
	format := formats.Yaml
	switch {
	case len(uses) > 0:
		if format, err = generatorFormat(file, uses); err != nil {
			return err
		}
	case yaml.Unmarshal(doc, &obj) != nil || !secrets.IsSecret(obj) || !secrets.IsEncryptedManifest(obj):
		fmt.Fprintf(cmd.OutOrStdout(), "%s: skipped (no single encrypted Secret manifest, read by no secretGenerator): decrypt it and run strata secret encrypt --sensitivity S %s\n", file, file)
		return nil
	}
	plain, err := secrets.Decrypt(file, doc, format, ids)
	if err != nil {
		return err
	}
	out, tiers, err := encryptFor(cfg, f, file, plain, uses)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	if err := writeInPlace(file, out); err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%s: re-encrypted for %s\n", file, config.JoinTiers(tiers))
	return nil
}
