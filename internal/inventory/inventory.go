// Package inventory keeps, in each target cluster, the record of what strata
// applied there for an environment: a ConfigMap strata-inventory-<env> in
// strata-system listing every object, the revision, and the last
// reconcile's status. Pruning is computed from it, so it lives where the
// objects live and survives a restart of strata.
package inventory

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-gitops/strata/internal/labels"
)

const (
	entriesKey = "entries"
	statusKey  = "status"
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
	// Suspension is the environment's suspension in the cluster, read by
	// the status readers (reconciler.ReadInventory) with the inventory; nil
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

// Load reads the inventory of env from the cluster behind c. A missing
// inventory is empty, not an error.
func Load(ctx context.Context, c client.Client, env string) (*Inventory, error) {
	cm := &corev1.ConfigMap{}
	err := c.Get(ctx, client.ObjectKey{Namespace: labels.SystemNamespace, Name: labels.InventoryName(env)}, cm)
	if apierrors.IsNotFound(err) {
		return &Inventory{Environment: env}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading inventory %s/%s: %w", labels.SystemNamespace, labels.InventoryName(env), err)
	}
	inv := &Inventory{Environment: env, Exists: true}
	if s := cm.Data[entriesKey]; s != "" {
		if err := json.Unmarshal([]byte(s), &inv.Entries); err != nil {
			return nil, fmt.Errorf("inventory %s/%s is corrupt (%v): strata will not prune from it; fix or delete the ConfigMap and reconcile again",
				labels.SystemNamespace, labels.InventoryName(env), err)
		}
	}
	if s := cm.Data[statusKey]; s != "" {
		_ = json.Unmarshal([]byte(s), &inv.Status) // status is informational
	}
	return inv, nil
}

// Object returns the ConfigMap holding inv, for events and apply.
func (inv *Inventory) Object() (*corev1.ConfigMap, error) {
	entries := slices.Clone(inv.Entries)
	sort.Slice(entries, func(i, j int) bool { return entries[i].Key() < entries[j].Key() })
	e, err := json.Marshal(entries)
	if err != nil {
		return nil, err
	}
	s, err := json.Marshal(inv.Status)
	if err != nil {
		return nil, err
	}
	return &corev1.ConfigMap{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{
			Namespace: labels.SystemNamespace, Name: labels.InventoryName(inv.Environment),
			Labels:      map[string]string{labels.ManagedBy: labels.ManagedByValue, labels.Environment: inv.Environment},
			Annotations: map[string]string{labels.Revision: inv.Status.Revision},
		},
		Data: map[string]string{entriesKey: string(e), statusKey: string(s)},
	}, nil
}

// Save writes inv with server-side apply, creating strata-system if needed,
// and returns the stored ConfigMap (events are recorded on it).
func Save(ctx context.Context, c client.Client, inv *Inventory) (*corev1.ConfigMap, error) {
	if !inv.Exists {
		if err := EnsureNamespace(ctx, c); err != nil {
			return nil, err
		}
	}
	cm, err := inv.Object()
	if err != nil {
		return nil, err
	}
	if err := c.Patch(ctx, cm, client.Apply, client.FieldOwner(labels.FieldManager), client.ForceOwnership); err != nil {
		return nil, fmt.Errorf("writing inventory %s/%s: %w", labels.SystemNamespace, cm.Name, err)
	}
	inv.Exists = true
	return cm, nil
}

// EnsureNamespace creates strata-system when it does not exist.
func EnsureNamespace(ctx context.Context, c client.Client) error {
	ns := &corev1.Namespace{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
		ObjectMeta: metav1.ObjectMeta{Name: labels.SystemNamespace, Labels: map[string]string{labels.ManagedBy: labels.ManagedByValue}},
	}
	if err := c.Patch(ctx, ns, client.Apply, client.FieldOwner(labels.FieldManager), client.ForceOwnership); err != nil {
		return fmt.Errorf("creating namespace %s: %w", labels.SystemNamespace, err)
	}
	return nil
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
