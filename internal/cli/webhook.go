package cli

import (
	"fmt"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/fluxcd/pkg/runtime/logger"
	"github.com/spf13/cobra"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-gitops/strata/internal/config"
	"github.com/strata-gitops/strata/internal/policy"
	"github.com/strata-gitops/strata/webhook"
)

type webhookOptions struct {
	tier, env, cluster, configPath, policiesDir, certDir, addr, metricsAddr, kubeconfig string
	certSecret, registration                                                            string
	certHosts                                                                           []string
	certLifetime, caLifetime                                                            time.Duration
	enablePprof                                                                         bool
	log                                                                                 logger.Options
}

func newWebhookCommand() *cobra.Command {
	o := &webhookOptions{}
	cmd := &cobra.Command{
		Use:   "webhook",
		Short: "Serve the validating admission webhook of one cluster",
		Long: `webhook denies, in the cluster it guards, any object whose data-sensitivity
is not allowed in the cluster's tier — whoever sends it — and any object a
policy of policies/ denies. The sensitivity is the one strata render places
by: the highest of the object's label, its pod template's and its
Namespace's. It fails closed in every tier: an object without one is denied,
except in webhook.exemptNamespaces and for cluster-scoped kinds that hold no
data (Namespace, ClusterRole, CustomResourceDefinition, ...). DELETE is never
denied, nor the control plane's own Events and Leases, nor an update that
only removes finalizers of an object being deleted. Dry-run requests are
judged like real ones but leave no audit event and no metric. Objects
carrying strata.dev/break-glass pass only for members of
webhook.breakGlassGroups, and are recorded.`,
		Example: `  strata webhook --cluster onprem --tier on-prem --config strata.yaml --policies policies \
    --cert-dir /tmp/certs --kubeconfig ~/.strata/clusters/onprem.kubeconfig --addr 127.0.0.1:9443`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.run(cmd) },
	}
	f := cmd.Flags()
	f.StringVar(&o.tier, "tier", "", "tier of this cluster: public-cloud, private-cloud or on-prem")
	f.StringVar(&o.env, "env", "", "environment (for messages)")
	f.StringVar(&o.cluster, "cluster", "", "name of this cluster (for messages and metrics)")
	f.StringVar(&o.configPath, "config", config.ConfigFile, "strata.yaml with the tier table and webhook settings")
	f.StringVar(&o.policiesDir, "policies", "", "directory of Kyverno ValidatingPolicy files (empty: sensitivity check only)")
	f.StringVar(&o.certDir, "cert-dir", "", "directory with tls.crt and tls.key, reloaded when they change; with ca.key too (strata webhook install, strata dev), the webhook renews them itself")
	f.StringVar(&o.certSecret, "cert-secret", "", "Secret in strata-system where the webhook keeps its own CA and serving certificate: issued when missing, renewed before expiry, served from --cert-dir, the registration's caBundle kept current")
	f.StringSliceVar(&o.certHosts, "cert-host", nil, "IP or DNS name of the serving certificate (repeatable; default: the current certificate's)")
	f.DurationVar(&o.certLifetime, "cert-lifetime", webhook.DefaultServingLifetime, "lifetime of a renewed serving certificate (renewed when a third is left)")
	f.DurationVar(&o.caLifetime, "ca-lifetime", webhook.DefaultCALifetime, "lifetime of a renewed CA")
	f.StringVar(&o.registration, "registration", webhook.ConfigurationName, "ValidatingWebhookConfiguration whose caBundle follows a renewed CA")
	f.StringVar(&o.addr, "addr", ":9443", "TLS listen address")
	f.StringVar(&o.metricsAddr, "metrics-addr", ":8081", "Prometheus metrics address (\"0\" disables)")
	f.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig of this cluster (default: in-cluster)")
	f.BoolVar(&o.enablePprof, "enable-pprof", false, "also serve Go's pprof endpoints (/debug/pprof/) on the metrics address, for profiling; they expose the process's memory, admitted objects included")
	o.log.BindFlags(f) // Flux's --log-level and --log-encoding
	_ = cmd.MarkFlagRequired("tier")
	_ = cmd.MarkFlagRequired("cert-dir")
	cmd.AddCommand(newWebhookInstallCommand())
	return cmd
}

// loadWebhookInputs reads strata.yaml and the policies from local files.
func loadWebhookInputs(configPath, policiesDir string) (*config.Config, *policy.Set, error) {
	data, err := os.ReadFile(configPath)
	if err != nil {
		return nil, nil, fmt.Errorf("--config: %w", err)
	}
	cfg, err := config.Parse(configPath, data)
	if err != nil {
		return nil, nil, err
	}
	if policiesDir == "" {
		return cfg, nil, nil
	}
	set, err := policy.Load(os.DirFS(policiesDir), ".")
	if err != nil {
		return nil, nil, fmt.Errorf("--policies %s: %w", policiesDir, err)
	}
	return cfg, set, nil
}

func parseTier(s string) (config.Tier, error) {
	t := config.Tier(s)
	if !t.Valid() {
		return "", fmt.Errorf("--tier %q is not a tier: use one of %s", s, config.JoinTiers(config.KnownTiers))
	}
	return t, nil
}

// webhookGCPercent is the webhook's GOGC unless the environment sets one.
// Its live heap is a few MiB, and at GOMAXPROCS=1 every collection runs on
// the thread answering the apiserver: collecting 4× less often cut its p99
// at 1,000 req/s roughly in half for ~30 MiB more RSS (bench/RESULTS.md).
// GOMEMLIMIT (the chart sets it from the memory limit) still bounds it.
const webhookGCPercent = 400

