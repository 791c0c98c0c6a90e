package render_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
)

// model is a generated config repository: apps in groups under one
// environment, a base shared by several apps, two components, and
// environment-level transformers, some of which act across objects. Its
// files are regenerated from it after every change.
type model struct {
	rnd    *rand.Rand
	next   int
	apps   map[string]*app
	groups [][]string // app names per group, in order
	// group-level labels per group
	groupLabel []bool
	shared     int // version of the shared base's content
	comp       [2]int
	// environment level
	envFile, envLabels, envAnn, envImages, envNamespace, envPatch bool
	envReplicas                                                   []string
	prefix, generator, replacement                                bool
	strataVersion                                                 int
}

type app struct {
	name, ns  string
	version   int
	replicas  int
	extra     int  // extra ConfigMaps in their own file
	shared    bool // includes the shared base
	component bool // includes component 0
	rbTo      string
	gen       bool // a configMapGenerator referenced by the Deployment
}

func newModel(rnd *rand.Rand) *model {
	m := &model{rnd: rnd, apps: map[string]*app{}, groups: make([][]string, 3), groupLabel: make([]bool, 3)}
	for range 7 {
		m.addApp()
	}
	m.envLabels, m.envImages = true, true
	return m
}

func (m *model) addApp() {
	m.next++
	a := &app{name: fmt.Sprintf("app%02d", m.next), version: 1, replicas: 1 + m.rnd.IntN(3)}
	a.ns = "ns-" + a.name
	a.shared = m.rnd.IntN(3) == 0
	m.apps[a.name] = a
	g := m.rnd.IntN(len(m.groups))
	m.groups[g] = append(m.groups[g], a.name)
}

func (m *model) names() []string {
	var out []string
	for _, g := range m.groups {
		out = append(out, g...)
	}
	slices.Sort(out)
	return out
}

func (m *model) pick() *app {
	n := m.names()
	if len(n) == 0 {
		return nil
	}
	return m.apps[n[m.rnd.IntN(len(n))]]
}

// mutate applies one random change and says what it was; windows are the
// components open for the next render.
func (m *model) mutate(windows *[]string) string {
	if m.rnd.IntN(2) == 0 {
		// Cross-object features and errors come and go, so that most steps
		// render in units and reuse the cache.
		m.prefix, m.generator, m.replacement, m.envNamespace = false, false, false, false
		m.envReplicas = slices.DeleteFunc(m.envReplicas, func(s string) bool { return s == "no-such-app" })
		for _, a := range m.apps {
			a.rbTo, a.gen = "", false
		}
		*windows = slices.DeleteFunc(slices.Clone(*windows), func(s string) bool { return s == "components/c1" })
	}
	a := m.pick()
	switch op := m.rnd.IntN(20); {
	case op < 4 && a != nil:
		a.version++
		return "edit " + a.name
	case op < 6:
		m.addApp()
		return "add an app"
	case op < 7 && a != nil:
		a.extra++
		return "add a file to " + a.name
	case op < 8 && a != nil && len(m.names()) > 3:
		for i, g := range m.groups {
			m.groups[i] = slices.DeleteFunc(g, func(s string) bool { return s == a.name })
		}
		delete(m.apps, a.name)
		return "delete " + a.name
	case op < 10 && a != nil:
		for i, g := range m.groups {
			m.groups[i] = slices.DeleteFunc(g, func(s string) bool { return s == a.name })
		}
		g := m.rnd.IntN(len(m.groups))
		m.groups[g] = append(m.groups[g], a.name)
		return fmt.Sprintf("move %s to group %d", a.name, g)
	case op < 11:
		m.shared++
		return "change the shared base"
	case op < 12 && a != nil:
		a.shared = !a.shared
		return "toggle the shared base in " + a.name
	case op < 13:
		m.comp[m.rnd.IntN(2)]++
		return "change a component"
	case op < 14:
		all := [][]string{nil, {"components/c0"}, nil, {"components/c0"}, {"components/c1"}, {"components/c0", "components/c1"}}
		*windows = all[m.rnd.IntN(len(all))]
		return fmt.Sprintf("windows %v", *windows)
	case op < 15 && a != nil:
		a.component = !a.component
		return "toggle component in " + a.name
	case op < 16:
		// Cross-object features, rarely on at the same time.
		switch m.rnd.IntN(5) {
		case 0:
			m.prefix = !m.prefix
			return "toggle namePrefix"
		case 1:
			m.generator = !m.generator
			return "toggle a generator"
		case 2:
			m.replacement = !m.replacement
			return "toggle replacements"
		case 3:
			if b := m.pick(); a != nil && b != nil && a.rbTo == "" && b != a {
				a.rbTo = b.name
				if m.rnd.IntN(2) == 0 {
					b.ns = a.ns // where kustomize rewrites the subject's namespace
				}
				return fmt.Sprintf("RoleBinding in %s to the ServiceAccount of %s", a.name, b.name)
			}
			a.rbTo = ""
			return "no RoleBinding in " + a.name
		default:
			a.gen = !a.gen
			return "toggle an app generator in " + a.name
		}
	case op < 17:
		g := m.rnd.IntN(len(m.groups))
		m.groupLabel[g] = !m.groupLabel[g]
		return fmt.Sprintf("toggle group %d labels", g)
	case op < 18:
		switch m.rnd.IntN(6) {
		case 0:
			m.envFile = !m.envFile
		case 1:
			m.envAnn = !m.envAnn
		case 2:
			m.envNamespace = m.rnd.IntN(4) == 0 && !m.envNamespace
		case 3:
			m.envPatch = !m.envPatch
		case 4:
			m.envLabels = !m.envLabels
		default:
			m.envImages = !m.envImages
		}
		return "change the environment's transformers"
	case op < 19:
		m.envReplicas = nil
		for _, n := range m.names() {
			if m.rnd.IntN(3) == 0 {
				m.envReplicas = append(m.envReplicas, n)
			}
		}
		if m.rnd.IntN(6) == 0 {
			m.envReplicas = append(m.envReplicas, "no-such-app") // kustomize refuses it
		}
		return fmt.Sprintf("replicas for %v", m.envReplicas)
	default:
		m.strataVersion++
		return "change strata.yaml"
	}
}

