#!/usr/bin/env bash
# Quick start: installs what is missing, builds, and leaves storeplaned running in the
# background on embedded SQLite under ./.data, with the bootstrap admin token in
# ./.data/admin.token and a demo store registered through the CLI. Running it again
# restarts the server on the same data. Stop it with: kill "$(cat .data/storeplaned.pid)"
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh -DSTOREPLANE_BUILD_TESTS=OFF

data_dir="${STOREPLANE_DATA_DIR:-$PWD/.data}"
listen="${STOREPLANE_LISTEN:-127.0.0.1:8750}"
mkdir -p "$data_dir"
pid_file="$data_dir/storeplaned.pid"
if [ -f "$pid_file" ] && kill -0 "$(cat "$pid_file")" 2>/dev/null; then
  echo "stopping the storeplaned already running (pid $(cat "$pid_file"))" >&2
  kill -TERM "$(cat "$pid_file")"
  for _ in $(seq 1 100); do kill -0 "$(cat "$pid_file")" 2>/dev/null || break; sleep 0.1; done
fi

rm -f "$data_dir/stdout"
setsid nohup ./build/storeplaned --data-dir "$data_dir" --listen "$listen" \
  --admin-token-file "$data_dir/admin.token" >"$data_dir/stdout" 2>>"$data_dir/storeplaned.log" </dev/null &
pid=$!
echo "$pid" >"$pid_file"

for _ in $(seq 1 100); do
  grep -q '^STOREPLANE_ADDR=' "$data_dir/stdout" 2>/dev/null && break
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "storeplaned failed to start; the end of its log:" >&2
    tail -5 "$data_dir/storeplaned.log" >&2
    exit 1
  fi
  sleep 0.1
done
addr="$(sed -n 's/^STOREPLANE_ADDR=//p' "$data_dir/stdout")"
[ -n "$addr" ] || { echo "storeplaned did not report its address" >&2; exit 1; }
export STOREPLANE_ADDR="$addr" STOREPLANE_TOKEN_FILE="$data_dir/admin.token"
./build/storeplane stores get demo >/dev/null 2>&1 ||
  ./build/storeplane stores register demo --name "Demo store" --environment development \
    --isolation-mode shared --label demo=true >/dev/null

cat <<MSG
storeplaned is running in the background (pid $pid); its log is $data_dir/storeplaned.log
  URL:         $addr
  admin token: $(cat "$data_dir/admin.token")
Use the CLI:
  export STOREPLANE_ADDR=$addr STOREPLANE_TOKEN_FILE=$data_dir/admin.token
  ./build/storeplane stores list
Stop it:
  kill \$(cat $pid_file)

MSG
./build/storeplane stores list
