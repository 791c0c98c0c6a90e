package main

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"

	kyaml "sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/strata-gitops/strata/bench/internal/configrepo"
	"github.com/strata-gitops/strata/internal/labels"
)

// A configRepo is one scenario's config repository: strata's overlay under
// overlays/<env>/ and, for Flux, the same objects split by hand per cluster
// under flux/<cluster>/ (strata render --out without strata's own stamps),
// regenerated and committed together on every change so both tools always
// see the same manifests in the same commit.
type configRepo struct {
	env      string
	clusters []string
	strata   string // the strata binary that splits the overlay for Flux
	dir      string // the work clone
}

// fluxPath is the directory of a cluster's objects for Flux.
func fluxPath(cluster string) string { return "flux/" + cluster }

// split renders the work tree's overlay with strata and writes each
// cluster's objects under flux/<cluster>/, returning the objects per cluster
// (Namespaces included) — what both tools must end up applying.
func (c *configRepo) split(ctx context.Context) (map[string]int, error) {
	out, err := os.MkdirTemp("", "strata-bench-peers-split-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(out)
	rendered := filepath.Join(out, "r")
	cmd := exec.CommandContext(ctx, c.strata, "render", "--worktree", "--repo", c.dir, "--env", c.env, "--out", rendered)
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("strata render --env %s of %s: %v\n%s", c.env, c.dir, err, b)
	}
	counts := map[string]int{}
	for _, cl := range c.clusters {
		dst := filepath.Join(c.dir, fluxPath(cl))
		if err := os.RemoveAll(dst); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(dst, 0o755); err != nil {
			return nil, err
		}
		files, err := filepath.Glob(filepath.Join(rendered, cl, "*.yaml"))
		if err != nil {
			return nil, err
		}
		sort.Strings(files)
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				return nil, err
			}
			clean, err := unstamp(b)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", f, err)
			}
			if err := os.WriteFile(filepath.Join(dst, filepath.Base(f)), clean, 0o644); err != nil {
				return nil, err
			}
			counts[cl]++
		}
		if counts[cl] == 0 {
			// Flux needs a directory with something to build.
			if err := os.WriteFile(filepath.Join(dst, "kustomization.yaml"), []byte("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: []\n"), 0o644); err != nil {
				return nil, err
			}
		}
	}
	return counts, nil
}

// unstamp removes what strata adds when it applies (revision, placement
// reason, managed-by, environment), so Flux applies plain manifests and a
// commit does not change every object it did not touch. kyaml keeps the
// document as strata wrote it (YAML 1.2: a name like "n" stays a string).
func unstamp(doc []byte) ([]byte, error) {
	node, err := kyaml.Parse(string(doc))
	if err != nil {
		return nil, err
	}
	for _, k := range []string{labels.Revision, labels.Placement} {
		if err := node.PipeE(kyaml.ClearAnnotation(k)); err != nil {
			return nil, err
		}
	}
	for _, k := range []string{labels.ManagedBy, labels.Environment} {
		if err := node.PipeE(kyaml.Lookup(kyaml.MetadataField, kyaml.LabelsField), kyaml.Clear(k)); err != nil {
			return nil, err
		}
	}
	if err := kyaml.ClearEmptyAnnotations(node); err != nil {
		return nil, err
	}
	s, err := node.String()
	return []byte(s), err
}

// writeFiles writes files (path → content) into the work tree.
func (c *configRepo) writeFiles(files map[string]string) error {
	for rel, content := range files {
		p := filepath.Join(c.dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// copyTree copies the files under src/rel into the work tree at rel.
func (c *configRepo) copyTree(src string, rels ...string) error {
	for _, rel := range rels {
		root := filepath.Join(src, rel)
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			r, _ := filepath.Rel(src, p)
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return c.writeFiles(map[string]string{r: string(b)})
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// replaceIn replaces old with new exactly once in the work tree file rel.
func (c *configRepo) replaceIn(rel, old, new string) error {
	p := filepath.Join(c.dir, rel)
	b, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	if n := bytes.Count(b, []byte(old)); n != 1 {
		return fmt.Errorf("%s: %q occurs %d times, want once", rel, old, n)
	}
	return os.WriteFile(p, bytes.Replace(b, []byte(old), []byte(new), 1), 0o644)
}

// strataYAML is a scenario's strata.yaml: one environment over clusters
// (name and tier), no approvals needed, pruning not capped (the scale
// scenario goes back to its seed between reps).
func strataYAML(env string, clusters [][2]string) string {
	var cs []configrepo.Cluster
	for i, c := range clusters {
		cs = append(cs, configrepo.Cluster{Name: c[0], Tier: c[1], Cost: i + 1})
	}
	return configrepo.StrataYAML(configrepo.Config{Generator: "bench/peers", Env: env, Clusters: cs,
		Rollout: "  maxPrunePercent: 100\n  healthTimeout: 5m\n"})
}
