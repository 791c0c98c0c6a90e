package config

import (
	"fmt"
	"path"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func tierStrings() []string {
	s := make([]string, len(KnownTiers))
	for i, t := range KnownTiers {
		s[i] = string(t)
	}
	return s
}

func sensitivityStrings() []string {
	s := make([]string, len(Sensitivities))
	for i, v := range Sensitivities {
		s[i] = string(v)
	}
	return s
}

func validateHeader(apiVersion, kind, wantKind string) field.ErrorList {
	var errs field.ErrorList
	if apiVersion != APIVersion {
		errs = append(errs, field.NotSupported(field.NewPath("apiVersion"), apiVersion, []string{APIVersion}))
	}
	if kind != wantKind {
		errs = append(errs, field.NotSupported(field.NewPath("kind"), kind, []string{wantKind}))
	}
	return errs
}

// Validate returns every problem of c, each with its field path.
func (c *Config) Validate() field.ErrorList {
	errs := validateHeader(c.APIVersion, c.Kind, ConfigKind)
	errs = append(errs, validateTiers(c.Tiers, field.NewPath("tiers"))...)
	errs = append(errs, validateEnvironments(c.Environments, field.NewPath("environments"))...)
	errs = append(errs, validateApprovals(c.Approvals, field.NewPath("approvals"))...)
	errs = append(errs, c.Rollout.validate(field.NewPath("rollout"))...)
	errs = append(errs, validateWindows(c.Windows, c.Environments, field.NewPath("windows"))...)
	errs = append(errs, c.Audit.validate(field.NewPath("audit"))...)
	errs = append(errs, c.Secrets.validate(field.NewPath("secrets"))...)
	errs = append(errs, c.Webhook.validate(field.NewPath("webhook"))...)
	return errs
}

func validateTiers(tiers map[Sensitivity][]Tier, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for s := range tiers {
		if !s.Valid() {
			errs = append(errs, field.NotSupported(p.Key(string(s)), s, sensitivityStrings()))
		}
	}
	for _, s := range Sensitivities {
		list, ok := tiers[s]
		sp := p.Key(string(s))
		if !ok || len(list) == 0 {
			errs = append(errs, field.Required(sp, fmt.Sprintf("every sensitivity needs a non-empty list of allowed tiers (from %s), or remove tiers: to use the defaults", strings.Join(tierStrings(), ", "))))
			continue
		}
		seen := map[Tier]bool{}
		for i, t := range list {
			if !t.Valid() {
				errs = append(errs, field.NotSupported(sp.Index(i), t, tierStrings()))
			}
			if seen[t] {
				errs = append(errs, field.Duplicate(sp.Index(i), t))
			}
			seen[t] = true
		}
	}
	// A more sensitive class must never be allowed where a less sensitive one
	// is not: otherwise a Namespace floor could send contents to a tier its
	// own label is denied in.
	for i := 1; i < len(Sensitivities); i++ {
		lower, higher := Sensitivities[i-1], Sensitivities[i]
		allowedLower := map[Tier]bool{}
		for _, t := range tiers[lower] {
			allowedLower[t] = true
		}
		for j, t := range tiers[higher] {
			if t.Valid() && len(tiers[lower]) > 0 && !allowedLower[t] {
				errs = append(errs, field.Invalid(p.Key(string(higher)).Index(j), t,
					fmt.Sprintf("%s data would be allowed in %s where less sensitive %s data is not; add %s to tiers.%s or remove it here", higher, t, lower, t, lower)))
			}
		}
	}
	return errs
}

func validateEnvironments(envs map[string]Environment, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if len(envs) == 0 {
		return append(errs, field.Required(p, "at least one environment with a path and clusters"))
	}
	owner := map[string]string{} // cluster name -> environment
	for _, name := range sortedKeys(envs) {
		env := envs[name]
		ep := p.Key(name)
		for _, msg := range validation.IsDNS1123Label(name) {
			errs = append(errs, field.Invalid(ep, name, "environment name: "+msg))
		}
		switch {
		case env.Path == "":
			errs = append(errs, field.Required(ep.Child("path"), "the overlay directory of this environment, e.g. overlays/"+name))
		case path.IsAbs(env.Path) || path.Clean(env.Path) == ".." || strings.HasPrefix(path.Clean(env.Path), "../"):
			errs = append(errs, field.Invalid(ep.Child("path"), env.Path, "must be a relative path inside the config repository, e.g. overlays/"+name))
		}
		if len(env.Clusters) == 0 {
			errs = append(errs, field.Required(ep.Child("clusters"), "at least one cluster with a name and a tier"))
		}
		for i, cl := range env.Clusters {
			cp := ep.Child("clusters").Index(i)
			for _, msg := range validation.IsDNS1123Label(cl.Name) {
				errs = append(errs, field.Invalid(cp.Child("name"), cl.Name, msg))
			}
			if !cl.Tier.Valid() {
				errs = append(errs, field.NotSupported(cp.Child("tier"), cl.Tier, tierStrings()))
			}
			if cl.Cost < 0 {
				errs = append(errs, field.Invalid(cp.Child("cost"), cl.Cost, "must be 0 or more"))
			}
			if cl.Name == "" {
				continue
			}
			switch other, dup := owner[cl.Name]; {
			case dup && other == name:
				errs = append(errs, field.Duplicate(cp.Child("name"), cl.Name))
			case dup:
				errs = append(errs, field.Invalid(cp.Child("name"), cl.Name,
					fmt.Sprintf("cluster is also in environment %q; a cluster belongs to one environment, give each its own name", other)))
			default:
				owner[cl.Name] = name
			}
		}
	}
	return errs
}

func (r Rollout) validate(p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if r.MaxPrunePercent != nil && (*r.MaxPrunePercent < 0 || *r.MaxPrunePercent > 100) {
		errs = append(errs, field.Invalid(p.Child("maxPrunePercent"), *r.MaxPrunePercent, "must be between 0 and 100"))
	}
	if r.HealthTimeout.Duration < 0 {
		errs = append(errs, field.Invalid(p.Child("healthTimeout"), r.HealthTimeout.String(), "must not be negative"))
	}
	return errs
}

func (w Webhook) validate(p *field.Path) field.ErrorList {
	var errs field.ErrorList
	seen := map[string]bool{}
	for i, ns := range w.ExemptNamespaces {
		ip := p.Child("exemptNamespaces").Index(i)
		for _, msg := range validation.IsDNS1123Label(ns) {
			errs = append(errs, field.Invalid(ip, ns, "a Namespace name: "+msg))
		}
		if seen[ns] {
			errs = append(errs, field.Duplicate(ip, ns))
		}
		seen[ns] = true
	}
	return errs
}
