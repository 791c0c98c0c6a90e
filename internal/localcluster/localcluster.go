// Package localcluster builds the Kubernetes control-plane binaries once and
// runs local clusters with kwokctl's binary runtime (no Docker): a real
// etcd, kube-apiserver, kube-controller-manager and kube-scheduler per
// cluster, plus kwok's controller and one fake Node so that Pods schedule,
// Deployments become Available and StatefulSets with volume claims become
// Ready. The demo's `strata dev up` and the end-to-end tests use it.
//
// Layout under Home (default $STRATA_HOME or ~/.strata):
//
//	clusters/<name>.kubeconfig   self-contained admin kubeconfig of each cluster
//	kwok/clusters/<name>/        kwokctl's workdir (KWOK_WORKDIR=Home/kwok):
//	                             config, pki, etcd data, logs/, pids/
package localcluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

// DefaultClusters are the clusters of the demo's prod environment.
var DefaultClusters = []string{"public", "private", "onprem"}

// Binaries are the programs that must be in Options.Bin.
var Binaries = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kwok", "kwokctl"}

// DefaultVolumes is how many static PersistentVolumes Up creates per cluster.
const DefaultVolumes = 4

// Options configure a Manager. Zero fields take their defaults.
type Options struct {
	// Home holds kubeconfigs and kwok's state; default $STRATA_HOME or ~/.strata.
	Home string
	// Bin holds the control-plane binaries; default $STRATA_BIN or ~/.cache/strata/bin.
	Bin string
	// Progress receives one line per step with its elapsed time; nil discards.
	Progress io.Writer
	// Log receives debug details (kwokctl invocations and output); nil discards.
	Log *slog.Logger
	// Volumes is the number of static PersistentVolumes (50Gi, RWO, no storage
	// class) created in every cluster so that claims without a storage class
	// bind; 0 means DefaultVolumes, negative means none.
	Volumes int
	// ReadyTimeout bounds the wait for a cluster's apiserver, node and default
	// ServiceAccount; default 4 minutes (2 ran out on a 2-CPU machine at load 30).
	ReadyTimeout time.Duration
}

// DefaultOptions returns the options taken from the environment.
func DefaultOptions() Options {
	return Options{Home: DefaultHome(), Bin: DefaultBin(), Volumes: DefaultVolumes, ReadyTimeout: 4 * time.Minute}
}

// DefaultHome is $STRATA_HOME, or ~/.strata.
func DefaultHome() string {
	if h := os.Getenv("STRATA_HOME"); h != "" {
		return h
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".strata")
	}
	return ".strata"
}

// DefaultBin is $STRATA_BIN, or ~/.cache/strata/bin.
func DefaultBin() string {
	if b := os.Getenv("STRATA_BIN"); b != "" {
		return b
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".cache", "strata", "bin")
	}
	return filepath.Join(".cache", "strata", "bin")
}

// Manager creates, lists, stops, starts and deletes the local clusters under
// one Home. Its methods are safe for concurrent use.
type Manager struct {
	home, bin    string
	volumes      int
	readyTimeout time.Duration
	log          *slog.Logger

	mu       sync.Mutex // serializes Progress writes
	progress io.Writer

	portsMu  sync.Mutex
	reserved map[int]bool // ports picked by this Manager's creates
}

// New returns a Manager for o, filling defaults.
func New(o Options) *Manager {
	d := DefaultOptions()
	if o.Home == "" {
		o.Home = d.Home
	}
	if o.Bin == "" {
		o.Bin = d.Bin
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	switch {
	case o.Volumes == 0:
		o.Volumes = DefaultVolumes
	case o.Volumes < 0:
		o.Volumes = 0
	}
	if o.ReadyTimeout <= 0 {
		o.ReadyTimeout = d.ReadyTimeout
	}
	home, err := filepath.Abs(o.Home)
	if err != nil {
		home = o.Home
	}
	bin, err := filepath.Abs(o.Bin)
	if err != nil {
		bin = o.Bin
	}
	return &Manager{home: home, bin: bin, volumes: o.Volumes, readyTimeout: o.ReadyTimeout, log: o.Log, progress: o.Progress, reserved: map[int]bool{}}
}

// Home is the directory holding the clusters' state.
func (m *Manager) Home() string { return m.home }

// Bin is the directory holding the control-plane binaries.
func (m *Manager) Bin() string { return m.bin }

// KubeconfigDir is Home/clusters, where every cluster's kubeconfig is.
func (m *Manager) KubeconfigDir() string { return filepath.Join(m.home, "clusters") }

// KubeconfigPath is Home/clusters/<name>.kubeconfig.
func (m *Manager) KubeconfigPath(name string) string {
	return filepath.Join(m.KubeconfigDir(), name+".kubeconfig")
}

// Workdir is kwokctl's KWOK_WORKDIR, Home/kwok.
func (m *Manager) Workdir() string { return filepath.Join(m.home, "kwok") }

// ClusterDir is the directory kwokctl keeps one cluster's state in.
func (m *Manager) ClusterDir(name string) string {
	return filepath.Join(m.Workdir(), "clusters", name)
}

func (m *Manager) printf(format string, args ...any) {
	m.mu.Lock()
	defer m.mu.Unlock()
	fmt.Fprintf(m.progress, format+"\n", args...)
}

func since(t time.Time) string {
	return fmt.Sprintf("%.1fs", time.Since(t).Seconds())
}

var nameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)

