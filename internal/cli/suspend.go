package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	authv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/strata-gitops/strata/internal/audit"
	"github.com/strata-gitops/strata/internal/cluster"
	"github.com/strata-gitops/strata/internal/config"
	"github.com/strata-gitops/strata/internal/inventory"
)

type suspendOptions struct {
	repoFlags
	kubeconfigDir string
	cluster       string
	reason        string
	resume        bool
}

func newSuspendCommand() *cobra.Command {
	o := &suspendOptions{}
	cmd := &cobra.Command{
		Use:   "suspend",
		Short: "Freeze reconciliation of an environment in its clusters during an incident",
		Long: `suspend records, in each cluster of the environment (or only --cluster), that
strata must leave it alone: ConfigMap strata-suspend-<env> in strata-system
with who (as the cluster's apiserver authenticates you), when and why. The
reconciler then applies, corrects and prunes nothing there, so that a hand
fix is not undone; its status says Ready=False/Suspended, the
strata_cluster_suspended metric is 1, and the audit log records it. Other
clusters go on. A suspension only ever makes strata do less: it never skips
the approval gate. strata resume lifts it.

To freeze a single object instead, annotate it:
  kubectl annotate KIND NAME strata.dev/reconcile=disabled`,
		Example: `  strata suspend --env prod --cluster onprem --kubeconfig-dir ~/.strata/clusters --reason "INC-4711: hand-patched ledger-db"
  strata suspend --env prod --kubeconfig-dir ~/.strata/clusters --reason "INC-4711"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.run(cmd) },
	}
	o.bind(cmd)
	cmd.Flags().StringVar(&o.reason, "reason", "", "why (an incident link): shown in status and on the page, audited")
	_ = cmd.MarkFlagRequired("reason")
	return cmd
}

func newResumeCommand() *cobra.Command {
	o := &suspendOptions{resume: true}
	cmd := &cobra.Command{
		Use:   "resume",
		Short: "Lift a suspension: strata reconciles the clusters again",
		Long: `resume deletes the suspension strata suspend recorded in each cluster of the
environment (or only --cluster). At its next tick the reconciler applies the
branch's revision there (through the approval gate, as always), corrects
drift and prunes what left git — a hand fix made during the suspension is
replaced by git's version, so commit it first.`,
		Example: `  strata resume --env prod --cluster onprem --kubeconfig-dir ~/.strata/clusters`,
		Args:    cobra.NoArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return o.run(cmd) },
	}
	o.bind(cmd)
	cmd.Flags().StringVar(&o.reason, "reason", "", "why it is safe again (optional; audited)")
	return cmd
}

func (o *suspendOptions) bind(cmd *cobra.Command) {
	o.repoFlags.add(cmd)
	_ = cmd.Flags().MarkHidden("at")
	_ = cmd.Flags().MarkHidden("worktree")
	cmd.Flags().StringVar(&o.kubeconfigDir, "kubeconfig-dir", "", "directory with <cluster>.kubeconfig files")
	cmd.Flags().StringVar(&o.cluster, "cluster", "", "only this cluster (default: every cluster of the environment)")
	_ = cmd.MarkFlagRequired("kubeconfig-dir")
}

// suspendRow is the outcome in one cluster.
type suspendRow struct {
	cluster, tier, by string
	prev              *inventory.Suspension
	err               error
}

func (o *suspendOptions) run(cmd *cobra.Command) error {
	if !o.resume && strings.TrimSpace(o.reason) == "" {
		return errors.New("--reason is required: say why (an incident link), so that others know when it is safe to resume")
	}
	ctx := cmd.Context()
	set, err := o.clusterSet(ctx, o.kubeconfigDir)
	if err != nil {
		return err
	}
	defer set.connect.Close()
	clusters := set.clusters
	if o.cluster != "" {
		i := slices.IndexFunc(clusters, func(c config.Cluster) bool { return c.Name == o.cluster })
		if i < 0 {
			return fmt.Errorf("cluster %q is not in environment %s (clusters: %v): pick one of those", o.cluster, set.env, set.names())
		}
		clusters = clusters[i : i+1]
	}
	rows := make([]suspendRow, len(clusters))
	var wg sync.WaitGroup
	for i, c := range clusters {
		rows[i] = suspendRow{cluster: c.Name, tier: string(c.Tier)}
		wg.Add(1)
		go func(row *suspendRow) {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			row.by, row.prev, row.err = o.apply(cctx, set.connect, set.env, row)
		}(&rows[i])
	}
	wg.Wait()
	return o.report(cmd, set.env, rows)
}

