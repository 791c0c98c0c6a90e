package cli

import (
	"context"
	"errors"
	"fmt"
	"github.com/fluxcd/pkg/runtime/pprof"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime/debug"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/strata-gitops/strata/internal/approval"
	"github.com/strata-gitops/strata/internal/cluster"
	"github.com/strata-gitops/strata/internal/endpoint"
	"github.com/strata-gitops/strata/internal/inventory"
	"github.com/strata-gitops/strata/internal/labels"
	"github.com/strata-gitops/strata/internal/secrets"
	"github.com/strata-gitops/strata/internal/source"
	"github.com/strata-gitops/strata/reconciler"
)

type reconcileOptions struct {
	repo, branch, env, kubeconfigDir, kubeconfig, self, metricsAddr, cacheDir string
	enablePprof                                                               bool
	gcPercent                                                                 int
	peerKubeconfigDir                                                         string
	once, allowMassPrune                                                      bool
	interval, driftInterval, healthTimeout                                    time.Duration
	hookAddr, hookSecretFile                                                  string
	allowForcePush                                                            bool
	trustedKeys                                                               []string
	trustedKeysFile                                                           string
	ageKeyDir                                                                 string
	git                                                                       source.Credentials
	runtime                                                                   runtimeFlags
}

func newReconcileCommand() *cobra.Command {
	o := &reconcileOptions{}
	cmd := &cobra.Command{
		Use:   "reconcile",
		Short: "Keep an environment's clusters at a git branch",
		Long: `reconcile fetches the branch, renders and places the environment, applies
each cluster's share with server-side apply (field manager strata), waits for
health, and prunes what left git. Clusters are reconciled concurrently and
independently. Push mode reads DIR/<cluster>.kubeconfig (--kubeconfig-dir)
or, in a cluster, Secrets strata-cluster-<name> in strata-system. Agent mode
(--self NAME) applies only that cluster's share.`,
		Example: `  strata reconcile --repo . --env prod --kubeconfig-dir ~/.strata/clusters --once
  strata reconcile --repo https://git.example.com/platform/config --branch main --env prod \
    --kubeconfig-dir /etc/strata/clusters --interval 1m --metrics-addr :8080`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.run(cmd) },
	}
	f := cmd.Flags()
	f.StringVar(&o.repo, "repo", ".", "config repository: a local path, an https URL or an ssh URL (credentials: --git-*)")
	f.StringVar(&o.branch, "branch", "main", "branch to follow: only refs/heads/<branch> and the approvals notes are fetched, never a tag or another ref of that name")
	f.StringVar(&o.env, "env", "", "environment of strata.yaml")
	f.StringVar(&o.kubeconfigDir, "kubeconfig-dir", "", "directory with <cluster>.kubeconfig files (push mode)")
	f.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig of the cluster strata runs in (leader election, Secrets with cluster credentials, agent mode)")
	f.StringVar(&o.self, "self", "", "agent mode: reconcile only this cluster, with --kubeconfig or in-cluster credentials")
	f.StringVar(&o.peerKubeconfigDir, "peer-kubeconfig-dir", "", "agent mode: directory with <cluster>.kubeconfig files of the other clusters, with credentials that may only get ConfigMaps in "+labels.SystemNamespace+"; an object that moved to another cluster is pruned here only once that cluster's inventory records it applied and healthy (make-before-break across agents)")
	f.BoolVar(&o.once, "once", false, "reconcile once, print the result and exit (1 when a cluster failed)")
	f.DurationVar(&o.interval, "interval", time.Minute, "poll interval of the branch")
	f.DurationVar(&o.driftInterval, "drift-interval", 30*time.Second, "how often to look for drift between revisions")
	f.DurationVar(&o.healthTimeout, "health-timeout", 0, "health wait timeout (default: rollout.healthTimeout of strata.yaml)")
	f.BoolVar(&o.allowMassPrune, "allow-mass-prune", false, "allow a change to delete more than rollout.maxPrunePercent of a cluster's objects")
	f.StringVar(&o.metricsAddr, "metrics-addr", ":8080", "address of the Prometheus metrics endpoint (\"0\" disables it)")
	f.IntVar(&o.gcPercent, "gc-percent", 50, "garbage collector target: collect when the heap has grown by this percentage of what is live (Go's GOGC, which wins when set; Go's default is 100, lower uses less memory and more CPU)")
	f.BoolVar(&o.enablePprof, "enable-pprof", false, "also serve Go's pprof endpoints (/debug/pprof/) on the metrics address, for profiling; they expose the process's memory, Secrets included")
	f.StringVar(&o.ageKeyDir, "age-key-dir", "", "directory (or mounted Secret) with the age private keys of the tiers this reconciler serves, <tier>.agekey each; read at every apply, so a rotated key needs no restart")
	o.runtime.bind(f) // Flux's --kube-api-qps/-burst, --log-level/-encoding, --enable-leader-election (needs --kubeconfig or in-cluster credentials)
	f.StringVar(&o.cacheDir, "cache-dir", "", "keep the remote repository's mirror here between runs")
	f.StringVar(&o.hookAddr, "hook-addr", "", "serve the signed push hook ("+labels.HookPath+") here, e.g. :9292, so a push is applied at once")
	f.StringVar(&o.hookSecretFile, "hook-secret-file", "", "file with the push hook's shared secret (HMAC)")
	f.StringSliceVar(&o.trustedKeys, "trusted-keys", nil, "root of trust: fingerprints (SHA256:…) of the reviewers' keys that may approve a revision with no approved revision before it, kept outside the repository so that a rewritten repository cannot bring its own reviewers (strata keygen prints a key's fingerprint)")
	f.StringVar(&o.trustedKeysFile, "trusted-keys-file", "", "file with --trusted-keys fingerprints, one per line (a mounted ConfigMap)")
	addGitCredentialFlags(f, &o.git)
	f.BoolVar(&o.allowForcePush, "allow-force-push", false, "accept a branch whose history was rewritten (otherwise refused, keeping the last good state)")
	return cmd
}

