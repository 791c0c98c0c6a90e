package main

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strata-gitops/strata/bench/internal/results"
)

func TestParseResult(t *testing.T) {
	out := []byte(`environment bench at 0123456789ab (bench: generated config repository)
CLUSTER  TIER           OBJECTS  CREATED  CONFIGURED  PRUNED  MOVED  DRIFTED  HEALTHY  DURATION  RESULT
public   public-cloud   219      219      0           0       0      0        219/219  48.77s    ok
private  private-cloud  502      0        0           0       0      0        502/502  240ms     ok
onprem   on-prem        289      0        0           0       0      0        280/289  1m2.5s    health: 9 objects failed
`)
	rows, err := parseResult(out)
	if err != nil {
		t.Fatal(err)
	}
	if rows[0].created != 219 || rows[0].duration != 48770*time.Millisecond || rows[0].result != "ok" {
		t.Errorf("public: %+v", rows[0])
	}
	if rows[1].objects != 502 || rows[1].healthy != 502 || rows[1].duration != 240*time.Millisecond {
		t.Errorf("private: %+v", rows[1])
	}
	if rows[2].healthy != 280 || rows[2].result != "health: 9 objects failed" {
		t.Errorf("onprem: %+v", rows[2])
	}
	if _, err := parseResult([]byte("error: boom\n")); err == nil {
		t.Error("no table: want an error")
	}
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct{ method, url, want string }{
		{"GET", "/readyz", "probe /readyz, /version"},
		{"GET", "/apis/apps/v1", "discovery"},
		{"GET", "/api", "discovery"},
		{"GET", "/apis/apps/v1/namespaces/bench-01/deployments/app-0001", "GET object"},
		{"GET", "/apis/apps/v1/namespaces/bench-01/replicasets?limit=500", "LIST (kstatus poller)"},
		{"GET", "/apis/apps/v1/deployments?labelSelector=strata.dev%2Fmanaged-by%3Dstrata", "LIST by strata labels (drift, fingerprints)"},
		{"PATCH", "/api/v1/namespaces/bench-01/services/app-0001?dryRun=All&fieldManager=strata&force=true", "PATCH apply, dry run"},
		{"PATCH", "/api/v1/namespaces/bench-01", "PATCH apply"},
		{"PATCH", "/api/v1/namespaces/strata-system", "inventory (strata-system)"},
		{"PUT", "/api/v1/namespaces/strata-system/configmaps/strata-inventory-bench", "inventory (strata-system)"},
		{"POST", "/api/v1/namespaces/strata-system/events", "events"},
	} {
		u, err := url.Parse(tc.url)
		if err != nil {
			t.Fatal(err)
		}
		if got := classify(tc.method, u); got != tc.want {
			t.Errorf("%s %s: got %q, want %q", tc.method, tc.url, got, tc.want)
		}
	}
}

func TestUpdateMarkdownKeepsOtherSections(t *testing.T) {
	file := filepath.Join(t.TempDir(), "RESULTS.md")
	if err := results.UpdateSection(file, sectionHeader, sectionHeader+"\n\nfirst\n\n"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(file)
	if !strings.HasPrefix(string(b), "# strata benchmarks\n\n"+sectionHeader) {
		t.Fatalf("new file:\n%s", b)
	}
	other := "# strata benchmarks\n\n## Render: x\n\nrender text\n\n" + sectionHeader + "\n\nold\n\n## Later\n\nlater text\n"
	if err := os.WriteFile(file, []byte(other), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := results.UpdateSection(file, sectionHeader, sectionHeader+"\n\nnew\n\n"); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(file)
	want := "# strata benchmarks\n\n## Render: x\n\nrender text\n\n" + sectionHeader + "\n\nnew\n\n## Later\n\nlater text\n"
	if string(b) != want {
		t.Errorf("got:\n%s\nwant:\n%s", b, want)
	}
}

func TestGenerateRoutesToEveryCluster(t *testing.T) {
	repo, err := Generate(filepath.Join(t.TempDir(), "repo"), Spec{Objects: 1000, Namespaces: 20})
	if err != nil {
		t.Fatal(err)
	}
	if repo.Total() != 1000 {
		t.Errorf("total %d, want 1000", repo.Total())
	}
	sum := 0
	for _, c := range clusterNames {
		if repo.Expected[c] == 0 || repo.Deployments[c] == 0 {
			t.Errorf("cluster %s gets nothing: %v %v", c, repo.Expected, repo.Deployments)
		}
		sum += repo.Deployments[c]
	}
	if sum != repo.Kinds["Deployment"] {
		t.Errorf("deployments per cluster %v do not add up to %d", repo.Deployments, repo.Kinds["Deployment"])
	}
}
