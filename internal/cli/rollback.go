package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/strata-gitops/strata/internal/cluster"
	"github.com/strata-gitops/strata/internal/inventory"
	"github.com/strata-gitops/strata/internal/rollback"
)

type rollbackOptions struct {
	repoFlags
	remote, kubeconfigDir string
	push, wait            bool
	timeout               time.Duration
}

func newRollbackCommand() *cobra.Command {
	o := &rollbackOptions{}
	cmd := &cobra.Command{
		Use:   "rollback COMMIT",
		Short: "Revert a commit with git, push it, and wait until every cluster is restored",
		Long: `rollback runs git revert --no-edit COMMIT in the local checkout (your git
config, commit signing and hooks apply), pushes the current branch with
--push, and with --wait follows every cluster of the environment until it
runs the revert and is healthy, printing the time to recovery. The
reconciler applies the revert at once when the git server sends it the
push hook; a revert of an applied, approved tree needs no new approval.`,
		Example: `  strata rollback 3f2a9c1 --push --wait --env prod --kubeconfig-dir ~/.strata/clusters`,
		Args:    cobra.ExactArgs(1),
		RunE:    func(cmd *cobra.Command, args []string) error { return o.run(cmd, args[0]) },
	}
	o.repoFlags.add(cmd)
	f := cmd.Flags()
	f.StringVar(&o.remote, "remote", "origin", "remote to push to")
	f.BoolVar(&o.push, "push", false, "push the revert")
	f.BoolVar(&o.wait, "wait", false, "wait until every cluster runs the revert and is healthy")
	f.StringVar(&o.kubeconfigDir, "kubeconfig-dir", "", "directory with <cluster>.kubeconfig files (for --wait)")
	f.DurationVar(&o.timeout, "timeout", 5*time.Minute, "how long --wait waits")
	return cmd
}

func (o *rollbackOptions) run(cmd *cobra.Command, commit string) error {
	ctx := cmd.Context()
	out := cmd.OutOrStdout()
	if o.wait && o.kubeconfigDir == "" {
		return fmt.Errorf("--wait reads the clusters: pass --kubeconfig-dir")
	}
	start := time.Now()
	rev, err := rollback.Revert(ctx, o.repo, commit)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "reverted %s with %.12s\n", commit, rev)
	if o.push {
		if err := rollback.Push(ctx, o.repo, o.remote); err != nil {
			return err
		}
		fmt.Fprintf(out, "pushed to %s (%.1fs)\n", o.remote, time.Since(start).Seconds())
	}
	if !o.wait {
		return nil
	}
	o.revision = rev
	set, err := o.clusterSet(ctx, o.kubeconfigDir)
	if err != nil {
		return err
	}
	defer set.connect.Close()
	wctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	ttr, err := rollback.Wait(wctx, set.names(), rev, start, func(ctx context.Context, name string) rollback.ClusterState {
		return clusterState(ctx, set.connect, set.env, name)
	}, func(name string, after time.Duration, s rollback.ClusterState) {
		fmt.Fprintf(out, "  %-10s restored at %.12s, %s (%.1fs)\n", name, s.Revision, s.Detail, after.Seconds())
	})
	if err != nil {
		return fmt.Errorf("after %s: %w: see strata status --env %s", ttr.Round(time.Millisecond), err, set.env)
	}
	fmt.Fprintf(out, "time to recovery: %.2fs (revert to every cluster converged and healthy)\n", ttr.Seconds())
	return nil
}

// clusterState reads a cluster's inventory status for rollback.Wait.
func clusterState(ctx context.Context, connect cluster.Connector, env, name string) rollback.ClusterState {
	cl, err := connect.Connect(name)
	if err != nil {
		return rollback.ClusterState{Detail: err.Error()}
	}
	inv, err := inventory.LoadStatus(ctx, cl.Client, env) // polled: the status, not every shard
	if err != nil {
		return rollback.ClusterState{Detail: "unreachable"}
	}
	s := inv.Status
	ready := false
	for _, c := range s.Conditions {
		if c.Type == "Ready" && c.Status == "True" {
			ready = true
		}
	}
	return rollback.ClusterState{Revision: s.Revision, Converged: ready && s.Healthy == s.Objects,
		Detail: fmt.Sprintf("%d/%d objects healthy", s.Healthy, s.Objects)}
}
