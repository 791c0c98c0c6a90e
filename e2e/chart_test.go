package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/strata-gitops/strata/internal/config"
	"github.com/strata-gitops/strata/internal/image"
	"github.com/strata-gitops/strata/internal/inventory"
	"github.com/strata-gitops/strata/internal/labels"
	"github.com/strata-gitops/strata/internal/localcluster"
)

// TestChartOnThreeClusters installs the Helm chart (charts/strata) into the
// three local clusters and runs what it deploys: helm template renders one
// release per cluster, the test applies every object except the
// Deployments, and runs each Deployment's container from the image that
// internal/image builds, with the rendered command, args, env and volumes
// (pod_test.go). kwok's nodes run no containers, and kwok has no Service
// network, so the only rewrite is the ValidatingWebhookConfiguration's
// clientConfig: from the chart's Service to https://127.0.0.1:<the port the
// Service's targetPort names>, and the webhook certifies 127.0.0.1 as well
// (webhook.extraArgs). Push mode first (one reconciler in onprem driving all
// three clusters through the chart's strata-cluster-<name> Secrets), then
// agent mode (one reconciler per cluster, --self), each with a webhook per
// cluster: the reconcilers must converge through the webhooks, and the
// webhooks must deny a restricted Deployment in the public cloud. Finally,
// charts broken on purpose must fail the same harness.
func TestChartOnThreeClusters(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test on three kwok clusters; skipped with -short")
	}
	if runtime.GOOS != "linux" {
		t.Skip("runs containers in Linux mount namespaces")
	}
	if os.Geteuid() != 0 {
		t.Fatal("runs the chart's containers as a kubelet would (mount namespaces, chroot into the image, runAsUser 65532): run the e2e tests as root, as CI does")
	}
	ctx := context.Background()
	helm := chartHelm(t)
	start := time.Now()
	images := make(chan error, 1)
	var img *containerImage
	imgDir := t.TempDir()
	go func() {
		var err error
		img, err = buildContainerImage(ctx, imgDir)
		images <- err
	}()
	lc := upClusters(t)
	if err := <-images; err != nil {
		t.Fatalf("building the image: %v", err)
	}
	t.Logf("image built and clusters up in %s", time.Since(start).Round(time.Millisecond))

	root, err := filepath.Abs("..")
	must(t, err)
	data, err := os.ReadFile(filepath.Join(root, "strata.yaml"))
	must(t, err)
	cfg, err := config.Parse("strata.yaml", data)
	must(t, err)
	prod, err := cfg.Environment(env)
	must(t, err)

	g := chartGitServer(t)
	nodes, clients := map[string]*node{}, map[string]client.Client{}
	for _, c := range prod.Clusters {
		rc, err := lc.RESTConfig(c.Name)
		must(t, err)
		cs, err := kubernetes.NewForConfig(rc)
		must(t, err)
		nodes[c.Name] = &node{cluster: c.Name, rest: rc, cs: cs, image: img}
		cl, err := client.New(rc, client.Options{})
		must(t, err)
		clients[c.Name] = cl
	}
	base := chartValues(t, root, g.url)

	// values of cluster c's release: its webhook, and in push mode the
	// reconciler of the home cluster with every cluster's kubeconfig.
	values := func(c config.Cluster, mode string) []string {
		v := append([]string{}, base...)
		v = append(v, "--set", "webhook.tier="+string(c.Tier), "--set", "webhook.cluster="+c.Name,
			"--set", "webhook.port="+freePort(t), "--set", "webhook.metrics.port="+freePort(t),
			"--set", "reconciler.metrics.port="+freePort(t))
		switch {
		case mode == "agent":
			v = append(v, "--set", "reconciler.mode=agent", "--set", "reconciler.self="+c.Name)
		case c.Name == pushHome:
			for i, o := range prod.Clusters {
				v = append(v, "--set", fmt.Sprintf("reconciler.clusters[%d].name=%s", i, o.Name),
					"--set-file", fmt.Sprintf("reconciler.clusters[%d].kubeconfig=%s", i, lc.KubeconfigPath(o.Name)))
			}
		default:
			v = append(v, "--set", "reconciler.enabled=false")
		}
		return v
	}

	for _, mode := range []string{"push", "agent"} {
		t.Run(mode+" mode: the reconciler converges through the webhooks, which deny", func(t *testing.T) {
			// Like helm uninstall: a stopped webhook must not block the next mode.
			t.Cleanup(func() { uninstallWebhooks(t, clients) })
			if mode == "agent" {
				// A restricted change (ledger 3 → 2 replicas) that the agents must apply.
				editFile(t, filepath.Join(g.dir, "overlays/prod/kustomization.yaml"), "{name: ledger,           count: 3}", "{name: ledger,           count: 2}")
				approveDemo(t, g.repo, commitAll(t, g.repo, "ledger: 2 replicas"))
				g.push(t)
			}
			var pods []*pod
			for _, c := range prod.Clusters {
				objs := renderChart(t, helm, chartDirOf(t, root), values(c, mode)...)
				pods = append(pods, nodes[c.Name].install(t, lc, objs)...)
			}
			head := g.head(t)
			converged := func() (bool, string) {
				var state []string
				ok := true
				for _, c := range prod.Clusters {
					inv, err := inventory.Load(ctx, clients[c.Name], env)
					if err != nil {
						state, ok = append(state, fmt.Sprintf("%s: %v", c.Name, err)), false
						continue
					}
					st := inv.Status
					state = append(state, fmt.Sprintf("%s: revision %s, %d/%d healthy, last error %q", c.Name, st.Revision, st.Healthy, st.Objects, st.LastError))
					ok = ok && st.Revision == head && st.LastError == "" && st.Healthy == st.Objects
				}
				return ok, strings.Join(state, "\n")
			}
			for deadline := time.Now().Add(4 * time.Minute); ; time.Sleep(time.Second) {
				for _, p := range pods {
					if p.exited() {
						t.Fatalf("pod %s exited: %v\n%s", p.name, p.err, p.tail())
					}
				}
				ok, state := converged()
				if ok {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s mode: the clusters did not reach %s, healthy, within 4 minutes:\n%s\n%s", mode, head, state, podLogs(pods))
				}
			}
			checkPlacement(t, g.dir, clients, nil)
			webhookDenies(t, lc)
			for _, p := range pods {
				if uids, err := p.uids(); err != nil || uids != fmt.Sprintf("%d %d", image.UID, image.UID) {
					t.Errorf("pod %s runs as uids %q (%v), want the chart's runAsUser %d", p.name, uids, err, image.UID)
				}
			}
			for _, p := range pods {
				p.stop()
			}
		})
	}

	t.Run("a chart whose container arguments break fails", func(t *testing.T) {
		var home config.Cluster
		for _, c := range prod.Clusters {
			if c.Name == pushHome {
				home = c
			}
		}
		for _, m := range chartBreaks {
			t.Run(m.name, func(t *testing.T) {
				dir := brokenChart(t, root, m.file, m.old, m.new)
				objs := renderChart(t, helm, dir, values(home, "agent")...)
				if m.apply {
					nodes[home.Name].apply(t, lc, objs)
				}
				dep := deploymentOf(t, objs, m.component)
				p := nodes[home.Name].start(t, dep, dep.Name+"-broken")
				deadline := time.After(time.Minute)
				for !strings.Contains(p.logs.String(), m.want) && !p.exited() {
					select {
					case <-deadline:
						t.Fatalf("after a minute the container of the broken chart still runs and has not said %q:\n%s", m.want, p.tail())
					case <-time.After(200 * time.Millisecond):
					}
				}
				if !m.runs {
					<-p.done
				}
				logs := p.logs.String()
				if !m.runs && p.err == nil || !strings.Contains(logs, m.want) {
					t.Fatalf("the container ended with %v, want a failure saying %q:\n%s", p.err, m.want, p.tail())
				}
				i := strings.Index(logs, m.want)
				from, to := max(0, i-200), min(len(logs), i+len(m.want)+100)
				t.Logf("the container failed (exited: %v, %v): …%s…", p.exited(), p.err, logs[from:to])
			})
		}
	})
}