func (o *reconcileOptions) homeConfig() (*rest.Config, error) {
	if o.kubeconfig != "" {
		return clientcmd.BuildConfigFromFlags("", o.kubeconfig)
	}
	cfg, err := rest.InClusterConfig()
	if err != nil {
		return nil, fmt.Errorf("no --kubeconfig and not running in a cluster (%v): pass --kubeconfig", err)
	}
	return cfg, nil
}

func (o *reconcileOptions) connector() (cluster.Connector, func(), error) {
	switch {
	case o.kubeconfigDir != "":
		k := &cluster.KubeconfigDir{Dir: o.kubeconfigDir, Client: o.runtime.client}
		return k, k.Close, nil
	case o.self != "":
		cfg, err := o.homeConfig()
		if err != nil {
			return nil, nil, err
		}
		cl, err := cluster.NewClusterWithOptions(o.self, cfg, o.runtime.client)
		if err != nil {
			return nil, nil, err
		}
		return cluster.Static{o.self: cl}, cl.Close, nil
	default:
		cfg, err := o.homeConfig()
		if err != nil {
			return nil, nil, fmt.Errorf("push mode needs --kubeconfig-dir, or Secrets %s<name> in the cluster strata runs in: %w", labels.ClusterSecretPrefix, err)
		}
		c, err := client.New(cfg, client.Options{})
		if err != nil {
			return nil, nil, err
		}
		return &cluster.SecretConnector{Home: c, Client: o.runtime.client}, func() {}, nil
	}
}

