#!/usr/bin/env bash
# System tools for bindings-c and bindings-julia: cbindgen 0.29 (header), gcc, valgrind,
# pkg-config (C tests), node/npm (the Julia parser check). Idempotent.
set -euo pipefail
if ! cbindgen --version 2>/dev/null | grep -q '^cbindgen 0\.29\.'; then
  cargo install cbindgen --version 0.29.4
fi
missing=()
for tool in gcc valgrind pkg-config make; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if [ "${#missing[@]}" -gt 0 ]; then
  pkgs="${missing[*]}"
  pkgs="${pkgs/gcc/gcc libc6-dev}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq $pkgs
fi
command -v node >/dev/null || { echo "setup.sh: node (20+) is needed for the Julia checks" >&2; exit 1; }
