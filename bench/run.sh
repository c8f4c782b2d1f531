#!/usr/bin/env bash
# The benchmark harness, one command (issue 6, first slice: heartbeat throughput).
#
#   bench/run.sh [AGENTS] [SECONDS]            e.g. bench/run.sh 1000 10
#
# Builds storeplaned and the bench targets in a Release build directory (build/bench;
# BENCH_BUILD_DIR and BENCH_BUILD_TYPE override), then on loopback:
#   1. starts storeplaned --dev with rate limits raised out of the way (config below),
#      registers AGENTS stores, enrolls one agent per store with its own one-time token,
#      and runs the closed-loop heartbeat swarm for SECONDS;
#   2. starts bench_hello_server (bare Beast, same flags) and runs the same swarm shape
#      against it (no enrollment; the same heartbeat body POSTed to "/");
# and prints a table with each figure beside the target of the brief (section 9), writing
# bench/results/latest.json. BENCH_THREADS (default 1) sets the swarm's I/O threads.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
AGENTS=${1:-1000}
DURATION=${2:-10}
BUILD=${BENCH_BUILD_DIR:-$ROOT/build/bench}
TYPE=${BENCH_BUILD_TYPE:-Release}
THREADS=${BENCH_THREADS:-1}
RESULTS=$ROOT/bench/results

# Build.
if [[ ! -f $BUILD/CMakeCache.txt ]]; then
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE="$TYPE" -DSTOREPLANE_BUILD_TESTS=OFF >/dev/null
fi
cmake --build "$BUILD" --target storeplaned bench_hello_server bench_agent_swarm

# Both ends of every connection live in this session: two descriptors per agent, plus slack.
NEED=$((2 * AGENTS + 1024))
if (( $(ulimit -Sn) < NEED )); then
  HARD=$(ulimit -Hn)
  if [[ $HARD != unlimited ]] && (( HARD < NEED )); then
    echo "bench: $AGENTS agents need about $NEED open files; the hard limit is $HARD" >&2
    exit 1
  fi
  ulimit -n "$NEED"
fi

WORK=$(mktemp -d)
SERVER_PID=""
stop_server() {
  if [[ -n $SERVER_PID ]]; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
  fi
}
cleanup() { stop_server; rm -rf "$WORK"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_for FILE PREFIX: prints the value of the first "PREFIX=value" line written to FILE.
wait_for() {
  for _ in $(seq 1 300); do
    if grep -q "^$2=" "$1" 2>/dev/null; then
      grep "^$2=" "$1" | head -1 | cut -d= -f2-
      return 0
    fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then break; fi
    sleep 0.1
  done
  echo "bench: the server did not print $2; its stderr:" >&2
  cat "$WORK"/*.err >&2 || true
  return 1
}

# 1. storeplane: the per-agent (20 rps) and per-principal buckets would throttle a closed
# loop, so they are raised; logging at warn keeps it off the hot path.
cat >"$WORK/storeplane.yaml" <<YAML
listen: 127.0.0.1:0
log_level: warn
agents: {rps: 100000, burst: 100000}
limits: {principal_rps: 1000000, principal_burst: 1000000, max_in_flight: 100000}
YAML
"$BUILD/storeplaned" --dev --config "$WORK/storeplane.yaml" >"$WORK/storeplane.out" 2>"$WORK/storeplane.err" &
SERVER_PID=$!
URL=$(wait_for "$WORK/storeplane.out" STOREPLANE_ADDR)
TOKEN=$(wait_for "$WORK/storeplane.out" STOREPLANE_TOKEN)
echo "bench: storeplaned at $URL; $AGENTS agents for $DURATION s" >&2
"$BUILD/bench/bench_agent_swarm" --url "$URL" --token "$TOKEN" --target storeplane --agents "$AGENTS" \
  --seconds "$DURATION" --threads "$THREADS" --json "$WORK/storeplane.json" >/dev/null
STOREPLANE_RSS_KB=$(awk '/VmRSS/ {print $2}' "/proc/$SERVER_PID/status")
stop_server

# 2. The ceiling: bare Beast hello, same flags, same swarm shape.
"$BUILD/bench/bench_hello_server" >"$WORK/hello.out" 2>"$WORK/hello.err" &
SERVER_PID=$!
HELLO=$(wait_for "$WORK/hello.out" BENCH_ADDR)
echo "bench: bench_hello_server at $HELLO" >&2
"$BUILD/bench/bench_agent_swarm" --url "http://$HELLO" --target hello --agents "$AGENTS" \
  --seconds "$DURATION" --threads "$THREADS" --json "$WORK/hello.json" >/dev/null
stop_server

# Table and JSON.
mkdir -p "$RESULTS"
python3 - "$WORK/storeplane.json" "$WORK/hello.json" "$RESULTS/latest.json" "$TYPE" "$STOREPLANE_RSS_KB" <<'PY'
import json, os, platform, subprocess, sys, datetime
sp, hello = (json.load(open(p)) for p in sys.argv[1:3])
out, build_type, rss_kb = sys.argv[3], sys.argv[4], int(sys.argv[5] or 0)
ratio = sp["requests_per_s"] / hello["requests_per_s"] if hello["requests_per_s"] else 0.0
def cpu():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()
try:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=os.path.dirname(out)).stdout.strip()
except OSError:
    commit = ""
print()
print(f"{'scenario':<34}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'errors':>8}  vs hello  target")
for name, r, tgt in (("heartbeat (storeplane)", sp, f"{ratio:6.1%}  >=60% of hello, p99<20 ms"),
                     ("hello (bare Beast)", hello, "  100%  ceiling")):
    errors = r["requests_rejected"] + r["io_errors"] + r["setup_errors"]
    print(f"{name + ' x' + str(r['agents_ready']):<34}{r['requests_per_s']:>10.0f}{r['p50_ms']:>9.2f}"
          f"{r['p99_ms']:>9.2f}{r['max_ms']:>9.2f}{errors:>8}  {tgt}")
met_ratio, met_p99 = ratio >= 0.60, sp["p99_ms"] < 20.0
print(f"\nratio target (>=60%): {'met' if met_ratio else 'MISSED'}; "
      f"p99 target (<20 ms): {'met' if met_p99 else 'MISSED'}; storeplaned RSS {rss_kb / 1024:.0f} MiB")
json.dump({
    "when": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    "commit": commit, "build_type": build_type,
    "machine": {"cpu": cpu(), "cores": os.cpu_count(), "kernel": platform.release()},
    "scenarios": {"heartbeat": sp, "hello": hello},
    "heartbeat_to_hello_ratio": ratio,
    "storeplaned_rss_kb": rss_kb,
    "targets": {"ratio_min": 0.60, "ratio_met": met_ratio, "p99_ms_max": 20.0, "p99_met": met_p99},
}, open(out, "w"), indent=2)
print(f"results: {out}")
PY
