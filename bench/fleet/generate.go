package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/strata-gitops/strata/bench/internal/configrepo"
	"github.com/strata-gitops/strata/internal/labels"
)

// fleetEnv is the environment of the generated config repository.
const fleetEnv = "fleet"

// tiers deal the clusters round-robin over the three tiers; each cluster's
// Namespace carries the sensitivity whose cheapest allowed tier is its own.
var tiers = []struct{ prefix, tier, sensitivity string }{
	{"public", "public-cloud", "public"},
	{"private", "private-cloud", "internal"},
	{"onprem", "on-prem", "restricted"},
}

var tierCost = map[string]int{"public-cloud": 1, "private-cloud": 3, "on-prem": 5}

// Fleet is a config repository of n clusters with the same share each:
// one Namespace pinned to its cluster (strata.dev/clusters), filled with
// Deployment + Service + ConfigMap triples, topped up with ConfigMaps.
type Fleet struct {
	Clusters   []configrepo.Cluster
	PerCluster int // objects per cluster, its Namespace included
	Apps       int // Deployments per cluster
	// Rollouts: the bad change and its revert touch the pod templates, so
	// every Deployment rolls out; otherwise only metadata and ConfigMap
	// data change and no Pod is replaced.
	Rollouts bool
}

// ClusterName is the name of the i-th cluster (0-based): public-01,
// private-02, onprem-03, public-04, …
func ClusterName(i int) string {
	return fmt.Sprintf("%s-%02d", tiers[i%len(tiers)].prefix, i+1)
}

// NewFleet lays out n clusters of perCluster objects each.
func NewFleet(n, perCluster int, rollouts bool) (*Fleet, error) {
	if n < 1 || n > 99 {
		return nil, fmt.Errorf("%d clusters: use 1 to 99 (each local cluster is a real control plane of ~600 MiB)", n)
	}
	if perCluster < 4 {
		return nil, fmt.Errorf("-objects %d per cluster is too small: use at least 4 (a Namespace and one app of 3 objects)", perCluster)
	}
	if perCluster > 400 {
		return nil, fmt.Errorf("-objects %d per cluster puts more Services and Pods into one local cluster than its service CIDR and fake node comfortably hold; use at most 400", perCluster)
	}
	f := &Fleet{PerCluster: perCluster, Apps: (perCluster - 1) / 3, Rollouts: rollouts}
	for i := range n {
		t := tiers[i%len(tiers)]
		f.Clusters = append(f.Clusters, configrepo.Cluster{Name: ClusterName(i), Tier: t.tier, Cost: tierCost[t.tier]})
	}
	return f, nil
}

// Names are the clusters' names in strata.yaml order.
func (f *Fleet) Names() []string {
	out := make([]string, len(f.Clusters))
	for i, c := range f.Clusters {
		out[i] = c.Name
	}
	return out
}

// Objects is the number of objects of the environment.
func (f *Fleet) Objects() int { return len(f.Clusters) * f.PerCluster }

// Describe summarizes the layout.
func (f *Fleet) Describe() string {
	extra := f.PerCluster - 1 - 3*f.Apps
	s := fmt.Sprintf("%d objects per cluster (1 Namespace, %d Deployments of 1 replica, %d Services, %d ConfigMaps)",
		f.PerCluster, f.Apps, f.Apps, f.Apps+extra)
	if !f.Rollouts {
		s += "; the change leaves pod templates alone (no rollouts)"
	}
	return s
}

// Variant is the content of every object: the good state and the bad
// change that is reverted.
type Variant struct {
	Name, LogLevel string
}

var (
	good = Variant{Name: "good", LogLevel: "info"}
	bad  = Variant{Name: "bad", LogLevel: "debug"}
)

// logLevelKey is the annotation every object carries with its variant's
// log level, so that a change of variant touches every object.
const logLevelKey = "example.com/log-level"

