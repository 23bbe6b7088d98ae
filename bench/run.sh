#!/usr/bin/env bash
# Benchmarks DescribeAsyncRequestInfo (TC3-signed POST, keep-alive) on asyncd against nginx serving a same-size static body.
# Usage: bash bench/run.sh   (env: BENCH_SECONDS=10, BENCH_CONNECTIONS=32, BENCH_THREADS, ASYNCD_BIN=bin/asyncd)
set -euo pipefail
# Only loopback traffic here: never through a proxy from the environment.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
cd "$(dirname "$0")/.."
. bench/lib.sh # say, die, PIDS stopped on exit, bench_tmp, free_port

SECONDS_EACH=${BENCH_SECONDS:-10}
CONNS=${BENCH_CONNECTIONS:-32}
ASYNCD_BIN=${ASYNCD_BIN:-bin/asyncd}
# wrk shares the machine with the server under test: one load thread per 4 cores, at least one.
THREADS=${BENCH_THREADS:-$(( $(nproc) / 4 > 0 ? $(nproc) / 4 : 1 ))}

need_tools() {
  local missing=()
  command -v wrk >/dev/null || missing+=(wrk)
  command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
  for t in curl openssl; do command -v "$t" >/dev/null || missing+=("$t"); done
  if ((${#missing[@]})); then
    say "installing ${missing[*]}"
    [ "$(id -u)" = 0 ] && SUDO= || SUDO=sudo
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
  NGINX=$(command -v nginx || echo /usr/sbin/nginx)
  [ -x "$ASYNCD_BIN" ] || die "$ASYNCD_BIN not built (run make all)"
}

bench_tmp /tmp/asyncd-bench.XXXXXX

# Starts asyncd on port 0 and reads the real ports from its "listening" line.
start_asyncd() {
  "$ASYNCD_BIN" --listen 127.0.0.1:0 --admin 127.0.0.1:0 --data "$TMP/data" \
    --rate-limit '*=0' >"$TMP/asyncd.log" 2>&1 &
  PIDS+=($!)
  ASYNCD_PID=$!
  local i line
  for i in $(seq 1 100); do
    line=$(grep -m1 -o 'listening cloudapi=[^ ]* admin=[^ ]*' "$TMP/asyncd.log" || true)
    [ -n "$line" ] && break
    kill -0 "$ASYNCD_PID" 2>/dev/null || { cat "$TMP/asyncd.log" >&2; die "asyncd exited"; }
    sleep 0.1
  done
  [ -n "$line" ] || { cat "$TMP/asyncd.log" >&2; die "asyncd did not log its listening line"; }
  CLOUDAPI=${line#listening cloudapi=}; CLOUDAPI=${CLOUDAPI%% *}
  ADMIN=${line##* admin=}
  say "asyncd pid $ASYNCD_PID cloudapi=$CLOUDAPI admin=$ADMIN"
}

cred() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$TMP/data/credentials.json" "$1"; }

# A task through the admin API, to have an id to describe.
create_task() {
  local token uin body
  token=$(cred AdminToken); uin=$(cred Uin)
  body=$(printf '{"product":"cdb","region":"ap-guangzhou","uin":"%s","type":"Bench","steps":[{"name":"noop","do":{"exec":["/bin/true"]}}]}' "$uin")
  TASK_ID=$(curl -sS -f -X POST -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    --data "$body" "http://$ADMIN/v1/tasks" | python3 -c 'import json,sys; print(json.load(sys.stdin)["AsyncRequestId"])')
  say "task $TASK_ID"
  # Let it finish so every answer (and so the size nginx copies) stays the same.
  local i state
  for i in $(seq 1 30); do
    state=$(curl -sS -H "Authorization: Bearer $token" "http://$ADMIN/v1/tasks/$TASK_ID" |
      python3 -c 'import json,sys; print(json.load(sys.stdin).get("state"))')
    case $state in success|failed|undoed|paused|killed) break ;; esac
    sleep 0.1
  done
  say "task state $state"
}

hmac_hex() { openssl dgst -sha256 -mac HMAC -macopt "hexkey:$1" -hex | sed 's/^.*= //'; }

# Signs one DescribeAsyncRequestInfo request with TC3-HMAC-SHA256 (valid 300 s); sets BODY, AUTH, TS.
sign_request() {
  local sid skey host date creq sts k
  sid=$(cred SecretId); skey=$(cred SecretKey)
  host=${CLOUDAPI%:*}
  TS=$(date +%s); date=$(date -u -d "@$TS" +%F)
  BODY=$(printf '{"AsyncRequestId":"%s"}' "$TASK_ID")
  creq=$(printf 'POST\n/\n\ncontent-type:application/json\nhost:%s\n\ncontent-type;host\n%s' \
    "$host" "$(printf '%s' "$BODY" | sha256sum | cut -d' ' -f1)")
  sts=$(printf 'TC3-HMAC-SHA256\n%s\n%s/cdb/tc3_request\n%s' "$TS" "$date" \
    "$(printf '%s' "$creq" | sha256sum | cut -d' ' -f1)")
  k=$(printf '%s' "$date" | openssl dgst -sha256 -mac HMAC -macopt "key:TC3$skey" -hex | sed 's/^.*= //')
  k=$(printf 'cdb' | hmac_hex "$k")
  k=$(printf 'tc3_request' | hmac_hex "$k")
  AUTH="TC3-HMAC-SHA256 Credential=$sid/$date/cdb/tc3_request, SignedHeaders=content-type;host, Signature=$(printf '%s' "$sts" | hmac_hex "$k")"
}

# The wrk script replays one request and prints one parseable line at the end.
write_lua() { # FILE [with-tc3-headers]
  {
    printf 'wrk.method = "POST"\nwrk.body = [==[%s]==]\n' "$BODY"
    printf 'wrk.headers["Content-Type"] = "application/json"\n'
    if [ -n "${2:-}" ]; then
      printf 'wrk.headers["X-TC-Action"] = "DescribeAsyncRequestInfo"\n'
      printf 'wrk.headers["X-TC-Version"] = "2017-03-20"\nwrk.headers["X-TC-Region"] = "ap-guangzhou"\n'
      printf 'wrk.headers["X-TC-Timestamp"] = "%s"\nwrk.headers["Authorization"] = "%s"\n' "$TS" "$AUTH"
    fi
    cat <<'EOF'
done = function(s, lat, req)
  io.write(string.format("RESULT %.1f %.3f %.3f %d %d %d\n", s.requests / (s.duration / 1e6),
    lat:percentile(50) / 1000, lat:percentile(99) / 1000, s.requests,
    s.errors.connect + s.errors.read + s.errors.write + s.errors.timeout, s.errors.status))
end
EOF
  } >"$1"
}

# Checks with curl that the signed request succeeds; sets RESP (the body).
check_signed() {
  RESP=$(curl -sS --fail -X POST "http://$CLOUDAPI/" -H 'Content-Type: application/json' \
    -H 'X-TC-Action: DescribeAsyncRequestInfo' -H 'X-TC-Version: 2017-03-20' \
    -H 'X-TC-Region: ap-guangzhou' -H "X-TC-Timestamp: $TS" -H "Authorization: $AUTH" --data "$BODY")
  case $RESP in
    *'"Error"'*|'') die "signed request failed: $RESP" ;;
    *'"Status"'*) ;;
    *) die "unexpected answer: $RESP" ;;
  esac
}

# nginx on a loopback port answering the same bytes asyncd answered, to any method.
start_nginx() {
  local port body
  port=$(free_port)
  mkdir -p "$TMP/nginx/logs"
  body=$(printf '%s' "$RESP" | sed -e 's/\\/\\\\/g' -e "s/'/\\\\'/g" -e 's/\$/_/g')
  # As many nginx workers as asyncd has HTTP threads (its default: the core count, at least 2),
  # so neither server gets more parallelism than the other.
  local WORKERS=$(( $(nproc) > 2 ? $(nproc) : 2 ))
  cat >"$TMP/nginx/nginx.conf" <<EOF
daemon off;
worker_processes $WORKERS;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/logs/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $TMP/nginx/body;
  proxy_temp_path $TMP/nginx/proxy;
  fastcgi_temp_path $TMP/nginx/fastcgi;
  uwsgi_temp_path $TMP/nginx/uwsgi;
  scgi_temp_path $TMP/nginx/scgi;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$port;
    location / { default_type application/json; return 200 '$body'; }
  }
}
EOF
  "$NGINX" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -e "$TMP/nginx/logs/error.log" &
  PIDS+=($!)
  NGINX_PID=$!
  NGINX_URL="http://127.0.0.1:$port/"
  local i
  for i in $(seq 1 50); do
    curl -s -o /dev/null "$NGINX_URL" && break
    kill -0 "$NGINX_PID" 2>/dev/null || die "nginx exited: $(cat "$TMP/nginx/logs/error.log")"
    sleep 0.1
  done
  say "nginx pid $NGINX_PID at $NGINX_URL"
}

