#!/usr/bin/env bash
# Benchmarks task throughput on the PostgreSQL store with 1 and with 3 asyncd nodes (one database,
# distinct --node-id), one-step no-op tasks (exec /bin/true) from POST /v1/tasks to success, beside
# pgbench's single-row insert tps (a row shaped like a task row) on the same throw-away cluster.
# A third run, 1 node with 3x the workers, tells what the extra nodes add beyond more workers.
# Usage: bash bench/pg.sh   (env: BENCH_TASKS=2000, BENCH_CLIENTS=8, BENCH_WORKERS=nproc (per node),
#        BENCH_PGBENCH_SECONDS=10, BENCH_TIMEOUT=300, ASYNCD_BIN=bin/asyncd)
set -euo pipefail
# Only loopback traffic here: never through a proxy from the environment.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
cd "$(dirname "$0")/.."
. bench/lib.sh # say, die, PIDS stopped on exit, bench_tmp, free_port

TASKS=${BENCH_TASKS:-2000}
CLIENTS=${BENCH_CLIENTS:-8}
WORKERS=${BENCH_WORKERS:-$(nproc)}
PGB_SECONDS=${BENCH_PGBENCH_SECONDS:-10}
TIMEOUT=${BENCH_TIMEOUT:-300}
ASYNCD_BIN=${ASYNCD_BIN:-bin/asyncd}

bench_tmp /tmp/asyncd-bench-pg.XXXXXX

start_cluster() {
  PGPORT=$(free_port)
  ADMIN_URL=$(bash scripts/postgres.sh start "$TMP/pg" "$PGPORT") || die "cannot start PostgreSQL"
  PGBIN=$(dirname "$(ls /usr/lib/postgresql/*/bin/pgbench | sort -V | tail -n 1)")
  say "PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PGPORT (data in $TMP/pg)"
}

psql_db() { # DB SQL
  "$PGBIN/psql" -X -q -tA -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PGPORT" -U postgres -d "$1" -c "$2"
}

# Starts one asyncd node: NAME URL; sets PID_<NAME>, ADMIN_<NAME>.
start_node() {
  local name=$1 url=$2 dir=$TMP/$1 i line pid
  mkdir -p "$dir"
  # Nodes after the first: the store has its accounts already; each node reads the admin token
  # from credentials.json in its own data dir.
  [ -n "${CRED_FROM:-}" ] && install -m 0600 "$CRED_FROM" "$dir/credentials.json"
  "$ASYNCD_BIN" --listen 127.0.0.1:0 --admin 127.0.0.1:0 --data "$dir" --store "$url" \
    --node-id "$name" --workers "$WORKERS" >"$dir/asyncd.log" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  for i in $(seq 1 200); do
    line=$(grep -m1 -o 'listening cloudapi=[^ ]* admin=[^ ]*' "$dir/asyncd.log" || true)
    [ -n "$line" ] && break
    kill -0 "$pid" 2>/dev/null || { cat "$dir/asyncd.log" >&2; die "asyncd $name exited"; }
    sleep 0.1
  done
  [ -n "$line" ] || { cat "$dir/asyncd.log" >&2; die "asyncd $name did not log its listening line"; }
  NODE_PIDS+=("$pid")
  NODE_ADMINS+=("${line##* admin=}")
  say "asyncd $name pid $pid admin=${line##* admin=} workers=$WORKERS"
}

stop_nodes() {
  local p
  for p in "${NODE_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${NODE_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
}

cred() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }

