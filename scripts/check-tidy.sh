#!/usr/bin/env bash
# Runs clang-tidy (.clang-tidy's checks) over every C++ source under src/, using the
# compile_commands.json of the build directory given as $1 (default: build).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$root/build}"
cd "$root"
mapfile -t files < <(git ls-files 'src/*.cc' 2>/dev/null || find src -name '*.cc')
# g++'s precompiled-header flags mean nothing to clang: drop them from a private copy.
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
sed -E 's/-include [^ ]*cmake_pch[^ ]*\.hxx//g; s/-Winvalid-pch//g' "$build/compile_commands.json" >"$tmp/compile_commands.json"
printf '%s\n' "${files[@]}" | xargs -P "${STOREPLANE_JOBS:-2}" -n 4 clang-tidy -p "$tmp" --quiet --extra-arg=-Wno-unknown-warning-option 2>/dev/null
echo "clang-tidy: ${#files[@]} files clean"
