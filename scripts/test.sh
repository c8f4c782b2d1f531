#!/usr/bin/env bash
# The README's test command and what CI runs. Installs what is missing, then:
#   1. builds everything, checks formatting, runs every test with ctest (incl. clang-tidy,
#      the OpenAPI lint, the real-Buildbot tests, the web UI in Chromium and the short
#      crash-point run);
#   2. builds the suite again with AddressSanitizer and UndefinedBehaviorSanitizer and
#      runs it (scripts/sanitize.sh);
#   3. builds the libFuzzer targets with clang, replays every seed corpus and fuzzes each
#      target for a few seconds (scripts/fuzz.sh ci).
# STOREPLANE_TEST_PHASES (default "main asan fuzz") runs a subset, e.g. "main".
set -euo pipefail
cd "$(dirname "$0")/.."
export STOREPLANE_REQUIRE_BUILDBOT=1  # the Buildbot tests fail instead of skipping without it
export STOREPLANE_REQUIRE_PACKAGE=1   # the .deb test (needs root) fails instead of skipping without it
export STOREPLANE_REQUIRE_PROMETHEUS=1  # so do the promtool and Prometheus tests without prometheus
export STOREPLANE_REQUIRE_BROWSER=1   # so do the web UI's browser tests without Chromium
export STOREPLANE_REQUIRE_POSTGRES=1  # so do the PostgreSQL tests without the postgresql server binaries
phases=" ${STOREPLANE_TEST_PHASES:-main asan fuzz} "
scripts/install-deps.sh
# One throwaway PostgreSQL for the whole run; each test creates its own database on it.
pg_dir=$(mktemp -d /tmp/storeplane-test-pg-XXXXXX)
trap 'scripts/test-postgres.sh stop "$pg_dir"' EXIT
STOREPLANE_TEST_POSTGRES=$(scripts/test-postgres.sh start "$pg_dir")
export STOREPLANE_TEST_POSTGRES
if [[ $phases == *" main "* ]]; then
  scripts/build.sh -DSTOREPLANE_BUILD_TESTS=ON
  scripts/check-format.sh
  (cd build && ctest --output-on-failure -j "${STOREPLANE_TEST_JOBS:-2}" --timeout 900)
fi
if [[ $phases == *" asan "* ]]; then
  scripts/sanitize.sh address
fi
if [[ $phases == *" fuzz "* ]]; then
  scripts/fuzz.sh ci
fi
echo "test.sh: all phases passed:${phases% }"