# One run: LABEL NODES WORKERS. A fresh database, NODES asyncd nodes on it with WORKERS workers
# each, the load client through all of their admin APIs; appends "LABEL <RESULT fields>" lines and
# "LABEL nodes name:count ...".
run_asyncd() {
  local label=$1 nodes=$2 WORKERS=$3 db=bench_$1 url i
  url=$(bash scripts/postgres.sh createdb "$TMP/pg" "$db")
  NODE_PIDS=(); NODE_ADMINS=(); CRED_FROM=
  for i in $(seq 1 "$nodes"); do
    start_node "n$i" "$url"
    CRED_FROM=$TMP/n1/credentials.json
  done
  local token uin admins
  token=$(cred "$TMP/n1/credentials.json" AdminToken); uin=$(cred "$TMP/n1/credentials.json" Uin)
  admins=$(IFS=,; echo "${NODE_ADMINS[*]}")
  say "$label: $TASKS one-step no-op tasks through $nodes node(s), $CLIENTS clients"
  # Write transactions (each takes a transaction id) and WAL bytes over the run, cluster-wide:
  # nothing else writes to the cluster meanwhile.
  local x0 w0
  x0=$(psql_db postgres "SELECT txid_current()"); w0=$(psql_db postgres "SELECT pg_current_wal_lsn()")
  "$LOAD_CLIENT" "$admins" "$token" "$uin" "$TASKS" "$CLIENTS" "$TIMEOUT" >"$TMP/client.out" ||
    { cat "$TMP/client.out" >&2; tail -n 20 "$TMP"/n*/asyncd.log >&2; die "load client failed ($label)"; }
  grep '^RESULT ' "$TMP/client.out" | sed "s/^RESULT /$label /" >>"$TMP/results"
  echo "$label pgstat $(psql_db postgres "SELECT txid_current() - $x0 - 1, pg_wal_lsn_diff(pg_current_wal_lsn(), '$w0')" | tr '|' ' ')" >>"$TMP/results"
  # Which node ran how many tasks (the node of each task's first claim).
  echo "$label nodes $(psql_db "$db" "SELECT string_agg(node || ':' || n, ' ' ORDER BY node) FROM
    (SELECT node, count(*) AS n FROM task_events WHERE message LIKE 'started;%' GROUP BY node) x")" >>"$TMP/results"
  stop_nodes
  rm -rf "$TMP"/n[0-9]*
}

# pgbench: 1 row per transaction into a table shaped like asyncd's tasks row, with its indexes.
run_pgbench() {
  psql_db postgres "CREATE DATABASE pgb" >/dev/null
  psql_db pgb "CREATE TABLE tasks (job_id BIGSERIAL NOT NULL UNIQUE,
    id TEXT PRIMARY KEY, product TEXT NOT NULL, region TEXT NOT NULL, uin TEXT NOT NULL,
    instance_id TEXT, type TEXT NOT NULL, on_failure TEXT NOT NULL, state TEXT NOT NULL,
    info TEXT, current_step INTEGER NOT NULL DEFAULT 0, created_ms BIGINT NOT NULL,
    start_ms BIGINT, end_ms BIGINT, lease_node TEXT, lease_expires_ms BIGINT,
    lease_no BIGINT NOT NULL DEFAULT 0, phase TEXT NOT NULL DEFAULT 'do',
    attempt INTEGER NOT NULL DEFAULT 0, not_before_ms BIGINT NOT NULL DEFAULT 0,
    pause_requested INTEGER NOT NULL DEFAULT 0, driver TEXT NOT NULL DEFAULT 'engine', input TEXT);
    CREATE INDEX tasks_runnable ON tasks(created_ms, job_id) WHERE state IN ('initial', 'running') AND driver = 'engine';
    CREATE INDEX tasks_created ON tasks(created_ms, job_id);
    CREATE INDEX tasks_state ON tasks(state, created_ms);
    CREATE INDEX tasks_uin ON tasks(uin, created_ms);" >/dev/null
  cat >"$TMP/insert.sql" <<'EOF'
INSERT INTO tasks (id, product, region, uin, type, on_failure, state, created_ms, input)
VALUES (md5(random()::text) || md5(random()::text), 'cdb', 'ap-guangzhou', '100000000001', 'Bench',
        'pause', 'initial', (extract(epoch FROM clock_timestamp()) * 1000)::bigint,
        '{"name":"noop","do":{"exec":["/bin/true"]}}');
EOF
  local c tps
  for c in 1 4; do
    say "pgbench single-row inserts, $c client(s), ${PGB_SECONDS} s"
    tps=$("$PGBIN/pgbench" -h 127.0.0.1 -p "$PGPORT" -U postgres -n -f "$TMP/insert.sql" -c "$c" -j "$c" \
      -T "$PGB_SECONDS" pgb 2>&1 | awk '/^tps = / { print $3; exit }')
    [ -n "$tps" ] || die "pgbench -c $c printed no tps"
    echo "pgbench $c $tps" >>"$TMP/results"
  done
}

