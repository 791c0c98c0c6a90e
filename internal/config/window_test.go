package config

import (
	"testing"
	"time"
)

func TestWindowOpen(t *testing.T) {
	zurich, _ := time.LoadLocation("Europe/Zurich")
	monthEnd := Window{Environments: []string{"prod"}, Component: "c", Timezone: "Europe/Zurich", LastDaysOfMonth: 3}
	quarterEnd := Window{Environments: []string{"prod"}, Component: "c", LastDaysOfMonth: 5, Months: []int{3, 6, 9, 12}}
	tests := []struct {
		name string
		w    Window
		at   time.Time
		want bool
	}{
		{"27 November is before the last 3 days", monthEnd, time.Date(2026, 11, 27, 23, 59, 0, 0, zurich), false},
		{"28 November opens it", monthEnd, time.Date(2026, 11, 28, 0, 0, 0, 0, zurich), true},
		{"30 November is open", monthEnd, time.Date(2026, 11, 30, 23, 59, 0, 0, zurich), true},
		{"1 December is closed", monthEnd, time.Date(2026, 12, 1, 0, 0, 0, 0, zurich), false},
		{"February of a leap year: 27th opens it", monthEnd, time.Date(2028, 2, 27, 12, 0, 0, 0, zurich), true},
		{"the zone counts: 27 Nov 23:30 UTC is 28 Nov in Zurich", monthEnd, time.Date(2026, 11, 27, 23, 30, 0, 0, time.UTC), true},
		{"quarter end in a quarter month", quarterEnd, time.Date(2026, 12, 28, 0, 0, 0, 0, time.UTC), true},
		{"quarter end not in November", quarterEnd, time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.w.Open(tt.at); got != tt.want {
				t.Errorf("Open(%s) = %v, want %v", tt.at, got, tt.want)
			}
		})
	}
	cfg := &Config{Windows: map[string]Window{"month-end": monthEnd, "quarter-end": quarterEnd}}
	if got := cfg.OpenWindows("prod", time.Date(2026, 12, 30, 12, 0, 0, 0, time.UTC)); len(got) != 2 || got[0] != "month-end" {
		t.Errorf("OpenWindows = %v", got)
	}
	if got := cfg.OpenWindows("dev", time.Date(2026, 12, 30, 12, 0, 0, 0, time.UTC)); len(got) != 0 {
		t.Errorf("OpenWindows(dev) = %v", got)
	}
}

func TestWindowValidation(t *testing.T) {
	data := []byte(`apiVersion: strata.dev/v1alpha1
kind: Config
environments:
  prod: {path: overlays/prod, clusters: [{name: a, tier: on-prem}]}
windows:
  bad:
    environments: [qa]
    component: ../outside
    timezone: Mars/Olympus
    lastDaysOfMonth: 40
    months: [13]
`)
	_, err := Parse("strata.yaml", data)
	ve, ok := err.(*ValidationError)
	if !ok {
		t.Fatalf("want a ValidationError, got %v", err)
	}
	if len(ve.Errors) != 5 {
		t.Errorf("want 5 problems, got %d:\n%v", len(ve.Errors), err)
	}
}
