#!/usr/bin/env bash
# Runs the integration suite (real asyncd, official Tencent Cloud SDK from npm); exit code = node's.
# Binaries: ASYNCD_BIN / ASYNCCTL_BIN, absolute or relative to the repo root (default bin/...).
# Arguments, if any, name the test files to run instead of all *.test.mjs.
set -u
cd "$(dirname "$0")" || exit 2
# The SDK sends through http_proxy when set; the suite must only ever talk to 127.0.0.1.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
export NO_PROXY='*' no_proxy='*'
if [ ! -d node_modules/tencentcloud-sdk-nodejs ]; then
    npm ci --no-audit --no-fund || exit 2
fi
# Daemon logs (one file per start) of runs older than an hour go.
find .logs -type f -mmin +60 -delete 2>/dev/null
if [ "$#" -gt 0 ]; then files=("$@"); else files=(*.test.mjs); fi
node --test --test-concurrency=1 --test-reporter=spec "${files[@]}"
