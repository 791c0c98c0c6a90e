package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/strata-gitops/strata/internal/config"
)

// A name like "n" must stay a string (YAML 1.2), and only strata's
// stamps go.
func TestUnstampRemovesStrataStampsOnly(t *testing.T) {
	in := `apiVersion: v1
kind: ConfigMap
metadata:
  name: a
  namespace: n
  annotations:
    strata.dev/revision: abc
    strata.dev/placement: internal → private
  labels:
    strata.dev/managed-by: strata
    strata.dev/environment: prod
    strata.dev/sensitivity: internal
    app: x
data:
  K: v
`
	out, err := unstamp([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := `apiVersion: v1
kind: ConfigMap
metadata:
  name: a
  namespace: n
  labels:
    strata.dev/sensitivity: internal
    app: x
data:
  K: v
`
	if diff := cmp.Diff(want, string(out)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestScenarioConfigsAreValid(t *testing.T) {
	for _, env := range []string{soloEnv, scaleEnv} {
		y := strataYAML(env, [][2]string{{"public", "public-cloud"}, {"onprem", "on-prem"}})
		if _, err := config.Parse("strata.yaml", []byte(y)); err != nil {
			t.Errorf("%s: %v", env, err)
		}
	}
}

// The scale repository has exactly the objects asked for, and the
// one-object change changes one document.
func TestScaleObjectsCountsAndOneObjectChange(t *testing.T) {
	write := func(touch string) map[string]string {
		c := &configRepo{dir: t.TempDir()}
		if err := scaleSeed(c); err != nil {
			t.Fatal(err)
		}
		if err := scaleObjects(c, 1000, 30, touch); err != nil {
			t.Fatal(err)
		}
		files := map[string]string{}
		filepath.WalkDir(filepath.Join(c.dir, "overlays"), func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				b, _ := os.ReadFile(p)
				files[p[len(c.dir):]] = string(b)
			}
			return err
		})
		return files
	}
	a, b := write("1"), write("2")
	docs, deployments := 0, 0
	for name, content := range a {
		if strings.HasSuffix(name, "kustomization.yaml") {
			continue
		}
		for _, l := range strings.Split(content, "\n") {
			if strings.HasPrefix(l, "kind: ") {
				docs++
			}
			if l == "kind: Deployment" {
				deployments++
			}
		}
	}
	if docs != 1000 || deployments != 30 {
		t.Errorf("%d objects with %d Deployments, want 1000 with 30", docs, deployments)
	}
	changed := 0
	for name := range a {
		if a[name] != b[name] {
			changed++
			if d := strings.Count(a[name], "\n") - strings.Count(b[name], "\n"); d != 0 {
				t.Errorf("%s: line count differs by %d", name, d)
			}
		}
	}
	if changed != 1 {
		t.Errorf("%d files differ, want 1", changed)
	}
}
