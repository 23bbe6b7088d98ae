# Sourced by the bench scripts after they cd to the repository root: messages, a temp dir, the
# asyncd (and other) processes each script starts, stopped by PID on exit, and the PostgreSQL
# cluster a script started in "$TMP/pg", stopped by its script.
say() { printf 'bench: %s\n' "$*" >&2; }
die() {
  say "$*"
  exit 1
}

PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  [ -n "${TMP:-}" ] && [ -d "$TMP/pg" ] && { bash scripts/postgres.sh stop "$TMP/pg" >/dev/null 2>&1 || true; }
  [ -n "${TMP:-}" ] && rm -rf "$TMP"
  return 0
}
trap cleanup EXIT

# bench_tmp TEMPLATE: makes TMP (mktemp -d TEMPLATE), readable by the postgres user that runs a
# cluster inside it when we are root.
bench_tmp() {
  TMP=$(mktemp -d "$1") || die "cannot make a temp dir from $1"
  chmod 0755 "$TMP"
}

# A TCP port on 127.0.0.1 that was free a moment ago.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null ||
    node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

# The C load client (bench/load_client.c): built here by make when it is missing or older than
# its source, so every script runs the current one. Sets LOAD_CLIENT.
load_client_build() {
  LOAD_CLIENT=${BUILD:-build}/bench/load_client
  make --no-print-directory -s "$LOAD_CLIENT" >&2 || die "cannot build $LOAD_CLIENT (needs libjansson-dev)"
}
