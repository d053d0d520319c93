#!/usr/bin/env bash
# Builds libnatsbridge (release), installs it to a temp prefix, and runs bench/throughput.c
# against a fresh nats-server (started by servers/python). Usage: bindings-c/bench/run.sh [messages] [payload bytes]
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
repo="$(cd "$here/.." && pwd)"
work="$(mktemp -d)"
url=""
trap '[ -n "${SERVER_PID:-}" ] && kill "$SERVER_PID" 2>/dev/null; rm -rf "$work"' EXIT
make -s -C "$here" install PREFIX="$work/prefix" PROFILE=release
export PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig"
gcc -O2 -std=c11 -o "$work/throughput" "$here/bench/throughput.c" $(pkg-config --cflags --libs natsbridge) -pthread
# max_payload 8 MB so the 1 MB payload's envelope (base64: 1.33 MB) goes direct.
coproc SERVER { exec python3 "$repo/servers/python/natsbridge_servers.py" nats --config "max_payload: 8MB"; }
while read -r -t 60 line <&"${SERVER[0]}"; do
  case "$line" in
    nats=*) url="${line#nats=}" ;;
    ready) break ;;
  esac
done
NATS_URL="$url" "$work/throughput" "$@"
