#!/usr/bin/env bash
# Fuzzes the envelope decoder, the payload decoders, the URL scope matcher and the C ABI with
# cargo-fuzz (libFuzzer + AddressSanitizer), each target for a fixed number of executions,
# starting from seeds written from spec/vectors. Installs the nightly toolchain and cargo-fuzz
# when they are missing. Exits non-zero when any target finds a crash, panic, timeout or OOM;
# the input is then in fuzz/artifacts/<target>/ and the run's output in fuzz/logs/<target>.log.
#
#   scripts/fuzz.sh [runs-per-target] [target...]     (default: 10000 runs, every target)
#
# FUZZ_BUILD=dev builds without optimizations (cargo fuzz --dev), for smoke runs whose few
# executions do not need the speed: a cold build took 9.4 min here against 23.5 min for release
# (2 cores, both while another test run was going; fuzz/RESULTS.md).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo/fuzz"
runs="${1:-10000}"
shift || true

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

targets=("$@")

python3 seed_corpus.py >/dev/null
profile=()
if [[ ${FUZZ_BUILD:-release} == dev ]]; then
    profile=(--dev)
fi
# c_abi links the C binding and with it the network stack; the other targets need core's
# protocol only, so they are built without it (fuzz/Cargo.toml's `c_abi` feature).
features_of() {
    if [[ $1 == c_abi ]]; then echo "--features=c_abi"; fi
}
# The protocol targets in one build (their dependencies are shared), then c_abi; or the ones named.
if [[ ${#targets[@]} -eq 0 ]]; then
    cargo +nightly fuzz build "${profile[@]}"
    cargo +nightly fuzz build "${profile[@]}" --features=c_abi c_abi
    mapfile -t targets < <(cargo +nightly fuzz list)
else
    for target in "${targets[@]}"; do
        cargo +nightly fuzz build "${profile[@]}" $(features_of "$target") "$target"
    done
fi

mkdir -p logs
passed=0
failed=0
for target in "${targets[@]}"; do
    mkdir -p "corpus/$target" "seeds/$target" "artifacts/$target"
    log="logs/$target.log"
    # Room for envelopes with large base64 payloads; the other seeds are at most 4.5 KB (Arrow
    # streams, payload envelopes) or a few hundred bytes (URLs, JSON, JSON tables: 4 KB still
    # nests past the depth limit), and longer inputs only slow each execution down.
    case "$target" in
        envelope) max_len=65536 ;;
        url_scope | payload_json | payload_jsontable) max_len=4096 ;;
        *) max_len=16384 ;;
    esac
    started=$(date +%s)
    result=ok
    # Timeouts and OOM are failures too: 10 s for one input, 2 GB resident or in one allocation.
    cargo +nightly fuzz run "${profile[@]}" $(features_of "$target") "$target" "corpus/$target" "seeds/$target" -- \
        -runs="$runs" -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="artifacts/$target/" >"$log" 2>&1 || result=FAILED
    seconds=$(( $(date +%s) - started ))
    executions=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' || echo 0)
    per_second=$(grep -Eo 'stat::average_exec_per_sec: *[0-9]+' "$log" | grep -Eo '[0-9]+$' || echo 0)
    echo "fuzz: $target: $executions executions in $seconds s ($per_second exec/s): $result"
    if [[ $result == ok ]]; then
        passed=$(( passed + 1 ))
    else
        failed=$(( failed + 1 ))
        grep -E '^(==[0-9]+==ERROR|thread .* panicked|SUMMARY|artifact_prefix|Test unit written)' "$log" | head -n 20 || true
        tail -n 20 "$log"
    fi
done
echo "fuzz: $passed passed, $failed failed"
(( failed == 0 ))
