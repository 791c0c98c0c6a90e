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
func crossUnit(us []*unit, units [][]fact) string {
	if r := unmatchedReplicas(us, units); r != "" {
		return r
	}
	seen := map[string]int{}
	// names[kind][name] = the units holding such an object
	names := map[string]map[string][]int{"ServiceAccount": {}, "Service": {}}
	for i, fs := range units {
		for _, f := range fs {
			// kustomize takes no namespace for "default", and a full render
			// refuses (or merges) two objects of one group, kind, namespace
			// and name whatever their versions.
			ns := f.Namespace
			if ns == "" {
				ns = "default"
			}
			id := f.Group + "/" + f.Kind + "/" + ns + "/" + f.Name
			if j, ok := seen[id]; ok && j != i {
				return fmt.Sprintf("%s %s/%s is in two parts of the environment", f.Kind, ns, f.Name)
			}
			seen[id] = i
			if f.Group == "" && names[f.Kind] != nil {
				names[f.Kind][f.Name] = append(names[f.Kind][f.Name], i)
			}
		}
	}
	for i, fs := range units {
		for _, f := range fs {
			for _, ref := range f.Refs {
				for _, j := range names[ref.Kind][ref.Name] {
					if j != i {
						return fmt.Sprintf("%s %s refers to %s %s of another part of the environment",
							f.Kind, f.Name, ref.Kind, ref.Name)
					}
				}
			}
		}
	}
	return ""
}

// fact is what the checks across units read of one rendered object; a
// unit's facts are kept with its cached output, so that a unit taken from
// the cache is checked without decoding it.
type fact struct {
	Group     string      `json:"g,omitempty"`
	Kind      string      `json:"k"`
	Namespace string      `json:"ns,omitempty"`
	Name      string      `json:"n"`
	Refs      []reference `json:"refs,omitempty"`
}

// factsOf returns the facts of a unit's objects.
func factsOf(res []*resource.Resource) []fact {
	out := make([]fact, len(res))
	for i, r := range res {
		gvk := r.GetGvk()
		out[i] = fact{Group: gvk.Group, Kind: gvk.Kind, Namespace: r.GetNamespace(), Name: r.GetName(), Refs: mapReferences(r)}
	}
	return out
}

type reference struct {
	Kind string `json:"k"`
	Name string `json:"n"`
}

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
func unmatchedReplicas(us []*unit, units [][]fact) string {
	matched := map[string]bool{}
	for i, u := range us {
		for _, rep := range u.replicas {
			if matched[rep] {
				continue
			}
			matched[rep] = false
			_, name, _ := strings.Cut(rep, "\x00")
			for _, f := range units[i] {
				if f.Name == name && slices.Contains(strings.Split(replicaKinds, "|"), f.Kind) {
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
