#!/usr/bin/env bash
# libFuzzer targets of storeplane (fuzz/, clang, ASan + UBSan). See docs/FUZZING.md.
#
# Usage:
#   scripts/fuzz.sh ci                          build, then for every target: replay its corpus and
#                                               fuzz ${FUZZ_SECONDS:-5} s into a scratch copy
#   scripts/fuzz.sh long [MINUTES] [TARGET...]  give each target (default: all) at least MINUTES
#                                               (default 10) CPU-minutes of fuzzing, under nice -n 10,
#                                               ${FUZZ_JOBS:-1} target(s) at a time; new inputs are
#                                               merged (-merge=1, new edges only) into
#                                               fuzz/corpus/<target>/
#   scripts/fuzz.sh run TARGET [libFuzzer args] build, then run one target on its corpus, e.g.
#                                               scripts/fuzz.sh run fuzz_policy -max_total_time=60
#   scripts/fuzz.sh status                      progress of the latest long run of each target
#   scripts/fuzz.sh minimize [TARGET...]        shrink fuzz/corpus/<target>/ (keeps what git tracks)
#   scripts/fuzz.sh build                       configure and build build/fuzz only
#
# Exit status: non-zero when a build fails or any target crashes, leaks or times out; the
# target and the reproducer ("artifact") are printed. Reproduce one with
#   build/fuzz/fuzz/<target> <artifact>
# Environment: FUZZ_SECONDS (ci), FUZZ_JOBS and FUZZ_CHUNK_SECONDS (long, default 1 and 300),
# FUZZ_NO_BUILD=1 (ci, long: use the binaries already built),
# FUZZ_TIMEOUT (s per input, default 10),
# STOREPLANE_JOBS (build parallelism, default nproc).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
build="$root/build/fuzz"
corpus_root="$root/fuzz/corpus"
targets_all=(fuzz_api_routes fuzz_label_selector fuzz_policy fuzz_agent_wire fuzz_callback_signature
  fuzz_server_config fuzz_agent_config)
timeout_s="${FUZZ_TIMEOUT:-10}"

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:allocator_may_return_null=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

configure_and_build() {
  command -v clang++ >/dev/null || { echo "fuzz.sh: clang++ is missing (scripts/install-deps.sh)" >&2; exit 2; }
  # No precompiled headers: clang 14 fails on http_server.cc's PCH under these flags
  # ("Cannot represent a difference across sections").
  CC=clang CXX=clang++ cmake -S . -B "$build" -G Ninja \
    -DSTOREPLANE_FUZZ=ON -DSTOREPLANE_BUILD_TESTS=OFF -DSTOREPLANE_WERROR=OFF \
    -DSTOREPLANE_SANITIZE=address,undefined -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS=-fsanitize=fuzzer-no-link -DCMAKE_DISABLE_PRECOMPILE_HEADERS=ON >/dev/null
  cmake --build "$build" --target fuzz_all -j "${STOREPLANE_JOBS:-$(nproc)}"
}

bin_of() { echo "$build/fuzz/$1"; }

# Per-target libFuzzer options. fuzz_api_routes keeps state across inputs (its database and
# caches grow), so libFuzzer's per-input leak check would stop the world with ptrace after
# almost every input (50x slower); leaks are still reported by LeakSanitizer at exit.
args_of() {
  case "$1" in
    fuzz_api_routes) echo "-detect_leaks=0" ;;
    *) echo "" ;;
  esac
}

# Prints "<target>: FAILED ..." and the artifact named in a libFuzzer log.
report_failure() {
  local target="$1" what="$2" log="$3"
  local artifact
  artifact="$(grep -oE '(Test unit|artifact) written to [^ ]+' "$log" | tail -1 | awk '{print $NF}' || true)"
  echo "FAIL $target ($what): artifact: ${artifact:-none}; log: $log" >&2
  grep -E 'ERROR: |SUMMARY: |runtime error|deadly signal|timeout' "$log" | head -5 >&2 || true
}

# Parses libFuzzer's final stats.
stat_of() { grep -oE "stat::$2: *[0-9]+" "$1" | tail -1 | grep -oE '[0-9]+$' || echo 0; }

# bash `times` prints the children's user and system time: "0m1.250s 0m0.040s".
to_seconds() { awk -v t="$1" 'BEGIN { split(t, a, /[ms]/); printf "%.2f", a[1] * 60 + a[2] }'; }

