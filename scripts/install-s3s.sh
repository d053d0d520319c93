#!/usr/bin/env bash
# Builds s3s-fs (crates.io), an S3-compatible server that keeps objects in a folder, for the S3
# link store's tests: a real server speaking the S3 API (SigV4, path-style and virtual-hosted
# requests, user metadata, ranges), started by the tests on a loopback port.
#
# Usage: scripts/install-s3s.sh [OUT_DIR]
#   OUT_DIR defaults to cargo's own bin folder (~/.cargo/bin), which outlives a clone: a Rust
#   build takes minutes, not the seconds of the Go builds in .tmp/bin. Prints the path of the
#   binary on stdout. Idempotent.
#
# Why 0.14.1: later releases need a newer rustc than the stable toolchain here (0.17 needs 1.96).
# The server sits behind the crate's `binary` feature. About 3.5 min cold on 2 cores.
set -euo pipefail

S3S_VERSION="${S3S_VERSION:-0.14.1}"

out_dir="${1:-${CARGO_HOME:-$HOME/.cargo}/bin}"
mkdir -p "$out_dir"
root="$(cd "$out_dir/.." && pwd)"
bin="$root/bin/s3s-fs"

if [[ -x "$bin" ]] && [[ "$("$bin" --version 2>/dev/null)" == "s3s-fs $S3S_VERSION" ]]; then
    echo "$bin"
    exit 0
fi
echo "install-s3s.sh: building s3s-fs $S3S_VERSION" >&2
cargo install -q --locked --force --root "$root" "s3s-fs@$S3S_VERSION" --features binary >&2
[[ "$("$bin" --version 2>/dev/null)" == "s3s-fs $S3S_VERSION" ]] \
    || { echo "install-s3s.sh: the built binary does not run or reports another version" >&2; exit 1; }
echo "$bin"
