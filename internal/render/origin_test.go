package render_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/google/go-cmp/cmp"

	"github.com/strata-gitops/strata/internal/render"
	"github.com/strata-gitops/strata/internal/source"
)

// originRepo is a small config repository: a base with one file per app
// (one of them holding two documents), a Namespace, a generated ConfigMap,
// an overlay that prefixes names, and an overlay at the repository root.
var originRepo = map[string]string{
	"strata.yaml": "apiVersion: strata.dev/v1alpha1\nkind: Config\n",
	"overlays/base/kustomization.yaml": `resources:
- ledger
- fraud/deployment.yaml
`,
	"overlays/base/ledger/kustomization.yaml": `resources:
- namespace.yaml
- ledger.yaml
configMapGenerator:
- name: ledger-config
  namespace: ledger
  literals: [A=b]
`,
	"overlays/base/ledger/namespace.yaml": "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ledger\n",
	"overlays/base/ledger/ledger.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: ledger
  namespace: ledger
---
apiVersion: v1
kind: Service
metadata:
  name: ledger
  namespace: ledger
`,
	"overlays/base/fraud/deployment.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: fraud-scoring\n  namespace: fraud\n",
	"overlays/prod/kustomization.yaml": `resources:
- ../base
- extra.yaml
namePrefix: prod-
`,
	"overlays/prod/extra.yaml": "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: reader\n",
	// An overlay at the repository root.
	"kustomization.yaml": "resources:\n- overlays/base/fraud/deployment.yaml\n",
}

var wantProd = map[string]string{
	"/Namespace//ledger":                                 "overlays/base/ledger/namespace.yaml",
	"apps/Deployment/ledger/prod-ledger":                 "overlays/base/ledger/ledger.yaml",
	"/Service/ledger/prod-ledger":                        "overlays/base/ledger/ledger.yaml",
	"apps/Deployment/fraud/prod-fraud-scoring":           "overlays/base/fraud/deployment.yaml",
	"rbac.authorization.k8s.io/ClusterRole//prod-reader": "overlays/prod/extra.yaml",
}

func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for rel, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// commitSnapshot commits dir and returns the snapshot of that commit.
func commitSnapshot(t *testing.T, dir string) *source.Snapshot {
	t.Helper()
	repo, err := git.PlainInit(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	if err := wt.AddWithOptions(&git.AddOptions{All: true}); err != nil {
		t.Fatal(err)
	}
	sig := &object.Signature{Name: "t", Email: "t@example.com", When: time.Unix(1700000000, 0)}
	if _, err := wt.Commit("fixture", &git.CommitOptions{Author: sig, Committer: sig}); err != nil {
		t.Fatal(err)
	}
	r, err := source.Open(context.Background(), dir, source.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rev, err := r.Resolve("HEAD")
	if err != nil {
		t.Fatal(err)
	}
	snap, err := r.Snapshot(rev)
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// withGenerated checks the generated ConfigMap (its name carries a hash) is
// attributed to the kustomization that generates it, and drops it from got.
func withGenerated(t *testing.T, got map[string]string, prefix string) {
	t.Helper()
	found := false
	for k, v := range got {
		if strings.HasPrefix(k, "/ConfigMap/ledger/"+prefix+"ledger-config-") {
			found = true
			if v != "overlays/base/ledger/kustomization.yaml" {
				t.Errorf("generated ConfigMap %s: origin %q, want overlays/base/ledger/kustomization.yaml", k, v)
			}
			delete(got, k)
		}
	}
	if !found {
		t.Errorf("no origin for the generated ConfigMap in %v", got)
	}
}

func TestOriginsOfACommit(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, originRepo)
	snap := commitSnapshot(t, dir)

	got, err := render.Origins(snap, "overlays/prod", render.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	withGenerated(t, got, "prod-")
	if diff := cmp.Diff(wantProd, got); diff != "" {
		t.Errorf("Origins(overlays/prod) (-want +got):\n%s", diff)
	}

	// The same keys as the plain render produces.
	res, err := render.Overlay(snap, "prod", "overlays/prod/", render.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if strings.Contains(render.Key(r), "ConfigMap") {
			continue
		}
		if _, ok := wantProd[render.Key(r)]; !ok {
			t.Errorf("rendered object %s has no origin", render.Key(r))
		}
		if _, ok := r.GetAnnotations()["config.kubernetes.io/origin"]; ok {
			t.Errorf("plain render of %s carries an origin annotation", render.Key(r))
		}
	}
}

func TestOriginsOfAnOverlayAtTheRoot(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, originRepo)
	snap := commitSnapshot(t, dir)
	got, err := render.Origins(snap, ".", render.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"apps/Deployment/fraud/fraud-scoring": "overlays/base/fraud/deployment.yaml"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Origins(.) (-want +got):\n%s", diff)
	}
}

// A work tree is read from disk: .git and large files are left out, a
// directory already named like the wrapper is not disturbed, and nothing is
// written to the repository.
func TestOriginsOfAWorkTreeWritesNothing(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{}
	for k, v := range originRepo {
		files[k] = v
	}
	files["overlays/.strata-origin-prod/kustomization.yaml"] = "this: is not the wrapper\n"
	files["overlays/base/huge.bin"] = strings.Repeat("x", 5<<20)
	writeTree(t, dir, files)
	if _, err := git.PlainInit(dir, false); err != nil {
		t.Fatal(err)
	}
	before := listTree(t, dir)

	snap, err := source.DirSnapshot(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := render.Origins(snap, "overlays/prod", render.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	withGenerated(t, got, "prod-")
	if diff := cmp.Diff(wantProd, got); diff != "" {
		t.Errorf("Origins(overlays/prod) (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(before, listTree(t, dir)); diff != "" {
		t.Errorf("Origins changed the work tree (-before +after):\n%s", diff)
	}
}

func TestOriginsErrors(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, originRepo)
	writeTree(t, dir, map[string]string{"overlays/broken/kustomization.yaml": "resources:\n- missing.yaml\n"})
	snap := commitSnapshot(t, dir)
	for _, overlay := range []string{"overlays/missing", "overlays/broken", "../outside", "/abs"} {
		if got, err := render.Origins(snap, overlay, render.DefaultOptions()); err == nil {
			t.Errorf("Origins(%s) = %v, want an error", overlay, got)
		}
	}
}

func listTree(t *testing.T, dir string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	err := filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[rel] = info.Size()
		if info.IsDir() {
			out[rel] = -1
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
