package cluster

import (
	"os"
	"testing"

	"k8s.io/client-go/rest"

	"github.com/strata-gitops/strata/internal/apiservertest"
)

var apiservers apiservertest.Shared

func TestMain(m *testing.M) {
	code := m.Run()
	apiservers.Stop()
	os.Exit(code)
}

// startClusters starts two apiservers, "a" and "b", once: enough to tell
// whether a connection follows rotated credentials to another apiserver.
func startClusters(t *testing.T) map[string]*rest.Config {
	t.Helper()
	return apiservers.Start(t, "a", "b")
}
