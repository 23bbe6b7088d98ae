#!/usr/bin/env bash
# Benchmarks task throughput on the SQLite store: one-step no-op tasks (exec /bin/true) from
# POST /v1/tasks to success, beside the raw SQLite insert rate at the same durability (WAL,
# synchronous=FULL) on the same file system (bench/sqlite_insert.c).
# Usage: bash bench/tasks.sh   (env: BENCH_TASKS=2000, BENCH_CLIENTS=8, BENCH_WORKERS=nproc,
#        BENCH_SQLITE_SECONDS=5, BENCH_TIMEOUT=300, BENCH_PERF=0, ASYNCD_BIN=bin/asyncd)
set -euo pipefail
# Only loopback traffic here: never through a proxy from the environment.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
cd "$(dirname "$0")/.."

TASKS=${BENCH_TASKS:-2000}
CLIENTS=${BENCH_CLIENTS:-8}
WORKERS=${BENCH_WORKERS:-$(nproc)}
SQLITE_SECONDS=${BENCH_SQLITE_SECONDS:-5}
TIMEOUT=${BENCH_TIMEOUT:-300}
PERF=${BENCH_PERF:-0}
ASYNCD_BIN=${ASYNCD_BIN:-bin/asyncd}
CC=${CC:-cc}

say() { printf 'bench: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

need_tools() {
  local t
  for t in node python3 "$CC"; do command -v "$t" >/dev/null || die "$t is needed"; done
  [ -x "$ASYNCD_BIN" ] || die "$ASYNCD_BIN not built (run make all)"
  if [ "$PERF" = 1 ] && ! command -v perf >/dev/null; then die "BENCH_PERF=1 needs perf"; fi
}

# Every process we start is recorded here and stopped by PID on exit.
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  [ -n "${TMP:-}" ] && rm -rf "$TMP"
}
trap cleanup EXIT
TMP=$(mktemp -d /tmp/asyncd-bench-tasks.XXXXXX)

# Starts asyncd on port 0 and reads the real ports from its "listening" line.
start_asyncd() {
  "$ASYNCD_BIN" --listen 127.0.0.1:0 --admin 127.0.0.1:0 --data "$TMP/data" \
    --workers "$WORKERS" >"$TMP/asyncd.log" 2>&1 &
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
  say "asyncd pid $ASYNCD_PID admin=$ADMIN workers=$WORKERS"
}

cred() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$TMP/data/credentials.json" "$1"; }

# utime stime cutime cstime of a process, in clock ticks (cutime/cstime: reaped children,
# i.e. the /bin/true steps).
cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12, $13, $14, $15 }' "/proc/$1/stat"; }

# The load client: creates the tasks with CLIENTS keep-alive connections, waits until every one
# is success, then reads created_ms/end_ms of each and prints RESULT lines.
write_client() {
  cat >"$TMP/client.js" <<'EOF'
'use strict';
const http = require('http');
const [admin, token, uin, nArg, cArg, timeoutArg] = process.argv.slice(2);
const N = +nArg, C = +cArg, TIMEOUT_MS = +timeoutArg * 1000;
const [host, port] = [admin.slice(0, admin.lastIndexOf(':')), +admin.slice(admin.lastIndexOf(':') + 1)];
const agent = new http.Agent({ keepAlive: true, maxSockets: C });
const auth = 'Bearer ' + token;

function call(method, path, body) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers = { Authorization: auth };
    if (data) { headers['Content-Type'] = 'application/json'; headers['Content-Length'] = data.length; }
    const req = http.request({ host, port, method, path, agent, headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        let json = null;
        try { json = JSON.parse(text); } catch (e) { /* keep text */ }
        resolve({ status: res.statusCode, json, text });
      });
    });
    req.on('error', reject);
    if (data) req.write(data);
    req.end();
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const pct = (sorted, p) => sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil(p / 100 * sorted.length) - 1)] : NaN;
const fail = (msg) => { console.error('client: ' + msg); process.exit(1); };

