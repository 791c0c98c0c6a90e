#!/usr/bin/env bash
# Builds the peers strata is measured against — Flux's source-controller and
# kustomize-controller v1.9.6 and the Kyverno admission controller v1.19.1 —
# from the Go module proxy into $PEERS_BIN (default ~/.cache/strata/peers/bin),
# with their CRDs next to them. Cold builds take 30–45 minutes on two cores,
# so this is never part of .ci/run; a stamp of go.sum makes reruns a no-op.
#
# Usage: bench/peers/build.sh [flux|kyverno|all]
set -euo pipefail
export GOTOOLCHAIN=local
what=${1:-all}
here=$(cd "$(dirname "$0")" && pwd)
PEERS=${PEERS_DIR:-$HOME/.cache/strata/peers}
BIN=$PEERS/bin
mkdir -p "$BIN" "$PEERS/crds"

stamp_of() { sha256sum "$here/modules/$1/go.sum" | cut -c1-16; }
fresh() { # module binary...
  local mod=$1; shift
  for b in "$@"; do [ -x "$BIN/$b" ] || return 1; done
  [ "$(cat "$BIN/.$mod.stamp" 2>/dev/null)" = "$(stamp_of "$mod")" ]
}
build() { # module binary package
  local mod=$1 name=$2 pkg=$3 start=$SECONDS
  echo "peers: building $name from $pkg (cold: many minutes)..."
  (cd "$here/modules/$mod" && go build -trimpath -ldflags "-s -w" -o "$BIN/$name.tmp" "$pkg")
  mv "$BIN/$name.tmp" "$BIN/$name"
  echo "peers: built $name in $((SECONDS - start))s"
}
moddir() { (cd "$here/modules/$1" && go list -m -f '{{.Dir}}' "$2"); }

flux() {
  if fresh flux source-controller kustomize-controller; then
    echo "peers: flux up to date in $BIN"
  else
    build flux source-controller github.com/fluxcd/source-controller
    build flux kustomize-controller github.com/fluxcd/kustomize-controller
    stamp_of flux >"$BIN/.flux.stamp"
  fi
  rm -rf "$PEERS/crds/flux" && mkdir -p "$PEERS/crds/flux"
  cp "$(moddir flux github.com/fluxcd/source-controller)"/config/crd/bases/*.yaml "$PEERS/crds/flux/"
  cp "$(moddir flux github.com/fluxcd/kustomize-controller)"/config/crd/bases/*.yaml "$PEERS/crds/flux/"
  chmod u+w "$PEERS/crds/flux"/*
}

kyverno() {
  if fresh kyverno kyverno; then
    echo "peers: kyverno up to date in $BIN"
  else
    build kyverno kyverno github.com/kyverno/kyverno/cmd/kyverno
    stamp_of kyverno >"$BIN/.kyverno.stamp"
  fi
  rm -rf "$PEERS/crds/kyverno" && mkdir -p "$PEERS/crds/kyverno"
  cp -r "$(moddir kyverno github.com/kyverno/kyverno)"/config/crds/. "$PEERS/crds/kyverno/"
  chmod -R u+w "$PEERS/crds/kyverno"
  # The chart as it ships (its RBAC, which Kyverno's policy readiness checks
  # for the reports controller's ServiceAccount). Its remote subcharts hold
  # only CRDs, installed from config/crds above: drop them to render offline.
  local chart helm=${STRATA_BIN:-$HOME/.cache/strata/bin}/helm
  chart=$(mktemp -d)
  cp -r "$(moddir kyverno github.com/kyverno/kyverno)"/charts/kyverno/. "$chart/"
  chmod -R u+w "$chart"
  sed -i '/^dependencies:/,$d' "$chart/Chart.yaml"
  "$helm" template kyverno "$chart" --namespace kyverno --set crds.install=false >"$PEERS/crds/kyverno-chart.yaml"
  rm -rf "$chart"
}

case $what in
flux) flux ;;
kyverno) kyverno ;;
all) flux; kyverno ;;
*) echo "usage: $0 [flux|kyverno|all]" >&2; exit 2 ;;
esac
