package e2e

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/strata-gitops/strata/internal/image"
)

// The image the chart's containers run (see pod_test.go), built the way
// make image builds it.

// containerImage is the extracted image: its root and its config.
type containerImage struct {
	root   string
	config v1.Config
}

// buildContainerImage compiles strata with the image's flags, assembles the
// image with internal/image and extracts its file system into dir/rootfs.
func buildContainerImage(ctx context.Context, dir string) (*containerImage, error) {
	moduleDir, err := filepath.Abs("..")
	if err != nil {
		return nil, err
	}
	const version, commit = "v0.0.0-charttest", "0000000000000000000000000000000000000000"
	bin := filepath.Join(dir, "strata")
	if err := image.BuildBinary(ctx, image.BinaryOptions{ModuleDir: moduleDir, Out: bin, Arch: runtime.GOARCH, Version: version, Commit: commit}); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	img, err := image.Build(image.Options{Binary: data, Arch: runtime.GOARCH, Version: version, Revision: commit,
		Source: "https://github.com/strata-gitops/strata", Created: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	root := filepath.Join(dir, "rootfs")
	rc := mutate.Extract(img)
	defer rc.Close()
	if err := untar(rc, root); err != nil {
		return nil, fmt.Errorf("extracting the image: %w", err)
	}
	return &containerImage{root: root, config: cf.Config}, nil
}

// untar writes a flattened image file system under root, with the owners
// and modes of its headers.
func untar(r io.Reader, root string) error {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return err
	}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		name := filepath.Clean(h.Name)
		if !filepath.IsLocal(name) {
			return fmt.Errorf("entry %q leaves the root", h.Name)
		}
		p := filepath.Join(root, name)
		switch h.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(p, 0o755)
		case tar.TypeReg:
			err = writeFrom(p, tr)
		case tar.TypeSymlink:
			err = os.Symlink(h.Linkname, p)
		default:
			return fmt.Errorf("entry %q: type %c is not emulated", h.Name, h.Typeflag)
		}
		if err == nil {
			err = os.Lchown(p, h.Uid, h.Gid)
		}
		if err == nil && h.Typeflag != tar.TypeSymlink {
			err = os.Chmod(p, h.FileInfo().Mode())
		}
		if err != nil {
			return err
		}
	}
}

func writeFrom(p string, r io.Reader) error {
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
