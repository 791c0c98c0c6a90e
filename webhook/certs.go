package webhook

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"slices"
	"time"
)

// The webhook's certificates are strata's own: a CA whose certificate is
// the registration's caBundle, and a serving certificate it signs. Both are
// renewed when less than a third of their lifetime is left (as cert-manager
// and Kyverno do), so that a failed renewal has two thirds of a lifetime of
// retries before anything expires. A new CA first joins the bundle next
// to the old one; serving certificates it signs are served only once the
// registration holds the new bundle, and the old CA leaves the bundle when
// it expires.

// CAKeyFile holds the CA's private key next to CAFile. A certificate
// directory with it is strata's to renew.
const CAKeyFile = "ca.key"

// Default lifetimes of the certificates strata issues.
const (
	DefaultCALifetime      = 5 * 365 * 24 * time.Hour
	DefaultServingLifetime = 365 * 24 * time.Hour
)

// Material is the webhook's certificates in PEM: CA is the bundle (the
// current CA first, then older ones still valid), CAKey the current CA's
// key, Cert and Key the serving pair.
type Material struct {
	CA, CAKey, Cert, Key []byte
}

// Equal reports whether m and o hold the same bytes.
func (m Material) Equal(o Material) bool {
	return bytes.Equal(m.CA, o.CA) && bytes.Equal(m.CAKey, o.CAKey) && bytes.Equal(m.Cert, o.Cert) && bytes.Equal(m.Key, o.Key)
}

// issuer is the parsed current CA.
type issuer struct {
	cert *x509.Certificate
	key  crypto.Signer
}

// parseCerts returns the certificates of a PEM bundle.
func parseCerts(data []byte) []*x509.Certificate {
	var out []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return out
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		if c, err := x509.ParseCertificate(block.Bytes); err == nil {
			out = append(out, c)
		}
	}
}

func parseKey(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	if k, err := x509.ParseECPrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("unsupported key type %T", k)
	}
	return s, nil
}

// due reports whether c has less than a third of its lifetime left.
func due(c *x509.Certificate, now time.Time) bool {
	return c.NotAfter.Sub(now) < c.NotAfter.Sub(c.NotBefore)/3
}

// currentCA returns the first CA of m's bundle with its key, when both
// parse, match and the CA is not due.
func (m Material) currentCA(now time.Time) (*issuer, bool) {
	cas := parseCerts(m.CA)
	if len(cas) == 0 || !cas[0].IsCA {
		return nil, false
	}
	key, err := parseKey(m.CAKey)
	if err != nil || !publicKeysEqual(cas[0].PublicKey, key.Public()) {
		return nil, false
	}
	return &issuer{cert: cas[0], key: key}, !due(cas[0], now)
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}

// renewCA returns m with a new CA when the current one is missing, does
// not match its key, or is due. The bundle keeps the CAs still valid.
func renewCA(m Material, now time.Time, lifetime time.Duration) (Material, bool, error) {
	if _, ok := m.currentCA(now); ok {
		pruned := bundle(parseCerts(m.CA), now)
		if bytes.Equal(pruned, m.CA) {
			return m, false, nil
		}
		m.CA = pruned // an old CA expired: it leaves the bundle
		return m, true, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return m, false, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: "strata-webhook-ca"},
		NotBefore: now.Add(-skew(lifetime)), NotAfter: now.Add(lifetime),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature, IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return m, false, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return m, false, err
	}
	ca, _ := x509.ParseCertificate(der)
	m.CA = bundle(append([]*x509.Certificate{ca}, parseCerts(m.CA)...), now)
	m.CAKey = pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	return m, true, nil
}

