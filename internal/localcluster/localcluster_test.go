package localcluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// logWriter sends progress lines to the test log while the test runs.
type logWriter struct {
	mu   sync.Mutex
	t    *testing.T
	done bool
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (w *logWriter) stop() { w.mu.Lock(); w.done = true; w.mu.Unlock() }

// TestClusterLifecycle creates one real kwok cluster in a temporary home and
// checks that it runs Deployments and StatefulSets with volume claims, that
// Stop and Start keep its data, and that Down leaves nothing behind.
func TestClusterLifecycle(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real control plane; skipped with -short")
	}
	home := t.TempDir()
	lw := &logWriter{t: t}
	m := New(Options{Home: home, Progress: lw})
	if missing := m.MissingBinaries(); len(missing) > 0 {
		t.Skipf("%s missing from %s: run `make tools` (hack/install-tools.sh) to build the control-plane binaries", strings.Join(missing, ", "), m.Bin())
	}
	suffix := make([]byte, 3)
	_, _ = rand.Read(suffix)
	name := "lc-test-" + hex.EncodeToString(suffix)
	dir := m.ClusterDir(name)
	t.Cleanup(func() {
		defer lw.stop()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := m.Down(ctx, name); err != nil {
			t.Errorf("cleanup: Down: %v", err)
		}
		if out, err := exec.Command("pgrep", "-f", dir).Output(); err == nil {
			t.Errorf("cleanup: processes of %s left:\n%s", dir, out)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	start := time.Now()
	if err := m.Up(ctx, name); err != nil {
		t.Fatalf("Up: %v", err)
	}
	t.Logf("cluster %s up in %s", name, time.Since(start).Round(100*time.Millisecond))

	// Idempotent.
	start = time.Now()
	if err := m.Up(ctx, name); err != nil {
		t.Fatalf("second Up: %v", err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("second Up took %s; it should find the cluster running", d)
	}

	st := mustStatus(t, m)
	if !st.Ready || !st.Running || st.Version == "" || st.Kubeconfig != m.KubeconfigPath(name) {
		t.Fatalf("Status = %+v, want the cluster running and ready", st)
	}
	t.Logf("status: %+v", st)
	if fi, err := os.Stat(m.KubeconfigPath(name)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("kubeconfig %s: %v, mode %v; want a 0600 file", m.KubeconfigPath(name), err, fi.Mode().Perm())
	}

	cs, err := m.Client(name)
	if err != nil {
		t.Fatal(err)
	}
	node, err := cs.CoreV1().Nodes().Get(ctx, NodeName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("fake node: %v", err)
	}
	if node.Status.Allocatable.Cpu().Value() != 64 || node.Labels["type"] != "kwok" || node.Annotations["kwok.x-k8s.io/node"] != "fake" {
		t.Errorf("fake node: allocatable %v, labels %v, annotations %v", node.Status.Allocatable, node.Labels, node.Annotations)
	}

	start = time.Now()
	if _, err := cs.AppsV1().Deployments("default").Create(ctx, testDeployment(), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, "Deployment web Available", func() bool {
		d, err := cs.AppsV1().Deployments("default").Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false
		}
		for _, c := range d.Status.Conditions {
			if c.Type == appsv1.DeploymentAvailable && c.Status == corev1.ConditionTrue {
				return d.Status.AvailableReplicas == 1
			}
		}
		return false
	})
	t.Logf("Deployment Available in %s", time.Since(start).Round(100*time.Millisecond))

	start = time.Now()
	if _, err := cs.AppsV1().StatefulSets("default").Create(ctx, testStatefulSet(), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, "StatefulSet db Ready", func() bool {
		s, err := cs.AppsV1().StatefulSets("default").Get(ctx, "db", metav1.GetOptions{})
		return err == nil && s.Status.ReadyReplicas == 1
	})
	pvc, err := cs.CoreV1().PersistentVolumeClaims("default").Get(ctx, "data-db-0", metav1.GetOptions{})
	if err != nil || pvc.Status.Phase != corev1.ClaimBound || !strings.HasPrefix(pvc.Spec.VolumeName, "strata-local-pv-") {
		t.Fatalf("claim data-db-0: %v %+v; want it Bound to a strata-local-pv", err, pvc.Status)
	}
	t.Logf("StatefulSet Ready in %s, claim bound to %s", time.Since(start).Round(100*time.Millisecond), pvc.Spec.VolumeName)

	start = time.Now()
	if err := m.Stop(ctx, name); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	t.Logf("Stop took %s", time.Since(start).Round(100*time.Millisecond))
	if st := mustStatus(t, m); st.Ready || st.Running || st.Error == "" {
		t.Fatalf("after Stop, Status = %+v; want not running, not answering", st)
	}
	if out, err := exec.Command("pgrep", "-f", dir).Output(); err == nil {
		t.Fatalf("after Stop, processes of %s still run:\n%s", dir, out)
	}

	start = time.Now()
	if err := m.Start(ctx, name); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Logf("Start took %s", time.Since(start).Round(100*time.Millisecond))
	if st := mustStatus(t, m); !st.Ready || !st.Running {
		t.Fatalf("after Start, Status = %+v; want ready", st)
	}
	if _, err := cs.AppsV1().Deployments("default").Get(ctx, "web", metav1.GetOptions{}); err != nil {
		t.Fatalf("after Start, Deployment web: %v", err)
	}
	waitFor(ctx, t, "StatefulSet db Ready after Start", func() bool {
		s, err := cs.AppsV1().StatefulSets("default").Get(ctx, "db", metav1.GetOptions{})
		return err == nil && s.Status.ReadyReplicas == 1
	})
	// The controllers work at once after a restart (no leader lease of the
	// killed instances to wait out).
	start = time.Now()
	if _, err := cs.AppsV1().Deployments("default").UpdateScale(ctx, "web", &autoscalingv1.Scale{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"}, Spec: autoscalingv1.ScaleSpec{Replicas: 2},
	}, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, "Deployment web scaled to 2 after Start", func() bool {
		d, err := cs.AppsV1().Deployments("default").Get(ctx, "web", metav1.GetOptions{})
		return err == nil && d.Status.AvailableReplicas == 2
	})
	t.Logf("after Start, Deployment scaled to 2 Available in %s", time.Since(start).Round(100*time.Millisecond))

	// A claim deleted with its StatefulSet releases its volume; Up makes it
	// Available again so the pool does not run dry.
	if err := cs.AppsV1().StatefulSets("default").Delete(ctx, "db", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, "pod db-0 deleted", func() bool {
		_, err := cs.CoreV1().Pods("default").Get(ctx, "db-0", metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	})
	if err := cs.CoreV1().PersistentVolumeClaims("default").Delete(ctx, "data-db-0", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, "volume "+pvc.Spec.VolumeName+" Released", func() bool {
		pv, err := cs.CoreV1().PersistentVolumes().Get(ctx, pvc.Spec.VolumeName, metav1.GetOptions{})
		return err == nil && pv.Status.Phase == corev1.VolumeReleased
	})
	if err := m.Up(ctx, name); err != nil {
		t.Fatalf("Up to recycle volumes: %v", err)
	}
	waitFor(ctx, t, "volume "+pvc.Spec.VolumeName+" Available again", func() bool {
		pv, err := cs.CoreV1().PersistentVolumes().Get(ctx, pvc.Spec.VolumeName, metav1.GetOptions{})
		return err == nil && pv.Status.Phase == corev1.VolumeAvailable
	})

	// Up on a stopped cluster starts it.
	if err := m.Stop(ctx, name); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if err := m.Up(ctx, name); err != nil {
		t.Fatalf("Up of a stopped cluster: %v", err)
	}
	if st := mustStatus(t, m); !st.Ready {
		t.Fatalf("after Up of a stopped cluster, Status = %+v", st)
	}

	start = time.Now()
	if err := m.Down(ctx, name); err != nil {
		t.Fatalf("Down: %v", err)
	}
	t.Logf("Down took %s", time.Since(start).Round(100*time.Millisecond))
	if out, err := exec.Command("pgrep", "-f", dir).Output(); err == nil {
		t.Errorf("after Down, processes of %s still run:\n%s", dir, out)
	}
	if entries, err := os.ReadDir(home); err != nil || len(entries) != 0 {
		t.Errorf("after Down, %s holds %v (%v); want nothing", home, entries, err)
	}
	if err := m.Down(ctx, name); err != nil {
		t.Errorf("Down of a deleted cluster: %v", err)
	}
	if sts, err := m.Status(ctx); err != nil || len(sts) != 0 {
		t.Errorf("after Down, Status = %v, %v; want no clusters", sts, err)
	}
}

func mustStatus(t *testing.T, m *Manager) ClusterStatus {
	t.Helper()
	sts, err := m.Status(context.Background())
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	if len(sts) != 1 {
		t.Fatalf("Status = %+v; want one cluster", sts)
	}
	return sts[0]
}

func waitFor(ctx context.Context, t *testing.T, what string, ok func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for !ok() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func testDeployment() *appsv1.Deployment {
	labels := map[string]string{"app": "web"}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: appsv1.DeploymentSpec{
			Replicas: new(int32(1)),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "web", Image: "registry.example/web:1",
					Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
						corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("1Gi"),
					}},
				}}},
			},
		},
	}
}