func (o *reconcileOptions) run(cmd *cobra.Command) error {
	if o.env == "" {
		return errors.New("--env is required: the environment of strata.yaml to reconcile")
	}
	ctx := cmd.Context()
	log, _, err := o.runtime.loggers()
	if err != nil {
		return err
	}
	o.tuneGC(log)
	pin, err := o.pin()
	if err != nil {
		return err
	}
	if pin.Empty() {
		log.Warn("no root of trust pinned (--trusted-keys): a revision with no approved revision before it is refused; reviewers otherwise come from the repository's history alone")
	}
	repo, err := source.Open(ctx, o.repo, source.OpenOptions{Dir: o.cacheDir, Branch: o.branch, Credentials: o.git})
	if err != nil {
		return err
	}
	connect, closeAll, err := o.connector()
	if err != nil {
		return err
	}
	defer closeAll()
	peers, err := o.peers(log)
	if err != nil {
		return err
	}
	if peers != nil {
		defer peers.Close()
	}
	reg := prometheus.NewRegistry()
	opts := reconciler.DefaultOptions()
	opts.Environment, opts.Revision, opts.Self = o.env, o.branch, o.self
	if peers != nil {
		opts.Peers = peers
	}
	opts.Interval, opts.DriftInterval, opts.HealthTimeout = o.interval, o.driftInterval, o.healthTimeout
	opts.AllowMassPrune, opts.AllowNonFastForward, opts.Log = o.allowMassPrune, o.allowForcePush, log
	opts.TrustedKeys = pin
	opts.AgeKeys = secrets.KeyDir{Dir: o.ageKeyDir}
	if o.runtime.election.Enable {
		opts.Metrics = reconciler.NewMetrics(crmetrics.Registry)
	} else {
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		opts.Metrics = reconciler.NewMetrics(reg)
	}
	rec := reconciler.New(repo, connect, opts)
	if o.once {
		res := rec.ReconcileOnce(ctx)
		printResult(cmd.OutOrStdout(), o.env, res)
		if res.Failed() {
			return &ExitError{Code: 1}
		}
		return nil
	}
	trigger := make(chan struct{}, 1)
	if o.hookAddr != "" {
		secret, err := os.ReadFile(o.hookSecretFile)
		if err != nil || len(strings.TrimSpace(string(secret))) == 0 {
			return fmt.Errorf("--hook-addr needs --hook-secret-file with the shared secret the git server signs pushes with: %v", err)
		}
		mux := http.NewServeMux()
		mux.Handle(labels.HookPath, &reconciler.HookHandler{Secret: []byte(strings.TrimSpace(string(secret))), Trigger: trigger, Log: log})
		defer endpoint.Start(o.hookAddr, mux, log, "push hook")()
	}
	if o.runtime.election.Enable {
		return o.runElected(ctx, rec, trigger)
	}
	defer endpoint.Metrics(o.metricsAddr, reg, log, pprofHandlers(o.enablePprof))()
	return rec.Run(ctx, trigger)
}

// peers connects an agent to the other clusters' inventories
// (--peer-kubeconfig-dir), for make-before-break across agents.
func (o *reconcileOptions) peers(log *slog.Logger) (*cluster.KubeconfigDir, error) {
	switch {
	case o.peerKubeconfigDir != "" && o.self == "":
		return nil, errors.New("--peer-kubeconfig-dir is for agent mode (--self NAME): push mode sees every cluster already")
	case o.peerKubeconfigDir != "":
		if _, err := os.Stat(o.peerKubeconfigDir); err != nil {
			return nil, fmt.Errorf("--peer-kubeconfig-dir: %w (a directory of <cluster>.kubeconfig files of the other clusters)", err)
		}
		return &cluster.KubeconfigDir{Dir: o.peerKubeconfigDir, Client: o.runtime.client}, nil
	case o.self != "":
		log.Warn("agent mode without --peer-kubeconfig-dir: an object that moves to another cluster is pruned here at once, without waiting until it runs there (no make-before-break across agents)")
	}
	return nil, nil
}

// pin reads the root of trust from --trusted-keys and --trusted-keys-file.
func (o *reconcileOptions) pin() (approval.Pin, error) {
	keys := append([]string(nil), o.trustedKeys...)
	if o.trustedKeysFile != "" {
		data, err := os.ReadFile(o.trustedKeysFile)
		if err != nil {
			return approval.Pin{}, fmt.Errorf("--trusted-keys-file: %w", err)
		}
		for _, l := range strings.Split(string(data), "\n") {
			if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
				keys = append(keys, l)
			}
		}
	}
	return approval.ParsePin(keys)
}

