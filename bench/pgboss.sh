#!/usr/bin/env bash
# asyncd beside pg-boss on one PostgreSQL: one-step {"noop":{}} asyncd tasks from POST /v1/tasks to
# success, and pg-boss jobs of 1 ms from send() to completed, on the same throw-away cluster
# (scripts/postgres.sh, loopback, a port of its own), one after the other in the same run, each
# in a database of its own. Prints both rates and their ratio (goal: asyncd >= 1.0x pg-boss).
# pg-boss (npm, bench/package.json) is installed into bench/node_modules at the first run.
# Usage: bash bench/pgboss.sh   (env: BENCH_TASKS=5000, BENCH_CLIENTS=16 (asyncd's HTTP clients and
#        pg-boss's producers), BENCH_WORKERS=nproc (asyncd --workers), BENCH_PGBOSS_WORKERS=8,
#        BENCH_PGBOSS_BATCH=50, BENCH_PGBOSS_POLL_S=0.5, BENCH_TIMEOUT=300, ASYNCD_BIN=bin/asyncd,
#        BENCH_ASYNCD_POOL=N: asyncd's store URL gets ?pool=N, its PostgreSQL connections; by
#        default asyncd's own default, 8)
set -euo pipefail
# Only loopback traffic here: never through a proxy from the environment.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
cd "$(dirname "$0")/.."
. bench/lib.sh # say, die, PIDS stopped on exit, bench_tmp, free_port

TASKS=${BENCH_TASKS:-5000}
CLIENTS=${BENCH_CLIENTS:-16}
WORKERS=${BENCH_WORKERS:-$(nproc)}
PGBOSS_WORKERS=${BENCH_PGBOSS_WORKERS:-8}
PGBOSS_BATCH=${BENCH_PGBOSS_BATCH:-50}
PGBOSS_POLL_S=${BENCH_PGBOSS_POLL_S:-0.5}
TIMEOUT=${BENCH_TIMEOUT:-300}
ASYNCD_BIN=${ASYNCD_BIN:-bin/asyncd}
ASYNCD_POOL=${BENCH_ASYNCD_POOL:-}
export BENCH_STEP='{"noop":{}}'

bench_tmp /tmp/asyncd-bench-pgboss.XXXXXX

install_pgboss() {
  [ -d bench/node_modules/pg-boss ] && return
  say "installing pg-boss into bench/node_modules (npm)"
  (cd bench && npm install --no-audit --no-fund --no-package-lock >/dev/null) || die "npm install pg-boss failed"
}

start_cluster() {
  PGPORT=$(free_port)
  bash scripts/postgres.sh start "$TMP/pg" "$PGPORT" >/dev/null || die "cannot start PostgreSQL"
  PGBIN=$(dirname "$(ls /usr/lib/postgresql/*/bin/postgres | sort -V | tail -n 1)")
  say "PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PGPORT"
}

cred() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$TMP/asyncd/credentials.json" "$1"; }

