package main

import (
	"context"
	"sync"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/strata-gitops/strata/internal/labels"
)

// timeline is when, after a push, the Deployments of every cluster got
// there, seen by watching them (events, no polling): the first and the last
// Deployment stamped with the commit (strata's apply), and every
// Deployment Current by kstatus (Kubernetes rolled the new Pods out).
type timeline struct {
	firstApplied, applied, rolledOut time.Duration
}

// deploymentWatch follows the Deployments of every cluster until all of
// them carry commit and are Current.
type deploymentWatch struct {
	start  time.Time
	commit string
	obs    *observer

	mu           sync.Mutex
	firstApplied time.Time
	applied      map[string]time.Time
	rolledOut    map[string]time.Time
	cancel       context.CancelFunc
	wg           sync.WaitGroup
}

// watchDeployments starts watching before the push at start; result stops
// the watch and returns the timeline.
func (o *observer) watchDeployments(ctx context.Context, commit string) *deploymentWatch {
	ctx, cancel := context.WithCancel(ctx)
	w := &deploymentWatch{commit: commit, obs: o, applied: map[string]time.Time{}, rolledOut: map[string]time.Time{}, cancel: cancel}
	ready := make(chan struct{}, len(clusterNames))
	for _, c := range clusterNames {
		w.wg.Go(func() { w.follow(ctx, c, ready) })
	}
	for range clusterNames {
		select {
		case <-ready:
		case <-ctx.Done():
		}
	}
	return w
}

// setStart is the push's completion, the zero of the timeline.
func (w *deploymentWatch) setStart(t time.Time) {
	w.mu.Lock()
	w.start = t
	w.mu.Unlock()
}

func (w *deploymentWatch) follow(ctx context.Context, cluster string, ready chan<- struct{}) {
	signalled := false
	defer func() {
		if !signalled {
			ready <- struct{}{}
		}
	}()
	cl, err := w.obs.connect.Connect(cluster)
	if err != nil {
		return
	}
	sel := metav1.ListOptions{LabelSelector: labels.ManagedBy + "=" + labels.ManagedByValue + "," + labels.Environment + "=" + benchEnv}
	for ctx.Err() == nil {
		list, err := cl.Clientset.AppsV1().Deployments("").List(ctx, sel)
		if err != nil {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		state := map[string]*appsv1.Deployment{}
		for i := range list.Items {
			d := &list.Items[i]
			state[d.Namespace+"/"+d.Name] = d
		}
		opts := sel
		opts.ResourceVersion = list.ResourceVersion
		wi, err := cl.Clientset.AppsV1().Deployments("").Watch(ctx, opts)
		if err != nil {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if !signalled {
			ready <- struct{}{}
			signalled = true
		}
		if w.evaluate(cluster, state) {
			wi.Stop()
			return
		}
		for ev := range wi.ResultChan() {
			d, ok := ev.Object.(*appsv1.Deployment)
			if !ok {
				continue
			}
			switch ev.Type {
			case watch.Added, watch.Modified:
				state[d.Namespace+"/"+d.Name] = d
			case watch.Deleted:
				delete(state, d.Namespace+"/"+d.Name)
			}
			if w.evaluate(cluster, state) {
				wi.Stop()
				return
			}
		}
		wi.Stop()
	}
}

// evaluate notes the milestones cluster reached; it reports true once every
// Deployment there is at the commit and Current.
func (w *deploymentWatch) evaluate(cluster string, state map[string]*appsv1.Deployment) bool {
	now := time.Now()
	stamped, current := 0, 0
	for _, d := range state {
		if d.Annotations[labels.Revision] != w.commit {
			continue
		}
		stamped++
		if kstatusOf(d) == status.CurrentStatus {
			current++
		}
	}
	want := w.obs.layout.Deployments[cluster]
	w.mu.Lock()
	defer w.mu.Unlock()
	if stamped > 0 && w.firstApplied.IsZero() {
		w.firstApplied = now
	}
	if stamped == want {
		if _, ok := w.applied[cluster]; !ok {
			w.applied[cluster] = now
		}
		if current == want {
			w.rolledOut[cluster] = now
			return true
		}
	}
	return false
}

func kstatusOf(d *appsv1.Deployment) status.Status {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(d)
	if err != nil {
		return status.UnknownStatus
	}
	m["apiVersion"], m["kind"] = "apps/v1", "Deployment"
	res, err := status.Compute(&unstructured.Unstructured{Object: m})
	if err != nil {
		return status.UnknownStatus
	}
	return res.Status
}

// result stops the watch and returns the timeline (zero for milestones not
// reached).
func (w *deploymentWatch) result() timeline {
	w.cancel()
	w.wg.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	var t timeline
	since := func(x time.Time) time.Duration {
		if x.IsZero() {
			return 0
		}
		return x.Sub(w.start)
	}
	t.firstApplied = since(w.firstApplied)
	if len(w.applied) == len(clusterNames) {
		for _, x := range w.applied {
			t.applied = max(t.applied, since(x))
		}
	}
	if len(w.rolledOut) == len(clusterNames) {
		for _, x := range w.rolledOut {
			t.rolledOut = max(t.rolledOut, since(x))
		}
	}
	return t
}
