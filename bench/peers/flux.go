package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-gitops/strata/bench/internal/childproc"
)

// fluxTool runs Flux's source-controller and kustomize-controller out of
// cluster against the scenario's first cluster (the management cluster):
// one GitRepository, and one Kustomization per cluster over the hand-split
// path flux/<cluster>, the others reached with spec.kubeConfig.secretRef —
// prune and wait on, as a team that wants health checked would set it.
//
// label names the configuration in the results: "Flux" runs the
// controllers with their defaults, "Flux tuned" adds extraArgs to
// kustomize-controller (--concurrent-ssa and the other flags of Flux's
// vertical-scaling guide, as an operator with large Kustomizations would).
type fluxTool struct {
	bin, crds, kubectl string
	label              string
	extraArgs          []string
	sc                 *setup
	procs              []*childproc.Process
	ks                 *childproc.Process // kustomize-controller
	cl                 client.Client
	// token is the requestedAt of the latest trigger of the Kustomizations.
	token string
}

const fluxNS = "flux-system"

func (f *fluxTool) name() string { return f.label }

func (f *fluxTool) hostKubeconfig() string {
	return filepath.Join(f.sc.kcdir, f.sc.clusters[0]+".kubeconfig")
}

func (f *fluxTool) start(ctx context.Context, sc *setup, head string, want map[string]int) error {
	f.sc = sc
	kc := f.hostKubeconfig()
	for _, args := range [][]string{
		{"apply", "--server-side", "-f", f.crds},
		{"wait", "--for", "condition=established", "--timeout", "60s", "crd/gitrepositories.source.toolkit.fluxcd.io", "crd/kustomizations.kustomize.toolkit.fluxcd.io"},
	} {
		if out, err := exec.CommandContext(ctx, f.kubectl, append([]string{"--kubeconfig", kc}, args...)...).CombinedOutput(); err != nil {
			return fmt.Errorf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kc)
	if err != nil {
		return err
	}
	if f.cl, err = client.New(cfg, client.Options{}); err != nil {
		return err
	}
	if err := f.cl.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fluxNS}}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	for _, c := range sc.clusters[1:] {
		flat, err := flatKubeconfig(filepath.Join(sc.kcdir, c+".kubeconfig"))
		if err != nil {
			return err
		}
		sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "kubeconfig-" + c, Namespace: fluxNS}, Data: map[string][]byte{"value": flat}}
		if err := f.cl.Create(ctx, sec); err != nil {
			return fmt.Errorf("secret for cluster %s: %w", c, err)
		}
	}
	ports := make([]int, 5)
	for i := range ports {
		if ports[i], err = childproc.FreePort(); err != nil {
			return err
		}
	}
	env := []string{"RUNTIME_NAMESPACE=" + fluxNS, "KUBECONFIG=" + kc}
	if err := os.MkdirAll(filepath.Join(sc.work, "artifacts"), 0o755); err != nil {
		return err
	}
	storage := fmt.Sprintf("127.0.0.1:%d", ports[0])
	src, err := childproc.Start("source-controller", filepath.Join(sc.work, "source-controller.log"), env, filepath.Join(f.bin, "source-controller"),
		"--storage-path="+filepath.Join(sc.work, "artifacts"), "--storage-addr="+storage, "--storage-adv-addr="+storage,
		fmt.Sprintf("--metrics-addr=127.0.0.1:%d", ports[1]), fmt.Sprintf("--health-addr=127.0.0.1:%d", ports[2]), "--enable-leader-election=false")
	if err != nil {
		return err
	}
	f.procs = append(f.procs, src)
	ksArgs := append([]string{fmt.Sprintf("--metrics-addr=127.0.0.1:%d", ports[3]), fmt.Sprintf("--health-addr=127.0.0.1:%d", ports[4]), "--enable-leader-election=false"}, f.extraArgs...)
	ks, err := childproc.Start("kustomize-controller", filepath.Join(sc.work, "kustomize-controller.log"), env, filepath.Join(f.bin, "kustomize-controller"), ksArgs...)
	if err != nil {
		return err
	}
	f.procs, f.ks = append(f.procs, ks), ks

	repo := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
		"metadata": map[string]any{"name": "bench", "namespace": fluxNS},
		"spec":     map[string]any{"interval": "1m", "url": sc.repoURL, "ref": map[string]any{"branch": "main"}, "timeout": "60s"},
	}}
	if err := f.cl.Create(ctx, repo); err != nil {
		return fmt.Errorf("GitRepository: %w", err)
	}
	for i, c := range sc.clusters {
		spec := map[string]any{
			"interval": "1m", "retryInterval": "10s", "timeout": sc.timeout.String(), "path": "./" + fluxPath(c),
			"prune": true, "wait": true, "sourceRef": map[string]any{"kind": "GitRepository", "name": "bench"},
		}
		if i > 0 {
			spec["kubeConfig"] = map[string]any{"secretRef": map[string]any{"name": "kubeconfig-" + c}}
		}
		ks := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
			"metadata": map[string]any{"name": c, "namespace": fluxNS}, "spec": spec,
		}}
		if err := f.cl.Create(ctx, ks); err != nil {
			return fmt.Errorf("Kustomization %s: %w", c, err)
		}
	}
	return f.wait(ctx, head, want, false)
}

// flatKubeconfig is a kubeconfig with every referenced file embedded, for
// a Secret.
func flatKubeconfig(path string) ([]byte, error) {
	cfg, err := clientcmd.LoadFromFile(path)
	if err != nil {
		return nil, err
	}
	if err := clientcmdapi.FlattenConfig(cfg); err != nil {
		return nil, err
	}
	return clientcmd.Write(*cfg)
}

