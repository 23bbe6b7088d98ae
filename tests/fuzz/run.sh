#!/usr/bin/env bash
# Runs the libFuzzer targets built in $FUZZ_BUILD: `smoke S` replays every seed, regression and
# hostile input and fuzzes each target S seconds (fails on any crash, leak or UB); `long S` fuzzes
# each target S seconds in all, in rounds of $FUZZ_SLICE_S, logging to $FUZZ_LOGS.
set -euo pipefail
cd "$(dirname "$0")/../.."
mode=${1:-smoke}
secs=${2:-2}
build=${FUZZ_BUILD:-build-fuzz}
logs=${FUZZ_LOGS:-$build/logs}
slice=${FUZZ_SLICE_S:-300}
max_len=1048576 # FUZZ_MAX_INPUT in tests/fuzz/fuzz_util.h
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

targets=()
for b in "$build"/fuzz_*; do
  [[ -x $b && $b != *.d ]] && targets+=("$(basename "$b")")
done
if ((${#targets[@]} == 0)); then
  echo "fuzz: no targets in $build (make fuzz-build)" >&2
  exit 1
fi

# The big hostile inputs are generated, not committed (gen_corpus.mjs --hostile).
hostile=$build/hostile
if [[ ! -d $hostile || tests/fuzz/gen_corpus.mjs -nt $hostile ]]; then
  if command -v node >/dev/null; then
    rm -rf "$hostile"
    node tests/fuzz/gen_corpus.mjs --hostile "$hostile"
  else
    echo "fuzz: node not found, running without the generated hostile inputs" >&2
  fi
fi

# Corpus directories for target $1, read-only ones after the first (where new inputs go).
inputs() {
  for d in tests/fuzz/corpus/$1 tests/fuzz/regressions/$1 "$hostile/$1"; do
    [[ -d $d ]] && echo "$d"
  done
}

common=(-max_len=$max_len -rss_limit_mb=2048 -timeout=30 -print_final_stats=1)

smoke() {
  local failed=() t0 t tmp
  t0=$(date +%s)
  tmp=$(mktemp -d /tmp/asyncd-fuzz.XXXXXX)
  trap 'rm -rf "$tmp"' RETURN
  for t in "${targets[@]}"; do
    mkdir -p "$tmp/$t/new"
    local start=$SECONDS
    # shellcheck disable=SC2046
    if "$build/$t" "${common[@]}" -max_total_time="$secs" -artifact_prefix="$tmp/$t/" \
      "$tmp/$t/new" $(inputs "$t") >"$tmp/$t.log" 2>&1; then
      echo "fuzz-smoke: $t ok ($((SECONDS - start)) s, $(grep -o 'stat::number_of_executed_units: [0-9]*' "$tmp/$t.log" | grep -o '[0-9]*$') runs)"
    else
      echo "fuzz-smoke: $t FAILED; the end of its log:"
      grep -v '^#[0-9]' "$tmp/$t.log" | tail -40
      ls "$tmp/$t/" | grep -v '^new$' | sed 's/^/  artifact: /' || true
      failed+=("$t")
    fi
  done
  echo "fuzz-smoke: ${#targets[@]} targets in $(($(date +%s) - t0)) s"
  if ((${#failed[@]})); then
    echo "fuzz-smoke: failed: ${failed[*]}" >&2
    return 1
  fi
}

long() {
  mkdir -p "$logs"
  local rounds=$(((secs + slice - 1) / slice)) r t
  ((slice > secs)) && slice=$secs
  for ((r = 1; r <= rounds; r++)); do
    for t in "${targets[@]}"; do
      mkdir -p "$build/corpus/$t" "$build/crashes/$t"
      echo "=== round $r/$rounds: $t ${slice} s ($(date -u +%FT%TZ))" >>"$logs/$t.log"
      # -fork=1 keeps going after a crash (each one saved to crashes/); -jobs stays 1.
      # shellcheck disable=SC2046
      "$build/$t" "${common[@]}" -max_total_time="$slice" -fork=1 -ignore_crashes=1 \
        -ignore_ooms=1 -ignore_timeouts=1 -artifact_prefix="$build/crashes/$t/" \
        "$build/corpus/$t" $(inputs "$t") >>"$logs/$t.log" 2>&1 || true
    done
  done
  echo "fuzz: done; logs in $logs, crashes in $build/crashes"
}

case $mode in
smoke) smoke ;;
long) long ;;
*)
  echo "usage: $0 smoke|long SECONDS" >&2
  exit 2
  ;;
esac
