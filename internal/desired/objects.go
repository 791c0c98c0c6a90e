package desired

import (
	"sigs.k8s.io/kustomize/api/resource"

	"github.com/strata-gitops/strata/internal/placement"
)

// Objects describes rendered resources for placement, as Build does. Scope
// comes from kustomize's built-in schema and from CustomResourceDefinitions
// in the same render; an unknown kind is namespaced, as the apiserver would
// default it. A resource that cannot be converted is described by its
// identity alone.
func Objects(res []*resource.Resource) []placement.Object {
	objs := make([]*Object, len(res))
	for i, r := range res {
		v, _, err := convert([]*resource.Resource{r})
		if err != nil {
			gvk := r.GetGvk()
			objs[i] = &Object{place: placement.Object{Group: gvk.Group, Kind: gvk.Kind, Namespace: r.GetNamespace(), Name: r.GetName()}}
			continue
		}
		objs[i] = v.([]*Object)[0]
	}
	return placeObjects(objs)
}
