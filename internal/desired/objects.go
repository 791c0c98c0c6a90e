package desired

import (
	"strings"

	"sigs.k8s.io/kustomize/api/resource"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/strata-gitops/strata/internal/placement"
)

// Objects describes rendered resources for placement. Scope comes from
// kustomize's built-in schema and from CustomResourceDefinitions in the same
// render; an unknown kind is namespaced, as the apiserver would default it.
func Objects(res []*resource.Resource) []placement.Object {
	clusterCRDs := map[string]bool{} // group/kind of cluster-scoped custom resources
	for _, r := range res {
		if isCRD(r) {
			if scope, _ := r.GetString("spec.scope"); scope == "Cluster" {
				clusterCRDs[crdKey(r)] = true
			}
		}
	}
	out := make([]placement.Object, len(res))
	for i, r := range res {
		gvk := r.GetGvk()
		o := placement.Object{
			Group: gvk.Group, Kind: gvk.Kind, Namespace: r.GetNamespace(), Name: r.GetName(),
			Labels: r.GetLabels(), Annotations: r.GetAnnotations(),
			ClusterScoped: gvk.IsClusterScoped() || clusterCRDs[gvk.Group+"/"+gvk.Kind],
		}
		if o.ClusterScoped {
			o.Namespace = ""
			if m, err := r.Map(); err == nil {
				o.ClaimNamespace = placement.ClaimNamespace(gvk.Group, gvk.Kind, m)
			}
		}
		for _, path := range placement.TemplatePaths(gvk.Group, gvk.Kind) {
			var l map[string]string
			if t, err := r.Pipe(yaml.Lookup(path...)); err == nil && t != nil && len(t.GetLabels()) > 0 {
				l = t.GetLabels()
			}
			o.TemplateLabels = append(o.TemplateLabels, l)
		}
		if isCRD(r) {
			o.DefinesGroup, _ = r.GetString("spec.group")
			o.DefinesKind, _ = r.GetString("spec.names.kind")
		}
		out[i] = o
	}
	return out
}

func isCRD(r *resource.Resource) bool {
	gvk := r.GetGvk()
	return gvk.Group == "apiextensions.k8s.io" && gvk.Kind == "CustomResourceDefinition"
}

func crdKey(r *resource.Resource) string {
	g, _ := r.GetString("spec.group")
	k, _ := r.GetString("spec.names.kind")
	return strings.TrimSpace(g) + "/" + strings.TrimSpace(k)
}
