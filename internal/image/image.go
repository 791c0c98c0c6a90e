// Package image builds strata's container image without a container engine:
// one layer holding the static strata binary, the nonroot user and a CA
// bundle, on an empty base, assembled with go-containerregistry. Every input
// of the image (file contents, modes, owners, mtimes, the config's created
// time) is fixed by the commit, so the same commit built with the same Go
// toolchain gives the same digest.
package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"sort"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/crypto/x509roots/fallback/bundle"
)

// The image's fixed facts, which the chart's securityContext relies on.
const (
	Entrypoint = "/strata"
	// UID and GID of the nonroot user (distroless's), the chart's runAsUser.
	UID  = 65532
	User = "65532:65532"
	// CABundle is where Go (and OpenSSL) look for system roots on Linux.
	CABundle = "/etc/ssl/certs/ca-certificates.crt"
)

// OCI annotation keys the config labels and manifest annotations use.
const (
	LabelTitle       = "org.opencontainers.image.title"
	LabelDescription = "org.opencontainers.image.description"
	LabelSource      = "org.opencontainers.image.source"
	LabelRevision    = "org.opencontainers.image.revision"
	LabelVersion     = "org.opencontainers.image.version"
	LabelCreated     = "org.opencontainers.image.created"
)

// Options describe one image.
type Options struct {
	// Binary is the static linux strata executable.
	Binary []byte
	// Arch is its GOARCH: amd64 or arm64.
	Arch string
	// Version and Revision (the full commit) are stamped into the labels.
	Version  string
	Revision string
	// Source is the repository URL of org.opencontainers.image.source.
	Source string
	// Created is the commit's time: the config's created time, the labels'
	// and every file's mtime. A build time would change the digest per build.
	Created time.Time
}

// Build assembles the image: an OCI manifest on an empty base with one layer.
func Build(o Options) (v1.Image, error) {
	if len(o.Binary) == 0 {
		return nil, fmt.Errorf("image: no binary")
	}
	platform, err := platformOf(o.Arch)
	if err != nil {
		return nil, err
	}
	created := o.Created.UTC().Truncate(time.Second)
	layerTar, err := layerTar(o.Binary, created)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer), tarball.WithCompressionLevel(gzip.BestCompression),
		// The digest and every write read the compressed blob: compress once.
		tarball.WithCompressedCaching)
	if err != nil {
		return nil, err
	}

	labels := map[string]string{
		LabelTitle:       "strata",
		LabelDescription: "GitOps reconciler and admission webhook that places objects by data sensitivity",
		LabelSource:      o.Source,
		LabelRevision:    o.Revision,
		LabelVersion:     o.Version,
		LabelCreated:     created.Format(time.RFC3339),
	}
	cfg := &v1.ConfigFile{
		Architecture: platform.Architecture,
		Variant:      platform.Variant,
		OS:           platform.OS,
		Created:      v1.Time{Time: created},
		Config: v1.Config{
			Entrypoint: []string{Entrypoint},
			User:       User,
			WorkingDir: "/",
			Labels:     labels,
		},
		RootFS: v1.RootFS{Type: "layers"},
	}
	img, err := mutate.ConfigFile(empty.Image, cfg)
	if err != nil {
		return nil, err
	}
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{
		Layer: layer,
		History: v1.History{
			Created:   v1.Time{Time: created},
			CreatedBy: "hack/image (go-containerregistry): /strata, nonroot user, CA bundle",
		},
		MediaType: types.OCILayer,
	})
	if err != nil {
		return nil, err
	}
	// Registries (ghcr.io among them) read source and revision from the
	// manifest's annotations, not from the config.
	return mutate.Annotations(img, labels).(v1.Image), nil
}

// platformOf is the image platform of a GOARCH this image supports.
func platformOf(arch string) (v1.Platform, error) {
	switch arch {
	case "amd64":
		return v1.Platform{OS: "linux", Architecture: "amd64"}, nil
	case "arm64":
		return v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}, nil
	}
	return v1.Platform{}, fmt.Errorf("image: unsupported architecture %q (amd64 or arm64)", arch)
}

// entry is one file or directory of the layer.
type entry struct {
	name     string // without a leading slash; directories end in "/"
	mode     int64
	uid, gid int
	data     []byte
	isDir    bool
	sticky   bool
}

// layerTar writes the layer's tar: sorted names, fixed mtimes, numeric
// owners only (no user names, no atime/ctime), so that it depends on its
// contents alone. Files are root's, so the nonroot process cannot replace
// its own binary even with a writable root filesystem.
func layerTar(binary []byte, mtime time.Time) ([]byte, error) {
	ca, err := caBundle()
	if err != nil {
		return nil, err
	}
	entries := []entry{
		{name: "etc/", mode: 0o755, isDir: true},
		{name: "etc/passwd", mode: 0o644, data: []byte("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")},
		{name: "etc/group", mode: 0o644, data: []byte("root:x:0:\nnonroot:x:65532:\n")},
		{name: "etc/ssl/", mode: 0o755, isDir: true},
		{name: "etc/ssl/certs/", mode: 0o755, isDir: true},
		{name: CABundle[1:], mode: 0o644, data: ca},
		{name: "home/", mode: 0o755, isDir: true},
		{name: "home/nonroot/", mode: 0o700, isDir: true, uid: UID, gid: UID},
		{name: Entrypoint[1:], mode: 0o755, data: binary},
		// The chart mounts an emptyDir here; plain `docker run` gets a
		// world-writable sticky /tmp like any base image's.
		{name: "tmp/", mode: 0o777, isDir: true, sticky: true},
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].name < entries[j].name })

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{
			Name:    e.name,
			Mode:    e.mode,
			Uid:     e.uid,
			Gid:     e.gid,
			ModTime: mtime,
			Format:  tar.FormatUSTAR, // no PAX records: nothing beyond the fields set here
		}
		if e.sticky {
			h.Mode |= 0o1000 // c_ISVTX: tar's sticky bit
		}
		if e.isDir {
			h.Typeflag = tar.TypeDir
		} else {
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(e.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// caBundle is the PEM bundle of Mozilla's NSS roots as vendored by
// golang.org/x/crypto/x509roots/fallback: the reconciler clones its config
// repository over https, and an empty base has no roots. Roots with
// constraints (distrusted after a date) are left out, since a PEM file cannot
// carry the constraint.
func caBundle() ([]byte, error) {
	var buf bytes.Buffer
	for r := range bundle.Roots() {
		if r.Constraint != nil {
			continue
		}
		if _, err := x509.ParseCertificate(r.Certificate); err != nil {
			return nil, fmt.Errorf("image: CA bundle: %w", err)
		}
		if err := pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: r.Certificate}); err != nil {
			return nil, err
		}
	}
	return buf.Bytes(), nil
}
