package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/fluxcd/cli-utils/pkg/flowcontrol"
	runtimeclient "github.com/fluxcd/pkg/runtime/client"
	"github.com/fluxcd/pkg/ssa"
	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	"github.com/strata-gitops/strata/internal/inventory"
	"github.com/strata-gitops/strata/internal/labels"
)

// Cluster is a connection to one target cluster.
type Cluster struct {
	Name      string
	Config    *rest.Config
	Client    client.Client
	Clientset kubernetes.Interface
	Manager   *ssa.ResourceManager
	Recorder  record.EventRecorder
	stop      func()
}

// Close stops the cluster's event broadcaster.
func (c *Cluster) Close() {
	if c.stop != nil {
		c.stop()
	}
}

// NewCluster connects to the cluster behind cfg with the default client
// options (DefaultClientOptions).
func NewCluster(name string, cfg *rest.Config) (*Cluster, error) {
	return NewClusterWithOptions(name, cfg, DefaultClientOptions())
}

// DefaultClientOptions are the defaults of Flux's --kube-api-qps and
// --kube-api-burst, read from fluxcd/pkg/runtime/client's own flags.
func DefaultClientOptions() runtimeclient.Options {
	var o runtimeclient.Options
	o.BindFlags(pflag.NewFlagSet("defaults", pflag.ContinueOnError))
	return o
}

// NewClusterWithOptions connects to the cluster behind cfg. Requests time
// out so that a hung cluster fails fast instead of holding up the others.
func NewClusterWithOptions(name string, cfg *rest.Config, opts runtimeclient.Options) (*Cluster, error) {
	cfg = rest.CopyConfig(cfg)
	if cfg.Timeout == 0 {
		cfg.Timeout = 15 * time.Second
	}
	if cfg.QPS == 0 {
		rateLimit(cfg, opts)
	}
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", name, err)
	}
	mapper, err := apiutil.NewDynamicRESTMapper(cfg, httpClient)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", name, err)
	}
	c, err := client.New(cfg, client.Options{HTTPClient: httpClient, Mapper: mapper})
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", name, err)
	}
	cs, err := kubernetes.NewForConfigAndClient(cfg, httpClient)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", name, err)
	}
	poller := newStatusPoller(c, mapper)
	rm := ssa.NewResourceManager(c, poller, ssa.Owner{Field: labels.FieldManager, Group: "strata.dev"})
	rm.SetConcurrency(8)
	b := record.NewBroadcaster()
	b.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: cs.CoreV1().Events("")})
	rec := b.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "strata"})
	return &Cluster{Name: name, Config: cfg, Client: c, Clientset: cs, Manager: rm, Recorder: rec, stop: b.Shutdown}, nil
}

// rateLimit sets cfg's client-side rate limit the way
// fluxcd/pkg/runtime/client.GetConfigOrDie does for Flux's own cluster:
// off when the apiserver enforces API Priority and Fairness, which protects
// it better than a client can (applying N objects is 2N requests: a client
// limit of 100 QPS paced a 1,000-object first apply by ~4 s per cluster,
// bench/peers); otherwise opts' QPS and burst (--kube-api-qps,
// --kube-api-burst), also when the cluster does not answer the check.
func rateLimit(cfg *rest.Config, opts runtimeclient.Options) {
	if opts.QPS == 0 && opts.Burst == 0 {
		opts = DefaultClientOptions()
	}
	cfg.QPS, cfg.Burst = opts.QPS, opts.Burst
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if on, err := flowcontrol.IsEnabled(ctx, cfg); err == nil && on {
		cfg.QPS, cfg.Burst = -1, -1 // a negative QPS disables client-go's limiter
	}
}

// Reachable asks the apiserver's /readyz with a short timeout.
func (c *Cluster) Reachable(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	_, err := c.Clientset.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
	return err
}

// Connector returns connections to clusters by name, caching them.
type Connector interface {
	Connect(name string) (*Cluster, error)
}

// KubeconfigDir connects to clusters with DIR/<name>.kubeconfig files. The
// file (and the certificate files it names) is read at every Connect: a
// changed one gives a new connection, so rotated credentials need no restart.
type KubeconfigDir struct {
	Dir string
	// Client are the client options (--kube-api-qps, --kube-api-burst);
	// zero uses DefaultClientOptions.
	Client runtimeclient.Options
	conns  connections
}

// Connect implements Connector.
func (k *KubeconfigDir) Connect(name string) (*Cluster, error) {
	path := filepath.Join(k.Dir, name+".kubeconfig")
	if _, err := os.Stat(path); err != nil {
		// Removed credentials are revoked ones: the old connection goes too.
		k.conns.drop(name)
		return nil, fmt.Errorf("no credentials for cluster %s: %s is missing; put its kubeconfig there (strata dev up writes them for local clusters)", name, path)
	}
	kc, err := clientcmd.LoadFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: reading %s: %w", name, path, err)
	}
	flat, cfg, err := flatten(kc)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: kubeconfig %s: %w", name, path, err)
	}
	return k.conns.get(name, flat, func() (*Cluster, error) { return NewClusterWithOptions(name, cfg, k.Client) })
}

// Close closes every connection.
func (k *KubeconfigDir) Close() { k.conns.closeAll() }

// Static serves fixed connections (tests, in-cluster agent mode).
type Static map[string]*Cluster

// Connect implements Connector.
func (s Static) Connect(name string) (*Cluster, error) {
	if c, ok := s[name]; ok {
		return c, nil
	}
	return nil, fmt.Errorf("no credentials for cluster %s", name)
}

// ReadInventory connects to a cluster and reads the inventory of env and
// its suspension, for the readers of status (strata status, the status
// page). reachable says
// whether the apiserver answered; err says why the inventory is missing.
func ReadInventory(ctx context.Context, connect Connector, cluster, env string) (inv *inventory.Inventory, reachable bool, err error) {
	cl, err := connect.Connect(cluster)
	if err != nil {
		return nil, false, err
	}
	if err := cl.Reachable(ctx); err != nil {
		return nil, false, fmt.Errorf("unreachable: %v", err)
	}
	inv, err = inventory.LoadStatus(ctx, cl.Client, env) // the status, not every shard
	if err != nil {
		return nil, true, err
	}
	// The suspension itself, not only the status: strata suspend shows at
	// once, before the reconciler's next tick.
	inv.Suspension, err = inventory.LoadSuspension(ctx, cl.Client, env)
	return inv, true, err
}
