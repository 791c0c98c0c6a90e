package cluster

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/fluxcd/cli-utils/pkg/object"
	"github.com/fluxcd/pkg/ssa"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	"github.com/strata-gitops/strata/internal/apiservertest"
	"github.com/strata-gitops/strata/internal/labels"
)

// The poller reads strata's objects only, and a Deployment is healthy
// exactly when its own status says so (no ReplicaSets or Pods needed).
func TestStatusPollerReadsOwnedObjects(t *testing.T) {
	c, mapper := clientOf(t, startClusters(t)["a"])
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
	u := waitedFor(appsv1.SchemeGroupVersion.WithKind("Deployment"), ns, "web")
	set := object.UnstructuredSetToObjMetadataSet([]*unstructured.Unstructured{u})
	// No controller in envtest: the Deployment stays unavailable.
	if err := rm.WaitForSet(set, ssa.WaitOptions{Interval: 100 * time.Millisecond, Timeout: time.Second}); err == nil {
		t.Fatal("an unavailable Deployment was reported healthy")
	}
	if err := apiservertest.RollOut(ctx, c, client.ObjectKeyFromObject(dep)); err != nil {
		t.Fatal(err)
	}
	if err := rm.WaitForSet(set, ssa.WaitOptions{Interval: 100 * time.Millisecond, Timeout: 5 * time.Second}); err != nil {
		t.Fatalf("an available Deployment was not reported healthy: %v", err)
	}

	// The reader itself: strata's objects only, and only the kinds waited for.
	cm := waitedFor(corev1.SchemeGroupVersion.WithKind("ConfigMap"), ns, other.Name)
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

// readCounter is the real client, counting the reads of each kind: a LIST
// as "ConfigMapList", a GET as "ConfigMap".
type readCounter struct {
	client.Reader
	mu    sync.Mutex
	reads map[string]int
}

func (l *readCounter) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	l.add(list.GetObjectKind().GroupVersionKind().Kind)
	return l.Reader.List(ctx, list, opts...)
}

func (l *readCounter) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	l.add(obj.GetObjectKind().GroupVersionKind().Kind)
	return l.Reader.Get(ctx, key, obj, opts...)
}

func (l *readCounter) add(kind string) {
	l.mu.Lock()
	l.reads[kind]++
	l.mu.Unlock()
}

func (l *readCounter) count(kind string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.reads[kind]
}

// A health wait reads again only what is not yet Current — by name when
// little of a kind and namespace is left — and still ends only on a poll
// that read every object afresh: a ConfigMap deleted while a Deployment
// rolls out keeps the wait from ending.
func TestWaitReadsOnlyWhatIsStillRollingOut(t *testing.T) {
	c, mapper := clientOf(t, startClusters(t)["a"])
	ctx := context.Background()
	for _, tc := range []struct {
		name        string
		deployments int  // the last one rolls out during the wait, the others before it
		deleteCM    bool // while the last Deployment rolls out
		onlyLast    bool // the wait is for the last Deployment only
		// reads while the last Deployment rolls out (at least, for ≥)
		wantLists, wantGets int
		wantHealthy         bool
	}{
		{name: "listed", deployments: 1, wantLists: 10, wantHealthy: true},
		{name: "by-name", deployments: 4, wantLists: 1, wantGets: 10, wantHealthy: true},
		{name: "one-of-many", deployments: 4, onlyLast: true, wantLists: 1, wantGets: 10, wantHealthy: true},
		{name: "went-back", deployments: 1, wantLists: 10, deleteCM: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := "narrow-" + tc.name
			if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
				t.Fatal(err)
			}
			mine := map[string]string{labels.ManagedBy: labels.ManagedByValue}
			cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cfg", Namespace: ns, Labels: mine}}
			if err := c.Create(ctx, cm); err != nil {
				t.Fatal(err)
			}
			objs := []*unstructured.Unstructured{waitedFor(corev1.SchemeGroupVersion.WithKind("ConfigMap"), ns, "cfg")}
			var deps []*appsv1.Deployment
			for i := range tc.deployments {
				name := fmt.Sprintf("web-%d", i)
				one := int32(1)
				sel := map[string]string{"app": name}
				dep := &appsv1.Deployment{
					ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: mine},
					Spec: appsv1.DeploymentSpec{Replicas: &one, Selector: &metav1.LabelSelector{MatchLabels: sel},
						Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: sel},
							Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "example.com/web:1"}}}}},
				}
				if err := c.Create(ctx, dep); err != nil {
					t.Fatal(err)
				}
				if i < tc.deployments-1 {
					if err := apiservertest.RollOut(ctx, c, client.ObjectKeyFromObject(dep)); err != nil {
						t.Fatal(err)
					}
				}
				deps = append(deps, dep)
				if !tc.onlyLast || i == tc.deployments-1 {
					objs = append(objs, waitedFor(appsv1.SchemeGroupVersion.WithKind("Deployment"), ns, name))
				}
			}
			rc := &readCounter{Reader: c, reads: map[string]int{}}
			rm := ssa.NewResourceManager(c, newStatusPoller(rc, mapper), ssa.Owner{Field: labels.FieldManager})
			done := make(chan error, 1)
			go func() {
				done <- rm.WaitForSet(object.UnstructuredSetToObjMetadataSet(objs), ssa.WaitOptions{Interval: 50 * time.Millisecond, Timeout: 3 * time.Second})
			}()
			time.Sleep(time.Second) // ~20 polls
			cms, lists, gets := rc.count("ConfigMapList"), rc.count("DeploymentList"), rc.count("Deployment")
			wantL, okL := fmt.Sprintf("%d or more", tc.wantLists), lists >= tc.wantLists
			if tc.wantLists == 1 {
				wantL, okL = "1", lists == 1
			}
			wantG, okG := fmt.Sprintf("%d or more", tc.wantGets), gets >= tc.wantGets
			if tc.wantGets == 0 {
				wantG, okG = "none", gets == 0
			}
			if cms != 1 || !okL || !okG {
				t.Fatalf("while the last Deployment rolls out: %d ConfigMap LISTs (want 1: it was Current at once), %d Deployment LISTs (want %s), %d Deployment GETs (want %s)",
					cms, lists, wantL, gets, wantG)
			}
			if tc.deleteCM {
				if err := c.Delete(ctx, cm); err != nil {
					t.Fatal(err)
				}
			}
			if err := apiservertest.RollOut(ctx, c, client.ObjectKeyFromObject(deps[len(deps)-1])); err != nil {
				t.Fatal(err)
			}
			err := <-done
			if tc.wantHealthy && err != nil {
				t.Fatalf("every object Current, yet: %v", err)
			}
			if !tc.wantHealthy && err == nil {
				t.Fatal("the wait ended healthy though the ConfigMap it waited for was deleted")
			}
			if tc.wantHealthy && rc.count("ConfigMapList") != 2 {
				t.Errorf("%d ConfigMap LISTs, want 2: one at the start, one in the poll that ended the wait", rc.count("ConfigMapList"))
			}
			if tc.wantGets > 0 && rc.count("DeploymentList") != 2 {
				t.Errorf("%d Deployment LISTs, want 2: one at the start, one in the poll that ended the wait", rc.count("DeploymentList"))
			}
		})
	}
}

func waitedFor(gvk schema.GroupVersionKind, ns, name string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	u.SetNamespace(ns)
	u.SetName(name)
	return u
}

// clientOf is a client of cfg and the mapper it uses.
func clientOf(t *testing.T, cfg *rest.Config) (client.Client, meta.RESTMapper) {
	t.Helper()
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
	return c, mapper
}
