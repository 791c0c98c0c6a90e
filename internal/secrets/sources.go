package secrets

import (
	"bytes"
	"io/fs"
	"path/filepath"
	"regexp"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// maxSourceSize bounds the files read when looking for SOPS documents.
const maxSourceSize = 1 << 20

// Source is one SOPS-encrypted YAML document or dotenv file of the
// repository, as committed: the bytes its MAC covers.
type Source struct {
	// File is the repository-relative path.
	File string
	Doc  []byte
}

var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)

// Sources indexes the SOPS-encrypted YAML documents and dotenv files of
// the repository at root in fsys by their MAC (unique per encryption). Kustomize changes the
// metadata of what it renders (namespace, labels, strata's stamps) and SOPS'
// MAC covers every value, so a rendered Secret is decrypted from the file
// it came from — wherever it is (a base, an overlay, a window's component).
func Sources(fsys filesys.FileSystem, root string) (map[string]Source, error) {
	out := map[string]Source{}
	err := fsys.Walk(root, func(p string, info fs.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if info.IsDir() {
			if info.Name() == ".git" {
				return filepath.SkipDir
			}
			return nil
		}
		if info.Size() > maxSourceSize {
			return nil
		}
		b, err := fsys.ReadFile(p)
		if err != nil || !bytes.Contains(b, []byte("ENC[AES256_GCM,")) {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		ext := strings.ToLower(filepath.Ext(p))
		if ext != ".yaml" && ext != ".yml" && ext != ".json" {
			// A dotenv file a secretGenerator's envs: reads (any name).
			if mac := envMAC(b); mac != "" {
				out[mac] = Source{File: filepath.ToSlash(rel), Doc: b}
			}
			return nil
		}
		for _, doc := range docSeparator.Split(string(b), -1) {
			var m map[string]any
			if yaml.Unmarshal([]byte(doc), &m) != nil {
				continue
			}
			if mac := MAC(m); mac != "" {
				out[mac] = Source{File: filepath.ToSlash(rel), Doc: []byte(doc)}
			}
		}
		return nil
	})
	return out, err
}

// MAC returns the encrypted MAC of an encrypted manifest, or of the
// encrypted dotenv file whose lines obj holds ("" if none).
func MAC(obj map[string]any) string {
	s, _ := obj["sops"].(map[string]any)
	if mac, _ := s["mac"].(string); mac != "" {
		return mac
	}
	_, env := envValues(obj)
	return env[envMACKey]
}
