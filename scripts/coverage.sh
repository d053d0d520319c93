#!/usr/bin/env bash
# Test coverage, and the floors below which the test run fails.
#
#   eval "$(scripts/coverage.sh env)"   instrument every Rust build from here on (cargo-llvm-cov's
#                                       rustc wrapper: the workspace's crates, not their
#                                       dependencies); each process that runs one writes its
#                                       counts into target/natsbridge-*.profraw
#   scripts/coverage.sh report          print the line coverage of core and of the C binding
#                                       (from every instrumented process that ran: cargo test,
#                                       the bindings' suites, the interop matrix), and of the
#                                       Python and Node layers (their suites write .tmp/coverage),
#                                       then fail under the floors
#
# scripts/test.sh does both, so the figures count every test in every language.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

case "${1:-}" in
env)
    cargo llvm-cov show-env --sh 2>/dev/null
    # One profile file per binary and pool slot (%4m merges the runs of a binary online) rather
    # than cargo-llvm-cov's one per process: the interop matrix alone starts over a thousand.
    echo "export LLVM_PROFILE_FILE='$repo/target/natsbridge-%4m.profraw'"
    ;;
report)
    rust_json="$(mktemp)"
    trap 'rm -f "$rust_json"' EXIT
    cargo llvm-cov report --json --summary-only --output-path "$rust_json"
    python3 - "$repo" "$rust_json" <<'EOF'
import json, sys
repo, rust_json = sys.argv[1], sys.argv[2]
# (what, lines, covered, floor in %)
rows = []
files = json.load(open(rust_json))["data"][0]["files"]
# The other Rust crates are printed with no floor (0).
for name, folder, floor in [("core (Rust)", "core/src/", 90), ("C binding (Rust)", "bindings-c/src/", 85),
                            ("Python binding (Rust)", "bindings-python/src/", 0),
                            ("Node binding (Rust)", "bindings-node/src/", 0), ("CLI (Rust)", "cli/src/", 0)]:
    picked = [f["summary"]["lines"] for f in files if f["filename"].startswith(f"{repo}/{folder}")]
    rows.append((name, sum(p["count"] for p in picked), sum(p["covered"] for p in picked), floor))
python = json.load(open(f"{repo}/.tmp/coverage/python.json"))["totals"]
rows.append(("Python layer", python["num_statements"], python["covered_lines"], 85))
node = json.load(open(f"{repo}/.tmp/coverage/node/coverage-summary.json"))["total"]["lines"]
rows.append(("Node layer", node["total"], node["covered"], 85))
under = []
for name, lines, covered, floor in rows:
    percent = 100.0 * covered / lines if lines else 0.0
    print(f"coverage: {name:<21} {percent:6.2f} % of {lines:>5} lines" + (f" (floor {floor} %)" if floor else ""))
    if percent < floor:
        under.append(name)
if under:
    print(f"coverage: under the floor: {', '.join(under)}")
    sys.exit(1)
EOF
    ;;
*)
    echo "usage: scripts/coverage.sh env|report" >&2
    exit 2
    ;;
esac
