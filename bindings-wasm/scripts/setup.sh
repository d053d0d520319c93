#!/usr/bin/env bash
# System parts the browser binding needs (idempotent): Debian chromium, the wasm32 target, and
# wasm-bindgen-cli at exactly the wasm-bindgen crate's version, in <repo>/.tmp/wasm-bindgen.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
repo="$(cd "$here/.." && pwd)"
version=0.2.130  # = the wasm-bindgen pin in bindings-wasm/Cargo.toml

if ! command -v chromium >/dev/null; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -q
  $sudo apt-get install -y -q chromium
fi
rustup target add wasm32-unknown-unknown >/dev/null
bindgen="$repo/.tmp/wasm-bindgen/bin/wasm-bindgen"
if ! [ -x "$bindgen" ] || [ "$("$bindgen" --version)" != "wasm-bindgen $version" ]; then
  # Not --locked: its lock file pins a webpki-roots the registry mirror does not serve.
  cargo install -q wasm-bindgen-cli --version "$version" --root "$repo/.tmp/wasm-bindgen"
fi