run_asyncd() {
  local url line i pid token uin
  url=$(bash scripts/postgres.sh createdb "$TMP/pg" bench_asyncd)
  [ -n "$ASYNCD_POOL" ] && url="$url?pool=$ASYNCD_POOL"
  mkdir -p "$TMP/asyncd"
  "$ASYNCD_BIN" --listen 127.0.0.1:0 --admin 127.0.0.1:0 --data "$TMP/asyncd" --store "$url" \
    --workers "$WORKERS" >"$TMP/asyncd.log" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  for i in $(seq 1 200); do
    line=$(grep -m1 -o 'listening cloudapi=[^ ]* admin=[^ ]*' "$TMP/asyncd.log" || true)
    [ -n "$line" ] && break
    kill -0 "$pid" 2>/dev/null || { cat "$TMP/asyncd.log" >&2; die "asyncd exited"; }
    sleep 0.1
  done
  [ -n "$line" ] || { cat "$TMP/asyncd.log" >&2; die "asyncd did not log its listening line"; }
  token=$(cred AdminToken); uin=$(cred Uin)
  say "asyncd: $TASKS noop tasks, $CLIENTS HTTP clients, --workers $WORKERS"
  "$LOAD_CLIENT" "${line##* admin=}" "$token" "$uin" "$TASKS" "$CLIENTS" "$TIMEOUT" >"$TMP/client.out" ||
    { cat "$TMP/client.out" >&2; tail -n 20 "$TMP/asyncd.log" >&2; die "load client failed"; }
  grep '^RESULT ' "$TMP/client.out" | sed 's/^RESULT /asyncd /' >>"$TMP/results"
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

run_pgboss() {
  local url
  url=$(bash scripts/postgres.sh createdb "$TMP/pg" bench_pgboss)
  say "pg-boss: $TASKS jobs of 1 ms, $CLIENTS producers, $PGBOSS_WORKERS workers x batch $PGBOSS_BATCH, poll ${PGBOSS_POLL_S} s"
  node bench/pgboss.mjs "$url" "$TASKS" "$CLIENTS" "$PGBOSS_WORKERS" "$PGBOSS_BATCH" "$PGBOSS_POLL_S" "$TIMEOUT" \
    >"$TMP/pgboss.out" || { cat "$TMP/pgboss.out" >&2; die "pg-boss run failed"; }
  grep '^RESULT ' "$TMP/pgboss.out" | sed 's/^RESULT /pgboss /' >>"$TMP/results"
}

report() {
  echo
  echo "PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') (defaults: fsync on, synchronous_commit on), $(nproc) CPUs, load average at start $LOAD0"
  echo "asyncd: $TASKS one-step noop tasks, $CLIENTS keep-alive HTTP clients, --workers $WORKERS, store pool ${ASYNCD_POOL:-default}"
  echo "pg-boss $(node -p 'require("./bench/node_modules/pg-boss/package.json").version'): $TASKS jobs of 1 ms, $CLIENTS producers (one send() each at a time), $PGBOSS_WORKERS work() workers, batchSize $PGBOSS_BATCH, pollingIntervalSeconds $PGBOSS_POLL_S"
  awk '
    $2 == "create" { crate[$1] = $5 }
    $2 == "e2e"    { erate[$1] = $5 }
    $2 == "clientcpu" { ccpu[$1] = $3 }
    END {
      printf "\n%-52s %12s\n", "figure", "per second"
      printf "%-52s %12.0f\n", "asyncd tasks end-to-end (create -> success)", erate["asyncd"]
      printf "%-52s %12.0f\n", "asyncd creates accepted (POST /v1/tasks 201)", crate["asyncd"]
      printf "%-52s %12.0f\n", "pg-boss jobs end-to-end (send -> completed)", erate["pgboss"]
      printf "%-52s %12.0f\n", "pg-boss sends", crate["pgboss"]
      printf "\nratio asyncd tasks/s : pg-boss jobs/s = %.2f  (goal >= 1.0)\n", erate["asyncd"] / erate["pgboss"]
      printf "CPU seconds of the node processes: asyncd load client %.2f, pg-boss (producers and workers) %.2f\n", ccpu["asyncd"], ccpu["pgboss"]
    }' "$TMP/results"
}

main() {
  command -v node >/dev/null || die "node is needed"
  command -v python3 >/dev/null || die "python3 is needed"
  [ -x "$ASYNCD_BIN" ] || die "$ASYNCD_BIN not built (run make all)"
  install_pgboss
  load_client_build
  LOAD0=$(cut -d' ' -f1 /proc/loadavg)
  [ "${LOAD0%.*}" -lt "$(nproc)" ] || say "load average $LOAD0 on $(nproc) CPUs: other work will skew the figures"
  : >"$TMP/results"
  start_cluster
  run_asyncd
  run_pgboss
  report
}

main "$@"
