#!/usr/bin/env bash
# Starts (`start DIR PORT`, printing its admin DSN) or stops (`stop DIR`) a throw-away MariaDB; idempotent.
set -euo pipefail

usage() {
  echo "usage: $0 start DIR PORT | stop DIR" >&2
  exit 2
}

# Installs the server and client from Debian when missing, without starting a system service.
install_server() {
  command -v mariadbd >/dev/null && command -v mariadb-install-db >/dev/null &&
    command -v mariadb >/dev/null && command -v mariadb-admin >/dev/null && return 0
  [ "$(id -u)" = 0 ] || { echo "mariadb.sh: mariadb-server is missing; run as root to install it" >&2; exit 1; }
  local policy=/usr/sbin/policy-rc.d made_policy=
  if [ ! -e "$policy" ]; then
    # invoke-rc.d then refuses to start services (exit 101): no system mysqld on 3306
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 0755 "$policy" && made_policy=1
  fi
  echo "mariadb.sh: installing mariadb-server mariadb-client" >&2
  export DEBIAN_FRONTEND=noninteractive
  local rc=0
  { apt-get -o DPkg::Lock::Timeout=300 update -qq &&
    apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends \
      mariadb-server mariadb-client; } >&2 || rc=$?
  [ -n "$made_policy" ] && rm -f "$policy"
  return "$rc"
}

# The pid in DIR/mariadb.pid when that process is a live mariadbd, else nothing.
running_pid() {
  local pidfile=$1/mariadb.pid pid
  [ -s "$pidfile" ] || return 0
  pid=$(tr -dc 0-9 <"$pidfile")
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 0
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "mariadbd\|mysqld" && echo "$pid"
  return 0
}

# Whether pid is a live process (a zombie nobody reaped yet counts as gone).
alive() {
  local state
  state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

# Runs SQL as root over the socket: with the password once it is set, without it before.
root_sql() {
  local dir=$1 sql=$2
  shift 2
  if [ -s "$dir/client.cnf" ] &&
     mariadb --defaults-file="$dir/client.cnf" -e 'SELECT 1' >/dev/null 2>&1; then
    mariadb --defaults-file="$dir/client.cnf" "$@" -e "$sql"
  else
    mariadb --no-defaults --protocol=socket --socket="$dir/mysql.sock" -uroot "$@" -e "$sql"
  fi
}

start() {
  local dir=$1 port=$2
  [[ "$port" =~ ^[0-9]+$ ]] && ((port > 0 && port < 65536)) || { echo "mariadb.sh: bad port $port" >&2; exit 2; }
  install_server
  mkdir -p "$dir"
  dir=$(realpath "$dir")
  (umask 077; [ -s "$dir/password" ] || head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$dir/password")
  local pw pid
  pw=$(cat "$dir/password")
  if [ ! -d "$dir/data/mysql" ]; then
    rm -rf "$dir/data"
    mariadb-install-db --no-defaults --datadir="$dir/data" --user=root \
      --auth-root-authentication-method=normal --skip-test-db >"$dir/install.log" 2>&1 ||
      { echo "mariadb.sh: mariadb-install-db failed, see $dir/install.log" >&2; exit 1; }
  fi
  pid=$(running_pid "$dir")
  if [ -n "$pid" ] && [ "$(cat "$dir/port" 2>/dev/null)" != "$port" ]; then
    echo "mariadb.sh: a server already runs in $dir on port $(cat "$dir/port" 2>/dev/null); stop it first" >&2
    exit 1
  fi
  if [ -z "$pid" ]; then
    rm -f "$dir/mariadb.pid"
    echo "$port" >"$dir/port"
    nohup mariadbd --no-defaults --datadir="$dir/data" --socket="$dir/mysql.sock" --port="$port" \
      --bind-address=127.0.0.1 --skip-networking=0 --pid-file="$dir/mariadb.pid" --user=root \
      --log-error="$dir/error.log" </dev/null >/dev/null 2>&1 &
    pid=$!
  fi
  # ping answers 0 once the server runs, even when it denies us access
  local deadline=$((SECONDS + 60))
  until mariadb-admin --no-defaults --protocol=socket --socket="$dir/mysql.sock" -uroot \
      --connect-timeout=2 ping >/dev/null 2>&1; do
    if ! alive "$pid" || ((SECONDS >= deadline)); then
      echo "mariadb.sh: the server did not come up on port $port; $dir/error.log says:" >&2
      tail -n 20 "$dir/error.log" >&2 2>/dev/null || true
      exit 1
    fi
    sleep 0.2
  done
  local sql="" host
  # written first: root_sql falls back to no password until the password is set
  (umask 077; printf '[client]\nuser=root\npassword=%s\nprotocol=socket\nsocket=%s\n' "$pw" \
     "$dir/mysql.sock" >"$dir/client.cnf")
  # every root account gets the password (the install also makes root@::1 and root@HOSTNAME)
  for host in $(root_sql "$dir" "SELECT Host FROM mysql.user WHERE User = 'root'" -N); do
    sql+="ALTER USER 'root'@'$host' IDENTIFIED BY '$pw';"
  done
  sql+="CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '$pw';"
  sql+="ALTER USER 'root'@'127.0.0.1' IDENTIFIED BY '$pw';"
  sql+="GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;"
  for host in '%' '127.0.0.1' 'localhost'; do
    sql+="CREATE USER IF NOT EXISTS 'asyncd_admin'@'$host' IDENTIFIED BY '$pw';"
    sql+="ALTER USER 'asyncd_admin'@'$host' IDENTIFIED BY '$pw';"
    sql+="GRANT ALL PRIVILEGES ON *.* TO 'asyncd_admin'@'$host' WITH GRANT OPTION;"
  done
  root_sql "$dir" "$sql"
  echo "mysql://asyncd_admin:$pw@127.0.0.1:$port"
}

stop() {
  local dir=$1 pid
  pid=$(running_pid "$dir")
  if [ -z "$pid" ]; then
    echo "mariadb.sh: no server running in $dir" >&2
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + 30))
  while alive "$pid" && ((SECONDS < deadline)); do
    sleep 0.1
  done
  if alive "$pid"; then
    echo "mariadb.sh: $pid did not stop in 30 s; killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$dir/mariadb.pid"
}

case "${1:-}" in
start) (($# == 3)) || usage; start "$2" "$3" ;;
stop) (($# == 2)) || usage; stop "$2" ;;
*) usage ;;
esac