ci() {
  local seconds="${FUZZ_SECONDS:-5}" failed=0
  [ -n "${FUZZ_NO_BUILD:-}" ] || configure_and_build
  scratch="$(mktemp -d "${TMPDIR:-/tmp}/storeplane-fuzz-ci.XXXXXX")"
  trap 'rm -rf "$scratch"' EXIT
  for target in "${targets_all[@]}"; do
    local bin corpus work log start
    bin="$(bin_of "$target")"
    corpus="$corpus_root/$target"
    work="$scratch/$target"
    mkdir -p "$work/corpus" "$work/artifacts"
    cp -r "$corpus/." "$work/corpus/"
    log="$work/replay.log"
    start=$SECONDS
    # shellcheck disable=SC2046
    if ! "$bin" $(args_of "$target") -runs=0 -timeout="$timeout_s" -artifact_prefix="$work/artifacts/" "$corpus" >"$log" 2>&1; then
      report_failure "$target" "corpus replay" "$log"
      failed=1
      keep_log "$target" "$log" "$work"
      continue
    fi
    log="$work/fuzz.log"
    # shellcheck disable=SC2046
    if ! "$bin" $(args_of "$target") -max_total_time="$seconds" -timeout="$timeout_s" -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$work/artifacts/" "$work/corpus" >"$log" 2>&1; then
      report_failure "$target" "fuzzing" "$log"
      failed=1
      keep_log "$target" "$log" "$work"
      continue
    fi
    printf 'ok   %-24s %3d inputs replayed, %8d executions in %d s\n' "$target" "$(find "$corpus" -type f | wc -l)" \
      "$(stat_of "$log" number_of_executed_units)" $((SECONDS - start))
  done
  return $failed
}

# Failed CI runs keep their log and artifacts under build/fuzz/failures/ (the scratch dir goes).
keep_log() {
  local target="$1" log="$2" work="$3" dest="$build/failures/$1"
  mkdir -p "$dest"
  cp "$log" "$dest/" || true
  cp -r "$work/artifacts/." "$dest/" 2>/dev/null || true
  echo "     kept in $dest" >&2
}

# One target's long run: chunks of fuzzing until its CPU time reaches the goal, each chunk's
# new inputs merged into the committed corpus. Writes a result line to $results.
long_target() {
  local target="$1" goal_s="$2" results="$3"
  local bin corpus work cpu=0 execs=0 crashes=0 chunk=0 started
  bin="$(bin_of "$target")"
  corpus="$corpus_root/$target"
  work="$build/long/$target"
  rm -rf "$work"
  mkdir -p "$work/artifacts"
  started=$SECONDS
  while awk -v c="$cpu" -v g="$goal_s" 'BEGIN { exit !(c < g) }'; do
    chunk=$((chunk + 1))
    local remaining new log t
    # Chunks of at most FUZZ_CHUNK_SECONDS (wall), so that progress is recorded and merged
    # as it goes (see `status`).
    remaining="$(awk -v c="$cpu" -v g="$goal_s" -v m="${FUZZ_CHUNK_SECONDS:-300}" \
      'BEGIN { r = int(g - c + 1); if (r > m) r = m; print (r < 30 ? 30 : r) }')"
    new="$work/new.$chunk"
    log="$work/chunk.$chunk.log"
    mkdir -p "$new"
    # A subshell whose only child is the fuzzer: `times` then gives the fuzzer's CPU time.
    t="$(
      set +e
      # shellcheck disable=SC2046
      nice -n 10 "$bin" $(args_of "$target") -max_total_time="$remaining" -timeout="$timeout_s" -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$work/artifacts/" "$new" "$corpus" >"$log" 2>&1
      echo "rc=$?"
      times # not in a pipeline: it must run in the shell that waited for the fuzzer
    )"
    local rc user sys
    rc="$(echo "$t" | sed -n 's/^rc=//p')"
    user="$(echo "$t" | tail -1 | awk '{print $1}')"
    sys="$(echo "$t" | tail -1 | awk '{print $2}')"
    cpu="$(awk -v c="$cpu" -v u="$(to_seconds "$user")" -v s="$(to_seconds "$sys")" 'BEGIN { printf "%.2f", c + u + s }')"
    execs=$((execs + $(stat_of "$log" number_of_executed_units)))
    if [ "$rc" != 0 ]; then
      crashes=$((crashes + 1))
      report_failure "$target" "long run, chunk $chunk" "$log"
    fi
    if [ -n "$(ls -A "$new")" ]; then
      # shellcheck disable=SC2046
      nice -n 10 "$bin" $(args_of "$target") -merge=1 -use_counters=0 -timeout="$timeout_s" -rss_limit_mb=2048 "$corpus" "$new" >"$work/merge.$chunk.log" 2>&1 ||
        echo "merge failed for $target: $work/merge.$chunk.log" >&2
    fi
    rm -rf "$new"
    printf '%s\t%s\t%s\t%d\t%s\t%d\t%d\t%d\n' "$(date -u +%F)" "$(hostname)" "$target" $(((SECONDS - started + 30) / 60)) \
      "$cpu" "$execs" "$crashes" "$(find "$corpus" -type f | wc -l)" >"$work/progress"
    [ "$rc" = 0 ] || break
  done
  printf '%s\t%s\t%s\t%d\t%s\t%d\t%d\t%d\n' "$(date -u +%F)" "$(hostname)" "$target" $(((SECONDS - started + 30) / 60)) \
    "$cpu" "$execs" "$crashes" "$(find "$corpus" -type f | wc -l)" >>"$results"
}

