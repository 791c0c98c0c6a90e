package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// The three GitOps scenarios' repositories: their first commit and their
// changes. Every workload passes the policies of policies/ (limits, non-root,
// read-only root file system), so strata's offline policy check passes them
// as it does the demo.

// deployment is a compliant Deployment with replicas, reading ConfigMap
// <name>-config, whose pod template carries release (a change to it rolls
// the Deployment out).
func deployment(ns, name, sensitivity string, replicas int, release string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: %[2]s
  namespace: %[1]s
  labels: {app.kubernetes.io/name: %[2]s, strata.dev/sensitivity: %[3]s}
spec:
  replicas: %[4]d
  selector:
    matchLabels: {app.kubernetes.io/name: %[2]s}
  template:
    metadata:
      labels: {app.kubernetes.io/name: %[2]s, strata.dev/sensitivity: %[3]s}
      annotations: {example.com/release: "%[5]s"}
    spec:
      automountServiceAccountToken: false
      securityContext: {runAsNonRoot: true, runAsUser: 10001, seccompProfile: {type: RuntimeDefault}}
      containers:
        - name: app
          image: registry.onprem.example.internal/bench/%[2]s:1.0.0
          envFrom: [{configMapRef: {name: %[2]s-config}}]
          resources:
            requests: {cpu: 10m, memory: 16Mi}
            limits: {cpu: 100m, memory: 64Mi}
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities: {drop: [ALL]}
`, ns, name, sensitivity, replicas, release)
}

func configMap(ns, name, sensitivity string, data map[string]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\n  namespace: %s\n  labels: {strata.dev/sensitivity: %s}\ndata:\n", name, ns, sensitivity)
	for _, k := range sortedKeys(data) {
		fmt.Fprintf(&b, "  %s: %q\n", k, data[k])
	}
	return b.String()
}

func namespace(name, sensitivity string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n  labels: {strata.dev/sensitivity: %s}\n", name, sensitivity)
}

func docs(parts ...string) string { return strings.Join(parts, "---\n") }

// Scenario 1: one cluster, a Deployment and two ConfigMaps. The change edits
// a ConfigMap, rolls the Deployment and adds a ConfigMap, which the revert
// prunes.
const soloEnv, soloCluster = "solo", "onprem"

func soloSeed(c *configRepo) error {
	return c.writeFiles(map[string]string{
		"strata.yaml":                      strataYAML(soloEnv, [][2]string{{soloCluster, "on-prem"}}),
		"overlays/solo/kustomization.yaml": "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [namespace.yaml, app.yaml]\n",
		"overlays/solo/namespace.yaml":     namespace("payments", "internal"),
		"overlays/solo/app.yaml": docs(
			configMap("payments", "payments-config", "internal", map[string]string{"LOG_LEVEL": "info"}),
			configMap("payments", "payments-flags", "internal", map[string]string{"NEW_CHECKOUT": "false"}),
			deployment("payments", "payments", "internal", 2, "1")),
	})
}

func soloChange(c *configRepo) error {
	if err := c.replaceIn("overlays/solo/app.yaml", `LOG_LEVEL: "info"`, `LOG_LEVEL: "debug"`); err != nil {
		return err
	}
	if err := c.replaceIn("overlays/solo/app.yaml", `example.com/release: "1"`, `example.com/release: "2"`); err != nil {
		return err
	}
	if err := c.replaceIn("overlays/solo/kustomization.yaml", "app.yaml]", "app.yaml, feature.yaml]"); err != nil {
		return err
	}
	return c.writeFiles(map[string]string{"overlays/solo/feature.yaml": configMap("payments", "payments-feature", "internal", map[string]string{"ROLL_OUT": "10%"})})
}

// Scenario 2: the demo's prod on three clusters. The change touches a
// workload or its configuration in each cluster and adds a ConfigMap to each.
var prodClusters = []string{"public", "private", "onprem"}

const prodPatch = `
# bench/peers: one change in every cluster.
patches:
  - target: {kind: ConfigMap, name: model-training-hyperparameters}
    patch: |-
      - {op: replace, path: /data/LEARNING_RATE, value: "0.04"}
  - target: {kind: Deployment, name: fraud-scoring}
    patch: |-
      - {op: add, path: /spec/template/metadata/annotations, value: {example.com/release: "bench"}}
  - target: {kind: Deployment, name: ledger}
    patch: |-
      - {op: add, path: /spec/template/metadata/annotations, value: {example.com/release: "bench"}}
`

func prodChange(c *configRepo) error {
	if err := c.replaceIn("overlays/prod/kustomization.yaml", "  - ../base\n", "  - ../base\n  - bench-extra.yaml\n"); err != nil {
		return err
	}
	if err := c.writeFiles(map[string]string{"overlays/prod/bench-extra.yaml": docs(
		configMap("ml-training", "bench-extra", "public", map[string]string{"A": "1"}),
		configMap("fraud", "bench-extra", "confidential", map[string]string{"A": "1"}),
		configMap("ledger", "bench-extra", "restricted", map[string]string{"A": "1"}))}); err != nil {
		return err
	}
	return appendTo(c, "overlays/prod/kustomization.yaml", prodPatch)
}

// Scenario 3: scale. The seed has only the Namespaces; the first apply adds
// the objects (Deployments and ConfigMaps), spread evenly over the three
// clusters.
const scaleEnv = "scale"

var scaleSensitivities = []string{"public", "confidential", "restricted"} // → public, private, onprem

func scaleNamespaces() []string {
	var out []string
	for i := 0; i < 12; i++ {
		out = append(out, fmt.Sprintf("scale-%02d", i))
	}
	return out
}

func scaleSeed(c *configRepo) error {
	files := map[string]string{
		"strata.yaml": strataYAML(scaleEnv, [][2]string{{"public", "public-cloud"}, {"private", "private-cloud"}, {"onprem", "on-prem"}}),
	}
	var ns []string
	for i, n := range scaleNamespaces() {
		files["overlays/scale/"+n+".yaml"] = namespace(n, scaleSensitivities[i%3])
		ns = append(ns, n+".yaml")
	}
	files["overlays/scale/kustomization.yaml"] = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [" + strings.Join(ns, ", ") + "]\n"
	return c.writeFiles(files)
}

// scaleObjects writes objects (Namespaces included) into the overlay:
// deployments Deployments, each with its ConfigMap, and the rest plain
// ConfigMaps. touch is the data of app-0000-config alone, so that changing
// it changes exactly one object.
func scaleObjects(c *configRepo, objects, deployments int, touch string) error {
	nss := scaleNamespaces()
	per := make([][]string, len(nss))
	for d := 0; d < deployments; d++ {
		k := d % len(nss)
		sens := scaleSensitivities[k%3]
		v := "1"
		if d == 0 {
			v = touch
		}
		per[k] = append(per[k], deployment(nss[k], fmt.Sprintf("app-%04d", d), sens, 1, "1"),
			configMap(nss[k], fmt.Sprintf("app-%04d-config", d), sens, map[string]string{"V": v}))
	}
	for i := 0; i < objects-len(nss)-2*deployments; i++ {
		k := i % len(nss)
		per[k] = append(per[k], configMap(nss[k], fmt.Sprintf("cm-%04d", i), scaleSensitivities[k%3], map[string]string{"V": "1"}))
	}
	files := map[string]string{}
	var res []string
	for k, n := range nss {
		res = append(res, n+".yaml", n+"-objects.yaml")
		files["overlays/scale/"+n+"-objects.yaml"] = docs(per[k]...)
	}
	files["overlays/scale/kustomization.yaml"] = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [" + strings.Join(res, ", ") + "]\n"
	return c.writeFiles(files)
}

// appendTo appends text to the work tree file rel.
func appendTo(c *configRepo, rel, text string) error {
	f, err := os.OpenFile(filepath.Join(c.dir, rel), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
