#!/usr/bin/env bash
# Benchmarks task throughput on the SQLite store: one-step tasks ({"noop":{}}, or BENCH_STEP) from
# POST /v1/tasks to success, beside the raw SQLite insert rate at the same durability (WAL,
# synchronous=FULL) on the same file system (bench/sqlite_insert.c). Two asyncd runs:
#  - together: the tasks are created while the engine runs them (create -> success);
#  - backlog: the tasks are created with the engine off (--workers 0: the creates alone), then
#    asyncd restarts with the engine on and the backlog drains (the engine alone).
# Usage: bash bench/tasks.sh   (env: BENCH_TASKS=5000, BENCH_CLIENTS=16, BENCH_WORKERS=nproc,
#        BENCH_SQLITE_SECONDS=5, BENCH_TIMEOUT=300, ASYNCD_BIN=bin/asyncd,
#        BENCH_PERF=1 for perf stat of asyncd's task run: CPU, syscalls and context switches a task
#        (counting syscalls slows them: compare rates only between runs without it),
#        BENCH_STEP='{"exec":["/bin/true"]}' for another step action as JSON, BENCH_N_STEPS=1 steps
#        of it per task, BENCH_BATCH=1 tasks a create request: K > 1 creates through
#        POST /v1/tasks/batch, K tasks in one request and one transaction)
set -euo pipefail
# Only loopback traffic here: never through a proxy from the environment.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
cd "$(dirname "$0")/.."
. bench/lib.sh # say, die, PIDS stopped on exit, bench_tmp, free_port

TASKS=${BENCH_TASKS:-5000}
CLIENTS=${BENCH_CLIENTS:-16}
STEP=${BENCH_STEP:-'{"noop":{}}'}
export BENCH_STEP=$STEP
WORKERS=${BENCH_WORKERS:-$(nproc)}
SQLITE_SECONDS=${BENCH_SQLITE_SECONDS:-5}
TIMEOUT=${BENCH_TIMEOUT:-300}
PERF=${BENCH_PERF:-0}
ASYNCD_BIN=${ASYNCD_BIN:-bin/asyncd}
CC=${CC:-cc}

need_tools() {
  local t
  for t in python3 "$CC"; do command -v "$t" >/dev/null || die "$t is needed"; done
  [ -x "$ASYNCD_BIN" ] || die "$ASYNCD_BIN not built (run make all)"
  load_client_build
  if [ "$PERF" = 1 ] && ! command -v perf >/dev/null; then die "BENCH_PERF=1 needs perf"; fi
}

bench_tmp /tmp/asyncd-bench-tasks.XXXXXX

# Starts asyncd on port 0 and reads the real ports from its "listening" line: DATA_DIR WORKERS.
start_asyncd() {
  DATA=$1
  "$ASYNCD_BIN" --listen 127.0.0.1:0 --admin 127.0.0.1:0 --data "$DATA" \
    --workers "$2" >"$TMP/asyncd.log" 2>&1 &
  PIDS+=($!)
  ASYNCD_PID=$!
  local i line
  for i in $(seq 1 100); do
    line=$(grep -m1 -o 'listening cloudapi=[^ ]* admin=[^ ]*' "$TMP/asyncd.log" || true)
    [ -n "$line" ] && break
    kill -0 "$ASYNCD_PID" 2>/dev/null || { cat "$TMP/asyncd.log" >&2; die "asyncd exited"; }
    sleep 0.1
  done
  [ -n "$line" ] || { cat "$TMP/asyncd.log" >&2; die "asyncd did not log its listening line"; }
  ADMIN=${line##* admin=}
  say "asyncd pid $ASYNCD_PID admin=$ADMIN workers=$2 data=$DATA"
}

stop_asyncd() {
  kill -TERM "$ASYNCD_PID" 2>/dev/null || true
  wait "$ASYNCD_PID" 2>/dev/null || true
}

cred() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$DATA/credentials.json" "$1"; }

# The backlog run: creates with the engine off (RESULT create -> "alone"), then drains with it on
# (RESULT e2e -> "drain", from the first claim to the last success).
run_backlog() {
  local token uin
  start_asyncd "$TMP/backlog" 0
  token=$(cred AdminToken); uin=$(cred Uin)
  say "backlog: creating $TASKS tasks with the engine off, $CLIENTS clients"
  BENCH_MODE=create "$LOAD_CLIENT" "$ADMIN" "$token" "$uin" "$TASKS" "$CLIENTS" "$TIMEOUT" >"$TMP/client.out" ||
    { cat "$TMP/client.out" >&2; tail -20 "$TMP/asyncd.log" >&2; die "load client failed"; }
  grep '^RESULT create ' "$TMP/client.out" | sed 's/^RESULT create /alone /' >>"$TMP/results"
  stop_asyncd
  start_asyncd "$TMP/backlog" "$WORKERS"
  say "backlog: draining with --workers $WORKERS"
  local before after
  before=$(cpu_ticks "$ASYNCD_PID")
  BENCH_MODE=wait "$LOAD_CLIENT" "$ADMIN" "$token" "$uin" "$TASKS" "$CLIENTS" "$TIMEOUT" >"$TMP/client.out" ||
    { cat "$TMP/client.out" >&2; tail -20 "$TMP/asyncd.log" >&2; die "load client failed"; }
  after=$(cpu_ticks "$ASYNCD_PID")
  echo "draincpu $before $after $(getconf CLK_TCK)" >>"$TMP/results"
  grep '^RESULT e2e ' "$TMP/client.out" | sed 's/^RESULT e2e /drain /' >>"$TMP/results"
  grep '^RESULT latency ' "$TMP/client.out" | sed 's/^RESULT latency /drainlat /' >>"$TMP/results"
  stop_asyncd
}

# utime stime cutime cstime of a process, in clock ticks (cutime/cstime: reaped children,
# i.e. the /bin/true steps).
cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12, $13, $14, $15 }' "/proc/$1/stat"; }

