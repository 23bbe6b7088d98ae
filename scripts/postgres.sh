#!/usr/bin/env bash
# Starts (`start DIR PORT`, prints the URL), stops (`stop DIR`), restarts (`restart DIR`) a throw-away PostgreSQL on 127.0.0.1, or adds a database (`createdb DIR NAME`); safe to run again.
set -euo pipefail

usage() {
  echo "usage: $0 start DIR PORT | stop DIR | restart DIR | createdb DIR NAME" >&2
  exit 2
}

# Debian 12's postgresql-15; another major version works too when it is the only one installed.
pg_bin() {
  local d
  for d in /usr/lib/postgresql/15/bin /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && { echo "$d"; return 0; }
  done
  return 1
}

# Installs the server from Debian when missing, without creating or starting a system cluster.
install_server() {
  pg_bin >/dev/null && command -v psql >/dev/null && return 0
  [ "$(id -u)" = 0 ] || { echo "postgres.sh: postgresql is missing; run as root to install it" >&2; exit 1; }
  local policy=/usr/sbin/policy-rc.d made_policy= conf=/etc/postgresql-common/createcluster.conf
  if [ ! -e "$policy" ]; then
    # invoke-rc.d then refuses to start services (exit 101): no system postgres on 5432
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 0755 "$policy" && made_policy=1
  fi
  # and postgresql-common creates no main cluster at all
  mkdir -p "$(dirname "$conf")"
  grep -qs '^create_main_cluster *= *false' "$conf" || echo 'create_main_cluster = false' >>"$conf"
  echo "postgres.sh: installing postgresql" >&2
  export DEBIAN_FRONTEND=noninteractive
  local rc=0
  { apt-get -o DPkg::Lock::Timeout=300 update -qq &&
    apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends \
      postgresql postgresql-client; } >&2 || rc=$?
  [ -n "$made_policy" ] && rm -f "$policy"
  return "$rc"
}

# Runs a command as the cluster's owner: initdb and pg_ctl refuse root.
as_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# The pid in DIR/data/postmaster.pid when that process is a live postgres, else nothing.
running_pid() {
  local pidfile=$1/data/postmaster.pid pid
  [ -s "$pidfile" ] || return 0
  pid=$(head -n 1 "$pidfile" | tr -dc 0-9)
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 0
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "postgres" && echo "$pid"
  return 0
}

# Whether pid is a live process (a zombie nobody reaped yet counts as gone).
alive() {
  local state
  state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

psql_in() {
  local dir=$1 port
  shift
  port=$(cat "$dir/port")
  "$(pg_bin)/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres "$@"
}

start() {
  local dir=$1 port=$2 bin
  [[ "$port" =~ ^[0-9]+$ ]] && ((port > 0 && port < 65536)) || { echo "postgres.sh: bad port $port" >&2; exit 2; }
  install_server
  bin=$(pg_bin)
  mkdir -p "$dir"
  dir=$(realpath "$dir")
  if [ "$(id -u)" = 0 ]; then
    chown postgres: "$dir"
    runuser -u postgres -- test -w "$dir" ||
      { echo "postgres.sh: the postgres user cannot reach $dir (a parent directory is private); pick a DIR it can reach, e.g. mktemp -d itself" >&2; exit 1; }
  fi
  echo "$port" >"$dir/port"
  if [ ! -s "$dir/data/PG_VERSION" ]; then
    rm -rf "$dir/data"
    as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 \
      >"$dir/initdb.log" 2>&1 ||
      { echo "postgres.sh: initdb failed, see $dir/initdb.log" >&2; exit 1; }
    # trust, but only over the socket in DIR and from 127.0.0.1 (the server listens nowhere else)
    printf 'local all all trust\nhost all all 127.0.0.1/32 trust\n' >"$dir/data/pg_hba.conf"
    chown --reference="$dir/data/PG_VERSION" "$dir/data/pg_hba.conf"
  fi
  if [ -z "$(running_pid "$dir")" ]; then
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 start \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=200" >/dev/null ||
      { echo "postgres.sh: the server did not start on port $port; $dir/postgres.log says:" >&2
        tail -n 20 "$dir/postgres.log" >&2 2>/dev/null || true; exit 1; }
  fi
  local deadline=$((SECONDS + 60))
  until "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" -t 2; do
    ((SECONDS < deadline)) || { echo "postgres.sh: no answer on port $port" >&2; exit 1; }
    sleep 0.1
  done
  createdb "$dir" asyncd
  echo "postgres://postgres@127.0.0.1:$port/asyncd"
}

stop() {
  local dir=$1 pid
  pid=$(running_pid "$dir")
  if [ -z "$pid" ]; then
    echo "postgres.sh: no server running in $dir" >&2
    return 0
  fi
  as_owner "$(pg_bin)/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >/dev/null 2>&1 ||
    kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + 30))
  while alive "$pid" && ((SECONDS < deadline)); do
    sleep 0.1
  done
  if alive "$pid"; then
    echo "postgres.sh: $pid did not stop in 30 s; killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
}

restart() {
  local dir=$1
  [ -s "$dir/port" ] || { echo "postgres.sh: no cluster in $dir (start it first)" >&2; exit 1; }
  stop "$dir"
  start "$dir" "$(cat "$dir/port")" >/dev/null
}

createdb() {
  local dir=$1 name=$2
  [[ "$name" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || { echo "postgres.sh: bad database name $name" >&2; exit 2; }
  if [ -z "$(psql_in "$dir" -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$name'")" ]; then
    psql_in "$dir" -d postgres -c "CREATE DATABASE $name" 2>/dev/null ||
      psql_in "$dir" -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$name'" | grep -q 1
  fi
}

case "${1:-}" in
start) (($# == 3)) || usage; start "$2" "$3" ;;
stop) (($# == 2)) || usage; stop "$2" ;;
restart) (($# == 2)) || usage; restart "$2" ;;
createdb) (($# == 3)) || usage; createdb "$2" "$3" && echo "postgres://postgres@127.0.0.1:$(cat "$2/port")/$3" ;;
*) usage ;;
esac
