#!/usr/bin/env bash
# Quick start: installs what is missing, builds, and runs storeplaned on embedded SQLite
# under ./.data with the bootstrap admin token in ./.data/admin.token and a demo store
# registered through the CLI. Runs in the foreground; Ctrl-C stops it cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
STOREPLANE_BUILD_TESTS=OFF scripts/build.sh -DSTOREPLANE_BUILD_TESTS=OFF

data_dir="${STOREPLANE_DATA_DIR:-$PWD/.data}"
listen="${STOREPLANE_LISTEN:-127.0.0.1:8750}"
mkdir -p "$data_dir"
./build/storeplaned --data-dir "$data_dir" --listen "$listen" \
  --admin-token-file "$data_dir/admin.token" >"$data_dir/stdout" 2>"$data_dir/storeplaned.log" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null' INT TERM

for _ in $(seq 1 100); do
  grep -q '^STOREPLANE_ADDR=' "$data_dir/stdout" 2>/dev/null && break
  kill -0 $pid 2>/dev/null || { echo "storeplaned failed to start:" >&2; tail -5 "$data_dir/storeplaned.log" >&2; exit 1; }
  sleep 0.1
done
export STOREPLANE_ADDR="$(sed -n 's/^STOREPLANE_ADDR=//p' "$data_dir/stdout")"
export STOREPLANE_TOKEN_FILE="$data_dir/admin.token"
./build/storeplane stores get demo >/dev/null 2>&1 ||
  ./build/storeplane stores register demo --name "Demo store" --environment development \
    --isolation-mode shared --label demo=true >/dev/null

cat <<MSG
storeplaned is running (pid $pid), logs in $data_dir/storeplaned.log
  URL:         $STOREPLANE_ADDR
  admin token: $(cat "$data_dir/admin.token")
Try it in another shell:
  export STOREPLANE_ADDR=$STOREPLANE_ADDR STOREPLANE_TOKEN_FILE=$data_dir/admin.token
  ./build/storeplane stores list
MSG
./build/storeplane stores list
wait $pid
