package render

import (
	"fmt"
	"slices"
	"strings"

	"sigs.k8s.io/kustomize/api/resource"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// crossUnit returns why the units' outputs cannot simply be concatenated
// ("" when they can): an object in two units (a full render refuses it, or
// merges it), or a reference that kustomize's final name-reference pass
// could resolve to an object of another unit even though nothing was
// renamed.
//
// With no rename anywhere (the planner makes sure), that pass changes a
// reference only where it copies a namespace: the map-valued references
// of kustomize's nameReference configuration, RoleBinding and
// ClusterRoleBinding subjects (to ServiceAccounts) and the webhooks'
// clientConfig.service of Validating- and MutatingWebhookConfigurations
// (to Services). Such a reference is left alone here only when no other
// unit holds an object of the referenced kind and name, so that the
// candidates kustomize sees in the unit and in the whole environment are
// the same.
func crossUnit(us []*unit, units [][]*resource.Resource) string {
	if r := unmatchedReplicas(us, units); r != "" {
		return r
	}
	seen := map[string]int{}
	// names[kind][name] = the units holding such an object
	names := map[string]map[string][]int{"ServiceAccount": {}, "Service": {}}
	for i, rs := range units {
		for _, r := range rs {
			// kustomize takes no namespace for "default", and a full render
			// refuses (or merges) two objects of one group, kind, namespace
			// and name whatever their versions.
			gvk := r.GetGvk()
			ns := r.GetNamespace()
			if ns == "" {
				ns = "default"
			}
			id := gvk.Group + "/" + gvk.Kind + "/" + ns + "/" + r.GetName()
			if j, ok := seen[id]; ok && j != i {
				return fmt.Sprintf("%s %s/%s is in two parts of the environment", gvk.Kind, ns, r.GetName())
			}
			seen[id] = i
			if gvk.Group == "" && names[gvk.Kind] != nil {
				names[gvk.Kind][r.GetName()] = append(names[gvk.Kind][r.GetName()], i)
			}
		}
	}
	for i, rs := range units {
		for _, r := range rs {
			for _, ref := range mapReferences(r) {
				for _, j := range names[ref.kind][ref.name] {
					if j != i {
						return fmt.Sprintf("%s %s refers to %s %s of another part of the environment",
							r.GetKind(), r.GetName(), ref.kind, ref.name)
					}
				}
			}
		}
	}
	return ""
}

type reference struct{ kind, name string }

// mapReferences returns the map-valued name references of r.
func mapReferences(r *resource.Resource) []reference {
	gvk := r.GetGvk()
	var out []reference
	switch {
	case gvk.Group == "rbac.authorization.k8s.io" && (gvk.Kind == "RoleBinding" || gvk.Kind == "ClusterRoleBinding"):
		subjects, err := r.Pipe(yaml.Lookup("subjects"))
		if err != nil || subjects == nil {
			return nil
		}
		_ = subjects.VisitElements(func(s *yaml.RNode) error {
			if n := s.Field("name"); n != nil {
				out = append(out, reference{"ServiceAccount", yaml.GetValue(n.Value)})
			}
			return nil
		})
	case gvk.Group == "admissionregistration.k8s.io" &&
		(gvk.Kind == "ValidatingWebhookConfiguration" || gvk.Kind == "MutatingWebhookConfiguration"):
		hooks, err := r.Pipe(yaml.Lookup("webhooks"))
		if err != nil || hooks == nil {
			return nil
		}
		_ = hooks.VisitElements(func(h *yaml.RNode) error {
			if n, err := h.Pipe(yaml.Lookup("clientConfig", "service", "name")); err == nil && n != nil {
				out = append(out, reference{"Service", yaml.GetValue(n)})
			}
			return nil
		})
	}
	return out
}

// unmatchedReplicas names a replicas entry (turned into a patch for the
// units) that matched no object in any unit: kustomize refuses it.
func unmatchedReplicas(us []*unit, units [][]*resource.Resource) string {
	matched := map[string]bool{}
	for i, u := range us {
		for _, rep := range u.replicas {
			if matched[rep] {
				continue
			}
			matched[rep] = false
			_, name, _ := strings.Cut(rep, "\x00")
			for _, r := range units[i] {
				if r.GetName() == name && slices.Contains(strings.Split(replicaKinds, "|"), r.GetKind()) {
					matched[rep] = true
					break
				}
			}
		}
	}
	for rep, ok := range matched {
		if !ok {
			file, name, _ := strings.Cut(rep, "\x00")
			return fmt.Sprintf("%s: replicas of %s match no object", file, name)
		}
	}
	return ""
}
