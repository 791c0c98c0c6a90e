#!/usr/bin/env bash
# The demo (make demo): render the finance-AI config repo (this repository),
# bring up three local clusters with admission webhooks, serve the config
# repo from a local git server, approve, reconcile, show a denied kubectl
# apply, plan/approve/merge a pull request, and revert a bad commit with the
# time to recovery.
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
strata_abs=$PWD/$strata
kubectl=${STRATA_BIN:-$HOME/.cache/strata/bin}/kubectl

step "Three local clusters (kwok, binary runtime; the first run builds the control plane) with their webhooks"
$strata dev up
[ -x "$kubectl" ] || kubectl=$(command -v kubectl)

# The platform team's config repository: this repository's strata.yaml,
# overlays/ and policies/, on a local git server that sends push hooks.
demo=$STRATA_HOME/demo
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT
rm -rf "$demo" && mkdir -p "$demo/git/platform" "$demo/keys"
git init -q --bare -b main "$demo/git/platform/config.git"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$demo/hook.secret"
hook_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 19292)
$strata dev git-server --root "$demo/git" --addr-file "$demo/git.addr" \
  --hook-url "http://127.0.0.1:$hook_port/hook" --hook-secret-file "$demo/hook.secret" >"$demo/git-server.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do [ -s "$demo/git.addr" ] && break; sleep 0.1; done
url=$(cat "$demo/git.addr")/platform/config.git

step "Reviewers alice and bob: .strata/trust.yaml lists their keys (demo keys from hack/demo-keys); the reconciler pins their fingerprints"
cp hack/demo-keys/alice.key hack/demo-keys/bob.key hack/demo-keys/alice.pub hack/demo-keys/bob.pub "$demo/keys/"
chmod 600 "$demo/keys/"*.key
trusted="$($strata keygen --fingerprint "$demo/keys/alice.pub"),$($strata keygen --fingerprint "$demo/keys/bob.pub")"
echo "  --trusted-keys $trusted"
work=$demo/work
git clone -q "$url" "$work" 2>/dev/null
cp -r strata.yaml overlays policies .strata "$work/"
sed -n '6,12p' "$work/.strata/trust.yaml"; echo "  ..."

step "Secrets in git, encrypted per tier: one age key per tier (made now), the recipients go into strata.yaml"
$strata secret keygen --dir "$demo/age" | tee -a "$work/strata.yaml"
cat >"$work/overlays/base/ledger/db-credentials.yaml" <<'YAML'
apiVersion: v1
kind: Secret
metadata:
  name: ledger-db-credentials
  namespace: ledger
type: Opaque
stringData:
  username: ledger
  password: demo-ledger-password
YAML
cat >"$work/overlays/base/fraud-scoring/model-api-key.yaml" <<'YAML'
apiVersion: v1
kind: Secret
metadata:
  name: scoring-model-api-key
  namespace: fraud
  annotations: {strata.dev/failover: "true"}
type: Opaque
stringData:
  api-key: demo-fraud-model-key
YAML
sed -i 's/^  - ledger-db.yaml$/  - ledger-db.yaml\n  - db-credentials.yaml/' "$work/overlays/base/ledger/kustomization.yaml"
sed -i 's/^  - deployment.yaml$/  - deployment.yaml\n  - model-api-key.yaml/' "$work/overlays/base/fraud-scoring/kustomization.yaml"
# The sensitivity comes from each Namespace: restricted → on-prem only,
# confidential → private-cloud and on-prem.
$strata secret encrypt --repo "$work" "$work/overlays/base/ledger/db-credentials.yaml" "$work/overlays/base/fraud-scoring/model-api-key.yaml"
grep -A3 '^stringData' "$work/overlays/base/ledger/db-credentials.yaml" | cut -c1-60
# The on-call engineer's git identity in this clone (strata rollback uses the
# git CLI, so the user's own config, signing and hooks apply).
git -C "$work" config user.name "Sam (on-call)"
git -C "$work" config user.email sam@example.com
g() { git -C "$work" -c user.name="Dana (platform team)" -c user.email=dana@example.com "$@"; }
g checkout -q -b main
g add -A && g commit -q -m "finance-ai platform: initial placement" && g push -q origin main

step "The first revision touches restricted data: strata.yaml asks for 2 approvals; alice and bob sign it"
(cd "$work" && "$strata_abs" approve HEAD --key "$demo/keys/alice.key" --env prod --push && "$strata_abs" approve HEAD --key "$demo/keys/bob.key" --env prod --push)

step "The reconciler follows main on the git server; pushes reach it through the signed hook"
$strata reconcile --repo "$url" --branch main --env prod --kubeconfig-dir "$kcdir" --interval 1m \
  --hook-addr "127.0.0.1:$hook_port" --hook-secret-file "$demo/hook.secret" --metrics-addr 127.0.0.1:0 \
  --trusted-keys "$trusted" --age-key-dir "$demo/age" \
  --cache-dir "$demo/mirror" 2>"$demo/reconcile.log" &
pids+=($!)
waitfor() { # revision
  for _ in $(seq 600); do
    if $strata status --repo "$work" --env prod --kubeconfig-dir "$kcdir" -o json 2>/dev/null |
      python3 -c 'import json,sys; d=json.load(sys.stdin); r=sys.argv[1]; sys.exit(0 if all(c["status"].get("revision")==r and c["ready"]=="True" and c["status"]["healthy"]==c["status"]["objects"] for c in d["clusters"]) else 1)' "$1"; then
      return 0; fi
    sleep 0.2
  done
  echo "demo: clusters did not converge on $1; see $demo/reconcile.log" >&2; return 1
}
waitfor "$(g rev-parse HEAD)"
$strata status --repo "$work" --env prod --kubeconfig-dir "$kcdir"

