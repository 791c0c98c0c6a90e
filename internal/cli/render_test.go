package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/pkg/gittestserver"
	"github.com/go-git/go-git/v5"
	gitconfig "github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing/object"
	"sigs.k8s.io/kustomize/kyaml/kio"

	"github.com/strata-gitops/strata/internal/cli"
	"github.com/strata-gitops/strata/internal/labels"
)

// strata runs the command line in-process and returns its exit code, stdout
// and stderr.
func strata(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code := cli.Run(ctx, args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// mustRun runs strata and fails the test unless it exits 0.
func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	code, stdout, stderr := strata(t, args...)
	if code != 0 {
		t.Fatalf("strata %s: exit %d\nstderr:\n%s", strings.Join(args, " "), code, stderr)
	}
	return stdout
}

// moduleRoot finds the directory holding go.mod above the test's directory.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test directory")
		}
		dir = parent
	}
}

// copyTree copies the regular files under src into dst.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
	if err != nil {
		t.Fatalf("copying %s: %v", src, err)
	}
}

func writeFile(t *testing.T, dir, rel, content string) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// commitAll stages everything in the work tree of dir and commits it.
func commitAll(t *testing.T, repo *git.Repository, msg string) string {
	t.Helper()
	wt, err := repo.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	if err := wt.AddWithOptions(&git.AddOptions{All: true}); err != nil {
		t.Fatal(err)
	}
	sig := &object.Signature{Name: "Test", Email: "test@example.com", When: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)}
	h, err := wt.Commit(msg, &git.CommitOptions{Author: sig, Committer: sig})
	if err != nil {
		t.Fatal(err)
	}
	return h.String()
}

// configRepo is a config repository in a temporary directory, committed.
type configRepo struct {
	dir  string
	repo *git.Repository
	head string
}

// newRepo git-inits dir (already filled) and commits its content.
func newRepo(t *testing.T, dir string) *configRepo {
	t.Helper()
	repo, err := git.PlainInit(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	r := &configRepo{dir: dir, repo: repo}
	r.head = commitAll(t, repo, "Initial config")
	return r
}

func (r *configRepo) commit(t *testing.T, msg string) string {
	t.Helper()
	r.head = commitAll(t, r.repo, msg)
	return r.head
}

// demoRepo commits a copy of the project's own strata.yaml and overlays/.
func demoRepo(t *testing.T) *configRepo {
	t.Helper()
	root := moduleRoot(t)
	dir := t.TempDir()
	writeFile(t, dir, "strata.yaml", readFile(t, filepath.Join(root, "strata.yaml")))
	copyTree(t, filepath.Join(root, "overlays"), filepath.Join(dir, "overlays"))
	return newRepo(t, dir)
}

// fixtureRepo commits a copy of testdata/name.
func fixtureRepo(t *testing.T, name string) *configRepo {
	t.Helper()
	dir := t.TempDir()
	copyTree(t, filepath.Join("testdata", name), dir)
	return newRepo(t, dir)
}

// tableRow is one parsed row of the placement table.
type tableRow struct {
	kind, ref, sensitivity, tier, clusters, reason string
}

func parseTable(t *testing.T, out string) map[string]tableRow {
	t.Helper()
	lines := strings.Split(out, "\n")
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "KIND") {
		t.Fatalf("table has no header:\n%s", out)
	}
	rows := map[string]tableRow{}
	for _, l := range lines[1:] {
		if strings.TrimSpace(l) == "" {
			break
		}
		f := strings.Fields(l)
		if len(f) < 6 {
			t.Fatalf("short table row %q", l)
		}
		r := tableRow{kind: f[0], ref: f[1], sensitivity: f[2], tier: f[3], clusters: f[4], reason: strings.Join(f[5:], " ")}
		rows[r.kind+" "+r.ref] = r
	}
	return rows
}

