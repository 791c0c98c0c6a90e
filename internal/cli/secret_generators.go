package cli

import (
	"fmt"
	"path/filepath"

	"github.com/getsops/sops/v3/cmd/sops/formats"

	"github.com/strata-gitops/strata/internal/config"
	"github.com/strata-gitops/strata/internal/labels"
	"github.com/strata-gitops/strata/internal/secrets"
)

// usesOf returns the secretGenerators reading file (gens by absolute path).
func usesOf(gens map[string][]secrets.GeneratorFile, file string) []secrets.GeneratorFile {
	abs, err := filepath.Abs(file)
	if err != nil {
		return nil
	}
	return gens[abs]
}

// generatorSensitivity is the higher of a generator's own label and its
// Namespace's, looked up among the repository's manifests.
func generatorSensitivity(repo string, u secrets.GeneratorFile) (config.Sensitivity, error) {
	own := config.Sensitivity(u.Labels[labels.Sensitivity])
	floor := config.Sensitivity("")
	if u.Namespace != "" {
		floor = namespaceSensitivity(repo, u.Namespace)
	}
	for _, s := range []config.Sensitivity{own, floor} {
		if s != "" && !s.Valid() {
			return "", fmt.Errorf("secretGenerator in %s: unknown sensitivity %q: allowed values are %s", u.Kustomization, s, config.JoinSensitivities(config.Sensitivities))
		}
	}
	return config.Max(own, floor), nil
}

// generatorFormat is the SOPS format file is read in: dotenv when a
// generator reads it with envs:, else by the name of its Secret key; for a
// file no generator reads, by its own name (as the sops CLI picks it).
func generatorFormat(file string, uses []secrets.GeneratorFile) (formats.Format, error) {
	if len(uses) == 0 {
		return formats.FormatForPath(file), nil
	}
	f := uses[0].Format()
	for _, u := range uses[1:] {
		if u.Format() != f {
			return 0, fmt.Errorf("%s is read by secretGenerators in %s and %s in different formats (envs: is dotenv, files: follows the key's name): read it one way", file, uses[0].Kustomization, u.Kustomization)
		}
	}
	return f, nil
}
