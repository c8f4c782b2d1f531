#!/usr/bin/env bash
# Builds the whole suite with sanitizers into its own build directory and runs it with ctest.
# Part of the README's test command (scripts/test.sh); also usable alone.
#
#   scripts/sanitize.sh                 ASan + UBSan (build/asan), every test but the linters
#   scripts/sanitize.sh thread          TSan (build/tsan), the concurrency tests (see below)
#
# Any sanitizer report fails the test that produced it (-fno-sanitize-recover=all, and
# ASan/UBSan/TSan abort on the first error).
set -euo pipefail
cd "$(dirname "$0")/.."
kind="${1:-address}"
jobs="${STOREPLANE_JOBS:-$(nproc)}"
case "$kind" in
  address)
    dir=build/asan
    sanitize=address,undefined
    # The linters and the docs checks compile nothing of ours, and the package test
    # packages the plain build: the plain build ran them. The integration suite's second
    # registration on PostgreSQL (postgres/...) runs the same server code paths as the
    # PostgreSQL storage, replica and failover tests, which do run here.
    exclude='^(lint\.|docs\.|package\.|postgres/)'
    include=''
    ;;
  thread)
    dir=build/tsan
    sanitize=thread
    exclude='^(lint\.|docs\.|package\.)'
    # Where threads meet: the write queue and repository, the agent hub, the HTTP server,
    # the run coordinator, the shop agent's loops.
    include='WriteQueue|Sqlite|AgentHub|HttpServer|RunCoordinator|AgentLoop|CommandRunner'
    ;;
  *)
    echo "sanitize.sh: unknown sanitizer '$kind' (address or thread)" >&2
    exit 2
    ;;
esac
cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSTOREPLANE_BUILD_TESTS=ON \
  -DSTOREPLANE_SANITIZE="$sanitize" >/dev/null
cmake --build "$dir" -j "$jobs"
export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1"
args=(--output-on-failure -j "${STOREPLANE_TEST_JOBS:-2}" --timeout 900 -E "$exclude")
if [[ -n $include ]]; then
  args+=(-R "$include")
fi
cd "$dir"
ctest "${args[@]}"
