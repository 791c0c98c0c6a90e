package reconciler

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/strata-gitops/strata/internal/apiservertest"
	"github.com/strata-gitops/strata/internal/cluster"
	"github.com/strata-gitops/strata/internal/source"
)

// A reconcile after a kubeconfig was rewritten applies with the new one:
// env-onprem's and env-private's files are swapped between two apiservers,
// and the next reconcile puts the restricted ConfigMap into the apiserver
// env-onprem's file now names, with no restart.
func TestReconcileUsesARotatedKubeconfig(t *testing.T) {
	env := "rotkc"
	cfgs := startClusters(t)
	g := newGitRepo(t)
	vault := func(v string) map[string]string {
		return merge(map[string]string{"strata.yaml": strataYAML(env, 100)}, overlay(env, map[string]string{
			"ns-vault":  namespace("rk-vault", "restricted"),
			"cm-ledger": configMap("rk-vault", "ledger", v, ""),
		}))
	}
	g.commit("first", vault("v1"))
	dir := t.TempDir()
	point := func(cluster, apiserver string) {
		apiservertest.ReplaceFile(t, filepath.Join(dir, env+"-"+cluster+".kubeconfig"), apiservertest.Kubeconfig(t, cfgs[apiserver], ""))
	}
	for _, c := range []string{"public", "private", "onprem"} {
		point(c, c)
	}
	connect := &cluster.KubeconfigDir{Dir: dir}
	t.Cleanup(connect.Close)
	repo, err := source.Open(context.Background(), g.dir, source.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	opts := DefaultOptions()
	opts.Environment, opts.Revision = env, g.branch()
	opts.PollInterval = 200 * time.Millisecond
	opts.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	r := New(repo, connect, opts)
	ctx := context.Background()

	mustSucceed(t, r.ReconcileOnce(ctx))
	direct := func(apiserver string) *cluster.Cluster {
		cl, err := cluster.NewCluster(apiserver, cfgs[apiserver])
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		return cl
	}
	onprem, private := direct("onprem"), direct("private")
	if cm, ok := getCM(t, onprem, "rk-vault", "ledger"); !ok || cm.Data["value"] != "v1" {
		t.Fatalf("the onprem apiserver has ledger %v (found %t), want v1", cm, ok)
	}

	point("onprem", "private")
	point("private", "onprem")
	g.commit("second", vault("v2"))
	mustSucceed(t, r.ReconcileOnce(ctx))
	if cm, ok := getCM(t, private, "rk-vault", "ledger"); !ok || cm.Data["value"] != "v2" {
		t.Errorf("after the kubeconfigs were swapped, the private apiserver (now env-onprem) has ledger %v (found %t), want v2", cm, ok)
	}
	if cm, ok := getCM(t, onprem, "rk-vault", "ledger"); ok {
		t.Errorf("the onprem apiserver (now env-private) kept ledger %v: it was not applied with the new kubeconfig", cm.Data)
	}
}
