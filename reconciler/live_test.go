package reconciler

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-gitops/strata/internal/labels"
)

// Pages must add up to every object: a page boundary must lose nothing.
func TestListLivePages(t *testing.T) {
	cfgs := startClusters(t)
	c, err := client.New(cfgs["public"], client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ns := "list-pages"
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	mine := map[string]string{labels.ManagedBy: labels.ManagedByValue, labels.Environment: "pages"}
	for i := 0; i < 7; i++ {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%d", i), Namespace: ns, Labels: mine}}
		if err := c.Create(ctx, cm); err != nil {
			t.Fatal(err)
		}
	}
	// Not strata's, or another environment's: not listed.
	for name, l := range map[string]map[string]string{"other-env": {labels.ManagedBy: labels.ManagedByValue, labels.Environment: "x"}, "unmanaged": nil} {
		if err := c.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: l}}); err != nil {
			t.Fatal(err)
		}
	}
	old := listPageSize
	listPageSize = 2
	defer func() { listPageSize = old }()
	live, err := listLive(ctx, c, "pages", []schema.GroupVersionKind{{Version: "v1", Kind: "ConfigMap"}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for k := range live {
		got = append(got, k)
	}
	want := []string{}
	for i := 0; i < 7; i++ {
		want = append(want, fmt.Sprintf("/ConfigMap/%s/cm-%d", ns, i))
	}
	if diff := cmp.Diff(want, got, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
		t.Errorf("listed objects (-want +got):\n%s", diff)
	}
}

func TestWaitSetSkipsKindsWithoutStatus(t *testing.T) {
	obj := func(apiVersion, kind string) *unstructured.Unstructured {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion(apiVersion)
		u.SetKind(kind)
		u.SetName(kind)
		return u
	}
	in := []*unstructured.Unstructured{
		obj("v1", "ConfigMap"), obj("apps/v1", "Deployment"), obj("v1", "Secret"), obj("v1", "Service"),
		obj("networking.k8s.io/v1", "NetworkPolicy"), obj("apps/v1", "StatefulSet"), obj("batch/v1", "Job"),
		obj("example.com/v1", "Widget"), obj("v1", "PersistentVolumeClaim"),
	}
	var got []string
	for _, u := range waitSet(in, nil) {
		got = append(got, u.GetKind())
	}
	want := []string{"Deployment", "Service", "StatefulSet", "Job", "Widget", "PersistentVolumeClaim"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("wait set (-want +got):\n%s", diff)
	}
}