// files renders the model into repository files.
func (m *model) files() map[string]string {
	f := map[string]string{
		"strata.yaml": fmt.Sprintf("apiVersion: strata.dev/v1alpha1\nkind: Config\n# version %d\n", m.strataVersion),
	}
	var env strings.Builder
	env.WriteString("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n")
	for g := range m.groups {
		fmt.Fprintf(&env, "- ../../groups/g%d\n", g)
		if g == 0 && m.envFile {
			env.WriteString("- extra.yaml\n- extra2.yaml\n")
			f["overlays/env/extra.yaml"] = cm("env-extra", "default", "x")
			f["overlays/env/extra2.yaml"] = cm("env-extra2", "default", "y")
		}
		var gk strings.Builder
		gk.WriteString("resources:\n")
		for _, n := range m.groups[g] {
			fmt.Fprintf(&gk, "- ../../apps/%s\n", n)
		}
		if m.groupLabel[g] {
			fmt.Fprintf(&gk, "labels:\n- pairs: {group: g%d}\n", g)
		}
		f[fmt.Sprintf("groups/g%d/kustomization.yaml", g)] = gk.String()
	}
	if m.envLabels {
		env.WriteString("labels:\n- pairs: {env: prod}\n  includeSelectors: true\n")
	}
	if m.envAnn {
		env.WriteString("commonAnnotations: {owner: platform}\n")
	}
	if m.envImages {
		env.WriteString("images:\n- {name: registry.example.com/app, newTag: \"2.0\"}\n")
	}
	if m.envNamespace {
		env.WriteString("namespace: everything\n")
	}
	if m.envPatch {
		env.WriteString("patches:\n- target: {kind: Deployment, labelSelector: tier=web}\n  patch: |-\n    - op: add\n      path: /metadata/annotations/patched\n      value: \"yes\"\n")
	}
	if len(m.envReplicas) > 0 {
		env.WriteString("replicas:\n")
		for _, n := range m.envReplicas {
			fmt.Fprintf(&env, "- {name: %s, count: 5}\n", n)
		}
	}
	if m.prefix {
		env.WriteString("namePrefix: prod-\n")
	}
	if m.generator {
		env.WriteString("configMapGenerator:\n- name: env-settings\n  namespace: default\n  literals: [A=1]\n")
	}
	if m.replacement {
		env.WriteString("replacements:\n- source: {kind: ConfigMap, name: env-extra, fieldPath: data.value}\n  targets:\n  - select: {kind: Deployment}\n    fieldPaths: [metadata.annotations.extra]\n    options: {create: true}\n")
		if !m.envFile {
			env.WriteString("# no source: kustomize refuses it\n")
		}
	}
	f["overlays/env/kustomization.yaml"] = env.String()
	f["bases/shared/kustomization.yaml"] = "resources:\n- sa.yaml\n- config.yaml\n"
	f["bases/shared/sa.yaml"] = "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: shared\n"
	f["bases/shared/config.yaml"] = cm("shared", "", fmt.Sprint(m.shared))
	f["components/c0/kustomization.yaml"] = fmt.Sprintf("apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nlabels:\n- pairs: {window: c0-%d}\npatches:\n- target: {kind: ConfigMap}\n  patch: |-\n    - op: add\n      path: /data/window\n      value: \"c0-%d\"\n", m.comp[0], m.comp[0])
	// c1 adds an object: a window level that is not split.
	f["components/c1/kustomization.yaml"] = "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nresources:\n- extra.yaml\ncommonAnnotations: {window: c1}\n"
	f["components/c1/extra.yaml"] = cm("window-c1", "default", fmt.Sprint(m.comp[1]))
	for _, n := range m.names() {
		m.appFiles(f, m.apps[n])
	}
	return f
}

