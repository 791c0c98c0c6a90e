package webhook

import (
	"context"
	"fmt"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-gitops/strata/internal/config"
	"github.com/strata-gitops/strata/internal/labels"
)

// Names of the registration and of the files in a certificate directory.
const (
	ConfigurationName = "strata-validate"
	WebhookName       = "validate.strata.dev"
	CAFile            = "ca.crt"
	CertFile          = "tls.crt"
	KeyFile           = "tls.key"
	// TimeoutSeconds is the apiserver's wait for an answer.
	TimeoutSeconds = 5
)

// Target is where the apiserver reaches the webhook: a URL (local mode) or
// a Service (in cluster).
type Target struct {
	URL              string
	ServiceNamespace string
	ServiceName      string
	ServicePort      int32
	// ExemptNamespaces are not sent to the webhook (strata.yaml
	// webhook.exemptNamespaces); nil: config.DefaultExemptNamespaces.
	ExemptNamespaces []string
}

// Configuration returns the ValidatingWebhookConfiguration that sends every
// CREATE and UPDATE (not DELETE: it is never denied) outside the exempt
// namespaces to the webhook, failing closed.
func Configuration(t Target, caBundle []byte) *admissionregistrationv1.ValidatingWebhookConfiguration {
	fail := admissionregistrationv1.Fail
	none := admissionregistrationv1.SideEffectClassNone
	equivalent := admissionregistrationv1.Equivalent
	scope := admissionregistrationv1.AllScopes
	timeout := int32(TimeoutSeconds)
	exempt := t.ExemptNamespaces
	if exempt == nil {
		exempt = config.DefaultExemptNamespaces()
	}
	cc := admissionregistrationv1.WebhookClientConfig{CABundle: caBundle}
	if t.URL != "" {
		u := t.URL + labels.WebhookPath
		cc.URL = &u
	} else {
		path := labels.WebhookPath
		cc.Service = &admissionregistrationv1.ServiceReference{Namespace: t.ServiceNamespace, Name: t.ServiceName, Path: &path, Port: &t.ServicePort}
	}
	return &admissionregistrationv1.ValidatingWebhookConfiguration{
		TypeMeta: metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "ValidatingWebhookConfiguration"},
		ObjectMeta: metav1.ObjectMeta{Name: ConfigurationName,
			Labels: map[string]string{labels.ManagedBy: labels.ManagedByValue}},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name: WebhookName, ClientConfig: cc,
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
				Rule:       admissionregistrationv1.Rule{APIGroups: []string{"*"}, APIVersions: []string{"*"}, Resources: []string{"*"}, Scope: &scope},
			}},
			NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
				Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpNotIn, Values: exempt,
			}}},
			FailurePolicy: &fail, SideEffects: &none, MatchPolicy: &equivalent, TimeoutSeconds: &timeout,
			AdmissionReviewVersions: []string{"v1", "v1beta1"},
		}},
	}
}

// Install registers the configuration with server-side apply.
func Install(ctx context.Context, c client.Client, t Target, caBundle []byte) error {
	vwc := Configuration(t, caBundle)
	if err := c.Patch(ctx, vwc, client.Apply, client.FieldOwner(labels.FieldManager), client.ForceOwnership); err != nil {
		return fmt.Errorf("registering ValidatingWebhookConfiguration %s: %w", ConfigurationName, err)
	}
	return nil
}
