package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/strata-gitops/strata/internal/cluster"
	"github.com/strata-gitops/strata/internal/inventory"
	"github.com/strata-gitops/strata/internal/labels"
)

type statusOptions struct {
	repoFlags
	kubeconfigDir string
	output        string
	serve         string
}

func newStatusCommand() *cobra.Command {
	o := &statusOptions{}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show each cluster's applied revision, health, drift and last error",
		Long: `status reads the environment's clusters from strata.yaml and, from each
cluster, the inventory strata keeps there (ConfigMap strata-inventory-<env> in
strata-system): applied revision, objects, health, drift and the last error.`,
		Example: `  strata status --env prod --kubeconfig-dir ~/.strata/clusters
  strata status --env prod --kubeconfig-dir ~/.strata/clusters -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.run(cmd) },
	}
	o.repoFlags.add(cmd)
	cmd.Flags().StringVar(&o.kubeconfigDir, "kubeconfig-dir", "", "directory with <cluster>.kubeconfig files")
	cmd.Flags().StringVarP(&o.output, "output", "o", "table", "output format: table or json")
	cmd.Flags().StringVar(&o.serve, "serve", "", "serve a read-only status page on ADDR (e.g. :8080) instead of printing; without --env it shows every environment")
	_ = cmd.MarkFlagRequired("kubeconfig-dir")
	return cmd
}

// ClusterStatus is one row of strata status.
type ClusterStatus struct {
	Cluster   string           `json:"cluster"`
	Tier      string           `json:"tier"`
	Reachable bool             `json:"reachable"`
	Error     string           `json:"error,omitempty"`
	Status    inventory.Status `json:"status"`
	Ready     string           `json:"ready"`
	Reason    string           `json:"reason"`
	// Suspended is the cluster's suspension as recorded there now (strata
	// suspend), which the reconciler honours at its next tick.
	Suspended *inventory.Suspension `json:"suspended,omitempty"`
}

func (o *statusOptions) run(cmd *cobra.Command) error {
	if o.serve != "" {
		return serveStatus(cmd, o.serve, o)
	}
	if !slices.Contains([]string{"table", "json"}, o.output) {
		return fmt.Errorf("unknown output format %q: use table or json", o.output)
	}
	set, err := o.clusterSet(cmd.Context(), o.kubeconfigDir)
	if err != nil {
		return err
	}
	defer set.connect.Close()
	env, connect := set.env, set.connect
	rows := make([]ClusterStatus, len(set.clusters))
	var wg sync.WaitGroup
	for i, c := range set.clusters {
		rows[i] = ClusterStatus{Cluster: c.Name, Tier: string(c.Tier)}
		wg.Add(1)
		go func(row *ClusterStatus) {
			defer wg.Done()
			readClusterStatus(cmd.Context(), connect, env, row)
		}(&rows[i])
	}
	wg.Wait()
	if o.output == "json" {
		enc := json.NewEncoder(cmd.OutOrStdout())
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"environment": env, "clusters": rows})
	}
	writeStatusTable(cmd.OutOrStdout(), env, rows)
	return nil
}

func readClusterStatus(ctx context.Context, connect cluster.Connector, env string, row *ClusterStatus) {
	inv, reachable, err := cluster.ReadInventory(ctx, connect, row.Cluster, env)
	row.Reachable = reachable
	if err != nil {
		row.Error = err.Error()
		return
	}
	row.Suspended = inv.Suspension
	if !inv.Exists {
		row.Error = "never reconciled: run strata reconcile"
		return
	}
	row.Status = inv.Status
	for _, c := range inv.Status.Conditions {
		if c.Type == "Ready" {
			row.Ready, row.Reason = string(c.Status), c.Reason
		}
	}
}

func writeStatusTable(w io.Writer, env string, rows []ClusterStatus) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CLUSTER\tTIER\tREACHABLE\tREVISION\tOBJECTS\tHEALTHY\tPROGRESSING\tFAILED\tDRIFTED\tWINDOWS\tLAST RECONCILE\tREADY\tLAST ERROR")
	for _, r := range rows {
		s := r.Status
		last := "-"
		if !s.LastReconcile.IsZero() {
			last = time.Since(s.LastReconcile).Round(time.Second).String() + " ago"
		}
		msg := r.Error
		if msg == "" {
			msg = s.LastError
		}
		ready := dash(r.Ready)
		if r.Reason != "" {
			ready += " (" + r.Reason + ")"
		}
		if r.Suspended != nil {
			ready = "SUSPENDED"
		}
		fmt.Fprintf(tw, "%s\t%s\t%t\t%s\t%d\t%d\t%d\t%d\t%d (total %d)\t%s\t%s\t%s\t%s\n", r.Cluster, r.Tier, r.Reachable,
			dash(shortRev(s.Revision)), s.Objects, s.Healthy, s.Progressing, s.Failed, s.Drifted, s.DriftTotal,
			dash(strings.Join(s.Windows, ",")), last, ready, dash(msg))
	}
	tw.Flush()
	for _, r := range rows {
		if s := r.Suspended; s != nil {
			fmt.Fprintf(w, "\n%s: %s — nothing is applied, corrected or pruned there; lift it with strata resume --env %s --cluster %s\n", r.Cluster, s, env, r.Cluster)
		}
		if n := r.Status.HeldTotal; n > 0 {
			fmt.Fprintf(w, "\n%s: %d objects differ from git and are left as they are (%s: %s): %s\n", r.Cluster, n,
				labels.Reconcile, labels.ReconcileDisabled, strings.Join(r.Status.Held, ", "))
		}
	}
	if g := newestGate(rows); g != nil {
		fmt.Fprintf(w, "\napproval gate: %s\n", gateLine(g.Enforced, g.Pinned, g.Message))
	}
}

// newestGate is the gate verdict the clusters recorded last.
func newestGate(rows []ClusterStatus) *inventory.GateStatus {
	var newest *ClusterStatus
	for i := range rows {
		if rows[i].Status.Gate != nil && (newest == nil || rows[i].Status.LastReconcile.After(newest.Status.LastReconcile)) {
			newest = &rows[i]
		}
	}
	if newest == nil {
		return nil
	}
	return newest.Status.Gate
}
