#!/usr/bin/env bash
# Installs what is missing, builds everything, checks formatting and lint, and runs every
# test with ctest. This is the README's test command and what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
export STOREPLANE_REQUIRE_BUILDBOT=1  # the Buildbot tests fail instead of skipping without it
scripts/install-deps.sh
scripts/build.sh -DSTOREPLANE_BUILD_TESTS=ON
scripts/check-format.sh
cd build
ctest --output-on-failure -j "${STOREPLANE_TEST_JOBS:-2}" --timeout 900
