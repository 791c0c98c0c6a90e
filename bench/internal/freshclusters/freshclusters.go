// Package freshclusters gives a benchmark clean clusters: every local kwok
// cluster of a set deleted and created again, each proven to schedule and
// run a Pod before a measurement starts.
package freshclusters

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/strata-gitops/strata/internal/localcluster"
)

// Set owns the kwok clusters of a benchmark, all under one temporary
// STRATA_HOME.
type Set struct {
	M      *localcluster.Manager
	Names  []string
	Settle time.Duration
	// Recreations records how long each clean-state step took.
	Recreations []time.Duration
}

// Fresh deletes every cluster (if any) and creates them again, so that
// each measured side starts from empty clusters: no namespaces, no
// strata-system, no inventory, a fresh etcd. It returns once every cluster's
// apiserver answers, its fake Node is Ready, the controller-manager made the
// default ServiceAccount and a canary Pod was scheduled and became Ready
// (scheduler and kwok work), plus the settle time for start-up work to die
// down.
func (c *Set) Fresh(ctx context.Context) error {
	start := time.Now()
	if err := c.M.Down(ctx); err != nil {
		return fmt.Errorf("deleting the clusters: %w", err)
	}
	if err := c.M.Up(ctx, c.Names...); err != nil {
		return fmt.Errorf("creating the clusters: %w", err)
	}
	errs := make([]error, len(c.Names))
	var wg sync.WaitGroup
	for i, name := range c.Names {
		wg.Go(func() { errs[i] = c.canary(ctx, name) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(c.Settle):
	}
	c.Recreations = append(c.Recreations, time.Since(start))
	return nil
}

// canary schedules one Pod in namespace default of cluster name, waits
// until it is Ready and deletes it.
func (c *Set) canary(ctx context.Context, name string) error {
	cs, err := c.M.Client(name)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "bench-canary", Namespace: metav1.NamespaceDefault},
		Spec: corev1.PodSpec{
			AutomountServiceAccountToken: new(bool),
			Containers:                   []corev1.Container{{Name: "c", Image: "registry.example.com/canary:1"}},
		},
	}
	if _, err := cs.CoreV1().Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("cluster %s: canary pod: %w", name, err)
	}
	for {
		p, err := cs.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
		if err == nil {
			for _, cond := range p.Status.Conditions {
				if cond.Type == corev1.PodReady && cond.Status == corev1.ConditionTrue {
					zero := int64(0)
					err := cs.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
					if err != nil && !apierrors.IsNotFound(err) {
						return fmt.Errorf("cluster %s: deleting the canary pod: %w", name, err)
					}
					return nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster %s: the canary pod did not become Ready (scheduler or kwok not working; logs in %s/logs): %w",
				name, c.M.ClusterDir(name), ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Down deletes every cluster; it runs on every exit path, with its own
// context so that an interrupted run still cleans up.
func (c *Set) Down() error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	return c.M.Down(ctx)
}
