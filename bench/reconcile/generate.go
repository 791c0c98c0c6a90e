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

// sensitivities in order, lowest first (the values of strata.dev/sensitivity).
var sensitivities = []string{"public", "internal", "confidential", "restricted"}

// clusterOf is where placement puts each sensitivity when every cluster is
// up (the cheapest allowed tier of strataYAML).
var clusterOf = map[string]string{
	"public": "public", "internal": "private", "confidential": "private", "restricted": "onprem",
}

// clusterNames are the clusters of the bench environment, in strata.yaml order.
var clusterNames = []string{"public", "private", "onprem"}

// numImages is the number of distinct container images; the overlay
// overrides every one of them.
const numImages = 6

// Spec describes the generated config repository.
type Spec struct {
	// Objects is the total number of rendered objects, Namespaces included.
	Objects int
	// Namespaces is the number of Namespaces (one directory each).
	Namespaces int
	// Apps caps the Deployments (each with a Service and a ConfigMap); the
	// rest of Objects are more ConfigMaps. 0: as many apps as fit.
	Apps int
}

// Repo is a generated and committed config repository.
type Repo struct {
	Dir string
	// Kinds counts the generated objects by kind.
	Kinds map[string]int
	// Own counts objects carrying their own sensitivity label above the floor.
	Own int
	// Expected counts the objects placement should send to each cluster
	// (a Namespace counts once in every cluster that receives it).
	Expected map[string]int
	// Deployments counts the Deployments (= Pods) each cluster receives.
	Deployments map[string]int
	Files       int
	Bytes       int64
}

// Total is the number of objects the overlay renders to.
func (r *Repo) Total() int {
	n := 0
	for _, v := range r.Kinds {
		n += v
	}
	return n
}

// Describe summarizes the repository in one line.
func (r *Repo) Describe() string {
	return fmt.Sprintf("%d objects (%d Namespaces, %d Deployments with 1 replica each, %d Services, %d ConfigMaps; %d with their own sensitivity one step above the Namespace floor) in %d files, %.1f MiB",
		r.Total(), r.Kinds["Namespace"], r.Kinds["Deployment"], r.Kinds["Service"], r.Kinds["ConfigMap"], r.Own,
		r.Files, float64(r.Bytes)/(1<<20))
}

// Generate writes the config repository described by spec into dir (which
// must be empty or absent) and commits it with the git CLI.
func Generate(dir string, spec Spec) (*Repo, error) {
	if spec.Namespaces < len(sensitivities) {
		return nil, fmt.Errorf("need at least %d namespaces (one per sensitivity), got %d", len(sensitivities), spec.Namespaces)
	}
	if spec.Objects < 4*spec.Namespaces {
		return nil, fmt.Errorf("-objects %d is too small for %d namespaces: use at least %d", spec.Objects, spec.Namespaces, 4*spec.Namespaces)
	}
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return nil, fmt.Errorf("%s is not empty: pass an empty or new directory", dir)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	g := &generator{repo: &Repo{Dir: abs, Kinds: map[string]int{}, Expected: map[string]int{}, Deployments: map[string]int{}}}
	if err := g.write(spec); err != nil {
		return nil, err
	}
	if err := configrepo.Commit(abs); err != nil {
		return nil, err
	}
	return g.repo, nil
}

type generator struct {
	repo *Repo
	err  error
}

func (g *generator) file(rel, content string) {
	if g.err != nil {
		return
	}
	p := filepath.Join(g.repo.Dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		g.err = err
		return
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		g.err = err
		return
	}
	g.repo.Files++
	g.repo.Bytes += int64(len(content))
}

func nsName(i int) string { return fmt.Sprintf("bench-%02d", i) }

// app is one Deployment + Service + ConfigMap.
type app struct {
	name, ns   string
	floor, own string // own is "" when the app inherits the floor
	image      int
}

// effective is the sensitivity placement should find: the higher of the
// app's own label and the floor (own is only ever set above the floor).
func (ap app) effective() string {
	if ap.own != "" {
		return ap.own
	}
	return ap.floor
}

