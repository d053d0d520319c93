#!/usr/bin/env bash
# Shows that a claim-check rule lives in core alone: in a copy of the repository (its committed
# HEAD), one rule is changed in core/src/protocol/send.rs and nothing else, the upload-failure
# fallback (spec/PROTOCOL.md §7.2: a failed threshold upload goes direct when the envelope fits).
# The browser (WASM) and the Python wheel are rebuilt from that copy, and each one's test of the
# fallback, which passes in the repository, must now fail with UPLOAD_FAILED: both followed the
# change with no edit of theirs. Run after scripts/test.sh (it reuses the built toolchain and
# dependencies). Prints "rule-follows-core: 2 passed" at the end.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/natsbridge-rule.XXXXXX")"
trap 'rm -rf "$work"' EXIT
copy="$work/repo"
mkdir -p "$copy/target" "$copy/.tmp"
git -C "$repo" archive HEAD | tar -x -C "$copy"
# Hard links: the copy starts from the repository's built dependencies without touching them (its
# own crates build under other hashes, its path being another).
for dir in debug wasm32-unknown-unknown; do
    [ -d "$repo/target/$dir" ] && cp -al "$repo/target/$dir" "$copy/target/$dir"
done
ln -s "$repo/.venv" "$copy/.venv"
for tool in bin wasm-bindgen py-build; do ln -s "$repo/.tmp/$tool" "$copy/.tmp/$tool"; done
ln -s "$repo/bindings-wasm/node_modules" "$copy/bindings-wasm/node_modules"

# The one change: a failed threshold upload no longer falls back to direct.
python3 - "$copy/core/src/protocol/send.rs" <<'EOF'
import sys
path = sys.argv[1]
src = open(path).read()
fallback = """        self.payloads[i].transport = Transport::Direct;
        self.upload_error = Some(error);
    }"""
no_fallback = """        self.failed.get_or_insert(error.with_correlation_id(&self.envelope.correlation_id));
    }"""
assert src.count(fallback) == 1, "the fallback rule moved: update scripts/rule-follows-core.sh"
open(path, "w").write(src.replace(fallback, no_fallback))
EOF
echo "rule-follows-core: core's upload fallback turned off in $copy"

passed=0
# expect_failure NAME LOG PATTERN COMMAND...: the command must fail, with PATTERN (the error the
# changed rule gives) in its output.
expect_failure() {
    local name="$1" log="$2" pattern="$3"
    shift 3
    if "$@" >"$log" 2>&1; then
        tail -n 30 "$log"
        echo "rule-follows-core: $name still passes: it did not follow core's rule" >&2
        exit 1
    fi
    if ! grep -q "$pattern" "$log"; then
        tail -n 40 "$log"
        echo "rule-follows-core: $name failed, but not with UPLOAD_FAILED" >&2
        exit 1
    fi
    echo "rule-follows-core: $name now fails with UPLOAD_FAILED (it follows core)"
    passed=$((passed + 1))
}

(cd "$copy/bindings-wasm" && bash scripts/build.sh)
expect_failure "browser: max_payload fallback test" "$work/browser.log" "UPLOAD_FAILED: no link store is configured" \
    node "$copy/bindings-wasm/tests/browser.test.mjs" "max_payload: no link store"
expect_failure "Python: raising upload handler falls back test" "$work/python.log" \
    "UploadFailedError: UPLOAD_FAILED: fileserver_upload_handler failed: RuntimeError: file server on fire (correlation_id [0-9a-f-]*)$" \
    env PY_VENV="$work/py-venv" bash "$copy/bindings-python/scripts/test.sh" -k test_raising_upload_handler_falls_back_or_fails
echo "rule-follows-core: $passed passed"
