//go:build tools

// Package flux pins the Flux controllers built by bench/peers/build.sh.
package flux

import (
	_ "github.com/fluxcd/kustomize-controller"
	_ "github.com/fluxcd/source-controller"
)
