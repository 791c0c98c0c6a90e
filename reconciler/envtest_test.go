package reconciler

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/object"
	"k8s.io/client-go/rest"

	"github.com/strata-gitops/strata/internal/apiservertest"
	"github.com/strata-gitops/strata/internal/cluster"
	"github.com/strata-gitops/strata/internal/source"
)

// testClusters are three real apiservers (envtest: kube-apiserver + etcd),
// shared by the tests of this package; each test uses its own environment
// name so that inventories and objects do not collide.
var testClusters apiservertest.Shared

func TestMain(m *testing.M) {
	code := m.Run()
	testClusters.Stop()
	os.Exit(code)
}

// startClusters starts the three apiservers once.
func startClusters(t *testing.T) map[string]*rest.Config {
	t.Helper()
	return testClusters.Start(t, "public", "private", "onprem")
}

// gitRepo is a config repository in a temp dir, committed with go-git.
type gitRepo struct {
	t    *testing.T
	dir  string
	repo *git.Repository
}

func newGitRepo(t *testing.T) *gitRepo {
	dir := t.TempDir()
	r, err := git.PlainInit(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	return &gitRepo{t: t, dir: dir, repo: r}
}

// commit writes files (path → content; "" deletes) and commits them.
func (g *gitRepo) commit(msg string, files map[string]string) string {
	g.t.Helper()
	wt, err := g.repo.Worktree()
	if err != nil {
		g.t.Fatal(err)
	}
	for p, content := range files {
		full := filepath.Join(g.dir, p)
		if content == "" {
			if _, err := wt.Remove(p); err != nil {
				g.t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			g.t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			g.t.Fatal(err)
		}
		if _, err := wt.Add(p); err != nil {
			g.t.Fatal(err)
		}
	}
	h, err := wt.Commit(msg, &git.CommitOptions{Author: &object.Signature{Name: "test", Email: "test@example.com", When: time.Now()}})
	if err != nil {
		g.t.Fatal(err)
	}
	return h.String()
}

func (g *gitRepo) branch() string {
	h, err := g.repo.Head()
	if err != nil {
		g.t.Fatal(err)
	}
	return h.Name().Short()
}

// strataYAML returns a strata.yaml with environment env on the three test
// clusters and the approval gate explicitly off (tests of other things).
func strataYAML(env string, maxPrune int) string {
	return clustersYAML(env, maxPrune) + "approvals: {public: 0, internal: 0, confidential: 0, restricted: 0, enforce: false}\n"
}

// gatedStrataYAML is strataYAML with the approval gate on.
func gatedStrataYAML(env string) string {
	return clustersYAML(env, 100) + "approvals: {public: 0, internal: 1, confidential: 1, restricted: 2}\n"
}

func clustersYAML(env string, maxPrune int) string {
	return `apiVersion: strata.dev/v1alpha1
kind: Config
environments:
  ` + env + `:
    path: overlays/` + env + `
    clusters:
      - {name: ` + env + `-public,  tier: public-cloud}
      - {name: ` + env + `-private, tier: private-cloud}
      - {name: ` + env + `-onprem,  tier: on-prem}
rollout:
  maxPrunePercent: ` + strconv.Itoa(maxPrune) + `
  healthTimeout: 20s
`
}

// newTestReconciler connects env-public/private/onprem to the three apiservers.
func newTestReconciler(t *testing.T, g *gitRepo, env string, mutate func(*Options), down ...string) (*Reconciler, cluster.Static) {
	t.Helper()
	cfgs := startClusters(t)
	static := cluster.Static{}
	for _, short := range []string{"public", "private", "onprem"} {
		cfg := cfgs[short]
		if slices.Contains(down, short) {
			cfg = &rest.Config{Host: "https://127.0.0.1:1"} // nothing listens: unreachable
		}
		cl, err := cluster.NewCluster(env+"-"+short, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		static[env+"-"+short] = cl
	}
	repo, err := source.Open(context.Background(), g.dir, source.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	opts := DefaultOptions()
	opts.Environment, opts.Revision = env, g.branch()
	opts.PollInterval = 200 * time.Millisecond
	opts.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		opts.Log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if mutate != nil {
		mutate(&opts)
	}
	return New(repo, static, opts), static
}