run_tasks() {
  local token uin before after perf_pid=
  token=$(cred AdminToken); uin=$(cred Uin)
  if [ "$PERF" = 1 ]; then
    perf stat -e task-clock,context-switches,raw_syscalls:sys_enter \
      -e 'syscalls:sys_enter_fdatasync,syscalls:sys_enter_fsync' \
      -p "$ASYNCD_PID" -o "$TMP/perf.txt" &
    perf_pid=$!
    PIDS+=("$perf_pid")
  fi
  before=$(cpu_ticks "$ASYNCD_PID")
  say "together: creating $TASKS one-step tasks with $CLIENTS clients while the engine runs them"
  "$LOAD_CLIENT" "$ADMIN" "$token" "$uin" "$TASKS" "$CLIENTS" "$TIMEOUT" >"$TMP/client.out" ||
    { cat "$TMP/client.out" >&2; tail -20 "$TMP/asyncd.log" >&2; die "load client failed"; }
  after=$(cpu_ticks "$ASYNCD_PID")
  if [ -n "$perf_pid" ]; then
    kill -INT "$perf_pid" 2>/dev/null || true
    wait "$perf_pid" 2>/dev/null || true
  fi
  grep '^RESULT ' "$TMP/client.out" | sed 's/^RESULT //' >>"$TMP/results"
  echo "asyncdcpu $before $after $(getconf CLK_TCK)" >>"$TMP/results"
}

run_sqlite() {
  say "compiling bench/sqlite_insert.c"
  "$CC" -O2 -std=c17 -o "$TMP/sqlite_insert" bench/sqlite_insert.c -lsqlite3 -lpthread ||
    die "cannot compile bench/sqlite_insert.c (needs libsqlite3-dev)"
  mkdir -p "$TMP/sqlite"
  say "raw SQLite inserts, ${SQLITE_SECONDS} s per run, in $TMP/sqlite (same file system as the asyncd data)"
  "$TMP/sqlite_insert" "$TMP/sqlite" "$SQLITE_SECONDS" 0 4 100 | grep '^RESULT ' | sed 's/^RESULT /sqlite /' >>"$TMP/results"
}

