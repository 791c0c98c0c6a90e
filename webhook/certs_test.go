package webhook

import (
	"bytes"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func readDir(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, f := range []string{CAFile, "ca.key", CertFile, KeyFile} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err == nil {
			out[f] = b
		}
	}
	return out
}

func leafOf(t *testing.T, crt []byte) *x509.Certificate {
	t.Helper()
	leaf := (Material{Cert: crt}).leaf()
	if leaf == nil {
		t.Fatal("no certificate")
	}
	return leaf
}

// TestEnsureCertificatesRenewsWhenDue: `strata dev up` and `strata webhook
// install` used to keep whatever the directory held, however close to its
// end. A certificate with less than a third of its lifetime left (here an
// hour-long one with 10 minutes left) is renewed from the same CA, fresh
// ones are kept.
func TestEnsureCertificatesRenewsWhenDue(t *testing.T) {
	dir := t.TempDir()
	ca, caKey, caPEM, caKeyPEM := testCA(t, 3*365*24*time.Hour)
	crt, key := testServingCertFrom(t, ca, caKey, time.Now().Add(-50*time.Minute), time.Hour)
	writeFiles(t, dir, map[string][]byte{CAFile: caPEM, "ca.key": caKeyPEM, CertFile: crt, KeyFile: key})

	bundle, err := EnsureCertificates(dir, []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	got := readDir(t, dir)
	renewed := leafOf(t, got[CertFile])
	if bytes.Equal(got[CertFile], crt) || time.Until(renewed.NotAfter) < 300*24*time.Hour {
		t.Fatalf("serving certificate valid until %v: want it renewed for a year", renewed.NotAfter)
	}
	if !bytes.Equal(got[CAFile], caPEM) || !bytes.Equal(got["ca.key"], caKeyPEM) {
		t.Error("the CA changed although it was not due")
	}
	if _, err := renewed.Verify(x509.VerifyOptions{Roots: poolOf(bundle), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		t.Errorf("the renewed certificate does not verify under the returned bundle: %v", err)
	}
	if renewed.VerifyHostname("127.0.0.1") != nil {
		t.Errorf("renewed certificate hosts %v %v", renewed.IPAddresses, renewed.DNSNames)
	}

	// Fresh: kept as it is.
	again, err := EnsureCertificates(dir, []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	for f, b := range readDir(t, dir) {
		if !bytes.Equal(b, got[f]) {
			t.Errorf("%s changed although nothing was due", f)
		}
	}
	if !bytes.Equal(again, bundle) {
		t.Error("the bundle changed although nothing was due")
	}
	// A new host needs a new certificate from the same CA.
	if _, err := EnsureCertificates(dir, []string{"127.0.0.1", "strata.example"}); err != nil {
		t.Fatal(err)
	}
	now := readDir(t, dir)
	if bytes.Equal(now[CertFile], got[CertFile]) || !bytes.Equal(now[CAFile], got[CAFile]) || leafOf(t, now[CertFile]).VerifyHostname("strata.example") != nil {
		t.Error("a new host did not get a new serving certificate from the same CA")
	}
}

// TestEnsureCertificatesKeepsCAKey: a directory made before the CA's key
// was kept (the CA cannot sign again) gets a new CA with its key, next to
// the old CA in the bundle, so that the webhook can renew by itself.
func TestEnsureCertificatesKeepsCAKey(t *testing.T) {
	dir := t.TempDir()
	ca, caKey, caPEM, _ := testCA(t, 24*time.Hour)
	crt, key := testServingCert(t, ca, caKey, time.Hour)
	writeFiles(t, dir, map[string][]byte{CAFile: caPEM, CertFile: crt, KeyFile: key})
	bundle, err := EnsureCertificates(dir, []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	got := readDir(t, dir)
	if len(got["ca.key"]) == 0 {
		t.Fatal("no ca.key: the webhook could not renew its certificate itself")
	}
	cas := parseCerts(bundle)
	if len(cas) != 2 || !cas[1].Equal(ca) {
		t.Errorf("bundle of %d CAs; want the new one and the old one", len(cas))
	}
	if _, err := leafOf(t, got[CertFile]).Verify(x509.VerifyOptions{Roots: poolOf(bundle), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		t.Error(err)
	}
}

// TestCABundleDuringRotation: a due CA is replaced; the old one stays in
// the bundle while valid (certificates it signed are still served), and
// leaves it once expired.
func TestCABundleDuringRotation(t *testing.T) {
	now := time.Now()
	m, _, err := renewCA(Material{}, now, 9*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if len(parseCerts(m.CA)) != 1 {
		t.Fatal("a new CA bundle holds one CA")
	}
	if _, changed, _ := renewCA(m, now.Add(time.Hour), 9*time.Hour); changed {
		t.Error("a fresh CA was renewed")
	}
	later := now.Add(7 * time.Hour) // 2h of 9.9h left: due
	r, changed, err := renewCA(m, later, 9*time.Hour)
	if err != nil || !changed || len(parseCerts(r.CA)) != 2 || bytes.Equal(r.CAKey, m.CAKey) {
		t.Fatalf("rotation: changed %v, %d CAs, err %v; want a new CA first and the old one kept", changed, len(parseCerts(r.CA)), err)
	}
	if cas := parseCerts(r.CA); !cas[1].Equal(parseCerts(m.CA)[0]) {
		t.Error("the old CA is not second in the bundle")
	}
	pruned, changed, _ := renewCA(r, now.Add(10*time.Hour), 9*time.Hour)
	if !changed || len(parseCerts(pruned.CA)) != 1 {
		t.Errorf("after the old CA expired: %d CAs in the bundle, want 1", len(parseCerts(pruned.CA)))
	}
}
