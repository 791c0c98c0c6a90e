package config

import (
	"fmt"
	"slices"
	"strings"

	"filippo.io/age"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Secrets configures SOPS-encrypted Secrets: one age recipient (public key)
// per tier, and where plaintext Secrets are still accepted. A reconciler is
// given only the private keys of the tiers it serves.
type Secrets struct {
	// Recipients maps a tier to the age recipient whose private key only the
	// reconcilers of that tier hold.
	Recipients map[Tier]string `json:"recipients,omitempty"`
	// PlaintextAllowedIn lists the sensitivities whose Secrets may be in git
	// unencrypted (default: public and internal). Confidential and
	// restricted Secrets must always be encrypted.
	PlaintextAllowedIn []Sensitivity `json:"plaintextAllowedIn,omitempty"`
}

// DefaultPlaintextAllowedIn is where plaintext Secrets are accepted when
// secrets.plaintextAllowedIn is left out.
var DefaultPlaintextAllowedIn = []Sensitivity{Public, Internal}

// Enabled reports whether strata.yaml configures encrypted Secrets; without
// recipients the recipient check is off (a repository without secrets:).
func (s Secrets) Enabled() bool { return len(s.Recipients) > 0 }

// PlaintextAllowed reports whether a plaintext Secret of sensitivity sens is
// accepted.
func (s Secrets) PlaintextAllowed(sens Sensitivity) bool {
	allowed := s.PlaintextAllowedIn
	if allowed == nil {
		allowed = DefaultPlaintextAllowedIn
	}
	return slices.Contains(allowed, sens)
}

// TierOf returns the tier whose recipient is r, or "" for a recipient that
// strata.yaml does not name.
func (s Secrets) TierOf(r string) Tier {
	for t, v := range s.Recipients {
		if v == r {
			return t
		}
	}
	return ""
}

func (s Secrets) validate(p *field.Path) field.ErrorList {
	var errs field.ErrorList
	seen := map[string]Tier{}
	for _, t := range sortedTiers(s.Recipients) {
		r := s.Recipients[t]
		rp := p.Child("recipients").Key(string(t))
		if !t.Valid() {
			errs = append(errs, field.NotSupported(p.Child("recipients"), string(t), tierStrings()))
			continue
		}
		if _, err := age.ParseX25519Recipient(r); err != nil {
			errs = append(errs, field.Invalid(rp, r, "must be an age public key (age1…); make one with age-keygen or strata secret keygen and put its public half here"))
			continue
		}
		if o, ok := seen[r]; ok {
			errs = append(errs, field.Invalid(rp, r, fmt.Sprintf("is also the recipient of %s: every tier needs its own key, or one tier's reconciler could read the other's Secrets", o)))
		}
		seen[r] = t
	}
	if len(s.PlaintextAllowedIn) > 0 && len(s.Recipients) == 0 {
		errs = append(errs, field.Required(p.Child("recipients"), "plaintextAllowedIn needs recipients: name one age recipient per tier"))
	}
	for i, v := range s.PlaintextAllowedIn {
		if !v.Valid() {
			errs = append(errs, field.NotSupported(p.Child("plaintextAllowedIn").Index(i), string(v), sensitivityStrings()))
		}
	}
	return errs
}

func sortedTiers(m map[Tier]string) []Tier {
	out := make([]Tier, 0, len(m))
	for t := range m {
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b Tier) int { return strings.Compare(string(a), string(b)) })
	return out
}
