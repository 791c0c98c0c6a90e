package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/fluxcd/pkg/gittestserver"
	"github.com/go-git/go-git/v5"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/strata-gitops/strata/internal/labels"
	"github.com/strata-gitops/strata/internal/localcluster"
)

// chartValues are the values every release shares: the demo's strata.yaml
// and policies, the git server, the demo reviewers' keys as root of trust,
// and 127.0.0.1 in the webhook's certificate (the registration's URL).
func chartValues(t *testing.T, root, repoURL string) []string {
	t.Helper()
	fps, err := json.Marshal(demoPin(t).Fingerprints())
	must(t, err)
	v := []string{
		"--set-file", "config=" + filepath.Join(root, "strata.yaml"),
		"--set", "reconciler.repo.url=" + repoURL,
		"--set-json", "reconciler.trustedKeys=" + string(fps),
		"--set-json", `webhook.extraArgs=["--cert-host=127.0.0.1"]`,
	}
	files, err := filepath.Glob(filepath.Join(root, "policies", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no policies in %s: %v", filepath.Join(root, "policies"), err)
	}
	for _, f := range files {
		v = append(v, "--set-file", "policies."+strings.ReplaceAll(filepath.Base(f), ".", `\.`)+"="+f)
	}
	return v
}

// chartHelm is helm from $STRATA_BIN; the test fails without it.
func chartHelm(t *testing.T) string {
	t.Helper()
	p := filepath.Join(localcluster.DefaultBin(), "helm")
	if fi, err := os.Stat(p); err != nil || fi.Mode()&0o111 == 0 {
		t.Fatalf("helm is missing from %s: build it with `hack/install-tools.sh helm` (make tools), or set STRATA_BIN", localcluster.DefaultBin())
	}
	return p
}

func chartDirOf(t *testing.T, root string) string { return filepath.Join(root, "charts", "strata") }

// renderChart runs helm template for release strata in strata-system.
func renderChart(t *testing.T, helm, chartDir string, args ...string) []*unstructured.Unstructured {
	t.Helper()
	home := t.TempDir()
	cmd := exec.Command(helm, append([]string{"template", "strata", chartDir, "--namespace", labels.SystemNamespace}, args...)...)
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+home, "HELM_CONFIG_HOME="+home, "HELM_DATA_HOME="+home)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("helm template: %v\n%s", err, stderr.String())
	}
	var objs []*unstructured.Unstructured
	d := utilyaml.NewYAMLOrJSONDecoder(&stdout, 4096)
	for {
		var m map[string]any
		if err := d.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return objs
			}
			t.Fatalf("helm template output: %v", err)
		}
		if len(m) > 0 {
			objs = append(objs, &unstructured.Unstructured{Object: m})
		}
	}
}

// brokenChart copies the chart with old replaced by new in templates/file.
func brokenChart(t *testing.T, root, file, old, new string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "strata")
	if out, err := exec.Command("cp", "-r", chartDirOf(t, root), dir).CombinedOutput(); err != nil {
		t.Fatalf("copying the chart: %v: %s", err, out)
	}
	p := filepath.Join(dir, "templates", file)
	b, err := os.ReadFile(p)
	must(t, err)
	if !strings.Contains(string(b), old) {
		t.Fatalf("templates/%s no longer contains %q: update this test's breaks", file, old)
	}
	must(t, os.WriteFile(p, []byte(strings.ReplaceAll(string(b), old, new)), 0o644))
	return dir
}

func deploymentOf(t *testing.T, objs []*unstructured.Unstructured, component string) *appsv1.Deployment {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == "Deployment" && o.GetLabels()["app.kubernetes.io/component"] == component {
			return typedDeployment(t, o)
		}
	}
	t.Fatalf("the chart renders no %s Deployment", component)
	return nil
}

func typedDeployment(t *testing.T, o *unstructured.Unstructured) *appsv1.Deployment {
	t.Helper()
	var d appsv1.Deployment
	must(t, runtimeConvert(o, &d))
	if d.Namespace == "" {
		d.Namespace = labels.SystemNamespace
	}
	return &d
}

func runtimeConvert(o *unstructured.Unstructured, into any) error {
	b, err := json.Marshal(o.Object)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, into)
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", ":0")
	must(t, err)
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// chartGit is the demo config repository on a git server over HTTP, as a
// reconciler in a cluster would reach it.
type chartGit struct {
	url, dir string
	repo     *git.Repository
}

func chartGitServer(t *testing.T) *chartGit {
	t.Helper()
	srv, err := gittestserver.NewTempGitServer()
	must(t, err)
	t.Cleanup(func() { os.RemoveAll(srv.Root()) })
	srv.AutoCreate()
	must(t, srv.StartHTTP())
	t.Cleanup(srv.StopHTTP)
	dir, r := demoRepo(t)
	g := &chartGit{url: srv.HTTPAddress() + "/platform/config.git", dir: dir, repo: r}
	(&workClone{t: t, dir: dir}).git("remote", "add", "origin", g.url)
	g.push(t)
	return g
}

func (g *chartGit) push(t *testing.T) {
	(&workClone{t: t, dir: g.dir}).git("push", "-q", "origin", "HEAD:refs/heads/main", "refs/notes/strata-approvals")
}

func (g *chartGit) head(t *testing.T) string {
	return (&workClone{t: t, dir: g.dir}).git("rev-parse", "HEAD")
}
