package localcluster

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/strata-gitops/strata/internal/config"
	"github.com/strata-gitops/strata/internal/labels"
)

// NodeName is the fake Node that Up adds to every cluster; kwok's controller
// plays its kubelet, so Pods bound to it become Running and Ready.
const NodeName = "kwok-node-0"

// VolumeName is the name of the i-th static PersistentVolume Up creates.
func VolumeName(i int) string { return fmt.Sprintf("strata-local-pv-%d", i) }

// ClusterStatus is what Status reports about one cluster.
type ClusterStatus struct {
	Name       string `json:"name"`
	Kubeconfig string `json:"kubeconfig"`
	Server     string `json:"server,omitempty"`
	// Running: every process of the cluster is alive (false after Stop).
	Running bool `json:"running"`
	// Ready: the apiserver answered /readyz with ok within 2 seconds.
	Ready   bool   `json:"ready"`
	Version string `json:"version,omitempty"`
	Error   string `json:"error,omitempty"`
}

// Up makes the named clusters (DefaultClusters when none are named) run and
// accept workloads: it builds the binaries if needed, creates each missing
// cluster, starts each stopped one, waits for its apiserver, and ensures the
// fake Node, the static PersistentVolumes and the default ServiceAccount.
// Clusters are brought up concurrently; calling Up again changes nothing.
func (m *Manager) Up(ctx context.Context, names ...string) error {
	if len(names) == 0 {
		names = DefaultClusters
	}
	if err := validateNames(names); err != nil {
		return err
	}
	var uniq []string
	for _, n := range names {
		if !slices.Contains(uniq, n) {
			uniq = append(uniq, n)
		}
	}
	if err := m.EnsureBinaries(ctx); err != nil {
		return err
	}
	errs := make([]error, len(uniq))
	var wg sync.WaitGroup
	for i, n := range uniq {
		wg.Go(func() { errs[i] = m.upOne(ctx, n) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (m *Manager) upOne(ctx context.Context, name string) error {
	start := time.Now()
	running := false
	if m.exists(name) {
		if _, err := os.Stat(m.KubeconfigPath(name)); err != nil {
			if err := m.writeKubeconfig(ctx, name); err != nil {
				return err
			}
		}
		alive, all := m.processes(name)
		switch {
		case alive > 0 && alive == all:
			running = true
			m.printf("cluster %s: already running", name)
		default:
			if alive > 0 {
				// Half running (a component died): restart it cleanly.
				if err := m.Stop(ctx, name); err != nil {
					return err
				}
			}
			if _, err := m.kwokctl(ctx, "--name", name, "start", "cluster"); err != nil {
				return fmt.Errorf("starting cluster %s: %w\n(to recreate it: strata dev down --clusters %s && strata dev up --clusters %s)", name, err, name, name)
			}
			m.printf("cluster %s: started in %s", name, since(start))
		}
	} else {
		if err := m.create(ctx, name); err != nil {
			return err
		}
		m.printf("cluster %s: created in %s", name, since(start))
	}
	step := time.Now()
	if err := m.waitAPIServer(ctx, name); err != nil {
		return err
	}
	if !running {
		m.printf("cluster %s: apiserver ready in %s", name, since(step))
	}
	step = time.Now()
	err := m.prepare(ctx, name)
	if errors.Is(err, errComponentDied) {
		// Once: restart the cluster's components cleanly, as for a half
		// running cluster above.
		m.printf("cluster %s: a component exited while it started; restarting the cluster", name)
		if err := m.Stop(ctx, name); err != nil {
			return err
		}
		if _, err := m.kwokctl(ctx, "--name", name, "start", "cluster"); err != nil {
			return fmt.Errorf("restarting cluster %s: %w", name, err)
		}
		if err := m.waitAPIServer(ctx, name); err != nil {
			return err
		}
		err = m.prepare(ctx, name)
	}
	if err != nil {
		return err
	}
	m.printf("cluster %s: node %s Ready, %d volumes, default ServiceAccount in %s (up in %s)",
		name, NodeName, m.volumes, since(step), since(start))
	return nil
}

// RESTConfig returns the admin client configuration of cluster name.
func (m *Manager) RESTConfig(name string) (*rest.Config, error) {
	path := m.KubeconfigPath(name)
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w (create it with `strata dev up --clusters %s`)", name, err, name)
	}
	cfg.QPS, cfg.Burst = 50, 100
	return cfg, nil
}

// Client returns a clientset for cluster name.
func (m *Manager) Client(name string) (kubernetes.Interface, error) {
	cfg, err := m.RESTConfig(name)
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(cfg)
}

// probe asks cluster name's apiserver for /readyz and its version, giving up
// after 2 seconds.
func (m *Manager) probe(ctx context.Context, name string) (string, error) {
	cfg, err := m.RESTConfig(name)
	if err != nil {
		return "", err
	}
	return probeConfig(ctx, cfg)
}

func probeConfig(ctx context.Context, cfg *rest.Config) (string, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.Timeout = 2 * time.Second
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return "", err
	}
	body, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
	if err != nil {
		return "", fmt.Errorf("/readyz: %w", err)
	}
	if strings.TrimSpace(string(body)) != "ok" {
		return "", fmt.Errorf("/readyz answered %q", body)
	}
	v, err := cs.Discovery().ServerVersion()
	if err != nil {
		return "", fmt.Errorf("version: %w", err)
	}
	return v.GitVersion, nil
}

// waitAPIServer waits until cluster name answers /readyz.
func (m *Manager) waitAPIServer(ctx context.Context, name string) error {
	ctx, cancel := context.WithTimeout(ctx, m.readyTimeout)
	defer cancel()
	var last error
	for {
		_, last = m.probe(ctx, name)
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster %s: apiserver did not become ready within %s: %v%s\n(logs in %s)",
				name, m.readyTimeout, last, logTail(filepath.Join(m.ClusterDir(name), "logs", "kube-apiserver.log"), 5),
				filepath.Join(m.ClusterDir(name), "logs"))
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func logTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	for i, l := range lines {
		if len(l) > 300 {
			lines[i] = l[:300] + "…"
		}
	}
	return "\n  " + strings.Join(lines, "\n  ")
}

// prepare makes the cluster accept workloads: the fake Node (Ready), the
// static PersistentVolumes, and the default ServiceAccount Pods need.
func (m *Manager) prepare(ctx context.Context, name string) error {
	cs, err := m.Client(name)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, m.readyTimeout)
	defer cancel()
	if err := ensureNode(ctx, cs); err != nil {
		return fmt.Errorf("cluster %s: %w", name, err)
	}
	for i := range m.volumes {
		if err := ensureVolume(ctx, cs, i); err != nil {
			return fmt.Errorf("cluster %s: %w", name, err)
		}
	}
	err = poll(ctx, func() (bool, error) {
		n, err := cs.CoreV1().Nodes().Get(ctx, NodeName, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("cluster %s: node %s did not become Ready (is kwok-controller running? see %s): %w",
			name, NodeName, filepath.Join(m.ClusterDir(name), "logs", "kwok-controller.log"), err)
	}
	err = poll(ctx, func() (bool, error) {
		_, err := cs.CoreV1().ServiceAccounts(metav1.NamespaceDefault).Get(ctx, "default", metav1.GetOptions{})
		if err != nil {
			// kube-controller-manager exits when the apiserver is slow to
			// turn healthy (a loaded machine): then nothing makes the
			// ServiceAccount, and waiting longer cannot help.
			if alive, all := m.processes(name); alive < all {
				return false, errComponentDied
			}
		}
		return err == nil, nil
	})
	if err != nil {
		return fmt.Errorf("cluster %s: ServiceAccount default/default did not appear (is kube-controller-manager running? see %s): %w",
			name, filepath.Join(m.ClusterDir(name), "logs", "kube-controller-manager.log"), err)
	}
	return nil
}

// errComponentDied: a control-plane process of the cluster exited.
var errComponentDied = errors.New("a control-plane component exited")

func poll(ctx context.Context, done func() (bool, error)) error {
	for {
		ok, err := done()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func fakeNode() *corev1.Node {
	res := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("64"),
		corev1.ResourceMemory: resource.MustParse("256Gi"),
		corev1.ResourcePods:   resource.MustParse("500"),
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: NodeName,
			Annotations: map[string]string{
				"kwok.x-k8s.io/node":           "fake",
				"node.alpha.kubernetes.io/ttl": "0",
			},
			Labels: map[string]string{
				"type":                          "kwok",
				"kubernetes.io/hostname":        NodeName,
				"kubernetes.io/os":              "linux",
				"kubernetes.io/arch":            "amd64",
				"kubernetes.io/role":            "agent",
				"node-role.kubernetes.io/agent": "",
			},
		},
		// kwok's node-initialize stage adds the conditions (Ready), addresses
		// and node info, as a kubelet would, and then heartbeats the status.
		Status: corev1.NodeStatus{Capacity: res, Allocatable: res.DeepCopy()},
	}
}

// ensureNode creates the fake Node when absent and gives it its capacity.
func ensureNode(ctx context.Context, cs kubernetes.Interface) error {
	want := fakeNode()
	n, err := cs.CoreV1().Nodes().Get(ctx, NodeName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		n, err = cs.CoreV1().Nodes().Create(ctx, want, metav1.CreateOptions{FieldManager: "strata"})
		if apierrors.IsAlreadyExists(err) {
			n, err = cs.CoreV1().Nodes().Get(ctx, NodeName, metav1.GetOptions{})
		}
	}
	if err != nil {
		return fmt.Errorf("fake node %s: %w", NodeName, err)
	}
	if n.Status.Allocatable.Cpu().Cmp(*want.Status.Allocatable.Cpu()) < 0 {
		n.Status.Capacity = want.Status.Capacity
		n.Status.Allocatable = want.Status.Allocatable
		if _, err := cs.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{FieldManager: "strata"}); err != nil && !apierrors.IsConflict(err) {
			return fmt.Errorf("fake node %s status: %w", NodeName, err)
		}
	}
	return nil
}

// ensureVolume creates the i-th static PersistentVolume when absent, and
// makes a Released one (its claim was deleted) Available again: they hold no
// data, and the pool must not run dry when tests delete claims. They are
// labeled public: a PersistentVolume needs its own sensitivity, and public
// is allowed in every tier of any tier table, so the webhook of any cluster
// admits the binder's updates; what a claim may hold is judged on the claim.
func ensureVolume(ctx context.Context, cs kubernetes.Interface, i int) error {
	name := VolumeName(i)
	pv, err := cs.CoreV1().PersistentVolumes().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		pv = &corev1.PersistentVolume{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: volumeLabels()},
			Spec: corev1.PersistentVolumeSpec{
				Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("50Gi")},
				AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
				StorageClassName:              "",
				PersistentVolumeSource: corev1.PersistentVolumeSource{
					HostPath: &corev1.HostPathVolumeSource{Path: fmt.Sprintf("/tmp/strata-pv-%d", i)},
				},
			},
		}
		_, err = cs.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{FieldManager: "strata"})
		if apierrors.IsAlreadyExists(err) {
			err = nil
		}
		if err != nil {
			return fmt.Errorf("volume %s: %w", name, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("volume %s: %w", name, err)
	}
	relabel := pv.Labels[labels.Sensitivity] == ""
	if relabel { // made before volumes were labeled
		if pv.Labels == nil {
			pv.Labels = map[string]string{}
		}
		maps.Copy(pv.Labels, volumeLabels())
	}
	if relabel || pv.Status.Phase == corev1.VolumeReleased && pv.Spec.ClaimRef != nil {
		if pv.Status.Phase == corev1.VolumeReleased {
			pv.Spec.ClaimRef = nil
		}
		if _, err := cs.CoreV1().PersistentVolumes().Update(ctx, pv, metav1.UpdateOptions{FieldManager: "strata"}); err != nil && !apierrors.IsConflict(err) {
			return fmt.Errorf("volume %s: making it Available again: %w", name, err)
		}
	}
	return nil
}

func volumeLabels() map[string]string {
	return map[string]string{"strata.dev/local-volume": "true", labels.Sensitivity: string(config.Public)}
}

// Status reports every cluster under Home: its kubeconfig, whether its
// processes run and whether its apiserver answers within 2 seconds.
func (m *Manager) Status(ctx context.Context) ([]ClusterStatus, error) {
	names, err := m.Clusters()
	if err != nil {
		return nil, err
	}
	out := make([]ClusterStatus, len(names))
	var wg sync.WaitGroup
	for i, n := range names {
		wg.Go(func() { out[i] = m.status(ctx, n) })
	}
	wg.Wait()
	return out, nil
}

func (m *Manager) status(ctx context.Context, name string) ClusterStatus {
	alive, all := m.processes(name)
	s := ClusterStatus{Name: name, Kubeconfig: m.KubeconfigPath(name), Running: alive > 0 && alive == all}
	cfg, err := m.RESTConfig(name)
	if err != nil {
		s.Error = err.Error()
		return s
	}
	s.Server = cfg.Host
	s.Version, err = probeConfig(ctx, cfg)
	if err != nil {
		s.Error = err.Error()
		return s
	}
	s.Ready = true
	return s
}
