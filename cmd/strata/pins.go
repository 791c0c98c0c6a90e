//go:build tools

// This file is never built. It keeps the versions of ../shared/dependencies.md
// in go.mod while later packages start to use them: `go mod tidy` sees
// imports under every build tag, so these modules stay at their pinned
// versions instead of moving to releases that need a newer Go.
package main

import (
	_ "github.com/fluxcd/cli-utils/pkg/kstatus/status"
	_ "github.com/fluxcd/pkg/gittestserver"
	_ "github.com/fluxcd/pkg/runtime/conditions"
	_ "github.com/fluxcd/pkg/ssa"
	_ "github.com/google/cel-go/cel"
	_ "github.com/kyverno/api/api/policies.kyverno.io/v1"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/sigstore/sigstore/pkg/signature/dsse"
	_ "k8s.io/apiserver/pkg/cel"
	_ "sigs.k8s.io/controller-runtime/pkg/envtest"
)
