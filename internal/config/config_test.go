package config_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"

	"github.com/strata-gitops/strata/internal/config"
)

// problem is what a test expects of one entry of a ValidationError.
type problem struct {
	Field string
	Type  field.ErrorType
}

func problemsOf(errs field.ErrorList) []problem {
	out := make([]problem, len(errs))
	for i, e := range errs {
		out[i] = problem{Field: e.Field, Type: e.Type}
	}
	return out
}

func readTestdata(t *testing.T, name string) (string, []byte) {
	t.Helper()
	file := filepath.ToSlash(filepath.Join("testdata", name))
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return file, data
}

func intPtr(i int) *int { return &i }

func TestParseValidFull(t *testing.T) {
	file, data := readTestdata(t, "valid-full.yaml")
	got, err := config.Parse(file, data)
	if err != nil {
		t.Fatalf("Parse(%s): %v", file, err)
	}
	want := &config.Config{
		APIVersion: config.APIVersion,
		Kind:       config.ConfigKind,
		Tiers: map[config.Sensitivity][]config.Tier{
			config.Public:       {config.PublicCloud, config.PrivateCloud, config.OnPrem},
			config.Internal:     {config.PrivateCloud, config.OnPrem},
			config.Confidential: {config.OnPrem, config.PrivateCloud},
			config.Restricted:   {config.OnPrem},
		},
		Environments: map[string]config.Environment{
			"dev": {Path: "overlays/dev", Clusters: []config.Cluster{
				{Name: "dev-cloud", Tier: config.PublicCloud, Cost: 1},
				{Name: "dev-onprem", Tier: config.OnPrem, Cost: 5},
			}},
			"prod": {Path: "overlays/prod", Clusters: []config.Cluster{
				{Name: "public", Tier: config.PublicCloud, Cost: 1},
				{Name: "private", Tier: config.PrivateCloud, Cost: 3},
				{Name: "onprem", Tier: config.OnPrem, Cost: 5},
			}},
		},
		Approvals: config.Approvals{Required: map[config.Sensitivity]int{
			config.Public: 0, config.Internal: 1, config.Confidential: 2, config.Restricted: 3,
		}},
		Rollout: config.Rollout{
			MaxPrunePercent:     intPtr(25),
			HealthTimeout:       config.Duration{Duration: 90 * time.Second},
			AutoRevert:          true,
			AllowNonFastForward: true,
		},
		Webhook: config.Webhook{
			BreakGlassGroups: []string{"sre-oncall"},
			ExemptNamespaces: []string{"kube-system", "kube-public", "kube-node-lease", "strata-system", "cert-manager"},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Parse(%s) mismatch (-want +got):\n%s", file, diff)
	}
	if got, want := got.Rollout.MaxPrunePercentOrDefault(), 25; got != want {
		t.Errorf("MaxPrunePercentOrDefault() = %d, want %d", got, want)
	}
	if got, want := got.Rollout.HealthTimeoutOrDefault(), 90*time.Second; got != want {
		t.Errorf("HealthTimeoutOrDefault() = %v, want %v", got, want)
	}
	if diff := cmp.Diff([]string{"dev", "prod"}, got.EnvironmentNames()); diff != "" {
		t.Errorf("EnvironmentNames() mismatch (-want +got):\n%s", diff)
	}
}

func TestParseAppliesDefaults(t *testing.T) {
	file, data := readTestdata(t, "defaults-when-tiers-and-approvals-absent.yaml")
	got, err := config.Parse(file, data)
	if err != nil {
		t.Fatalf("Parse(%s): %v", file, err)
	}
	if diff := cmp.Diff(config.DefaultTiers(), got.Tiers); diff != "" {
		t.Errorf("Tiers mismatch (-want defaults +got):\n%s", diff)
	}
	if diff := cmp.Diff(config.DefaultApprovals(), got.Approvals.Required); diff != "" {
		t.Errorf("Approvals mismatch (-want defaults +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"kube-system", "kube-public", "kube-node-lease", "strata-system"}, got.Webhook.ExemptNamespaces); diff != "" {
		t.Errorf("Webhook.ExemptNamespaces mismatch (-want defaults +got):\n%s", diff)
	}
	if got.Rollout.MaxPrunePercent != nil {
		t.Errorf("Rollout.MaxPrunePercent = %d, want nil (unset)", *got.Rollout.MaxPrunePercent)
	}
	if got, want := got.Rollout.MaxPrunePercentOrDefault(), config.DefaultMaxPrunePercent; got != want {
		t.Errorf("MaxPrunePercentOrDefault() = %d, want %d", got, want)
	}
	if got, want := got.Rollout.HealthTimeoutOrDefault(), config.DefaultHealthTimeout; got != want {
		t.Errorf("HealthTimeoutOrDefault() = %v, want %v", got, want)
	}
}

func TestDefaultTiersAreValidAndFresh(t *testing.T) {
	// The defaults must pass the same validation as a written table.
	c := config.Config{
		APIVersion: config.APIVersion, Kind: config.ConfigKind,
		Environments: map[string]config.Environment{
			"prod": {Path: "overlays/prod", Clusters: []config.Cluster{{Name: "a", Tier: config.OnPrem}}},
		},
	}
	c.SetDefaults()
	if errs := c.Validate(); len(errs) > 0 {
		t.Fatalf("defaults do not validate: %v", errs.ToAggregate())
	}
	// Each call returns a new map: a caller changing its copy must not
	// change the defaults of the next file.
	c.Tiers[config.Restricted] = append(c.Tiers[config.Restricted], config.PublicCloud)
	if diff := cmp.Diff([]config.Tier{config.OnPrem}, config.DefaultTiers()[config.Restricted]); diff != "" {
		t.Errorf("DefaultTiers() changed through a returned map (-want +got):\n%s", diff)
	}
}

func TestParseMaxPrunePercentZeroIsKept(t *testing.T) {
	file, data := readTestdata(t, "max-prune-percent-zero.yaml")
	got, err := config.Parse(file, data)
	if err != nil {
		t.Fatalf("Parse(%s): %v", file, err)
	}
	if got, want := got.Rollout.MaxPrunePercentOrDefault(), 0; got != want {
		t.Errorf("MaxPrunePercentOrDefault() = %d, want %d (an explicit 0 is not \"unset\")", got, want)
	}
}

func TestParseInvalid(t *testing.T) {
	tests := []struct {
		file string
		// want lists every problem, in the order Validate reports them.
		want []problem
		// allowed are texts that say what is allowed; Error() must contain each.
		allowed []string
	}{
		{
			file:    "cluster-with-unknown-tier.yaml",
			want:    []problem{{"environments[prod].clusters[1].tier", field.ErrorTypeNotSupported}},
			allowed: []string{`"edge-cloud"`, `supported values: "public-cloud", "private-cloud", "on-prem"`},
		},
		{
			file:    "tier-table-with-unknown-tier.yaml",
			want:    []problem{{"tiers[restricted][1]", field.ErrorTypeNotSupported}},
			allowed: []string{`"basement"`, `supported values: "public-cloud", "private-cloud", "on-prem"`},
		},
		{
			file:    "sensitivity-without-a-tier-list.yaml",
			want:    []problem{{"tiers[confidential]", field.ErrorTypeRequired}},
			allowed: []string{"every sensitivity needs a non-empty list of allowed tiers", "public-cloud, private-cloud, on-prem", "remove tiers: to use the defaults"},
		},
		{
			file:    "unknown-sensitivity-in-tiers.yaml",
			want:    []problem{{"tiers[secret]", field.ErrorTypeNotSupported}},
			allowed: []string{`"secret"`, `supported values: "public", "internal", "confidential", "restricted"`},
		},
		{
			file:    "unknown-sensitivity-in-approvals.yaml",
			want:    []problem{{"approvals[top-secret]", field.ErrorTypeNotSupported}},
			allowed: []string{`"top-secret"`, `supported values: "public", "internal", "confidential", "restricted"`},
		},
		{
			file:    "approvals-missing-a-sensitivity.yaml",
			want:    []problem{{"approvals[restricted]", field.ErrorTypeRequired}},
			allowed: []string{"the number of signed approvals"},
		},
		{
			file:    "cluster-in-two-environments.yaml",
			want:    []problem{{"environments[staging].clusters[0].name", field.ErrorTypeInvalid}},
			allowed: []string{`"shared"`, `cluster is also in environment "prod"`, "a cluster belongs to one environment"},
		},
		{
			file:    "duplicate-cluster-in-one-environment.yaml",
			want:    []problem{{"environments[prod].clusters[1].name", field.ErrorTypeDuplicate}},
			allowed: []string{`Duplicate value: "onprem"`},
		},
		{
			file:    "wrong-api-version.yaml",
			want:    []problem{{"apiVersion", field.ErrorTypeNotSupported}},
			allowed: []string{`"strata.dev/v1"`, `supported values: "strata.dev/v1alpha1"`},
		},
		{
			file:    "wrong-kind.yaml",
			want:    []problem{{"kind", field.ErrorTypeNotSupported}},
			allowed: []string{`"Trust"`, `supported values: "Config"`},
		},
		{
			file: "restricted-allowed-where-internal-is-not.yaml",
			want: []problem{{"tiers[restricted][1]", field.ErrorTypeInvalid}},
			allowed: []string{
				"restricted data would be allowed in public-cloud where less sensitive confidential data is not",
				"add public-cloud to tiers.confidential or remove it here",
			},
		},
		{
			file:    "decreasing-approvals.yaml",
			want:    []problem{{"approvals[confidential]", field.ErrorTypeInvalid}},
			allowed: []string{"must be at least 2, the count for internal", "more sensitive data never needs fewer approvals"},
		},
		{
			file:    "max-prune-percent-above-100.yaml",
			want:    []problem{{"rollout.maxPrunePercent", field.ErrorTypeInvalid}},
			allowed: []string{"101", "must be between 0 and 100"},
		},
		{
			file:    "max-prune-percent-negative.yaml",
			want:    []problem{{"rollout.maxPrunePercent", field.ErrorTypeInvalid}},
			allowed: []string{"-1", "must be between 0 and 100"},
		},
		{
			file:    "absolute-env-path.yaml",
			want:    []problem{{"environments[prod].path", field.ErrorTypeInvalid}},
			allowed: []string{`"/etc/overlays/prod"`, "must be a relative path inside the config repository, e.g. overlays/prod"},
		},
		{
			file:    "env-path-outside-repository.yaml",
			want:    []problem{{"environments[prod].path", field.ErrorTypeInvalid}},
			allowed: []string{`"overlays/../../other-repo/prod"`, "must be a relative path inside the config repository"},
		},
		{
			file: "exempt-namespaces-bad-name-and-duplicate.yaml",
			want: []problem{
				{"webhook.exemptNamespaces[1]", field.ErrorTypeInvalid},
				{"webhook.exemptNamespaces[2]", field.ErrorTypeDuplicate},
			},
			allowed: []string{`"Kube_Public"`, "a Namespace name", `Duplicate value: "kube-system"`},
		},
		{
			file: "three-problems.yaml",
			want: []problem{
				{"environments[prod].path", field.ErrorTypeInvalid},
				{"environments[prod].clusters[0].tier", field.ErrorTypeNotSupported},
				{"rollout.maxPrunePercent", field.ErrorTypeInvalid},
			},
			allowed: []string{"(3 problems)", "must be a relative path", `"mainframe"`, "must be between 0 and 100"},
		},
	}
	for _, tt := range tests {
		t.Run(strings.TrimSuffix(tt.file, ".yaml"), func(t *testing.T) {
			file, data := readTestdata(t, tt.file)
			cfg, err := config.Parse(file, data)
			if err == nil {
				t.Fatalf("Parse(%s) = %+v, want a *config.ValidationError", file, cfg)
			}
			var verr *config.ValidationError
			if !errors.As(err, &verr) {
				t.Fatalf("Parse(%s) error is %T (%v), want *config.ValidationError", file, err, err)
			}
			if verr.File != file {
				t.Errorf("ValidationError.File = %q, want %q", verr.File, file)
			}
			if diff := cmp.Diff(tt.want, problemsOf(verr.Errors)); diff != "" {
				t.Errorf("problems mismatch (-want +got):\n%s\nerror: %v", diff, err)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, file+" is invalid (") {
				t.Errorf("Error() does not start with the file name:\n%s", msg)
			}
			// Every problem is on its own line naming the file and the field path.
			lines := strings.Split(msg, "\n")[1:]
			if len(lines) != len(tt.want) {
				t.Errorf("Error() has %d problem lines, want %d:\n%s", len(lines), len(tt.want), msg)
			}
			for i, p := range tt.want {
				if i >= len(lines) {
					break
				}
				if prefix := "  " + file + ": " + p.Field + ": "; !strings.HasPrefix(lines[i], prefix) {
					t.Errorf("problem line %d = %q, want prefix %q", i, lines[i], prefix)
				}
			}
			for _, s := range tt.allowed {
				if !strings.Contains(msg, s) {
					t.Errorf("Error() does not contain %q:\n%s", s, msg)
				}
			}
		})
	}
}

func TestParseEnvPathDirectoryStartingWithTwoDots(t *testing.T) {
	file, data := readTestdata(t, "env-path-directory-starting-with-two-dots.yaml")
	if _, err := config.Parse(file, data); err != nil {
		t.Errorf("Parse(%s): %v, want no error", file, err)
	}
}

func TestParseDecodeErrors(t *testing.T) {
	tests := []struct {
		file string
		want []string
	}{
		{
			file: "unknown-field.yaml",
			want: []string{"testdata/unknown-field.yaml: ", `unknown field "teir"`, "fix the YAML", "unknown fields are rejected"},
		},
		{
			file: "invalid-yaml.yaml",
			want: []string{"testdata/invalid-yaml.yaml: ", "fix the YAML"},
		},
	}
	for _, tt := range tests {
		t.Run(strings.TrimSuffix(tt.file, ".yaml"), func(t *testing.T) {
			file, data := readTestdata(t, tt.file)
			cfg, err := config.Parse(file, data)
			if err == nil {
				t.Fatalf("Parse(%s) = %+v, want an error", file, cfg)
			}
			var verr *config.ValidationError
			if errors.As(err, &verr) {
				t.Errorf("Parse(%s) returned a *ValidationError for a decoding problem: %v", file, err)
			}
			for _, s := range tt.want {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error does not contain %q:\n%v", s, err)
				}
			}
		})
	}
}

func TestParseRejectsDuplicateYAMLKeys(t *testing.T) {
	// A key given twice is ambiguous; strict decoding must not silently keep one.
	data := []byte(`apiVersion: strata.dev/v1alpha1
kind: Config
environments:
  prod:
    path: overlays/prod
    clusters:
      - {name: onprem, tier: on-prem}
  prod:
    path: overlays/prod
    clusters:
      - {name: public, tier: public-cloud}
`)
	if _, err := config.Parse("strata.yaml", data); err == nil {
		t.Fatal("Parse accepted an environment given twice")
	} else if !strings.Contains(err.Error(), "strata.yaml") {
		t.Errorf("error does not name the file: %v", err)
	}
}

func TestEnvironment(t *testing.T) {
	file, data := readTestdata(t, "valid-full.yaml")
	cfg, err := config.Parse(file, data)
	if err != nil {
		t.Fatal(err)
	}
	env, err := cfg.Environment("prod")
	if err != nil {
		t.Fatalf("Environment(prod): %v", err)
	}
	if env.Path != "overlays/prod" || len(env.Clusters) != 3 {
		t.Errorf("Environment(prod) = %+v", env)
	}

	_, err = cfg.Environment("qa")
	if err == nil {
		t.Fatal("Environment(qa) on a config without qa returned no error")
	}
	for _, s := range []string{`environment "qa" is not in strata.yaml`, "known environments are dev, prod", "add it under environments:"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("Environment(qa) error does not contain %q: %v", s, err)
		}
	}
}

