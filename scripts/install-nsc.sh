#!/usr/bin/env bash
# Builds nsc (nats-io/nsc), the NATS tool that makes operator, account and user JWTs and .creds
# files, for the decentralized-auth tests (a nats-server with `resolver: MEMORY`).
#
# Usage: scripts/install-nsc.sh [OUT_DIR]
#   OUT_DIR defaults to the directory of $NSC_BIN when set, else <repo>/.tmp/bin.
#   Prints the path of the binary on stdout. Idempotent: an existing binary of this version is kept.
#
# Why not `go install github.com/nats-io/nsc/v2@v2.11.0`: go install looks up the module's
# deprecation through the proxy's `@v/list`, which the proxy refuses here (403); the exact version
# is served, so it is downloaded and built from the module cache instead (about 30 s).
set -euo pipefail

NSC_MODULE="github.com/nats-io/nsc/v2"
NSC_VERSION="${NSC_VERSION:-v2.11.0}"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ $# -ge 1 && -n "$1" ]]; then
    out_dir="$1"
elif [[ -n "${NSC_BIN:-}" ]]; then
    out_dir="$(dirname "$NSC_BIN")"
else
    out_dir="$repo_root/.tmp/bin"
fi
mkdir -p "$out_dir"
out_dir="$(cd "$out_dir" && pwd)"
bin="$out_dir/nsc"

# The version is stamped in at build time (below), so a binary of another version is rebuilt.
if [[ -x "$bin" ]] && [[ "$("$bin" --version 2>/dev/null)" == "nsc version ${NSC_VERSION#v}" ]]; then
    echo "$bin"
    exit 0
fi

command -v go >/dev/null 2>&1 || { echo "install-nsc.sh: Go is required (https://go.dev/dl/)" >&2; exit 1; }

echo "install-nsc.sh: downloading $NSC_MODULE@$NSC_VERSION" >&2
# -json prints {"Dir": "<module cache dir>", ...}; read it without needing jq or python.
mod_json="$(go mod download -json "$NSC_MODULE@$NSC_VERSION")"
src_dir="$(printf '%s\n' "$mod_json" | sed -n 's/^[[:space:]]*"Dir":[[:space:]]*"\(.*\)",\{0,1\}[[:space:]]*$/\1/p' | head -n 1)"
if [[ -z "$src_dir" || ! -f "$src_dir/main.go" ]]; then
    echo "install-nsc.sh: could not find the module directory in 'go mod download' output:" >&2
    printf '%s\n' "$mod_json" >&2
    exit 1
fi

echo "install-nsc.sh: building nsc from $src_dir" >&2
tmp_bin="$bin.tmp.$$"
trap 'rm -f "$tmp_bin"' EXIT
# -mod=mod: resolve the dependencies through go.mod (the module cache is read-only, no go.sum
# edits needed). CGO off: nsc is pure Go.
(
    cd "$src_dir"
    CGO_ENABLED=0 GOFLAGS="${GOFLAGS:+$GOFLAGS }-mod=mod" \
        go build -ldflags "-X main.version=${NSC_VERSION#v}" -o "$tmp_bin" .
)
[[ "$("$tmp_bin" --version 2>/dev/null)" == "nsc version ${NSC_VERSION#v}" ]] \
    || { echo "install-nsc.sh: the built binary does not run or reports another version" >&2; exit 1; }
mv -f "$tmp_bin" "$bin"
trap - EXIT
echo "$bin"
