package webhook

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/strata-gitops/strata/internal/audit"
	"github.com/strata-gitops/strata/internal/config"
	"github.com/strata-gitops/strata/internal/endpoint"
	"github.com/strata-gitops/strata/internal/labels"
)

// Options configure a webhook server.
type Options struct {
	Cluster string
	Tier    config.Tier
	Config  *config.Config
	// Policies may be nil (sensitivity check only).
	Policies Policies
	// Addr is host:port of the TLS listener.
	Addr string
	// CertDir holds tls.crt and tls.key; the server reloads them when they
	// change. When it also holds ca.key (strata dev, strata webhook
	// install), the webhook renews them itself (see Rotator).
	CertDir string
	// CertSecret, when set, names the Secret of strata-system that holds
	// the webhook's CA and serving certificate (the chart): the webhook
	// issues them when missing, renews them, keeps the registration's
	// caBundle current and serves them from CertDir.
	CertSecret string
	// CertHosts are the serving certificate's IPs and DNS names (default:
	// the current certificate's).
	CertHosts []string
	// CertLifetime and CALifetime are the lifetimes of renewed
	// certificates (defaults DefaultServingLifetime, DefaultCALifetime).
	CertLifetime, CALifetime time.Duration
	// Registration is the ValidatingWebhookConfiguration whose caBundle
	// follows the CA (default ConfigurationName).
	Registration string
	// MetricsAddr serves Prometheus metrics ("" or "0" disables).
	MetricsAddr string
	// MetricsHandlers are served on MetricsAddr too (pprof).
	MetricsHandlers map[string]http.Handler
	// RESTConfig reaches this cluster's apiserver (Namespace informer, events).
	RESTConfig *rest.Config
	Log        *slog.Logger
	// Registry receives the metrics; nil creates one.
	Registry *prometheus.Registry
	// Ready is closed once the server listens.
	Ready chan struct{}
}

// Run serves /validate until ctx ends. Namespaces come from an informer
// cache, so a request never waits for a GET.
func Run(ctx context.Context, o Options) error {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	log := o.Log.With("cluster", o.Cluster, "tier", o.Tier)
	cs, err := kubernetes.NewForConfig(o.RESTConfig)
	if err != nil {
		return err
	}
	factory := informers.NewSharedInformerFactory(cs, 10*time.Minute)
	nsInformer := factory.Core().V1().Namespaces()
	lister := nsInformer.Lister()
	_ = nsInformer.Informer()
	factory.Start(ctx.Done())
	syncCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if !cache.WaitForCacheSync(syncCtx.Done(), nsInformer.Informer().HasSynced) {
		return fmt.Errorf("cluster %s: the Namespace cache did not sync within 30s: check the kubeconfig and that the apiserver answers", o.Cluster)
	}
	reg := o.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	ac, err := client.New(o.RESTConfig, client.Options{})
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	aw := audit.NewWriter(ac, "webhook-"+firstNonEmpty(os.Getenv("POD_NAME"), host), audit.WriterOptions{
		Cluster: o.Cluster, Tier: string(o.Tier), MaxBytes: 256 << 10, Log: log,
		Retention: o.Config.Audit.MaxAgeOrDefault(), RetainBytes: o.Config.Audit.MaxBytesOrDefault()})
	defer func() {
		fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = aw.Close(fctx)
	}()
	h := &Handler{
		Audit:    aw,
		Checker:  NewChecker(o.Config, o.Cluster, o.Tier),
		Policies: o.Policies,
		Namespaces: func(name string) (map[string]string, bool) {
			if ns, err := lister.Get(name); err == nil {
				return ns.Labels, true
			}
			// A Namespace created a moment ago may not be in the cache yet
			// (the controllers fill it at once): ask the apiserver.
			ctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			ns, err := cs.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return nil, false
			}
			return ns.Labels, true
		},
		BreakGlassGroups: o.Config.Webhook.BreakGlassGroups,
		Recorder:         &eventRecorder{cs: cs, log: log},
		Metrics:          NewMetrics(reg),
		Log:              log,
	}
	host, portStr, err := net.SplitHostPort(o.Addr)
	if err != nil {
		return fmt.Errorf("--addr %q: %w", o.Addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return fmt.Errorf("--addr %q: %w", o.Addr, err)
	}
	cw, err := serveCertificates(ctx, o, ac, log)
	if err != nil {
		return err
	}
	srv := crwebhook.NewServer(crwebhook.Options{Host: host, Port: port, CertDir: o.CertDir,
		TLSOpts: []func(*tls.Config){func(c *tls.Config) { c.GetCertificate = cw.GetCertificate }}})
	srv.Register(labels.WebhookPath, h)
	srv.Register("/healthz", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) }))
	defer endpoint.Metrics(o.MetricsAddr, reg, log, o.MetricsHandlers)()
	if o.Ready != nil {
		go func() {
			for ctx.Err() == nil {
				if srv.StartedChecker()(nil) == nil {
					close(o.Ready)
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	log.Info("webhook serving", "addr", o.Addr, "path", labels.WebhookPath)
	return srv.Start(ctx)
}

// eventRecorder records break-glass admissions as Events in strata-system,
// where strata audit collects them.
type eventRecorder struct {
	cs  kubernetes.Interface
	log *slog.Logger
}

func (r *eventRecorder) RecordBreakGlass(_ context.Context, e BreakGlassEvent) {
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "strata-break-glass-", Namespace: labels.SystemNamespace,
			Labels:      map[string]string{labels.ManagedBy: labels.ManagedByValue},
			Annotations: map[string]string{labels.BreakGlass: e.Reason, "strata.dev/user": e.User, "strata.dev/cluster": e.Cluster}},
		// Events must name an object of their own namespace.
		InvolvedObject: corev1.ObjectReference{APIVersion: "v1", Kind: "ConfigMap", Namespace: labels.SystemNamespace, Name: "strata-break-glass"},
		Reason:         labels.BreakGlassEventReason,
		Message: fmt.Sprintf("break-glass by %s (groups %v) on %s %s in cluster %s (%s): %q; bypassed %v",
			e.User, e.Groups, e.Operation, e.Object, e.Cluster, e.Tier, e.Reason, e.Bypassed),
		Type: corev1.EventTypeWarning, FirstTimestamp: metav1.NewTime(e.Time), LastTimestamp: metav1.NewTime(e.Time), Count: 1,
		Source: corev1.EventSource{Component: "strata-webhook"},
	}
	// Off the request path: the admission answer must not wait for it.
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := r.cs.CoreV1().Events(labels.SystemNamespace).Create(ctx, ev, metav1.CreateOptions{}); err != nil {
			r.log.Error("could not record break-glass event", "error", err, "user", e.User, "object", e.Object)
		}
	}()
}

