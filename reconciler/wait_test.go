package reconciler

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/cli-utils/pkg/object"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-gitops/strata/internal/apiservertest"
	"github.com/strata-gitops/strata/internal/cluster"
)

// TestWaitHealthyKeepsWaitingAfterTheFastWindow: a Deployment never becomes
// available on an apiserver without controllers; the wait must go on past
// the fast window until its own timeout, and then name the Deployment. A
// ConfigMap is healthy at once and returns within the fast window.
func TestWaitHealthyKeepsWaitingAfterTheFastWindow(t *testing.T) {
	cl := testCluster(t, "wait", startClusters(t)["public"])
	ctx := context.Background()
	cms, deps := applyBulk(t, cl, "wait-fast")
	r := &Reconciler{opts: DefaultOptions()}
	start := time.Now()
	if err := r.waitHealthy(ctx, cl.Manager, cms, time.Minute); err != nil {
		t.Fatalf("ConfigMaps: %v", err)
	}
	if d := time.Since(start); d >= fastWindow {
		t.Errorf("ConfigMaps healthy after %v, want within the fast window (%v)", d, fastWindow)
	}
	start = time.Now()
	timeout := fastWindow + 1500*time.Millisecond
	err := r.waitHealthy(ctx, cl.Manager, deps, timeout)
	d := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), "app-000") {
		t.Fatalf("Deployment wait: err = %v, want a timeout naming app-000", err)
	}
	if d < timeout-200*time.Millisecond {
		t.Errorf("gave up after %v (%v), want the whole timeout %v: the fast window's timeout was taken for a failure", d, err, timeout)
	}
}

// applyBulk applies Namespace ns with four ConfigMaps and a Deployment
// (bulk), and returns the ConfigMaps and the Deployments.
func applyBulk(t *testing.T, cl *cluster.Cluster, ns string) (cms, deps []*unstructured.Unstructured) {
	t.Helper()
	objs := managed(append([]*unstructured.Unstructured{{Object: map[string]any{
		"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": ns}}}}, bulk(ns, 4, 1)...))
	if _, err := cl.Manager.ApplyAllStaged(context.Background(), objs, testApplyOptions()); err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		switch o.GetKind() {
		case "ConfigMap":
			cms = append(cms, o)
		case "Deployment":
			deps = append(deps, o)
		}
	}
	return cms, deps
}

// rollOutAfter writes, after d, what kube-controller-manager writes once a
// Deployment's new Pods are ready.
func rollOutAfter(t *testing.T, c client.Client, dep *unstructured.Unstructured, d time.Duration) {
	go func() {
		time.Sleep(d)
		if err := apiservertest.RollOut(context.Background(), c, client.ObjectKeyFromObject(dep)); err != nil {
			t.Error(err)
		}
	}()
}

// TestWaitNoticesARolloutAtOnce: a revert's Deployments usually become
// available a few seconds after the apply. With a 2 s PollInterval, a
// Deployment that becomes available 3 s into the wait must be noticed
// within a fast poll, not at the next 2 s poll (the time to recovery pays
// every millisecond of that lateness) — also when the health timeout is
// shorter than the fast window.
func TestWaitNoticesARolloutAtOnce(t *testing.T) {
	cl := testCluster(t, "wait", startClusters(t)["public"])
	ctx := context.Background()
	for _, tc := range []struct {
		name           string
		rolledOutAfter time.Duration
		timeout        time.Duration
	}{
		{"past the old 2 s window", 3 * time.Second, time.Minute},
		{"a health timeout shorter than the fast window", 2500 * time.Millisecond, 5 * time.Second},
	} {
		_, deps := applyBulk(t, cl, fmt.Sprintf("wait-rollout-%d", tc.timeout/time.Second))
		dep := deps[0]
		o := DefaultOptions()
		o.PollInterval = 2 * time.Second
		r := &Reconciler{opts: o}
		start := time.Now()
		rollOutAfter(t, cl.Client, dep, tc.rolledOutAfter)
		if err := r.waitHealthy(ctx, cl.Manager, []*unstructured.Unstructured{dep}, tc.timeout); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if late := time.Since(start) - tc.rolledOutAfter; late > 500*time.Millisecond {
			t.Errorf("%s: the Deployment was noticed healthy %v after its rollout; want within a fast poll (%v), not at the next PollInterval (%v)", tc.name, late, fastPoll, o.PollInterval)
		}
	}
}

// A health timeout shorter than the fast window still ends the wait on
// time, naming what was not healthy.
func TestWaitTimeoutShorterThanTheFastWindow(t *testing.T) {
	cl := testCluster(t, "wait", startClusters(t)["public"])
	ctx := context.Background()
	_, deps := applyBulk(t, cl, "wait-short")
	r := &Reconciler{opts: DefaultOptions()}
	const timeout = 1500 * time.Millisecond
	start := time.Now()
	err := r.waitHealthy(ctx, cl.Manager, deps, timeout)
	d := time.Since(start)
	if err == nil || !strings.HasPrefix(err.Error(), ssaTimeoutPrefix) || !strings.Contains(err.Error(), "app-000") {
		t.Fatalf("err = %v, want a timeout naming app-000", err)
	}
	if d < timeout-200*time.Millisecond || d > timeout+time.Second {
		t.Errorf("the wait took %v, want about its timeout %v", d, timeout)
	}
}

func TestPollsFast(t *testing.T) {
	ids := func(n, namespaces int) object.ObjMetadataSet {
		var set object.ObjMetadataSet
		for i := range n {
			set = append(set, object.ObjMetadata{GroupKind: schema.GroupKind{Group: "apps", Kind: "Deployment"},
				Namespace: fmt.Sprintf("ns-%d", i%namespaces), Name: fmt.Sprintf("app-%d", i)})
		}
		return set
	}
	for _, tc := range []struct {
		name string
		set  object.ObjMetadataSet
		want bool
	}{
		{"a revert: 11 Deployments in 2 namespaces", ids(11, 2), true},
		{"as many objects as may be polled fast, in one namespace", ids(fastWaitMax, 1), true},
		{"one object more", ids(fastWaitMax+1, 1), false},
		{"as many namespaces as LISTs may be sent per poll", ids(20, fastListsMax), true},
		{"one namespace more: one LIST more per poll", ids(20, fastListsMax+1), false},
	} {
		if got := pollsFast(tc.set); got != tc.want {
			t.Errorf("%s: pollsFast = %v, want %v", tc.name, got, tc.want)
		}
	}
}
