package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/strata-gitops/strata/internal/cluster"
	"github.com/strata-gitops/strata/internal/config"
	"github.com/strata-gitops/strata/internal/desired"
	"github.com/strata-gitops/strata/internal/source"
)

// repoFlags are the flags of every command that reads the config repository.
type repoFlags struct {
	repo     string
	revision string
	worktree bool
	env      string
	at       string
}

func (f *repoFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.repo, "repo", ".", "config repository: a local path or an http(s) URL")
	cmd.Flags().StringVar(&f.revision, "revision", "HEAD", "branch, tag or commit to read")
	cmd.Flags().BoolVar(&f.worktree, "worktree", false, "read the local work tree as it is, uncommitted changes included (for local iteration only)")
	cmd.Flags().StringVar(&f.env, "env", "", "environment of strata.yaml (may be left out when there is only one)")
	cmd.Flags().StringVar(&f.at, "at", "", "render as at this time (RFC 3339), to preview windows such as month-end; default now")
}

// snapshot opens the repository and returns the content to render.
func (f *repoFlags) snapshot(ctx context.Context) (*source.Snapshot, error) {
	if f.worktree && source.IsRemote(f.repo) {
		return nil, fmt.Errorf("--worktree reads a local checkout; %s is a URL: drop --worktree or clone it first", f.repo)
	}
	if f.worktree && f.revision != "" && f.revision != "HEAD" {
		return nil, fmt.Errorf("--worktree reads the files as they are, not revision %s: drop --worktree to render %s, or drop --revision", f.revision, f.revision)
	}
	repo, err := source.Open(ctx, f.repo, source.OpenOptions{})
	if err != nil {
		var nr *source.NotARepositoryError
		if f.worktree && errors.As(err, &nr) {
			return source.DirSnapshot(f.repo)
		}
		return nil, err
	}
	if f.worktree {
		return repo.WorkTreeSnapshot()
	}
	rev, err := repo.Resolve(f.revision)
	if err != nil {
		return nil, err
	}
	return repo.Snapshot(rev)
}

// environment picks --env, or the only environment when there is one.
func (f *repoFlags) environment(cfg *config.Config) (string, error) {
	if f.env != "" {
		_, err := cfg.Environment(f.env)
		return f.env, err
	}
	names := cfg.EnvironmentNames()
	if len(names) == 1 {
		return names[0], nil
	}
	return "", fmt.Errorf("--env is required: %s has environments %v", config.ConfigFile, names)
}

// build reads the revision, loads strata.yaml from it and renders and
// places the environment.
func (f *repoFlags) build(ctx context.Context) (*desired.State, *source.Snapshot, error) {
	snap, err := f.snapshot(ctx)
	if err != nil {
		return nil, nil, err
	}
	cfg, err := desired.LoadConfig(snap)
	if err != nil {
		return nil, snap, err
	}
	env, err := f.environment(cfg)
	if err != nil {
		return nil, snap, err
	}
	opts := desired.DefaultOptions()
	opts.KeepResources = true // output keeps kustomize's field order
	if f.at != "" {
		if opts.Now, err = time.Parse(time.RFC3339, f.at); err != nil {
			return nil, snap, fmt.Errorf("--at %q: use RFC 3339, e.g. 2026-11-29T09:00:00+01:00", f.at)
		}
	}
	st, err := desired.Build(snap, cfg, env, opts)
	return st, snap, err
}

// clusterSet is an environment's clusters and connections to them, for the
// verbs that read the clusters (status, history, rollback --wait, audit).
type clusterSet struct {
	env      string
	clusters []config.Cluster
	connect  *cluster.KubeconfigDir
}

func (c *clusterSet) names() []string {
	out := make([]string, len(c.clusters))
	for i, cl := range c.clusters {
		out[i] = cl.Name
	}
	return out
}

// clusterSet reads the environment's clusters from strata.yaml of the
// revision (no render: a broken revision must not hide the clusters) and
// connects to them with DIR/<cluster>.kubeconfig. Close the connections.
func (f *repoFlags) clusterSet(ctx context.Context, kubeconfigDir string) (*clusterSet, error) {
	snap, err := f.snapshot(ctx)
	if err != nil {
		return nil, err
	}
	cfg, err := desired.LoadConfig(snap)
	if err != nil {
		return nil, err
	}
	env, err := f.environment(cfg)
	if err != nil {
		return nil, err
	}
	e, _ := cfg.Environment(env)
	return &clusterSet{env: env, clusters: e.Clusters, connect: &cluster.KubeconfigDir{Dir: kubeconfigDir}}, nil
}
