#!/usr/bin/env bash
# Builds the browser package: the WASM core (cargo, wasm32), its JS glue (wasm-bindgen, pkg/),
# and one ES module bundle with the npm dependencies (esbuild, dist/natsbridge.js + the .wasm).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
repo="$(cd "$here/.." && pwd)"
bindgen="${WASM_BINDGEN:-$repo/.tmp/wasm-bindgen/bin/wasm-bindgen}"
wasm="$repo/target/wasm32-unknown-unknown/debug/natsbridge_wasm.wasm"

cd "$repo"
# The dev profile (incremental, quick to rebuild) optimized for size, without debug info: the module
# must stay under 8 MB, the largest Chromium instantiates synchronously, which the restart after a
# core abort needs (js/natsbridge.js restartCore). Unoptimized it is 13 MB. Never instrumented for
# coverage (scripts/coverage.sh): wasm32 has no profiler runtime.
CARGO_PROFILE_DEV_OPT_LEVEL=s CARGO_PROFILE_DEV_DEBUG=0 \
  env -u RUSTC_WRAPPER cargo build -q -p natsbridge-wasm --target wasm32-unknown-unknown
"$bindgen" --target web --experimental-reset-state-function --out-dir "$here/pkg" "$wasm"
size=$(stat -c %s "$here/pkg/natsbridge_wasm_bg.wasm")
if [ "$size" -ge $((8 * 1024 * 1024)) ]; then
  echo "bindings-wasm: natsbridge_wasm_bg.wasm is $size bytes; over 8 MB Chromium cannot restart it after an abort" >&2
  exit 1
fi
cd "$here"
# node:crypto: @nats-io/obj imports it only when its "native" hash backend is chosen (Node).
node_modules/.bin/esbuild js/natsbridge.js --bundle --format=esm --target=es2022 --log-level=warning \
  --external:node:crypto --outfile=dist/natsbridge.js
cp pkg/natsbridge_wasm_bg.wasm dist/