// bundle encodes the CAs still valid at now, in order, without repeats.
func bundle(cas []*x509.Certificate, now time.Time) []byte {
	var b bytes.Buffer
	var seen [][]byte
	for _, c := range cas {
		if !c.IsCA || now.After(c.NotAfter) || slices.ContainsFunc(seen, func(r []byte) bool { return bytes.Equal(r, c.Raw) }) {
			continue
		}
		seen = append(seen, c.Raw)
		_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	return b.Bytes()
}

// servingOK reports whether m's serving pair matches, verifies under the
// current CA for hosts, and is not due.
func (m Material) servingOK(ca *issuer, hosts []string, now time.Time) bool {
	leaf := m.leaf()
	if leaf == nil || ca == nil || due(leaf, now) {
		return false
	}
	key, err := parseKey(m.Key)
	if err != nil || !publicKeysEqual(leaf.PublicKey, key.Public()) {
		return false
	}
	if leaf.CheckSignatureFrom(ca.cert) != nil {
		return false
	}
	for _, h := range hosts {
		if leaf.VerifyHostname(h) != nil {
			return false
		}
	}
	return true
}

// leaf returns the serving certificate, or nil.
func (m Material) leaf() *x509.Certificate {
	if cs := parseCerts(m.Cert); len(cs) > 0 {
		return cs[0]
	}
	return nil
}

// Hosts returns the IPs and DNS names of the serving certificate.
func (m Material) Hosts() []string {
	leaf := m.leaf()
	if leaf == nil {
		return nil
	}
	var hosts []string
	for _, ip := range leaf.IPAddresses {
		hosts = append(hosts, ip.String())
	}
	return append(hosts, leaf.DNSNames...)
}

// issueServing returns m with a new serving pair for hosts signed by ca,
// expiring with ca at the latest.
func issueServing(m Material, ca *issuer, hosts []string, now time.Time, lifetime time.Duration) (Material, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return m, err
	}
	notAfter := now.Add(lifetime)
	if notAfter.After(ca.cert.NotAfter) {
		notAfter = ca.cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: "strata-webhook"},
		NotBefore: now.Add(-skew(lifetime)), NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return m, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return m, err
	}
	m.Cert = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	m.Key = pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	return m, nil
}

// skew backdates certificates for clocks a little behind ours: an hour,
// or a tenth of a short lifetime.
func skew(lifetime time.Duration) time.Duration { return min(time.Hour, lifetime/10) }

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return big.NewInt(time.Now().UnixNano())
	}
	return n
}

// renewAt is when the next of m's certificates falls due, or an old CA
// of the bundle expires (zero when there is none).
func (m Material) renewAt() time.Time {
	var at time.Time
	earlier := func(t time.Time) {
		if at.IsZero() || t.Before(at) {
			at = t
		}
	}
	for i, c := range parseCerts(m.CA) {
		if i == 0 {
			earlier(c.NotAfter.Add(-c.NotAfter.Sub(c.NotBefore) / 3))
		} else {
			earlier(c.NotAfter)
		}
	}
	for _, c := range parseCerts(m.Cert) {
		earlier(c.NotAfter.Add(-c.NotAfter.Sub(c.NotBefore) / 3))
	}
	return at
}

// EnsureCertificates makes the certificates of dir valid for hosts: it
// creates a CA (with its key, so that the webhook serving from dir renews
// them itself) and a serving certificate when they are missing, and
// renews whichever has less than a third of its lifetime left. It returns
// the CA bundle to register.
func EnsureCertificates(dir string, hosts []string) ([]byte, error) {
	st := DirStore{Dir: dir}
	m, _, err := st.Load(context.Background())
	if err != nil {
		return nil, err
	}
	now := time.Now()
	n, _, err := renewCA(m, now, DefaultCALifetime)
	if err != nil {
		return nil, err
	}
	if ca, _ := n.currentCA(now); !n.servingOK(ca, hosts, now) {
		if n, err = issueServing(n, ca, hosts, now, DefaultServingLifetime); err != nil {
			return nil, err
		}
	}
	if !n.Equal(m) {
		if err := st.Save(context.Background(), n, ""); err != nil {
			return nil, err
		}
	}
	return n.CA, nil
}
