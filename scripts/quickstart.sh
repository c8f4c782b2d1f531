#!/usr/bin/env bash
# Quick start: installs what is missing, builds, and leaves storeplaned running in the
# background on embedded SQLite under ./.data, with the bootstrap admin token in
# ./.data/admin.token, a demo store registered through the CLI, and a demo shop-agent for
# it (enrolled once, against a stand-in Magento directory under ./.data/demo-agent).
# Running it again restarts both on the same data. Stop them with:
#   kill "$(cat .data/shop-agent.pid)" "$(cat .data/storeplaned.pid)"
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh -DSTOREPLANE_BUILD_TESTS=OFF

data_dir="${STOREPLANE_DATA_DIR:-$PWD/.data}"
listen="${STOREPLANE_LISTEN:-127.0.0.1:8750}"
mkdir -p "$data_dir"
pid_file="$data_dir/storeplaned.pid"
agent_pid_file="$data_dir/shop-agent.pid"
stop_running() {
  local file="$1" name="$2"
  if [ -f "$file" ] && kill -0 "$(cat "$file")" 2>/dev/null; then
    echo "stopping the $name already running (pid $(cat "$file"))" >&2
    kill -TERM "$(cat "$file")"
    for _ in $(seq 1 100); do kill -0 "$(cat "$file")" 2>/dev/null || break; sleep 0.1; done
  fi
}
stop_running "$agent_pid_file" shop-agent
stop_running "$pid_file" storeplaned

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

# The demo agent: a stand-in Magento directory (the one the tests use), enrolled once with a
# one-time token; later runs reuse its credential.
agent_dir="$data_dir/demo-agent"
if [ ! -s "$agent_dir/credential" ]; then
  rm -rf "$agent_dir"
  mkdir -p "$agent_dir/state"
  cp -a tests/support/fake_magento "$agent_dir/magento"
  mkdir -p "$agent_dir/magento/var"
  enrollment_token="$(./build/storeplane agents enroll-token demo 2>/dev/null)"
else
  enrollment_token=""
fi
touch "$agent_dir/magento/var/.storeplane-cron"
cat >"$agent_dir/agent.yaml" <<YAML
control_plane_url: $addr
store_id: demo
credential_file: $agent_dir/credential
state_dir: $agent_dir/state
magento_root: $agent_dir/magento
php_binary: $agent_dir/magento/php
isolation_mode: shared
allowed_operations: [health.probe, maintenance.enable, maintenance.disable, cache.flush, indexer.status, db.status, release.report]
checks:
  cron_max_age_s: 86400
YAML
SHOP_AGENT_ENROLLMENT_TOKEN="$enrollment_token" setsid nohup ./build/shop-agent --config "$agent_dir/agent.yaml" \
  >/dev/null 2>>"$data_dir/shop-agent.log" </dev/null &
agent_pid=$!
echo "$agent_pid" >"$agent_pid_file"
for _ in $(seq 1 100); do
  ./build/storeplane stores health demo 2>/dev/null | grep -q online && break
  if ! kill -0 "$agent_pid" 2>/dev/null; then
    echo "shop-agent failed to start; the end of its log:" >&2
    tail -5 "$data_dir/shop-agent.log" >&2
    exit 1
  fi
  sleep 0.1
done

cat <<MSG
storeplaned is running in the background (pid $pid); its log is $data_dir/storeplaned.log
A demo shop-agent serves the demo store (pid $agent_pid); its log is $data_dir/shop-agent.log
  URL:         $addr
  web UI:      $addr/ui/ (log in with the admin token)
  admin token: $(cat "$data_dir/admin.token")
Use the CLI:
  export STOREPLANE_ADDR=$addr STOREPLANE_TOKEN_FILE=$data_dir/admin.token
  ./build/storeplane stores health
  ./build/storeplane stores health demo
  ./build/storeplane ops run demo cache.flush --wait
Stop them:
  kill \$(cat $agent_pid_file) \$(cat $pid_file)

MSG
./build/storeplane stores health