for c in public private onprem; do
  step "Workloads in cluster $c"
  "$kubectl" --kubeconfig "$kcdir/$c.kubeconfig" get deployments,statefulsets,cronjobs -A -l strata.dev/managed-by=strata \
    -o custom-columns='KIND:.kind,NAMESPACE:.metadata.namespace,NAME:.metadata.name,READY:.status.readyReplicas,WANT:.spec.replicas,PLACEMENT:.metadata.annotations.strata\.dev/placement'
done

step "Encrypted Secrets arrive decrypted in their tiers only (each cluster's Secrets decrypted with its tier's key)"
for c in public private onprem; do
  echo "  $c: $("$kubectl" --kubeconfig "$kcdir/$c.kubeconfig" get secrets -A -l strata.dev/managed-by=strata -o jsonpath='{range .items[*]}{.metadata.namespace}/{.metadata.name} {end}')"
done
"$kubectl" --kubeconfig "$kcdir/onprem.kubeconfig" -n ledger get secret ledger-db-credentials -o jsonpath='{.data.username}' | base64 -d | grep -qx ledger ||
  { echo "demo: the ledger Secret did not arrive decrypted on-prem" >&2; exit 1; }

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
if "$kubectl" --kubeconfig "$kcdir/public.kubeconfig" apply -f "$tmp/ledger-copy.yaml" 2>"$tmp/denied.txt"; then
  echo "demo: the public cluster accepted restricted data" >&2; exit 1
fi
cat "$tmp/denied.txt"
grep -q "denied the request: strata:" "$tmp/denied.txt" || { echo "demo: expected a denial by strata's webhook" >&2; exit 1; }

step "A pull request: month-end capacity for fraud scoring (3 → 8 replicas). strata plan is the PR check"
g checkout -q -b month-end
sed -i 's/{name: fraud-scoring,    count: 3}/{name: fraud-scoring,    count: 8}/' "$work/overlays/prod/kustomization.yaml"
g commit -qam "fraud-scoring: month-end capacity"
(cd "$work" && "$strata_abs" plan --base main --head month-end --env prod | head -24)

step "alice approves the PR (a confidential change needs 1 approval); it is merged and pushed"
(cd "$work" && "$strata_abs" approve month-end --key "$demo/keys/alice.key" --env prod --push)
g checkout -q main && g merge -q --ff-only month-end && g push -q origin main
waitfor "$(g rev-parse HEAD)"
"$kubectl" --kubeconfig "$kcdir/private.kubeconfig" get deployment fraud-scoring -n fraud

step "An unapproved restricted change pushed straight to main: the approval gate refuses it, every cluster stays as it was"
sed -i 's/cpu: 500m/cpu: 750m/' "$work/overlays/base/ledger/audit-trail.yaml"
g commit -qam "audit-trail: a little more CPU (not reviewed)"
g push -q origin main
unapproved=$(g rev-parse HEAD)
for _ in $(seq 100); do
  $strata status --repo "$work" --env prod --kubeconfig-dir "$kcdir" -o json 2>/dev/null | grep -q "not approved" && break; sleep 0.2
done
$strata status --repo "$work" --env prod --kubeconfig-dir "$kcdir" | sed -n '1,8p'
g revert --no-edit "$unapproved" >/dev/null && g push -q origin main
waitfor "$(g rev-parse HEAD)"

step "A bad commit: audit-trail asks for more CPU than any node has; approved and pushed, its rollout hangs"
sed -i 's/cpu: 500m/cpu: "600"/; s/cpu: 250m/cpu: "500"/' "$work/overlays/base/ledger/audit-trail.yaml"
g commit -qam "audit-trail: more CPU"
(cd "$work" && "$strata_abs" approve HEAD --key "$demo/keys/alice.key" --env prod --push >/dev/null && "$strata_abs" approve HEAD --key "$demo/keys/bob.key" --env prod --push >/dev/null)
bad=$(g rev-parse HEAD)
g push -q origin main
sleep 3
"$kubectl" --kubeconfig "$kcdir/onprem.kubeconfig" get pods -n ledger -l app.kubernetes.io/name=audit-trail

step "On-call reverts it: strata rollback = git revert + push, then waits for every cluster (no new approval: the tree was approved before)"
(cd "$work" && "$strata_abs" rollback "$bad" --push --wait --env prod --kubeconfig-dir "$kcdir" --timeout 2m)

step "History of prod"
$strata history --repo "$work" --env prod --kubeconfig-dir "$kcdir"

step "Audit evidence for the compliance officer (kept in each cluster; first lines of the report)"
sleep 3 # the webhooks write their audit events every 2 s
$strata audit --repo "$work" --env prod --kubeconfig-dir "$kcdir" --since 1h -o markdown | sed -n '1,16p'

cat <<EOF

Summary: three clusters, each with its webhook; placement by sensitivity; a
restricted object refused by the public cluster; an unapproved change refused
by the approval gate; a pull request planned, approved and merged; a bad
commit reverted and every cluster restored.

The clusters and webhooks keep running (the reconciler and git server stop now). Try:
  export KUBECONFIG=$kcdir/onprem.kubeconfig; $kubectl get pods -A
  bin/strata status --env prod --kubeconfig-dir $kcdir
Remove them with: bin/strata dev down
EOF
