package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/strata-gitops/strata/bench/internal/configrepo"
)

// benchEnv is the environment of the generated config repository.
const benchEnv = "bench"

// clusterNames are the clusters of the bench environment, in strata.yaml order.
var clusterNames = []string{"public", "private", "onprem"}

// namespaces of the overlay, one per sensitivity; placement sends each to
// the cheapest allowed tier: public → public, internal and confidential →
// private, restricted → onprem.
var namespaces = []struct{ name, sensitivity, cluster string }{
	{"ttr-public", "public", "public"},
	{"ttr-internal", "internal", "private"},
	{"ttr-confidential", "confidential", "private"},
	{"ttr-restricted", "restricted", "onprem"},
}

// nsCycle deals apps to namespaces so that every cluster gets about a
// third: public, internal, restricted, public, confidential, restricted.
var nsCycle = []int{0, 1, 3, 0, 2, 3}

// Variant is the content of every object: the good state and the bad
// change that is reverted.
type Variant struct {
	Name     string
	LogLevel string
}

var (
	good = Variant{Name: "good", LogLevel: "info"}
	bad  = Variant{Name: "bad", LogLevel: "debug"}
)

// logLevelKey is the annotation every object carries with its variant's
// log level, so that a change of variant touches every object.
const logLevelKey = "example.com/log-level"

// Layout is what the generator writes and what placement should do with it.
type Layout struct {
	Objects int
	Apps    int
	// Kinds counts the objects by kind.
	Kinds map[string]int
	// Expected counts the objects each cluster receives.
	Expected map[string]int
	// Deployments counts the Deployments each cluster receives.
	Deployments map[string]int
}

type app struct {
	name string
	ns   int
}

// NewLayout spreads objects (Namespaces included) over the four Namespaces:
// Deployment + Service + ConfigMap triples, topped up with ConfigMaps.
func NewLayout(objects int) (*Layout, error) {
	min := len(namespaces) + 3*len(nsCycle)
	if objects < min {
		return nil, fmt.Errorf("-objects %d is too small: use at least %d (4 Namespaces and 6 apps of 3 objects)", objects, min)
	}
	l := &Layout{Objects: objects, Kinds: map[string]int{}, Expected: map[string]int{}, Deployments: map[string]int{}}
	l.Apps = (objects - len(namespaces)) / 3
	extra := (objects - len(namespaces)) % 3
	l.Kinds["Namespace"] = len(namespaces)
	for _, ns := range namespaces {
		l.Expected[ns.cluster]++
	}
	for _, a := range l.apps() {
		c := namespaces[a.ns].cluster
		l.Kinds["Deployment"]++
		l.Kinds["Service"]++
		l.Kinds["ConfigMap"]++
		l.Expected[c] += 3
		l.Deployments[c]++
	}
	for i := 0; i < extra; i++ {
		l.Kinds["ConfigMap"]++
		l.Expected[namespaces[i].cluster]++
	}
	if l.Services() > 150 {
		return nil, fmt.Errorf("-objects %d puts %d Services (and twice as many Pods during a rollout) into one cluster, more than the local clusters' service CIDR and fake node comfortably hold; use at most ~1300", objects, l.Services())
	}
	return l, nil
}

func (l *Layout) apps() []app {
	out := make([]app, l.Apps)
	for i := range out {
		out[i] = app{name: fmt.Sprintf("svc-%03d", i), ns: nsCycle[i%len(nsCycle)]}
	}
	return out
}

// Services is the largest number of Services one cluster receives.
func (l *Layout) Services() int {
	return max(l.Deployments["public"], l.Deployments["private"], l.Deployments["onprem"])
}

// Describe summarizes the layout.
func (l *Layout) Describe() string {
	return fmt.Sprintf("%d objects: %d Namespaces (public, internal, confidential, restricted), %d Deployments (1 replica), %d Services, %d ConfigMaps",
		l.Objects, l.Kinds["Namespace"], l.Kinds["Deployment"], l.Kinds["Service"], l.Kinds["ConfigMap"])
}

// PerCluster is "public 34, private 35, onprem 31".
func (l *Layout) PerCluster() string {
	var parts []string
	for _, c := range clusterNames {
		parts = append(parts, fmt.Sprintf("%s %d (%d Deployments)", c, l.Expected[c], l.Deployments[c]))
	}
	return strings.Join(parts, ", ")
}

