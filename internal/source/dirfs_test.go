package source

import (
	"io/fs"
	"testing"
	"testing/fstest"

	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// DirFS behaves as an io/fs.FS by the standard library's own checker.
func TestDirFS(t *testing.T) {
	mem := filesys.MakeFsInMemory()
	for p, c := range map[string]string{"/policies/a.yaml": "a: 1\n", "/policies/b.yml": "b: 2\n", "/strata.yaml": "x: y\n"} {
		if err := mem.WriteFile(p, []byte(c)); err != nil {
			t.Fatal(err)
		}
	}
	s := &Snapshot{FS: readOnly{mem}, Root: "/"}
	if err := fstest.TestFS(s.DirFS(), "policies/a.yaml", "policies/b.yml", "strata.yaml"); err != nil {
		t.Fatal(err)
	}
	if _, err := fs.ReadFile(s.DirFS(), "missing.yaml"); err == nil {
		t.Fatal("reading a missing file succeeded")
	}
}
