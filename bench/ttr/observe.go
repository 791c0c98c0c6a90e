package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-gitops/strata/internal/cluster"
	"github.com/strata-gitops/strata/internal/inventory"
	"github.com/strata-gitops/strata/internal/labels"
)

// observer reads the clusters with connections of its own, so that its
// polling never competes with the reconciler's client-side rate limits.
type observer struct {
	connect *cluster.KubeconfigDir
	layout  *Layout
	every   time.Duration
}

// status describes a cluster's inventory status in one line (for errors).
func (o *observer) status(ctx context.Context, cluster string) string {
	cl, err := o.connect.Connect(cluster)
	if err != nil {
		return err.Error()
	}
	inv, err := inventory.Load(ctx, cl.Client, benchEnv)
	if err != nil {
		return err.Error()
	}
	s := inv.Status
	line := fmt.Sprintf("revision %.12s, %d objects, %d healthy, %d progressing, %d failed", s.Revision, s.Objects, s.Healthy, s.Progressing, s.Failed)
	if s.LastError != "" {
		line += ", last error: " + s.LastError
	}
	return line
}

// converged reports whether cluster's inventory says commit is applied with
// every expected object healthy and no error.
func (o *observer) converged(ctx context.Context, cluster, commit string) bool {
	cl, err := o.connect.Connect(cluster)
	if err != nil {
		return false
	}
	inv, err := inventory.Load(ctx, cl.Client, benchEnv)
	if err != nil {
		return false
	}
	s := inv.Status
	return s.Revision == commit && s.LastError == "" && s.Objects == o.layout.Expected[cluster] && s.Healthy == s.Objects
}

// wait polls every cluster's inventory every o.every until each shows
// commit with all its objects healthy, and returns when each got there,
// measured from start.
func (o *observer) wait(parent context.Context, commit string, start time.Time, timeout time.Duration) (map[string]time.Duration, error) {
	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()
	var mu sync.Mutex
	at := map[string]time.Duration{}
	var wg sync.WaitGroup
	for _, c := range clusterNames {
		wg.Go(func() {
			t := time.NewTicker(o.every)
			defer t.Stop()
			for {
				if o.converged(ctx, c, commit) {
					d := time.Since(start)
					mu.Lock()
					at[c] = d
					mu.Unlock()
					return
				}
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		})
	}
	wg.Wait()
	if len(at) == len(clusterNames) {
		return at, nil
	}
	if err := parent.Err(); err != nil {
		return at, err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "revision %.12s did not converge within %s:", commit, timeout)
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	for _, c := range clusterNames {
		if _, ok := at[c]; !ok {
			fmt.Fprintf(&b, "\n  %s: %s", c, o.status(sctx, c))
		}
	}
	return at, fmt.Errorf("%s", b.String())
}

// verify checks the clusters themselves, not strata's account of them:
// every object strata manages is there, exactly where placement says, in
// variant v, stamped with commit, and every Deployment has rolled out
// completely (one updated, ready, available replica, no old one left).
func (o *observer) verify(ctx context.Context, v Variant, commit string) error {
	sel := client.MatchingLabels{labels.ManagedBy: labels.ManagedByValue, labels.Environment: benchEnv}
	for _, c := range clusterNames {
		cl, err := o.connect.Connect(c)
		if err != nil {
			return err
		}
		var nss corev1.NamespaceList
		var cms corev1.ConfigMapList
		var deps appsv1.DeploymentList
		var svcs corev1.ServiceList
		lists := []client.ObjectList{&nss, &cms, &deps, &svcs}
		for _, l := range lists {
			if err := cl.Client.List(ctx, l, sel); err != nil {
				return fmt.Errorf("cluster %s: %w", c, err)
			}
		}
		var metas []metav1.ObjectMeta
		for _, x := range nss.Items {
			if x.Name == labels.SystemNamespace {
				continue
			}
			metas = append(metas, x.ObjectMeta)
		}
		for _, x := range cms.Items {
			if x.Namespace == labels.SystemNamespace {
				continue
			}
			if x.Data["LOG_LEVEL"] != v.LogLevel {
				return fmt.Errorf("cluster %s: ConfigMap %s/%s has LOG_LEVEL %q, want %q", c, x.Namespace, x.Name, x.Data["LOG_LEVEL"], v.LogLevel)
			}
			metas = append(metas, x.ObjectMeta)
		}
		for _, x := range svcs.Items {
			metas = append(metas, x.ObjectMeta)
		}
		for _, d := range deps.Items {
			metas = append(metas, d.ObjectMeta)
			env := d.Spec.Template.Spec.Containers[0].Env
			if i := slices.IndexFunc(env, func(e corev1.EnvVar) bool { return e.Name == "LOG_LEVEL" }); i < 0 || env[i].Value != v.LogLevel {
				return fmt.Errorf("cluster %s: Deployment %s/%s does not have LOG_LEVEL=%s in its pod template", c, d.Namespace, d.Name, v.LogLevel)
			}
			st := d.Status
			if st.ObservedGeneration < d.Generation || st.Replicas != 1 || st.UpdatedReplicas != 1 || st.ReadyReplicas != 1 || st.AvailableReplicas != 1 {
				return fmt.Errorf("cluster %s: Deployment %s/%s has not rolled out: generation %d observed %d, replicas %d updated %d ready %d available %d",
					c, d.Namespace, d.Name, d.Generation, st.ObservedGeneration, st.Replicas, st.UpdatedReplicas, st.ReadyReplicas, st.AvailableReplicas)
			}
		}
		if len(metas) != o.layout.Expected[c] {
			return fmt.Errorf("cluster %s: %d objects managed by strata, placement puts %d there", c, len(metas), o.layout.Expected[c])
		}
		if len(deps.Items) != o.layout.Deployments[c] {
			return fmt.Errorf("cluster %s: %d Deployments, placement puts %d there", c, len(deps.Items), o.layout.Deployments[c])
		}
		for _, m := range metas {
			if m.Annotations[logLevelKey] != v.LogLevel {
				return fmt.Errorf("cluster %s: %s/%s has %s=%q, want %q (%s)", c, m.Namespace, m.Name, logLevelKey, m.Annotations[logLevelKey], v.LogLevel, v.Name)
			}
			if m.Annotations[labels.Revision] != commit {
				return fmt.Errorf("cluster %s: %s/%s is stamped with revision %.12s, want %.12s", c, m.Namespace, m.Name, m.Annotations[labels.Revision], commit)
			}
		}
	}
	return nil
}
