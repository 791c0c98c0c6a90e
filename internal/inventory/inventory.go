// Package inventory keeps, in each target cluster, the record of what strata
// applied there for an environment: a ConfigMap strata-inventory-<env> in
// strata-system with the revision and the last reconcile's status, listing
// the shards (ConfigMaps strata-inventory-<env>.<generation>.<hash>) that
// hold every object (see format.go). Pruning is computed from it, so it
// lives where the objects live and survives a restart of strata.
package inventory

import (
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Ref identifies one applied object.
type Ref struct {
	Group     string `json:"g,omitempty"`
	Version   string `json:"v"`
	Kind      string `json:"k"`
	Namespace string `json:"ns,omitempty"`
	Name      string `json:"n"`
	// Hash is the content hash of the desired object (without the revision
	// annotation), so an unchanged object is neither re-applied nor restamped.
	Hash string `json:"h,omitempty"`
	// Revision is the commit that last changed the object.
	Revision string `json:"r,omitempty"`
	// Fingerprint is the live object's generation or resourceVersion (plus a
	// hash of its metadata) after strata applied it; a different live value
	// means someone else changed it (drift).
	Fingerprint string `json:"f,omitempty"`
}

// RefOf returns the Ref of u.
func RefOf(u *unstructured.Unstructured) Ref {
	gvk := u.GroupVersionKind()
	return Ref{Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind, Namespace: u.GetNamespace(), Name: u.GetName()}
}

// Key identifies the object regardless of its API version.
func (r Ref) Key() string {
	return r.Group + "/" + r.Kind + "/" + r.Namespace + "/" + r.Name
}

// GVK returns the object's group, version and kind.
func (r Ref) GVK() schema.GroupVersionKind {
	return schema.GroupVersionKind{Group: r.Group, Version: r.Version, Kind: r.Kind}
}

func (r Ref) String() string {
	if r.Namespace == "" {
		return r.Kind + " " + r.Name
	}
	return r.Kind + " " + r.Namespace + "/" + r.Name
}

// Object returns an unstructured stub of r, enough to get or delete it.
func (r Ref) Object() *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(r.GVK())
	u.SetNamespace(r.Namespace)
	u.SetName(r.Name)
	return u
}

// Status is the outcome of the last reconcile of one cluster.
type Status struct {
	Revision      string             `json:"revision"`
	Objects       int                `json:"objects"`
	Healthy       int                `json:"healthy"`
	Progressing   int                `json:"progressing"`
	Failed        int                `json:"failed"`
	Drifted       int                `json:"drifted"`
	DriftTotal    int                `json:"driftTotal"`
	LastError     string             `json:"lastError,omitempty"`
	LastReconcile time.Time          `json:"lastReconcile"`
	Conditions    []metav1.Condition `json:"conditions,omitempty"`
	// Windows are the windows open when the revision was applied.
	Windows []string `json:"windows,omitempty"`
	// History lists the revisions applied here, newest first (bounded).
	History []Applied `json:"history,omitempty"`
	// Gate is the approval gate's verdict on the revision last judged, as
	// data: status and the status page read these fields, not messages.
	Gate *GateStatus `json:"gateStatus,omitempty"`
	// Suspended is the suspension the reconciler honoured in its last
	// reconcile (nothing was applied or pruned then).
	Suspended *Suspension `json:"suspended,omitempty"`
	// Held lists objects that differ from git and that strata left as they
	// are because of strata.dev/reconcile: disabled (drift reported, not
	// corrected), bounded by MaxHeld.
	Held []string `json:"held,omitempty"`
	// HeldTotal counts them all.
	HeldTotal int `json:"heldTotal,omitempty"`
}

// MaxHeld bounds Status.Held.
const MaxHeld = 20

// GateStatus is the approval gate's verdict on one revision.
type GateStatus struct {
	Commit string `json:"commit"`
	// Allowed is true when the revision may be applied.
	Allowed bool `json:"allowed"`
	// Enforced is false when strata.yaml turned the gate off.
	Enforced bool `json:"enforced"`
	// Pinned is true when the root of trust is pinned outside the repository.
	Pinned      bool     `json:"pinned"`
	Sensitivity string   `json:"sensitivity,omitempty"`
	Need        int      `json:"need"`
	Have        []string `json:"have,omitempty"`
	// Base is the approved commit the change was judged from.
	Base string `json:"base,omitempty"`
	// Restores is the approved commit whose tree a rollback restores.
	Restores string `json:"restores,omitempty"`
	// Rejected are approvals that did not count, each with its reason.
	Rejected []string `json:"rejected,omitempty"`
	Message  string   `json:"message"`
}

// MaxHistory bounds Status.History.
const MaxHistory = 50

// Applied is one revision strata applied to a cluster.
type Applied struct {
	Revision string    `json:"revision"`
	Tree     string    `json:"tree"`
	Time     time.Time `json:"time"`
	// Outcome is Succeeded, or the reason the revision did not become healthy.
	Outcome   string   `json:"outcome"`
	Approvers []string `json:"approvers,omitempty"`
	// Gate is the approval gate's message for the revision.
	Gate string `json:"gate,omitempty"`
}

// Record puts a into the history, newest first, replacing an entry of the
// same revision.
func (s *Status) Record(a Applied) {
	h := []Applied{a}
	for _, e := range s.History {
		if e.Revision != a.Revision && len(h) < MaxHistory {
			h = append(h, e)
		}
	}
	s.History = h
}

// Inventory is one environment's record in one cluster.
type Inventory struct {
	Environment string
	Entries     []Ref
	Status      Status
	// Exists is false when the cluster has no inventory yet.
	Exists bool
	// statusOnly is set by LoadStatus: Entries were not read, so the
	// inventory must not be saved.
	statusOnly bool
	// Suspension is the environment's suspension in the cluster, read by
	// the status readers (cluster.ReadInventory) with the inventory; nil
	// when not suspended or not read.
	Suspension *Suspension
}

// Keys returns the set of entry keys.
func (inv *Inventory) Keys() map[string]Ref {
	m := make(map[string]Ref, len(inv.Entries))
	for _, e := range inv.Entries {
		m[e.Key()] = e
	}
	return m
}

// Stale returns the entries not in desired, in a stable order.
func (inv *Inventory) Stale(desired []Ref) []Ref {
	want := make(map[string]bool, len(desired))
	for _, d := range desired {
		want[d.Key()] = true
	}
	var out []Ref
	for _, e := range inv.Entries {
		if !want[e.Key()] {
			out = append(out, e)
		}
	}
	return out
}

// Describe lists refs for messages, shortened after n.
func Describe(refs []Ref, n int) string {
	s := make([]string, 0, n+1)
	for i, r := range refs {
		if i == n {
			s = append(s, fmt.Sprintf("and %d more", len(refs)-n))
			break
		}
		s = append(s, r.String())
	}
	return strings.Join(s, ", ")
}