// trigger does what `flux reconcile kustomization NAME --with-source` does
// (fluxcd/flux2 cmd/flux/reconcile*.go), for every Kustomization: it sets
// reconcile.fluxcd.io/requestedAt on the GitRepository and waits until
// source-controller has handled that request and is Ready (for a push: has
// the new commit's artifact), then sets requestedAt on the Kustomizations.
// So kustomize-controller never starts on the old artifact because of the
// request. It also reconciles by itself when it sees the artifact change
// (its watch on the source); the reconciles each step cost are counted
// from its log (reconcileCount).
func (f *fluxTool) trigger(ctx context.Context, commit string) error {
	src := f.obj("source.toolkit.fluxcd.io/v1", "GitRepository", "bench")
	token := time.Now().UTC().Format(time.RFC3339Nano)
	if err := f.request(ctx, src, token); err != nil {
		return err
	}
	err := waitFor(ctx, f.sc.timeout, func(ctx context.Context) (bool, error) {
		if err := f.cl.Get(ctx, client.ObjectKeyFromObject(src), src); err != nil {
			return false, err
		}
		handled, _, _ := unstructured.NestedString(src.Object, "status", "lastHandledReconcileAt")
		rev, _, _ := unstructured.NestedString(src.Object, "status", "artifact", "revision")
		ready, msg := readyCondition(src)
		if handled != token || !ready || !strings.HasSuffix(rev, commit) {
			return false, fmt.Errorf("GitRepository: handled %q (want %q), ready %v (%s), artifact %q (want %.8s)", handled, token, ready, msg, rev, commit)
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("Flux: waiting for the source: %w", err)
	}
	f.token = time.Now().UTC().Format(time.RFC3339Nano)
	for _, c := range f.sc.clusters {
		if err := f.request(ctx, f.obj("kustomize.toolkit.fluxcd.io/v1", "Kustomization", c), f.token); err != nil {
			return err
		}
	}
	return nil
}

// request sets reconcile.fluxcd.io/requestedAt on o.
func (f *fluxTool) request(ctx context.Context, o *unstructured.Unstructured, token string) error {
	patch := client.RawPatch(types.MergePatchType, []byte(fmt.Sprintf(`{"metadata":{"annotations":{"reconcile.fluxcd.io/requestedAt":%q}}}`, token)))
	if err := f.cl.Patch(ctx, o, patch); err != nil {
		return fmt.Errorf("requesting a reconcile of %s %s: %w", o.GetKind(), o.GetName(), err)
	}
	return nil
}

// reconcileCount is how many reconciles of the scenario's Kustomizations
// kustomize-controller has finished (successfully or not) so far, by its log.
func (f *fluxTool) reconcileCount(context.Context) (int, error) {
	data, err := os.ReadFile(f.ks.Log)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, c := range countFluxReconciles(data) {
		n += c
	}
	return n, nil
}

func (f *fluxTool) obj(apiVersion, kind, name string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion(apiVersion)
	u.SetKind(kind)
	u.SetNamespace(fluxNS)
	u.SetName(name)
	return u
}

// wait: every Kustomization Ready at commit with want objects in its
// inventory; for a no-op, also having handled the latest request.
func (f *fluxTool) wait(ctx context.Context, commit string, want map[string]int, noop bool) error {
	err := waitFor(ctx, f.sc.timeout, func(ctx context.Context) (bool, error) {
		for _, p := range f.procs {
			if p.Exited() {
				return false, fatal{Err: fmt.Errorf("%s exited", p.Name)}
			}
		}
		for _, c := range f.sc.clusters {
			ks := f.obj("kustomize.toolkit.fluxcd.io/v1", "Kustomization", c)
			if err := f.cl.Get(ctx, client.ObjectKeyFromObject(ks), ks); err != nil {
				return false, err
			}
			rev, _, _ := unstructured.NestedString(ks.Object, "status", "lastAppliedRevision")
			handled, _, _ := unstructured.NestedString(ks.Object, "status", "lastHandledReconcileAt")
			entries, _, _ := unstructured.NestedSlice(ks.Object, "status", "inventory", "entries")
			ready, msg := readyCondition(ks)
			if !ready || !strings.HasSuffix(rev, commit) || len(entries) != want[c] || (noop && handled != f.token) {
				return false, fmt.Errorf("Kustomization %s: ready %v (%s), revision %q, %d objects (want %d at %.8s), handled %q", c, ready, msg, rev, len(entries), want[c], commit, handled)
			}
		}
		return true, nil
	})
	if err != nil {
		var tails strings.Builder
		for _, p := range f.procs {
			fmt.Fprintf(&tails, "\n%s log tail:\n%s", p.Name, p.Tail(15))
		}
		return fmt.Errorf("Flux: %w%s", err, tails.String())
	}
	return nil
}

func readyCondition(u *unstructured.Unstructured) (bool, string) {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == "Ready" {
			msg, _ := m["message"].(string)
			return m["status"] == "True", msg
		}
	}
	return false, "no Ready condition"
}

func (f *fluxTool) usage() (usage, error) {
	var total usage
	for _, p := range f.procs {
		u, err := usageOf(p)
		if err != nil {
			return total, err
		}
		total = total.add(u)
	}
	return total, nil
}

func (f *fluxTool) stop() {
	for _, p := range f.procs {
		p.Stop()
	}
}
