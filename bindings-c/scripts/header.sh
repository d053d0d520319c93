#!/usr/bin/env bash
# Regenerates include/natsbridge.h (at the repository's top level) with cbindgen 0.29 (no
# argument), or checks that the committed header matches the sources (--check; exit 1 and a
# diff on drift).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
header="$(cd "$here/.." && pwd)/include/natsbridge.h"
version="$(cbindgen --version 2>/dev/null || true)"
case "$version" in
  "cbindgen 0.29."*) ;;
  *) echo "header.sh: needs cbindgen 0.29 (found: ${version:-none}); run bindings-c/scripts/setup.sh" >&2; exit 2 ;;
esac
fresh="$(mktemp)"
trap 'rm -f "$fresh"' EXIT
(cd "$here" && cbindgen --quiet --config cbindgen.toml --crate natsbridge-c --output "$fresh")
if [ "${1:-}" = "--check" ]; then
  if ! diff -u "$header" "$fresh"; then
    echo "header.sh: include/natsbridge.h is out of date; run bindings-c/scripts/header.sh and commit it" >&2
    exit 1
  fi
  echo "header.sh: include/natsbridge.h is up to date"
else
  mkdir -p "$(dirname "$header")"
  cp "$fresh" "$header"
  echo "header.sh: wrote include/natsbridge.h"
fi
