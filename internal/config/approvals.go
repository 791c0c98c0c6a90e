package config

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// DefaultApprovalLifetime caps how long a signed approval counts: a reviewer
// approves what a change is now, not what it might be merged as months later.
const DefaultApprovalLifetime = 30 * 24 * time.Hour

// Approvals is the approvals: section of strata.yaml: the number of signed
// approvals a change needs, keyed by the highest sensitivity it touches,
// and how the gate enforces them. It is written flat, counts beside the
// settings:
//
//	approvals: {public: 0, internal: 1, confidential: 1, restricted: 2, maxLifetime: 720h}
type Approvals struct {
	// Required maps a sensitivity to the approvals a change touching it needs.
	Required map[Sensitivity]int
	// Enforce turns the gate off only when explicitly false; every status
	// surface then says so.
	Enforce *bool
	// MaxLifetime caps an approval's validity, whatever expiry it claims.
	MaxLifetime Duration
	// AllowSelfApproval lets the author or committer of a change approve it
	// (four eyes off).
	AllowSelfApproval bool
}

var approvalSettings = map[string]bool{"enforce": true, "maxLifetime": true, "allowSelfApproval": true}

// UnmarshalJSON reads the flat form: sensitivity counts beside the settings.
func (a *Approvals) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("approvals: %v", err)
	}
	*a = Approvals{}
	for k, v := range raw {
		var err error
		switch k {
		case "enforce":
			a.Enforce = new(bool)
			err = json.Unmarshal(v, a.Enforce)
		case "maxLifetime":
			err = a.MaxLifetime.UnmarshalJSON(v)
		case "allowSelfApproval":
			err = json.Unmarshal(v, &a.AllowSelfApproval)
		default:
			var n int
			if err = json.Unmarshal(v, &n); err == nil {
				if a.Required == nil {
					a.Required = map[Sensitivity]int{}
				}
				a.Required[Sensitivity(k)] = n
			}
		}
		if err != nil {
			return fmt.Errorf("approvals.%s: %v", k, err)
		}
	}
	return nil
}

// MarshalJSON writes the flat form.
func (a Approvals) MarshalJSON() ([]byte, error) {
	out := map[string]any{}
	for s, n := range a.Required {
		out[string(s)] = n
	}
	if a.Enforce != nil {
		out["enforce"] = *a.Enforce
	}
	if a.MaxLifetime.Duration != 0 {
		out["maxLifetime"] = a.MaxLifetime
	}
	if a.AllowSelfApproval {
		out["allowSelfApproval"] = true
	}
	return json.Marshal(out)
}

// Enforced reports whether the gate is on: always, unless turned off
// explicitly with enforce: false.
func (a Approvals) Enforced() bool { return a.Enforce == nil || *a.Enforce }

// Lifetime returns the cap on an approval's validity.
func (a Approvals) Lifetime() time.Duration {
	if a.MaxLifetime.Duration <= 0 {
		return DefaultApprovalLifetime
	}
	return a.MaxLifetime.Duration
}

// For returns the approvals a change of highest sensitivity s needs.
func (a Approvals) For(s Sensitivity) int { return a.Required[s] }

func validateApprovals(a Approvals, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	keys := make([]string, 0, len(a.Required))
	for s := range a.Required {
		keys = append(keys, string(s))
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !Sensitivity(k).Valid() && !approvalSettings[k] {
			errs = append(errs, field.NotSupported(p.Key(k), k, append(sensitivityStrings(), "enforce", "maxLifetime", "allowSelfApproval")))
		}
	}
	prev := 0
	for i, s := range Sensitivities {
		n, ok := a.Required[s]
		switch {
		case !ok:
			errs = append(errs, field.Required(p.Key(string(s)), "the number of signed approvals a change touching this sensitivity needs"))
		case n < 0:
			errs = append(errs, field.Invalid(p.Key(string(s)), n, "must be 0 or more"))
		case i > 0 && n < prev:
			errs = append(errs, field.Invalid(p.Key(string(s)), n,
				fmt.Sprintf("must be at least %d, the count for %s: more sensitive data never needs fewer approvals", prev, Sensitivities[i-1])))
		case n < 1 && s.Rank() >= Confidential.Rank() && a.Enforced():
			// Zero approvals for classified data is the gate switched off
			// without saying so; that must be explicit.
			errs = append(errs, field.Invalid(p.Key(string(s)), n,
				fmt.Sprintf("%s changes need at least 1 signed approval; to run without the approval gate say so explicitly with approvals.enforce: false", s)))
		}
		if ok && n > prev {
			prev = n
		}
	}
	if a.MaxLifetime.Duration < 0 {
		errs = append(errs, field.Invalid(p.Child("maxLifetime"), a.MaxLifetime.String(), "must not be negative"))
	}
	return errs
}