// pushHome is the cluster the push-mode reconciler runs in.
const pushHome = "onprem"

// chartBreaks are changes to the chart that break its containers: most
// make the process exit; with runs, it keeps running, failing (the apply
// ones change objects the release applies, not the container).
var chartBreaks = []struct {
	name, component, file, old, new, want string
	apply, runs                           bool
}{
	{name: "a flag the binary does not know", component: "reconciler", file: "reconciler-deployment.yaml",
		old: "- --env={{", new: "- --environment={{", want: "unknown flag: --environment"},
	{name: "the repository URL's env var renamed", component: "reconciler", file: "reconciler-deployment.yaml",
		old: "- name: STRATA_REPO\n", new: "- name: STRATA_REPO_URL\n", want: "$(STRATA_REPO)"},
	{name: "the cache volume mounted elsewhere (read-only root)", component: "reconciler", file: "reconciler-deployment.yaml",
		old: "mountPath: /var/cache/strata", new: "mountPath: /var/cache/mirror", want: "read-only file system"},
	{name: "strata.yaml looked for where it is not mounted", component: "webhook", file: "webhook-deployment.yaml",
		old: "--config=/etc/strata/config/strata.yaml", new: "--config=/etc/strata/strata.yaml", want: "/etc/strata/strata.yaml"},
	{name: "the agent's ClusterRole may only read", component: "reconciler", file: "reconciler-rbac.yaml",
		old:  "  {{- toYaml .Values.reconciler.rbac.agentRules | nindent 2 }}",
		new:  "  - {apiGroups: [\"*\"], resources: [\"*\"], verbs: [get, list, watch]}",
		want: "forbidden", apply: true, runs: true},
}

