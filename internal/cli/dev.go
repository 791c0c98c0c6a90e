package cli

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/strata-gitops/strata/internal/config"
	"github.com/strata-gitops/strata/internal/localcluster"
)

// devOptions are the flags shared by the dev subcommands.
type devOptions struct {
	home        string
	noWebhooks  bool
	configPath  string
	policiesDir string
	clusters    []string
	output      string
}

func (o *devOptions) manager(cmd *cobra.Command) *localcluster.Manager {
	opts := localcluster.DefaultOptions()
	opts.Home = o.home
	opts.Progress = cmd.OutOrStdout()
	return localcluster.New(opts)
}

func newDevCommand() *cobra.Command {
	o := &devOptions{}
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run local Kubernetes clusters for the demo and tests (no Docker)",
		Long: `dev runs real local control planes (etcd, kube-apiserver,
kube-controller-manager, kube-scheduler) with kwokctl's binary runtime, one
fake node each, so Deployments become Available and StatefulSets bind volumes.

The binaries are built once from the Go module proxy into $STRATA_BIN
(default ~/.cache/strata/bin; the first build takes many minutes). Cluster
state and kubeconfigs live under --home: <home>/clusters/<name>.kubeconfig.`,
		Args: cobra.NoArgs,
	}
	cmd.PersistentFlags().StringVar(&o.home, "home", localcluster.DefaultHome(), "directory for the clusters' state and kubeconfigs ($STRATA_HOME)")
	cmd.AddCommand(newDevUpCommand(o), newDevDownCommand(o), newDevStatusCommand(o), newDevGitServerCommand())
	return cmd
}

func newDevUpCommand(o *devOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Create (or start) the local clusters; safe to run again",
		Example: `  strata dev up
  strata dev up --clusters onprem
  export KUBECONFIG=~/.strata/clusters/onprem.kubeconfig`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			names, err := devClusterNames(o.clusters, localcluster.DefaultClusters)
			if err != nil {
				return err
			}
			m := o.manager(cmd)
			if err := m.Up(cmd.Context(), names...); err != nil {
				return fmt.Errorf("%w\n(see `strata dev status`; `strata dev down` removes everything and a new `strata dev up` starts over)", err)
			}
			out := cmd.OutOrStdout()
			if !o.noWebhooks {
				wh := &devWebhooks{home: m.Home(), configPath: o.configPath, policiesDir: o.policiesDir, out: out}
				if err := wh.start(cmd.Context(), m, names); err != nil {
					return err
				}
			}
			fmt.Fprintf(out, "\nkubeconfigs are in %s:\n", m.KubeconfigDir())
			for _, n := range names {
				fmt.Fprintf(out, "  %-10s %s\n", n, m.KubeconfigPath(n))
			}
			fmt.Fprintf(out, "\nto use one with kubectl:\n  export KUBECONFIG=%s\n", m.KubeconfigPath(names[len(names)-1]))
			return nil
		},
	}
	cmd.Flags().StringSliceVar(&o.clusters, "clusters", localcluster.DefaultClusters, "clusters to bring up")
	cmd.Flags().BoolVar(&o.noWebhooks, "no-webhooks", false, "do not start and register the admission webhooks")
	cmd.Flags().StringVar(&o.configPath, "config", config.ConfigFile, "strata.yaml giving each cluster's tier (for its webhook)")
	cmd.Flags().StringVar(&o.policiesDir, "policies", "policies", "policies the webhooks enforce")
	return cmd
}

func newDevDownCommand(o *devOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Delete the local clusters and their kubeconfigs",
		Long: `down stops and deletes the named clusters (all clusters under --home when
--clusters is not given), their data and kubeconfigs. The built binaries stay
in the cache.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			names, err := devClusterNames(o.clusters, nil)
			if err != nil {
				return err
			}
			m := o.manager(cmd)
			(&devWebhooks{home: m.Home(), out: cmd.OutOrStdout()}).stop(names)
			if err := m.Down(cmd.Context(), names...); err != nil {
				return err
			}
			if len(names) == 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "no local clusters left under %s\n", m.Home())
			}
			return nil
		},
	}
	cmd.Flags().StringSliceVar(&o.clusters, "clusters", nil, "clusters to delete (default: every cluster under --home)")
	return cmd
}

func newDevStatusCommand(o *devOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "status",
		Short: "List the local clusters and whether each answers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !slices.Contains([]string{"table", "json"}, o.output) {
				return fmt.Errorf("unknown output format %q: use table or json", o.output)
			}
			m := o.manager(cmd)
			sts, err := m.Status(cmd.Context())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if o.output == "json" {
				if sts == nil {
					sts = []localcluster.ClusterStatus{}
				}
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(sts)
			}
			if len(sts) == 0 {
				_, err := fmt.Fprintf(out, "no local clusters under %s: create them with `strata dev up`\n", m.Home())
				return err
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tSTATE\tVERSION\tSERVER\tKUBECONFIG")
			for _, s := range sts {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.Name, devState(s), dash(s.Version), dash(s.Server), s.Kubeconfig)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			for _, s := range sts {
				if !s.Ready && s.Error != "" {
					fmt.Fprintf(out, "%s: %s\n", s.Name, s.Error)
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&o.output, "output", "o", "table", "output format: table or json")
	return cmd
}

func devState(s localcluster.ClusterStatus) string {
	switch {
	case s.Ready:
		return "ready"
	case !s.Running:
		return "stopped"
	default:
		return "not answering"
	}
}

// devClusterNames cleans --clusters (comma lists, blanks, repeats) and checks
// every name; def is used when none is given.
func devClusterNames(given, def []string) ([]string, error) {
	var names []string
	for _, g := range given {
		for n := range strings.SplitSeq(g, ",") {
			n = strings.TrimSpace(n)
			if n == "" || slices.Contains(names, n) {
				continue
			}
			if err := localcluster.ValidateName(n); err != nil {
				return nil, fmt.Errorf("--clusters: %w", err)
			}
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		names = slices.Clone(def)
	}
	return names, nil
}
