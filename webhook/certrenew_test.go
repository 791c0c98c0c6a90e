package webhook

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-gitops/strata/internal/config"
	"github.com/strata-gitops/strata/internal/labels"
)

// testCA makes a CA valid for lifetime.
func testCA(t *testing.T, lifetime time.Duration) (*x509.Certificate, *ecdsa.PrivateKey, []byte, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "test-ca"},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(lifetime), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	keyDER, _ := x509.MarshalECPrivateKey(key)
	return cert, key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
}

// testServingCert issues a serving certificate for 127.0.0.1 that expires
// in lifetime (and was valid from now).
func testServingCert(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey, lifetime time.Duration) ([]byte, []byte) {
	t.Helper()
	return testServingCertFrom(t, ca, caKey, time.Now(), lifetime)
}

// testServingCertFrom issues one valid from notBefore for lifetime.
func testServingCertFrom(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey, notBefore time.Time, lifetime time.Duration) ([]byte, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "strata-webhook"},
		NotBefore: notBefore, NotAfter: notBefore.Add(lifetime), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
}

func writeFiles(t *testing.T, dir string, files map[string][]byte) {
	t.Helper()
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

const renewConfig = `apiVersion: strata.dev/v1alpha1
kind: Config
environments:
  prod:
    path: overlays/prod
    clusters: [{name: public, tier: public-cloud}]
`

// runWebhook starts the webhook server of tier public-cloud on addr.
func runWebhook(t *testing.T, rc *rest.Config, o Options) {
	t.Helper()
	cfg, err := config.Parse("strata.yaml", []byte(renewConfig))
	if err != nil {
		t.Fatal(err)
	}
	o.Cluster, o.Tier, o.Config, o.MetricsAddr, o.RESTConfig = "public", config.PublicCloud, cfg, "0", rc
	o.Ready = make(chan struct{})
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, o) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-o.Ready:
	case err := <-done:
		t.Fatalf("webhook: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("webhook did not start")
	}
}

// registeredBundle is the CA bundle the apiserver trusts for the webhook.
func registeredBundle(t *testing.T, c client.Client) []byte {
	t.Helper()
	vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	if err := c.Get(context.Background(), client.ObjectKey{Name: ConfigurationName}, vwc); err != nil {
		t.Fatal(err)
	}
	return vwc.Webhooks[0].ClientConfig.CABundle
}

// keepsServing checks, for d, every few hundred milliseconds, that the
// apiserver gets answers from the webhook (a dry-run create) and that a
// new TLS connection trusting the registration's CA bundle verifies. It
// returns the serial numbers of the serving certificates seen, and the
// registered bundles.
func keepsServing(t *testing.T, c client.Client, addr string, d time.Duration) (map[string]bool, map[string]bool) {
	t.Helper()
	ctx := context.Background()
	serials, bundles := map[string]bool{}, map[string]bool{}
	start := time.Now()
	for i := 0; time.Since(start) < d; i++ {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "team", GenerateName: "probe-",
			Labels: map[string]string{labels.Sensitivity: "public"}}}
		if err := c.Create(ctx, cm, client.DryRunAll); err != nil {
			t.Fatalf("%.1fs in: the apiserver could not admit through the webhook: %v", time.Since(start).Seconds(), err)
		}
		bundle := registeredBundle(t, c)
		bundles[string(bundle)] = true
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(bundle) {
			t.Fatalf("%.1fs in: the registration holds no CA bundle", time.Since(start).Seconds())
		}
		conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12})
		if err != nil {
			t.Fatalf("%.1fs in: a client trusting the registered CA bundle cannot connect: %v", time.Since(start).Seconds(), err)
		}
		serials[conn.ConnectionState().PeerCertificates[0].SerialNumber.String()] = true
		conn.Close()
		time.Sleep(150 * time.Millisecond)
	}
	return serials, bundles
}

