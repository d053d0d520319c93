#!/usr/bin/env bash
# Builds the interop participant programs (send, receive) into <repo>/.tmp/c-interop/, linked
# against libnatsbridge installed (debug) into <repo>/.tmp/c-prefix. tests-interop/participants/c.json
# runs them.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
prefix="$repo/.tmp/c-prefix"
out="$repo/.tmp/c-interop"
make -s -C "$here/.." install PREFIX="$prefix" PROFILE=debug
mkdir -p "$out"
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
for p in send receive; do
  gcc -std=c11 -Wall -Wextra -Werror -O1 -o "$out/$p" "$here/$p.c" $(pkg-config --cflags --libs natsbridge)
done
echo "interop: built $out/send and $out/receive"