func testStatefulSet() *appsv1.StatefulSet {
	labels := map[string]string{"app": "db"}
	return &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "default"},
		Spec: appsv1.StatefulSetSpec{
			Replicas:    new(int32(1)),
			ServiceName: "db",
			Selector:    &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "db", Image: "registry.example/db:1",
					VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/var/lib/db"}},
				}}},
			},
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{
				ObjectMeta: metav1.ObjectMeta{Name: "data"},
				Spec: corev1.PersistentVolumeClaimSpec{
					AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
					Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{
						corev1.ResourceStorage: resource.MustParse("10Gi"),
					}},
				},
			}},
		},
	}
}

func TestValidateName(t *testing.T) {
	for _, n := range []string{"public", "onprem", "lc-test-0a1b2c", "a"} {
		if err := ValidateName(n); err != nil {
			t.Errorf("ValidateName(%q) = %v", n, err)
		}
	}
	for _, n := range []string{"", "Public", "../x", "a/b", "-a", "a-", strings.Repeat("a", 64)} {
		if err := ValidateName(n); err == nil {
			t.Errorf("ValidateName(%q) = nil, want an error", n)
		}
	}
}

func TestPickPorts(t *testing.T) {
	used := map[int]bool{}
	for p := portMin; p < portMin+5000; p++ {
		used[p] = true
	}
	ports, err := pickPorts(6, used)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range ports {
		if p < portMin || p >= portMax || used[p] || seen[p] {
			t.Errorf("port %d: outside %d-%d, used or repeated (%v)", p, portMin, portMax, ports)
		}
		seen[p] = true
	}
}

