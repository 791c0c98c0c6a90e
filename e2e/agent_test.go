package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	fluxmeta "github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/gittestserver"
	"github.com/go-git/go-git/v5"
	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-gitops/strata/internal/desired"
	"github.com/strata-gitops/strata/internal/inventory"
	"github.com/strata-gitops/strata/internal/labels"
	"github.com/strata-gitops/strata/internal/localcluster"
	"github.com/strata-gitops/strata/internal/source"
)

// strataProc is one strata process; its output goes to a file that is
// shown when the test fails.
type strataProc struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

func startStrata(t *testing.T, bin, name string, args ...string) *strataProc {
	t.Helper()
	log := filepath.Join(t.TempDir(), name+".log")
	f, err := os.OpenFile(log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "--- %s: strata %s\n", time.Now().Format(time.RFC3339Nano), strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("starting %s: %v", name, err)
	}
	p := &strataProc{t: t, name: name, cmd: cmd, log: log, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); f.Close(); close(p.done) }()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("%s's log (last lines):\n%s", name, p.tail(40))
		}
	})
	return p
}

// kill sends SIGKILL: the process gets no chance to release its lease or
// finish what it was doing.
func (p *strataProc) kill() {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		p.t.Fatalf("kill %s: %v", p.name, err)
	}
	<-p.done
}

// stop ends the process gently (SIGTERM), then for good.
func (p *strataProc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
	}
}

func (p *strataProc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

func (p *strataProc) tail(n int) string {
	b, _ := os.ReadFile(p.log)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// gitRemote is the demo config repo on a real git server over HTTP, pushed
// to with the git CLI and approved by the demo reviewers.
type gitRemote struct {
	url  string
	dir  string
	repo *git.Repository
	w    *workClone
}

func serveDemo(t *testing.T) *gitRemote {
	t.Helper()
	srv, err := gittestserver.NewTempGitServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(srv.Root()) })
	srv.AutoCreate()
	if err := srv.StartHTTP(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.StopHTTP)
	dir, r := demoRepo(t)
	g := &gitRemote{url: srv.HTTPAddress() + "/platform/config.git", dir: dir, repo: r, w: &workClone{t: t, dir: dir}}
	g.w.git("remote", "add", "origin", g.url)
	g.push()
	return g
}

func (g *gitRemote) push() {
	g.w.git("push", "-q", "origin", "HEAD:refs/heads/main", "refs/notes/strata-approvals")
}

// change commits what edit did, has both demo reviewers approve it and
// pushes it; it returns the commit.
func (g *gitRemote) change(msg string, edit func()) string {
	edit()
	c := g.w.commit(msg)
	approveDemo(g.w.t, g.repo, c)
	g.push()
	return c
}

func (g *gitRemote) head() string { return g.w.git("rev-parse", "HEAD") }

// pinArgs are the reconciler flags that pin the demo reviewers' keys.
func pinArgs(t *testing.T) []string {
	var args []string
	for _, fp := range demoPin(t).Fingerprints() {
		args = append(args, "--trusted-keys", fp)
	}
	return args
}

// clusterClients connects to the local clusters as their admin.
func clusterClients(t *testing.T, lc *localcluster.Manager) map[string]client.Client {
	t.Helper()
	out := map[string]client.Client{}
	for _, name := range localcluster.DefaultClusters {
		cfg, err := lc.RESTConfig(name)
		if err != nil {
			t.Fatal(err)
		}
		c, err := client.New(cfg, client.Options{})
		if err != nil {
			t.Fatal(err)
		}
		out[name] = c
	}
	return out
}

// appliedAt reports whether a cluster's inventory says revision was applied
// there and every object is healthy.
func appliedAt(ctx context.Context, c client.Client, revision string) bool {
	inv, err := inventory.Load(ctx, c, env)
	return err == nil && inv.Status.Revision == revision && inv.Status.LastError == "" && inv.Status.Healthy == inv.Status.Objects
}

