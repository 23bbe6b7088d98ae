#!/usr/bin/env bash
# Benchmarks remote steps pulled by workers (docs/workers.md) on the SQLite store: BENCH_TASKS
# one-step tasks whose step is {"remote": {"kind": "echo"}} are created first, then
# BENCH_WORKER_PROCS reference workers (examples/worker/worker.mjs) claim them in batches of
# BENCH_MAX; the figure is steps/s from the workers' start to the last task's success (each step:
# engine claim + handover, worker claim, complete, engine claim + result + success).
# Usage: bash bench/workers.sh   (env: BENCH_TASKS=2000, BENCH_WORKER_PROCS=4, BENCH_MAX=16,
#        BENCH_ENGINE_WORKERS=nproc, BENCH_TIMEOUT=300, ASYNCD_BIN=bin/asyncd)
set -euo pipefail
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
cd "$(dirname "$0")/.."
. bench/lib.sh # say, die, PIDS stopped on exit, bench_tmp, free_port

TASKS=${BENCH_TASKS:-2000}
PROCS=${BENCH_WORKER_PROCS:-4}
MAX=${BENCH_MAX:-16}
ENGINE_WORKERS=${BENCH_ENGINE_WORKERS:-$(nproc)}
TIMEOUT=${BENCH_TIMEOUT:-300}
ASYNCD_BIN=${ASYNCD_BIN:-bin/asyncd}

bench_tmp /tmp/asyncd-bench-workers.XXXXXX

"$ASYNCD_BIN" --listen 127.0.0.1:0 --admin 127.0.0.1:0 --data "$TMP" --workers "$ENGINE_WORKERS" \
  --rate-limit '*=0' >"$TMP/asyncd.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 200); do
  grep -q 'listening cloudapi=' "$TMP/asyncd.log" 2>/dev/null && break
  sleep 0.05
done
ADMIN_PORT=$(sed -n 's/.*listening cloudapi=[^ ]* admin=[^:]*:\([0-9]*\).*/\1/p' "$TMP/asyncd.log" | head -n 1)
[ -n "$ADMIN_PORT" ] || die "asyncd did not start: $(tail -n 5 "$TMP/asyncd.log")"
URL="http://127.0.0.1:$ADMIN_PORT"
say "asyncd on $URL (SQLite in $TMP, --workers $ENGINE_WORKERS)"

# The admin token, a worker token, and the tasks (64 POSTs in flight).
export URL TASKS TMP
node --input-type=module -e '
import fs from "node:fs";
const { URL: base, TASKS, TMP } = process.env;
const admin = JSON.parse(fs.readFileSync(`${TMP}/credentials.json`, "utf8")).AdminToken;
const call = async (method, p, body, token = admin) => {
  const r = await fetch(base + p, { method, headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" }, body: body && JSON.stringify(body) });
  if (!r.ok) throw new Error(`${method} ${p}: ${r.status} ${await r.text()}`);
  return r.json();
};
const creds = JSON.parse(fs.readFileSync(`${TMP}/credentials.json`, "utf8"));
const tok = await call("POST", "/v1/tokens", { scope: "worker", name: "bench" });
fs.writeFileSync(`${TMP}/worker-token`, tok.token);
let next = 0;
const one = async () => {
  while (next < Number(TASKS)) {
    const i = next++;
    await call("POST", "/v1/tasks", { product: "cdb", region: "ap-guangzhou", uin: creds.Uin, type: "Bench",
      steps: [{ name: "r", do: { remote: { kind: "echo", args: { message: `step ${i}` } } } }] });
  }
};
await Promise.all(Array.from({ length: 64 }, one));
'
say "created $TASKS tasks; starting $PROCS workers (batches of $MAX)"

# asyncd's CPU time (utime + stime, clock ticks): a figure the machine's other load moves less.
cpu_ticks() { awk '{print $14 + $15}' "/proc/${PIDS[0]}/stat"; }
CPU0=$(cpu_ticks)
T0=$(date +%s%N)
WORKER_PIDS=()
for i in $(seq 1 "$PROCS"); do
  ASYNCD_TOKEN=$(cat "$TMP/worker-token") node examples/worker/worker.mjs --url "$URL" --kinds echo \
    --name "bench-$i" --max "$MAX" --wait 2 --quiet >"$TMP/worker-$i.json" &
  PIDS+=($!)
  WORKER_PIDS+=($!)
done

# Polls the count of successful tasks until it is all of them.
ADMIN_TOKEN=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")).AdminToken)' "$TMP/credentials.json")
DEADLINE=$(($(date +%s) + TIMEOUT))
while :; do
  DONE=$(curl -s -H "Authorization: Bearer $ADMIN_TOKEN" "$URL/v1/tasks?status=success&limit=1" |
    node -e 'let s="";process.stdin.on("data",c=>s+=c).on("end",()=>console.log(JSON.parse(s).total))')
  [ "$DONE" -ge "$TASKS" ] && break
  [ "$(date +%s)" -lt "$DEADLINE" ] || die "only $DONE of $TASKS tasks succeeded within ${TIMEOUT}s"
  sleep 0.1
done
T1=$(date +%s%N)
CPU1=$(cpu_ticks)
# The workers stop on SIGTERM once their current long-poll returns, and print their counts.
kill -TERM "${WORKER_PIDS[@]}" 2>/dev/null || true
wait "${WORKER_PIDS[@]}" 2>/dev/null || true
MS=$(((T1 - T0) / 1000000))
say "workers: $(cat "$TMP"/worker-*.json | tr '\n' ' ')"
CPU_MS=$(((CPU1 - CPU0) * 1000 / $(getconf CLK_TCK)))
printf 'remote steps: %d tasks, %d worker processes, batches of %d: %d ms, %s steps/s; asyncd CPU %d ms (%s ms per step); load average %s\n' \
  "$TASKS" "$PROCS" "$MAX" "$MS" "$(node -e "console.log((${TASKS} * 1000 / ${MS}).toFixed(1))")" \
  "$CPU_MS" "$(node -e "console.log((${CPU_MS} / ${TASKS}).toFixed(2))")" "$(cut -d' ' -f1 /proc/loadavg)"
