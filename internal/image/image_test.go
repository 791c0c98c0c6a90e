package image

import (
	"archive/tar"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

const (
	testVersion = "v0.0.0-imagetest"
	testCommit  = "0123456789abcdef0123456789abcdef01234567"
	testSource  = "https://example.com/strata"
)

var testCreated = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// buildTestImage compiles strata for this machine's architecture into dir
// and assembles its image.
func buildTestImage(t *testing.T, ctx context.Context, dir string) (v1.Image, []byte) {
	t.Helper()
	bin := filepath.Join(dir, "strata")
	moduleDir, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if err := BuildBinary(ctx, BinaryOptions{ModuleDir: moduleDir, Out: bin, Arch: runtime.GOARCH, Version: testVersion, Commit: testCommit}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	img, err := Build(Options{Binary: data, Arch: runtime.GOARCH, Version: testVersion, Revision: testCommit, Source: testSource, Created: testCreated})
	if err != nil {
		t.Fatal(err)
	}
	return img, data
}

// TestImage builds the image twice from the same inputs (two go builds into
// different directories), writes it as an OCI layout, pushes it to an
// in-process registry, pulls it back, checks its config and layer, and runs
// `strata version` from the binary extracted from the layer.
func TestImage(t *testing.T) {
	if runtime.GOOS != "linux" || (runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64") {
		t.Skipf("runs the linux image's binary: needs linux/amd64 or linux/arm64, not %s/%s", runtime.GOOS, runtime.GOARCH)
	}
	if testing.Short() {
		t.Skip("-short: compiles strata with the image's flags (a cold build cache takes many minutes)")
	}
	// -trimpath and CGO_ENABLED=0 change every package's build action, so a
	// cold cache compiles all of strata once more; the second build relinks.
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()

	img, bin := buildTestImage(t, ctx, t.TempDir())
	again, _ := buildTestImage(t, ctx, t.TempDir())
	digest := mustDigest(t, img)
	if d := mustDigest(t, again); d != digest {
		t.Fatalf("two builds of the same inputs differ: %s and %s", digest, d)
	}
	compressed, unpacked, err := Size(img)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("image %s: %d bytes compressed, %d unpacked, binary %d", digest, compressed, unpacked, len(bin))

	// OCI layout (make image without IMAGE_REPO), written twice: the second
	// write replaces the first.
	dir := filepath.Join(t.TempDir(), "layout")
	for range 2 {
		if err := WriteLayout(dir, img, "test"); err != nil {
			t.Fatal(err)
		}
	}
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 || im.Manifests[0].Digest != digest || im.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != "test" {
		t.Errorf("layout index = %+v, want one manifest %s named test", im.Manifests, digest)
	}

	// Push to an in-process registry and pull back.
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	repo := strings.TrimPrefix(srv.URL, "http://") + "/strata-gitops/strata"
	ref, err := Push(ctx, img, repo, "0.1.0")
	if err != nil {
		t.Fatal(err)
	}
	if ref.DigestStr() != digest.String() {
		t.Errorf("Push returned %s, want digest %s", ref, digest)
	}
	tag, err := name.NewTag(repo + ":0.1.0")
	if err != nil {
		t.Fatal(err)
	}
	pulled, err := remote.Image(tag, remote.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	if d := mustDigest(t, pulled); d != digest {
		t.Errorf("pulled %s, pushed %s", d, digest)
	}
	checkManifest(t, pulled)
	checkConfig(t, pulled)
	checkLayer(t, ctx, pulled, bin)
}

func mustDigest(t *testing.T, img v1.Image) v1.Hash {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func wantLabels() map[string]string {
	return map[string]string{
		LabelTitle:       "strata",
		LabelDescription: "GitOps reconciler and admission webhook that places objects by data sensitivity",
		LabelSource:      testSource,
		LabelRevision:    testCommit,
		LabelVersion:     testVersion,
		LabelCreated:     "2026-01-02T03:04:05Z",
	}
}

func checkManifest(t *testing.T, img v1.Image) {
	t.Helper()
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.MediaType != types.OCIManifestSchema1 || m.Config.MediaType != types.OCIConfigJSON {
		t.Errorf("media types %s / %s, want an OCI manifest and config", m.MediaType, m.Config.MediaType)
	}
	if len(m.Layers) != 1 || m.Layers[0].MediaType != types.OCILayer {
		t.Errorf("layers %+v, want one %s", m.Layers, types.OCILayer)
	}
	if diff := cmp.Diff(wantLabels(), m.Annotations); diff != "" {
		t.Errorf("manifest annotations (-want +got):\n%s", diff)
	}
}

func checkConfig(t *testing.T, img v1.Image) {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	want := v1.Config{
		Entrypoint: []string{"/strata"},
		User:       "65532:65532",
		WorkingDir: "/",
		Labels:     wantLabels(),
	}
	if diff := cmp.Diff(want, cf.Config); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
	if cf.OS != "linux" || cf.Architecture != runtime.GOARCH || !cf.Created.Equal(testCreated) {
		t.Errorf("config platform %s/%s created %s, want linux/%s created %s", cf.OS, cf.Architecture, cf.Created, runtime.GOARCH, testCreated)
	}
}

// checkLayer reads the layer's files, checks owners, modes and mtimes,
// checks the CA bundle parses, and runs the binary it holds.
func checkLayer(t *testing.T, ctx context.Context, img v1.Image, bin []byte) {
	t.Helper()
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers: %d, %v", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	type file struct {
		Mode     int64
		UID, GID int
	}
	got := map[string]file{}
	contents := map[string][]byte{}
	var names []string
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		got[h.Name] = file{h.Mode, h.Uid, h.Gid}
		if !h.ModTime.Equal(testCreated) {
			t.Errorf("%s: mtime %s, want %s", h.Name, h.ModTime, testCreated)
		}
		if h.Typeflag == tar.TypeReg {
			if contents[h.Name], err = io.ReadAll(tr); err != nil {
				t.Fatal(err)
			}
		}
	}
	want := map[string]file{
		"etc/": {0o755, 0, 0}, "etc/group": {0o644, 0, 0}, "etc/passwd": {0o644, 0, 0},
		"etc/ssl/": {0o755, 0, 0}, "etc/ssl/certs/": {0o755, 0, 0}, "etc/ssl/certs/ca-certificates.crt": {0o644, 0, 0},
		"home/": {0o755, 0, 0}, "home/nonroot/": {0o700, UID, UID},
		"strata": {0o755, 0, 0}, "tmp/": {0o1777, 0, 0},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("layer files (-want +got):\n%s", diff)
	}
	for i := 1; i < len(names); i++ {
		if names[i-1] >= names[i] {
			t.Errorf("layer entries not sorted: %q before %q", names[i-1], names[i])
		}
	}
	if !strings.Contains(string(contents["etc/passwd"]), "nonroot:x:65532:65532:") {
		t.Errorf("etc/passwd has no nonroot user:\n%s", contents["etc/passwd"])
	}
	roots, rest := 0, contents["etc/ssl/certs/ca-certificates.crt"]
	for {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			t.Errorf("CA bundle: root %d: %v", roots, err)
		}
		roots++
	}
	if roots < 100 || len(rest) != 0 {
		t.Errorf("CA bundle holds %d roots and %d trailing bytes, want Mozilla's (over 100) alone", roots, len(rest))
	}
	if string(contents["strata"]) != string(bin) {
		t.Fatalf("the layer's /strata (%d bytes) is not the binary built (%d bytes)", len(contents["strata"]), len(bin))
	}

	exe := filepath.Join(t.TempDir(), "strata")
	if err := os.WriteFile(exe, contents["strata"], 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(ctx, exe, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("strata version: %v\n%s", err, out)
	}
	for _, w := range []string{"strata " + testVersion + "\n", "commit: " + testCommit + "\n", "linux/" + runtime.GOARCH} {
		if !strings.Contains(string(out), w) {
			t.Errorf("strata version does not print %q:\n%s", w, out)
		}
	}
}

// TestBuildRejects checks the inputs Build and BuildBinary refuse.
func TestBuildRejects(t *testing.T) {
	if _, err := Build(Options{Arch: "amd64"}); err == nil {
		t.Error("Build without a binary succeeded")
	}
	if _, err := Build(Options{Binary: []byte("x"), Arch: "s390x"}); err == nil || !strings.Contains(err.Error(), "s390x") {
		t.Errorf("Build for s390x: %v, want an error naming it", err)
	}
	err := BuildBinary(context.Background(), BinaryOptions{Arch: "amd64", Version: "1.0 beta", Commit: testCommit})
	if err == nil || !strings.Contains(err.Error(), "1.0 beta") {
		t.Errorf("BuildBinary with a version holding a space: %v, want an error naming it", err)
	}
}