func waitApplied(t *testing.T, clients map[string]client.Client, revision string, d time.Duration, names ...string) {
	t.Helper()
	ctx := context.Background()
	waitUntil(t, d, func() bool {
		for _, n := range names {
			if !appliedAt(ctx, clients[n], revision) {
				return false
			}
		}
		return true
	}, fmt.Sprintf("%v did not reach revision %.12s healthy within %s", names, revision, d))
}

// placedKeys is what placement at dir's HEAD puts in each cluster, as
// "Kind namespace/name".
func placedKeys(t *testing.T, dir string) map[string][]string {
	t.Helper()
	st := buildDesired(t, dir, nil)
	out := map[string][]string{}
	for _, name := range st.ClusterNames() {
		for _, d := range st.Placement.ForCluster(name) {
			out[name] = append(out[name], d.Object.Kind+" "+d.Object.Namespace+"/"+d.Object.Name)
		}
		slices.Sort(out[name])
	}
	return out
}

// inventoryKeys is what a cluster's inventory says strata applied there.
func inventoryKeys(t *testing.T, c client.Client) []string {
	t.Helper()
	inv, err := inventory.Load(context.Background(), c, env)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range inv.Entries {
		out = append(out, e.Kind+" "+e.Namespace+"/"+e.Name)
	}
	slices.Sort(out)
	return out
}

func deployment(t *testing.T, c client.Client, ns, name string) (*appsv1.Deployment, bool) {
	t.Helper()
	var d appsv1.Deployment
	err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &d)
	if apierrors.IsNotFound(err) {
		return nil, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return &d, true
}

