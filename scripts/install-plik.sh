#!/usr/bin/env bash
# Builds the real Plik server (root-gg/plik) as `plikd`, for the link-store tests (README "Tests").
#
# Usage: scripts/install-plik.sh [OUT_DIR]
#   OUT_DIR defaults to the directory of $PLIK_BIN when set, else <repo>/.tmp/bin.
#   Prints the path of the binary on stdout. Idempotent: an existing binary that runs is kept.
#
# Why not `go install github.com/root-gg/plik/server@1.3.8`: Plik's tags have no `v` prefix, so Go
# must resolve them through the module proxy's `@v/list` / non-canonical version lookups, which the
# proxy refuses here (403). A canonical pseudo-version is fetched directly instead: a 2022 commit after
# 1.3.5 with the same HTTP API (/upload, /file/{id}, X-UploadToken, X-PlikToken).
# Needs Go and gcc (sqlite is cgo: without CGO_ENABLED=1 the metadata backend fails at run time).
set -euo pipefail

PLIK_MODULE="github.com/root-gg/plik"
PLIK_VERSION="${PLIK_VERSION:-v0.0.0-20220217080014-93cd25d42e4e}"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ $# -ge 1 && -n "$1" ]]; then
    out_dir="$1"
elif [[ -n "${PLIK_BIN:-}" ]]; then
    out_dir="$(dirname "$PLIK_BIN")"
else
    out_dir="$repo_root/.tmp/bin"
fi
mkdir -p "$out_dir"
out_dir="$(cd "$out_dir" && pwd)"
bin="$out_dir/plikd"

# `plikd --help` only parses flags and the (absent) config: a quick "does it run" check.
if [[ -x "$bin" ]] && "$bin" --help >/dev/null 2>&1; then
    echo "$bin"
    exit 0
fi

command -v go >/dev/null 2>&1 || { echo "install-plik.sh: Go is required (https://go.dev/dl/)" >&2; exit 1; }
command -v gcc >/dev/null 2>&1 || command -v cc >/dev/null 2>&1 \
    || { echo "install-plik.sh: a C compiler is required (Plik's sqlite driver uses cgo)" >&2; exit 1; }

echo "install-plik.sh: downloading $PLIK_MODULE@$PLIK_VERSION" >&2
# -json prints {"Dir": "<module cache dir>", ...}; read it without needing jq or python.
mod_json="$(go mod download -json "$PLIK_MODULE@$PLIK_VERSION")"
src_dir="$(printf '%s\n' "$mod_json" | sed -n 's/^[[:space:]]*"Dir":[[:space:]]*"\(.*\)",\{0,1\}[[:space:]]*$/\1/p' | head -n 1)"
if [[ -z "$src_dir" || ! -d "$src_dir/server" ]]; then
    echo "install-plik.sh: could not find the module directory in 'go mod download' output:" >&2
    printf '%s\n' "$mod_json" >&2
    exit 1
fi

echo "install-plik.sh: building plikd from $src_dir (a minute or two on a cold cache)" >&2
tmp_bin="$bin.tmp.$$"
trap 'rm -f "$tmp_bin"' EXIT
# -mod=mod: build from the module cache, not the vendor/ directory shipped in the module.
(
    cd "$src_dir"
    CGO_ENABLED=1 GOFLAGS="${GOFLAGS:+$GOFLAGS }-mod=mod" go build -o "$tmp_bin" ./server
)
"$tmp_bin" --help >/dev/null 2>&1 || { echo "install-plik.sh: the built binary does not run" >&2; exit 1; }
mv -f "$tmp_bin" "$bin"
trap - EXIT
echo "$bin"
