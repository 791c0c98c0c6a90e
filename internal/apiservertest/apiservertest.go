// Package apiservertest starts real kube-apiservers (with etcd) for tests,
// from the binaries hack/install-tools.sh builds into ~/.cache/strata/bin
// (or $KUBEBUILDER_ASSETS). Without them a test fails, never skips: CI
// builds them.
package apiservertest

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// startTimeout is generous: on a loaded 2-CPU machine envtest's default
// (20 s) ran out while six builds competed for the CPUs.
const startTimeout = 2 * time.Minute

// assets returns where the binaries are, setting KUBEBUILDER_ASSETS to the
// cache when it is unset (envtest reads it).
func assets() string {
	if a := os.Getenv("KUBEBUILDER_ASSETS"); a != "" {
		return a
	}
	home, _ := os.UserHomeDir()
	a := filepath.Join(home, ".cache", "strata", "bin")
	os.Setenv("KUBEBUILDER_ASSETS", a)
	return a
}

func start() (*envtest.Environment, *rest.Config, error) {
	a := assets()
	for _, bin := range []string{"kube-apiserver", "etcd"} {
		if _, err := os.Stat(filepath.Join(a, bin)); err != nil {
			return nil, nil, fmt.Errorf("%s not in KUBEBUILDER_ASSETS=%s: run make tools-envtest", bin, a)
		}
	}
	env := &envtest.Environment{ControlPlaneStartTimeout: startTimeout}
	cfg, err := env.Start()
	if err != nil {
		_ = env.Stop()
		return nil, nil, fmt.Errorf("starting a kube-apiserver from KUBEBUILDER_ASSETS=%s (run make tools-envtest): %w", a, err)
	}
	return env, cfg, nil
}

// Start starts an apiserver for t, stopped when t ends. The environment
// gives its admin kubeconfig (KubeConfig).
func Start(t testing.TB) (*envtest.Environment, *rest.Config) {
	t.Helper()
	env, cfg, err := start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Logf("stopping the apiserver: %v", err)
		}
	})
	return env, cfg
}

// Shared starts named apiservers once for a whole test binary, in
// parallel; the package's TestMain calls Stop after m.Run.
type Shared struct {
	once sync.Once
	cfgs map[string]*rest.Config
	envs []*envtest.Environment
	err  error
}

// Start returns the shared apiservers by name, starting them at the first
// call.
func (s *Shared) Start(t testing.TB, names ...string) map[string]*rest.Config {
	t.Helper()
	s.once.Do(func() {
		s.cfgs = map[string]*rest.Config{}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, name := range names {
			wg.Add(1)
			go func() {
				defer wg.Done()
				env, cfg, err := start()
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					s.err = err
					return
				}
				s.envs = append(s.envs, env)
				s.cfgs[name] = cfg
			}()
		}
		wg.Wait()
	})
	if s.err != nil {
		t.Fatal(s.err)
	}
	return s.cfgs
}

// Stop stops every apiserver Start started.
func (s *Shared) Stop() {
	for _, e := range s.envs {
		_ = e.Stop()
	}
}