// install applies a rendered release to the node's cluster as helm would
// (everything but the Deployments, the webhook registration last) and
// starts the Deployments' containers; it waits until the webhook serves.
func (n *node) install(t *testing.T, lc *localcluster.Manager, objs []*unstructured.Unstructured) []*pod {
	t.Helper()
	n.apply(t, lc, objs)
	var vwc bytes.Buffer
	var deps []*appsv1.Deployment
	for _, o := range objs {
		switch o.GetKind() {
		case "Deployment":
			deps = append(deps, typedDeployment(t, o))
		case "ValidatingWebhookConfiguration":
			webhookToURL(t, o, objs)
			b, err := yaml.Marshal(o.Object)
			must(t, err)
			fmt.Fprintf(&vwc, "---\n%s", b)
		}
	}
	if vwc.Len() > 0 {
		n.kubectlApply(t, lc, vwc.String())
	}
	var pods []*pod
	for _, d := range deps {
		pods = append(pods, n.start(t, d, d.Name+"-0"))
	}
	if vwc.Len() > 0 {
		n.waitWebhook(t, pods)
	}
	return pods
}

// apply applies the release's objects but its Deployments and registration
// (and strata-system, which helm install --create-namespace makes).
func (n *node) apply(t *testing.T, lc *localcluster.Manager, objs []*unstructured.Unstructured) {
	t.Helper()
	var stream bytes.Buffer
	fmt.Fprintf(&stream, "apiVersion: v1\nkind: Namespace\nmetadata: {name: %s}\n", labels.SystemNamespace)
	for _, o := range objs {
		if k := o.GetKind(); k == "Deployment" || k == "ValidatingWebhookConfiguration" {
			continue
		}
		b, err := yaml.Marshal(o.Object)
		must(t, err)
		fmt.Fprintf(&stream, "---\n%s", b)
	}
	n.kubectlApply(t, lc, stream.String())
}

func (n *node) kubectlApply(t *testing.T, lc *localcluster.Manager, stream string) {
	t.Helper()
	if out, err := kubectl(t, lc, n.cluster, stream, "apply", "--server-side", "--force-conflicts", "--field-manager=helm", "-f", "-"); err != nil {
		t.Fatalf("cluster %s: applying the chart: %v\n%s", n.cluster, err, out)
	}
}

