#!/usr/bin/env bash
# JS checks for CI: install the pinned toolchain, run the unit tests, rebuild
# the bundle and fail if it differs from the committed dvi_widget/widget/static/widget.js.
# Usage (from anywhere): bash js/ci.sh
set -euo pipefail
cd "$(dirname "$0")"
npm ci --no-audit --no-fund
node --test test/
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
node build.mjs "$tmp/widget.js"
if ! cmp -s "$tmp/widget.js" ../dvi_widget/widget/static/widget.js; then
  echo "js/ci.sh: dvi_widget/widget/static/widget.js is stale: run 'cd js && npm run build' and commit it" >&2
  exit 1
fi
echo "js/ci.sh: unit tests pass; the committed bundle matches the sources"