// serveCertificates returns the watcher the TLS server takes its
// certificate from: it reloads CertDir when the files change (a Secret
// volume cert-manager renews) and, when the webhook keeps its own
// certificates, a Rotator renews them before they expire. A renewal that
// fails is retried while the served certificate is still valid; without a
// valid certificate the webhook does not start.
func serveCertificates(ctx context.Context, o Options, c client.Client, log *slog.Logger) (*certwatcher.CertWatcher, error) {
	var rot *Rotator
	_, err := os.Stat(filepath.Join(o.CertDir, CAKeyFile))
	switch {
	case o.CertSecret != "":
		rot = &Rotator{Store: SecretStore{Client: c, Namespace: labels.SystemNamespace, Name: o.CertSecret}, Dir: o.CertDir}
	case err == nil:
		rot = &Rotator{Store: DirStore{Dir: o.CertDir}}
	}
	if rot != nil {
		rot.Hosts, rot.Lifetime, rot.CALifetime = o.CertHosts, o.CertLifetime, o.CALifetime
		rot.Client, rot.Registration, rot.Log = c, o.Registration, log
		if _, err := rot.Tick(ctx); err != nil {
			crt, _ := os.ReadFile(filepath.Join(o.CertDir, CertFile))
			if leaf := (Material{Cert: crt}).leaf(); leaf == nil || time.Now().After(leaf.NotAfter) {
				return nil, fmt.Errorf("no valid serving certificate in %s, and none could be issued: %w", o.CertDir, err)
			}
			log.Error("could not bring the webhook's certificates up to date; serving what there is", "store", rot.Store.String(), "error", err)
		}
	}
	cw, err := certwatcher.New(filepath.Join(o.CertDir, CertFile), filepath.Join(o.CertDir, KeyFile))
	if err != nil {
		return nil, fmt.Errorf("--cert-dir %s: no usable %s and %s: %w", o.CertDir, CertFile, KeyFile, err)
	}
	go func() {
		if err := cw.Start(ctx); err != nil {
			log.Error("certificate watch stopped; the certificate is no longer reloaded from disk", "certDir", o.CertDir, "error", err)
		}
	}()
	if rot != nil {
		rot.Reload = cw.ReadCertificate
		go rot.Run(ctx)
	}
	return cw, nil
}
