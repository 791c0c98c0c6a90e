//go:build tools

// Package helm pins the Helm CLI that the chart tests (charts/charttest) run.
// It is a module of its own, apart from hack/tools, so that Helm's
// dependencies never move the modules the Kubernetes control-plane binaries
// are built from (Helm would upgrade golang.org/x/*, cobra, pflag, moby/term
// and others there) and so that changing Helm never invalidates the stamps of
// those binaries. helm.sh/helm/v3 v3.20.2 is the newest Helm on k8s 0.35.
package helm

import (
	_ "helm.sh/helm/v3/cmd/helm"
)
