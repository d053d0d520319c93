#!/usr/bin/env bash
# Peak resident memory and time of the CLI moving one large link payload (issue 14 item 2):
# `natsbridge send -p binary:big=@FILE` and `natsbridge sub --count 1`, buffered (--json: the
# payload is received into memory) and streamed (--out-dir: straight to a file), through the
# JetStream object store and through Plik. Peak RSS from /usr/bin/time -v; the baselines are the
# peaks of the same `send` and `sub` moving a 1-byte direct message.
#
#   bench/cli_link_memory.sh [size-in-MiB]       (default 1024)
#
# Env: NATSBRIDGE_CLI (default target/release/natsbridge, built if missing), NATS_SERVER_BIN,
# PLIK_BIN (as servers/python/natsbridge_servers.py finds them). Prints one Markdown table row
# per (store, mode).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mib="${1:-1024}"
cli="${NATSBRIDGE_CLI:-$repo/target/release/natsbridge}"
[[ -x "$cli" ]] || cargo build --release -p natsbridge-cli --manifest-path "$repo/Cargo.toml" >&2
work="$(mktemp -d "${TMPDIR:-/tmp}/natsbridge-linkmem.XXXXXX")"
servers_pid=""
cleanup() {
  [[ -n "$servers_pid" ]] && kill "$servers_pid" 2>/dev/null && wait "$servers_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

coproc SERVERS { exec python3 "$repo/servers/python/natsbridge_servers.py" nats --plik 2>"$work/servers.log"; }
servers_pid=$SERVERS_PID
while read -r -t 60 line <&"${SERVERS[0]}"; do
  case "$line" in
    nats=*) nats="${line#nats=}" ;;
    plik=*) plik="${line#plik=}" ;;
    ready) break ;;
  esac
done
[[ -n "${nats:-}" && -n "${plik:-}" ]] || { cat "$work/servers.log" >&2; exit 2; }

head -c "$((mib * 1024 * 1024))" /dev/urandom >"$work/big.bin"
want="$(sha256sum "$work/big.bin" | cut -d' ' -f1)"

# peak KB and seconds of a command: "<kb> <seconds>"
measured() {
  local out="$1"; shift
  /usr/bin/time -v -o "$out.time" "$@" >"$out" 2>"$out.err"
  local kb secs
  kb="$(grep 'Maximum resident set size' "$out.time" | grep -Eo '[0-9]+$')"
  secs="$(grep 'Elapsed (wall clock)' "$out.time" | grep -Eo '[0-9:.]+$' | awk -F: '{s=0; for(i=1;i<=NF;i++) s=s*60+$i; print s}')"
  echo "$kb $secs"
}

# A sub that prints "ready" and waits for one message; the send of `$@` runs once it is ready.
run_pair() {
  local tag="$1" mode="$2"; shift 2
  local sub_args=(--count 1 --timeout 600 --ready)
  [[ "$mode" == streamed ]] && sub_args+=(--out-dir "$work/out-$tag") || sub_args+=(--json)
  /usr/bin/time -v -o "$work/$tag.sub.time" "$cli" --servers "$nats" "${store_args[@]}" sub "bench.mem.$tag" \
    "${sub_args[@]}" >"$work/$tag.sub.out" 2>"$work/$tag.sub.err" &
  local sub=$!
  for _ in $(seq 600); do grep -q '^ready' "$work/$tag.sub.err" 2>/dev/null && break; sleep 0.1; done
  local send_stats
  send_stats="$(measured "$work/$tag.send" "$cli" --servers "$nats" "${store_args[@]}" send "bench.mem.$tag" "$@")"
  wait "$sub"
  local sub_kb sub_secs
  sub_kb="$(grep 'Maximum resident set size' "$work/$tag.sub.time" | grep -Eo '[0-9]+$')"
  sub_secs="$(grep 'Elapsed (wall clock)' "$work/$tag.sub.time" | grep -Eo '[0-9:.]+$' | awk -F: '{s=0; for(i=1;i<=NF;i++) s=s*60+$i; print s}')"
  echo "$send_stats $sub_kb $sub_secs"
}

store_args=()
read -r base_send_kb _ base_kb _ < <(run_pair baseline buffered -p text:x=y)
printf '| store | sub mode | send peak RSS | send above baseline | send wall time | sub peak RSS | sub above baseline | sub wall time | MiB/s (send+receive) | bytes |\n'
printf '|---|---|---|---|---|---|---|---|---|---|\n'
for store in "object store" Plik; do
  if [[ "$store" == Plik ]]; then store_args=(--fileserver-url "$plik"); else store_args=(); fi
  for mode in buffered streamed; do
    tag="$(echo "$store-$mode" | tr ' ' '_')"
    read -r send_kb send_secs sub_kb sub_secs < <(run_pair "$tag" "$mode" -p "binary:big=@$work/big.bin")
    if [[ "$mode" == streamed ]]; then
      got="$(sha256sum "$work/out-$tag/big.bin" | cut -d' ' -f1)"; rm -rf "$work/out-$tag"
    else
      got="$(grep -Eo '"sha256":"[0-9a-f]{64}"' "$work/$tag.sub.out" | head -1 | grep -Eo '[0-9a-f]{64}')"
    fi
    [[ "$got" == "$want" ]] && ok="exact" || ok="WRONG ($got)"
    awk -v s="$store" -v m="$mode" -v skb="$send_kb" -v sb="$base_send_kb" -v st="$send_secs" -v kb="$sub_kb" -v b="$base_kb" -v t="$sub_secs" -v mib="$mib" -v ok="$ok" \
      'BEGIN { printf "| %s | %s | %.0f MB | %.0f MB | %.1f s | %.0f MB | %.0f MB | %.1f s | %.0f | %s |\n", s, m, skb/1024, (skb-sb)/1024, st, kb/1024, (kb-b)/1024, t, mib/t, ok }'
  done
done
printf '\nbaselines: send and sub of a 1-byte direct message peaked at %.0f MB and %.0f MB; %s MiB payload; %s\n' \
  "$(awk -v b="$base_send_kb" 'BEGIN{print b/1024}')" "$(awk -v b="$base_kb" 'BEGIN{print b/1024}')" "$mib" "$(uptime | sed 's/.*load/load/')"