// waitWebhook waits until the webhook has put its CA into the registration
// and admits a public ConfigMap (server-side dry run).
func (n *node) waitWebhook(t *testing.T, pods []*pod) {
	t.Helper()
	ctx := context.Background()
	var last error
	ok := func() bool {
		for _, p := range pods {
			if p.exited() {
				t.Fatalf("pod %s exited: %v\n%s", p.name, p.err, p.tail())
			}
		}
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "probe", Namespace: "default", Labels: map[string]string{labels.Sensitivity: "public"}}}
		_, last = n.cs.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return last == nil
	}
	deadline := time.Now().Add(time.Minute)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("cluster %s: the chart's webhook does not admit a public ConfigMap after a minute: %v\n%s", n.cluster, last, podLogs(pods))
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// webhookToURL points the registration at the webhook process: the
// chart's Service, resolved as kube-proxy would (Service port → targetPort
// → the container port of that name), becomes https://127.0.0.1:PORT.
func webhookToURL(t *testing.T, o *unstructured.Unstructured, objs []*unstructured.Unstructured) {
	t.Helper()
	var vwc admissionregistrationv1.ValidatingWebhookConfiguration
	must(t, runtimeConvert(o, &vwc))
	for i, h := range vwc.Webhooks {
		svc := h.ClientConfig.Service
		if svc == nil {
			t.Fatalf("webhook %s has no Service in its clientConfig", h.Name)
		}
		port := int64(ptrOr(svc.Port, 443))
		url := "https://127.0.0.1:" + strconv.Itoa(serviceTarget(t, objs, svc.Name, port)) + ptrOr(svc.Path, "/")
		vwc.Webhooks[i].ClientConfig = admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: h.ClientConfig.CABundle}
	}
	b, err := json.Marshal(&vwc)
	must(t, err)
	o.Object = map[string]any{}
	must(t, json.Unmarshal(b, &o.Object))
}

// serviceTarget finds the container port behind port of Service name.
func serviceTarget(t *testing.T, objs []*unstructured.Unstructured, name string, port int64) int {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() != "Service" || o.GetName() != name {
			continue
		}
		var svc corev1.Service
		must(t, runtimeConvert(o, &svc))
		for _, sp := range svc.Spec.Ports {
			if int64(sp.Port) != port {
				continue
			}
			for _, d := range objs {
				if d.GetKind() != "Deployment" {
					continue
				}
				dep := typedDeployment(t, d)
				if !selects(svc.Spec.Selector, dep.Spec.Template.Labels) {
					continue
				}
				for _, cp := range dep.Spec.Template.Spec.Containers[0].Ports {
					if cp.Name == sp.TargetPort.String() || sp.TargetPort.IntValue() == int(cp.ContainerPort) {
						return int(cp.ContainerPort)
					}
				}
			}
			t.Fatalf("Service %s port %d: targetPort %s is no container port of the Deployment it selects", name, port, sp.TargetPort.String())
		}
		t.Fatalf("Service %s has no port %d", name, port)
	}
	t.Fatalf("the registration names Service %s, which the chart does not render", name)
	return 0
}

func selects(selector, podLabels map[string]string) bool {
	for k, v := range selector {
		if podLabels[k] != v {
			return false
		}
	}
	return len(selector) > 0
}

// uninstallWebhooks removes the registrations, as helm uninstall would, so
// that a stopped webhook does not block the next release.
func uninstallWebhooks(t *testing.T, clients map[string]client.Client) {
	t.Helper()
	for name, c := range clients {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(schema.GroupVersionKind{Group: "admissionregistration.k8s.io", Version: "v1", Kind: "ValidatingWebhookConfiguration"})
		u.SetName("strata-validate")
		if err := c.Delete(context.Background(), u); err != nil && !apierrors.IsNotFound(err) {
			t.Fatalf("cluster %s: deleting the registration: %v", name, err)
		}
	}
}

// webhookDenies checks the chart's webhooks as the demo e2e test does.
func webhookDenies(t *testing.T, lc *localcluster.Manager) {
	t.Helper()
	out, err := kubectl(t, lc, "public", restrictedDeployment("ledger-copy", ""), "apply", "-f", "-")
	if err == nil || !strings.Contains(out, "Deployment default/ledger-copy is restricted") || !strings.Contains(out, "tier public-cloud") {
		t.Errorf("kubectl apply of a restricted Deployment into public: err %v, output:\n%s", err, out)
	}
	if out, err := kubectl(t, lc, "onprem", restrictedDeployment("ledger-copy", ""), "apply", "--dry-run=server", "-f", "-"); err != nil {
		t.Errorf("the same object on-prem (dry-run) was denied: %v\n%s", err, out)
	}
}

func podLogs(pods []*pod) string {
	var b strings.Builder
	for _, p := range pods {
		fmt.Fprintf(&b, "--- pod %s:\n%s\n", p.name, p.tail())
	}
	return b.String()
}