func TestLoad(t *testing.T) {
	_, full := readTestdata(t, "valid-full.yaml")
	read := func(p string) ([]byte, error) {
		if p != config.ConfigFile {
			t.Errorf("Load read %q, want %q", p, config.ConfigFile)
		}
		return full, nil
	}
	cfg, err := config.Load(read)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if diff := cmp.Diff([]string{"dev", "prod"}, cfg.EnvironmentNames()); diff != "" {
		t.Errorf("EnvironmentNames() mismatch (-want +got):\n%s", diff)
	}

	// Problems found through Load name strata.yaml, the path in the repository.
	_, bad := readTestdata(t, "cluster-in-two-environments.yaml")
	_, err = config.Load(func(string) ([]byte, error) { return bad, nil })
	var verr *config.ValidationError
	if !errors.As(err, &verr) || verr.File != config.ConfigFile {
		t.Errorf("Load of an invalid file: %v, want a *ValidationError for %s", err, config.ConfigFile)
	}
}

func TestLoadMissingFile(t *testing.T) {
	dir := t.TempDir()
	fromDisk := func(p string) ([]byte, error) { return os.ReadFile(filepath.Join(dir, filepath.FromSlash(p))) }
	wrapped := func(p string) ([]byte, error) {
		return nil, fmt.Errorf("snapshot: %w", &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist})
	}
	for name, read := range map[string]config.ReadFileFunc{"os.ReadFile": fromDisk, "wrapped fs.ErrNotExist": wrapped} {
		t.Run(name, func(t *testing.T) {
			cfg, err := config.Load(read)
			if err == nil {
				t.Fatalf("Load = %+v, want an error", cfg)
			}
			for _, s := range []string{"strata.yaml not found at the root of the config repository", "create it (apiVersion strata.dev/v1alpha1, kind Config)", "--repo"} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error does not contain %q: %v", s, err)
				}
			}
		})
	}

	t.Run("other read error", func(t *testing.T) {
		boom := errors.New("permission denied")
		_, err := config.Load(func(string) ([]byte, error) { return nil, boom })
		if !errors.Is(err, boom) {
			t.Errorf("Load error %v does not wrap the read error", err)
		}
		if !strings.Contains(err.Error(), "reading strata.yaml") {
			t.Errorf("error does not name the file: %v", err)
		}
	})
}

