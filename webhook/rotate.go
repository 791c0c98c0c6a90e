package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-gitops/strata/internal/labels"
)

// CertStore keeps the webhook's Material.
type CertStore interface {
	// Load returns the material (empty fields when missing) and a version
	// for Save.
	Load(ctx context.Context) (Material, string, error)
	// Save writes m if the store is still at version; errStale otherwise.
	Save(ctx context.Context, m Material, version string) error
	String() string
}

// errStale: someone else changed the store since it was loaded.
var errStale = errors.New("changed by someone else since it was read")

// DirStore keeps the material as files of a directory: ca.crt, ca.key,
// tls.crt, tls.key (strata dev, strata webhook install).
type DirStore struct{ Dir string }

func (s DirStore) String() string { return "directory " + s.Dir }

// Load reads the files; missing ones are empty.
func (s DirStore) Load(context.Context) (Material, string, error) {
	var m Material
	for _, f := range []struct {
		name string
		dst  *[]byte
	}{{CAFile, &m.CA}, {CAKeyFile, &m.CAKey}, {CertFile, &m.Cert}, {KeyFile, &m.Key}} {
		b, err := os.ReadFile(filepath.Join(s.Dir, f.name))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return Material{}, "", err
		}
		*f.dst = b
	}
	return m, "", nil
}

// Save writes the files that changed (and are not nil), each atomically,
// the key before its certificate.
func (s DirStore) Save(_ context.Context, m Material, _ string) error {
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{CAKeyFile, m.CAKey}, {CAFile, m.CA}, {KeyFile, m.Key}, {CertFile, m.Cert}} {
		if f.data == nil {
			continue // not this store's to keep (the CA key of a Secret's material)
		}
		if err := writeAtomic(filepath.Join(s.Dir, f.name), f.data); err != nil {
			return err
		}
	}
	return nil
}

func writeAtomic(path string, data []byte) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// SecretStore keeps the material in a Secret (the chart: every replica
// serves what the Secret holds, whichever renewed it).
type SecretStore struct {
	Client          client.Client
	Namespace, Name string
}

func (s SecretStore) String() string { return "Secret " + s.Namespace + "/" + s.Name }

// Load reads the Secret; a missing one is empty material.
func (s SecretStore) Load(ctx context.Context) (Material, string, error) {
	sec := &corev1.Secret{}
	err := s.Client.Get(ctx, client.ObjectKey{Namespace: s.Namespace, Name: s.Name}, sec)
	switch {
	case apierrors.IsNotFound(err):
		return Material{}, "", nil
	case err != nil:
		return Material{}, "", fmt.Errorf("reading %s: %w", s, err)
	}
	d := sec.Data
	return Material{CA: d[CAFile], CAKey: d[CAKeyFile], Cert: d[CertFile], Key: d[KeyFile]}, sec.ResourceVersion, nil
}

// Save creates or updates the Secret at version.
func (s SecretStore) Save(ctx context.Context, m Material, version string) error {
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: s.Namespace, Name: s.Name, ResourceVersion: version,
		Labels: map[string]string{labels.ManagedBy: labels.ManagedByValue}},
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{CAFile: m.CA, CAKeyFile: m.CAKey, CertFile: m.Cert, KeyFile: m.Key}}
	var err error
	if version == "" {
		err = s.Client.Create(ctx, sec)
	} else {
		err = s.Client.Update(ctx, sec)
	}
	switch {
	case apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err):
		return fmt.Errorf("%s: %w", s, errStale)
	case err != nil && version == "":
		return fmt.Errorf("creating %s: %w (the chart creates it empty: helm upgrade restores it)", s, err)
	case err != nil:
		return fmt.Errorf("writing %s: %w (the webhook's ServiceAccount needs get and update on it)", s, err)
	}
	return nil
}

// Rotator keeps the webhook's certificates valid: it issues what is
// missing, renews what is due, keeps the registration's caBundle equal to
// the store's CA bundle, and hands the serving pair to the server.
type Rotator struct {
	Store CertStore
	// Dir receives the serving pair (and the CA bundle) when Store is not
	// a DirStore of it.
	Dir string
	// Hosts are the serving certificate's IPs and DNS names (default: the
	// current certificate's).
	Hosts                []string
	CALifetime, Lifetime time.Duration
	// Client reaches the cluster of the registration named Registration;
	// nil leaves the caBundle to whoever registers the webhook.
	Client       client.Client
	Registration string
	// Reload tells the server that the serving pair changed on disk.
	Reload func() error
	Log    *slog.Logger
	Now    func() time.Time

	registered map[string]time.Time // CA bundle → when first seen registered
}

func (r *Rotator) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// grace is how long a new CA has to be in the registration before it signs
// the certificate served (the apiserver sees the update a moment later).
func (r *Rotator) grace() time.Duration { return min(10*time.Second, r.lifetime()/10) }

func (r *Rotator) lifetime() time.Duration {
	if r.Lifetime > 0 {
		return r.Lifetime
	}
	return DefaultServingLifetime
}

func (r *Rotator) caLifetime() time.Duration {
	if r.CALifetime > 0 {
		return r.CALifetime
	}
	return DefaultCALifetime
}