func (m *model) appFiles(f map[string]string, a *app) {
	dir := "apps/" + a.name + "/"
	var k strings.Builder
	fmt.Fprintf(&k, "namespace: %s\nresources:\n- deploy.yaml\n- svc.yaml\n", a.ns)
	if a.shared {
		k.WriteString("- ../../bases/shared\n")
	}
	k.WriteString("- config.yaml\n")
	for i := range a.extra {
		fmt.Fprintf(&k, "- extra%d.yaml\n", i)
		f[fmt.Sprintf("%sextra%d.yaml", dir, i)] = cm(fmt.Sprintf("%s-extra%d", a.name, i), "", fmt.Sprint(a.version))
	}
	if a.rbTo != "" {
		k.WriteString("- rb.yaml\n")
		f[dir+"rb.yaml"] = fmt.Sprintf("apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: %s-to-%s\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}\nsubjects:\n- {kind: ServiceAccount, name: %s-sa, namespace: original}\n", a.name, a.rbTo, a.rbTo)
	}
	if a.component {
		k.WriteString("components:\n- ../../components/c0\n")
	}
	if a.gen {
		fmt.Fprintf(&k, "configMapGenerator:\n- name: %s-gen\n  literals: [V=%d]\n", a.name, a.version)
	}
	f[dir+"kustomization.yaml"] = k.String()
	envFrom := a.name + "-config"
	if a.gen {
		envFrom = a.name + "-gen"
	}
	f[dir+"deploy.yaml"] = fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: %[1]s
  labels: {tier: web}
spec:
  replicas: %[2]d
  selector: {matchLabels: {app: %[1]s}}
  template:
    metadata: {labels: {app: %[1]s}}
    spec:
      serviceAccountName: %[1]s-sa
      containers:
      - name: app
        image: registry.example.com/app:1.%[3]d
        envFrom: [{configMapRef: {name: %[4]s}}]
`, a.name, a.replicas, a.version, envFrom)
	f[dir+"svc.yaml"] = fmt.Sprintf("apiVersion: v1\nkind: Service\nmetadata:\n  name: %[1]s\nspec:\n  selector: {app: %[1]s}\n  ports: [{port: 80}]\n---\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: %[1]s-sa\n  namespace: original\n", a.name)
	f[dir+"config.yaml"] = cm(a.name+"-config", "", fmt.Sprint(a.version))
}

func cm(name, ns, value string) string {
	meta := "  name: " + name + "\n"
	if ns != "" {
		meta += "  namespace: " + ns + "\n"
	}
	return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n" + meta + "data:\n  value: \"" + value + "\"\n"
}
