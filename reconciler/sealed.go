package reconciler

import (
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/strata-gitops/strata/internal/audit"
	"github.com/strata-gitops/strata/internal/cluster"
	"github.com/strata-gitops/strata/internal/desired"
	"github.com/strata-gitops/strata/internal/inventory"
	"github.com/strata-gitops/strata/internal/secrets"
)

// sealed is an encrypted Secret of the plan: its committed SOPS file (the
// bytes the MAC covers), when it is an encrypted manifest.
type sealed struct {
	file string
	doc  []byte
}

// sealedOf returns how to decrypt u, or nil when u holds no ciphertext.
// The plan, the inventory hash and the audit only ever see the ciphertext.
func sealedOf(st *desired.State, u *unstructured.Unstructured) *sealed {
	if u.GetKind() != "Secret" || !secrets.IsEncrypted(u.Object) {
		return nil
	}
	s := &sealed{}
	if src, ok := st.Sources[secrets.MAC(u.Object)]; ok {
		s.file, s.doc = src.File, src.Doc
	}
	return s
}

// SecretError is an encrypted Secret that could not be decrypted for a
// cluster: nothing was applied there.
type SecretError struct {
	Cluster string
	Err     error
}

func (e *SecretError) Error() string {
	return fmt.Sprintf("cluster %s: nothing applied: %v", e.Cluster, e.Err)
}

func (e *SecretError) Unwrap() error { return e.Err }

// openSecrets returns the objects to apply with every encrypted Secret
// decrypted in memory with the keys of the cluster's tier, read now (a
// rotated key Secret takes effect at the next apply). One Secret that does
// not decrypt fails the cluster before anything is applied (fail closed).
// toApply itself keeps the ciphertext.
func (r *Reconciler) openSecrets(cl *cluster.Cluster, res *ClusterResult, objs []*desiredObject, toApply []lazyObject) ([]lazyObject, error) {
	bySecret := map[string]*desiredObject{}
	for _, do := range objs {
		if do.sealed != nil {
			bySecret[do.ref.Key()] = do
		}
	}
	if len(bySecret) == 0 {
		return toApply, nil
	}
	var ids secrets.Identities
	loaded := false
	out := make([]lazyObject, len(toApply))
	for i, lo := range toApply {
		do := bySecret[refKey(lo.id)]
		if do == nil {
			out[i] = lo
			continue
		}
		if !loaded {
			var err error
			if ids, err = r.opts.AgeKeys.ForTier(res.Tier); err != nil {
				return nil, &SecretError{Cluster: cl.Name, Err: err}
			}
			loaded = true
		}
		name := do.ref.String()
		if do.sealed.file != "" {
			name += " (" + do.sealed.file + ")"
		}
		plain, err := secrets.Open(lo.build().Object, do.sealed.doc, name, ids)
		if err != nil {
			if nk, ok := err.(*secrets.NoKeyError); ok {
				// Name every key held, not only the tier's (none, often).
				nk.Tier, nk.Held = res.Tier, r.opts.AgeKeys.Held()
			}
			r.auditor(cl).Record(audit.Event{Kind: audit.Apply, Cluster: cl.Name, Tier: res.Tier, Object: do.ref.String(),
				Sensitivity: do.sensitivity, Actor: "strata", Message: "not applied: " + err.Error()})
			return nil, &SecretError{Cluster: cl.Name, Err: err}
		}
		opened := &unstructured.Unstructured{Object: plain}
		out[i] = lazyObject{id: lo.id, build: func() *unstructured.Unstructured { return opened }, since: lo.since, create: lo.create}
	}
	return out, nil
}

func refKey(u *unstructured.Unstructured) string {
	return inventory.RefOf(u).Key()
}
