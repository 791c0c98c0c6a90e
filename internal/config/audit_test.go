package config_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/strata-gitops/strata/internal/config"
)

func TestAuditRetention(t *testing.T) {
	file, data := readTestdata(t, "audit-retention.yaml")
	cfg, err := config.Parse(file, data)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cfg.Audit.MaxAgeOrDefault(), 720*time.Hour; got != want {
		t.Errorf("maxAge %v, want %v", got, want)
	}
	if got, want := cfg.Audit.MaxBytesOrDefault(), int64(64<<20); got != want {
		t.Errorf("maxBytes %d, want %d", got, want)
	}

	file, data = readTestdata(t, "defaults-when-tiers-and-approvals-absent.yaml")
	if cfg, err = config.Parse(file, data); err != nil {
		t.Fatal(err)
	}
	if cfg.Audit.MaxAgeOrDefault() != config.DefaultAuditMaxAge || cfg.Audit.MaxBytesOrDefault() != int64(config.DefaultAuditMaxBytes) {
		t.Errorf("without audit: %v, %d; want the defaults", cfg.Audit.MaxAgeOrDefault(), cfg.Audit.MaxBytesOrDefault())
	}
}

func TestAuditRetentionInvalid(t *testing.T) {
	file, data := readTestdata(t, "audit-retention-too-small.yaml")
	_, err := config.Parse(file, data)
	var ve *config.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("Parse = %v, want a ValidationError", err)
	}
	want := []problem{{"audit.maxAge", field.ErrorTypeInvalid}, {"audit.maxBytes", field.ErrorTypeInvalid}}
	if d := cmp.Diff(want, problemsOf(ve.Errors)); d != "" {
		t.Errorf("problems (-want +got):\n%s", d)
	}
	if !strings.Contains(err.Error(), "must be at least 1Mi") {
		t.Errorf("error %q does not say the smallest size", err)
	}

	for _, bad := range []string{"lots", "1.5", "-1Mi"} {
		var b config.ByteSize
		if err := b.UnmarshalJSON([]byte(`"` + bad + `"`)); err == nil {
			t.Errorf("size %q accepted as %d", bad, b)
		}
	}
}
