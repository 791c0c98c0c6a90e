package cli

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/spf13/cobra"

	"github.com/strata-gitops/strata/internal/approval"
	"github.com/strata-gitops/strata/internal/config"
	"github.com/strata-gitops/strata/internal/desired"
	"github.com/strata-gitops/strata/internal/placement"
	"github.com/strata-gitops/strata/internal/plan"
	"github.com/strata-gitops/strata/internal/source"
)

type planOptions struct {
	repo, base, head, env, output string
}

func newPlanCommand() *cobra.Command {
	o := &planOptions{}
	cmd := &cobra.Command{
		Use:   "plan",
		Short: "Show what a pull request changes in every cluster, and the approvals it needs",
		Long: `plan renders the base and head revisions of every environment and shows, per
cluster, the objects added, changed (a unified diff, Secret values masked),
removed and moved between clusters, with their placement reasons; the policy
verdicts; and the signed approvals the change needs (highest sensitivity
touched → approvals in strata.yaml). It needs no cluster. It exits 1 on a
placement violation, a render error or a policy denial.`,
		Example: `  strata plan --base main --head HEAD
  strata plan --repo . --base origin/main --head HEAD -o json > plan.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.run(cmd) },
	}
	f := cmd.Flags()
	f.StringVar(&o.repo, "repo", ".", "config repository: a local path or an http(s) URL")
	f.StringVar(&o.base, "base", "main", "base revision (the branch the pull request merges into)")
	f.StringVar(&o.head, "head", "HEAD", "head revision (the pull request)")
	f.StringVar(&o.env, "env", "", "only this environment (default: all)")
	f.StringVarP(&o.output, "output", "o", "markdown", "output format: markdown or json")
	return cmd
}

// side is one revision's content, config and policies.
type side struct {
	rev  *source.Revision
	snap *source.Snapshot
	cfg  *config.Config
}

func (o *planOptions) open(cmd *cobra.Command, repo *source.Repository, rev string) (*side, error) {
	r, err := repo.Resolve(rev)
	if err != nil {
		return nil, err
	}
	snap, err := repo.Snapshot(r)
	if err != nil {
		return nil, err
	}
	cfg, err := desired.LoadConfig(snap)
	if err != nil {
		return nil, err
	}
	return &side{rev: r, snap: snap, cfg: cfg}, nil
}

func (o *planOptions) run(cmd *cobra.Command) error {
	if !slices.Contains([]string{"markdown", "json"}, o.output) {
		return fmt.Errorf("unknown output format %q: use markdown or json", o.output)
	}
	repo, err := source.Open(cmd.Context(), o.repo, source.OpenOptions{})
	if err != nil {
		return err
	}
	base, err := o.open(cmd, repo, o.base)
	if err != nil {
		return fmt.Errorf("base %s: %w", o.base, err)
	}
	head, err := o.open(cmd, repo, o.head)
	if err != nil {
		return fmt.Errorf("head %s: %w", o.head, err)
	}
	policies, err := desired.LoadPolicies(head.snap)
	if err != nil {
		return fmt.Errorf("head %s: %w", o.head, err)
	}
	report := &plan.Report{Base: base.rev.Commit, Head: head.rev.Commit, BaseSubject: base.rev.Subject(), HeadSubject: head.rev.Subject()}
	envs := head.cfg.EnvironmentNames()
	for _, e := range base.cfg.EnvironmentNames() {
		if !slices.Contains(envs, e) {
			envs = append(envs, e)
		}
	}
	if o.env != "" {
		if !slices.Contains(envs, o.env) {
			return fmt.Errorf("environment %q is in neither revision (environments: %v)", o.env, envs)
		}
		envs = []string{o.env}
	}
	approvals := plan.StricterApprovals(base.cfg.Approvals.Required, head.cfg.Approvals.Required)
	notCounted, err := selfApprovers(repo, base, head)
	if err != nil {
		return err
	}
	for _, env := range envs {
		bst := buildSide(base, env)
		hst, herr := buildOrError(head, env)
		if herr != nil {
			report.Errors = append(report.Errors, fmt.Sprintf("%s at %s: %v", env, head.rev.Short(), herr))
		}
		pe := plan.Compare(env, bst, hst, approvals)
		// The gate's own rule decides the approvals (governance files,
		// windows), so that the PR comment never understates them.
		if _, ok := head.cfg.Environments[env]; ok && herr == nil {
			need, err := approval.Needed(env, &approval.Side{Snap: base.snap, Cfg: base.cfg}, &approval.Side{Snap: head.snap, Cfg: head.cfg})
			if err != nil {
				return fmt.Errorf("approvals needed by %s: %w", env, err)
			}
			pe.Highest, pe.Approvals, pe.ApprovalReasons = need.Sensitivity, need.Count, need.Reasons
			if need.Count > 0 && !base.cfg.Approvals.AllowSelfApproval {
				pe.NotCounted = notCounted
			}
		}
		report.Environments = append(report.Environments, pe)
		if hst != nil && policies != nil {
			verdicts, err := hst.Verdicts(cmd.Context(), policies)
			if err != nil {
				return err
			}
			for _, v := range verdicts {
				d := plan.Denial{Environment: env, Cluster: v.Cluster, Object: v.Object.String(), Policy: v.Policy, Message: v.Message}
				if v.Action == "Deny" {
					report.Denials = append(report.Denials, d)
				} else {
					report.Warnings = append(report.Warnings, d)
				}
			}
		}
	}
	out := cmd.OutOrStdout()
	if o.output == "json" {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		err = enc.Encode(report)
	} else {
		err = report.WriteMarkdown(out)
	}
	if err != nil {
		return err
	}
	if report.Failed() {
		return &ExitError{Code: 1}
	}
	return nil
}

// selfApprovers says which reviewers (of base's trust file) authored or
// committed part of the change, whose approval the gate will not count.
func selfApprovers(repo *source.Repository, base, head *side) ([]string, error) {
	trust, err := config.LoadTrust(base.snap.ReadFile, base.cfg)
	if err != nil {
		return nil, fmt.Errorf("base %s: %w", base.rev.Short(), err)
	}
	m, err := approval.SelfApprovers(repo, base.rev.Commit, head.rev.Commit, trust, 0)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(m))
	for _, why := range m {
		out = append(out, why)
	}
	slices.Sort(out)
	return out, nil
}

// buildSide builds env at a revision; nil when the environment is absent.
// Placement violations still yield the placed part (for the diff).
func buildSide(s *side, env string) *desired.State {
	st, _ := buildOrError(s, env)
	return st
}

func buildOrError(s *side, env string) (*desired.State, error) {
	if _, ok := s.cfg.Environments[env]; !ok {
		return nil, nil
	}
	st, err := desired.Build(s.snap, s.cfg, env, desired.DefaultOptions())
	if _, isViolation := err.(*placement.ViolationsError); isViolation {
		return st, nil // reported from st.Placement.Violations
	}
	if err != nil {
		return nil, err
	}
	return st, nil
}
