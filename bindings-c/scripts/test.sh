#!/usr/bin/env bash
# bindings-c + bindings-julia: builds libnatsbridge (debug), checks the top-level
# include/natsbridge.h for drift, installs to a temp prefix, compiles the C tests against the
# *installed* header and library (pkg-config), runs them plainly, under valgrind and under
# AddressSanitizer against a real nats-server (JetStream) and Plik (servers/python's starter, which
# also starts servers wanting an nkey or a password, a token, a .creds file and TLS, and makes
# their keys and files),
# compiles and runs the README's two examples (core NATS, durable), runs the interop
# participants (C <-> CLI, and Python when its venv exists), then the Julia parser and ccall
# checks.
# Prints "bindings-c: N passed, M failed". Env: NATS_SERVER_BIN, PLIK_BIN, S3S_BIN, SKIP_VALGRIND=1,
# SKIP_INTEROP=1.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
repo="$(cd "$here/.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/natsbridge-c.XXXXXX")"
prefix="$work/prefix"
passed=0
failed=0
servers_pid=""

cleanup() {
  if [ -n "$servers_pid" ]; then kill "$servers_pid" 2>/dev/null || true; wait "$servers_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n== %s\n' "$*"; }
pass() { passed=$((passed + 1)); echo "PASS $*"; }
fail() { failed=$((failed + 1)); echo "FAIL $*"; }

# Runs a test program; its "N passed, M failed" summary line adds to ours, its exit status decides.
run_counted() {
  local label="$1"; shift
  local out="$work/out.txt"
  if timeout 600 "$@" >"$out" 2>&1; then status=0; else status=$?; fi
  cat "$out"
  local line
  line="$(grep -E '[0-9]+ passed, [0-9]+ failed' "$out" | tail -n1 || true)"
  if [ "$status" -eq 0 ] && [ -n "$line" ]; then
    passed=$((passed + $(sed -E 's/.* ([0-9]+) passed.*/\1/' <<<"$line")))
    echo "PASS $label"
  else
    [ -n "$line" ] && passed=$((passed + $(sed -E 's/.* ([0-9]+) passed.*/\1/' <<<"$line")))
    fail "$label (exit $status)"
  fi
}

step "tools"
bash "$here/scripts/setup.sh"

step "build libnatsbridge (debug)"
(cd "$repo" && cargo build -p natsbridge-c)

step "header drift"
if bash "$here/scripts/header.sh" --check; then pass "header matches the sources"; else fail "header drift"; fi

step "install to $prefix"
make -s -C "$here" install PREFIX="$prefix" PROFILE=debug
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
for f in include/natsbridge.h lib/libnatsbridge.so lib/libnatsbridge.a lib/pkgconfig/natsbridge.pc; do
  if [ -f "$prefix/$f" ]; then pass "installed $f"; else fail "missing $prefix/$f"; fi
done
if [ "$(pkg-config --modversion natsbridge)" = "$(sed -n 's/^version = "\(.*\)"/\1/p' "$repo/Cargo.toml" | head -n1)" ]; then
  pass "pkg-config version"
else
  fail "pkg-config version"
fi

step "compile the C tests against the installed library"
cflags="-std=c11 -Wall -Wextra -Werror -g -O1 -pthread -I$here/tests $(pkg-config --cflags natsbridge)"
libs="$(pkg-config --libs natsbridge) -pthread"
bin="$work/bin"
mkdir -p "$bin"
for t in test_api test_handlers test_jetstream test_auth; do
  gcc $cflags -o "$bin/$t" "$here/tests/$t.c" $libs
  gcc $cflags -fsanitize=address -fno-omit-frame-pointer -o "$bin/$t.asan" "$here/tests/$t.c" $libs
done
# The static library links too (pkg-config --static adds the system libraries it needs).
gcc $cflags -o "$bin/leak_probe" "$here/tests/leak_probe.c" $libs
gcc $cflags -fsanitize=address -o "$bin/leak_probe.asan" "$here/tests/leak_probe.c" $libs
gcc $cflags -o "$bin/test_api.static" "$here/tests/test_api.c" \
  "$prefix/lib/libnatsbridge.a" $(pkg-config --static --libs-only-l natsbridge | sed 's/-lnatsbridge//') -pthread
pass "tests compiled (plain, ASan, static)"

step "nats-server (JetStream), Plik, s3s-fs and the authenticating servers, by the Python server starter"
# servers/python/natsbridge_servers.py prints nats=<url>, plik=<url>, --s3's and --auth's name=value
# lines (s3_endpoint, users_url, creds_file, ...: exported upper-cased for the tests), ready; it stops
# the servers when its standard input closes or it is terminated (cleanup). The project's venv
# (scripts/setup.sh) has the nkeys and trustme packages --auth makes the keys and certificates with.
mkdir "$work/auth"
coproc SERVERS { exec "$repo/.venv/bin/python" "$repo/servers/python/natsbridge_servers.py" nats --plik --s3 \
  --auth "$work/auth" 2>"$work/servers.log"; }
servers_pid=$SERVERS_PID
while read -r -t 120 line <&"${SERVERS[0]}"; do
  case "$line" in
    nats=*) export NATS_URL="${line#nats=}" ;;
    plik=*) export PLIK_URL="${line#plik=}" ;;
    *=*) name="${line%%=*}"; export "${name^^}=${line#*=}" ;;
    ready) break ;;
  esac