func TestSensitivity(t *testing.T) {
	for i, s := range config.Sensitivities {
		if s.Rank() != i || !s.Valid() {
			t.Errorf("%s: Rank() = %d, Valid() = %v", s, s.Rank(), s.Valid())
		}
	}
	if config.Sensitivity("secret").Valid() {
		t.Error(`Sensitivity("secret").Valid() = true`)
	}
	if got := config.Max(config.Internal, config.Restricted); got != config.Restricted {
		t.Errorf("Max(internal, restricted) = %s", got)
	}
	if got := config.Max(config.Confidential, config.Public); got != config.Confidential {
		t.Errorf("Max(confidential, public) = %s", got)
	}
	if s, err := config.ParseSensitivity("confidential"); err != nil || s != config.Confidential {
		t.Errorf("ParseSensitivity(confidential) = %q, %v", s, err)
	}
	_, err := config.ParseSensitivity("secret")
	if err == nil || !strings.Contains(err.Error(), "allowed values are public, internal, confidential, restricted") {
		t.Errorf("ParseSensitivity(secret) error = %v", err)
	}
}

// --- trust.yaml ---

func ecdsaPublicPEM(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return publicPEM(t, &key.PublicKey)
}

func publicPEM(t *testing.T, pub any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// indent indents every line of s by n spaces, for a YAML block scalar.
func indent(s string, n int) string {
	pad := strings.Repeat(" ", n)
	return pad + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n"+pad)
}

// trustYAML marshals reviewers into a trust file.
func trustYAML(t *testing.T, reviewers ...config.Reviewer) []byte {
	t.Helper()
	data, err := yaml.Marshal(config.Trust{APIVersion: config.APIVersion, Kind: config.TrustKind, Reviewers: reviewers})
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func trustConfig(t *testing.T) *config.Config {
	t.Helper()
	file, data := readTestdata(t, "valid-full.yaml")
	cfg, err := config.Parse(file, data)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestParseTrustValid(t *testing.T) {
	cfg := trustConfig(t)
	alice, bob := ecdsaPublicPEM(t), ecdsaPublicPEM(t)
	// Written as a person would: PEM keys as YAML block scalars.
	data := []byte(`apiVersion: strata.dev/v1alpha1
kind: Trust
reviewers:
  - name: alice
    email: alice@example.com
    environments: [prod]
    maxSensitivity: confidential
    publicKey: |
` + indent(alice, 6) + `
  - name: bob
    publicKey: |
` + indent(bob, 6) + `
`)
	got, err := config.ParseTrust(config.TrustFile, data, cfg)
	if err != nil {
		t.Fatalf("ParseTrust: %v\n%s", err, data)
	}
	want := &config.Trust{
		APIVersion: config.APIVersion,
		Kind:       config.TrustKind,
		Reviewers: []config.Reviewer{
			{Name: "alice", Email: "alice@example.com", PublicKey: alice, Environments: []string{"prod"}, MaxSensitivity: config.Confidential},
			{Name: "bob", PublicKey: bob},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ParseTrust mismatch (-want +got):\n%s", diff)
	}
	if r, ok := got.Reviewer("bob"); !ok || r.PublicKey != bob {
		t.Errorf("Reviewer(bob) = %+v, %v", r, ok)
	}
	if _, ok := got.Reviewer("mallory"); ok {
		t.Error("Reviewer(mallory) found a reviewer that is not in the file")
	}
}

func TestParseTrustKeyAlgorithms(t *testing.T) {
	edPub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	data := trustYAML(t,
		config.Reviewer{Name: "ecdsa", PublicKey: ecdsaPublicPEM(t)},
		config.Reviewer{Name: "ed25519", PublicKey: publicPEM(t, edPub)},
		config.Reviewer{Name: "rsa", PublicKey: publicPEM(t, &rsaKey.PublicKey)},
	)
	if _, err := config.ParseTrust(config.TrustFile, data, nil); err != nil {
		t.Errorf("ParseTrust with ECDSA, Ed25519 and RSA keys: %v", err)
	}
}

func TestParseTrustInvalid(t *testing.T) {
	cfg := trustConfig(t)
	key1, key2 := ecdsaPublicPEM(t), ecdsaPublicPEM(t)
	privKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	privDER, err := x509.MarshalECPrivateKey(privKey)
	if err != nil {
		t.Fatal(err)
	}
	privatePEM := string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: privDER}))
	garbagePEM := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte("not DER")}))

	tests := []struct {
		name    string
		data    []byte
		want    []problem
		allowed []string
		skip    string
	}{
		{
			name: "duplicate reviewer names",
			data: trustYAML(t,
				config.Reviewer{Name: "alice", PublicKey: key1},
				config.Reviewer{Name: "alice", PublicKey: key2}),
			want:    []problem{{"reviewers[1].name", field.ErrorTypeDuplicate}},
			allowed: []string{`Duplicate value: "alice"`},
		},
		{
			name: "missing reviewer name",
			data: trustYAML(t, config.Reviewer{PublicKey: key1}),
			want: []problem{{"reviewers[0].name", field.ErrorTypeRequired}},
			allowed: []string{
				"the reviewer's name",
			},
		},
		{
			name: "same key twice",
			data: trustYAML(t,
				config.Reviewer{Name: "alice", PublicKey: key1},
				config.Reviewer{Name: "bob", PublicKey: key1}),
			want:    []problem{{"reviewers[1].publicKey", field.ErrorTypeInvalid}},
			allowed: []string{`the same key belongs to reviewer "alice"`, "one key per person"},
		},
		{
			name: "same key twice written differently",
			// The same key with and without its final newline (YAML "|" vs "|-").
			data: trustYAML(t,
				config.Reviewer{Name: "alice", PublicKey: key1},
				config.Reviewer{Name: "bob", PublicKey: strings.TrimRight(key1, "\n")}),
			want:    []problem{{"reviewers[1].publicKey", field.ErrorTypeInvalid}},
			allowed: []string{`the same key belongs to reviewer "alice"`},
		},
		{
			name:    "not PEM",
			data:    trustYAML(t, config.Reviewer{Name: "alice", PublicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI alice@laptop"}),
			want:    []problem{{"reviewers[0].publicKey", field.ErrorTypeInvalid}},
			allowed: []string{`not a PEM "PUBLIC KEY" block`, "paste the .pub file that strata keygen wrote"},
		},
		{
			name:    "private key instead of public key",
			data:    trustYAML(t, config.Reviewer{Name: "alice", PublicKey: privatePEM}),
			want:    []problem{{"reviewers[0].publicKey", field.ErrorTypeInvalid}},
			allowed: []string{`not a PEM "PUBLIC KEY" block`},
		},
		{
			name:    "PEM that is not a key",
			data:    trustYAML(t, config.Reviewer{Name: "alice", PublicKey: garbagePEM}),
			want:    []problem{{"reviewers[0].publicKey", field.ErrorTypeInvalid}},
			allowed: []string{"cannot parse the public key"},
		},
		{
			name:    "missing key",
			data:    trustYAML(t, config.Reviewer{Name: "alice"}),
			want:    []problem{{"reviewers[0].publicKey", field.ErrorTypeInvalid}},
			allowed: []string{"required: a PEM public key"},
		},
		{
			name:    "unknown environment",
			data:    trustYAML(t, config.Reviewer{Name: "alice", PublicKey: key1, Environments: []string{"prod", "qa"}}),
			want:    []problem{{"reviewers[0].environments[1]", field.ErrorTypeNotSupported}},
			allowed: []string{`"qa"`, `supported values: "dev", "prod"`},
		},
		{
			name:    "bad maxSensitivity",
			data:    trustYAML(t, config.Reviewer{Name: "alice", PublicKey: key1, MaxSensitivity: "secret"}),
			want:    []problem{{"reviewers[0].maxSensitivity", field.ErrorTypeNotSupported}},
			allowed: []string{`"secret"`, `supported values: "public", "internal", "confidential", "restricted"`},
		},
		{
			name: "wrong apiVersion and kind",
			data: []byte("apiVersion: v1\nkind: Config\nreviewers: []\n"),
			want: []problem{
				{"apiVersion", field.ErrorTypeNotSupported},
				{"kind", field.ErrorTypeNotSupported},
			},
			allowed: []string{`supported values: "strata.dev/v1alpha1"`, `supported values: "Trust"`, "(2 problems)"},
		},
		{
			name: "every problem at once",
			data: trustYAML(t,
				config.Reviewer{Name: "alice", PublicKey: "nope", MaxSensitivity: "top", Environments: []string{"qa"}}),
			want: []problem{
				{"reviewers[0].publicKey", field.ErrorTypeInvalid},
				{"reviewers[0].maxSensitivity", field.ErrorTypeNotSupported},
				{"reviewers[0].environments[0]", field.ErrorTypeNotSupported},
			},
			allowed: []string{"(3 problems)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.skip != "" {
				t.Skip(tt.skip)
			}
			trust, err := config.ParseTrust(config.TrustFile, tt.data, cfg)
			if err == nil {
				t.Fatalf("ParseTrust = %+v, want a *config.ValidationError", trust)
			}
			var verr *config.ValidationError
			if !errors.As(err, &verr) {
				t.Fatalf("ParseTrust error is %T (%v), want *config.ValidationError", err, err)
			}
			if diff := cmp.Diff(tt.want, problemsOf(verr.Errors)); diff != "" {
				t.Errorf("problems mismatch (-want +got):\n%s\nerror: %v", diff, err)
			}
			msg := err.Error()
			for _, p := range tt.want {
				if s := config.TrustFile + ": " + p.Field + ": "; !strings.Contains(msg, s) {
					t.Errorf("Error() does not contain %q:\n%s", s, msg)
				}
			}
			for _, s := range tt.allowed {
				if !strings.Contains(msg, s) {
					t.Errorf("Error() does not contain %q:\n%s", s, msg)
				}
			}
		})
	}
}

