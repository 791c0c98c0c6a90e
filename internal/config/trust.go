package config

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Trust is .strata/trust.yaml: the reviewers whose signed approvals count and
// what each may approve.
type Trust struct {
	APIVersion string     `json:"apiVersion"`
	Kind       string     `json:"kind"`
	Reviewers  []Reviewer `json:"reviewers"`
}

// Reviewer is a person who signs approvals.
type Reviewer struct {
	Name  string `json:"name"`
	Email string `json:"email,omitempty"`
	// Emails are further git identities of the reviewer: a change authored
	// or committed under any of them cannot count the reviewer's approval
	// (four eyes).
	Emails []string `json:"emails,omitempty"`
	// PublicKey is a PEM "PUBLIC KEY" (ECDSA, Ed25519 or RSA).
	PublicKey string `json:"publicKey"`
	// Environments this reviewer may approve; empty means all.
	Environments []string `json:"environments,omitempty"`
	// MaxSensitivity is the highest sensitivity this reviewer may approve;
	// empty means restricted.
	MaxSensitivity Sensitivity `json:"maxSensitivity,omitempty"`
}

// Reviewer returns the reviewer with name, if any.
func (t *Trust) Reviewer(name string) (Reviewer, bool) {
	for _, r := range t.Reviewers {
		if r.Name == name {
			return r, true
		}
	}
	return Reviewer{}, false
}

// Identities returns the reviewer's git emails, lower-cased.
func (r Reviewer) Identities() []string {
	var out []string
	for _, e := range append([]string{r.Email}, r.Emails...) {
		if e = strings.ToLower(strings.TrimSpace(e)); e != "" && !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	return out
}

// MayApprove reports whether r may approve a change of env touching s.
func (r Reviewer) MayApprove(env string, s Sensitivity) bool {
	if !s.Valid() {
		return false
	}
	if len(r.Environments) > 0 && !slices.Contains(r.Environments, env) {
		return false
	}
	maxS := r.MaxSensitivity
	if maxS == "" {
		maxS = Restricted
	}
	return s.Rank() <= maxS.Rank()
}

// Validate returns every problem of t. Environments are checked against cfg
// when cfg is not nil.
func (t *Trust) Validate(cfg *Config) field.ErrorList {
	errs := validateHeader(t.APIVersion, t.Kind, TrustKind)
	names := map[string]bool{}
	keys := map[string]string{}
	for i, r := range t.Reviewers {
		p := field.NewPath("reviewers").Index(i)
		switch {
		case r.Name == "":
			errs = append(errs, field.Required(p.Child("name"), "the reviewer's name, as used in `strata approve --reviewer`"))
		case names[r.Name]:
			errs = append(errs, field.Duplicate(p.Child("name"), r.Name))
		}
		names[r.Name] = true
		if der, err := publicKeyDER(r.PublicKey); err != nil {
			errs = append(errs, field.Invalid(p.Child("publicKey"), "(key)", err.Error()))
		} else if other, dup := keys[string(der)]; dup {
			errs = append(errs, field.Invalid(p.Child("publicKey"), "(key)",
				fmt.Sprintf("the same key belongs to reviewer %q; one key per person, or approvals could be counted twice", other)))
		} else {
			keys[string(der)] = r.Name
		}
		if r.MaxSensitivity != "" && !r.MaxSensitivity.Valid() {
			errs = append(errs, field.NotSupported(p.Child("maxSensitivity"), r.MaxSensitivity, sensitivityStrings()))
		}
		if cfg != nil {
			for j, env := range r.Environments {
				if _, ok := cfg.Environments[env]; !ok {
					errs = append(errs, field.NotSupported(p.Child("environments").Index(j), env, cfg.EnvironmentNames()))
				}
			}
		}
	}
	return errs
}

// publicKeyDER returns the DER bytes of a PEM public key; comparing them,
// not the PEM text, finds one key written twice in different ways.
func publicKeyDER(pemText string) ([]byte, error) {
	if pemText == "" {
		return nil, fmt.Errorf("required: a PEM public key (strata keygen writes one)")
	}
	block, _ := pem.Decode([]byte(pemText))
	if block == nil || block.Type != "PUBLIC KEY" {
		return nil, fmt.Errorf("not a PEM \"PUBLIC KEY\" block: paste the .pub file that strata keygen wrote")
	}
	if _, err := x509.ParsePKIXPublicKey(block.Bytes); err != nil {
		return nil, fmt.Errorf("cannot parse the public key: %v", err)
	}
	return block.Bytes, nil
}
