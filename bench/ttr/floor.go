package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/strata-gitops/strata/bench/internal/floor"
	"github.com/strata-gitops/strata/internal/cluster"
	"github.com/strata-gitops/strata/internal/desired"
	"github.com/strata-gitops/strata/internal/source"
)

// floorKey is the key of the floor's scenario: no tool at all.
const floorKey = "F"

// splits renders commit of the work clone as strata does and returns each
// cluster's objects stamped as strata stamps an object that commit changed
// — what the reconciler applies when a revert touches every object. The
// floor renders before the push: it has no fetch and no render to time.
func (b *bench) splits(ctx context.Context, commit string) (map[string][]*unstructured.Unstructured, error) {
	repo, err := source.Open(ctx, b.work.Dir, source.OpenOptions{})
	if err != nil {
		return nil, err
	}
	rev, err := repo.Resolve(commit)
	if err != nil {
		return nil, err
	}
	snap, err := repo.Snapshot(rev)
	if err != nil {
		return nil, err
	}
	cfg, err := desired.LoadConfig(snap)
	if err != nil {
		return nil, err
	}
	st, err := desired.Build(snap, cfg, benchEnv, desired.DefaultOptions())
	if err != nil {
		return nil, err
	}
	out := map[string][]*unstructured.Unstructured{}
	for _, c := range clusterNames {
		for _, d := range st.Placement.ForCluster(c) {
			o := st.Objects[d.Index]
			s := st.StampOf(d)
			s.DefaultNamespace = !d.Object.ClusterScoped && o.Namespace() == ""
			out[c] = append(out[c], o.Stamped(s))
		}
		if len(out[c]) != b.layout.Expected[c] {
			return nil, fmt.Errorf("floor: %.12s puts %d objects in cluster %s, the layout expects %d", commit, len(out[c]), c, b.layout.Expected[c])
		}
	}
	return out, nil
}

// floorSync applies each cluster's objects in the clusters at once
// (floor.Apply) and waits for them to be Current (floor.Wait); it returns,
// per cluster, the time from start to every object Current.
func (b *bench) floorSync(ctx context.Context, connect cluster.Connector, sets map[string][]*unstructured.Unstructured, start time.Time, timeout time.Duration) (map[string]time.Duration, error) {
	var mu sync.Mutex
	done := map[string]time.Duration{}
	g, gctx := errgroup.WithContext(ctx)
	for _, c := range clusterNames {
		g.Go(func() error {
			cl, err := connect.Connect(c)
			if err != nil {
				return err
			}
			if err := floor.Apply(gctx, cl.Client, sets[c]); err != nil {
				return fmt.Errorf("floor: cluster %s: %w", c, err)
			}
			if err := floor.Wait(gctx, floor.Manager(cl.Client), sets[c], timeout); err != nil {
				return fmt.Errorf("floor: cluster %s: %w", c, err)
			}
			mu.Lock()
			done[c] = time.Since(start)
			mu.Unlock()
			return nil
		})
	}
	return done, g.Wait()
}

// runFloor measures reps reverts with no tool at all: the same bad change
// and revert as scenario A, but at each push the harness itself applies
// the commit's objects (rendered before the push) and polls them until
// Current. Its "Deployments applied" is the least any tool's own part can
// be on these clusters; its time to recovery the least any tool's can.
func (b *bench) runFloor(ctx context.Context, reps int) (*scenarioResult, error) {
	res := &scenarioResult{scenario: scenario{key: floorKey, name: "floor: no tool", reps: reps}}
	connect := &cluster.KubeconfigDir{Dir: b.kcdir}
	defer connect.Close()
	var err error
	res.reps, err = b.reps(ctx, floorKey, reps, &floorTool{b: b, connect: connect, timeout: 3 * time.Minute})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// floorTool is the harness itself writing the clusters at each push.
type floorTool struct {
	b       *bench
	connect cluster.Connector
	timeout time.Duration
	sets    map[string][]*unstructured.Unstructured // the last pushed commit's
}

// push renders commit before pushing it: the floor has no fetch and no
// render to time.
func (f *floorTool) push(ctx context.Context, commit string) (time.Time, error) {
	sets, err := f.b.splits(ctx, commit)
	if err != nil {
		return time.Time{}, err
	}
	f.sets = sets
	if err := f.b.work.Push(ctx); err != nil {
		return time.Time{}, err
	}
	return time.Now(), nil
}

func (f *floorTool) converge(ctx context.Context, _ string, pushed time.Time) (map[string]time.Duration, error) {
	return f.b.floorSync(ctx, f.connect, f.sets, pushed, f.timeout)
}

func (f *floorTool) settle(context.Context, string) error { return nil }
func (f *floorTool) pause() time.Duration                 { return f.b.opts.settle }
func (f *floorTool) observed(*rep, time.Time)             {}
