package cluster

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/fluxcd/cli-utils/pkg/object"
	"github.com/fluxcd/pkg/ssa"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	"github.com/strata-gitops/strata/internal/labels"
)

// The poller reads strata's objects only, and a Deployment is healthy
// exactly when its own status says so (no ReplicaSets or Pods needed).
func TestStatusPollerReadsOwnedObjects(t *testing.T) {
	cfg := startClusters(t)["a"]
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mapper, err := apiutil.NewDynamicRESTMapper(cfg, hc)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{HTTPClient: hc, Mapper: mapper})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ns := "status-reader"
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	mine := map[string]string{labels.ManagedBy: labels.ManagedByValue, "app": "web"}
	one := int32(1)
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns, Labels: mine},
		Spec: appsv1.DeploymentSpec{Replicas: &one, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "example.com/web:1"}}}}},
	}
	if err := c.Create(ctx, dep); err != nil {
		t.Fatal(err)
	}
	other := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "not-strata", Namespace: ns}}
	if err := c.Create(ctx, other); err != nil {
		t.Fatal(err)
	}

	rm := ssa.NewResourceManager(c, newStatusPoller(c, mapper), ssa.Owner{Field: labels.FieldManager})
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(appsv1.SchemeGroupVersion.WithKind("Deployment"))
	u.SetNamespace(ns)
	u.SetName("web")
	set := object.UnstructuredSetToObjMetadataSet([]*unstructured.Unstructured{u})
	// No controller in envtest: the Deployment stays unavailable.
	if err := rm.WaitForSet(set, ssa.WaitOptions{Interval: 100 * time.Millisecond, Timeout: time.Second}); err == nil {
		t.Fatal("an unavailable Deployment was reported healthy")
	}
	if err := c.Get(ctx, client.ObjectKeyFromObject(dep), dep); err != nil {
		t.Fatal(err)
	}
	dep.Status = appsv1.DeploymentStatus{ObservedGeneration: dep.Generation, Replicas: 1, UpdatedReplicas: 1, ReadyReplicas: 1, AvailableReplicas: 1,
		Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue}, {Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue, Reason: "NewReplicaSetAvailable"}}}
	if err := c.Status().Update(ctx, dep); err != nil {
		t.Fatal(err)
	}
	if err := rm.WaitForSet(set, ssa.WaitOptions{Interval: 100 * time.Millisecond, Timeout: 5 * time.Second}); err != nil {
		t.Fatalf("an available Deployment was not reported healthy: %v", err)
	}

	// The reader itself: strata's objects only, and only the kinds waited for.
	cm := &unstructured.Unstructured{}
	cm.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("ConfigMap"))
	cm.SetNamespace(ns)
	cm.SetName(other.Name)
	r, _ := newOwnedReader(c, mapper, object.UnstructuredSetToObjMetadataSet([]*unstructured.Unstructured{u, cm}))
	if err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.Get(ctx, client.ObjectKeyFromObject(cm), cm.DeepCopy()); !apierrors.IsNotFound(err) {
		t.Errorf("a ConfigMap without strata's label: got %v, want NotFound", err)
	}
	got := u.DeepCopy()
	if err := r.Get(ctx, client.ObjectKeyFromObject(u), got); err != nil || got.GetLabels()[labels.ManagedBy] != labels.ManagedByValue {
		t.Errorf("strata's Deployment: %v", err)
	}
	rs := &unstructured.UnstructuredList{}
	rs.SetGroupVersionKind(appsv1.SchemeGroupVersion.WithKind("ReplicaSetList"))
	if err := r.ListNamespaceScoped(ctx, rs, ns, nil); err == nil {
		t.Error("ReplicaSets were listed though nothing waits for them")
	}
}

// listCounter is the real client, counting the LISTs of each kind.
type listCounter struct {
	client.Reader
	mu    sync.Mutex
	lists map[string]int
}

func (l *listCounter) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	l.mu.Lock()
	l.lists[list.GetObjectKind().GroupVersionKind().Kind]++
	l.mu.Unlock()
	return l.Reader.List(ctx, list, opts...)
}

