#!/usr/bin/env bash
# Runs a command N times in a row and counts the runs that fail: the check for flaky tests
# (every timing-sensitive or fault test is run 50 times under load before an issue that touches
# it is resolved). The log of each failed run is kept in the printed directory.
#
#   scripts/repeat.sh N command [args...]
#   scripts/repeat.sh 50 target/debug/deps/faults-0123abcd --test-threads=1
set -uo pipefail
if (( $# < 2 )) || ! [[ $1 =~ ^[0-9]+$ ]]; then
    echo "usage: scripts/repeat.sh N command [args...]" >&2
    exit 2
fi
runs=$1
shift
logs="$(mktemp -d "${TMPDIR:-/tmp}/natsbridge-repeat.XXXXXX")"
failed=0
started=$(date +%s)
for (( i = 1; i <= runs; i++ )); do
    if ! "$@" >"$logs/run-$i.log" 2>&1; then
        failed=$(( failed + 1 ))
        echo "repeat: run $i failed (log: $logs/run-$i.log)"
    else
        rm -f "$logs/run-$i.log"
    fi
done
echo "repeat: $(( runs - failed )) of $runs passed in $(( $(date +%s) - started )) s: $*"
(( failed == 0 ))