func (g *generator) write(spec Spec) error {
	rest := spec.Objects - spec.Namespaces
	numApps := rest / 3
	if spec.Apps > 0 && spec.Apps < numApps {
		numApps = spec.Apps
	}
	// Top up with ConfigMaps so that the total is exact.
	extraCMs := rest - 3*numApps

	apps := make([][]app, spec.Namespaces)
	for a := 0; a < numApps; a++ {
		ns := a % spec.Namespaces
		floorRank := ns % len(sensitivities)
		ap := app{
			name:  fmt.Sprintf("app-%04d", a),
			ns:    nsName(ns),
			floor: sensitivities[floorRank],
			image: a % numImages,
		}
		// About one app in seven carries its own label one step above the
		// floor, so that some Namespaces go to two clusters.
		if a%7 == 3 && floorRank < len(sensitivities)-1 {
			ap.own = sensitivities[floorRank+1]
			g.repo.Own += 3
		}
		apps[ns] = append(apps[ns], ap)
	}

	g.file("strata.yaml", strataYAML)
	g.file("README.md", "Generated by bench/reconcile: a synthetic config repository for timing strata reconcile against kubectl apply --server-side.\n")

	var base strings.Builder
	base.WriteString("# One directory per team namespace.\napiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n")
	for ns := 0; ns < spec.Namespaces; ns++ {
		fmt.Fprintf(&base, "  - %s\n", nsName(ns))
	}
	g.file("overlays/base/kustomization.yaml", base.String())

	for ns := 0; ns < spec.Namespaces; ns++ {
		name := nsName(ns)
		floor := sensitivities[ns%len(sensitivities)]
		dir := "overlays/base/" + name + "/"
		g.file(dir+"kustomization.yaml", fmt.Sprintf(`apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: %s
labels:
  - pairs:
      app.kubernetes.io/part-of: %s
resources:
  - namespace.yaml
  - configmaps.yaml
  - deployments.yaml
  - services.yaml
`, name, name))
		g.file(dir+"namespace.yaml", fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata:
  name: %s
  labels:
    strata.dev/sensitivity: %s
    team: %s
`, name, floor, name))
		g.repo.Kinds["Namespace"]++
		nsClusters := map[string]bool{}

		var cms, deps, svcs strings.Builder
		for _, ap := range apps[ns] {
			writeConfigMap(&cms, ap, ap.name+"-config")
			writeDeployment(&deps, ap)
			writeService(&svcs, ap)
			g.repo.Kinds["ConfigMap"]++
			g.repo.Kinds["Deployment"]++
			g.repo.Kinds["Service"]++
			c := clusterOf[ap.effective()]
			g.repo.Expected[c] += 3
			g.repo.Deployments[c]++
			nsClusters[c] = true
		}
		// Spread the top-up ConfigMaps evenly over the namespaces.
		extra := extraCMs / spec.Namespaces
		if ns < extraCMs%spec.Namespaces {
			extra++
		}
		for i := 0; i < extra; i++ {
			ap := app{name: fmt.Sprintf("extra-%02d-%04d", ns, i), ns: name, floor: floor}
			writeConfigMap(&cms, ap, ap.name+"-config")
			g.repo.Kinds["ConfigMap"]++
			c := clusterOf[floor]
			g.repo.Expected[c]++
			nsClusters[c] = true
		}
		for c := range nsClusters {
			g.repo.Expected[c]++
		}
		g.file(dir+"configmaps.yaml", cms.String())
		g.file(dir+"deployments.yaml", deps.String())
		g.file(dir+"services.yaml", svcs.String())
	}

	var ov strings.Builder
	ov.WriteString(`# bench: every object gets the environment's labels (selectors included) and
# promoted image tags.
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../base
labels:
  - pairs:
      app.kubernetes.io/managed-by: platform
      example.com/environment: bench
    includeSelectors: true
commonAnnotations:
  example.com/owner: platform-team
images:
`)
	for i := 0; i < numImages; i++ {
		fmt.Fprintf(&ov, "  - {name: registry.example.com/bench/image-%d, newTag: \"2.%d.1\"}\n", i, i)
	}
	g.file("overlays/"+benchEnv+"/kustomization.yaml", ov.String())
	return g.err
}

func sensitivityLabel(ap app, indent string) string {
	if ap.own == "" {
		return ""
	}
	return indent + "strata.dev/sensitivity: " + ap.own + "\n"
}

func objectMeta(b *strings.Builder, ap app, name, component string) {
	fmt.Fprintf(b, "metadata:\n  name: %s\n  labels:\n    app.kubernetes.io/name: %s\n    app.kubernetes.io/component: %s\n%s",
		name, ap.name, component, sensitivityLabel(ap, "    "))
}

func writeConfigMap(b *strings.Builder, ap app, name string) {
	b.WriteString("---\napiVersion: v1\nkind: ConfigMap\n")
	objectMeta(b, ap, name, "config")
	fmt.Fprintf(b, `data:
  LOG_LEVEL: info
  LOG_FORMAT: json
  HTTP_PORT: "8080"
  METRICS_PORT: "9090"
  UPSTREAM_URL: http://%s-upstream.%s.svc:8080
  CACHE_TTL: 5m
  FEATURE_FLAGS: "alpha=false,beta=true,gamma=false"
  DATA_CLASSIFICATION: %s
`, ap.name, ap.ns, ap.effective())
}

func writeDeployment(b *strings.Builder, ap app) {
	b.WriteString("---\napiVersion: apps/v1\nkind: Deployment\n")
	objectMeta(b, ap, ap.name, "server")
	fmt.Fprintf(b, `spec:
  replicas: 1
  revisionHistoryLimit: 3
  selector:
    matchLabels:
      app.kubernetes.io/name: %s
  template:
    metadata:
      labels:
        app.kubernetes.io/name: %s
        app.kubernetes.io/component: server
%s    spec:
      automountServiceAccountToken: false
      securityContext:
        runAsNonRoot: true
        runAsUser: 10001
      containers:
        - name: app
          image: registry.example.com/bench/image-%d:1.0.0
          args: ["--listen=:8080"]
          ports:
            - name: http
              containerPort: 8080
          envFrom:
            - configMapRef:
                name: %s-config
          resources:
            requests:
              cpu: 10m
              memory: 16Mi
            limits:
              cpu: 100m
              memory: 64Mi
          readinessProbe:
            httpGet: {path: /healthz/ready, port: http}
            periodSeconds: 5
          livenessProbe:
            httpGet: {path: /healthz/live, port: http}
            periodSeconds: 15
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
`, ap.name, ap.name, sensitivityLabel(ap, "        "), ap.image, ap.name)
}

func writeService(b *strings.Builder, ap app) {
	b.WriteString("---\napiVersion: v1\nkind: Service\n")
	objectMeta(b, ap, ap.name, "server")
	fmt.Fprintf(b, `spec:
  selector:
    app.kubernetes.io/name: %s
  ports:
    - name: http
      port: 8080
      targetPort: http
`, ap.name)
}

// strataYAML is the generated repository's strata.yaml.
var strataYAML = configrepo.StrataYAML(configrepo.Config{Generator: "bench/reconcile", Env: benchEnv, Clusters: configrepo.ThreeClusters})
