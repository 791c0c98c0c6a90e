package reconciler

import (
	"context"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// TestWaitHealthyKeepsWaitingAfterTheFastWindow: a Deployment never becomes
// available on an apiserver without controllers; the wait must go on past
// the fast window until its own timeout, and then name the Deployment. A
// ConfigMap is healthy at once and returns within the fast window.
func TestWaitHealthyKeepsWaitingAfterTheFastWindow(t *testing.T) {
	cl := testCluster(t, "wait", startClusters(t)["public"])
	ctx := context.Background()
	ns := "wait-fast"
	objs := managed(append([]*unstructured.Unstructured{{Object: map[string]any{
		"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": ns}}}}, bulk(ns, 4, 1)...))
	if _, err := cl.Manager.ApplyAllStaged(ctx, objs, testApplyOptions()); err != nil {
		t.Fatal(err)
	}
	r := &Reconciler{opts: DefaultOptions()}
	var cms, deps []*unstructured.Unstructured
	for _, o := range objs {
		switch o.GetKind() {
		case "ConfigMap":
			cms = append(cms, o)
		case "Deployment":
			deps = append(deps, o)
		}
	}
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
