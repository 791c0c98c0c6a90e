package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Audit bounds the audit log every cluster keeps in strata-system (ConfigMaps
// strata-audit-*). Without a bound a loop of denied requests fills etcd.
type Audit struct {
	// MaxAge rolls off events older than this (default 2160h, 90 days).
	MaxAge Duration `json:"maxAge,omitzero"`
	// MaxBytes bounds the audit ConfigMaps of one cluster, all writers
	// together (default 32Mi). The oldest are rolled off first.
	MaxBytes ByteSize `json:"maxBytes,omitzero"`
}

const (
	// DefaultAuditMaxAge is how long audit events are kept by default.
	DefaultAuditMaxAge = 90 * 24 * time.Hour
	// DefaultAuditMaxBytes bounds the audit log of a cluster by default:
	// far below etcd's quota (2 GiB by default), room for ~80,000 events.
	DefaultAuditMaxBytes ByteSize = 32 << 20
	// MinAuditMaxBytes is the smallest bound accepted: a few ConfigMaps per
	// writer, or the writers would roll off each other's current parts.
	MinAuditMaxBytes ByteSize = 1 << 20
	// MinAuditMaxAge is the shortest retention accepted.
	MinAuditMaxAge = time.Hour
)

// MaxAgeOrDefault returns the retention age.
func (a Audit) MaxAgeOrDefault() time.Duration {
	if a.MaxAge.Duration == 0 {
		return DefaultAuditMaxAge
	}
	return a.MaxAge.Duration
}

// MaxBytesOrDefault returns the size bound.
func (a Audit) MaxBytesOrDefault() int64 {
	if a.MaxBytes == 0 {
		return int64(DefaultAuditMaxBytes)
	}
	return int64(a.MaxBytes)
}

func (a Audit) validate(p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if d := a.MaxAge.Duration; d != 0 && d < MinAuditMaxAge {
		errs = append(errs, field.Invalid(p.Child("maxAge"), d.String(),
			fmt.Sprintf("must be at least %s (or left out for %s)", MinAuditMaxAge, DefaultAuditMaxAge)))
	}
	if b := a.MaxBytes; b != 0 && b < MinAuditMaxBytes {
		errs = append(errs, field.Invalid(p.Child("maxBytes"), b.String(),
			fmt.Sprintf("must be at least %s (or left out for %s)", MinAuditMaxBytes, DefaultAuditMaxBytes)))
	}
	return errs
}

// ByteSize is a size in bytes written as a number or a Kubernetes quantity
// ("32Mi", "1Gi", "500M").
type ByteSize int64

// UnmarshalJSON reads a number or a quantity string.
func (b *ByteSize) UnmarshalJSON(data []byte) error {
	s := strings.Trim(string(data), `"`)
	if s == "" || s == "null" {
		*b = 0
		return nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		*b = ByteSize(n)
		return nil
	}
	q, err := resource.ParseQuantity(s)
	if err != nil {
		return fmt.Errorf("invalid size %q: use bytes or a quantity such as 32Mi or 1Gi", s)
	}
	n, ok := q.AsInt64()
	if !ok || n < 0 {
		return fmt.Errorf("invalid size %q: must be a whole number of bytes, 0 or more", s)
	}
	*b = ByteSize(n)
	return nil
}

// MarshalJSON writes the size as a quantity string.
func (b ByteSize) MarshalJSON() ([]byte, error) { return []byte(`"` + b.String() + `"`), nil }

// String formats the size as a binary quantity ("32Mi") when it is one.
func (b ByteSize) String() string {
	return resource.NewQuantity(int64(b), resource.BinarySI).String()
}
