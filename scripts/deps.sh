#!/usr/bin/env bash
# Installs the Debian packages and npm test dependencies asyncd needs; safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
pkgs=(build-essential pkg-config libmicrohttpd-dev libjansson-dev libsqlite3-dev libssl-dev uuid-dev
      libcurl4-openssl-dev libcmocka-dev libmariadb-dev libpq-dev sqlite3 tzdata jq nodejs npm curl
      ca-certificates clang libclang-rt-14-dev clang-format # clang: the libFuzzer targets (tests/fuzz)
      chromium fonts-liberation # the web console's browser test (tests/it/ui-console.test.mjs, with playwright-core)
      python3 man-db groff-base) # tests/it/packaging.test.mjs: its sd_notify receiver, man -l of both pages
# mariadb-server is installed by scripts/mariadb.sh, which keeps it from starting a system service.
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
# node/npm may come from outside Debian's packages (the base image ships its own); accept those.
if command -v node >/dev/null && command -v npm >/dev/null; then
  missing=("${missing[@]/nodejs}"); missing=("${missing[@]/npm}")
fi
read -r -a missing <<<"${missing[*]}"
if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  [ "$(id -u)" = 0 ] && SUDO= || SUDO=sudo
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
if [ -f tests/it/package-lock.json ] && { [ ! -d tests/it/node_modules/tencentcloud-sdk-nodejs ] ||
  [ ! -d tests/it/node_modules/playwright-core ]; }; then
  echo "deps: npm ci in tests/it"
  (cd tests/it && npm ci --no-audit --no-fund --loglevel=error)
fi