# Runs wrk and appends "name conns rps p50 p99 requests errors non2xx" to $TMP/results.
run_wrk() { # NAME CONNS LUA URL
  local threads=$THREADS out
  (( threads > $2 )) && threads=$2
  out=$(wrk -t"$threads" -c"$2" -d"${SECONDS_EACH}s" --timeout 10s -s "$3" "$4" | grep '^RESULT ') ||
    die "wrk failed against $4"
  echo "$1 $2 ${out#RESULT }" >>"$TMP/results"
}

bench_asyncd() { # CONNS
  sign_request # fresh signature for each run: a TC3 signature is valid 300 s
  write_lua "$TMP/asyncd.lua" tc3
  check_signed
  run_wrk asyncd "$1" "$TMP/asyncd.lua" "http://$CLOUDAPI/"
}

report() {
  local asize nsize
  asize=$(printf '%s' "$RESP" | wc -c)
  nsize=$(curl -s -X POST --data "$BODY" "$NGINX_URL" | wc -c)
  echo
  echo "DescribeAsyncRequestInfo, TC3-signed POST, keep-alive, ${SECONDS_EACH} s each, wrk -t$THREADS, $(nproc) CPUs"
  echo "response body: asyncd $asize bytes, nginx $nsize bytes"
  awk '
    { rps[$1" "$2] = $3; p99[$1" "$2] = $5; line[NR] = $0 }
    END {
      printf "%-8s %5s %12s %9s %9s %10s %7s %7s\n", "server", "conns", "requests/s", "p50 ms", "p99 ms", "requests", "errors", "non2xx"
      for (i = 1; i <= NR; i++) { split(line[i], f, " ")
        printf "%-8s %5s %12.0f %9.3f %9.3f %10s %7s %7s\n", f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8] }
      for (k in rps) { split(k, f, " ")
        if (f[1] == "asyncd" && ("nginx " f[2]) in rps)
          printf "ratio asyncd/nginx at %s connections: %.3f requests/s, %.2f p99 latency (goal: >= 1, <= 1)\n", f[2], rps[k] / rps["nginx " f[2]], p99[k] / p99["nginx " f[2]] }
    }' "$TMP/results"
}

main() {
  need_tools
  start_asyncd
  create_task
  sign_request
  check_signed
  say "signed request ok: $RESP"
  start_nginx
  # The same request bytes (TC3 headers included) to both servers, so wrk spends the same on each.
  write_lua "$TMP/nginx.lua" tc3
  : >"$TMP/results"
  bench_asyncd "$CONNS"
  run_wrk nginx "$CONNS" "$TMP/nginx.lua" "$NGINX_URL"
  bench_asyncd 1
  run_wrk nginx 1 "$TMP/nginx.lua" "$NGINX_URL"
  report
  echo "asyncd's own count of the answers (GET /metrics):"
  curl -sS "http://$ADMIN/metrics" | grep -E '^asyncd_(cloudapi_)?requests_total' || true
}

main "$@"