// TestShortLivedServingCertificateRenewed: `strata dev` and `strata
// webhook install` leave the CA's key next to the certificates; a webhook
// serving from such a directory renews its serving certificate before it
// expires, and the server picks the new one up. Here it lives 9 seconds
// (renewed after 6: 3- and 6-second ones expired on a loaded 2-CPU machine
// before their renewal ran): the apiserver and a client trusting the
// registered CA bundle keep connecting for over two lifetimes.
func TestShortLivedServingCertificateRenewed(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a kube-apiserver; skipped with -short")
	}
	rc := startAPIServer(t)
	c, err := client.New(rc, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	dir := t.TempDir()
	ca, caKey, caPEM, caKeyPEM := testCA(t, 24*time.Hour)
	certPEM, keyPEM := testServingCert(t, ca, caKey, 9*time.Second)
	writeFiles(t, dir, map[string][]byte{CAFile: caPEM, "ca.key": caKeyPEM, CertFile: certPEM, KeyFile: keyPEM})

	addr := freeAddr(t)
	runWebhook(t, rc, Options{Addr: addr, CertDir: dir})
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team",
		Labels: map[string]string{labels.Sensitivity: "public"}}}); err != nil {
		t.Fatal(err)
	}
	if err := Install(ctx, c, Target{URL: "https://" + addr}, caPEM); err != nil {
		t.Fatal(err)
	}
	serials, _ := keepsServing(t, c, addr, 20*time.Second)
	if len(serials) < 2 {
		t.Fatalf("served %d certificate(s) in 20s; want the 9-second one renewed", len(serials))
	}
	crt, err := os.ReadFile(filepath.Join(dir, CertFile))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(crt)
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: poolOf(caPEM), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil ||
		!strings.Contains(strings.Join(ipStrings(leaf.IPAddresses), ","), "127.0.0.1") {
		t.Errorf("the renewed certificate in %s does not verify under the CA for 127.0.0.1: %v", dir, err)
	}
}

func poolOf(pemData []byte) *x509.CertPool {
	p := x509.NewCertPool()
	p.AppendCertsFromPEM(pemData)
	return p
}

func ipStrings(ips []net.IP) []string {
	s := make([]string, len(ips))
	for i, ip := range ips {
		s[i] = ip.String()
	}
	return s
}

// TestSelfIssuedCertificatesRotate is the chart's mode: the webhook keeps
// its CA and serving certificate in a Secret, issues them, fills and keeps
// the registration's caBundle, and renews both — here a 3-second serving
// certificate and an 8-second CA. A second replica sharing the Secret
// converges on what the first issued instead of fighting it. The
// apiserver and a client trusting the registered bundle keep connecting
// through every renewal and CA rotation.
func TestSelfIssuedCertificatesRotate(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a kube-apiserver; skipped with -short")
	}
	rc := startAPIServer(t)
	c, err := client.New(rc, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, ns := range []string{labels.SystemNamespace, "team"} {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns,
			Labels: map[string]string{labels.Sensitivity: "public"}}}); err != nil {
			t.Fatal(err)
		}
	}
	addr := freeAddr(t)
	// Registered without a caBundle, as the chart does: the webhook fills it.
	if err := Install(ctx, c, Target{URL: "https://" + addr}, nil); err != nil {
		t.Fatal(err)
	}
	const secret = "strata-webhook-certs"
	o := Options{Addr: addr, CertDir: t.TempDir(), CertSecret: secret, CertHosts: []string{"127.0.0.1"},
		CertLifetime: 3 * time.Second, CALifetime: 8 * time.Second}
	runWebhook(t, rc, o)

	replica := &Rotator{Store: SecretStore{Client: c, Namespace: labels.SystemNamespace, Name: secret}, Dir: t.TempDir(),
		Hosts: o.CertHosts, Lifetime: o.CertLifetime, CALifetime: o.CALifetime, Client: c,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	rctx, cancel := context.WithCancel(ctx)
	stopped := make(chan struct{})
	go func() { defer close(stopped); replica.Run(rctx) }()
	t.Cleanup(func() { cancel(); <-stopped })

	serials, bundles := keepsServing(t, c, addr, 14*time.Second)
	if len(serials) < 4 || len(bundles) < 2 {
		t.Fatalf("in 14s: %d serving certificates and %d CA bundles; want the serving certificate renewed every ~2s and the CA at least once", len(serials), len(bundles))
	}
	sec := &corev1.Secret{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: labels.SystemNamespace, Name: secret}, sec); err != nil {
		t.Fatal(err)
	}
	if len(sec.Data[CAKeyFile]) == 0 {
		t.Errorf("Secret %s holds no CA key: nobody could renew", secret)
	}
	// The replica serves what the Secret holds, valid under the registration.
	waitFor(t, func() bool {
		crt, _ := os.ReadFile(filepath.Join(replica.Dir, CertFile))
		leaf := (Material{Cert: crt}).leaf()
		if leaf == nil {
			return false
		}
		_, err := leaf.Verify(x509.VerifyOptions{Roots: poolOf(registeredBundle(t, c)), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
		return err == nil
	})
	if _, err := os.Stat(filepath.Join(replica.Dir, CAKeyFile)); err == nil {
		t.Error("the CA key was written to the serving directory; it belongs in the Secret only")
	}
	t.Logf("%d serving certificates, %d CA bundles in 14s", len(serials), len(bundles))
}