func TestParseTrustWithoutConfigSkipsEnvironments(t *testing.T) {
	data := trustYAML(t, config.Reviewer{Name: "alice", PublicKey: ecdsaPublicPEM(t), Environments: []string{"anywhere"}})
	if _, err := config.ParseTrust(config.TrustFile, data, nil); err != nil {
		t.Errorf("ParseTrust with a nil config checked environments: %v", err)
	}
}

func TestParseTrustUnknownField(t *testing.T) {
	data := []byte("apiVersion: strata.dev/v1alpha1\nkind: Trust\nreviewers:\n  - name: alice\n    maxSensitivty: public\n")
	_, err := config.ParseTrust(config.TrustFile, data, nil)
	if err == nil {
		t.Fatal("ParseTrust accepted a misspelled field")
	}
	for _, s := range []string{config.TrustFile + ": ", `unknown field "maxSensitivty"`, "fix the YAML"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error does not contain %q: %v", s, err)
		}
	}
}

func TestLoadTrust(t *testing.T) {
	cfg := trustConfig(t)
	t.Run("missing file is an empty trust", func(t *testing.T) {
		dir := t.TempDir()
		trust, err := config.LoadTrust(func(p string) ([]byte, error) {
			return os.ReadFile(filepath.Join(dir, filepath.FromSlash(p)))
		}, cfg)
		if err != nil {
			t.Fatalf("LoadTrust: %v", err)
		}
		want := &config.Trust{APIVersion: config.APIVersion, Kind: config.TrustKind}
		if diff := cmp.Diff(want, trust); diff != "" {
			t.Errorf("LoadTrust mismatch (-want +got):\n%s", diff)
		}
	})
	t.Run("reads .strata/trust.yaml", func(t *testing.T) {
		data := trustYAML(t, config.Reviewer{Name: "alice", PublicKey: ecdsaPublicPEM(t)})
		trust, err := config.LoadTrust(func(p string) ([]byte, error) {
			if p != config.TrustFile {
				t.Errorf("LoadTrust read %q, want %q", p, config.TrustFile)
			}
			return data, nil
		}, cfg)
		if err != nil {
			t.Fatalf("LoadTrust: %v", err)
		}
		if _, ok := trust.Reviewer("alice"); !ok {
			t.Error("LoadTrust lost reviewer alice")
		}
	})
	t.Run("other read error", func(t *testing.T) {
		boom := errors.New("i/o error")
		_, err := config.LoadTrust(func(string) ([]byte, error) { return nil, boom }, cfg)
		if !errors.Is(err, boom) || !strings.Contains(err.Error(), config.TrustFile) {
			t.Errorf("LoadTrust error = %v, want it to wrap the read error and name %s", err, config.TrustFile)
		}
	})
}

