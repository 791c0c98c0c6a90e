package inventory

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-gitops/strata/internal/labels"
)

// Suspension is an on-call engineer's freeze of one environment in one
// cluster (strata suspend): while the ConfigMap strata-suspend-<env> exists
// in strata-system, the reconciler applies, corrects and prunes nothing
// there, so that a hand fix during an incident is not undone. It lives in
// the cluster it freezes, next to the inventory, and is written by its own
// field manager: the reconciler only reads it. Its presence is what counts;
// a suspension whose fields cannot be read still suspends.
type Suspension struct {
	// By is who suspended, as the cluster's apiserver authenticated them.
	By string `json:"by"`
	// At is when.
	At time.Time `json:"at"`
	// Reason says why (an incident link), and so when to resume.
	Reason string `json:"reason"`
}

const (
	suspendByKey     = "by"
	suspendAtKey     = "at"
	suspendReasonKey = "reason"
)

// String says who suspended, when and why, for status lines and events.
func (s *Suspension) String() string {
	at := "at an unknown time"
	if !s.At.IsZero() {
		at = "at " + s.At.UTC().Format(time.RFC3339)
	}
	return fmt.Sprintf("suspended by %s %s: %s", s.By, at, s.Reason)
}

// LoadSuspension reads the suspension of env in the cluster behind c; nil
// when the environment is not suspended there. An error means strata cannot
// tell, and the reconciler must then not apply (fail closed).
func LoadSuspension(ctx context.Context, c client.Reader, env string) (*Suspension, error) {
	cm := &corev1.ConfigMap{}
	err := c.Get(ctx, client.ObjectKey{Namespace: labels.SystemNamespace, Name: labels.SuspensionName(env)}, cm)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading suspension %s/%s: %w", labels.SystemNamespace, labels.SuspensionName(env), err)
	}
	return suspensionOf(cm), nil
}

func suspensionOf(cm *corev1.ConfigMap) *Suspension {
	s := &Suspension{By: cm.Data[suspendByKey], Reason: cm.Data[suspendReasonKey]}
	if s.By == "" {
		s.By = "unknown"
	}
	if s.Reason == "" {
		s.Reason = "no reason given"
	}
	if at, err := time.Parse(time.RFC3339, cm.Data[suspendAtKey]); err == nil {
		s.At = at
	} else {
		s.At = cm.CreationTimestamp.Time
	}
	return s
}

// Suspend records s for env in the cluster behind c, creating strata-system
// if needed, and returns the suspension it replaced (nil if none).
func Suspend(ctx context.Context, c client.Client, env string, s Suspension) (*Suspension, error) {
	prev, err := LoadSuspension(ctx, c, env)
	if err != nil {
		return nil, err
	}
	if err := EnsureNamespace(ctx, c); err != nil {
		return nil, err
	}
	cm := &corev1.ConfigMap{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{
			Namespace: labels.SystemNamespace, Name: labels.SuspensionName(env),
			Labels: map[string]string{labels.ManagedBy: labels.ManagedByValue, labels.Environment: env},
		},
		Data: map[string]string{suspendByKey: s.By, suspendAtKey: s.At.UTC().Format(time.RFC3339), suspendReasonKey: s.Reason},
	}
	if err := c.Patch(ctx, cm, client.Apply, client.FieldOwner(labels.SuspendFieldManager), client.ForceOwnership); err != nil {
		return nil, fmt.Errorf("writing suspension %s/%s: %w", labels.SystemNamespace, cm.Name, err)
	}
	return prev, nil
}

// Resume deletes the suspension of env in the cluster behind c and returns
// it (nil when the environment was not suspended there).
func Resume(ctx context.Context, c client.Client, env string) (*Suspension, error) {
	prev, err := LoadSuspension(ctx, c, env)
	if err != nil || prev == nil {
		return nil, err
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: labels.SystemNamespace, Name: labels.SuspensionName(env)}}
	if err := c.Delete(ctx, cm); err != nil && !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("deleting suspension %s/%s: %w", labels.SystemNamespace, cm.Name, err)
	}
	return prev, nil
}
