package admission

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// request is one admission request the load may send: the CREATE of a
// corpus object, or an UPDATE of it (issue 16 §4: not CREATEs only).
type request struct {
	item     int // index into Corpus.Items
	op       admissionv1.Operation
	obj, old *unstructured.Unstructured // old: UPDATE only
	gvr      schema.GroupVersionResource
}

// body is one AdmissionReview, sent byte for byte the same to both tools.
type body struct {
	item int // index into Corpus.Items
	cand int // index into the candidates it was made from
	op   admissionv1.Operation
	uid  string
	data []byte
}

// admin is the user of every request: the kwok cluster's admin.
var admin = authenticationv1.UserInfo{Username: "kubernetes-admin", Groups: []string{"system:masters", "system:authenticated"}}

// changeCause is the annotation `kubectl annotate`/--record sets; an
// UPDATE of the load changes it, as a typical edit changes one field.
const changeCause = "kubernetes.io/change-cause"

// candidates are every object's CREATE (as the apiserver defaulted it),
// then its UPDATE: the stored object (uid, resourceVersion, creation time
// set) changed in one annotation. Candidate 2i is object i's CREATE.
func candidates(objs []*unstructured.Unstructured, gvrs []schema.GroupVersionResource) []request {
	var out []request
	for i, o := range objs {
		out = append(out, request{item: i, op: admissionv1.Create, obj: o, gvr: gvrs[i]})
		old := o.DeepCopy()
		old.SetUID(types.UID(fmt.Sprintf("6f1c0b1e-0000-4000-8000-%012d", i)))
		old.SetResourceVersion("1000")
		old.SetCreationTimestamp(metav1.Unix(1_780_000_000, 0))
		ann := old.GetAnnotations()
		if ann == nil {
			ann = map[string]string{}
		}
		ann[changeCause] = "release 1"
		old.SetAnnotations(ann)
		cur := old.DeepCopy()
		ann = cur.GetAnnotations()
		ann[changeCause] = "release 2"
		cur.SetAnnotations(ann)
		out = append(out, request{item: i, op: admissionv1.Update, obj: cur, old: old, gvr: gvrs[i]})
	}
	return out
}

// encode makes the AdmissionReview of r with uid, as the apiserver sends it.
func (r request) encode(uid string) ([]byte, error) {
	raw, err := r.obj.MarshalJSON()
	if err != nil {
		return nil, err
	}
	gvk := r.obj.GroupVersionKind()
	kind := metav1.GroupVersionKind{Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind}
	res := metav1.GroupVersionResource{Group: r.gvr.Group, Version: r.gvr.Version, Resource: r.gvr.Resource}
	f := false
	var opts []byte
	var old []byte
	switch r.op {
	case admissionv1.Create:
		opts, _ = json.Marshal(metav1.CreateOptions{TypeMeta: metav1.TypeMeta{APIVersion: "meta.k8s.io/v1", Kind: "CreateOptions"}})
	case admissionv1.Update:
		opts, _ = json.Marshal(metav1.UpdateOptions{TypeMeta: metav1.TypeMeta{APIVersion: "meta.k8s.io/v1", Kind: "UpdateOptions"}})
		if old, err = r.old.MarshalJSON(); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("operation %s is not part of the load", r.op)
	}
	rev := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID: types.UID(uid), Kind: kind, Resource: res, RequestKind: &kind, RequestResource: &res,
			Name: r.obj.GetName(), Namespace: r.obj.GetNamespace(), Operation: r.op,
			UserInfo: admin, DryRun: &f,
			Object:  runtimeRaw(raw),
			Options: runtimeRaw(opts),
		},
	}
	if old != nil {
		rev.Request.OldObject = runtimeRaw(old)
	}
	return json.Marshal(rev)
}

// candidateBodies encodes every candidate once (uids ...-c<i>), for the
// checked pass that learns each tool's verdicts.
func candidateBodies(cands []request) ([]*body, error) {
	out := make([]*body, len(cands))
	for i, c := range cands {
		uid := fmt.Sprintf("00000000-0000-4000-8001-%012d", i)
		data, err := c.encode(uid)
		if err != nil {
			return nil, err
		}
		out[i] = &body{item: c.item, cand: i, op: c.op, uid: uid, data: data}
	}
	return out, nil
}

// mixPool makes the load's n bodies from the candidates both tools judge
// alike (use[i]): round(n·denyRate) from those denied, the rest from those
// allowed (most admission requests in a cluster are allowed), taking the
// candidates of each kind in turn, each body with its own uid, in a fixed
// shuffled order.
func mixPool(cands []request, use, denied []bool, n int, denyRate float64) ([]*body, error) {
	if denyRate < 0 || denyRate > 1 {
		return nil, fmt.Errorf("deny rate %v is not between 0 and 1", denyRate)
	}
	var allow, deny []int
	for i := range cands {
		switch {
		case !use[i]:
		case denied[i]:
			deny = append(deny, i)
		default:
			allow = append(allow, i)
		}
	}
	nDeny := int(math.Round(float64(n) * denyRate))
	switch {
	case nDeny > 0 && len(deny) == 0:
		return nil, errors.New("no candidate both tools deny, yet the load should hold denied requests")
	case nDeny < n && len(allow) == 0:
		return nil, errors.New("no candidate both tools allow, yet the load should hold allowed requests")
	}
	pool := make([]*body, 0, n)
	for k := range n {
		var c int
		if k < nDeny {
			c = deny[k%len(deny)]
		} else {
			c = allow[(k-nDeny)%len(allow)]
		}
		uid := fmt.Sprintf("00000000-0000-4000-8000-%012d", k)
		data, err := cands[c].encode(uid)
		if err != nil {
			return nil, err
		}
		pool = append(pool, &body{item: cands[c].item, cand: c, op: cands[c].op, uid: uid, data: data})
	}
	rng := rand.New(rand.NewPCG(1, 2))
	rng.Shuffle(len(pool), func(i, j int) { pool[i], pool[j] = pool[j], pool[i] })
	return pool, nil
}