func TestReviewerMayApprove(t *testing.T) {
	limited := config.Reviewer{Name: "alice", Environments: []string{"prod"}, MaxSensitivity: config.Confidential}
	unlimited := config.Reviewer{Name: "bob"}
	publicOnly := config.Reviewer{Name: "carol", MaxSensitivity: config.Public}
	tests := []struct {
		reviewer config.Reviewer
		env      string
		s        config.Sensitivity
		want     bool
		skip     string
	}{
		{limited, "prod", config.Public, true, ""},
		{limited, "prod", config.Confidential, true, ""},
		{limited, "prod", config.Restricted, false, ""},
		{limited, "dev", config.Public, false, ""},
		{unlimited, "dev", config.Restricted, true, ""},
		{unlimited, "prod", config.Public, true, ""},
		{publicOnly, "prod", config.Public, true, ""},
		{publicOnly, "prod", config.Internal, false, ""},
		{publicOnly, "prod", "secret", false, ""},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%s/%s", tt.reviewer.Name, tt.env, tt.s), func(t *testing.T) {
			if tt.skip != "" {
				t.Skip(tt.skip)
			}
			if got := tt.reviewer.MayApprove(tt.env, tt.s); got != tt.want {
				t.Errorf("%+v.MayApprove(%q, %q) = %v, want %v", tt.reviewer, tt.env, tt.s, got, tt.want)
			}
		})
	}
}