// Tick brings the certificates up to date once and returns when to look
// again.
func (r *Rotator) Tick(ctx context.Context) (time.Duration, error) {
	now := r.now()
	m, ver, err := r.Store.Load(ctx)
	if err != nil {
		return r.retry(m, now), err
	}
	hosts := r.Hosts
	if len(hosts) == 0 {
		hosts = m.Hosts()
	}
	if len(hosts) == 0 {
		return r.retry(m, now), fmt.Errorf("%s holds no serving certificate to take the hosts from: give the webhook its IPs or DNS names (--cert-host)", r.Store)
	}
	next, err := r.caBundle(ctx, &m, &ver, now)
	if err != nil {
		return r.retry(m, now), err
	}
	ca, _ := m.currentCA(now)
	if !m.servingOK(ca, hosts, now) {
		if wait := r.waitForCA(m, now); wait > 0 {
			next = min(next, wait)
		} else {
			n, err := issueServing(m, ca, hosts, now, r.lifetime())
			if err != nil {
				return r.retry(m, now), err
			}
			if err := r.Store.Save(ctx, n, ver); err != nil {
				return r.retry(m, now), err
			}
			m = n
			leaf := m.leaf()
			r.log().Info("webhook serving certificate issued", "store", r.Store.String(), "hosts", hosts,
				"notAfter", leaf.NotAfter.UTC(), "renewAt", leaf.NotAfter.Add(-leaf.NotAfter.Sub(leaf.NotBefore)/3).UTC())
		}
	}
	if err := r.serve(m); err != nil {
		return r.retry(m, now), err
	}
	if at := m.renewAt(); !at.IsZero() {
		next = min(next, at.Sub(now))
	}
	return max(next, 50*time.Millisecond), nil
}

// caBundle renews the CA when due and registers the bundle.
func (r *Rotator) caBundle(ctx context.Context, m *Material, ver *string, now time.Time) (time.Duration, error) {
	n, changed, err := renewCA(*m, now, r.caLifetime())
	if err != nil {
		return 0, err
	}
	if changed {
		if err := r.Store.Save(ctx, n, *ver); err != nil {
			return 0, err
		}
		if *m, *ver, err = r.Store.Load(ctx); err != nil {
			return 0, err
		}
		r.log().Info("webhook CA bundle updated", "store", r.Store.String(), "cas", len(parseCerts(m.CA)))
	}
	if err := r.register(ctx, m.CA, now); err != nil {
		return 0, err
	}
	return time.Minute, nil // also picks up what another replica renewed
}

// waitForCA returns how long the serving certificate has to wait for the
// registration to hold a new CA, while the one served is still good.
func (r *Rotator) waitForCA(m Material, now time.Time) time.Duration {
	leaf := m.leaf()
	if leaf == nil || now.After(leaf.NotAfter) {
		return 0
	}
	since, ok := r.registered[string(m.CA)]
	if !ok || since.IsZero() {
		return 0
	}
	wait := r.grace() - now.Sub(since)
	if wait >= leaf.NotAfter.Sub(now) {
		// Waiting would let the served certificate expire, which fails
		// every call; a CA the apiserver may not have seen yet fails them
		// for a moment at most.
		return 0
	}
	return wait
}

// register sets the caBundle of every webhook of the registration to
// bundle. A missing registration is left to whoever registers the webhook.
func (r *Rotator) register(ctx context.Context, bundle []byte, now time.Time) error {
	if r.registered == nil {
		r.registered = map[string]time.Time{}
	}
	if r.Client == nil {
		return nil
	}
	name := r.Registration
	if name == "" {
		name = ConfigurationName
	}
	updated := false
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{}
		if err := r.Client.Get(ctx, client.ObjectKey{Name: name}, vwc); err != nil {
			return err
		}
		updated = false
		for i := range vwc.Webhooks {
			if !bytes.Equal(vwc.Webhooks[i].ClientConfig.CABundle, bundle) {
				vwc.Webhooks[i].ClientConfig.CABundle = bundle
				updated = true
			}
		}
		if !updated {
			return nil
		}
		return r.Client.Update(ctx, vwc)
	})
	switch {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return fmt.Errorf("updating the caBundle of ValidatingWebhookConfiguration %s: %w (the webhook needs get and update on it)", name, err)
	}
	if _, ok := r.registered[string(bundle)]; !ok || updated {
		if len(r.registered) > 8 {
			clear(r.registered)
		}
		r.registered[string(bundle)] = now
	}
	if updated {
		r.log().Info("webhook registration's caBundle updated", "registration", name)
	}
	return nil
}

// serve writes the serving pair where the server reads it and reloads it.
func (r *Rotator) serve(m Material) error {
	if r.Dir != "" {
		if err := (DirStore{Dir: r.Dir}).Save(context.Background(), Material{CA: m.CA, Cert: m.Cert, Key: m.Key}, ""); err != nil {
			return fmt.Errorf("writing the serving certificate to %s: %w", r.Dir, err)
		}
	}
	if r.Reload != nil {
		return r.Reload()
	}
	return nil
}

// retry is how soon to try again after a failure: soon, and sooner as
// the serving certificate nears its end.
func (r *Rotator) retry(m Material, now time.Time) time.Duration {
	d := 5 * time.Second
	if leaf := m.leaf(); leaf != nil && leaf.NotAfter.After(now) {
		d = min(d, leaf.NotAfter.Sub(now)/10)
	}
	return max(d, 50*time.Millisecond)
}

func (r *Rotator) log() *slog.Logger {
	if r.Log != nil {
		return r.Log
	}
	return slog.Default()
}

// Run ticks until ctx ends, logging failures (the server keeps serving the
// certificate it has, which is valid for a third of its lifetime more).
func (r *Rotator) Run(ctx context.Context) {
	for {
		next, err := r.Tick(ctx)
		if err != nil && ctx.Err() == nil {
			r.log().Error("could not renew the webhook's certificates; retrying", "store", r.Store.String(), "retryIn", next, "error", err)
		}
		t := time.NewTimer(next)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}
