#!/usr/bin/env bash
# The wasm-bindgen glue and its type declarations are committed (pkg/natsbridge_wasm.{js,d.ts});
# after scripts/build.sh regenerated them, fail when they differ from the committed copies.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
if ! git -C "$here" diff --exit-code --stat -- pkg/natsbridge_wasm.js pkg/natsbridge_wasm.d.ts; then
  echo "bindings-wasm/pkg: the generated wasm-bindgen glue drifted from the committed copy; commit the regenerated files" >&2
  exit 1
fi