report() {
  echo
  echo "one-step tasks ($STEP), SQLite store (WAL, synchronous=FULL), $(nproc) CPUs"
  echo "asyncd --workers $WORKERS, $TASKS tasks, $CLIENTS keep-alive clients, ${BENCH_BATCH:-1} task(s) a create request; SQLite $(sqlite3 --version 2>/dev/null | cut -d' ' -f1); load average at start $LOAD0"
  awk -v ncpu="$(nproc)" '
    $1 == "create"  { cn = $2; cs = $3; crate = $4; cp50 = $5; cp99 = $6 }
    $1 == "e2e"     { es = $3; erate = $4 }
    $1 == "latency" { l50 = $2; l99 = $3; lmax = $4; w50 = $5; w99 = $6; r50 = $7; r99 = $8 }
    $1 == "wall"    { ws = $2; wrate = $3; retries = $4 }
    $1 == "clientcpu" { ccpu = $2 }
    $1 == "asyncdcpu" { hz = $10
      acpu = (($6 + $7) - ($2 + $3)) / hz; kcpu = (($8 + $9) - ($4 + $5)) / hz }
    $1 == "sqlite" { rate[$2] = $6; crate_s[$2] = $7 }
    $1 == "alone"  { arate = $4 }
    $1 == "drain"  { drate = $4 }
    $1 == "drainlat" { dl50 = $7; dl99 = $8 }
    $1 == "draincpu" { dcpu = (($6 + $7) - ($2 + $3)) / $10 }
    END {
      printf "\n%-46s %12s\n", "figure", "per second"
      printf "%-46s %12.0f\n", "asyncd tasks end-to-end (create -> success)", erate
      printf "%-46s %12.0f\n", "asyncd creates accepted (POST /v1/tasks 201)", crate
      printf "%-46s %12.0f\n", "SQLite single-row commits, 1 connection", rate["single"]
      printf "%-46s %12.0f\n", "SQLite single-row commits, 4 connections", rate["threads"]
      printf "%-46s %12.0f\n", "SQLite rows, 100 per commit, 1 connection", rate["batch"]
      printf "%-46s %12.0f\n", "backlog: creates alone (engine off)", arate
      printf "%-46s %12.0f\n", "backlog: engine drain (first claim -> last end)", drate
      single = rate["single"]
      printf "\nratios to SQLite single-row commits/s (1 connection, %.0f/s), the anchor of this run:\n", single
      printf "  tasks end-to-end, created while running   %.3f\n", erate / single
      printf "  creates alone (POST /v1/tasks, engine off) %.3f\n", arate / single
      printf "  backlog drained by the engine alone        %.3f  (goal >= 2.0 end-to-end)\n", drate / single
      printf "end-to-end tasks/s : creates/s alone = %.2f (1.0 = the creates are the limit)\n", erate / arate
      printf "\nend-to-end: first created_ms to last end_ms %.3f s; client wall time to all success seen %.3f s (%.0f/s)\n", es, ws, wrate
      printf "create: %d tasks in %.3f s, POST latency p50 %.2f ms p99 %.2f ms, 503 retries %d\n", cn, cs, cp50, cp99, retries
      printf "create -> success per task (server clock, ms): p50 %d p99 %d max %d\n", l50, l99, lmax
      printf "  of which queued (create -> start) p50 %d p99 %d, running (start -> success) p50 %d p99 %d\n", w50, w99, r50, r99
      printf "backlog drain: running (claim -> success) p50 %d p99 %d ms\n", dl50, dl99
      printf "CPU seconds during the run: asyncd %.2f, its /bin/true children %.2f, load client %.2f (wall %.2f s, %d CPUs)\n",
        acpu, kcpu, ccpu, ws, ncpu
      printf "backlog drain CPU: asyncd %.2f s, %.1f us per task (the engine alone, the wait polls included)\n", dcpu, dcpu * 1e6 / cn
      printf "SQLite batched run: %.0f commits/s of 100 rows each\n", crate_s["batch"]
    }' "$TMP/results"
  if [ -s "$TMP/perf.txt" ]; then
    echo
    echo "perf stat on asyncd during the task run:"
    grep -E 'task-clock|context-switches|syscalls|elapsed' "$TMP/perf.txt" || true
    # per task: on a VM every syscall and context switch is dear (bench/tasks.md)
    awk -v n="$TASKS" '$2 == "raw_syscalls:sys_enter" { gsub(",", "", $1); s = $1 }
      $2 == "context-switches" { gsub(",", "", $1); c = $1 }
      END { if (s) printf "a task: %.2f syscalls, %.2f context switches\n", s / n, c / n }' "$TMP/perf.txt"
  fi
}

main() {
  need_tools
  LOAD0=$(cut -d' ' -f1 /proc/loadavg)
  [ "${LOAD0%.*}" -lt "$(nproc)" ] || say "load average $LOAD0 on $(nproc) CPUs: other work will skew the figures"
  : >"$TMP/results"
  start_asyncd "$TMP/data" "$WORKERS"
  run_tasks
  # Stop asyncd before the SQLite runs so the two never share the disk or the CPUs.
  stop_asyncd
  run_backlog
  run_sqlite
  report
}

main "$@"
