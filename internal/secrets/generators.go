package secrets

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/getsops/sops/v3/cmd/sops/formats"
	"sigs.k8s.io/kustomize/api/konfig"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/yaml"
)

// GeneratorFile is one use of a file by a kustomize secretGenerator: what
// `strata secret encrypt` and `rotate` need to encrypt it in the format the
// reconciler decrypts it in, for the tiers of the Secret it ends up in.
type GeneratorFile struct {
	// Path is the file, Kustomization the kustomization file naming it.
	Path, Kustomization string
	// Env: read by envs: (dotenv lines); otherwise by files: under Key.
	Env bool
	Key string
	// Namespace and Labels the generated Secret gets from the generator and
	// its kustomization (an overlay may change them further).
	Namespace string
	Labels    map[string]string
}

// Format is the SOPS format the file must be encrypted in: dotenv for
// envs:, else as the sops CLI picks it from the Secret key's name (the
// reconciler decrypts a files: value by its key).
func (g GeneratorFile) Format() formats.Format {
	if g.Env {
		return formats.Dotenv
	}
	return formats.FormatForPath(g.Key)
}

// GeneratorFiles finds every secretGenerator of the kustomizations under
// root and returns the files they read, by absolute path.
func GeneratorFiles(root string) (map[string][]GeneratorFile, error) {
	out := map[string][]GeneratorFile{}
	names := konfig.RecognizedKustomizationFileNames()
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == ".git" {
				return filepath.SkipDir
			}
			return nil
		}
		if !slices.Contains(names, d.Name()) {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		var k types.Kustomization
		if err := yaml.Unmarshal(b, &k); err != nil {
			return fmt.Errorf("%s: %v", p, err)
		}
		for _, g := range k.SecretGenerator {
			for _, use := range generatorUses(p, &k, g) {
				out[use.Path] = append(out[use.Path], use)
			}
		}
		return nil
	})
	return out, err
}

func generatorUses(kfile string, k *types.Kustomization, g types.SecretArgs) []GeneratorFile {
	base := GeneratorFile{Kustomization: kfile, Namespace: g.Namespace, Labels: map[string]string{}}
	if base.Namespace == "" {
		base.Namespace = k.Namespace
	}
	for key, v := range k.CommonLabels {
		base.Labels[key] = v
	}
	for _, l := range k.Labels {
		for key, v := range l.Pairs {
			base.Labels[key] = v
		}
	}
	for _, o := range []*types.GeneratorOptions{k.GeneratorOptions, g.Options} {
		if o != nil {
			for key, v := range o.Labels {
				base.Labels[key] = v
			}
		}
	}
	dir := filepath.Dir(kfile)
	var out []GeneratorFile
	envs := g.EnvSources
	if g.EnvSource != "" {
		envs = append(envs, g.EnvSource)
	}
	for _, e := range envs {
		u := base
		u.Path, u.Env = filepath.Join(dir, e), true
		out = append(out, u)
	}
	for _, f := range g.FileSources {
		// files: [path] or [key=path], as kustomize reads them.
		key, path, ok := strings.Cut(f, "=")
		if !ok {
			key, path = filepath.Base(f), f
		}
		u := base
		u.Path, u.Key = filepath.Join(dir, path), key
		out = append(out, u)
	}
	return out
}