func TestRenderDemoTable(t *testing.T) {
	r := demoRepo(t)
	out := mustRun(t, "render", "--repo", r.dir, "--env", "prod", "-o", "table")
	rows := parseTable(t, out)
	want := []tableRow{
		{"CronJob", "ml-training/model-training", "public", "public-cloud", "public",
			"public → allowed [public-cloud private-cloud on-prem] → public (preferred)"},
		{"Deployment", "fraud/fraud-scoring", "confidential", "private-cloud", "private",
			"confidential → allowed [private-cloud on-prem] → private (preferred)"},
		{"Deployment", "ledger/ledger", "restricted", "on-prem", "onprem",
			"restricted → allowed [on-prem] → onprem (preferred)"},
		{"StatefulSet", "ledger/ledger-db", "restricted", "on-prem", "onprem",
			"restricted → allowed [on-prem] → onprem (preferred)"},
		{"ConfigMap", "ledger/ledger-config", "restricted", "on-prem", "onprem",
			"restricted (from namespace ledger) → allowed [on-prem] → onprem (preferred)"},
	}
	for _, w := range want {
		got, ok := rows[w.kind+" "+w.ref]
		if !ok {
			t.Errorf("no row for %s %s in:\n%s", w.kind, w.ref, out)
			continue
		}
		if got != w {
			t.Errorf("row %s %s:\n got %+v\nwant %+v", w.kind, w.ref, got, w)
		}
	}
	// Every restricted object is on-prem and nowhere else.
	for k, row := range rows {
		if row.sensitivity == "restricted" && row.clusters != "onprem" {
			t.Errorf("%s is restricted but goes to %s", k, row.clusters)
		}
	}
	if !strings.Contains(out, "objects of prod at "+r.head[:12]) {
		t.Errorf("table footer does not name the commit %s:\n%s", r.head[:12], out)
	}
}

// yamlDocs parses a multi-document YAML stream.
func yamlDocs(t *testing.T, out string) []map[string]any {
	t.Helper()
	nodes, err := kio.FromBytes([]byte(out))
	if err != nil {
		t.Fatalf("output is not YAML: %v\n%s", err, out)
	}
	docs := make([]map[string]any, len(nodes))
	for i, n := range nodes {
		m, err := n.Map()
		if err != nil {
			t.Fatal(err)
		}
		docs[i] = m
	}
	return docs
}

func nested(m map[string]any, keys ...string) map[string]any {
	for _, k := range keys {
		next, _ := m[k].(map[string]any)
		m = next
	}
	return m
}

func TestRenderYAMLForOneCluster(t *testing.T) {
	r := demoRepo(t)
	out := mustRun(t, "render", "--repo", r.dir, "--env", "prod", "--cluster", "onprem", "-o", "yaml")
	docs := yamlDocs(t, out)
	if len(docs) < 5 {
		t.Fatalf("onprem receives %d objects, want the ledger app:\n%s", len(docs), out)
	}
	seen := map[string]bool{}
	for _, d := range docs {
		meta := nested(d, "metadata")
		name, _ := meta["name"].(string)
		ns, _ := meta["namespace"].(string)
		id := d["kind"].(string) + " " + ns + "/" + name
		seen[id] = true
		l, a := nested(meta, "labels"), nested(meta, "annotations")
		if l[labels.ManagedBy] != labels.ManagedByValue || l[labels.Environment] != "prod" {
			t.Errorf("%s: labels %v, want %s=%s and %s=prod", id, l, labels.ManagedBy, labels.ManagedByValue, labels.Environment)
		}
		if a[labels.Revision] != r.head {
			t.Errorf("%s: %s = %v, want the commit %s", id, labels.Revision, a[labels.Revision], r.head)
		}
		if p, _ := a[labels.Placement].(string); !strings.Contains(p, "onprem") {
			t.Errorf("%s: %s = %q, want a reason naming onprem", id, labels.Placement, p)
		}
		if ns == "fraud" || ns == "ml-training" || (d["kind"] == "Namespace" && (name == "fraud" || name == "ml-training")) {
			t.Errorf("%s must not go to onprem", id)
		}
	}
	for _, id := range []string{"Deployment ledger/ledger", "StatefulSet ledger/ledger-db", "Namespace /ledger"} {
		if !seen[id] {
			t.Errorf("onprem does not receive %s", id)
		}
	}
}

