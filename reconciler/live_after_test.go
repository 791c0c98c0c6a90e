package reconciler

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-gitops/strata/internal/labels"
)

// Reading applied objects back one by one (a few) or by listing their
// kinds (many) records the same summaries — fingerprint, managers, health —
// as the LIST of the next reconcile, so neither reports drift that is not
// there; objects that are gone or not strata's for the environment are
// absent either way.
func TestLiveAfterApplyMatchesListLive(t *testing.T) {
	cl := testCluster(t, "live-after", startClusters(t)["private"])
	ctx := context.Background()
	env, ns := "liveafter", "live-after"
	if err := cl.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	var applied []*unstructured.Unstructured
	for i := range getLimit + 6 {
		l := map[string]string{labels.ManagedBy: labels.ManagedByValue, labels.Environment: env}
		if i == 3 {
			l[labels.Environment] = "another" // not this environment's
		}
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("cm-%03d", i), Labels: l}, Data: map[string]string{"k": "v"}}
		if err := cl.Client.Create(ctx, cm, client.FieldOwner(labels.FieldManager)); err != nil {
			t.Fatal(err)
		}
		obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(cm)
		if err != nil {
			t.Fatal(err)
		}
		u := &unstructured.Unstructured{Object: obj}
		u.SetAPIVersion("v1")
		u.SetKind("ConfigMap")
		applied = append(applied, u)
	}
	// One more that was never created.
	gone := applied[0].DeepCopy()
	gone.SetName("cm-gone")
	applied = append(applied, gone)

	listed, err := listLive(ctx, cl.Client, env, gvksOfUnstructured(applied))
	if err != nil {
		t.Fatal(err)
	}
	allow := cmp.AllowUnexported(liveObject{})
	for _, n := range []int{5, len(applied)} { // one GET each; by LIST
		got, err := liveAfterApply(ctx, cl.Client, env, applied[:n])
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]*liveObject{}
		for _, u := range applied[:n] {
			k := "/ConfigMap/" + ns + "/" + u.GetName()
			if lo, ok := listed[k]; ok {
				want[k] = lo
			}
		}
		if len(want) == 0 || len(want) == n {
			t.Fatalf("%d objects: %d listed; the fixture should have both present and absent ones", n, len(want))
		}
		if diff := cmp.Diff(want, got, allow); diff != "" {
			t.Errorf("%d applied objects read back (-listed +read back):\n%s", n, diff)
		}
	}
}