// Agent mode: one reconciler process per cluster (--self), each with only
// its own cluster's credentials and read-only access to the others'
// inventories. Each applies only its share; a revert reaches all three; a
// killed agent catches up when it returns; an object that moves between
// clusters is pruned from its old cluster only after its new cluster's
// agent recorded it applied and healthy (make-before-break across agents).
func TestAgentMode(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test on three kwok clusters; skipped with -short")
	}
	// Built before the clusters start: on a loaded machine a link running
	// beside three starting apiservers can stall them past
	// kube-controller-manager's start-up wait.
	bin := buildStrata(t)()
	lc := upClusters(t)
	clients := clusterClients(t, lc)
	g := serveDemo(t)
	first := g.head()
	peers := peerKubeconfigs(t, lc)
	all := localcluster.DefaultClusters

	agents := map[string]*strataProc{}
	startAgent := func(name string) {
		args := append([]string{"reconcile", "--repo", g.url, "--branch", "main", "--env", env,
			"--self", name, "--kubeconfig", lc.KubeconfigPath(name), "--peer-kubeconfig-dir", peers[name],
			"--interval", "2s", "--drift-interval", "2s", "--health-timeout", "2m", "--metrics-addr", "0",
			"--cache-dir", filepath.Join(t.TempDir(), "mirror")}, pinArgs(t)...)
		agents[name] = startStrata(t, bin, "agent-"+name, args...)
	}
	start := time.Now()
	for _, name := range all {
		startAgent(name)
	}

	t.Run("each agent applies its own share and nothing else", func(t *testing.T) {
		waitApplied(t, clients, first, 2*time.Minute, all...)
		t.Logf("three agents converged in %s", time.Since(start).Round(time.Millisecond))
		want := placedKeys(t, g.dir)
		for _, name := range all {
			if diff := cmp.Diff(want[name], inventoryKeys(t, clients[name])); diff != "" {
				t.Errorf("cluster %s: inventory differs from its placement (-placement +inventory):\n%s", name, diff)
			}
		}
		checkPlacement(t, g.dir, clients, nil)
	})

	t.Run("a revert reaches all three clusters", func(t *testing.T) {
		prod := filepath.Join(g.dir, "overlays/prod/kustomization.yaml")
		// One change in each cluster.
		bad := g.change("model-training at 3 a.m., fraud-scoring 5.0.4, ledger 7.2.6", func() {
			editFile(t, filepath.Join(g.dir, "overlays/base/model-training/cronjob.yaml"), `schedule: "0 2 * * *"`, `schedule: "0 3 * * *"`)
			editFile(t, prod, "finance-ai/fraud-scoring,          newTag: 5.0.3}", "finance-ai/fraud-scoring,          newTag: 5.0.4}")
			editFile(t, prod, "finance-ai/ledger,      newTag: 7.2.5}", "finance-ai/ledger,      newTag: 7.2.6}")
		})
		state := func() []string {
			var cj batchv1.CronJob
			if err := clients["public"].Get(context.Background(), client.ObjectKey{Namespace: "ml-training", Name: "model-training"}, &cj); err != nil {
				t.Fatal(err)
			}
			fraud, _ := deployment(t, clients["private"], "fraud", "fraud-scoring")
			ledger, _ := deployment(t, clients["onprem"], "ledger", "ledger")
			return []string{cj.Spec.Schedule, fraud.Spec.Template.Spec.Containers[0].Image, ledger.Spec.Template.Spec.Containers[0].Image}
		}
		good := state()
		waitApplied(t, clients, bad, 90*time.Second, all...)
		changed := []string{"0 3 * * *", "registry.example.com/finance-ai/fraud-scoring:5.0.4", "registry.onprem.example.internal/finance-ai/ledger:7.2.6"}
		if diff := cmp.Diff(changed, state()); diff != "" {
			t.Fatalf("the change did not reach every cluster (-want +got):\n%s", diff)
		}
		start := time.Now()
		g.w.git("revert", "--no-edit", "HEAD")
		revert := g.head()
		g.push()
		waitApplied(t, clients, revert, 90*time.Second, all...)
		t.Logf("revert applied and healthy in all three clusters %s after the push", time.Since(start).Round(time.Millisecond))
		if diff := cmp.Diff(good, state()); diff != "" {
			t.Errorf("the revert did not restore every cluster (-before +after):\n%s", diff)
		}
		checkPlacement(t, g.dir, clients, nil)
	})

	t.Run("a killed agent catches up when it returns; the others do not touch its cluster", func(t *testing.T) {
		agents["onprem"].kill()
		change := g.change("ledger: 2 replicas", func() {
			editFile(t, filepath.Join(g.dir, "overlays/prod/kustomization.yaml"), "{name: ledger,           count: 3}", "{name: ledger,           count: 2}")
		})
		waitApplied(t, clients, change, 60*time.Second, "public", "private")
		time.Sleep(3 * time.Second) // more than an interval of the running agents
		if d, _ := deployment(t, clients["onprem"], "ledger", "ledger"); *d.Spec.Replicas != 3 {
			t.Fatalf("ledger changed to %d replicas while the on-prem agent was down", *d.Spec.Replicas)
		}
		if appliedAt(context.Background(), clients["onprem"], change) {
			t.Fatal("onprem records the change while its agent is down")
		}
		start := time.Now()
		startAgent("onprem")
		waitApplied(t, clients, change, 60*time.Second, "onprem")
		t.Logf("restarted on-prem agent caught up in %s", time.Since(start).Round(time.Millisecond))
		if d, _ := deployment(t, clients["onprem"], "ledger", "ledger"); *d.Spec.Replicas != 2 {
			t.Errorf("ledger has %d replicas after the catch-up, want 2", *d.Spec.Replicas)
		}
	})

	t.Run("a move is make-before-break across agents", func(t *testing.T) {
		// The destination's agent is down: the source agent must keep the
		// object until the destination records it applied and healthy.
		agents["onprem"].kill()
		move := g.change("risk-dashboard holds restricted data now", func() {
			editFile(t, filepath.Join(g.dir, "overlays/base/risk-dashboard/deployment.yaml"),
				"strata.dev/sensitivity: internal", "strata.dev/sensitivity: restricted")
			editFile(t, filepath.Join(g.dir, "overlays/prod/kustomization.yaml"),
				"{name: registry.example.com/finance-ai/risk-dashboard,", "{name: registry.example.com/finance-ai/risk-dashboard, newName: registry.onprem.example.internal/finance-ai/risk-dashboard,")
		})
		ctx := context.Background()
		waitUntil(t, 60*time.Second, func() bool {
			inv, err := inventory.Load(ctx, clients["private"], env)
			return err == nil && inv.Status.Revision == move
		}, "the private agent did not reconcile the move")
		time.Sleep(5 * time.Second) // two intervals of the private agent
		if _, ok := deployment(t, clients["private"], "risk", "risk-dashboard"); !ok {
			t.Fatal("the private agent pruned risk-dashboard before its new cluster had it (break-before-make)")
		}
		if _, ok := deployment(t, clients["onprem"], "risk", "risk-dashboard"); ok {
			t.Fatal("risk-dashboard reached onprem while its agent was down")
		}
		if inv, err := inventory.Load(ctx, clients["private"], env); err != nil || !slices.ContainsFunc(inv.Status.Conditions, func(c metav1.Condition) bool {
			return c.Type == fluxmeta.ReadyCondition && c.Reason == inventory.ReasonWaitingForMove
		}) {
			t.Errorf("private's status does not say that an object waits for its new cluster: %v", err)
		}
		// Whoever controls onprem writes there that it runs risk-dashboard,
		// healthy, at a commit that is not in the branch: the private agent
		// must not take that for the move's confirmation.
		restore := forgePeer(t, clients["onprem"], "Deployment", "risk", "risk-dashboard")
		time.Sleep(5 * time.Second)
		if _, ok := deployment(t, clients["private"], "risk", "risk-dashboard"); !ok {
			t.Fatal("a forged on-prem inventory (a commit not in the branch) made the private agent prune risk-dashboard")
		}
		restore()
		startAgent("onprem")
		var appliedAtDest time.Time
		waitUntil(t, 60*time.Second, func() bool {
			_, ok := deployment(t, clients["onprem"], "risk", "risk-dashboard")
			if ok && appliedAtDest.IsZero() {
				appliedAtDest = time.Now()
			}
			return ok && slices.Contains(availableDeployments(t, clients["onprem"]), "risk/risk-dashboard")
		}, "risk-dashboard did not become Available on-prem")
		waitUntil(t, 60*time.Second, func() bool {
			_, ok := deployment(t, clients["private"], "risk", "risk-dashboard")
			return !ok
		}, "the private agent never pruned risk-dashboard after onprem had it")
		t.Logf("risk-dashboard: on-prem applied it, then private pruned it %s later", time.Since(appliedAtDest).Round(time.Millisecond))
		waitApplied(t, clients, move, 60*time.Second, all...)
		want := placedKeys(t, g.dir)
		for _, name := range all {
			if diff := cmp.Diff(want[name], inventoryKeys(t, clients[name])); diff != "" {
				t.Errorf("cluster %s after the move (-placement +inventory):\n%s", name, diff)
			}
		}
		checkPlacement(t, g.dir, clients, nil)
	})
	for name, a := range agents {
		if !a.running() {
			t.Errorf("agent %s exited on its own:\n%s", name, a.tail(20))
		}
	}
}