async function main() {
  const task = { product: 'cdb', region: 'ap-guangzhou', uin, type: 'Bench',
    steps: [{ name: 'noop', do: { exec: ['/bin/true'] } }] };
  // Tasks already in the store (none on the fresh data dir tasks.sh uses) are not ours to wait for.
  const base = await call('GET', '/v1/tasks?status=success&limit=1');
  if (base.status !== 200) fail(`GET /v1/tasks answered ${base.status}: ${base.text}`);
  const already = base.json.total;
  let next = 0, retries = 0;
  const createMs = [];
  const t0 = Date.now();
  async function creator() {
    while (next < N) {
      next++;
      for (;;) {
        const s = process.hrtime.bigint();
        const r = await call('POST', '/v1/tasks', task);
        if (r.status === 201) { createMs.push(Number(process.hrtime.bigint() - s) / 1e6); break; }
        if (r.status === 503 && ++retries < 1000) { await sleep(10); continue; }
        fail(`POST /v1/tasks answered ${r.status}: ${r.text}`);
      }
    }
  }
  await Promise.all(Array.from({ length: C }, creator));
  const tCreated = Date.now();

  // Poll the success count; every so often make sure nothing got stuck in another final state.
  let done = 0, polls = 0;
  for (;;) {
    const r = await call('GET', '/v1/tasks?status=success&limit=1');
    if (r.status !== 200) fail(`GET /v1/tasks answered ${r.status}: ${r.text}`);
    done = r.json.total - already;
    if (done >= N) break;
    if (++polls % 50 === 0) {
      for (const st of ['paused', 'failed', 'killed']) {
        const o = await call('GET', `/v1/tasks?status=${st}&limit=1`);
        if (o.json && o.json.total) fail(`${o.json.total} task(s) ${st}, e.g. ${JSON.stringify(o.json.tasks[0])}`);
      }
    }
    if (Date.now() - t0 > TIMEOUT_MS) fail(`timeout: ${done} of ${N} success after ${TIMEOUT_MS / 1000} s`);
    await sleep(20);
  }
  const tSeen = Date.now();

  // Each task's own timestamps (server clock, ms).
  const lat = [], wait = [], runMs = [];
  let firstCreated = Infinity, lastEnd = -Infinity;
  for (let off = 0; off < N; off += 1000) {
    const r = await call('GET', `/v1/tasks?limit=1000&offset=${off}`);
    if (r.status !== 200) fail(`GET /v1/tasks answered ${r.status}: ${r.text}`);
    for (const t of r.json.tasks) {
      if (t.state !== 'success') fail(`task ${t.AsyncRequestId} is ${t.state}`);
      firstCreated = Math.min(firstCreated, t.created_ms);
      lastEnd = Math.max(lastEnd, t.end_ms);
      lat.push(t.end_ms - t.created_ms);
      if (t.start_ms != null) { wait.push(t.start_ms - t.created_ms); runMs.push(t.end_ms - t.start_ms); }
    }
  }
  if (lat.length !== N) fail(`listed ${lat.length} tasks, expected ${N}`);
  for (const a of [lat, wait, runMs, createMs]) a.sort((x, y) => x - y);
  const cpu = process.cpuUsage();
  const createS = (tCreated - t0) / 1000, e2eS = (lastEnd - firstCreated) / 1000;
  console.log(`RESULT create ${N} ${createS.toFixed(3)} ${(N / createS).toFixed(1)} ${pct(createMs, 50).toFixed(2)} ${pct(createMs, 99).toFixed(2)}`);
  console.log(`RESULT e2e ${N} ${e2eS.toFixed(3)} ${(N / e2eS).toFixed(1)}`);
  console.log(`RESULT latency ${pct(lat, 50)} ${pct(lat, 99)} ${lat[lat.length - 1]} ${pct(wait, 50)} ${pct(wait, 99)} ${pct(runMs, 50)} ${pct(runMs, 99)}`);
  console.log(`RESULT wall ${((tSeen - t0) / 1000).toFixed(3)} ${(N / ((tSeen - t0) / 1000)).toFixed(1)} ${retries}`);
  console.log(`RESULT clientcpu ${((cpu.user + cpu.system) / 1e6).toFixed(2)}`);
  agent.destroy();
}
main().catch((e) => fail(e.stack || String(e)));
EOF
}

