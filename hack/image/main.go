// Command image builds strata's container image without a container engine
// (make image): it compiles ./cmd/strata static for linux, assembles the
// image with internal/image, and pushes it to -repo or, when -repo is empty,
// writes an OCI image layout to -out. It prints the digest and the size.
//
// The created time is the commit's (or $SOURCE_DATE_EPOCH), never the build's,
// so that building one commit twice gives one digest.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/strata-gitops/strata/internal/image"
)

func main() {
	var (
		repo    = flag.String("repo", "", "registry repository to push to, e.g. ghcr.io/you/strata; empty: write an OCI layout to -out")
		tag     = flag.String("tag", "", "image tag (required)")
		out     = flag.String("out", "bin/image", "OCI layout directory when -repo is empty (replaced)")
		version = flag.String("version", "dev", "version stamped into strata and the labels")
		commit  = flag.String("commit", "", "full commit stamped into strata and the labels (required)")
		source  = flag.String("source", "https://github.com/strata-gitops/strata", "org.opencontainers.image.source")
		arch    = flag.String("arch", "amd64", "GOARCH of the image: amd64 or arm64")
	)
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *repo, *tag, *out, *version, *commit, *source, *arch); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, repo, tag, out, version, commit, source, arch string) error {
	if tag == "" || commit == "" {
		return fmt.Errorf("-tag and -commit are required")
	}
	created, err := createdTime(ctx, commit)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "strata-image-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "strata")
	fmt.Fprintf(os.Stderr, "image: go build ./cmd/strata (linux/%s, %s, %s)\n", arch, version, commit)
	if err := image.BuildBinary(ctx, image.BinaryOptions{ModuleDir: ".", Out: bin, Arch: arch, Version: version, Commit: commit}); err != nil {
		return err
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		return err
	}
	img, err := image.Build(image.Options{Binary: data, Arch: arch, Version: version, Revision: commit, Source: source, Created: created})
	if err != nil {
		return err
	}
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	compressed, unpacked, err := image.Size(img)
	if err != nil {
		return err
	}
	if repo == "" {
		if err := image.WriteLayout(out, img, tag); err != nil {
			return err
		}
		fmt.Printf("wrote OCI layout %s (ref %s)\n", out, tag)
	} else {
		ref, err := image.Push(ctx, img, repo, tag)
		if err != nil {
			return err
		}
		fmt.Printf("pushed %s:%s\n%s\n", repo, tag, ref)
	}
	fmt.Printf("digest: %s\nsize: %.1f MiB compressed, %.1f MiB unpacked (binary %.1f MiB)\ncreated: %s\n",
		digest, mib(compressed), mib(unpacked), mib(int64(len(data))), created.UTC().Format(time.RFC3339))
	return nil
}

// createdTime is $SOURCE_DATE_EPOCH if set (reproducible-builds.org), else
// the committer time of commit.
func createdTime(ctx context.Context, commit string) (time.Time, error) {
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		sec, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q: %w", s, err)
		}
		return time.Unix(sec, 0), nil
	}
	b, err := exec.CommandContext(ctx, "git", "show", "-s", "--format=%ct", commit).Output()
	if err != nil {
		return time.Time{}, fmt.Errorf("commit time of %s (outside a git checkout, set SOURCE_DATE_EPOCH): %w", commit, err)
	}
	sec, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("commit time of %s: %q: %w", commit, b, err)
	}
	return time.Unix(sec, 0), nil
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }
