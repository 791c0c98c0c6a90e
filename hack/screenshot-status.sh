#!/usr/bin/env bash
# Takes docs/status-page.png, the screenshot of `strata status --serve`, in a
# real headless browser: it serves the page with fixed demo data
# (hack/statusdemo: a health failure in prod with its rollback hint, a
# restricted change in staging waiting for a second approval, a healthy dev,
# two break-glass admissions) and lets Debian's chromium render it.
#
# NOT part of CI: CI has no chromium. The page itself is tested by
# `go test ./internal/statuspage` (HTML, verdicts, escaping, 405 on POST).
#
# Needs chromium (Debian: apt-get install -y chromium), curl and Go.
#
# Usage: hack/screenshot-status.sh [URL]
#   without URL: the demo data; with URL: any running page, e.g. a live
#   `strata status --env prod --kubeconfig-dir ~/.strata/clusters --serve 127.0.0.1:8080`.
# Environment: OUT (default docs/status-page.png), SIZE (default 1400,1500),
# CHROMIUM (default: chromium on PATH).
set -euo pipefail
export GOTOOLCHAIN=local
cd "$(dirname "$0")/.."
out=${OUT:-docs/status-page.png}
size=${SIZE:-1400,1500}
chromium=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
if [ -z "$chromium" ]; then
  echo "screenshot-status: chromium not found (Debian: apt-get install -y chromium)" >&2
  exit 1
fi
tmp=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

url=${1:-}
if [ -z "$url" ]; then
  go build -o "$tmp/statusdemo" ./hack/statusdemo
  "$tmp/statusdemo" -addr 127.0.0.1:0 >"$tmp/demo.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do
    url=$(sed -n 's/^status page demo: //p' "$tmp/demo.log")
    [ -n "$url" ] && break
    sleep 0.1
  done
  [ -n "$url" ] || { cat "$tmp/demo.log" >&2; exit 1; }
fi
for _ in $(seq 50); do curl -fsS -o /dev/null "$url" && break; sleep 0.1; done
curl -fsS -o /dev/null "$url"

mkdir -p "$(dirname "$out")"
if ! "$chromium" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync --hide-scrollbars \
  --user-data-dir="$tmp/profile" --window-size="$size" --screenshot="$out" "$url" >"$tmp/chromium.log" 2>&1; then
  cat "$tmp/chromium.log" >&2
  exit 1
fi
bytes=$(wc -c <"$out")
if [ "$bytes" -gt 512000 ]; then
  echo "screenshot-status: $out is $bytes bytes (> 500 KB): use a smaller SIZE" >&2
  exit 1
fi
echo "wrote $out ($bytes bytes) from $url"
