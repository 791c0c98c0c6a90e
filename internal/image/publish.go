package image

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// WriteLayout replaces dir with an OCI image layout holding img alone, its
// index entry named tag (org.opencontainers.image.ref.name), so that tools
// such as crane, skopeo or oras can copy it to a registry later.
func WriteLayout(dir string, img v1.Image, tag string) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("image: OCI layout %s: %w", dir, err)
	}
	return p.AppendImage(img, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": tag,
	}))
}

// Push pushes img to repo:tag with the credentials of the Docker config
// (docker login, credential helpers) and returns its reference by digest.
// Registries on localhost and private addresses are spoken to over http.
func Push(ctx context.Context, img v1.Image, repo, tag string, opts ...remote.Option) (name.Digest, error) {
	ref, err := name.NewTag(repo + ":" + tag)
	if err != nil {
		return name.Digest{}, fmt.Errorf("image: IMAGE_REPO %q with tag %q: %w", repo, tag, err)
	}
	opts = append([]remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)}, opts...)
	if err := remote.Write(ref, img, opts...); err != nil {
		return name.Digest{}, fmt.Errorf("image: push %s: %w", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		return name.Digest{}, err
	}
	return ref.Context().Digest(d.String()), nil
}

// Size returns the bytes a pull transfers (manifest, config and compressed
// layers) and the size of the layers' uncompressed tars.
func Size(img v1.Image) (compressed, unpacked int64, err error) {
	m, err := img.Manifest()
	if err != nil {
		return 0, 0, err
	}
	raw, err := img.RawManifest()
	if err != nil {
		return 0, 0, err
	}
	compressed = int64(len(raw)) + m.Config.Size
	for _, l := range m.Layers {
		compressed += l.Size
	}
	layers, err := img.Layers()
	if err != nil {
		return 0, 0, err
	}
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			return 0, 0, err
		}
		n, err := io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			return 0, 0, err
		}
		unpacked += n
	}
	return compressed, unpacked, nil
}