// Write writes the config repository in variant v into dir, replacing the
// generated files (strata.yaml and overlays/).
func (l *Layout) Write(dir string, v Variant) error {
	if err := os.RemoveAll(filepath.Join(dir, "overlays")); err != nil {
		return err
	}
	files := map[string]string{"strata.yaml": strataYAML}
	var top strings.Builder
	top.WriteString("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n")
	cms := make([]strings.Builder, len(namespaces))
	deps := make([]strings.Builder, len(namespaces))
	svcs := make([]strings.Builder, len(namespaces))
	for _, a := range l.apps() {
		ns := namespaces[a.ns].name
		writeConfigMap(&cms[a.ns], a.name+"-config", ns, v)
		writeDeployment(&deps[a.ns], a.name, v)
		writeService(&svcs[a.ns], a.name, v)
	}
	for i := 0; i < l.Kinds["ConfigMap"]-l.Apps; i++ {
		writeConfigMap(&cms[i], fmt.Sprintf("extra-%02d-config", i), namespaces[i].name, v)
	}
	for i, ns := range namespaces {
		fmt.Fprintf(&top, "  - %s\n", ns.name)
		d := "overlays/" + benchEnv + "/" + ns.name + "/"
		files[d+"kustomization.yaml"] = fmt.Sprintf(`apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: %s
resources:
  - namespace.yaml
  - configmaps.yaml
  - deployments.yaml
  - services.yaml
`, ns.name)
		files[d+"namespace.yaml"] = fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata:
  name: %s
  labels:
    strata.dev/sensitivity: %s
  annotations:
    %s: %s
`, ns.name, ns.sensitivity, logLevelKey, v.LogLevel)
		files[d+"configmaps.yaml"] = cms[i].String()
		files[d+"deployments.yaml"] = deps[i].String()
		files[d+"services.yaml"] = svcs[i].String()
	}
	files["overlays/"+benchEnv+"/kustomization.yaml"] = top.String()
	for rel, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func meta(b *strings.Builder, name, component string, v Variant) {
	fmt.Fprintf(b, "metadata:\n  name: %s\n  labels:\n    app.kubernetes.io/name: %s\n    app.kubernetes.io/component: %s\n  annotations:\n    %s: %s\n",
		name, strings.TrimSuffix(name, "-config"), component, logLevelKey, v.LogLevel)
}

func writeConfigMap(b *strings.Builder, name, ns string, v Variant) {
	b.WriteString("---\napiVersion: v1\nkind: ConfigMap\n")
	meta(b, name, "config", v)
	fmt.Fprintf(b, `data:
  LOG_LEVEL: %s
  HTTP_PORT: "8080"
  UPSTREAM_URL: http://%s-upstream.%s.svc:8080
  FEATURE_FLAGS: "alpha=false,beta=true"
`, v.LogLevel, strings.TrimSuffix(name, "-config"), ns)
}

// writeDeployment writes a Deployment whose pod template carries the log
// level, so that a change of variant rolls out new Pods.
func writeDeployment(b *strings.Builder, name string, v Variant) {
	b.WriteString("---\napiVersion: apps/v1\nkind: Deployment\n")
	meta(b, name, "server", v)
	fmt.Fprintf(b, `spec:
  replicas: 1
  revisionHistoryLimit: 2
  selector:
    matchLabels:
      app.kubernetes.io/name: %s
  template:
    metadata:
      labels:
        app.kubernetes.io/name: %s
    spec:
      automountServiceAccountToken: false
      containers:
        - name: app
          image: registry.example.com/ttr/server:1.4.2
          env:
            - {name: LOG_LEVEL, value: %s}
          envFrom:
            - configMapRef: {name: %s-config}
          ports:
            - {name: http, containerPort: 8080}
          resources:
            requests: {cpu: 10m, memory: 16Mi}
`, name, name, v.LogLevel, name)
}

func writeService(b *strings.Builder, name string, v Variant) {
	b.WriteString("---\napiVersion: v1\nkind: Service\n")
	meta(b, name, "server", v)
	fmt.Fprintf(b, `spec:
  selector:
    app.kubernetes.io/name: %s
  ports:
    - {name: http, port: 8080, targetPort: http}
`, name)
}

// strataYAML has no approvals and no .strata/trust.yaml next to it: the
// benchmark measures delivery, not the approval gate.
var strataYAML = configrepo.StrataYAML(configrepo.Config{Generator: "bench/ttr", Env: benchEnv, Clusters: configrepo.ThreeClusters,
	Rollout: "  healthTimeout: 3m\n"})