// buildDesired renders and places dir's HEAD for env.
func buildDesired(t *testing.T, dir string, healthy map[string]bool) *desired.State {
	t.Helper()
	repo, err := source.Open(context.Background(), dir, source.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rev, err := repo.Resolve("HEAD")
	if err != nil {
		t.Fatal(err)
	}
	snap, err := repo.Snapshot(rev)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := desired.LoadConfig(snap)
	if err != nil {
		t.Fatal(err)
	}
	opts := desired.DefaultOptions()
	opts.Healthy = healthy
	st, err := desired.Build(snap, cfg, env, opts)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// peerReader is the ServiceAccount another cluster's agent reads this
// cluster's inventory as: get on ConfigMaps in strata-system, nothing else.
const peerReader = "strata-peer-reader"

// peerKubeconfigs gives each agent a directory with read-only kubeconfigs
// (ServiceAccount tokens bound to a Role that may only get ConfigMaps in
// strata-system) of the other clusters, and checks that they cannot write.
func peerKubeconfigs(t *testing.T, lc *localcluster.Manager) map[string]string {
	t.Helper()
	ctx := context.Background()
	readOnly := map[string]*clientcmdapi.Config{}
	for _, name := range localcluster.DefaultClusters {
		cfg, err := lc.RESTConfig(name)
		if err != nil {
			t.Fatal(err)
		}
		cs, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ns := labels.SystemNamespace
		meta := metav1.ObjectMeta{Name: peerReader, Namespace: ns}
		for _, create := range []func() error{
			func() error {
				_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
				return err
			},
			func() error {
				_, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: meta}, metav1.CreateOptions{})
				return err
			},
			func() error {
				_, err := cs.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: meta, Rules: []rbacv1.PolicyRule{
					{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get"}},
				}}, metav1.CreateOptions{})
				return err
			},
			func() error {
				_, err := cs.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: meta,
					RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: peerReader},
					Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: peerReader, Namespace: ns}},
				}, metav1.CreateOptions{})
				return err
			},
		} {
			if err := create(); err != nil && !apierrors.IsAlreadyExists(err) {
				t.Fatalf("cluster %s: peer reader RBAC: %v", name, err)
			}
		}
		hour := int64(3600)
		tok, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, peerReader, &authenticationv1.TokenRequest{
			Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &hour}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("cluster %s: token of %s: %v", name, peerReader, err)
		}
		ca := cfg.CAData
		if len(ca) == 0 && cfg.CAFile != "" {
			if ca, err = os.ReadFile(cfg.CAFile); err != nil {
				t.Fatal(err)
			}
		}
		kc := clientcmdapi.NewConfig()
		kc.Clusters[name] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: ca}
		kc.AuthInfos[peerReader] = &clientcmdapi.AuthInfo{Token: tok.Status.Token}
		kc.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: peerReader}
		kc.CurrentContext = name
		readOnly[name] = kc

		// Read-only indeed: the token may not write the inventory.
		rc, err := clientcmd.NewDefaultClientConfig(*kc, nil).ClientConfig()
		if err != nil {
			t.Fatal(err)
		}
		peer, err := kubernetes.NewForConfig(rc)
		if err != nil {
			t.Fatal(err)
		}
		_, err = peer.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: labels.InventoryName(env)}}, metav1.CreateOptions{})
		if !apierrors.IsForbidden(err) {
			t.Fatalf("cluster %s: the peer reader's token could create a ConfigMap (err %v), want Forbidden", name, err)
		}
	}
	dirs := map[string]string{}
	for _, self := range localcluster.DefaultClusters {
		dir := filepath.Join(t.TempDir(), "peers-of-"+self)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		for name, kc := range readOnly {
			if name == self {
				continue
			}
			if err := clientcmd.WriteToFile(*kc, filepath.Join(dir, name+".kubeconfig")); err != nil {
				t.Fatal(err)
			}
		}
		dirs[self] = dir
	}
	return dirs
}