type renderJSON struct {
	Environment string `json:"environment"`
	Revision    string `json:"revision"`
	Objects     []struct {
		Kind      string   `json:"kind"`
		Namespace string   `json:"namespace"`
		Name      string   `json:"name"`
		Clusters  []string `json:"clusters"`
		Reason    string   `json:"reason"`
	} `json:"objects"`
	Clusters map[string][]map[string]any `json:"clusters"`
}

func parseJSON(t *testing.T, out string) renderJSON {
	t.Helper()
	var doc renderJSON
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	return doc
}

// hasObject reports whether cluster of doc receives kind namespace/name.
func (doc renderJSON) hasObject(cluster, kind, namespace, name string) bool {
	for _, o := range doc.Clusters[cluster] {
		meta := nested(o, "metadata")
		if o["kind"] == kind && meta["name"] == name && (namespace == "" || meta["namespace"] == namespace) {
			return true
		}
	}
	return false
}

func TestRenderJSON(t *testing.T) {
	r := demoRepo(t)
	doc := parseJSON(t, mustRun(t, "render", "--repo", r.dir, "--env", "prod", "-o", "json"))
	if doc.Environment != "prod" || doc.Revision != r.head {
		t.Errorf("environment, revision = %q, %q; want prod, %s", doc.Environment, doc.Revision, r.head)
	}
	if len(doc.Objects) == 0 {
		t.Fatal("objects[] is empty")
	}
	for _, c := range []string{"public", "private", "onprem"} {
		if len(doc.Clusters[c]) == 0 {
			t.Errorf("clusters.%s is empty", c)
		}
	}
	if !doc.hasObject("private", "Deployment", "fraud", "fraud-scoring") || doc.hasObject("public", "Deployment", "fraud", "fraud-scoring") {
		t.Error("fraud-scoring is not exactly in clusters.private")
	}
	found := false
	for _, o := range doc.Objects {
		if o.Kind == "StatefulSet" && o.Name == "ledger-db" {
			found = true
			if !slices.Equal(o.Clusters, []string{"onprem"}) || !strings.Contains(o.Reason, "restricted") {
				t.Errorf("ledger-db: clusters %v, reason %q", o.Clusters, o.Reason)
			}
		}
	}
	if !found {
		t.Error("objects[] has no StatefulSet ledger-db")
	}
}

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.Name()
	}
	return names
}

