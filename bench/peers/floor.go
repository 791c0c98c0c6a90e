package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/fluxcd/cli-utils/pkg/object"
	"github.com/fluxcd/pkg/ssa"
	ssautils "github.com/fluxcd/pkg/ssa/utils"
	"golang.org/x/sync/errgroup"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/strata-gitops/strata/bench/internal/floor"
	"github.com/strata-gitops/strata/internal/cluster"
)

// floorTool is no GitOps tool at all: right after each push the harness
// itself applies each cluster's split (flux/<cluster>/ of the work tree, the
// objects both tools must end up with) in the clusters at once as
// floor.Apply does, deletes what left the split, and waits for every object
// to be Current (floor.Wait). No fetch, no render, no diff, no controller queue, no status to write:
// about the least a step can cost the apiservers and Kubernetes' rollouts
// on this machine. A tool's time above it is the tool's own.
type floorTool struct {
	sc      *setup
	connect *cluster.KubeconfigDir
	prev    map[string][]*unstructured.Unstructured // per cluster, the last split applied
	done    chan error
	applies int
}

func (f *floorTool) name() string { return toolFloor }

func (f *floorTool) start(ctx context.Context, sc *setup, head string, want map[string]int) error {
	f.sc, f.connect, f.prev = sc, &cluster.KubeconfigDir{Dir: sc.kcdir}, map[string][]*unstructured.Unstructured{}
	if err := f.trigger(ctx, head); err != nil {
		return err
	}
	return f.wait(ctx, head, want, false)
}

// trigger applies the work tree's split, which holds the commit just pushed.
func (f *floorTool) trigger(ctx context.Context, _ string) error {
	sets := map[string][]*unstructured.Unstructured{}
	for _, c := range f.sc.clusters {
		objs, err := readSplit(filepath.Join(f.sc.work, "work", fluxPath(c)))
		if err != nil {
			return err
		}
		sets[c] = objs
	}
	// The last splits are read here, before the goroutines start, and
	// replaced once all of them are done: no map is shared while they run.
	prev := f.prev
	f.done = make(chan error, 1)
	go func() {
		g, gctx := errgroup.WithContext(ctx)
		for _, c := range f.sc.clusters {
			g.Go(func() error { return f.sync(gctx, c, sets[c], prev[c]) })
		}
		err := g.Wait()
		f.prev = sets
		f.applies += len(f.sc.clusters)
		f.done <- err // wait receives it: f's fields are written before
	}()
	return nil
}

// sync applies objs to cluster c, deletes what was in prev and is not in
// objs, and waits for every object of objs to be Current.
func (f *floorTool) sync(ctx context.Context, c string, objs, prev []*unstructured.Unstructured) error {
	cl, err := f.connect.Connect(c)
	if err != nil {
		return err
	}
	if err := floor.Apply(ctx, cl.Client, objs); err != nil {
		return fmt.Errorf("floor: cluster %s: %w", c, err)
	}
	set := object.UnstructuredSetToObjMetadataSet(objs)
	var gone []*unstructured.Unstructured
	for _, o := range prev {
		if !set.Contains(object.UnstructuredToObjMetadata(o)) {
			gone = append(gone, o.DeepCopy())
		}
	}
	m := floor.Manager(cl.Client)
	if len(gone) > 0 {
		if _, err := m.DeleteAll(ctx, gone, ssa.DefaultDeleteOptions()); err != nil {
			return fmt.Errorf("floor: cluster %s: %w", c, err)
		}
	}
	if err := floor.Wait(ctx, m, objs, f.sc.timeout); err != nil {
		return fmt.Errorf("floor: cluster %s: %w", c, err)
	}
	return nil
}

func (f *floorTool) wait(ctx context.Context, _ string, _ map[string]int, _ bool) error {
	select {
	case err := <-f.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (f *floorTool) reconcileCount(context.Context) (int, error) { return f.applies, nil }

// usage: the floor runs in the harness; its resources are not a tool's.
func (f *floorTool) usage() (usage, error) { return usage{}, nil }

func (f *floorTool) stop() {
	if f.connect != nil {
		f.connect.Close()
	}
}

// readSplit decodes every object of a cluster's split directory.
func readSplit(dir string) ([]*unstructured.Unstructured, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	var out []*unstructured.Unstructured
	for _, file := range files {
		if filepath.Base(file) == "kustomization.yaml" {
			continue
		}
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		objs, err := ssautils.ReadObjects(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		out = append(out, objs...)
	}
	return out, nil
}
