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
