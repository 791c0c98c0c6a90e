package cli

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/strata-gitops/strata/internal/desired"
	"github.com/strata-gitops/strata/internal/source"
)

type renderOptions struct {
	repoFlags
	cluster string
	output  string
	outDir  string
}

func newRenderCommand() *cobra.Command {
	o := &renderOptions{}
	cmd := &cobra.Command{
		Use:   "render",
		Short: "Render an environment and show where every object goes and why",
		Long: `render builds the environment's overlay from a git revision (never from
uncommitted files unless --worktree), places every object by its sensitivity
and prints the placement table, the manifests per cluster, or JSON.
It exits 1 listing every object that cannot be placed; nothing is written then.`,
		Example: `  strata render --env prod
  strata render --env prod --repo https://git.example.com/platform/config --revision v1.4.0
  strata render --env prod --cluster onprem -o yaml | kubectl apply --dry-run=server -f -
  strata render --env prod --out rendered/`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.run(cmd) },
	}
	o.repoFlags.add(cmd)
	cmd.Flags().StringVar(&o.cluster, "cluster", "", "show only what this cluster receives")
	cmd.Flags().StringVarP(&o.output, "output", "o", "table", "output format: table, yaml or json")
	cmd.Flags().StringVar(&o.outDir, "out", "", "write the manifests to DIR/<cluster>/ instead of printing them")
	return cmd
}

func (o *renderOptions) run(cmd *cobra.Command) error {
	if !slices.Contains([]string{"table", "yaml", "json"}, o.output) {
		return fmt.Errorf("unknown output format %q: use table, yaml or json", o.output)
	}
	st, snap, err := o.build(cmd.Context())
	if err != nil {
		return err
	}
	if err := checkPolicies(cmd, st, snap); err != nil {
		return err
	}
	clusters := st.ClusterNames()
	if o.cluster != "" {
		if !slices.Contains(clusters, o.cluster) {
			return fmt.Errorf("cluster %q is not in environment %s (clusters: %v): pick one of those", o.cluster, st.Environment, clusters)
		}
		clusters = []string{o.cluster}
	}
	out := cmd.OutOrStdout()
	if o.outDir != "" {
		return writeClusterDirs(out, o.outDir, st, clusters)
	}
	switch o.output {
	case "yaml":
		return writeYAML(out, st, clusters)
	case "json":
		return writeJSON(out, st, clusters)
	default:
		return writeTable(out, st, o.cluster)
	}
}

// decisionsFor returns the decisions shown for cluster ("" means all).
func decisionsFor(st *desired.State, cluster string) []placementRow {
	ds := st.Placement.Decisions
	if cluster != "" {
		ds = st.Placement.ForCluster(cluster)
	}
	rows := make([]placementRow, len(ds))
	for i, d := range ds {
		rows[i] = newPlacementRow(st, d)
	}
	return rows
}

// PolicyDenialsError lists every policy denial of a render.
type PolicyDenialsError struct {
	Environment string
	Denials     []desired.ClusterVerdict
}

func (e *PolicyDenialsError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d policy denials in environment %s; the clusters' webhooks would refuse these objects, so nothing was written:", len(e.Denials), e.Environment)
	for _, d := range e.Denials {
		b.WriteString("\n  ")
		b.WriteString(d.String())
	}
	return b.String()
}

// checkPolicies evaluates policies/ of the same revision against every
// object in every cluster it goes to, as the webhooks will.
func checkPolicies(cmd *cobra.Command, st *desired.State, snap *source.Snapshot) error {
	set, err := desired.LoadPolicies(snap)
	if err != nil || set == nil {
		return err
	}
	verdicts, err := st.Verdicts(cmd.Context(), set)
	if err != nil {
		return err
	}
	var denials []desired.ClusterVerdict
	for _, v := range verdicts {
		if v.Action == "Deny" {
			denials = append(denials, v)
		} else {
			fmt.Fprintf(cmd.ErrOrStderr(), "Warning: %s\n", v)
		}
	}
	if len(denials) > 0 {
		return &PolicyDenialsError{Environment: st.Environment, Denials: denials}
	}
	return nil
}
