package results

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestUpdateSectionKeepsOtherSections(t *testing.T) {
	const header = "## Render: strata vs kustomize"
	file := filepath.Join(t.TempDir(), "RESULTS.md")
	before := "# strata benchmarks\n\n## Apply\n\napply numbers\n\n" + header + "\n\nold render\n\n## Render: notes\n\nkept\n"
	if err := os.WriteFile(file, []byte(before), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := UpdateSection(file, header, header+"\n\nnew render\n\n"); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(file)
	want := "# strata benchmarks\n\n## Apply\n\napply numbers\n\n" + header + "\n\nnew render\n\n## Render: notes\n\nkept\n"
	if string(got) != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}

	fresh := filepath.Join(t.TempDir(), "NEW.md")
	if err := UpdateSection(fresh, header, header+"\n\nfirst\n"); err != nil {
		t.Fatal(err)
	}
	got, _ = os.ReadFile(fresh)
	if !strings.HasPrefix(string(got), "# strata benchmarks\n\n"+header) {
		t.Fatalf("new file: %q", got)
	}

	// A file without the section gets it appended after a blank line.
	other := filepath.Join(t.TempDir(), "OTHER.md")
	if err := os.WriteFile(other, []byte("# strata benchmarks\n\n## Apply\n\nx"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := UpdateSection(other, header, header+"\n\nappended\n"); err != nil {
		t.Fatal(err)
	}
	got, _ = os.ReadFile(other)
	if want := "# strata benchmarks\n\n## Apply\n\nx\n\n" + header + "\n\nappended\n"; string(got) != want {
		t.Fatalf("appended: %q", got)
	}
}

func TestPrefixWriter(t *testing.T) {
	var b bytes.Buffer
	w := &PrefixWriter{W: &b, Prefix: "  "}
	if n, err := w.Write([]byte("a\nb\nc")); err != nil || n != 5 {
		t.Fatal(n, err)
	}
	if got := b.String(); got != "  a\n  b\n  c" {
		t.Fatalf("got %q", got)
	}
}

func TestReadMachine(t *testing.T) {
	m := ReadMachine()
	if m.NProc < 1 || m.CPU == "" || m.Mem == "" || m.Kernel == "" || m.GoVersion == "" {
		t.Fatalf("incomplete: %+v", m)
	}
}