// ValidateName reports whether name can be a cluster name (a DNS label).
func ValidateName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("invalid cluster name %q: use lower-case letters, digits and '-' (a DNS label)", name)
	}
	return nil
}

func validateNames(names []string) error {
	var errs []error
	for _, n := range names {
		if err := ValidateName(n); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Clusters lists the clusters kwokctl knows under Home, sorted by name.
func (m *Manager) Clusters() ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(m.Workdir(), "clusters"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() && m.exists(e.Name()) {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	return names, nil
}

// exists reports whether kwokctl has a cluster called name under Home.
func (m *Manager) exists(name string) bool {
	_, err := os.Stat(filepath.Join(m.ClusterDir(name), "kwok.yaml"))
	return err == nil
}

// MissingBinaries returns the names of the Binaries absent from Bin.
func (m *Manager) MissingBinaries() []string {
	var missing []string
	for _, b := range Binaries {
		fi, err := os.Stat(filepath.Join(m.bin, b))
		if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			missing = append(missing, b)
		}
	}
	return missing
}

// EnsureBinaries builds the control-plane binaries and kwok into Bin when any
// is missing, by running hack/install-tools.sh of the strata checkout that
// contains the current directory, streaming its output to Progress. A cold
// build takes many minutes; later calls find the binaries and return at once.
func (m *Manager) EnsureBinaries(ctx context.Context) error {
	missing := m.MissingBinaries()
	if len(missing) == 0 {
		return nil
	}
	script, err := findInstallScript()
	if err != nil {
		return fmt.Errorf("%s missing from %s and %v: run `make tools` in a strata checkout (or set STRATA_BIN to a directory holding %s)",
			strings.Join(missing, ", "), m.bin, err, strings.Join(Binaries, ", "))
	}
	start := time.Now()
	m.printf("binaries: building %s into %s with %s (the first build takes several minutes)...", strings.Join(missing, ", "), m.bin, script)
	cmd := exec.CommandContext(ctx, "bash", script, "all")
	cmd.Dir = filepath.Dir(filepath.Dir(script))
	cmd.Env = append(os.Environ(), "STRATA_BIN="+m.bin, "GOTOOLCHAIN=local")
	w := &lockedWriter{m: m}
	cmd.Stdout, cmd.Stderr = w, w
	cmd.WaitDelay = 10 * time.Second
	done := make(chan struct{})
	go func() { // a heartbeat: go build is silent for minutes
		t := time.NewTicker(30 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				m.printf("binaries: still building (%s elapsed)...", time.Since(start).Round(time.Second))
			}
		}
	}()
	err = cmd.Run()
	close(done)
	if err != nil {
		return fmt.Errorf("building the control-plane binaries with %s: %w (see its output above; rerun `make tools` in the strata checkout)", script, err)
	}
	if missing := m.MissingBinaries(); len(missing) > 0 {
		return fmt.Errorf("%s ran but %s are still missing from %s: run `make tools` and check its output", script, strings.Join(missing, ", "), m.bin)
	}
	m.printf("binaries: ready in %s after %s", m.bin, since(start))
	return nil
}

// lockedWriter writes to the Manager's Progress under its lock.
type lockedWriter struct{ m *Manager }

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.m.mu.Lock()
	defer w.m.mu.Unlock()
	return w.m.progress.Write(p)
}

// findInstallScript walks up from the current directory to a strata checkout's
// hack/install-tools.sh.
func findInstallScript() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, "hack", "install-tools.sh")
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no hack/install-tools.sh in the current directory or above it")
		}
		dir = parent
	}
}
