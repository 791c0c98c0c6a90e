package cli_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-gitops/strata/internal/apiservertest"
	"github.com/strata-gitops/strata/internal/audit"
	"github.com/strata-gitops/strata/internal/inventory"
)

// startCluster starts a real apiserver (envtest) and writes its kubeconfig
// as DIR/<name>.kubeconfig.
func startCluster(t *testing.T, name string) (string, client.Client) {
	t.Helper()
	env, cfg := apiservertest.Start(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, name+".kubeconfig"), env.KubeConfig, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return dir, c
}

// strata suspend records who (as the apiserver knows them), when and why
// in the cluster and audits it; strata status shows it; strata resume
// lifts it. A cluster without credentials fails loudly.
func TestSuspendAndResumeCommands(t *testing.T) {
	r := demoRepo(t)
	kc, c := startCluster(t, "onprem")
	ctx := context.Background()

	code, _, _ := strata(t, "suspend", "--repo", r.dir, "--env", "prod", "--cluster", "onprem", "--kubeconfig-dir", kc)
	if code == 0 {
		t.Error("suspend without --reason succeeded")
	}
	out := mustRun(t, "suspend", "--repo", r.dir, "--env", "prod", "--cluster", "onprem", "--kubeconfig-dir", kc, "--reason", "INC-4711 ledger-db hand fix")
	if !strings.Contains(out, "suspended: strata applies, corrects and prunes nothing here") || !strings.Contains(out, "strata resume --env prod --cluster onprem") {
		t.Errorf("suspend output:\n%s", out)
	}
	s, err := inventory.LoadSuspension(ctx, c, "prod")
	if err != nil || s == nil {
		t.Fatalf("no suspension recorded in the cluster: %v, %v", s, err)
	}
	if s.Reason != "INC-4711 ledger-db hand fix" || strings.Contains(s.By, "local user") || s.By == "" || time.Since(s.At) > time.Minute {
		t.Errorf("suspension = %+v; want the reason, the apiserver's user name and now", s)
	}
	events, err := audit.Read(ctx, c, time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(events, func(e audit.Event) bool {
		return e.Kind == audit.Suspend && e.Actor == s.By && e.Message == s.Reason && e.Cluster == "onprem"
	}) {
		t.Errorf("no suspend audit event by %s: %+v", s.By, events)
	}

	_, status, _ := strata(t, "status", "--repo", r.dir, "--env", "prod", "--kubeconfig-dir", kc)
	if !strings.Contains(status, "SUSPENDED") || !strings.Contains(status, "onprem: suspended by "+s.By) || !strings.Contains(status, "INC-4711") {
		t.Errorf("status does not show the suspension:\n%s", status)
	}

	// Every cluster: the ones without credentials fail loudly.
	code, out, stderr := strata(t, "suspend", "--repo", r.dir, "--env", "prod", "--kubeconfig-dir", kc, "--reason", "INC-4712")
	if code != 1 || !strings.Contains(out, "NOT suspended, strata may still apply here") || !strings.Contains(stderr, "2 of 3 clusters of prod could not suspend") {
		t.Errorf("suspend of every cluster: exit %d\n%s\n%s", code, out, stderr)
	}

	out = mustRun(t, "resume", "--repo", r.dir, "--env", "prod", "--cluster", "onprem", "--kubeconfig-dir", kc)
	if !strings.Contains(out, "resumed") || !strings.Contains(out, "INC-4712") {
		t.Errorf("resume output:\n%s", out)
	}
	if s, err := inventory.LoadSuspension(ctx, c, "prod"); err != nil || s != nil {
		t.Errorf("after resume: %v, %v", s, err)
	}
	out = mustRun(t, "resume", "--repo", r.dir, "--env", "prod", "--cluster", "onprem", "--kubeconfig-dir", kc)
	if !strings.Contains(out, "was not suspended") {
		t.Errorf("second resume:\n%s", out)
	}
	code, _, stderr = strata(t, "suspend", "--repo", r.dir, "--env", "prod", "--cluster", "nowhere", "--kubeconfig-dir", kc, "--reason", "x")
	if code == 0 || !strings.Contains(stderr, `cluster "nowhere" is not in environment prod`) {
		t.Errorf("unknown cluster: exit %d %s", code, stderr)
	}
}
