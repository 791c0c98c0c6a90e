package main

import (
	"bufio"
	"context"
	"fmt"
	"io"

	"sigs.k8s.io/kustomize/api/resource"

	"github.com/strata-gitops/strata/internal/desired"
	"github.com/strata-gitops/strata/internal/render"
	"github.com/strata-gitops/strata/internal/source"
)

// The steps of `strata render --env bench --repo DIR -o yaml` after
// start-up, as internal/cli runs them, for the in-process benchmarks and
// profiles. They use the same packages as the CLI; the CLI itself is not
// imported so that the benchmark builds while other verbs are in progress.

// openSnapshot opens the repository, resolves HEAD and reads its tree.
func openSnapshot(dir string) (*source.Snapshot, error) {
	repo, err := source.Open(context.Background(), dir, source.OpenOptions{})
	if err != nil {
		return nil, err
	}
	rev, err := repo.Resolve("HEAD")
	if err != nil {
		return nil, err
	}
	return repo.Snapshot(rev)
}

// buildState loads strata.yaml from the snapshot, renders and places the
// bench environment, keeping kustomize's resources as strata render does.
func buildState(snap *source.Snapshot) (*desired.State, error) {
	cfg, err := desired.LoadConfig(snap)
	if err != nil {
		return nil, err
	}
	opts := desired.DefaultOptions()
	opts.KeepResources = true
	return desired.Build(snap, cfg, benchEnv, opts)
}

// writeYAML writes every cluster's manifests as render -o yaml does and
// returns the number of bytes written.
func writeYAML(w io.Writer, st *desired.State) (int64, error) {
	cw := &countingWriter{w: w}
	bw := bufio.NewWriterSize(cw, 1<<16)
	var all []*resource.Resource
	for _, c := range st.ClusterNames() {
		all = append(all, st.ForCluster(c)...)
	}
	ys, err := render.EncodeYAML(all)
	if err != nil {
		return 0, err
	}
	for _, c := range st.ClusterNames() {
		fmt.Fprintf(bw, "# cluster: %s  environment: %s  revision: %s\n", c, st.Environment, st.Revision)
		for range st.ForCluster(c) {
			bw.WriteString("---\n")
			bw.Write(ys[0])
			ys = ys[1:]
		}
	}
	err = bw.Flush()
	return cw.n, err
}

// renderYAML is the whole pipeline.
func renderYAML(dir string, w io.Writer) (*desired.State, int64, error) {
	snap, err := openSnapshot(dir)
	if err != nil {
		return nil, 0, err
	}
	st, err := buildState(snap)
	if err != nil {
		return nil, 0, err
	}
	n, err := writeYAML(w, st)
	return st, n, err
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