// runElected runs the loop under leader election so that of several
// replicas only one reconciles.
func (o *reconcileOptions) runElected(ctx context.Context, rec *reconciler.Reconciler, trigger <-chan struct{}) error {
	cfg, err := o.homeConfig()
	if err != nil {
		return err
	}
	return reconciler.RunElected(ctx, cfg, reconciler.ElectionOptions{
		ID: reconciler.LeaseID(o.env), MetricsAddr: o.metricsAddr, MetricsHandlers: pprofHandlers(o.enablePprof), Election: o.runtime.election, Log: o.runtime.logr,
	}, func(ctx context.Context) error { return rec.Run(ctx, trigger) })
}

// tuneGC sets the garbage collector's target (--gc-percent) unless GOGC
// is set. Half of a reconciler's memory is its binary and the objects it
// keeps between reconciles; each reconcile allocates about as much again
// and drops it, and with Go's default (100) the heap grows to twice what is
// live before a collection. 50 trades some CPU for a peak about a quarter
// lower (bench/RESULTS.md, "Reconciler memory at scale").
func (o *reconcileOptions) tuneGC(log *slog.Logger) {
	if v := os.Getenv("GOGC"); v != "" {
		log.Info("garbage collector target from GOGC", "GOGC", v)
		return
	}
	if o.gcPercent != 100 {
		debug.SetGCPercent(o.gcPercent)
	}
}

// pprofHandlers are served next to the metrics: Go's pprof endpoints under
// /debug/pprof/ with --enable-pprof, as Flux's controllers serve them
// (fluxcd/pkg/runtime/pprof). Off by default: a heap profile shows the
// process's memory, decrypted Secrets and admitted objects included.
func pprofHandlers(enabled bool) map[string]http.Handler {
	if !enabled {
		return nil
	}
	return pprof.GetHandlers()
}

func printResult(w io.Writer, env string, res *reconciler.Result) {
	if res.Revision != nil {
		fmt.Fprintf(w, "environment %s at %s (%s)\n", env, res.Revision.Short(), res.Revision.Subject())
	}
	if res.Err != nil {
		fmt.Fprintf(w, "error: %v\n", res.Err)
	}
	if g := res.Gate; g != nil {
		fmt.Fprintf(w, "approval gate: %s\n", gateLine(g.Enforced, g.Pinned, g.Message))
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CLUSTER\tTIER\tOBJECTS\tCREATED\tCONFIGURED\tPRUNED\tMOVED\tDRIFTED\tHEALTHY\tDURATION\tRESULT")
	for _, c := range res.Clusters {
		result := "ok"
		switch {
		case c.Skipped:
			result = "skipped"
		case c.Suspended != nil:
			result = c.Suspended.String() + ": nothing applied or pruned"
		case c.Err != nil:
			result = c.Err.Error()
		case len(c.Waiting) > 0:
			result = fmt.Sprintf("%d objects wait for their new cluster", len(c.Waiting))
		case len(c.Held) > 0:
			result = fmt.Sprintf("ok; %d objects differ from git and are left as they are (%s)", len(c.Held), inventory.Describe(c.Held, 3))
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d/%d\t%s\t%s\n", c.Name, c.Tier, c.Objects, c.Created, c.Configured,
			len(c.Pruned), len(c.MovedOut), c.Drifted, c.Healthy, c.Objects, c.Duration.Round(time.Millisecond), strings.TrimSpace(result))
	}
	tw.Flush()
}

// gateLine says what the approval gate decided and, loudly, when it is off
// or its trust is not pinned.
func gateLine(enforced, pinned bool, msg string) string {
	switch {
	case !enforced:
		return "OFF (approvals.enforce: false in strata.yaml) — " + msg
	case !pinned:
		return msg + " (trust root not pinned: --trusted-keys)"
	}
	return msg
}
