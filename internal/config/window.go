package config

import (
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"
	"time"
	_ "time/tzdata" // windows name time zones; do not depend on the host's zoneinfo

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Window is a recurring period (e.g. the last 3 days of every month, or of
// each quarter) during which a Kustomize component is added to
// environments — the demo's month-end capacity for fraud scoring.
type Window struct {
	// Environments the window applies to.
	Environments []string `json:"environments"`
	// Component is the repository-relative path of a Kustomize Component.
	Component string `json:"component"`
	// Timezone names the zone the days are counted in (IANA, e.g. Europe/Zurich).
	Timezone string `json:"timezone,omitempty"`
	// LastDaysOfMonth opens the window at 00:00 on the Nth-last day of the
	// month until the month ends.
	LastDaysOfMonth int `json:"lastDaysOfMonth"`
	// Months limits the window to these months (1-12), e.g. [3, 6, 9, 12]
	// for quarter ends; empty means every month.
	Months []int `json:"months,omitempty"`
}

func (w Window) location() (*time.Location, error) {
	if w.Timezone == "" {
		return time.UTC, nil
	}
	return time.LoadLocation(w.Timezone)
}

// Open reports whether the window is open at t.
func (w Window) Open(t time.Time) bool {
	loc, err := w.location()
	if err != nil {
		return false
	}
	lt := t.In(loc)
	if len(w.Months) > 0 && !slices.Contains(w.Months, int(lt.Month())) {
		return false
	}
	daysInMonth := time.Date(lt.Year(), lt.Month()+1, 0, 0, 0, 0, 0, loc).Day()
	return lt.Day() > daysInMonth-w.LastDaysOfMonth
}

// OpenWindows returns the names of the windows of env open at t, sorted.
func (c *Config) OpenWindows(env string, t time.Time) []string {
	var out []string
	for name, w := range c.Windows {
		if slices.Contains(w.Environments, env) && w.Open(t) {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// EnvironmentWindows returns, sorted, those of names that are windows of
// env; with names nil, every window of env.
func (c *Config) EnvironmentWindows(env string, names []string) []string {
	out := []string{}
	for name, w := range c.Windows {
		if slices.Contains(w.Environments, env) && (names == nil || slices.Contains(names, name)) {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// WindowComponents returns the components of the named windows.
func (c *Config) WindowComponents(names []string) []string {
	out := make([]string, 0, len(names))
	for _, n := range names {
		out = append(out, c.Windows[n].Component)
	}
	return out
}

func validateWindows(ws map[string]Window, envs map[string]Environment, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, name := range sortedKeys(ws) {
		w, wp := ws[name], p.Key(name)
		if len(w.Environments) == 0 {
			errs = append(errs, field.Required(wp.Child("environments"), "the environments this window changes"))
		}
		for i, e := range w.Environments {
			if _, ok := envs[e]; !ok {
				errs = append(errs, field.NotSupported(wp.Child("environments").Index(i), e, sortedKeys(envs)))
			}
		}
		switch c := path.Clean(w.Component); {
		case w.Component == "":
			errs = append(errs, field.Required(wp.Child("component"), "the path of a Kustomize Component (kind: Component) in the repository"))
		case path.IsAbs(c) || c == ".." || strings.HasPrefix(c, "../"):
			errs = append(errs, field.Invalid(wp.Child("component"), w.Component, "must be a relative path inside the config repository"))
		}
		if _, err := w.location(); err != nil {
			errs = append(errs, field.Invalid(wp.Child("timezone"), w.Timezone, fmt.Sprintf("unknown time zone (%v): use an IANA name such as Europe/Zurich", err)))
		}
		if w.LastDaysOfMonth < 1 || w.LastDaysOfMonth > 28 {
			errs = append(errs, field.Invalid(wp.Child("lastDaysOfMonth"), w.LastDaysOfMonth, "must be between 1 and 28"))
		}
		for i, m := range w.Months {
			if m < 1 || m > 12 {
				errs = append(errs, field.Invalid(wp.Child("months").Index(i), m, "months are 1 (January) to 12 (December)"))
			}
		}
	}
	return errs
}
