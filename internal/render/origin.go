package render

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/resource"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/strata-gitops/strata/internal/source"
)

// maxOriginFileSize bounds the files copied for an origin render; a render
// that needs a larger file fails and the caller goes without origins.
const maxOriginFileSize = 4 << 20

// originRoot is where the repository is copied inside the in-memory
// filesystem of an origin render. It is a subdirectory so that the wrapper
// kustomization can sit next to an overlay at the repository root too.
const originRoot = "/repo"

// Key identifies a rendered object as "group/kind/namespace/name" (group
// empty for the core group), as the keys of Origins.
func Key(r *resource.Resource) string {
	gvk := r.GetGvk()
	return gvk.Group + "/" + gvk.Kind + "/" + r.GetNamespace() + "/" + r.GetName()
}

// Origins renders overlay of snap again with kustomize's origin tracking on
// and returns, for every object's Key, the repository-relative file it was
// read from (for a generated object, the kustomization file that generates
// it). It is slower than Overlay and meant for error messages only.
//
// Kustomize keeps origins only when the top kustomization asks for them
// (buildMetadata: [originAnnotations]). The repository is never written:
// its files are copied into memory, and a wrapper kustomization asking for
// origins is added next to the overlay (not inside it: kustomize refuses a
// base at or above the kustomization that uses it).
func Origins(snap *source.Snapshot, overlay string, opts Options) (map[string]string, error) {
	mem, wrapperDir, err := wrap(snap, overlay, ".strata-origin-", func(base string) string {
		return fmt.Sprintf("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- %q\nbuildMetadata:\n- %s\n",
			"../"+base, types.OriginAnnotations)
	})
	if err != nil {
		return nil, err
	}
	ko := krusty.MakeDefaultOptions()
	ko.LoadRestrictions = opts.LoadRestrictions
	m, err := krusty.MakeKustomizer(ko).Run(mem, wrapperDir)
	if err != nil {
		return nil, fmt.Errorf("rendering %s with origin tracking: %w", overlay, err)
	}
	out := make(map[string]string, m.Size())
	for _, r := range m.Resources() {
		o, err := r.GetOrigin()
		if err != nil || o == nil {
			continue
		}
		if file := originFile(wrapperDir, o); file != "" {
			out[Key(r)] = file
		}
	}
	return out, nil
}

// originFile turns an origin (paths relative to the wrapper directory) into
// a repository-relative slash path, or "" when it is outside the repository.
func originFile(wrapperDir string, o *resource.Origin) string {
	p := o.Path
	if p == "" {
		p = o.ConfiguredIn
	}
	if p == "" {
		return ""
	}
	if o.Repo != "" {
		// A remote base: its path is relative to that repository.
		s := o.Repo + "//" + filepath.ToSlash(p)
		if o.Ref != "" {
			s += "?ref=" + o.Ref
		}
		return s
	}
	abs := path.Join(wrapperDir, filepath.ToSlash(p))
	rel, ok := strings.CutPrefix(abs, originRoot+"/")
	if !ok {
		return ""
	}
	return rel
}

// copyToMemory copies snap's repository into a fresh in-memory filesystem
// under originRoot, leaving out .git directories and files larger than
// maxOriginFileSize.
func copyToMemory(snap *source.Snapshot) (filesys.FileSystem, error) {
	mem := filesys.MakeFsInMemory()
	root := filepath.Clean(snap.Root)
	err := snap.FS.Walk(root, func(p string, info fs.FileInfo, err error) error {
		if err != nil {
			if p == root {
				return err
			}
			if info != nil && info.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		if info.IsDir() {
			if info.Name() == ".git" && rel != "." {
				return filepath.SkipDir
			}
			return nil
		}
		if info.Name() == ".git" || info.Size() > maxOriginFileSize {
			return nil
		}
		if !info.Mode().IsRegular() && info.Mode()&os.ModeSymlink == 0 {
			return nil
		}
		data, err := snap.FS.ReadFile(p)
		if err != nil {
			// A dangling link or an unreadable file: a render that needs it
			// fails and names it.
			return nil
		}
		if len(data) > maxOriginFileSize {
			return nil
		}
		return mem.WriteFile(path.Join(originRoot, filepath.ToSlash(rel)), data)
	})
	if err != nil {
		return nil, fmt.Errorf("copying %s for origin tracking: %w", snap.RevisionLabel(), err)
	}
	return mem, nil
}

// wrap copies snap into memory and adds, next to overlay (not inside it:
// kustomize refuses a base at or above the kustomization that uses it), a
// wrapper kustomization whose content body returns for the overlay's base
// name. The repository is never written.
func wrap(snap *source.Snapshot, overlay, prefix string, body func(base string) string) (filesys.FileSystem, string, error) {
	overlay = path.Clean(overlay)
	if path.IsAbs(overlay) || overlay == ".." || strings.HasPrefix(overlay, "../") {
		return nil, "", fmt.Errorf("overlay %s is not inside the repository", overlay)
	}
	mem, err := copyToMemory(snap)
	if err != nil {
		return nil, "", err
	}
	overlayDir := path.Join(originRoot, overlay)
	if !mem.IsDir(overlayDir) {
		return nil, "", fmt.Errorf("directory %s does not exist in %s", overlay, snap.RevisionLabel())
	}
	parent, base := path.Split(overlayDir)
	wrapperDir := path.Join(parent, prefix+base)
	for i := 2; mem.Exists(wrapperDir); i++ {
		wrapperDir = path.Join(parent, fmt.Sprintf("%s%s-%d", prefix, base, i))
	}
	if err := mem.MkdirAll(wrapperDir); err != nil {
		return nil, "", err
	}
	if err := mem.WriteFile(path.Join(wrapperDir, "kustomization.yaml"), []byte(body(base))); err != nil {
		return nil, "", err
	}
	return mem, wrapperDir, nil
}
