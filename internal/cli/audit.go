package cli

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/strata-gitops/strata/internal/audit"
	"github.com/strata-gitops/strata/internal/cluster"
	"github.com/strata-gitops/strata/internal/desired"
)

type auditOptions struct {
	repoFlags
	kubeconfigDir string
	since         string
	output        string
}

func newAuditCommand() *cobra.Command {
	o := &auditOptions{}
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Report where restricted data ran, who approved it, who broke glass",
		Long: `audit reads the audit log every cluster of the environment keeps (ConfigMaps
strata-audit-* in strata-system, written by the reconciler and the admission
webhook) and reports, for the period: where restricted and confidential data
ran (and any object seen in a tier its sensitivity does not allow), who
approved each commit, who broke glass and why, denials by rule and tier,
rollbacks and auto-reverts, prunes and moves.

Clusters that cannot be read are listed in the report as gaps. The exit code
is 1 when the record shows a violation.`,
		Example: `  strata audit --env prod --kubeconfig-dir ~/.strata/clusters --since 30d
  strata audit --env prod --kubeconfig-dir ~/.strata/clusters --since 2026-01-01 -o markdown > audit.md
  strata audit --env prod --kubeconfig-dir ~/.strata/clusters -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.run(cmd) },
	}
	o.repoFlags.add(cmd)
	_ = cmd.Flags().MarkHidden("at")
	cmd.Flags().StringVar(&o.kubeconfigDir, "kubeconfig-dir", "", "directory with <cluster>.kubeconfig files")
	cmd.Flags().StringVar(&o.since, "since", "30d", "start of the period: a duration back from now (90m, 12h, 30d) or a date (2026-01-02, RFC 3339)")
	cmd.Flags().StringVarP(&o.output, "output", "o", "table", "output format: table, markdown or json")
	_ = cmd.MarkFlagRequired("kubeconfig-dir")
	return cmd
}

// parseSince turns --since into a time: a Go duration or Nd back from now,
// or a date.
func parseSince(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if n, ok := strings.CutSuffix(s, "d"); ok {
		if d, err := strconv.Atoi(n); err == nil && d >= 0 {
			return now.AddDate(0, 0, -d), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("--since %q: use a duration back from now (90m, 12h, 30d) or a date (2026-01-02 or RFC 3339)", s)
}

func (o *auditOptions) run(cmd *cobra.Command) error {
	if !slices.Contains([]string{"table", "markdown", "json"}, o.output) {
		return fmt.Errorf("unknown output format %q: use table, markdown or json", o.output)
	}
	// Whole seconds, rounded up so that events of the last second are in.
	now := time.Now().UTC().Truncate(time.Second).Add(time.Second)
	since, err := parseSince(o.since, now)
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	snap, err := o.snapshot(ctx)
	if err != nil {
		return err
	}
	cfg, err := desired.LoadConfig(snap)
	if err != nil {
		return err
	}
	env, err := o.environment(cfg)
	if err != nil {
		return err
	}
	e, _ := cfg.Environment(env)
	connect := &cluster.KubeconfigDir{Dir: o.kubeconfigDir}
	defer connect.Close()

	ropts := audit.ReportOptions{Environment: env, Since: since, Until: now, Tiers: cfg.Tiers, ClusterTiers: map[string]string{}}
	var (
		mu     sync.Mutex
		wg     sync.WaitGroup
		events []audit.Event
	)
	for _, c := range e.Clusters {
		ropts.ClusterTiers[c.Name] = string(c.Tier)
		wg.Add(1)
		go func(name string) {
			defer wg.Done()
			evs, gap := readAudit(ctx, connect, name)
			mu.Lock()
			defer mu.Unlock()
			if gap != "" {
				ropts.Gaps = append(ropts.Gaps, audit.Gap{Cluster: name, Reason: gap})
			}
			if evs != nil || gap == "" {
				ropts.Clusters = append(ropts.Clusters, name)
			}
			events = append(events, evs...)
		}(c.Name)
	}
	wg.Wait()
	slices.SortFunc(ropts.Gaps, func(a, b audit.Gap) int { return strings.Compare(a.Cluster, b.Cluster) })
	rep := audit.BuildReport(events, ropts)
	switch o.output {
	case "json":
		err = rep.WriteJSON(cmd.OutOrStdout())
	case "markdown":
		err = rep.WriteMarkdown(cmd.OutOrStdout())
	default:
		err = rep.WriteTable(cmd.OutOrStdout())
	}
	if err != nil {
		return err
	}
	for _, g := range rep.Gaps {
		fmt.Fprintf(cmd.ErrOrStderr(), "warning: the audit record of %s is missing or incomplete: %s\n", g.Cluster, g.Reason)
	}
	if n := rep.Summary.Violations; n > 0 {
		return &ExitError{Code: 1, Message: fmt.Sprintf("violation: %d object(s) of %s were seen in a tier their sensitivity does not allow (see Violations)", n, env)}
	}
	return nil
}

// readAudit reads one cluster's whole audit log (where data ran during the
// period depends on what was applied before it). gap says what is missing.
func readAudit(ctx context.Context, connect cluster.Connector, name string) ([]audit.Event, string) {
	cl, err := connect.Connect(name)
	if err != nil {
		return nil, err.Error()
	}
	if err := cl.Reachable(ctx); err != nil {
		return nil, fmt.Sprintf("unreachable: %v", err)
	}
	evs, err := audit.Read(ctx, cl.Client, time.Time{})
	var ie *audit.IntegrityError
	switch {
	case errors.As(err, &ie):
		return fillCluster(evs, name), ie.Error()
	case err != nil:
		return nil, err.Error()
	}
	return fillCluster(evs, name), ""
}

// fillCluster names the cluster of events that do not say where they were
// recorded.
func fillCluster(evs []audit.Event, name string) []audit.Event {
	for i := range evs {
		if evs[i].Cluster == "" {
			evs[i].Cluster = name
		}
	}
	if evs == nil {
		evs = []audit.Event{}
	}
	return evs
}