run_tasks() {
  local token uin before after perf_pid=
  token=$(cred AdminToken); uin=$(cred Uin)
  write_client
  if [ "$PERF" = 1 ]; then
    perf stat -e task-clock,context-switches -e 'syscalls:sys_enter_fdatasync,syscalls:sys_enter_fsync' \
      -p "$ASYNCD_PID" -o "$TMP/perf.txt" &
    perf_pid=$!
    PIDS+=("$perf_pid")
  fi
  before=$(cpu_ticks "$ASYNCD_PID")
  say "creating $TASKS one-step no-op tasks with $CLIENTS clients"
  node "$TMP/client.js" "$ADMIN" "$token" "$uin" "$TASKS" "$CLIENTS" "$TIMEOUT" >"$TMP/client.out" ||
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
  echo "one-step no-op tasks (exec /bin/true), SQLite store (WAL, synchronous=FULL), $(nproc) CPUs"
  echo "asyncd --workers $WORKERS, $TASKS tasks, $CLIENTS keep-alive clients; SQLite $(sqlite3 --version 2>/dev/null | cut -d' ' -f1); load average at start $LOAD0"
  awk -v ncpu="$(nproc)" '
    $1 == "create"  { cn = $2; cs = $3; crate = $4; cp50 = $5; cp99 = $6 }
    $1 == "e2e"     { es = $3; erate = $4 }
    $1 == "latency" { l50 = $2; l99 = $3; lmax = $4; w50 = $5; w99 = $6; r50 = $7; r99 = $8 }
    $1 == "wall"    { ws = $2; wrate = $3; retries = $4 }
    $1 == "clientcpu" { ccpu = $2 }
    $1 == "asyncdcpu" { hz = $10
      acpu = (($6 + $7) - ($2 + $3)) / hz; kcpu = (($8 + $9) - ($4 + $5)) / hz }
    $1 == "sqlite" { rate[$2] = $6; crate_s[$2] = $7 }
    END {
      printf "\n%-46s %12s\n", "figure", "per second"
      printf "%-46s %12.0f\n", "asyncd tasks end-to-end (create -> success)", erate
      printf "%-46s %12.0f\n", "asyncd creates accepted (POST /v1/tasks 201)", crate
      printf "%-46s %12.0f\n", "SQLite single-row commits, 1 connection", rate["single"]
      printf "%-46s %12.0f\n", "SQLite single-row commits, 4 connections", rate["threads"]
      printf "%-46s %12.0f\n", "SQLite rows, 100 per commit, 1 connection", rate["batch"]
      printf "\nratio asyncd tasks/s : SQLite commits/s (1 connection) = %.3f", erate / rate["single"]
      printf "  (1 : %.1f)\n", rate["single"] / erate
      printf "asyncd makes 3 fsynced commits per task (create; claim; step done + success, events in\n"
      printf "the same transactions), so the commit-bound ceiling is %.0f tasks/s; asyncd reached %.0f%% of it.\n",
        rate["single"] / 3, 100 * erate * 3 / rate["single"]
      printf "\nend-to-end: first created_ms to last end_ms %.3f s; client wall time to all success seen %.3f s (%.0f/s)\n", es, ws, wrate
      printf "create: %d tasks in %.3f s, POST latency p50 %.2f ms p99 %.2f ms, 503 retries %d\n", cn, cs, cp50, cp99, retries
      printf "create -> success per task (server clock, ms): p50 %d p99 %d max %d\n", l50, l99, lmax
      printf "  of which queued (create -> start) p50 %d p99 %d, running (start -> success) p50 %d p99 %d\n", w50, w99, r50, r99
      printf "CPU seconds during the run: asyncd %.2f, its /bin/true children %.2f, load client %.2f (wall %.2f s, %d CPUs)\n",
        acpu, kcpu, ccpu, ws, ncpu
      printf "SQLite batched run: %.0f commits/s of 100 rows each\n", crate_s["batch"]
    }' "$TMP/results"
  if [ -s "$TMP/perf.txt" ]; then
    echo
    echo "perf stat on asyncd during the task run:"
    grep -E 'task-clock|context-switches|syscalls|elapsed' "$TMP/perf.txt" || true
  fi
}

main() {
  need_tools
  LOAD0=$(cut -d' ' -f1 /proc/loadavg)
  [ "${LOAD0%.*}" -lt "$(nproc)" ] || say "load average $LOAD0 on $(nproc) CPUs: other work will skew the figures"
  : >"$TMP/results"
  start_asyncd
  run_tasks
  # Stop asyncd before the SQLite runs so the two never share the disk or the CPUs.
  kill -TERM "$ASYNCD_PID" 2>/dev/null || true
  wait "$ASYNCD_PID" 2>/dev/null || true
  run_sqlite
  report
}

main "$@"
