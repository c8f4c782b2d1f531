#!/bin/sh
# A real Buildbot (Debian 12's buildbot and buildbot-worker, 3.7) for storeplane's tests:
# one master and one worker under <dir>, everything on 127.0.0.1.
#
#   buildbot-env.sh start <dir> <http_port> <worker_port>
#       Creates <dir>/master and <dir>/worker (first time only), starts both as daemons,
#       and returns once the REST API answers and the worker is connected (at most
#       STOREPLANE_BUILDBOT_START_TIMEOUT seconds, default 45). Prints
#         BUILDBOT_URL=http://127.0.0.1:<http_port>/
#       on success; on failure prints why, with the end of both logs, and stops what it
#       started. Exit status 0 on success, 1 on failure, 2 on bad usage.
#   buildbot-env.sh stop <dir>
#       Stops the worker and the master (SIGTERM, then SIGKILL after 10 s), only the
#       processes whose pid files are in <dir>. Succeeds when nothing runs.
#
# Settings (environment, read by start):
#   STOREPLANE_BUILDBOT_SECRET_FILE     file with the callback HMAC secret; without it the
#                                       pipeline does not call back (polling only)
#   STOREPLANE_BUILDBOT_PIPELINE_SLEEP  seconds each build "works" (default 1)
#
# The master: builder "store", force scheduler "storeplane-force" (see master.cfg); each
# build runs pipeline.sh from this directory (see its header for the callback contract).
# REST API at <url>api/v2, JSON-RPC control by POST with Content-Type: application/json.
set -u

here=$(cd "$(dirname "$0")" && pwd)

usage() {
  echo "usage: $0 start <dir> <http_port> <worker_port> | stop <dir>" >&2
  exit 2
}

json_escape() { printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g'; }

# The pid of a live Buildbot daemon from <basedir>/twistd.pid, or nothing. A stale file
# (naming nobody, or someone else) is removed: the master runs as
# "python3 -c ...twistd.run()...", the worker as "buildbot-worker start ...".
daemon_pid() {
  pidfile=$1/twistd.pid
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile" 2>/dev/null)
  case $pid in '' | *[!0-9]*) rm -f "$pidfile"; return 0 ;; esac
  if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -Eq 'twistd|buildbot'; then
    echo "$pid"
  else
    rm -f "$pidfile"
  fi
}

# SIGTERM to the worker and the master together (each shuts down cleanly in 1-2 s), then
# SIGKILL to whichever still runs after 10 s.
do_stop() {
  pids=
  for daemon in "$1/worker" "$1/master"; do
    pid=$(daemon_pid "$daemon")
    [ -n "$pid" ] || continue
    kill -TERM "$pid" 2>/dev/null
    pids="$pids $pid"
  done
  i=0
  while [ $i -lt 200 ]; do
    alive=
    for pid in $pids; do kill -0 "$pid" 2>/dev/null && alive="$alive $pid"; done
    [ -n "$alive" ] || break
    sleep 0.05
    i=$((i + 1))
  done
  for pid in $alive; do
    echo "buildbot-env: process $pid did not stop within 10 s; killing it" >&2
    kill -KILL "$pid" 2>/dev/null
  done
  rm -f "$1/worker/twistd.pid" "$1/master/twistd.pid"
}

fail_start() {
  echo "buildbot-env: $*" >&2
  for log in "$dir/master/twistd.log" "$dir/worker/twistd.log"; do
    if [ -f "$log" ]; then
      echo "--- last lines of $log" >&2
      tail -n 40 "$log" >&2
    fi
  done
  do_stop "$dir"
  exit 1
}

do_start() {
  dir=$1 http_port=$2 worker_port=$3
  for tool in buildbot buildbot-worker curl; do
    command -v "$tool" >/dev/null 2>&1 || { echo "buildbot-env: $tool is not installed (scripts/install-deps.sh)" >&2; exit 1; }
  done
  case $http_port$worker_port in *[!0-9]*) usage ;; esac
  mkdir -p "$dir" || exit 1
  dir=$(cd "$dir" && pwd)
  url="http://127.0.0.1:$http_port/"
  do_stop "$dir"  # leftovers of an earlier start

  if [ ! -f "$dir/master/buildbot.tac" ]; then
    buildbot create-master -q "$dir/master" >"$dir/create-master.log" 2>&1 ||
      fail_start "buildbot create-master failed: $(cat "$dir/create-master.log")"
  fi
  cp "$here/master.cfg" "$dir/master/master.cfg"
  # The empty "base" www plugin Debian's package lacks (see www_stub), outside the repo so
  # that Python's caches never land in the source tree.
  rm -rf "$dir/pylib"
  cp -R "$here/www_stub" "$dir/pylib"

  password=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
  cat >"$dir/master/storeplane-settings.json" <<EOF
{
  "http_port": $http_port,
  "worker_port": $worker_port,
  "worker_name": "store-worker",
  "worker_password": "$password",
  "pipeline": "$(json_escape "$here/pipeline.sh")",
  "pipeline_sleep": "$(json_escape "${STOREPLANE_BUILDBOT_PIPELINE_SLEEP:-1}")",
  "callback_secret_file": "$(json_escape "${STOREPLANE_BUILDBOT_SECRET_FILE:-}")",
  "site_root": "$(json_escape "${STOREPLANE_BUILDBOT_SITE_ROOT:-}")"
}
EOF
  # The worker's identity matches the master's settings on every start (new password).
  rm -rf "$dir/worker"
  buildbot-worker create-worker -q --umask=0o22 "$dir/worker" "127.0.0.1:$worker_port" store-worker "$password" \
    >"$dir/create-worker.log" 2>&1 || fail_start "buildbot-worker create-worker failed: $(cat "$dir/create-worker.log")"

  export PYTHONPATH="$dir/pylib${PYTHONPATH:+:$PYTHONPATH}"
  export PYTHONDONTWRITEBYTECODE=1
  # Without --quiet, start follows the master's log until it runs (or fails to).
  buildbot start --start_timeout=40 "$dir/master" </dev/null >"$dir/start-master.log" 2>&1 ||
    fail_start "the master did not start: $(cat "$dir/start-master.log")"
  buildbot-worker start "$dir/worker" </dev/null >"$dir/start-worker.log" 2>&1 ||
    fail_start "the worker did not start: $(cat "$dir/start-worker.log")"

  # Ready when the API lists the worker as connected to a master.
  deadline=$(($(date +%s) + ${STOREPLANE_BUILDBOT_START_TIMEOUT:-45}))
  while :; do
    workers=$(curl -sS --max-time 2 "${url}api/v2/workers?name=store-worker" 2>/dev/null | tr -d ' \n\t') ||
      workers=
    case $workers in *'"connected_to":[{'*) break ;; esac
    [ "$(date +%s)" -lt "$deadline" ] || fail_start "the worker did not connect in time; last answer: $workers"
    sleep 0.1
  done
  echo "BUILDBOT_URL=$url"
}

[ $# -ge 1 ] || usage
case $1 in
  start) [ $# -eq 4 ] || usage; do_start "$2" "$3" "$4" ;;
  stop) [ $# -eq 2 ] || usage; do_stop "$2" ;;
  *) usage ;;
esac
