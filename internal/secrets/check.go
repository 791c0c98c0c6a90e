package secrets

import (
	"fmt"
	"slices"
	"strings"

	"github.com/strata-gitops/strata/internal/config"
	"github.com/strata-gitops/strata/internal/placement"
)

// Rules the recipient check reports, beside placement's.
const (
	// RuleRecipients: an encrypted Secret readable by a tier its
	// sensitivity does not allow, or not readable by the tier it is placed in.
	RuleRecipients placement.Rule = "secret-recipients"
	// RulePlaintext: an unencrypted Secret whose sensitivity requires encryption.
	RulePlaintext placement.Rule = "secret-plaintext"
)

// Item is what the check needs to know of one placed Secret.
type Item struct {
	Index  int
	Object placement.Object
	// Sensitivity is the effective sensitivity; Tiers the tiers it is placed in.
	Sensitivity config.Sensitivity
	Tiers       []config.Tier
	Encrypted   bool
	Recipients  []string
}

// Check judges one Secret against strata.yaml: pure, no keys needed. An
// encrypted Secret must be encrypted to exactly the recipients of tiers its
// sensitivity allows, including every tier it is placed in; a plaintext one
// is allowed only where secrets.plaintextAllowedIn says so.
func Check(cfg *config.Config, it Item) []placement.Violation {
	if !cfg.Secrets.Enabled() {
		if it.Encrypted {
			return []placement.Violation{violation(it, RuleRecipients,
				"is encrypted but strata.yaml names no secrets.recipients: add one age recipient per tier, so strata can check who can read it")}
		}
		return nil
	}
	s := cfg.Secrets
	allowed := cfg.Tiers[it.Sensitivity]
	fix := fmt.Sprintf("; re-encrypt with `strata secret encrypt %s`", fileOr(it.Object.Source))
	if !it.Encrypted {
		if s.PlaintextAllowed(it.Sensitivity) {
			return nil
		}
		return []placement.Violation{violation(it, RulePlaintext, fmt.Sprintf(
			"is a plaintext %s Secret: %s Secrets must be encrypted for the tiers %s (secrets.plaintextAllowedIn)%s",
			it.Sensitivity, it.Sensitivity, config.JoinTiers(allowed), fix))}
	}
	var problems []string
	for _, r := range it.Recipients {
		t := s.TierOf(r)
		switch {
		case t == "":
			problems = append(problems, fmt.Sprintf("it is readable by %s, which is no tier's recipient in strata.yaml", short(r)))
		case !slices.Contains(allowed, t):
			problems = append(problems, fmt.Sprintf("it is readable by %s (%s), which %s data may not reach (allowed %s)", t, short(r), it.Sensitivity, config.JoinTiers(allowed)))
		}
	}
	for _, t := range it.Tiers {
		r, ok := s.Recipients[t]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("it is placed in %s, which has no recipient in secrets.recipients", t))
		case !slices.Contains(it.Recipients, r):
			problems = append(problems, fmt.Sprintf("it is placed in %s but not encrypted to %s's recipient %s", t, t, short(r)))
		}
	}
	if len(problems) == 0 {
		return nil
	}
	return []placement.Violation{violation(it, RuleRecipients, strings.Join(problems, "; ")+fix)}
}

func violation(it Item, r placement.Rule, msg string) placement.Violation {
	return placement.Violation{Index: it.Index, Object: it.Object, Rule: r, Message: msg}
}

func fileOr(f string) string {
	if f == "" {
		return "FILE"
	}
	return f
}

// short abbreviates an age recipient for messages: enough to tell keys apart.
func short(r string) string {
	if len(r) > 16 {
		return r[:12] + "…" + r[len(r)-4:]
	}
	return r
}

// CheckPlaced judges every placed Secret of a render (object returns a
// Secret of the render, by index, as decoded JSON). sources (from
// Sources) name the file of an encrypted manifest; nil is allowed.
func CheckPlaced(cfg *config.Config, object func(index int) map[string]any, result *placement.Result, sources map[string]Source) []placement.Violation {
	var out []placement.Violation
	for _, d := range result.Decisions {
		if d.Object.Kind != "Secret" || d.Object.Group != "" {
			continue
		}
		m := object(d.Index)
		if m == nil {
			continue
		}
		obj := d.Object
		if src, ok := sources[MAC(m)]; ok && obj.Source == "" {
			obj.Source = src.File
		}
		out = append(out, Check(cfg, Item{Index: d.Index, Object: obj, Sensitivity: d.Sensitivity, Tiers: d.Tiers,
			Encrypted: IsEncrypted(m), Recipients: Recipients(m)})...)
	}
	return out
}

// AllowedRecipients returns the recipients of the tiers sens allows, in
// the tiers' order: what `strata secret encrypt` encrypts for.
func AllowedRecipients(cfg *config.Config, sens config.Sensitivity) ([]string, []config.Tier, error) {
	if !cfg.Secrets.Enabled() {
		return nil, nil, fmt.Errorf("%s names no secrets.recipients: add one age recipient per tier (strata secret keygen prints them)", config.ConfigFile)
	}
	var rs []string
	var ts []config.Tier
	for _, t := range cfg.Tiers[sens] {
		r, ok := cfg.Secrets.Recipients[t]
		if !ok {
			return nil, nil, fmt.Errorf("%s data may be in %s, which has no recipient under secrets.recipients in %s: add its age recipient", sens, t, config.ConfigFile)
		}
		rs = append(rs, r)
		ts = append(ts, t)
	}
	if len(rs) == 0 {
		return nil, nil, fmt.Errorf("no tier allows %s data (tiers: in %s)", sens, config.ConfigFile)
	}
	return rs, ts, nil
}