func TestUsedPortsReadsClusterConfigs(t *testing.T) {
	m := New(Options{Home: t.TempDir()})
	dir := m.ClusterDir("a")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	conf := "apiVersion: config.kwok.x-k8s.io/v1alpha1\nkind: KwokctlConfiguration\noptions:\n  etcdPeerPort: 21001\n  kubeApiserverPort: 21003\n  kubeApiserverInsecurePort: 0\ncomponents:\n- ports:\n  - name: http\n    port: 21002\n"
	if err := os.WriteFile(filepath.Join(dir, "kwok.yaml"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	used := m.usedPorts()
	for _, p := range []int{21001, 21002, 21003} {
		if !used[p] {
			t.Errorf("port %d not in %v", p, used)
		}
	}
}

func TestSummarize(t *testing.T) {
	out := []byte(`{"time":"x","level":"INFO","msg":"Cluster is creating","cluster":"a"}
{"time":"x","level":"ERROR","msg":"Failed to start","cluster":"a","err":"port in use"}
`)
	got := summarize(out)
	if !strings.Contains(got, "Failed to start cluster=a err=port in use") || strings.Contains(got, "creating") {
		t.Errorf("summarize = %q", got)
	}
}

func TestDownOfEmptyHome(t *testing.T) {
	home := t.TempDir()
	m := New(Options{Home: filepath.Join(home, "strata")})
	if err := m.Down(context.Background()); err != nil {
		t.Fatalf("Down: %v", err)
	}
	if sts, err := m.Status(context.Background()); err != nil || len(sts) != 0 {
		t.Fatalf("Status = %v, %v", sts, err)
	}
}

func TestEnsureBinariesWithoutCheckout(t *testing.T) {
	m := New(Options{Home: t.TempDir(), Bin: t.TempDir()})
	t.Chdir(t.TempDir())
	err := m.EnsureBinaries(context.Background())
	if err == nil || !strings.Contains(err.Error(), "make tools") {
		t.Fatalf("EnsureBinaries outside a checkout = %v; want an error naming `make tools`", err)
	}
}

func TestEnsureBinariesPresent(t *testing.T) {
	bin := t.TempDir()
	for _, b := range Binaries {
		if err := os.WriteFile(filepath.Join(bin, b), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var progress bytes.Buffer
	m := New(Options{Home: t.TempDir(), Bin: bin, Progress: &progress})
	if err := m.EnsureBinaries(context.Background()); err != nil || progress.Len() != 0 {
		t.Fatalf("EnsureBinaries = %v, progress %q; want nothing done", err, progress.String())
	}
	if err := os.Remove(filepath.Join(bin, "kwok")); err != nil {
		t.Fatal(err)
	}
	if got := m.MissingBinaries(); len(got) != 1 || got[0] != "kwok" {
		t.Fatalf("MissingBinaries = %v", got)
	}
}
