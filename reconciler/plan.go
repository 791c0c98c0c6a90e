package reconciler

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/strata-gitops/strata/internal/desired"
	"github.com/strata-gitops/strata/internal/inventory"
	"github.com/strata-gitops/strata/internal/labels"
)

// desiredObject is one object for one cluster.
type desiredObject struct {
	obj *unstructured.Unstructured
	ref inventory.Ref
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

// newRolloutPlan converts st's placed resources into the objects applied per
// cluster. It consumes st.Resources: each is dropped once converted, so that
// kustomize's copy of a large overlay (its biggest share of memory) and the
// plan's never sit in memory whole at the same time, nor while applying.
func newRolloutPlan(st *desired.State, targets map[string]bool) (*rolloutPlan, error) {
	p := &rolloutPlan{
		env: st.Environment, revision: st.Revision, tiers: map[string]string{},
		objects: map[string][]*desiredObject{}, where: map[string][]string{},
	}
	// Convert each placed resource once; clusters share the same object.
	converted := map[int]*desiredObject{}
	for _, d := range st.Placement.Decisions {
		if _, ok := converted[d.Index]; ok {
			continue
		}
		// Through JSON: kustomize's maps hold Go ints, which unstructured
		// objects (int64 only) cannot deep-copy.
		b, err := st.Resources[d.Index].MarshalJSON()
		if err != nil {
			return nil, fmt.Errorf("converting %s: %w", d.Object, err)
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(b); err != nil {
			return nil, fmt.Errorf("converting %s: %w", d.Object, err)
		}
		if !d.Object.ClusterScoped && u.GetNamespace() == "" {
			u.SetNamespace("default")
		}
		if err := checkPolicyValues(u); err != nil {
			return nil, fmt.Errorf("%s: %w", d.Object, err)
		}
		h, err := contentHash(u)
		if err != nil {
			return nil, fmt.Errorf("hashing %s: %w", d.Object, err)
		}
		converted[d.Index] = &desiredObject{obj: u, ref: inventory.RefOf(u), hash: h, sensitivity: string(d.Sensitivity), reason: d.Reason,
			disabled: isDisabled(u), ifNotPresent: isIfNotPresent(u), sealed: sealedOf(st, u)}
		st.Resources[d.Index] = nil
	}
	st.Resources = nil
	for _, c := range st.Clusters {
		p.order = append(p.order, c.Name)
		p.tiers[c.Name] = string(c.Tier)
		for _, d := range st.Placement.ForCluster(c.Name) {
			do := converted[d.Index]
			p.where[do.ref.Key()] = append(p.where[do.ref.Key()], c.Name)
			if targets[c.Name] {
				p.objects[c.Name] = append(p.objects[c.Name], do)
			}
		}
	}
	return p, nil
}

// contentHash hashes u without its revision annotation, so that a new
// commit that does not change an object leaves the object alone.
func contentHash(u *unstructured.Unstructured) (string, error) {
	c := u.DeepCopy()
	a := c.GetAnnotations()
	delete(a, labels.Revision)
	c.SetAnnotations(a)
	b, err := json.Marshal(c.Object)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:12]), nil
}

// stampRevision sets the revision annotation of a copy of do's object: the
// revision that last changed it (from the inventory) or rev when it changed.
func (do *desiredObject) stamped(prev *inventory.Ref, rev string) (*unstructured.Unstructured, string) {
	r := rev
	if prev != nil && prev.Hash == do.hash && prev.Revision != "" {
		r = prev.Revision
	}
	u := do.obj.DeepCopy()
	a := u.GetAnnotations()
	if a == nil {
		a = map[string]string{}
	}
	a[labels.Revision] = r
	u.SetAnnotations(a)
	return u, r
}
