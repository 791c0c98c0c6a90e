package image

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// cliPkg holds the version and commit that -X stamps (see the Makefile).
const cliPkg = "github.com/strata-gitops/strata/internal/cli"

// BinaryOptions describe one build of the strata binary for the image.
type BinaryOptions struct {
	// Go is the go command; empty: "go" from PATH.
	Go string
	// ModuleDir is the root of the strata module.
	ModuleDir string
	// Out is the path of the binary to write.
	Out string
	// Arch is the GOARCH (amd64 or arm64).
	Arch string
	// Version and Commit are stamped into internal/cli (strata version).
	Version, Commit string
}

// BuildBinary compiles ./cmd/strata into a static, stripped linux binary whose
// bytes depend only on the source, the flags here and the Go toolchain: no
// cgo, no paths (-trimpath), no VCS stamp (the commit comes from -X), no
// build ID, and the architecture levels pinned whatever the caller's env says.
func BuildBinary(ctx context.Context, o BinaryOptions) error {
	if _, err := platformOf(o.Arch); err != nil {
		return err
	}
	for _, v := range []string{o.Version, o.Commit} {
		if v == "" || strings.ContainsAny(v, " \t\n'\"") {
			return fmt.Errorf("image: version and commit must be non-empty words, got %q", v)
		}
	}
	goCmd := o.Go
	if goCmd == "" {
		goCmd = "go"
	}
	ldflags := fmt.Sprintf("-s -w -buildid= -X %s.version=%s -X %s.commit=%s", cliPkg, o.Version, cliPkg, o.Commit)
	cmd := exec.CommandContext(ctx, goCmd, "build", "-trimpath", "-buildvcs=false", "-ldflags", ldflags, "-o", o.Out, "./cmd/strata")
	cmd.Dir = o.ModuleDir
	cmd.Env = append(os.Environ(),
		"CGO_ENABLED=0", "GOOS=linux", "GOARCH="+o.Arch,
		"GOAMD64=v1", "GOARM64=v8.0",
		// A caller's GOFLAGS (-race, -cover, -tags) would change the binary.
		"GOFLAGS=-mod=readonly",
	)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("image: go build ./cmd/strata: %w\n%s", err, stderr.String())
	}
	return nil
}
