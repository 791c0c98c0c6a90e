package reconciler

import (
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/strata-gitops/strata/internal/desired"
	"github.com/strata-gitops/strata/internal/inventory"
)

// desiredObject is one object for one cluster.
type desiredObject struct {
	// src is the rendered object, shared with the render cache; stamped
	// makes the copy that is applied.
	src   *desired.Object
	stamp desired.Stamp
	ref   inventory.Ref
	// hash is the content hash without the revision annotation.
	hash string
	// sensitivity and reason come from placement, for the audit.
	sensitivity string
	reason      string
	// disabled and ifNotPresent are the object's apply policies in git
	// (strata.dev/reconcile: disabled, strata.dev/ssa: IfNotPresent).
	disabled, ifNotPresent bool
	// sealed is set on an encrypted Secret, decrypted only to apply (sealed.go).
	sealed *sealed
}

// rolloutPlan is the desired state split per cluster.
type rolloutPlan struct {
	env      string
	revision string
	order    []string // clusters in strata.yaml order
	tiers    map[string]string
	objects  map[string][]*desiredObject
	// where maps an object key to the clusters that should have it.
	where map[string][]string
}

// newRolloutPlan describes st's placed objects per cluster. Nothing is
// copied: an object is stamped (copied) only when it is applied, and its
// hash is remembered by the object across revisions (desired.Object.Hash),
// so that a revision that changes one object costs little more than that
// object.
func newRolloutPlan(st *desired.State, targets map[string]bool) (*rolloutPlan, error) {
	p := &rolloutPlan{
		env: st.Environment, revision: st.Revision, tiers: map[string]string{},
		objects: map[string][]*desiredObject{}, where: map[string][]string{},
	}
	// Describe each placed object once; clusters share the description.
	described := make(map[int]*desiredObject, len(st.Placement.Decisions))
	for _, d := range st.Placement.Decisions {
		if _, ok := described[d.Index]; ok {
			continue
		}
		src := st.Objects[d.Index]
		u := metadataView(src)
		stamp := st.StampOf(d)
		stamp.DefaultNamespace = !d.Object.ClusterScoped && u.GetNamespace() == ""
		ref := inventory.RefOf(u)
		if stamp.DefaultNamespace {
			ref.Namespace = "default"
		}
		if err := checkPolicyValues(u); err != nil {
			return nil, fmt.Errorf("%s: %w", d.Object, err)
		}
		h, err := src.Hash(stamp)
		if err != nil {
			return nil, fmt.Errorf("hashing %s: %w", d.Object, err)
		}
		do := &desiredObject{src: src, stamp: stamp, ref: ref, hash: h, sensitivity: string(d.Sensitivity), reason: d.Reason,
			disabled: isDisabled(u), ifNotPresent: isIfNotPresent(u)}
		if src.Kind() == "Secret" {
			do.sealed = sealedOf(st, &unstructured.Unstructured{Object: src.Map()})
		}
		described[d.Index] = do
	}
	for _, c := range st.Clusters {
		p.order = append(p.order, c.Name)
		p.tiers[c.Name] = string(c.Tier)
		for _, d := range st.Placement.ForCluster(c.Name) {
			do := described[d.Index]
			p.where[do.ref.Key()] = append(p.where[do.ref.Key()], c.Name)
			if targets[c.Name] {
				p.objects[c.Name] = append(p.objects[c.Name], do)
			}
		}
	}
	return p, nil
}

// metadataView returns o's apiVersion, kind and metadata (namespace, name,
// labels, annotations) as an unstructured object, without decoding the
// rest: what the plan reads of every object at every revision.
func metadataView(o *desired.Object) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion(o.APIVersion())
	u.SetKind(o.Kind())
	u.SetNamespace(o.Namespace())
	u.SetName(o.Name())
	u.SetLabels(o.Labels())
	u.SetAnnotations(o.Annotations())
	return u
}

// revisionOf returns the revision do's object is stamped with: the one
// that last changed it (from the inventory) or rev when it changed.
func (do *desiredObject) revisionOf(prev *inventory.Ref, rev string) string {
	if prev != nil && prev.Hash == do.hash && prev.Revision != "" {
		return prev.Revision
	}
	return rev
}

// stamped returns the copy of do's object that is applied, stamped with
// revision.
func (do *desiredObject) stamped(revision string) *unstructured.Unstructured {
	s := do.stamp
	s.Revision = revision
	return do.src.Stamped(s)
}

// lazy is do to be applied, stamped with revision only when its batch is.
func (do *desiredObject) lazy(revision string) lazyObject {
	return lazyObject{id: do.ref.Object(), build: func() *unstructured.Unstructured { return do.stamped(revision) }}
}
