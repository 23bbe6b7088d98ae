#!/usr/bin/env bash
# Benchmarks many concurrent waiting steps on one node (SQLite store): BENCH_STEPS tasks of one
# built-in {"sleep":{"s":S}} step, then as many of one exec ["sleep","S"] step, each on a fresh
# asyncd with --max-running BENCH_STEPS; prints the time until all run, asyncd's RSS and CPU while
# they wait, the exec children alive at once, and the time until all succeed.
# Usage: bash bench/steps.sh   (env: BENCH_STEPS=10000, BENCH_STEP_S=30, BENCH_CLIENTS=16,
#        BENCH_MODES="builtin exec", BENCH_TIMEOUT=600, ASYNCD_BIN=bin/asyncd,
#        BENCH_DIR=/tmp: where the data dirs go; /dev/shm takes the disk's fsync rate out)
set -euo pipefail
# Only loopback traffic here: never through a proxy from the environment.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
cd "$(dirname "$0")/.."
. bench/lib.sh # say, die, PIDS stopped on exit, bench_tmp, free_port

STEPS=${BENCH_STEPS:-10000}
STEP_S=${BENCH_STEP_S:-30}
CLIENTS=${BENCH_CLIENTS:-16}
MODES=${BENCH_MODES:-builtin exec}
TIMEOUT=${BENCH_TIMEOUT:-600}
ASYNCD_BIN=${ASYNCD_BIN:-bin/asyncd}
BENCH_DIR=${BENCH_DIR:-${TMPDIR:-/tmp}}

command -v node >/dev/null || die "node is needed"
[ -x "$ASYNCD_BIN" ] || die "$ASYNCD_BIN not built (run make all)"

bench_tmp "$BENCH_DIR/asyncd-bench-steps.XXXXXX"

# The load client: creates the tasks, reports when all run and when all succeed. It samples
# asyncd's RSS and CPU (from /proc) and its child count while the steps wait.
cat >"$TMP/client.mjs" <<'EOF'
import fs from 'node:fs';
import http from 'node:http';
const [admin, token, uin, n, stepS, clients, timeoutS, pid, mode] = process.argv.slice(2);
const N = Number(n);
const [host, port] = admin.split(':');
const agent = new http.Agent({ keepAlive: true, maxSockets: Number(clients) });
const call = (method, path, body) => new Promise((resolve, reject) => {
  const payload = body ? Buffer.from(JSON.stringify(body)) : undefined;
  const headers = { Authorization: `Bearer ${token}` };
  if (payload) Object.assign(headers, { 'Content-Type': 'application/json', 'Content-Length': payload.length });
  const req = http.request({ host, port, method, path, headers, agent }, (res) => {
    const chunks = [];
    res.on('data', (c) => chunks.push(c));
    res.on('end', () => resolve({ status: res.statusCode, json: JSON.parse(Buffer.concat(chunks).toString() || 'null') }));
  });
  req.on('error', reject);
  req.end(payload);
});
const action = mode === 'exec' ? { exec: ['sleep', String(stepS)] } : { sleep: { s: Number(stepS) } };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const ticks = () => {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
  return Number(f[11]) + Number(f[12]);
};
const rssMb = () => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024;
// A child is listed under the thread that started it: every thread's list, summed.
const children = () => {
  let k = 0;
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      k += fs.readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).length;
    } catch { /* the thread ended */ }
  }
  return k;
};
const count = async (state) => (await call('GET', `/v1/tasks?status=${state}&limit=1`)).json.total;
const deadline = Date.now() + Number(timeoutS) * 1000;
const t0 = Date.now();
const cpuStart = ticks();
let next = 0;
await Promise.all(Array.from({ length: Number(clients) }, async () => {
  while (next < N) {
    next++;
    const r = await call('POST', '/v1/tasks', { product: 'mongodb', region: 'ap-guangzhou', uin, type: 'BenchSteps', steps: [{ name: 'wait', do: action }] });
    if (r.status !== 201) throw new Error(`POST /v1/tasks -> ${r.status} ${JSON.stringify(r.json)}`);
  }
}));
const created = Date.now() - t0;
// "All run": no task is initial any more (every one claimed; a built-in sleep then waits in the
// store, an exec one in its child), or, for exec, as many children as --max-running allows.
let allRun = null, peakChildren = 0, peakRss = 0;
for (;;) {
  const initial = await count('initial');
  peakChildren = Math.max(peakChildren, children());
  peakRss = Math.max(peakRss, rssMb());
  if (initial === 0) { allRun = Date.now() - t0; break; }
  if (Date.now() > deadline) throw new Error(`still ${initial} initial after ${timeoutS} s`);
  await sleep(200);
}
// While they wait: CPU over a 5 s window (or what is left of the step, at least 1 s), RSS at its
// end. (When claiming took longer than a step, the first steps are ending meanwhile.)
const win = Math.max(1000, Math.min(5000, Number(stepS) * 1000 - (Date.now() - t0) - 2000));
const c0 = ticks(), w0 = Date.now();
await sleep(win);
const cpu = (ticks() - c0) / 100 / ((Date.now() - w0) / 1000);
const rss = rssMb();
peakChildren = Math.max(peakChildren, children());
let done = null;
for (;;) {
  const ok = await count('success');
  peakChildren = Math.max(peakChildren, children());
  peakRss = Math.max(peakRss, rssMb());
  if (ok === N) { done = Date.now() - t0; break; }
  if (Date.now() > deadline) throw new Error(`only ${ok} of ${N} succeeded after ${timeoutS} s`);
  await sleep(250);
}
agent.destroy();
const cpuAll = (ticks() - cpuStart) / 100;
console.log(`RESULT ${mode} ${N} ${stepS} ${created} ${allRun} ${rss.toFixed(1)} ${peakRss.toFixed(1)} ${(cpu * 100).toFixed(1)} ${win} ${peakChildren} ${done} ${cpuAll.toFixed(1)}`);
EOF