long() {
  local minutes=10
  if [ $# -gt 0 ] && [[ "$1" =~ ^[0-9]+$ ]]; then
    minutes="$1"
    shift
  fi
  local targets=("$@")
  [ ${#targets[@]} -gt 0 ] || targets=("${targets_all[@]}")
  [ -n "${FUZZ_NO_BUILD:-}" ] || configure_and_build
  local results="$build/long-results.$$.tsv" jobs="${FUZZ_JOBS:-1}" running=0
  : >"$results"
  for target in "${targets[@]}"; do
    [ -x "$(bin_of "$target")" ] || { echo "fuzz.sh: unknown target $target" >&2; exit 2; }
    long_target "$target" $((minutes * 60)) "$results" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then
      wait -n || true
      running=$((running - 1))
    fi
  done
  wait || true
  echo
  printf '%-10s %-14s %-24s %8s %9s %12s %7s %7s\n' date machine target wall-min cpu-min executions crashes corpus
  local failed=0
  while IFS=$'\t' read -r date host target wall cpu execs crashes size; do
    printf '%-10s %-14s %-24s %8s %9.1f %12s %7s %7s\n' "$date" "$host" "$target" "$wall" \
      "$(awk -v c="$cpu" 'BEGIN { print c / 60 }')" "$execs" "$crashes" "$size"
    [ "$crashes" = 0 ] || failed=1
  done <"$results"
  cat "$results" >>"$build/long-results.tsv"
  rm -f "$results"
  return $failed
}

# Shrinks each corpus: keeps the files git tracks (hand-written seeds, crash inputs, earlier
# merges) and adds the fewest other files that reach the same edges (-use_counters=0: hit
# counts do not count as new coverage, which keeps the corpus to a few hundred files).
minimize() {
  local targets=("$@")
  [ ${#targets[@]} -gt 0 ] || targets=("${targets_all[@]}")
  for target in "${targets[@]}"; do
    local corpus="$corpus_root/$target" keep before
    keep="$(mktemp -d "${TMPDIR:-/tmp}/storeplane-fuzz-min.XXXXXX")"
    git ls-files -z -- "fuzz/corpus/$target" | xargs -0 -r cp -t "$keep"
    before="$(find "$corpus" -type f | wc -l)"
    # shellcheck disable=SC2046
    nice -n 10 "$(bin_of "$target")" $(args_of "$target") -merge=1 -use_counters=0 -timeout="$timeout_s" \
      -rss_limit_mb=2048 "$keep" "$corpus" >"$keep.log" 2>&1 || { echo "minimize failed for $target: $keep.log" >&2; continue; }
    find "$corpus" -type f -delete
    cp "$keep"/* "$corpus/"
    rm -rf "$keep" "$keep.log"
    echo "$target: $before -> $(find "$corpus" -type f | wc -l) files"
  done
}

# The progress of the latest long run of each target (also while it runs).
status() {
  printf '%-10s %-14s %-24s %8s %9s %12s %7s %7s\n' date machine target wall-min cpu-min executions crashes corpus
  local f
  for f in "$build"/long/*/progress; do
    [ -f "$f" ] || continue
    while IFS=$'\t' read -r date host target wall cpu execs crashes size; do
      printf '%-10s %-14s %-24s %8s %9.1f %12s %7s %7s\n' "$date" "$host" "$target" "$wall" \
        "$(awk -v c="$cpu" 'BEGIN { print c / 60 }')" "$execs" "$crashes" "$size"
    done <"$f"
  done
}

run_one() {
  local target="${1:?usage: scripts/fuzz.sh run TARGET [libFuzzer args]}"
  shift
  configure_and_build
  mkdir -p "$build/artifacts/$target"
  # shellcheck disable=SC2046
  exec "$(bin_of "$target")" $(args_of "$target") -timeout="$timeout_s" -artifact_prefix="$build/artifacts/$target/" "$@" \
    "$corpus_root/$target"
}

case "${1:-}" in
  ci) ci ;;
  long) shift; long "$@" ;;
  run) shift; run_one "$@" ;;
  build) configure_and_build ;;
  status) status ;;
  minimize) shift; minimize "$@" ;;
  *) sed -n '2,24p' "$0" >&2; exit 2 ;;
esac