func (l *listCounter) count(kind string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lists[kind]
}

// A health wait lists again only what is not yet Current, and still ends
// only on a poll that read every object afresh: a ConfigMap deleted while
// a Deployment rolls out keeps the wait from ending.
func TestWaitListsOnlyWhatIsStillRollingOut(t *testing.T) {
	cfg := startClusters(t)["a"]
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mapper, err := apiutil.NewDynamicRESTMapper(cfg, hc)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{HTTPClient: hc, Mapper: mapper})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	mine := map[string]string{labels.ManagedBy: labels.ManagedByValue, "app": "web"}
	for _, tc := range []struct {
		name        string
		deleteCM    bool
		wantHealthy bool
	}{
		{name: "settled", wantHealthy: true},
		{name: "went-back", deleteCM: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := "narrow-" + tc.name
			if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
				t.Fatal(err)
			}
			cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cfg", Namespace: ns, Labels: mine}}
			one := int32(1)
			dep := &appsv1.Deployment{
				ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns, Labels: mine},
				Spec: appsv1.DeploymentSpec{Replicas: &one, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
					Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
						Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "example.com/web:1"}}}}},
			}
			for _, o := range []client.Object{cm, dep} {
				if err := c.Create(ctx, o); err != nil {
					t.Fatal(err)
				}
			}
			var objs []*unstructured.Unstructured
			for _, o := range []struct{ kind, name string }{{"ConfigMap", "cfg"}, {"Deployment", "web"}} {
				u := &unstructured.Unstructured{}
				u.SetGroupVersionKind(map[string]schema.GroupVersionKind{"ConfigMap": corev1.SchemeGroupVersion.WithKind("ConfigMap"), "Deployment": appsv1.SchemeGroupVersion.WithKind("Deployment")}[o.kind])
				u.SetNamespace(ns)
				u.SetName(o.name)
				objs = append(objs, u)
			}
			lc := &listCounter{Reader: c, lists: map[string]int{}}
			rm := ssa.NewResourceManager(c, newStatusPoller(lc, mapper), ssa.Owner{Field: labels.FieldManager})
			done := make(chan error, 1)
			go func() {
				done <- rm.WaitForSet(object.UnstructuredSetToObjMetadataSet(objs), ssa.WaitOptions{Interval: 50 * time.Millisecond, Timeout: 3 * time.Second})
			}()
			time.Sleep(time.Second) // ~20 polls; no controller: the Deployment stays unavailable
			if cms, deps := lc.count("ConfigMapList"), lc.count("DeploymentList"); cms != 1 || deps < 10 {
				t.Fatalf("while the Deployment rolls out: %d ConfigMap LISTs (want 1: it was Current at once), %d Deployment LISTs (want ≥ 10)", cms, deps)
			}
			if tc.deleteCM {
				if err := c.Delete(ctx, cm); err != nil {
					t.Fatal(err)
				}
			}
			if err := c.Get(ctx, client.ObjectKeyFromObject(dep), dep); err != nil {
				t.Fatal(err)
			}
			dep.Status = appsv1.DeploymentStatus{ObservedGeneration: dep.Generation, Replicas: 1, UpdatedReplicas: 1, ReadyReplicas: 1, AvailableReplicas: 1,
				Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue}, {Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue, Reason: "NewReplicaSetAvailable"}}}
			if err := c.Status().Update(ctx, dep); err != nil {
				t.Fatal(err)
			}
			err := <-done
			if tc.wantHealthy && err != nil {
				t.Fatalf("every object Current, yet: %v", err)
			}
			if !tc.wantHealthy && err == nil {
				t.Fatal("the wait ended healthy though the ConfigMap it waited for was deleted")
			}
			if tc.wantHealthy && lc.count("ConfigMapList") != 2 {
				t.Errorf("%d ConfigMap LISTs, want 2: one at the start, one in the poll that ended the wait", lc.count("ConfigMapList"))
			}
		})
	}
}
