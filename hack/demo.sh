#!/usr/bin/env bash
# The demo: render the finance-AI config repo (this repository) for prod and
# show where every object goes and why.
set -euo pipefail
cd "$(dirname "$0")/.."
strata=bin/strata
step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "strata version"
$strata version

step "Placement of the prod environment (from the committed tree at HEAD)"
$strata render --env prod --repo .

step "What the on-prem cluster receives (restricted data only)"
$strata render --env prod --repo . --cluster onprem

step "dev has no private-cloud cluster: internal data falls to on-prem"
$strata render --env dev --repo . --cluster dev-onprem

step "A tier request that the sensitivity does not allow is refused (exit 1, nothing written)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
git -C . archive HEAD strata.yaml overlays | tar -x -C "$tmp"
cat >>"$tmp/overlays/base/ledger/ledger.yaml" <<'YAML'
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: ledger-export
  namespace: ledger
  annotations:
    strata.dev/tiers: public-cloud
data:
  target: s3://exports
YAML
if $strata render --env prod --repo "$tmp" --worktree --out "$tmp/out"; then
  echo "demo: expected a violation" >&2; exit 1
fi
test ! -e "$tmp/out" && echo "(no output directory was written)"

export STRATA_HOME=${STRATA_HOME:-$HOME/.strata}
kcdir=$STRATA_HOME/clusters

step "Three local clusters (kwok, binary runtime; the first run builds the control plane)"
$strata dev up

step "Reconcile prod into them: apply per cluster, wait for health, prune"
$strata reconcile --once --repo . --branch HEAD --env prod --kubeconfig-dir "$kcdir" --metrics-addr 0 2>"$tmp/reconcile.log" || {
  cat "$tmp/reconcile.log" >&2; exit 1; }

step "Status per cluster (read from each cluster's inventory)"
$strata status --env prod --kubeconfig-dir "$kcdir"

kubectl=${STRATA_BIN:-$HOME/.cache/strata/bin}/kubectl
[ -x "$kubectl" ] || kubectl=$(command -v kubectl || true)
if [ -n "$kubectl" ]; then
  for c in public private onprem; do
    step "Workloads in cluster $c"
    "$kubectl" --kubeconfig "$kcdir/$c.kubeconfig" get deployments,statefulsets,cronjobs -A -l strata.dev/managed-by=strata \
      -o custom-columns='KIND:.kind,NAMESPACE:.metadata.namespace,NAME:.metadata.name,READY:.status.readyReplicas,WANT:.spec.replicas,PLACEMENT:.metadata.annotations.strata\.dev/placement'
  done
fi

step "kubectl apply of a restricted Deployment into the public cluster: the public cluster's webhook denies it"
cat >"$tmp/ledger-copy.yaml" <<'YAML'
apiVersion: apps/v1
kind: Deployment
metadata:
  name: ledger-copy
  namespace: default
  labels: {strata.dev/sensitivity: restricted}
spec:
  selector: {matchLabels: {app: ledger-copy}}
  template:
    metadata: {labels: {app: ledger-copy}}
    spec:
      containers: [{name: ledger, image: registry.onprem.example.internal/finance-ai/ledger:7.2.5}]
YAML
if [ -n "$kubectl" ]; then
  if "$kubectl" --kubeconfig "$kcdir/public.kubeconfig" apply -f "$tmp/ledger-copy.yaml" 2>"$tmp/denied.txt"; then
    echo "demo: the public cluster accepted restricted data" >&2; exit 1
  fi
  cat "$tmp/denied.txt"
  grep -q "denied the request: strata:" "$tmp/denied.txt" || { echo "demo: expected a denial by strata's webhook" >&2; exit 1; }
fi

step "A second reconcile finds nothing to do (no drift, nothing re-applied)"
$strata reconcile --once --repo . --branch HEAD --env prod --kubeconfig-dir "$kcdir" --metrics-addr 0 2>/dev/null

cat <<EOF

The clusters keep running. Try:
  export KUBECONFIG=$kcdir/onprem.kubeconfig; kubectl get pods -A
  bin/strata status --env prod --kubeconfig-dir $kcdir
Remove them with: bin/strata dev down
EOF