// Write writes the config repository in variant v into dir, replacing
// strata.yaml and overlays/.
func (f *Fleet) Write(dir string, v Variant) error {
	if err := os.RemoveAll(filepath.Join(dir, "overlays")); err != nil {
		return err
	}
	files := map[string]string{"strata.yaml": configrepo.StrataYAML(configrepo.Config{
		Generator: "bench/fleet", Env: fleetEnv, Clusters: f.Clusters, Rollout: "  healthTimeout: 3m\n"})}
	var top strings.Builder
	top.WriteString("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n")
	for i, c := range f.Clusters {
		ns := "fleet-" + c.Name
		fmt.Fprintf(&top, "  - %s\n", c.Name)
		d := "overlays/" + fleetEnv + "/" + c.Name + "/"
		// The annotation pins every object (and so its Namespace) to this
		// one cluster among the clusters of its tier.
		files[d+"kustomization.yaml"] = fmt.Sprintf(`apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: %s
commonAnnotations:
  %s: %s
resources:
  - namespace.yaml
  - apps.yaml
`, ns, labels.Clusters, c.Name)
		files[d+"namespace.yaml"] = fmt.Sprintf("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n  labels:\n    %s: %s\n  annotations:\n    %s: %s\n",
			ns, labels.Sensitivity, tiers[i%len(tiers)].sensitivity, logLevelKey, v.LogLevel)
		var apps strings.Builder
		for a := range f.Apps {
			name := fmt.Sprintf("svc-%03d", a)
			f.writeConfigMap(&apps, name+"-config", name, v)
			f.writeDeployment(&apps, name, v)
			writeService(&apps, name, v)
		}
		for x := range f.PerCluster - 1 - 3*f.Apps {
			f.writeConfigMap(&apps, fmt.Sprintf("extra-%02d-config", x), "extra", v)
		}
		files[d+"apps.yaml"] = apps.String()
	}
	files["overlays/"+fleetEnv+"/kustomization.yaml"] = top.String()
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

func meta(b *strings.Builder, name, app, component string, v Variant) {
	fmt.Fprintf(b, "metadata:\n  name: %s\n  labels:\n    app.kubernetes.io/name: %s\n    app.kubernetes.io/component: %s\n  annotations:\n    %s: %s\n",
		name, app, component, logLevelKey, v.LogLevel)
}

func (f *Fleet) writeConfigMap(b *strings.Builder, name, app string, v Variant) {
	b.WriteString("---\napiVersion: v1\nkind: ConfigMap\n")
	meta(b, name, app, "config", v)
	fmt.Fprintf(b, "data:\n  LOG_LEVEL: %s\n  HTTP_PORT: \"8080\"\n  FEATURE_FLAGS: \"alpha=false,beta=true\"\n", v.LogLevel)
}

// writeDeployment writes a Deployment; with Rollouts its pod template
// carries the log level, so that a change of variant rolls out new Pods.
func (f *Fleet) writeDeployment(b *strings.Builder, name string, v Variant) {
	b.WriteString("---\napiVersion: apps/v1\nkind: Deployment\n")
	meta(b, name, name, "server", v)
	level := good.LogLevel
	if f.Rollouts {
		level = v.LogLevel
	}
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
          image: registry.example.com/fleet/server:1.4.2
          env:
            - {name: LOG_LEVEL, value: %s}
          envFrom:
            - configMapRef: {name: %s-config}
          ports:
            - {name: http, containerPort: 8080}
          resources:
            requests: {cpu: 10m, memory: 16Mi}
`, name, name, level, name)
}

func writeService(b *strings.Builder, name string, v Variant) {
	b.WriteString("---\napiVersion: v1\nkind: Service\n")
	meta(b, name, name, "server", v)
	fmt.Fprintf(b, "spec:\n  selector:\n    app.kubernetes.io/name: %s\n  ports:\n    - {name: http, port: 8080, targetPort: http}\n", name)
}
