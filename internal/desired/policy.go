package desired

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/strata-gitops/strata/internal/config"
	"github.com/strata-gitops/strata/internal/placement"
	"github.com/strata-gitops/strata/internal/policy"
	"github.com/strata-gitops/strata/internal/source"
)

// ClusterVerdict is a policy verdict on an object in one cluster.
type ClusterVerdict struct {
	Cluster string
	Tier    config.Tier
	Object  placement.Object
	policy.Verdict
}

func (v ClusterVerdict) String() string {
	return fmt.Sprintf("%s in %s (%s): policy %s (%s): %s", v.Object, v.Cluster, v.Tier, v.Policy, v.Rule, v.Message)
}

// Verdicts evaluates the policies offline against every placed object in
// every cluster it goes to, as that cluster's webhook would on CREATE, so
// that a denial shows before anything reaches a cluster.
func (s *State) Verdicts(ctx context.Context, set *policy.Set) ([]ClusterVerdict, error) {
	if set == nil {
		return nil, nil
	}
	tiers := map[string]config.Tier{}
	for _, c := range s.Clusters {
		tiers[c.Name] = c.Tier
	}
	namespaces := map[string]map[string]any{}
	objects := make(map[int]map[string]any, len(s.Placement.Decisions))
	for _, d := range s.Placement.Decisions {
		obj := s.Objects[d.Index].Stamped(s.StampOf(d)).Object
		objects[d.Index] = obj
		if d.Object.Kind == "Namespace" && d.Object.Group == "" {
			namespaces[d.Object.Name] = obj
		}
	}
	var out []ClusterVerdict
	for _, d := range s.Placement.Decisions {
		obj := objects[d.Index]
		u := unstructured.Unstructured{Object: obj}
		for _, c := range d.Clusters {
			in := policy.Input{
				Operation: "CREATE", Object: obj, Namespace: namespaces[d.Object.Namespace],
				Kind: u.GroupVersionKind(), Resource: policy.GuessResource(u.GroupVersionKind()),
				Name: d.Object.Name, NamespaceName: d.Object.Namespace, Tier: tiers[c],
			}
			for _, v := range set.Evaluate(ctx, in) {
				out = append(out, ClusterVerdict{Cluster: c, Tier: tiers[c], Object: d.Object, Verdict: v})
			}
		}
	}
	return out, nil
}

// PoliciesDir is where the config repository keeps its policies.
const PoliciesDir = "policies"

// LoadPolicies loads policies/ from a snapshot; nil when there is none.
func LoadPolicies(snap *source.Snapshot) (*policy.Set, error) {
	fsys := snap.DirFS()
	if _, err := fs.Stat(fsys, PoliciesDir); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	set, err := policy.Load(fsys, PoliciesDir)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", snap.RevisionLabel(), err)
	}
	return set, nil
}
