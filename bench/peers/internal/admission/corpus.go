package admission

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// Item is one object of the corpus: a fixture of internal/policy/testdata
// or an edge case of this package.
type Item struct {
	// Name is "<policy>/<fixture>" for fixtures, "edge/<name>" otherwise.
	Name string
	Obj  *unstructured.Unstructured
	// Why says what an edge case probes (empty for fixtures).
	Why string
}

// Corpus is what both tools judge: the objects and the Namespaces they
// live in (with the sensitivity labels the policies read as a floor).
type Corpus struct {
	Items      []Item
	Namespaces map[string]map[string]string
}

// LoadCorpus reads every allowed-* and denied-* fixture under
// root/internal/policy/testdata/<policy>/ and appends the edge cases. Each
// fixture carries its Namespace; the same Namespace must have the same
// labels in every fixture, since one cluster holds them all.
func LoadCorpus(root string) (*Corpus, error) {
	c := &Corpus{Namespaces: map[string]map[string]string{}}
	dir := filepath.Join(root, "internal", "policy", "testdata")
	files, err := filepath.Glob(filepath.Join(dir, "*", "*.yaml"))
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		base := filepath.Base(f)
		if !strings.HasPrefix(base, "allowed-") && !strings.HasPrefix(base, "denied-") {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		name := filepath.Base(filepath.Dir(f)) + "/" + strings.TrimSuffix(base, ".yaml")
		if err := c.add(name, "", data); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
	}
	if len(c.Items) == 0 {
		return nil, fmt.Errorf("no allowed-*/denied-* fixtures under %s", dir)
	}
	for _, e := range edgeCases {
		if err := c.add("edge/"+e.name, e.why, []byte(e.yaml)); err != nil {
			return nil, fmt.Errorf("edge case %s: %w", e.name, err)
		}
	}
	return c, nil
}

// add splits a multi-document file into its Namespaces and its one object.
func (c *Corpus) add(name, why string, data []byte) error {
	objs, err := decodeAll(data)
	if err != nil {
		return err
	}
	var item *unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == "Namespace" {
			if err := c.addNamespace(o.GetName(), o.GetLabels()); err != nil {
				return err
			}
			continue
		}
		if item != nil {
			return fmt.Errorf("more than one object besides Namespaces (%s and %s)", item.GetKind(), o.GetKind())
		}
		item = o
	}
	if item == nil {
		return errors.New("no object besides Namespaces")
	}
	if item.GetNamespace() == "" {
		return fmt.Errorf("%s %s has no namespace", item.GetKind(), item.GetName())
	}
	if _, ok := c.Namespaces[item.GetNamespace()]; !ok {
		if err := c.addNamespace(item.GetNamespace(), nil); err != nil {
			return err
		}
	}
	c.Items = append(c.Items, Item{Name: name, Obj: item, Why: why})
	return nil
}

func (c *Corpus) addNamespace(name string, labels map[string]string) error {
	if labels == nil {
		labels = map[string]string{}
	}
	if old, ok := c.Namespaces[name]; ok && !maps.Equal(old, labels) {
		return fmt.Errorf("Namespace %s has labels %v here and %v in another file", name, labels, old)
	}
	c.Namespaces[name] = labels
	return nil
}

// NamespaceNames returns the corpus's Namespaces, sorted.
func (c *Corpus) NamespaceNames() []string {
	return slices.Sorted(maps.Keys(c.Namespaces))
}

// decodeAll decodes a multi-document YAML stream, skipping empty documents.
func decodeAll(data []byte) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		var m map[string]any
		if err := yaml.Unmarshal(doc, &m); err != nil {
			return nil, err
		}
		if len(m) == 0 {
			continue
		}
		out = append(out, &unstructured.Unstructured{Object: m})
	}
}

// readYAMLDir decodes every *.yaml/*.yml file under dir, recursively, in
// lexical order (Kyverno's CRDs, the policies).
func readYAMLDir(dir string) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || (!strings.HasSuffix(p, ".yaml") && !strings.HasSuffix(p, ".yml")) {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		objs, err := decodeAll(data)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		out = append(out, objs...)
		return nil
	})
	if err == nil && len(out) == 0 {
		err = fmt.Errorf("no objects in %s", dir)
	}
	return out, err
}
