package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"
)

// ValidationError lists every problem found in one file.
type ValidationError struct {
	File   string
	Errors field.ErrorList
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s is invalid (%d problem", e.File, len(e.Errors))
	if len(e.Errors) != 1 {
		b.WriteString("s")
	}
	b.WriteString("):")
	for _, fe := range e.Errors {
		fmt.Fprintf(&b, "\n  %s: %s", e.File, fe.Error())
	}
	return b.String()
}

// ReadFileFunc reads a file of the config repository by its slash path.
type ReadFileFunc func(path string) ([]byte, error)

// Load reads, defaults and validates strata.yaml through read.
func Load(read ReadFileFunc) (*Config, error) {
	data, err := read(ConfigFile)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || os.IsNotExist(err) {
			return nil, fmt.Errorf("%s not found at the root of the config repository: create it (apiVersion %s, kind %s) or point --repo at the right repository", ConfigFile, APIVersion, ConfigKind)
		}
		return nil, fmt.Errorf("reading %s: %w", ConfigFile, err)
	}
	return Parse(ConfigFile, data)
}

// Parse decodes strict YAML into a Config, applies defaults and validates it.
// file names the source in errors.
func Parse(file string, data []byte) (*Config, error) {
	var c Config
	if err := yaml.UnmarshalStrict(data, &c); err != nil {
		return nil, fmt.Errorf("%s: %v: fix the YAML (unknown fields are rejected so that a typo never silently changes placement)", file, err)
	}
	c.SetDefaults()
	if errs := c.Validate(); len(errs) > 0 {
		return nil, &ValidationError{File: file, Errors: errs}
	}
	return &c, nil
}

// LoadTrust reads and validates .strata/trust.yaml through read, checking
// reviewers' environments against cfg. A missing trust file is an empty trust
// (no reviewer can approve anything).
func LoadTrust(read ReadFileFunc, cfg *Config) (*Trust, error) {
	data, err := read(TrustFile)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || os.IsNotExist(err) {
			return &Trust{APIVersion: APIVersion, Kind: TrustKind}, nil
		}
		return nil, fmt.Errorf("reading %s: %w", TrustFile, err)
	}
	return ParseTrust(TrustFile, data, cfg)
}

// ParseTrust decodes and validates a trust file.
func ParseTrust(file string, data []byte, cfg *Config) (*Trust, error) {
	var t Trust
	if err := yaml.UnmarshalStrict(data, &t); err != nil {
		return nil, fmt.Errorf("%s: %v: fix the YAML", file, err)
	}
	if errs := t.Validate(cfg); len(errs) > 0 {
		return nil, &ValidationError{File: file, Errors: errs}
	}
	return &t, nil
}
