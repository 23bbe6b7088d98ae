#!/usr/bin/env bash
# Runs every test against one throw-away MariaDB: unit + integration on the normal build, then on ASan+UBSan.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d /tmp/asyncd-test.XXXXXX)
cleanup() {
  bash scripts/mariadb.sh stop "$tmp/mariadb" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
mkdir -p "$tmp/mariadb"
ASYNCD_TEST_MYSQL_DSN=$(bash scripts/mariadb.sh start "$tmp/mariadb" "$port")
export ASYNCD_TEST_MYSQL_DSN ASYNCD_TEST_MYSQL_PORT=$port
echo "test: MariaDB on 127.0.0.1:$port (data in $tmp/mariadb)"
make --no-print-directory test-unit test-it
make --no-print-directory BUILD=build-asan BIN=build-asan/bin SANITIZER=address,undefined test-unit test-it
echo "test: all passed"