# Starts asyncd on port 0 and reads the real ports from its "listening" line.
start_asyncd() {
  local data=$1
  "$ASYNCD_BIN" --listen 127.0.0.1:0 --admin 127.0.0.1:0 --data "$data" --rate-limit '*=0' \
    --max-running "$STEPS" >"$data.log" 2>&1 &
  PIDS+=($!)
  ASYNCD_PID=$!
  local i line
  for i in $(seq 1 100); do
    line=$(grep -m1 -o 'listening cloudapi=[^ ]* admin=[^ ]*' "$data.log" || true)
    [ -n "$line" ] && break
    kill -0 "$ASYNCD_PID" 2>/dev/null || { cat "$data.log" >&2; die "asyncd exited"; }
    sleep 0.1
  done
  [ -n "$line" ] || { cat "$data.log" >&2; die "asyncd did not log its listening line"; }
  ADMIN=${line##* admin=}
}

cred() { node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1]))[process.argv[2]])' "$1/credentials.json" "$2"; }

for mode in $MODES; do
  data="$TMP/data-$mode"
  start_asyncd "$data"
  grep -m1 -o 'open files: .*' "$data.log" | sed 's/^/bench: asyncd: /' >&2 || true
  grep -m1 -o 'max-running.*' "$data.log" | sed 's/^/bench: asyncd: --/' >&2 || true
  say "$mode: $STEPS tasks of one $STEP_S s sleep step, $CLIENTS clients (asyncd pid $ASYNCD_PID)"
  node "$TMP/client.mjs" "$ADMIN" "$(cred "$data" AdminToken)" "$(cred "$data" Uin)" "$STEPS" \
    "$STEP_S" "$CLIENTS" "$TIMEOUT" "$ASYNCD_PID" "$mode" | tee -a "$TMP/results" >&2
  kill -TERM "$ASYNCD_PID"
  wait "$ASYNCD_PID" || die "asyncd exited with $? after the $mode run"
done

echo
echo "concurrent waiting steps on one node, SQLite store in $BENCH_DIR, $(nproc) CPUs, load average at the end $(cut -d' ' -f1-3 /proc/loadavg),"
echo "--workers $(nproc) (default), --max-running $STEPS"
printf '%-8s %6s %5s %10s %11s %8s %9s %7s %9s %13s %10s\n' mode tasks s created_s all_run_s rss_mb peak_mb cpu_% children all_success_s cpu_all_s
while read -r _ mode n s created allrun rss peak cpu _win kids done cpuall; do
  printf '%-8s %6s %5s %10.1f %11.1f %8s %9s %7s %9s %13.1f %10s\n' "$mode" "$n" "$s" \
    "$(echo "$created / 1000" | bc -l)" "$(echo "$allrun / 1000" | bc -l)" "$rss" "$peak" "$cpu" "$kids" \
    "$(echo "$done / 1000" | bc -l)" "$cpuall"
done <"$TMP/results"
echo "(all_run: creation start to no task initial; rss, cpu_%: asyncd while the steps wait; peak_mb: the most RSS seen;"
echo " children: most exec children alive at once; cpu_all_s: asyncd's CPU seconds for the whole run)"
