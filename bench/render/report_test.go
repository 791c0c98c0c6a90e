package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestUpdateMarkdownKeepsOtherSections(t *testing.T) {
	file := filepath.Join(t.TempDir(), "RESULTS.md")
	before := "# strata benchmarks\n\n## Apply\n\napply numbers\n\n" + sectionHeader + "\n\nold render\n\n## Render: notes\n\nkept\n"
	if err := os.WriteFile(file, []byte(before), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := updateMarkdown(file, sectionHeader+"\n\nnew render\n\n"); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(file)
	want := "# strata benchmarks\n\n## Apply\n\napply numbers\n\n" + sectionHeader + "\n\nnew render\n\n## Render: notes\n\nkept\n"
	if string(got) != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}

	fresh := filepath.Join(t.TempDir(), "NEW.md")
	if err := updateMarkdown(fresh, sectionHeader+"\n\nfirst\n"); err != nil {
		t.Fatal(err)
	}
	got, _ = os.ReadFile(fresh)
	if !strings.HasPrefix(string(got), "# strata benchmarks\n\n"+sectionHeader) {
		t.Fatalf("new file: %q", got)
	}
}

func TestObjectIDs(t *testing.T) {
	y := `# cluster: public  environment: bench  revision: abc
---
apiVersion: v1
kind: Namespace
metadata:
  labels:
    name: not-the-name
  name: team-00
---
apiVersion: v1
kind: ConfigMap
data:
  name: not-the-name
metadata:
  name: cm
  namespace: team-00
# cluster: private  environment: bench  revision: abc
---
apiVersion: v1
kind: Namespace
metadata:
  name: team-00
`
	ids, docs := objectIDs([]byte(y))
	if docs != 3 || len(ids) != 2 || !ids["Namespace /team-00"] || !ids["ConfigMap team-00/cm"] {
		t.Fatalf("docs %d, ids %v", docs, ids)
	}
}