report() {
  echo
  echo "one-step no-op tasks (exec /bin/true), PostgreSQL store ($("$PGBIN/postgres" --version | awk '{print $3}'), defaults: fsync on, synchronous_commit on), $(nproc) CPUs"
  echo "$TASKS tasks, $CLIENTS keep-alive clients spread over the nodes' admin APIs, --workers $WORKERS per node; pgbench ${PGB_SECONDS} s per run; load average at start $LOAD0"
  awk -v n="$TASKS" '
    $2 == "create"  { crate[$1] = $5; cp50[$1] = $6; cp99[$1] = $7 }
    $2 == "e2e"     { erate[$1] = $5 }
    $2 == "latency" { l50[$1] = $3; l99[$1] = $4; w50[$1] = $6; r50[$1] = $8 }
    $2 == "wall"    { wrate[$1] = $4 }
    $2 == "pgstat"  { wtx[$1] = $3; wal[$1] = $4 }
    $1 == "pgbench" { tps[$2] = $3 }
    END {
      printf "\n%-52s %12s\n", "figure", "per second"
      printf "%-52s %12.0f\n", "asyncd tasks end-to-end, 1 node", erate["node1"]
      printf "%-52s %12.0f\n", "asyncd tasks end-to-end, 3 nodes", erate["node3"]
      printf "%-52s %12.0f\n", "asyncd tasks end-to-end, 1 node, 3x the workers", erate["node1w"]
      printf "%-52s %12.0f\n", "asyncd creates accepted, 1 node", crate["node1"]
      printf "%-52s %12.0f\n", "asyncd creates accepted, 3 nodes", crate["node3"]
      printf "%-52s %12.0f\n", "pgbench single-row insert tps, 1 client", tps[1]
      printf "%-52s %12.0f\n", "pgbench single-row insert tps, 4 clients", tps[4]
      printf "\nratio tasks/s : pgbench tps (1 client): 1 node %.3f, 3 nodes %.3f\n", erate["node1"] / tps[1], erate["node3"] / tps[1]
      printf "ratio tasks/s : pgbench tps (4 clients): 1 node %.3f, 3 nodes %.3f\n", erate["node1"] / tps[4], erate["node3"] / tps[4]
      printf "ratio 3 nodes : 1 node: %.2f\n", erate["node3"] / erate["node1"]
      printf "write transactions per task (transaction ids taken during the run / tasks): 1 node %.2f, 3 nodes %.2f, 1 node 3x workers %.2f\n",
        wtx["node1"] / n, wtx["node3"] / n, wtx["node1w"] / n
      printf "WAL bytes per task: 1 node %.0f, 3 nodes %.0f, 1 node 3x workers %.0f\n", wal["node1"] / n, wal["node3"] / n, wal["node1w"] / n
      printf "asyncd makes 3 write commits per one-step task (create; claim; step done + success), so the\n"
      printf "commit-bound ceiling at the 4-client insert rate is %.0f tasks/s.\n", tps[4] / 3
      split("node1 node3 node1w", ks, " ")
      for (i = 1; i <= 3; i++) { k = ks[i]
        printf "%s: create -> success p50 %d ms p99 %d ms (queued p50 %d, running p50 %d); POST p50 %.2f ms p99 %.2f ms; client wall %.0f/s\n",
          k, l50[k], l99[k], w50[k], r50[k], cp50[k], cp99[k], wrate[k]
      }
    }' "$TMP/results"
  grep ' nodes ' "$TMP/results" | sed 's/^\(node[0-9w]*\) nodes /\1: tasks started per node: /'
  echo "(node1, node3: --workers $WORKERS per node; node1w: 1 node with --workers $((3 * WORKERS)))"
}

main() {
  command -v python3 >/dev/null || die "python3 is needed"
  [ -x "$ASYNCD_BIN" ] || die "$ASYNCD_BIN not built (run make all)"
  load_client_build
  LOAD0=$(cut -d' ' -f1 /proc/loadavg)
  [ "${LOAD0%.*}" -lt "$(nproc)" ] || say "load average $LOAD0 on $(nproc) CPUs: other work will skew the figures"
  : >"$TMP/results"
  start_cluster
  run_asyncd node1 1 "$WORKERS"
  run_asyncd node3 3 "$WORKERS"
  # 1 node with as many workers as the 3 nodes have together: what the extra nodes add beyond workers.
  run_asyncd node1w 1 $((3 * WORKERS))
  # asyncd is stopped before pgbench, so the two never share the CPUs.
  run_pgbench
  report
}

main "$@"