// apply suspends or resumes env in one cluster and audits it there.
func (o *suspendOptions) apply(ctx context.Context, connect cluster.Connector, env string, row *suspendRow) (string, *inventory.Suspension, error) {
	cl, err := connect.Connect(row.cluster)
	if err != nil {
		return "", nil, err
	}
	by := whoAmI(ctx, cl)
	ev := audit.Event{Environment: env, Cluster: row.cluster, Tier: row.tier, Actor: by, Message: o.reason}
	var prev *inventory.Suspension
	if o.resume {
		if prev, err = inventory.Resume(ctx, cl.Client, env); err != nil || prev == nil {
			return by, nil, err
		}
		ev.Kind, ev.Message = audit.Resume, strings.TrimSpace("lifted "+prev.String()+"; "+o.reason)
	} else {
		s := inventory.Suspension{By: by, At: time.Now().UTC().Truncate(time.Second), Reason: o.reason}
		if prev, err = inventory.Suspend(ctx, cl.Client, env, s); err != nil {
			return by, nil, err
		}
		ev.Kind = audit.Suspend
	}
	ws := &audit.Writers{Source: "strata-cli", Options: audit.WriterOptions{Environment: env}}
	ws.For(row.cluster, cl.Client).Record(ev)
	if err := ws.Close(ctx); err != nil {
		return by, prev, fmt.Errorf("done, but the audit record could not be written: %w", err)
	}
	return by, prev, nil
}

// whoAmI is the user the cluster's apiserver authenticates the kubeconfig
// as (SelfSubjectReview), so that a suspension names who really made it;
// the local user, marked as such, when the apiserver cannot say.
func whoAmI(ctx context.Context, cl *cluster.Cluster) string {
	r, err := cl.Clientset.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err == nil && r.Status.UserInfo.Username != "" {
		return r.Status.UserInfo.Username
	}
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	host, _ := os.Hostname()
	return fmt.Sprintf("%s@%s (local user: the apiserver did not say who)", name, host)
}

func (o *suspendOptions) report(cmd *cobra.Command, env string, rows []suspendRow) error {
	tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CLUSTER\tTIER\tBY\tRESULT")
	failed := 0
	for _, r := range rows {
		var result string
		switch {
		case r.err != nil && o.resume:
			failed++
			result = fmt.Sprintf("NOT resumed: %v", r.err)
		case r.err != nil:
			failed++
			result = fmt.Sprintf("NOT suspended, strata may still apply here: %v", r.err)
		case o.resume && r.prev == nil:
			result = "was not suspended"
		case o.resume:
			result = "resumed: strata reconciles it at its next tick (lifted " + r.prev.String() + ")"
		case r.prev != nil:
			result = "suspended (replaces " + r.prev.String() + ")"
		default:
			result = "suspended: strata applies, corrects and prunes nothing here"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.cluster, r.tier, dash(r.by), result)
	}
	tw.Flush()
	if failed > 0 {
		verb := "suspend"
		if o.resume {
			verb = "resume"
		}
		return &ExitError{Code: 1, Message: fmt.Sprintf("%d of %d clusters of %s could not %s: fix their credentials or reachability and run it again", failed, len(rows), env, verb)}
	}
	if !o.resume {
		fmt.Fprintf(cmd.OutOrStdout(), "\nlift it with: strata resume --env %s%s --kubeconfig-dir %s\n", env, clusterFlag(o.cluster), o.kubeconfigDir)
	}
	return nil
}

func clusterFlag(c string) string {
	if c == "" {
		return ""
	}
	return " --cluster " + c
}
