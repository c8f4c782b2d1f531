#!/usr/bin/env bash
# Configures and builds storeplane into build/ (Ninja, ccache when present).
# Usage: scripts/build.sh [extra cmake -D options...]
set -euo pipefail
cd "$(dirname "$0")/.."
build_type="${STOREPLANE_BUILD_TYPE:-RelWithDebInfo}"
jobs="${STOREPLANE_JOBS:-$(nproc)}"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE="$build_type" "$@" >/dev/null
cmake --build build -j "$jobs"