func (o *webhookOptions) run(cmd *cobra.Command) error {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(webhookGCPercent)
	}
	tier, err := parseTier(o.tier)
	if err != nil {
		return err
	}
	cfg, set, err := loadWebhookInputs(o.configPath, o.policiesDir)
	if err != nil {
		return err
	}
	rc, err := (&reconcileOptions{kubeconfig: o.kubeconfig}).homeConfig()
	if err != nil {
		return err
	}
	// controller-runtime's TLS server and certificate watcher log through
	// it too: structured, like the webhook's own lines.
	log, _, err := (&runtimeFlags{log: o.log}).loggers()
	if err != nil {
		return err
	}
	opts := webhook.Options{
		Cluster: firstNonEmptyString(o.cluster, string(tier)), Tier: tier, Config: cfg,
		Addr: o.addr, CertDir: o.certDir, MetricsAddr: o.metricsAddr, RESTConfig: rc,
		CertSecret: o.certSecret, CertHosts: o.certHosts, CertLifetime: o.certLifetime, CALifetime: o.caLifetime,
		Registration: o.registration, MetricsHandlers: pprofHandlers(o.enablePprof),
		Log: log,
	}
	if set != nil {
		opts.Policies = set
	}
	return webhook.Run(cmd.Context(), opts)
}

func firstNonEmptyString(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

type webhookInstallOptions struct {
	cluster, kubeconfig, tier, url, certDir, service, configPath string
	hosts                                                        []string
}

func newWebhookInstallCommand() *cobra.Command {
	o := &webhookInstallOptions{}
	cmd := &cobra.Command{
		Use:   "install",
		Short: "Create (or renew) the webhook's certificates and register it with a cluster",
		Long: `install makes a CA and a serving certificate in --cert-dir when they are missing
(renewing whichever has less than a third of its lifetime left) and registers
the webhook with the CA bundle. The CA's key stays in --cert-dir, so that
strata webhook serving from it renews its certificates and the registration's
caBundle itself before they expire.`,
		Example: `  strata webhook install --cluster onprem --kubeconfig ~/.strata/clusters/onprem.kubeconfig \
    --tier on-prem --url https://127.0.0.1:9443 --cert-dir ~/.strata/webhooks/onprem`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := parseTier(o.tier); err != nil {
				return err
			}
			var exempt []string // nil: the defaults
			if o.configPath != "" {
				cfg, _, err := loadWebhookInputs(o.configPath, "")
				if err != nil {
					return err
				}
				exempt = cfg.Webhook.ExemptNamespaces
			}
			t := webhook.Target{URL: strings.TrimSuffix(o.url, "/"), ExemptNamespaces: exempt}
			hosts := append([]string{"127.0.0.1", "localhost"}, o.hosts...)
			if o.service != "" {
				ns, name, ok := strings.Cut(o.service, "/")
				if !ok {
					return fmt.Errorf("--service %q: use NAMESPACE/NAME", o.service)
				}
				t = webhook.Target{ServiceNamespace: ns, ServiceName: name, ServicePort: 443, ExemptNamespaces: exempt}
				hosts = append(hosts, name+"."+ns+".svc", name+"."+ns+".svc.cluster.local")
			}
			if t.URL == "" && t.ServiceName == "" {
				return fmt.Errorf("give --url (webhook outside the cluster) or --service NAMESPACE/NAME (in the cluster)")
			}
			ca, err := webhook.EnsureCertificates(o.certDir, hosts)
			if err != nil {
				return fmt.Errorf("certificates in %s: %w", o.certDir, err)
			}
			rc, err := clientcmd.BuildConfigFromFlags("", o.kubeconfig)
			if err != nil {
				return fmt.Errorf("--kubeconfig: %w", err)
			}
			c, err := client.New(rc, client.Options{})
			if err != nil {
				return err
			}
			if err := webhook.Install(cmd.Context(), c, t, ca); err != nil {
				return fmt.Errorf("cluster %s: %w", o.cluster, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "cluster %s: %s registered (tier %s, failurePolicy Fail, timeout %ds); certificates in %s\n",
				o.cluster, webhook.ConfigurationName, o.tier, webhook.TimeoutSeconds, o.certDir)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.cluster, "cluster", "", "cluster name (for messages)")
	f.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig of the cluster")
	f.StringVar(&o.tier, "tier", "", "tier of the cluster")
	f.StringVar(&o.url, "url", "", "https URL of a webhook running outside the cluster, e.g. https://127.0.0.1:9443")
	f.StringVar(&o.service, "service", "", "NAMESPACE/NAME of the webhook's Service when it runs in the cluster")
	f.StringVar(&o.certDir, "cert-dir", "", "where the CA, its key and the serving certificate are (created when missing, renewed when due)")
	f.StringSliceVar(&o.hosts, "host", nil, "extra IPs or DNS names for the serving certificate")
	f.StringVar(&o.configPath, "config", "", "strata.yaml whose webhook.exemptNamespaces the registration skips (default: the control plane's namespaces and strata-system)")
	_ = cmd.MarkFlagRequired("kubeconfig")
	_ = cmd.MarkFlagRequired("tier")
	_ = cmd.MarkFlagRequired("cert-dir")
	return cmd
}