func TestRenderOutDir(t *testing.T) {
	r := demoRepo(t)
	parent := t.TempDir()
	out := filepath.Join(parent, "rendered")

	stdout := mustRun(t, "render", "--repo", r.dir, "--env", "prod", "--out", out)
	for _, c := range []string{"public", "private", "onprem"} {
		files := listDir(t, filepath.Join(out, c))
		if len(files) == 0 {
			t.Errorf("%s/%s is empty", out, c)
		}
		if !strings.Contains(stdout, filepath.Join(out, c)) {
			t.Errorf("stdout does not mention %s:\n%s", filepath.Join(out, c), stdout)
		}
	}
	if !slices.Contains(listDir(t, filepath.Join(out, "onprem")), "0003-deployment-ledger-ledger.yaml") {
		t.Errorf("onprem files %v lack the ledger Deployment", listDir(t, filepath.Join(out, "onprem")))
	}
	ledger := readFile(t, filepath.Join(out, "onprem", "0003-deployment-ledger-ledger.yaml"))
	if !strings.Contains(ledger, labels.Revision+": "+r.head) {
		t.Errorf("written manifest is not stamped with the revision:\n%s", ledger)
	}
	placement := parseJSON(t, readFile(t, filepath.Join(out, "placement.json")))
	if placement.Revision != r.head || len(placement.Objects) == 0 {
		t.Errorf("placement.json: revision %q with %d objects", placement.Revision, len(placement.Objects))
	}

	// A second render replaces the directory: a stale file goes away.
	writeFile(t, out, "public/9999-stale.yaml", "stale: true\n")
	mustRun(t, "render", "--repo", r.dir, "--env", "prod", "--out", out, "--cluster", "onprem")
	if got := listDir(t, out); !slices.Equal(got, []string{"onprem", "placement.json"}) {
		t.Errorf("after the second render %s holds %v, want [onprem placement.json]", out, got)
	}
	if got := listDir(t, parent); !slices.Equal(got, []string{"rendered"}) {
		t.Errorf("render left temporary directories next to the output: %v", got)
	}

	// A non-empty directory that strata did not write is refused, untouched.
	mine := filepath.Join(parent, "mine")
	writeFile(t, mine, "notes.txt", "my notes\n")
	code, stdout, stderr := strata(t, "render", "--repo", r.dir, "--env", "prod", "--out", mine)
	if code == 0 {
		t.Fatalf("render into a foreign directory succeeded:\n%s", stdout)
	}
	for _, want := range []string{mine, "not written by strata render", "choose an empty or new directory"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if got := listDir(t, mine); !slices.Equal(got, []string{"notes.txt"}) || readFile(t, filepath.Join(mine, "notes.txt")) != "my notes\n" {
		t.Errorf("the foreign directory was changed: %v", got)
	}
	if got := listDir(t, parent); !slices.Equal(got, []string{"mine", "rendered"}) {
		t.Errorf("refused render left %v", got)
	}

	// Missing parents are created, as by mkdir -p.
	deep := filepath.Join(parent, "a", "b", "rendered")
	mustRun(t, "render", "--repo", r.dir, "--env", "prod", "--out", deep, "--cluster", "public")
	if got := listDir(t, deep); !slices.Equal(got, []string{"placement.json", "public"}) {
		t.Errorf("%s holds %v", deep, got)
	}
}

func TestRenderReadsCommittedContentOnly(t *testing.T) {
	r := demoRepo(t)
	cm := filepath.Join(r.dir, "overlays", "base", "ledger", "configmap.yaml")
	orig := readFile(t, cm)
	if !strings.Contains(orig, "LOG_LEVEL: info") {
		t.Fatalf("the demo ledger ConfigMap changed; update this test:\n%s", orig)
	}
	writeFile(t, r.dir, "overlays/base/ledger/configmap.yaml", strings.Replace(orig, "LOG_LEVEL: info", "LOG_LEVEL: debug", 1))

	committed := mustRun(t, "render", "--repo", r.dir, "--env", "prod", "--cluster", "onprem", "-o", "yaml")
	if !strings.Contains(committed, "LOG_LEVEL: info") || strings.Contains(committed, "LOG_LEVEL: debug") {
		t.Errorf("render shows uncommitted content:\n%s", committed)
	}
	worktree := mustRun(t, "render", "--repo", r.dir, "--env", "prod", "--cluster", "onprem", "-o", "yaml", "--worktree")
	if !strings.Contains(worktree, "LOG_LEVEL: debug") {
		t.Errorf("render --worktree does not show the uncommitted change:\n%s", worktree)
	}
	if !strings.Contains(worktree, labels.Revision+": "+r.head+"+worktree") {
		t.Errorf("render --worktree does not label the revision %s+worktree", r.head)
	}

	// --worktree renders the files on disk, so it cannot honour a revision.
	code, stdout, stderr := strata(t, "render", "--repo", r.dir, "--env", "prod", "--worktree", "--revision", r.head)
	if code == 0 || !strings.Contains(stderr, "drop --worktree") {
		t.Errorf("render --worktree --revision: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
}

// assertNoOutput checks that a failed render --out left nothing behind.
func assertNoOutput(t *testing.T, parent string) {
	t.Helper()
	if got := listDir(t, parent); len(got) != 0 {
		t.Errorf("a failed render --out left %v in %s", got, parent)
	}
}

func TestRenderBadInput(t *testing.T) {
	tests := []struct {
		name string
		// fixture is a directory of testdata; "" is the project's demo.
		fixture string
		args    []string
		// want are substrings of stderr: the file, object or rule, and what to do.
		want []string
	}{
		{
			name: "bad YAML in a resource file", fixture: "bad-yaml-in-resource-file",
			want: []string{"environment prod", "overlays/prod", "/overlays/base", "deployment.yaml", "line 7", "fix the file named above"},
		},
		{
			name: "overlay without kustomization.yaml", fixture: "overlay-without-kustomization",
			want: []string{"overlays/prod has no kustomization file", "kustomization.yaml", "add one listing the resources of prod"},
		},
		{
			name: "kustomize error: resource path does not exist", fixture: "resource-path-does-not-exist",
			want: []string{"/overlays/base/payments-api.yaml", "doesn't exist", "fix the file named above"},
		},
		{
			name: "unknown sensitivity value", fixture: "unknown-sensitivity-value",
			want: []string{"Deployment payments/payments-api (overlays/base/deployment.yaml)", "[unknown-sensitivity]", `"secret"`,
				"fix the label (one of public, internal, confidential, restricted)"},
		},
		{
			name: "unlabeled object in an unlabeled namespace", fixture: "unlabeled-object-in-unlabeled-namespace",
			want: []string{"Deployment scratch/notebook (overlays/base/deployment.yaml): [unlabeled]",
				"label the object or the Namespace with one of", "Namespace scratch (overlays/base/namespace.yaml): [unlabeled]"},
		},
		{
			name: "tier request not allowed", fixture: "tier-request-not-allowed",
			want: []string{"1 object cannot be placed in environment prod",
				"CronJob ledger/ledger-export (overlays/base/ledger-export.yaml): [tier-not-allowed]",
				"requests public-cloud", "allowed only in [on-prem]", "remove public-cloud from the annotation"},
		},
		{
			name: "three violating objects", fixture: "three-violating-objects",
			want: []string{"3 objects cannot be placed in environment prod",
				"ConfigMap ledger/ledger-export (overlays/base/bad/ledger-export.yaml): [tier-not-allowed]",
				"ConfigMap scratch/notebook (overlays/base/bad/notebook.yaml): [unlabeled]",
				`ConfigMap payments/risk-model (overlays/base/bad/risk-model.yaml): [unknown-sensitivity] its label strata.dev/sensitivity="confidental" is not a known sensitivity`},
		},
		{
			name: "invalid strata.yaml: a cluster in two environments", fixture: "cluster-in-two-environments",
			want: []string{"strata.yaml is invalid", "clusters[0].name", `"shared"`, "give each its own name"},
		},
		{
			name: "unknown environment", args: []string{"--env", "qa"},
			want: []string{`environment "qa" is not in strata.yaml`, "known environments are dev, prod, staging"},
		},
		{
			name: "revision that does not exist", args: []string{"--revision", "no-such-branch"},
			want: []string{`revision "no-such-branch" not found`, "use a branch, tag or commit that exists"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r *configRepo
			if tt.fixture == "" {
				r = demoRepo(t)
			} else {
				r = fixtureRepo(t, tt.fixture)
			}
			args := tt.args
			if !slices.Contains(args, "--env") {
				args = append(args, "--env", "prod")
			}
			parent := t.TempDir()
			out := filepath.Join(parent, "rendered")
			args = append([]string{"render", "--repo", r.dir, "--out", out}, args...)
			code, stdout, stderr := strata(t, args...)
			if code == 0 {
				t.Fatalf("strata %s: exit 0, want a failure\nstdout:\n%s", strings.Join(args, " "), stdout)
			}
			if !strings.HasPrefix(stderr, "Error: ") {
				t.Errorf("stderr does not start with Error:\n%s", stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
			if stdout != "" {
				t.Errorf("a failed render printed to stdout:\n%s", stdout)
			}
			assertNoOutput(t, parent)
		})
	}
}

// gitServer serves bare repositories over smart HTTP.
func gitServer(t *testing.T) *gittestserver.GitServer {
	t.Helper()
	srv, err := gittestserver.NewTempGitServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(srv.Root()) })
	if err := srv.StartHTTP(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.StopHTTP)
	return srv
}

func (r *configRepo) push(t *testing.T) {
	t.Helper()
	err := r.repo.Push(&git.PushOptions{RemoteName: "server", RefSpecs: []gitconfig.RefSpec{"refs/heads/*:refs/heads/*"}})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		t.Fatal(err)
	}
}

func TestRenderRemoteOlderRevision(t *testing.T) {
	srv := gitServer(t)
	if _, err := git.PlainInit(filepath.Join(srv.Root(), "config.git"), true); err != nil {
		t.Fatal(err)
	}
	url := srv.HTTPAddress() + "/config.git"
	if !strings.HasPrefix(url, "http://") {
		t.Fatalf("server URL %q is not http", url)
	}

	r := demoRepo(t)
	first := r.head
	if _, err := r.repo.CreateRemote(&gitconfig.RemoteConfig{Name: "server", URLs: []string{url}}); err != nil {
		t.Fatal(err)
	}
	r.push(t)
	// The second commit adds an object to the ledger app.
	writeFile(t, r.dir, "overlays/base/ledger/retention.yaml",
		"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ledger-retention\n  namespace: ledger\ndata:\n  DAYS: \"3650\"\n")
	kust := filepath.Join(r.dir, "overlays", "base", "ledger", "kustomization.yaml")
	writeFile(t, r.dir, "overlays/base/ledger/kustomization.yaml", readFile(t, kust)+"  - retention.yaml\n")
	second := r.commit(t, "Add the ledger retention settings")
	r.push(t)
	// The local copy goes away: everything below comes from the server.
	if err := os.RemoveAll(r.dir); err != nil {
		t.Fatal(err)
	}

	old := parseJSON(t, mustRun(t, "render", "--repo", url, "--revision", first, "--env", "prod", "-o", "json"))
	if old.Revision != first {
		t.Errorf("--revision %s rendered %s", first, old.Revision)
	}
	if old.hasObject("onprem", "ConfigMap", "ledger", "ledger-retention") {
		t.Error("the first commit shows the object added by the second")
	}
	if !old.hasObject("onprem", "Deployment", "ledger", "ledger") {
		t.Error("the first commit lacks the ledger Deployment")
	}

	head := parseJSON(t, mustRun(t, "render", "--repo", url, "--revision", "master", "--env", "prod", "-o", "json"))
	if head.Revision != second {
		t.Errorf("--revision master rendered %s, want %s", head.Revision, second)
	}
	if !head.hasObject("onprem", "ConfigMap", "ledger", "ledger-retention") {
		t.Error("master lacks the object added by the second commit")
	}
	if head.hasObject("public", "ConfigMap", "ledger", "ledger-retention") || head.hasObject("private", "ConfigMap", "ledger", "ledger-retention") {
		t.Error("the restricted ConfigMap left on-prem")
	}

	code, _, stderr := strata(t, "render", "--repo", url, "--worktree", "--env", "prod")
	if code == 0 || !strings.Contains(stderr, "--worktree reads a local checkout") {
		t.Errorf("render --worktree of a URL: exit %d, stderr:\n%s", code, stderr)
	}
}

func TestVersion(t *testing.T) {
	out := mustRun(t, "version")
	for _, want := range []string{"strata", "commit:", "go:"} {
		if !strings.Contains(out, want) {
			t.Errorf("version output lacks %q:\n%s", want, out)
		}
	}
}
