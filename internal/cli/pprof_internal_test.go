package cli

import (
	"testing"

	"github.com/spf13/cobra"
)

// The pprof endpoints expose the process's memory — decrypted Secrets in
// the reconciler, admitted objects in the webhook — to whoever reaches the
// metrics address, which in a cluster is often any Pod. Both commands must
// serve them only when asked for.
func TestPprofIsOffUnlessAsked(t *testing.T) {
	for _, cmd := range []*cobra.Command{newReconcileCommand(), newWebhookCommand()} {
		f := cmd.Flags().Lookup("enable-pprof")
		if f == nil {
			t.Fatalf("%s has no --enable-pprof flag", cmd.Name())
		}
		if f.DefValue != "false" {
			t.Errorf("%s --enable-pprof defaults to %s, want false", cmd.Name(), f.DefValue)
		}
	}
	if h := pprofHandlers(false); len(h) != 0 {
		t.Errorf("pprofHandlers(false) serves %d paths, want none", len(h))
	}
	if h := pprofHandlers(true); h["/debug/pprof/"] == nil {
		t.Errorf("pprofHandlers(true) lacks /debug/pprof/: %v", h)
	}
}
