#!/usr/bin/env bash
# Runs every test against one throw-away MariaDB and PostgreSQL: unit, fuzz smoke and integration
# (SQLite, then PostgreSQL store) on the normal build, then the same but the fuzz smoke on an
# ASan+UBSan build.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d /tmp/asyncd-test.XXXXXX)
chmod 755 "$tmp" # the postgres OS user runs the cluster inside it
cleanup() {
  bash scripts/mariadb.sh stop "$tmp/mariadb" >/dev/null 2>&1 || true
  bash scripts/postgres.sh stop "$tmp/pg" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
free_port() {
  node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}
mkdir -p "$tmp/mariadb"
mport=$(free_port)
ASYNCD_TEST_MYSQL_DSN=$(bash scripts/mariadb.sh start "$tmp/mariadb" "$mport")
export ASYNCD_TEST_MYSQL_DSN ASYNCD_TEST_MYSQL_PORT=$mport
pport=$(free_port)
ASYNCD_TEST_PG_URL=$(bash scripts/postgres.sh start "$tmp/pg" "$pport")
export ASYNCD_TEST_PG_URL ASYNCD_TEST_PG_DIR=$tmp/pg
echo "test: MariaDB on 127.0.0.1:$mport, PostgreSQL on 127.0.0.1:$pport (in $tmp)"

make --no-print-directory format-check # every C file in the committed .clang-format style

run_suite() { # $@: make variables selecting the build
  make --no-print-directory "$@" test-unit
  if (($# == 0)); then # once, on the normal build: every fuzz target on its corpus and a few s
    echo "test: fuzz smoke (tests/fuzz)"
    make --no-print-directory fuzz-smoke
  fi
  # The harness gives every daemon its own PostgreSQL database when ASYNCD_TEST_PG_URL is set.
  echo "test: integration suite on the embedded SQLite store"
  env -u ASYNCD_TEST_PG_URL -u ASYNCD_TEST_PG_DIR make --no-print-directory "$@" test-it
  echo "test: integration suite on the PostgreSQL store"
  make --no-print-directory "$@" test-it
}
run_suite
run_suite BUILD=build-asan BIN=build-asan/bin SANITIZER=address,undefined
echo "test: all passed"