func TestZeroApprovalsForClassifiedDataNeedExplicitGateOff(t *testing.T) {
	file, data := readTestdata(t, "zero-approvals-for-restricted.yaml")
	_, err := config.Parse(file, data)
	var ve *config.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("Parse(%s) = %v, want a ValidationError", file, err)
	}
	var got []string
	for _, fe := range ve.Errors {
		got = append(got, fe.Field)
	}
	if diff := cmp.Diff([]string{"approvals[confidential]", "approvals[restricted]"}, got); diff != "" {
		t.Errorf("fields (-want +got):\n%s", diff)
	}
	if !strings.Contains(err.Error(), "approvals.enforce: false") {
		t.Errorf("the error does not say how to turn the gate off explicitly: %v", err)
	}

	file, data = readTestdata(t, "gate-off-explicitly.yaml")
	cfg, err := config.Parse(file, data)
	if err != nil {
		t.Fatalf("Parse(%s): %v", file, err)
	}
	if cfg.Approvals.Enforced() || cfg.Approvals.Lifetime() != 168*time.Hour || !cfg.Approvals.AllowSelfApproval {
		t.Errorf("approvals settings not read: %+v", cfg.Approvals)
	}
	if !(config.Approvals{}).Enforced() {
		t.Error("the gate must be on unless turned off explicitly")
	}
	if got := (config.Approvals{}).Lifetime(); got != config.DefaultApprovalLifetime {
		t.Errorf("default lifetime %v", got)
	}
}
