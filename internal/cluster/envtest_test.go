package cluster

import (
	"os"
	"path/filepath"
	"sync"
	"testing"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

var (
	apiserversOnce sync.Once
	apiserverCfgs  map[string]*rest.Config
	apiserversErr  error
	testEnvs       []*envtest.Environment
)

func TestMain(m *testing.M) {
	code := m.Run()
	for _, e := range testEnvs {
		_ = e.Stop()
	}
	os.Exit(code)
}

// startClusters starts two apiservers, "a" and "b", once: enough to tell
// whether a connection follows rotated credentials to another apiserver.
// Without binaries the test fails (not skips): CI builds them with
// hack/install-tools.sh.
func startClusters(t *testing.T) map[string]*rest.Config {
	t.Helper()
	apiserversOnce.Do(func() {
		if os.Getenv("KUBEBUILDER_ASSETS") == "" {
			home, _ := os.UserHomeDir()
			os.Setenv("KUBEBUILDER_ASSETS", filepath.Join(home, ".cache", "strata", "bin"))
		}
		apiserverCfgs = map[string]*rest.Config{}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, name := range []string{"a", "b"} {
			wg.Add(1)
			go func(name string) {
				defer wg.Done()
				e := &envtest.Environment{}
				cfg, err := e.Start()
				mu.Lock()
				defer mu.Unlock()
				testEnvs = append(testEnvs, e)
				if err != nil {
					apiserversErr = err
					return
				}
				apiserverCfgs[name] = cfg
			}(name)
		}
		wg.Wait()
	})
	if apiserversErr != nil {
		t.Fatalf("starting envtest apiservers (KUBEBUILDER_ASSETS=%s; run make tools-envtest): %v", os.Getenv("KUBEBUILDER_ASSETS"), apiserversErr)
	}
	return apiserverCfgs
}
