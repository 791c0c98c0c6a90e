package desired

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/resource"
	"sigs.k8s.io/kustomize/kyaml/resid"

	"github.com/strata-gitops/strata/internal/labels"
	"github.com/strata-gitops/strata/internal/placement"
	"github.com/strata-gitops/strata/internal/render"
)

// Object is one rendered object in the form strata keeps after rendering:
// decoded as the apiserver would decode it (int64 numbers), before strata's
// labels and annotations, with what placement reads of it. Objects are
// made once per rendered unit and shared through the render cache by every
// later revision that renders the unit the same: nobody modifies one; a
// copy with strata's stamps comes from Stamped.
type Object struct {
	obj map[string]any
	// place is what placement reads. ClusterScoped comes from the
	// built-in schema only; Build adds kinds defined by CustomResource-
	// Definitions of the same render.
	place placement.Object
	// hash remembers the last Hash computed (see Hash).
	hash atomic.Pointer[memo]
}

type memo struct{ stamp, hash string }

// Map returns the object's fields. Read only: the map is shared.
func (o *Object) Map() map[string]any { return o.obj }

// APIVersion returns the object's apiVersion.
func (o *Object) APIVersion() string { s, _ := o.obj["apiVersion"].(string); return s }

// Key names the object as render.Key names a rendered resource.
func (o *Object) Key() string {
	return o.place.Group + "/" + o.place.Kind + "/" + metaString(o.obj, "namespace") + "/" + o.place.Name
}

// Stamp is what strata adds to an object for a cluster.
type Stamp struct {
	Environment, Revision, Reason string
	// DefaultNamespace applies a namespaced object that names no
	// namespace to "default", as kubectl would.
	DefaultNamespace bool
}

// Stamped returns a copy of the object with strata's labels (managed-by,
// environment) and annotations (revision, placement reason).
func (o *Object) Stamped(s Stamp) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: runtimeDeepCopy(o.obj)}
	l := u.GetLabels()
	if l == nil {
		l = map[string]string{}
	}
	l[labels.ManagedBy] = labels.ManagedByValue
	l[labels.Environment] = s.Environment
	u.SetLabels(l)
	a := u.GetAnnotations()
	if a == nil {
		a = map[string]string{}
	}
	a[labels.Revision] = s.Revision
	a[labels.Placement] = s.Reason
	u.SetAnnotations(a)
	if s.DefaultNamespace && u.GetNamespace() == "" {
		u.SetNamespace("default")
	}
	return u
}

// Hash returns the content hash of the object stamped with s, leaving out
// the revision annotation (a commit that does not change an object leaves
// it alone). It is remembered: the next revision asks again with the same
// stamp and pays nothing.
func (o *Object) Hash(s Stamp) (string, error) {
	s.Revision = ""
	key := fmt.Sprintf("%s\x00%s\x00%t", s.Environment, s.Reason, s.DefaultNamespace)
	if m := o.hash.Load(); m != nil && m.stamp == key {
		return m.hash, nil
	}
	u := o.Stamped(s)
	a := u.GetAnnotations()
	delete(a, labels.Revision)
	u.SetAnnotations(a)
	b, err := json.Marshal(u.Object)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	h := hex.EncodeToString(sum[:12])
	o.hash.Store(&memo{stamp: key, hash: h})
	return h, nil
}

func runtimeDeepCopy(m map[string]any) map[string]any {
	return (&unstructured.Unstructured{Object: m}).DeepCopy().Object
}

// converter turns each rendered unit into Objects.
var converter = render.Converter{ID: "desired.Object/1", Convert: convert}

// convert makes Objects of rendered resources.
func convert(res []*resource.Resource) (any, int64, error) {
	objs := make([]*Object, len(res))
	var size int64
	for i, r := range res {
		// Through JSON: kustomize's maps hold Go ints, which unstructured
		// objects (int64 only) cannot deep-copy.
		b, err := r.MarshalJSON()
		if err != nil {
			return nil, 0, fmt.Errorf("converting %s: %w", r.CurId(), err)
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(b); err != nil {
			return nil, 0, fmt.Errorf("converting %s: %w", r.CurId(), err)
		}
		objs[i] = newObject(u.Object)
		// Decoded maps take about four times their JSON.
		size += 4*int64(len(b)) + 256
	}
	return objs, size, nil
}

// newObject reads what placement needs of obj.
func newObject(obj map[string]any) *Object {
	apiVersion, _ := obj["apiVersion"].(string)
	kind, _ := obj["kind"].(string)
	group, version := resid.ParseGroupVersion(apiVersion)
	md, _ := obj["metadata"].(map[string]any)
	p := placement.Object{
		Group: group, Kind: kind, Namespace: metaString(obj, "namespace"), Name: metaString(obj, "name"),
		Labels: placement.StringMap(md["labels"]), Annotations: placement.StringMap(md["annotations"]),
		ClusterScoped:  resid.NewGvk(group, version, kind).IsClusterScoped(),
		TemplateLabels: placement.TemplateLabels(group, kind, obj),
	}
	if p.ClusterScoped {
		p.Namespace = ""
		p.ClaimNamespace = placement.ClaimNamespace(group, kind, obj)
	}
	if isCRD(p) {
		spec, _ := obj["spec"].(map[string]any)
		p.DefinesGroup, _ = spec["group"].(string)
		names, _ := spec["names"].(map[string]any)
		p.DefinesKind, _ = names["kind"].(string)
	}
	return &Object{obj: obj, place: p}
}

func metaString(obj map[string]any, field string) string {
	md, _ := obj["metadata"].(map[string]any)
	s, _ := md[field].(string)
	return s
}

func isCRD(p placement.Object) bool {
	return p.Group == "apiextensions.k8s.io" && p.Kind == "CustomResourceDefinition"
}

// placeObjects returns what placement reads of objs: kinds defined by a
// cluster-scoped CustomResourceDefinition of the same render are
// cluster-scoped. An unknown kind is namespaced, as the apiserver would
// default it.
func placeObjects(objs []*Object) []placement.Object {
	clusterCRDs := map[string]bool{} // group/kind of cluster-scoped custom resources
	for _, o := range objs {
		if isCRD(o.place) {
			spec, _ := o.obj["spec"].(map[string]any)
			if scope, _ := spec["scope"].(string); scope == "Cluster" {
				clusterCRDs[strings.TrimSpace(o.place.DefinesGroup)+"/"+strings.TrimSpace(o.place.DefinesKind)] = true
			}
		}
	}
	out := make([]placement.Object, len(objs))
	for i, o := range objs {
		p := o.place
		if !p.ClusterScoped && clusterCRDs[p.Group+"/"+p.Kind] {
			p.ClusterScoped, p.Namespace = true, ""
			p.ClaimNamespace = placement.ClaimNamespace(p.Group, p.Kind, o.obj)
		}
		out[i] = p
	}
	return out
}
