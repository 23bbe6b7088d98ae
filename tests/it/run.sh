#!/usr/bin/env bash
# Runs the integration suite (real asyncd, official Tencent Cloud SDK from npm); exit code = node's.
# Binaries: ASYNCD_BIN / ASYNCCTL_BIN, absolute or relative to the repo root (default bin/...).
# Arguments, if any, name the test files to run instead of all *.test.mjs.
set -u
cd "$(dirname "$0")" || exit 2
# The SDK sends through http_proxy when set; the suite must only ever talk to 127.0.0.1.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
export NO_PROXY='*' no_proxy='*'
if [ ! -d node_modules/tencentcloud-sdk-nodejs ] || [ ! -d node_modules/playwright-core ]; then
    npm ci --no-audit --no-fund || exit 2
fi
# Daemon logs (one file per start) of runs older than an hour go.
find .logs -type f -mmin +60 -delete 2>/dev/null
if [ "$#" -gt 0 ]; then
    node --test --test-concurrency=1 --test-reporter=spec "$@"
    exit
fi
# Three groups. Files that load the machine (thousands of tasks, floods, fuzzing), stop or
# restart the shared PostgreSQL, or assert timings that files beside them would skew run one at a
# time, first. Then two runs side by side: the files that use `make test`'s one MariaDB server
# (its accounts and global variables are shared) one at a time, and the rest, which spend most of
# their time waiting (polls, sleeps, timeouts) and share nothing (each file starts its own
# daemons on their own ports, data dirs and PostgreSQL databases), ASYNCD_TEST_JOBS (2) at once.
alone=(engine-concurrency multinode-pg crash-recovery bad-input-fuzz front-door-connections
    front-door-bounds concurrent-clients engine-fencing rate-limit pg-restart)
heavy=() maria=() light=()
for f in *.test.mjs; do
    if [[ " ${alone[*]} " == *" ${f%.test.mjs} "* ]]; then
        heavy+=("$f")
    elif grep -q "ASYNCD_TEST_MYSQL\|lib/mariadb.mjs" "$f"; then
        maria+=("$f")
    else
        light+=("$f")
    fi
done
run_group() { # $1: concurrency, $2: log file ("" = stdout), rest: files
    local jobs=$1 log=$2
    shift 2
    if [ -n "$log" ]; then
        node --test --test-concurrency="$jobs" --test-reporter=spec "$@" >"$log" 2>&1
    else
        node --test --test-concurrency="$jobs" --test-reporter=spec "$@"
    fi
}
run_group 1 "" "${heavy[@]}"
rc_heavy=$?
logdir=$(mktemp -d /tmp/asyncd-it.XXXXXX)
run_group 1 "$logdir/maria.log" "${maria[@]}" &
maria_pid=$!
run_group "${ASYNCD_TEST_JOBS:-2}" "$logdir/light.log" "${light[@]}" &
light_pid=$!
trap 'kill "$maria_pid" "$light_pid" 2>/dev/null; rm -rf "$logdir"' INT TERM
wait "$maria_pid"
rc_maria=$?
wait "$light_pid"
rc_light=$?
# The two side-by-side runs are shown one after the other, so each reads as one report.
cat "$logdir/maria.log" "$logdir/light.log"
rm -rf "$logdir"
echo "integration: ${#heavy[@]} files alone (exit $rc_heavy); ${#maria[@]} MariaDB files one at a" \
    "time (exit $rc_maria) beside ${#light[@]} files ${ASYNCD_TEST_JOBS:-2} at a time (exit $rc_light)"
((rc_heavy == 0 && rc_maria == 0 && rc_light == 0))
