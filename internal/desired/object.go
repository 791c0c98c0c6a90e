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
// its JSON (as kustomize renders it, before strata's labels and
// annotations) and what placement reads of it. A decoded map takes about
// four times its JSON, so objects are decoded only when used whole: to be
// applied, hashed once, or judged by policies. Objects are made once per
// rendered unit and shared through the render cache by every later
// revision that renders the unit the same: nothing modifies one.
type Object struct {
	raw        []byte
	apiVersion string
	// place is what placement reads. ClusterScoped comes from the
	// built-in schema only; Build adds kinds defined by CustomResource-
	// Definitions of the same render.
	place placement.Object
	// renderedNamespace is metadata.namespace as rendered.
	renderedNamespace string
	// clusterScopedCRD is set on a CustomResourceDefinition of scope Cluster.
	clusterScopedCRD bool
	// hash remembers the last Hash computed (see Hash).
	hash atomic.Pointer[memo]
}

type memo struct{ stamp, hash string }

// Map returns the object decoded as the apiverser would decode it (int64
// numbers): a new map, the caller's to keep or change.
func (o *Object) Map() map[string]any {
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(o.raw); err != nil {
		// The same bytes were decoded when the object was made.
		panic(fmt.Sprintf("decoding %s again: %v", o.Key(), err))
	}
	return u.Object
}

// APIVersion, Kind, Namespace and Name identify the object as rendered
// (Namespace may be empty for a namespaced object: kubectl's "default").
func (o *Object) APIVersion() string { return o.apiVersion }
func (o *Object) Kind() string       { return o.place.Kind }
func (o *Object) Namespace() string  { return o.renderedNamespace }
func (o *Object) Name() string       { return o.place.Name }

// Labels and Annotations are the object's own (read only: shared).
func (o *Object) Labels() map[string]string      { return o.place.Labels }
func (o *Object) Annotations() map[string]string { return o.place.Annotations }

// Key names the object as render.Key names a rendered resource.
func (o *Object) Key() string {
	return o.place.Group + "/" + o.place.Kind + "/" + o.renderedNamespace + "/" + o.place.Name
}

// Stamp is what strata adds to an object for a cluster.
type Stamp struct {
	Environment, Revision, Reason string
	// DefaultNamespace applies a namespaced object that names no
	// namespace to "default", as kubectl would.
	DefaultNamespace bool
}

// Stamped returns the object decoded, with strata's labels and
// annotations (Stamp.AddTo).
func (o *Object) Stamped(s Stamp) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: o.Map()}
	l, a := u.GetLabels(), u.GetAnnotations()
	if l == nil {
		l = map[string]string{}
	}
	if a == nil {
		a = map[string]string{}
	}
	s.AddTo(l, a)
	u.SetLabels(l)
	u.SetAnnotations(a)
	if s.DefaultNamespace && u.GetNamespace() == "" {
		u.SetNamespace("default")
	}
	return u
}

// AddTo adds strata's labels (managed-by, environment) and annotations
// (revision, placement reason) to an object's labels and annotations.
func (s Stamp) AddTo(labelMap, annotations map[string]string) {
	labelMap[labels.ManagedBy] = labels.ManagedByValue
	labelMap[labels.Environment] = s.Environment
	annotations[labels.Revision] = s.Revision
	annotations[labels.Placement] = s.Reason
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
		objs[i] = newObject(b, u.Object)
		size += int64(len(b)) + 512
	}
	return objs, size, nil
}

// newObject keeps raw, the JSON of obj, and reads what placement needs of
// obj.
func newObject(raw []byte, obj map[string]any) *Object {
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
		p.DefinesGroup, _ = spec(obj)["group"].(string)
		names, _ := spec(obj)["names"].(map[string]any)
		p.DefinesKind, _ = names["kind"].(string)
	}
	return &Object{raw: raw, apiVersion: apiVersion, renderedNamespace: metaString(obj, "namespace"), place: p,
		clusterScopedCRD: isCRD(p) && spec(obj)["scope"] == "Cluster"}
}

func spec(obj map[string]any) map[string]any {
	s, _ := obj["spec"].(map[string]any)
	return s
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
		if o.clusterScopedCRD {
			clusterCRDs[strings.TrimSpace(o.place.DefinesGroup)+"/"+strings.TrimSpace(o.place.DefinesKind)] = true
		}
	}
	out := make([]placement.Object, len(objs))
	for i, o := range objs {
		p := o.place
		if !p.ClusterScoped && clusterCRDs[p.Group+"/"+p.Kind] {
			// ClaimNamespace reads PersistentVolumes only, never custom kinds.
			p.ClusterScoped, p.Namespace = true, ""
		}
		out[i] = p
	}
	return out
}
