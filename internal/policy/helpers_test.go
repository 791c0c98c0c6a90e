package policy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"testing"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/strata-gitops/strata/internal/config"
)

// loadRepoPolicies loads the project's own policies/ directory.
func loadRepoPolicies(t testing.TB) *Set {
	t.Helper()
	s, err := Load(os.DirFS("../.."), "policies")
	if err != nil {
		t.Fatalf("loading policies/: %v", err)
	}
	return s
}

// readDocs reads the YAML documents of a file as unstructured objects, the
// way encoding/json decodes them (numbers are float64).
func readDocs(t testing.TB, file string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return parseDocs(t, data)
}

func parseDocs(t testing.TB, data []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for {
		raw, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := yaml.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		if m != nil {
			out = append(out, m)
		}
	}
}

// obj parses one YAML document.
func obj(t testing.TB, s string) map[string]any {
	t.Helper()
	docs := parseDocs(t, []byte(s))
	if len(docs) != 1 {
		t.Fatalf("want one document, got %d", len(docs))
	}
	return docs[0]
}

// fixtureInput turns the documents of a fixture into an Input: an optional
// Namespace (namespaceObject) followed by the object, created.
func fixtureInput(t testing.TB, docs []map[string]any, tier config.Tier) Input {
	t.Helper()
	in := Input{Operation: "CREATE", Tier: tier}
	for _, d := range docs {
		if d["kind"] == "Namespace" && len(docs) > 1 {
			in.Namespace = d
			continue
		}
		if in.Object != nil {
			t.Fatalf("fixture has more than one object besides its Namespace")
		}
		in.Object = d
	}
	if in.Object == nil {
		t.Fatalf("fixture has no object")
	}
	return in
}

func policyNames(vs []Verdict) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.Policy+" "+v.Rule)
	}
	return out
}
