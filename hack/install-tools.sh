#!/usr/bin/env bash
# Builds the Kubernetes control-plane binaries (kube-apiserver, etcd,
# kube-controller-manager, kube-scheduler), kwok/kwokctl and helm from the Go
# module proxy into $STRATA_BIN (default ~/.cache/strata/bin). A stamp of the
# pinned versions makes later runs a no-op; the first cold build takes many
# minutes.
#
# Usage: hack/install-tools.sh [envtest|helm|sops|all]
#   envtest: kube-apiserver + etcd (enough for controller-runtime envtest)
#   helm:    helm only (the chart tests in charts/charttest)
#   sops:    the sops CLI only (internal/secrets interop tests)
#   all:     also kube-controller-manager, kube-scheduler, kubectl, kwok, kwokctl, helm, sops
#
# helm is built from its own module (hack/helm), not hack/tools: Helm's
# dependencies would move golang.org/x/*, cobra and others under the
# control-plane binaries, and a change of hack/tools/go.sum rebuilds them all.
set -euo pipefail
export GOTOOLCHAIN=local
what=${1:-all}
here=$(cd "$(dirname "$0")" && pwd)
BIN=${STRATA_BIN:-$HOME/.cache/strata/bin}
KUBE_VERSION=v1.35.4
KWOK_VERSION=v0.8.0
HELM_VERSION=v3.20.2
# sops: the same version as strata's go.mod, for the interop tests.
SOPS_VERSION=v3.13.3
mkdir -p "$BIN"
stamp_of() { echo "$KUBE_VERSION $KWOK_VERSION $(sha256sum "$here/tools/go.sum" | cut -c1-16) $1"; }

build() { # name package
  local name=$1 pkg=$2
  if [ -x "$BIN/$name" ] && [ "$(cat "$BIN/.$name.stamp" 2>/dev/null)" = "$(stamp_of "$name")" ]; then
    echo "tools: $name up to date in $BIN"
    return
  fi
  echo "tools: building $name (cold builds take minutes on 2 cores)..."
  local start=$SECONDS
  (cd "$here/tools" && go build -trimpath \
    -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=35" \
    -o "$BIN/$name.tmp" "$pkg")
  mv "$BIN/$name.tmp" "$BIN/$name"
  stamp_of "$name" >"$BIN/.$name.stamp"
  echo "tools: built $name in $((SECONDS - start))s"
}

build_kwok() {
  if [ -x "$BIN/kwok" ] && [ -x "$BIN/kwokctl" ] && [ "$(cat "$BIN/.kwok.stamp" 2>/dev/null)" = "$(stamp_of kwok)" ]; then
    echo "tools: kwok, kwokctl up to date in $BIN"
    return
  fi
  echo "tools: building kwok and kwokctl $KWOK_VERSION (a cold build can take 15 minutes)..."
  local start=$SECONDS
  GOBIN="$BIN" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" "sigs.k8s.io/kwok/cmd/kwokctl@$KWOK_VERSION"
  stamp_of kwok >"$BIN/.kwok.stamp"
  echo "tools: built kwok in $((SECONDS - start))s"
}

build_helm() {
  local stamp
  stamp="$HELM_VERSION $(sha256sum "$here/helm/go.sum" | cut -c1-16) helm"
  if [ -x "$BIN/helm" ] && [ "$(cat "$BIN/.helm.stamp" 2>/dev/null)" = "$stamp" ]; then
    echo "tools: helm up to date in $BIN"
    return
  fi
  echo "tools: building helm $HELM_VERSION (a cold build takes minutes on 2 cores)..."
  local start=$SECONDS
  # The same version stamps as Helm's Makefile: the version, and the
  # Kubernetes version `helm template` and `helm lint` assume (1.35 here).
  (cd "$here/helm" && CGO_ENABLED=0 go build -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean \
      -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=35 \
      -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=35" \
    -o "$BIN/helm.tmp" helm.sh/helm/v3/cmd/helm)
  mv "$BIN/helm.tmp" "$BIN/helm"
  echo "$stamp" >"$BIN/.helm.stamp"
  echo "tools: built helm in $((SECONDS - start))s"
}

build_sops() { # the sops CLI, built from its own module at the pinned version
  if [ -x "$BIN/sops" ] && [ "$(cat "$BIN/.sops.stamp" 2>/dev/null)" = "$SOPS_VERSION" ]; then
    echo "tools: sops up to date in $BIN"
    return
  fi
  echo "tools: building sops $SOPS_VERSION (a cold build takes minutes)..."
  local start=$SECONDS
  GOBIN="$BIN" CGO_ENABLED=0 go install -trimpath -ldflags "-s -w" "github.com/getsops/sops/v3/cmd/sops@$SOPS_VERSION"
  echo "$SOPS_VERSION" >"$BIN/.sops.stamp"
  echo "tools: built sops in $((SECONDS - start))s"
}

if [ "$what" = sops ]; then
  build_sops
  echo "tools: ready in $BIN"
  exit 0
fi
if [ "$what" = helm ]; then
  build_helm
  echo "tools: ready in $BIN"
  exit 0
fi
build etcd go.etcd.io/etcd/server/v3
build kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver
if [ "$what" = all ]; then
  build kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager
  build kube-scheduler k8s.io/kubernetes/cmd/kube-scheduler
  build kubectl k8s.io/kubernetes/cmd/kubectl
  build_kwok
  build_helm
  build_sops
fi
echo "tools: ready in $BIN"