done
if [ -z "${NATS_URL:-}" ] || [ -z "${PLIK_URL:-}" ] || [ -z "${S3_ENDPOINT:-}" ] || [ -z "${TLS_URL:-}" ]; then
  cat "$work/servers.log" >&2
  echo "the servers did not start (scripts/setup.sh installs what they need)" >&2
  exit 2
fi
manifest="$(python3 "$here/scripts/vectors.py" "$repo/spec/vectors" "$work/vectors")"

step "C tests"
run_counted "test_api" "$bin/test_api" "$manifest"
run_counted "test_handlers" "$bin/test_handlers"
run_counted "test_jetstream" "$bin/test_jetstream"
run_counted "test_auth" "$bin/test_auth"
run_counted "test_api (static library)" "$bin/test_api.static" "$manifest"

step "C tests under AddressSanitizer"
# detect_leaks=1: LeakSanitizer checks the C side and the library at exit (the runtime's threads
# and statics are reachable, so it needs no suppressions; leak_probe shows it can fail).
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1"
run_counted "test_api (ASan)" "$bin/test_api.asan" "$manifest"
run_counted "test_handlers (ASan)" "$bin/test_handlers.asan"
run_counted "test_jetstream (ASan)" "$bin/test_jetstream.asan"
run_counted "test_auth (ASan)" "$bin/test_auth.asan"
if "$bin/leak_probe.asan" >/dev/null 2>&1; then fail "LeakSanitizer missed a leaked message"; else pass "LeakSanitizer catches a leaked message"; fi
unset ASAN_OPTIONS

if [ "${SKIP_VALGRIND:-0}" != 1 ]; then
  step "C tests under valgrind"
  # Memory errors and definite/indirect leaks fail the run. "Possibly lost" blocks are not
  # counted: the library's threads (tokio workers, async-nats connection tasks, hyper's pooled
  # keep-alive connections of the core's shared HTTP client) are still running when main()
  # returns, and what they hold is reached only through interior pointers then.
  # valgrind.supp: ring's AES-GCM assembly, which memcheck does not follow (the TLS tests).
  vg=(valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,indirect
      --suppressions="$here/tests/valgrind.supp"
      --show-leak-kinds=definite,indirect --num-callers=40 --quiet)
  if "${vg[@]}" "$bin/leak_probe" >/dev/null 2>&1; then fail "valgrind missed a leaked message"; else pass "valgrind catches a leaked message"; fi
  NATSBRIDGE_SKIP_FORK=1 run_counted "test_api (valgrind)" "${vg[@]}" "$bin/test_api" "$manifest"
  run_counted "test_handlers (valgrind)" "${vg[@]}" "$bin/test_handlers"
  run_counted "test_jetstream (valgrind)" "${vg[@]}" "$bin/test_jetstream"
  run_counted "test_auth (valgrind)" "${vg[@]}" "$bin/test_auth"
fi

step "README example: cc example.c \$(pkg-config --cflags --libs natsbridge)"
sed -n '/^```c example.c$/,/^```$/p' "$here/README.md" | sed '1d;$d' >"$work/example.c"
if [ -s "$work/example.c" ] && (cd "$work" && cc example.c $(pkg-config --cflags --libs natsbridge) -o example) \
   && out="$(cd "$work" && timeout 60 ./example)" && grep -q '^received greeting (text, direct): hello from C$' <<<"$out"; then
  echo "$out"; pass "README example compiles and runs"
else
  fail "README example"
fi

step "README durable example: cc durable.c \$(pkg-config --cflags --libs natsbridge)"
sed -n '/^```c durable.c$/,/^```$/p' "$here/README.md" | sed '1d;$d' >"$work/durable.c"
if [ -s "$work/durable.c" ] && (cd "$work" && cc durable.c $(pkg-config --cflags --libs natsbridge) -o durable) \
   && out="$(cd "$work" && timeout 60 ./durable)" \
   && grep -q '^stored: "pub_ack":{"stream":"ORDERS","sequence":1,"duplicate":false}}$' <<<"$out" \
   && grep -q '^received {"id":7}, delivered once$' <<<"$out"; then
  echo "$out"; pass "README durable example compiles and runs"
else
  fail "README durable example"
fi

if [ "${SKIP_INTEROP:-0}" != 1 ]; then
  step "interop participant (C <-> CLI, Python when available)"
  bash "$here/interop/build.sh"
  (cd "$repo" && cargo build -q -p natsbridge-cli)
  others="cli"
  [ -x "$repo/.tmp/py-venv/bin/python" ] && others="cli,python"
  if python3 "$repo/tests-interop/run.py" --nats-url "$NATS_URL" --only-sender "c,$others" --only-receiver c \
     && python3 "$repo/tests-interop/run.py" --nats-url "$NATS_URL" --only-sender c --only-receiver "$others"; then
    pass "interop"
  else
    fail "interop"
  fi
fi

step "Julia package: parse + ccall check"
run_counted "julia checks" bash "$repo/bindings-julia/scripts/check.sh"

echo
echo "bindings-c: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
