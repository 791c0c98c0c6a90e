package webhook

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

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

// EnsureCertificates creates, in dir, a CA and a serving certificate for
// hosts (IPs or DNS names) unless they exist, and returns the CA bundle.
func EnsureCertificates(dir string, hosts []string) ([]byte, error) {
	caPath := filepath.Join(dir, CAFile)
	if ca, err := os.ReadFile(caPath); err == nil {
		if _, err := os.Stat(filepath.Join(dir, CertFile)); err == nil {
			return ca, nil
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "strata-webhook-ca"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(5, 0, 0),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature, IsCA: true, BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "strata-webhook"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(1, 0, 0),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	files := map[string][]byte{
		CAFile:   caPEM,
		CertFile: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyFile:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return nil, err
		}
	}
	return caPEM, nil
}

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
