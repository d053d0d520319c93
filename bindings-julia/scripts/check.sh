#!/usr/bin/env bash
# The Julia package's checks without Julia: installs the parser (npm ci, tree-sitter-julia with
# prebuilt binaries), parses every .jl and checks each ccall/@threadcall/@ccall/@cfunction
# against the top-level include/natsbridge.h, then proves the checker fails on mutations.
# Prints "julia checks: N passed, M failed".
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
cd "$here"
stamp="node_modules/.natsbridge-lock.sha256"
want="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" >"$stamp"
fi
passed=0
failed=0
if node scripts/ccall_check.js; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
out="$(node scripts/selftest.js)" && status=0 || status=$?
echo "$out"
n="$(sed -nE 's/^selftest: ([0-9]+) passed, ([0-9]+) failed$/\1 \2/p' <<<"$out")"
passed=$((passed + ${n%% *}))
failed=$((failed + ${n##* }))
[ "$status" -eq 0 ] || [ "${n##* }" -gt 0 ] || failed=$((failed + 1))
echo "julia checks: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