// forgePeer writes into a cluster's inventory, as its admin could, that an
// object was applied there and everything is healthy at a commit that is
// not in the branch; the returned func puts the real inventory back.
func forgePeer(t *testing.T, c client.Client, kind, ns, name string) func() {
	t.Helper()
	ctx := context.Background()
	real, err := inventory.Load(ctx, c, env)
	if err != nil {
		t.Fatal(err)
	}
	forged, err := inventory.Load(ctx, c, env)
	if err != nil {
		t.Fatal(err)
	}
	forged.Entries = append(forged.Entries, inventory.Ref{Group: "apps", Version: "v1", Kind: kind, Namespace: ns, Name: name})
	forged.Status.Revision = strings.Repeat("f", 40)
	forged.Status.Objects, forged.Status.Healthy, forged.Status.LastError = len(forged.Entries), len(forged.Entries), ""
	if _, err := inventory.Save(ctx, c, forged); err != nil {
		t.Fatal(err)
	}
	return func() {
		t.Helper()
		now, err := inventory.Load(ctx, c, env)
		if err != nil {
			t.Fatal(err)
		}
		now.Entries, now.Status = real.Entries, real.Status
		if _, err := inventory.Save(ctx, c, now); err != nil {
			t.Fatal(err)
		}
	}
}
