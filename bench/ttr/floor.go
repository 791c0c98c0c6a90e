package main

import (
	"context"
	"fmt"
	"os"
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
	logf := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "%s: "+format+"\n", append([]any{floorKey}, args...)...)
	}
	connect := &cluster.KubeconfigDir{Dir: b.kcdir}
	defer connect.Close()
	timeout := 3 * time.Minute
	for i := range reps {
		var r rep
		if err := b.layout.Write(b.work.Dir, bad); err != nil {
			return nil, err
		}
		var err error
		if r.bad, err = b.work.Commit(ctx, fmt.Sprintf("LOG_LEVEL=debug everywhere (%s rep %d)", floorKey, i+1)); err != nil {
			return nil, err
		}
		sets, err := b.splits(ctx, r.bad)
		if err != nil {
			return nil, err
		}
		if err := b.work.Push(ctx); err != nil {
			return nil, err
		}
		pushed := time.Now()
		if _, err := b.floorSync(ctx, connect, sets, pushed, timeout); err != nil {
			return nil, fmt.Errorf("scenario %s rep %d: the bad change: %w", floorKey, i+1, err)
		}
		r.badApplied = time.Since(pushed)
		if err := b.obs.verify(ctx, bad, r.bad); err != nil {
			return nil, fmt.Errorf("scenario %s rep %d: the bad change: %w", floorKey, i+1, err)
		}
		r.pause = b.opts.settle
		logf("rep %d/%d: bad change applied and Current in %s; pushing the revert in %s", i+1, reps, secs(r.badApplied), secs(r.pause))
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(r.pause):
		}

		if _, err := b.work.Git(ctx, "revert", "--no-edit", "HEAD"); err != nil {
			return nil, err
		}
		if r.revert, err = b.work.Git(ctx, "rev-parse", "HEAD"); err != nil {
			return nil, err
		}
		if sets, err = b.splits(ctx, r.revert); err != nil {
			return nil, err
		}
		r.load = loadavg1()
		dw := b.obs.watchDeployments(ctx, r.revert)
		if err := b.work.Push(ctx); err != nil {
			dw.result()
			return nil, err
		}
		pushed = time.Now()
		dw.setStart(pushed)
		r.perCluster, err = b.floorSync(ctx, connect, sets, pushed, timeout)
		r.loadDone = loadavg1()
		r.timeline = dw.result()
		if err != nil {
			return nil, fmt.Errorf("scenario %s rep %d: the revert: %w", floorKey, i+1, err)
		}
		for _, d := range r.perCluster {
			r.ttr = max(r.ttr, d)
		}
		if err := b.obs.verify(ctx, good, r.revert); err != nil {
			return nil, fmt.Errorf("scenario %s rep %d: after the revert: %w", floorKey, i+1, err)
		}
		res.reps = append(res.reps, r)
		logf("rep %d/%d: every object Current %s after the push (Deployments applied %s–%s, rolled out %s)",
			i+1, reps, secs(r.ttr), secs(r.timeline.firstApplied), secs(r.timeline.applied), secs(r.timeline.rolledOut))
	}
	return res, nil
}
