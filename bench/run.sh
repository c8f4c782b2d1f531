#!/usr/bin/env bash
# The benchmark harness, one command (issue 6): every scenario of brief section 9.
#
#   bench/run.sh [--quick] [SCENARIO...]
#
# SCENARIO (default: all, in this order):
#   heartbeat  heartbeat throughput and latency at 10,000 connections: closed loop against
#              storeplaned (long-polls held open) and against bench_hello_server (ratio), and
#              open loop at 10,000 agents' real 10 s interval and at a higher fixed rate
#   mutations  durable audited mutations/s, group commit against one transaction each
#   replicas   the same heartbeat open loops and mutation closed loop against three
#              storeplaned replicas on one PostgreSQL (durable: fsync and synchronous_commit
#              on; its data under BENCH_DATA_DIR), the swarm processes spread over the
#              replicas, agents enrolled through the API; then one replica alone on
#              PostgreSQL (BENCH_PG_SINGLE=0: not). Also PostgreSQL's write transactions,
#              commits, WAL fsyncs and rows written per second and the CPU of the replicas
#              and of PostgreSQL over each measured window
#   receipt    operator request -> agent receipt latency with 10,000 agents long-polling
#   lost       lost-agent detection time, in heartbeat intervals (1 s interval)
#   restart    bench_populate 100,000 stores + 1,000,000 audit records, then exec ->
#              first answer of GET /v1/stores?limit=1 (twice)
#   reads      GET one store and a filtered page of 100 out of 100,000
#   scale      100,000 enrolled agents at a 10 s interval: storeplaned CPU and memory
#   etcd       etcd (Debian's etcd-server) lease keep-alives and puts through its JSON
#              gateway, same swarm and connection count; ratio to storeplane's heartbeats
#   rollout    bench_rollout: a 10,000-store fleet rollout (canary 1, growth factor 2,
#              max_concurrent 500) through the real orchestrator and SQLite repository with
#              an instant-success provider, in one process: plan and orchestrate times, RSS
# --quick runs every size at about a tenth (1,000 connections, 10,000 stores) for checking
# the harness; its figures are not the targets' figures.
#
# Builds storeplaned and the bench targets in a Release build directory (build/bench;
# BENCH_BUILD_DIR, BENCH_BUILD_TYPE override), runs on loopback, stops every process it
# started (trap), prints a table with each figure beside its target and writes
# bench/results/latest.json (BENCH_RESULTS overrides). BENCH_DATA_DIR: where the database
# files of the disk-bound scenarios live (default: a temp dir under /var/tmp, i.e. disk).
# SCALE_RAMP: seconds over which the 100,000 agents of `scale` join (default 90; 0: all at
# once, the cold start of a whole fleet).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BENCH_BUILD_DIR:-$ROOT/build/bench}
TYPE=${BENCH_BUILD_TYPE:-Release}
RESULTS=${BENCH_RESULTS:-$ROOT/bench/results/latest.json}
ALL=(heartbeat mutations replicas receipt lost restart reads scale etcd rollout)

QUICK=0
SCENARIOS=()
for arg in "$@"; do
  case $arg in
    --quick) QUICK=1 ;;
    -h | --help)
      sed -n '2,38p' "$0"
      exit 0
      ;;
    all) SCENARIOS+=("${ALL[@]}") ;;
    *)
      if [[ " ${ALL[*]} " != *" $arg "* ]]; then
        echo "bench: unknown scenario '$arg' (one of: ${ALL[*]})" >&2
        exit 2
      fi
      SCENARIOS+=("$arg")
      ;;
  esac
done
((${#SCENARIOS[@]})) || SCENARIOS=("${ALL[@]}")
want() { [[ " ${SCENARIOS[*]} " == *" $1 "* ]]; }

# Sizes: full (the brief's) and quick.
if ((QUICK)); then
  HB_AGENTS=1000 HB_LONG_POLLS=500 HB_PROCS=1 HB_SECONDS=5 HB_WARM=2 HB_OPEN_WARM=3 HB_RATES="100 2000"
  MUT_CLIENTS=32 MUT_SECONDS=3
  RC_AGENTS=1000 RC_OPS_RATE=100 RC_SECONDS=5
  LOST_AGENTS=200 LOST_LOST=20
  BIG_STORES=10000 BIG_AUDIT=100000
  READ_REQUESTS=500
  SCALE_PROCS=2 SCALE_CONNS=2000 SCALE_RAMP=${SCALE_RAMP:-10} SCALE_WARM=15 SCALE_SECONDS=10
  ETCD_AGENTS=1000 ETCD_PROCS=1 ETCD_SECONDS=5
  ROLLOUT_STORES=1000
else
  HB_AGENTS=10000 HB_LONG_POLLS=8000 HB_PROCS=3 HB_SECONDS=20 HB_WARM=5 HB_OPEN_WARM=10 HB_RATES="1000 5000"
  MUT_CLIENTS=64 MUT_SECONDS=10
  RC_AGENTS=10000 RC_OPS_RATE=200 RC_SECONDS=20
  LOST_AGENTS=1000 LOST_LOST=100
  BIG_STORES=100000 BIG_AUDIT=1000000
  READ_REQUESTS=3000
  SCALE_PROCS=4 SCALE_CONNS=16000 SCALE_RAMP=${SCALE_RAMP:-90} SCALE_WARM=105 SCALE_SECONDS=30
  ETCD_AGENTS=10000 ETCD_PROCS=3 ETCD_SECONDS=20
  ROLLOUT_STORES=10000
fi

# Build.
if [[ ! -f $BUILD/CMakeCache.txt ]]; then
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE="$TYPE" -DSTOREPLANE_BUILD_TESTS=OFF >/dev/null
fi
nice -n 10 cmake --build "$BUILD" -j2 --target storeplaned bench_hello_server bench_agent_swarm bench_populate \
  bench_rollout
SWARM=$BUILD/bench/bench_agent_swarm
POPULATE=$BUILD/bench/bench_populate

# Descriptors are per process: the server gets the hard limit (20,000 here), each swarm
# process holds at most ~9,000 connections.
HARD=$(ulimit -Hn)
if [[ $HARD == unlimited ]] || ((HARD > 1048576)); then HARD=1048576; fi
ulimit -n "$HARD"

WORK=$(mktemp -d "${BENCH_DATA_DIR:-/var/tmp}/storeplane-bench.XXXXXX")
OUT=$WORK/out
mkdir -p "$OUT"
PIDS=()      # every background process this script started
SERVER_PID=""
PG_DIR=""    # the throwaway PostgreSQL of the replicas scenario
stop_pid() {
  local pid=$1
  if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
}
stop_server() {
  stop_pid "$SERVER_PID"
  SERVER_PID=""
}
cleanup() {
  for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
  if [[ -n $PG_DIR ]]; then "$ROOT/scripts/test-postgres.sh" stop "$PG_DIR" || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "bench: $*" >&2; }

# wait_for FILE PREFIX: prints the value of the first "PREFIX=value" line written to FILE.
wait_for() {
  for _ in $(seq 1 600); do
    if grep -q "^$2=" "$1" 2>/dev/null; then
      grep "^$2=" "$1" | head -1 | cut -d= -f2-
      return 0
    fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then break; fi
    sleep 0.1
  done
  echo "bench: the server did not print $2; its stderr:" >&2
  tail -20 "${1%.out}.err" >&2 || true
  return 1
}

# start_storeplaned NAME CONFIG [VAR=value...]: starts storeplaned, sets SERVER_PID and URL.
start_storeplaned() {
  local name=$1 config=$2
  shift 2
  env "$@" "$BUILD/storeplaned" --config "$config" >"$OUT/$name.out" 2>"$OUT/$name.err" &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  URL=$(wait_for "$OUT/$name.out" STOREPLANE_ADDR)
}

# A storeplaned configuration: rate limits out of the way of closed loops, warn logging.
# write_config FILE DATA_DIR|"" [EXTRA YAML LINES]
write_config() {
  local file=$1 dir=$2
  shift 2
  {
    echo "listen: ${LISTEN:-127.0.0.1:0}"
    echo "log_level: warn"
    if [[ -n $dir ]]; then
      echo "data_dir: $dir"
      echo "admin_token_file: ${ADMIN_TOKEN_FILE:-$dir/admin.token}"
    fi
    echo "agents: {rps: 100000, burst: 100000, heartbeat_interval_s: ${INTERVAL:-10}}"
    echo "limits: {principal_rps: 1000000, principal_burst: 1000000, max_in_flight: 100000}"
    for line in "$@"; do echo "$line"; done
  } >"$file"
}

# run_swarm NAME PROCS AGENTS [args...]: AGENTS split over PROCS processes (--first,
# --agents), with SW_CONNS, SW_LONG_POLLS and SW_RATE (totals) split the same way; the
# processes start their windows together (ready/go files). JSON: $OUT/NAME.<i>.json.
# SW_URLS (space-separated): process i gets --url <the (i mod n)-th URL>.
run_swarm() {
  local name=$1 procs=$2 agents=$3
  shift 3
  local pids=() first=0 i urls=()
  read -r -a urls <<<"${SW_URLS:-}"
  rm -f "$OUT/$name".*
  for ((i = 0; i < procs; i++)); do
    local n=$((agents / procs + (i < agents % procs ? 1 : 0)))
    local extra=()
    [[ -n ${SW_CONNS:-} ]] && extra+=(--conns $((SW_CONNS / procs + (i < SW_CONNS % procs ? 1 : 0))))
    [[ -n ${SW_LONG_POLLS:-} ]] && extra+=(--long-polls $((SW_LONG_POLLS / procs + (i < SW_LONG_POLLS % procs ? 1 : 0))))
    [[ -n ${SW_RATE:-} ]] && extra+=(--rate "$(python3 -c "print($SW_RATE * $n / $agents)")")
    ((${#urls[@]})) && extra+=(--url "${urls[$((i % ${#urls[@]}))]}")
    "$SWARM" --first "$first" --agents "$n" "${extra[@]}" --ready-file "$OUT/$name.$i.ready" \
      --go-file "$OUT/$name.go" --json "$OUT/$name.$i.json" "$@" 2>"$OUT/$name.$i.err" &
    pids+=($!)
    PIDS+=($!)
    first=$((first + n))
  done
  # Barrier: every process ready (or gone), then go.
  for ((i = 0; i < procs; i++)); do
    while [[ ! -f $OUT/$name.$i.ready ]] && kill -0 "${pids[$i]}" 2>/dev/null; do sleep 0.1; done
  done
  touch "$OUT/$name.go"
  local rc=0
  for pid in "${pids[@]}"; do wait "$pid" || rc=1; done
  cat "$OUT/$name".*.err >&2 || true
  if ((rc)); then log "swarm $name: a process failed"; fi
  return 0
}

# cpu_ticks PID: utime + stime of the process, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
mem_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }

# Facts for the report.
{
  echo "quick=$QUICK"
  echo "scenarios=${SCENARIOS[*]}"
  echo "load_before=$(cut -d' ' -f1-3 /proc/loadavg)"
} >"$OUT/facts"
fact() { echo "$1=$2" >>"$OUT/facts"; }

# ---- 1. heartbeat -------------------------------------------------------------------------
if want heartbeat; then
  log "heartbeat: populating $HB_AGENTS stores with enrolled agents"
  "$POPULATE" --data-dir "$WORK/hb" --stores "$HB_AGENTS" --audit 0 >/dev/null
  write_config "$WORK/hb.yaml" "$WORK/hb"
  start_storeplaned hb "$WORK/hb.yaml"
  log "heartbeat: closed loop, $HB_AGENTS connections, $HB_LONG_POLLS long-polls held, $HB_SECONDS s"
  # Warm-up (not counted) first: agents whose first heartbeat is older than 1.5 intervals
  # are stale, and their next heartbeat is an availability change, written before the answer.
  SW_LONG_POLLS=$HB_LONG_POLLS run_swarm hb_closed "$HB_PROCS" "$HB_AGENTS" --url "$URL" --preenrolled \
    --seconds $((HB_WARM + HB_SECONDS)) --measure-after-s "$HB_WARM" --poll-wait-ms 30000
  fact hb_closed_rss_kb "$(mem_kb "$SERVER_PID" VmRSS)"
  for rate in $HB_RATES; do
    log "heartbeat: open loop, $HB_AGENTS agents at $rate/s in total, $HB_LONG_POLLS long-polls held"
    SW_RATE=$rate SW_LONG_POLLS=$HB_LONG_POLLS run_swarm "hb_open_$rate" "$HB_PROCS" "$HB_AGENTS" --url "$URL" \
      --preenrolled --seconds $((HB_OPEN_WARM + HB_SECONDS)) --measure-after-s "$HB_OPEN_WARM" --poll-wait-ms 30000
  done
  stop_server
  "$BUILD/bench/bench_hello_server" >"$OUT/hello.out" 2>"$OUT/hello.err" &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  HELLO=$(wait_for "$OUT/hello.out" BENCH_ADDR)
  log "heartbeat: bare Beast hello, closed loop, $HB_AGENTS connections"
  run_swarm hb_hello "$HB_PROCS" "$HB_AGENTS" --url "http://$HELLO" --target hello \
    --seconds $((HB_WARM + HB_SECONDS)) --measure-after-s "$HB_WARM"
  stop_server
  rm -rf "$WORK/hb"
fi

# ---- 3. mutations -------------------------------------------------------------------------
if want mutations; then
  for gc in true false; do
    mkdir -p "$WORK/mut_$gc"
    write_config "$WORK/mut_$gc.yaml" "$WORK/mut_$gc"
    start_storeplaned "mut_$gc" "$WORK/mut_$gc.yaml" STOREPLANE_GROUP_COMMIT=$gc
    TOKEN=$(head -1 "$WORK/mut_$gc/admin.token" 2>/dev/null || wait_for "$OUT/mut_$gc.out" STOREPLANE_TOKEN)
    log "mutations: group_commit=$gc, $MUT_CLIENTS clients POST /v1/stores for $MUT_SECONDS s"
    SW_CONNS=$MUT_CLIENTS run_swarm "mut_$gc" 1 1 --url "$URL" --token "$TOKEN" --mode mutate \
      --seconds "$MUT_SECONDS"
    stop_server
    rm -rf "$WORK/mut_$gc"
  done
  fact mutations_dir_fs "$(df -P "$WORK" | awk 'NR==2 {print $1}')"
fi

# ---- 3b. replicas: PostgreSQL, three storeplaned on one database (issue 8) ----------------
if want replicas; then
  PG_BIN=${STOREPLANE_POSTGRES_BINDIR:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
  PSQL=$PG_BIN/psql
  [[ -x $PSQL ]] || PSQL=$(command -v psql)
  # On disk (BENCH_DATA_DIR), durable: fsync, synchronous_commit and full_page_writes on.
  # As root the server runs as `postgres`, which must reach its directory under $WORK.
  chmod 711 "$WORK"
  PG_DIR=$WORK/pg
  PG_CONN=$(STOREPLANE_PG_DURABLE=1 "$ROOT/scripts/test-postgres.sh" start "$PG_DIR")
  pg_sql() { "$PSQL" "$PG_CONN dbname=${2:-postgres}" -AtX -q -c "$1"; }
  fact pg_version "$(pg_sql 'SHOW server_version' | awk '{print $1}')"
  fact pg_settings "$(pg_sql "SELECT string_agg(name || '=' || setting, ' ' ORDER BY name) FROM pg_settings
    WHERE name IN ('fsync', 'synchronous_commit', 'full_page_writes', 'wal_sync_method', 'shared_buffers',
                   'commit_delay')")"
  fact pg_dir_fs "$(df -P "$PG_DIR" | awk 'NR==2 {print $1}')"

  # start_replicas SET N: a fresh database SET and N storeplaned on it, one after the other
  # (the first creates the admin token, the others read it), sharing the admin token and
  # the audit signing key, each with its own data dir and port. Sets REPLICA_PIDS,
  # REPLICA_URLS, TOKEN.
  start_replicas() {
    local set=$1 n=$2 i
    pg_sql "CREATE DATABASE $set"
    mkdir -p "$WORK/$set"
    REPLICA_PIDS=()
    REPLICA_URLS=()
    for ((i = 0; i < n; i++)); do
      mkdir -p "$WORK/$set/r$i"
      ADMIN_TOKEN_FILE=$WORK/$set/admin.token write_config "$WORK/$set/r$i.yaml" "$WORK/$set/r$i" \
        "audit: {signing_key_file: $WORK/$set/audit-signing.key}"
      start_storeplaned "${set}_r$i" "$WORK/$set/r$i.yaml" STOREPLANE_STORAGE_DRIVER=postgres \
        "STOREPLANE_POSTGRES_CONNINFO=$PG_CONN dbname=$set" "STOREPLANE_REPLICA_NAME=$set-r$i"
      REPLICA_PIDS+=("$SERVER_PID")
      REPLICA_URLS+=("$URL")
    done
    TOKEN=$(head -1 "$WORK/$set/admin.token")
  }
  # stop_replicas SET: stops them; counts the warning and error lines of their logs (fact
  # SET_log_problems) and summarizes them by message (fact SET_log_summary).
  stop_replicas() {
    local set=$1 pid
    for pid in "${REPLICA_PIDS[@]}"; do stop_pid "$pid"; done
    SERVER_PID=""
    local problems summary
    problems=$(cat "$OUT/${set}"_r*.err | grep -ciE '"level": ?"(warn|error)"' || true)
    fact "${set}_log_problems" "$problems"
    if ((problems)); then
      summary=$(grep -hiE '"level": ?"(warn|error)"' "$OUT/${set}"_r*.err | python3 -c '
import collections, json, sys
seen = collections.Counter()
for line in sys.stdin:
    try:
        e = json.loads(line)
        key = "%s: %s" % (e.get("level"), e.get("msg"))
        if "detail" in e:
            key += " (%s)" % e["detail"]
    except ValueError:
        key = line.strip()[:120]
    seen[key] += 1
print("; ".join("%dx %s" % (n, m) for m, n in seen.most_common(6)))')
      fact "${set}_log_summary" "$summary"
      log "replicas $set: $problems warning/error lines in the replicas' logs: $summary"
    fi
  }
  # pg_sample DB: "next_xid commits wal_syncs wal_bytes rows_written replicas_cpu_ticks
  # postgres_cpu_ticks"
  pg_sample() {
    local pid pm stats rows replicas=0 pg=0 t
    stats=$(pg_sql "SELECT pg_snapshot_xmax(pg_current_snapshot())::text,
      (SELECT xact_commit FROM pg_stat_database WHERE datname = '$1'), wal_sync, wal_bytes FROM pg_stat_wal" | tr '|' ' ')
    rows=$(pg_sql "SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) FROM pg_stat_user_tables" "$1")
    for pid in "${REPLICA_PIDS[@]}"; do
      t=$(cpu_ticks "$pid" 2>/dev/null) && replicas=$((replicas + t))
    done
    pm=$(head -1 "$PG_DIR/data/postmaster.pid")
    for pid in $pm $(ps -o pid= --ppid "$pm"); do
      t=$(cpu_ticks "$pid" 2>/dev/null) && pg=$((pg + t))
    done
    echo "$stats $rows $replicas $pg"
  }
  # window_stats NAME DB WARM SECONDS (background): from WARM s after NAME's go file, over
  # SECONDS s: PostgreSQL's write transactions (xids assigned), commits (read-only ones too:
  # pg_stat_database), WAL fsyncs and bytes, rows inserted, updated or deleted in DB
  # (pg_stat_user_tables) per second; CPU of the replicas and of PostgreSQL
  # (100% = one core). Facts NAME_*, written to $OUT/NAME-window.
  window_stats() {
    local name=$1 db=$2 warm=$3 seconds=$4 a b ta tb
    while [[ ! -f $OUT/$name.go ]]; do sleep 0.05; done
    sleep "$warm"
    ta=$(date +%s.%N)
    a=$(pg_sample "$db")
    sleep "$seconds"
    tb=$(date +%s.%N)
    b=$(pg_sample "$db")
    python3 - "$name" "$ta" "$tb" "$a" "$b" >"$OUT/$name-window" <<'PY'
import os, sys
name, ta, tb = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
a, b = [list(map(float, s.split())) for s in sys.argv[4:6]]
dt, tck = tb - ta, os.sysconf("SC_CLK_TCK")
d = [y - x for x, y in zip(a, b)]
for key, v in (("pg_write_xacts_per_s", d[0] / dt), ("pg_commits_per_s", d[1] / dt),
               ("pg_wal_syncs_per_s", d[2] / dt), ("pg_wal_kib_per_s", d[3] / 1024 / dt),
               ("pg_rows_written_per_s", d[4] / dt), ("replicas_cpu_percent", 100 * d[5] / tck / dt),
               ("pg_cpu_percent", 100 * d[6] / tck / dt),
               ("window_s", dt)):
    print(f"{name}_{key}={v:.1f}")
PY
  }
  # replica_set SET N: mutations (closed loop, on the fresh database), then the heartbeat
  # open loops, the swarm processes spread over the N replicas.
  replica_set() {
    local set=$1 n=$2 rate sampler procs=3
    start_replicas "$set" "$n"
    fact "${set}_replicas" "$n"
    log "replicas: $set, $n replica(s) on PostgreSQL: $MUT_CLIENTS clients POST /v1/stores for $MUT_SECONDS s"
    window_stats "${set}_mut" "$set" 0 "$MUT_SECONDS" &
    sampler=$!
    PIDS+=("$sampler")
    # AGENTS (unused by mutate) spaces the processes' --first, which names their stores.
    SW_URLS="${REPLICA_URLS[*]}" SW_CONNS=$MUT_CLIENTS run_swarm "${set}_mut" "$procs" $((procs * 1000)) \
      --token "$TOKEN" --mode mutate --seconds "$MUT_SECONDS"
    wait "$sampler" || true
    cat "$OUT/${set}_mut-window" >>"$OUT/facts" || true
    for rate in $HB_RATES; do
      log "replicas: $set, open loop, $HB_AGENTS agents (enrolled through the API) at $rate/s, $HB_LONG_POLLS long-polls"
      window_stats "${set}_hb_$rate" "$set" "$HB_OPEN_WARM" "$HB_SECONDS" &
      sampler=$!
      PIDS+=("$sampler")
      SW_URLS="${REPLICA_URLS[*]}" SW_RATE=$rate SW_LONG_POLLS=$HB_LONG_POLLS run_swarm "${set}_hb_$rate" "$procs" \
        "$HB_AGENTS" --token "$TOKEN" --setup-concurrency 32 --seconds $((HB_OPEN_WARM + HB_SECONDS)) \
        --measure-after-s "$HB_OPEN_WARM" --poll-wait-ms 30000
      wait "$sampler" || true
      cat "$OUT/${set}_hb_$rate-window" >>"$OUT/facts" || true
    done
    fact "${set}_rss_kb" "$(for pid in "${REPLICA_PIDS[@]}"; do mem_kb "$pid" VmRSS; done | paste -sd' ')"
    stop_replicas "$set"
  }
  replica_set pg3 3
  if [[ ${BENCH_PG_SINGLE:-1} == 1 ]]; then replica_set pg1 1; fi
  "$ROOT/scripts/test-postgres.sh" stop "$PG_DIR"
  PG_DIR=""
fi

# ---- 4. receipt ---------------------------------------------------------------------------
if want receipt; then
  mkdir -p "$WORK/rc"
  write_config "$WORK/rc.yaml" "$WORK/rc"
  start_storeplaned rc "$WORK/rc.yaml"
  TOKEN=$(wait_for "$OUT/rc.out" STOREPLANE_TOKEN)
  log "receipt: $RC_AGENTS agents long-polling, $RC_OPS_RATE operations/s for $RC_SECONDS s"
  # One process: the operator's send time and the agent's receipt are read from one clock;
  # 10,000 agent connections fit in one process's descriptors (the server holds the rest).
  run_swarm rc 1 "$RC_AGENTS" --url "$URL" --token "$TOKEN" --mode receipt --ops-rate "$RC_OPS_RATE" \
    --seconds "$RC_SECONDS" --poll-wait-ms 20000 --setup-concurrency 32
  stop_server
  rm -rf "$WORK/rc"
fi

# ---- 5. lost ------------------------------------------------------------------------------
if want lost; then
  mkdir -p "$WORK/lost"
  INTERVAL=1 write_config "$WORK/lost.yaml" "$WORK/lost"
  start_storeplaned lost "$WORK/lost.yaml"
  TOKEN=$(wait_for "$OUT/lost.out" STOREPLANE_TOKEN)
  log "lost: $LOST_AGENTS agents at a 1 s interval; $LOST_LOST of them stop after 5 s"
  run_swarm lost 1 "$LOST_AGENTS" --url "$URL" --token "$TOKEN" --mode lost --interval-s 1 --lost "$LOST_LOST" \
    --warmup-s 5
  stop_server
  rm -rf "$WORK/lost"
fi

# ---- 6, 7, 2. restart, reads, scale (one populated data directory) -----------------------
# wait_ready PORT TOKEN: polls GET /v1/stores?limit=1 until it answers 200; prints the
# monotonic time (ns) of that answer.
wait_ready() {
  python3 - "$1" "$2" <<'PY'
import socket, sys, time
port, token = int(sys.argv[1]), sys.argv[2]
req = (f"GET /v1/stores?limit=1 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
       "Connection: close\r\n\r\n").encode()
deadline = time.monotonic() + 120
while time.monotonic() < deadline:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(req)
            data = b""
            while b"\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            if data.startswith(b"HTTP/1.1 200"):
                print(time.monotonic_ns())
                sys.exit(0)
    except OSError:
        pass
    time.sleep(0.002)
sys.exit(1)
PY
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

if want restart || want reads || want scale; then
  log "populating $BIG_STORES stores, $BIG_AUDIT audit records (bench_populate)"
  "$POPULATE" --data-dir "$WORK/big" --stores "$BIG_STORES" --audit "$BIG_AUDIT" >"$OUT/populate.out"
  cat "$OUT/populate.out" >&2
  fact populate_s "$(awk -F= '$1 == "seconds" {print $2}' "$OUT/populate.out")"
  fact big_db_bytes "$(du -cb "$WORK"/big/storeplane.db* | tail -1 | cut -f1)"
  BIG_TOKEN=$(head -1 "$WORK/big/admin.token")
  PORT=$(free_port)
  LISTEN=127.0.0.1:$PORT write_config "$WORK/big.yaml" "$WORK/big"
  ATTEMPTS=1
  if want restart; then ATTEMPTS=2; fi  # the first start after populate, and a restart
  for ((attempt = 1; attempt <= ATTEMPTS; attempt++)); do
    t0=$(python3 -c 'import time; print(time.monotonic_ns())')
    "$BUILD/storeplaned" --config "$WORK/big.yaml" >"$OUT/big.out" 2>"$OUT/big.err" &
    SERVER_PID=$!
    PIDS+=("$SERVER_PID")
    if ! t1=$(wait_ready "$PORT" "$BIG_TOKEN"); then
      log "restart: storeplaned did not answer; its stderr:"
      tail -20 "$OUT/big.err" >&2
      exit 1
    fi
    fact "restart_${attempt}_ms" "$(((t1 - t0) / 1000000))"
    fact "restart_${attempt}_rss_kb" "$(mem_kb "$SERVER_PID" VmRSS)"
    log "restart $attempt: serving after $(((t1 - t0) / 1000000)) ms"
    if ((attempt < ATTEMPTS)); then stop_server; fi
  done
  URL=http://127.0.0.1:$PORT
  if want reads; then
    log "reads: GET one store and a filtered page of 100, $READ_REQUESTS each, 8 clients"
    SW_CONNS=8 run_swarm reads 1 1 --url "$URL" --token "$BIG_TOKEN" --mode read --requests "$READ_REQUESTS" \
      --store-count "$BIG_STORES" --list-query "environment=production&selector=tier%3Dgold&limit=100"
  fi
  if want scale; then
    log "scale: $BIG_STORES agents at a 10 s interval over $SCALE_CONNS connections, joining over $SCALE_RAMP s, $SCALE_WARM s warm-up + $SCALE_SECONDS s"
    fact scale_ramp_s "$SCALE_RAMP"
    # The agents were never seen: their first heartbeat is an availability change, written
    # before the answer. They join evenly over SCALE_RAMP seconds (SCALE_RAMP=0: all at
    # once, the cold start of a whole fleet); CPU, memory and latency are measured after
    # the warm-up, in the steady state.
    (
      while [[ ! -f $OUT/scale.go ]]; do sleep 0.05; done
      sleep "$SCALE_WARM"
      a=$(cpu_ticks "$SERVER_PID")
      ta=$(date +%s.%N)
      sleep $((SCALE_SECONDS - 2))
      b=$(cpu_ticks "$SERVER_PID")
      tb=$(date +%s.%N)
      python3 -c "import os; print('scale_cpu_percent=%.1f' % (100.0 * ($b - $a) / os.sysconf('SC_CLK_TCK') / ($tb - $ta)))"
      echo "scale_cpu_window_s=$(python3 -c "print(round($tb - $ta, 1))")"
      echo "scale_rss_kb=$(mem_kb "$SERVER_PID" VmRSS)"
    ) >"$OUT/scale.cpu" &
    sampler=$!
    PIDS+=("$sampler")
    SW_CONNS=$SCALE_CONNS SW_RATE=$((BIG_STORES / 10)) run_swarm scale "$SCALE_PROCS" "$BIG_STORES" --url "$URL" \
      --preenrolled --seconds $((SCALE_WARM + SCALE_SECONDS)) --measure-after-s "$SCALE_WARM" --ramp-s "$SCALE_RAMP"
    wait "$sampler" || true
    cat "$OUT/scale.cpu" >>"$OUT/facts"
    fact scale_hwm_kb "$(mem_kb "$SERVER_PID" VmHWM)"
    fact scale_rss_end_kb "$(mem_kb "$SERVER_PID" VmRSS)"
  fi
  stop_server
  rm -rf "$WORK/big"
fi

# ---- 8. etcd ------------------------------------------------------------------------------
if want etcd; then
  if ! command -v etcd >/dev/null; then
    if ((EUID == 0)); then
      log "installing etcd-server and etcd-client from Debian"
      DEBIAN_FRONTEND=noninteractive apt-get install -y etcd-server etcd-client >/dev/null
    else
      log "etcd is not installed (apt-get install etcd-server etcd-client, as root)"
      exit 1
    fi
  fi
  fact etcd_version "$(etcd --version | head -1 | awk '{print $3}')"
  CPORT=$(free_port)
  PPORT=$(free_port)
  etcd --name bench --data-dir "$WORK/etcd" --listen-client-urls "http://127.0.0.1:$CPORT" \
    --advertise-client-urls "http://127.0.0.1:$CPORT" --listen-peer-urls "http://127.0.0.1:$PPORT" \
    --initial-advertise-peer-urls "http://127.0.0.1:$PPORT" --initial-cluster "bench=http://127.0.0.1:$PPORT" \
    --log-level error >"$OUT/etcd.log" 2>&1 &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  for _ in $(seq 1 100); do
    curl -sf -X POST "http://127.0.0.1:$CPORT/v3/maintenance/status" -d '{}' >/dev/null 2>&1 && break
    sleep 0.1
  done
  log "etcd: lease keep-alives, closed loop, $ETCD_AGENTS connections"
  run_swarm etcd_keepalive "$ETCD_PROCS" "$ETCD_AGENTS" --url "http://127.0.0.1:$CPORT" --target etcd \
    --seconds $((HB_WARM + ETCD_SECONDS)) --measure-after-s "$HB_WARM"
  log "etcd: puts, closed loop, $ETCD_AGENTS connections"
  run_swarm etcd_put "$ETCD_PROCS" "$ETCD_AGENTS" --url "http://127.0.0.1:$CPORT" --target etcd --etcd-op put \
    --seconds $((HB_WARM + ETCD_SECONDS)) --measure-after-s "$HB_WARM"
  stop_server
fi

# ---- 9. rollout ---------------------------------------------------------------------------
if want rollout; then
  log "rollout: $ROLLOUT_STORES stores, canary 1, growth factor 2, max_concurrent 500 (bench_rollout)"
  if ! "$BUILD/bench/bench_rollout" --data-dir "$WORK/rollout" --stores "$ROLLOUT_STORES" --canary 1 \
    --growth-factor 2 --max-concurrent 500 >"$OUT/rollout.out" 2>"$OUT/rollout.err"; then
    log "rollout: bench_rollout failed"
  fi
  cat "$OUT/rollout.err" >&2
  sed 's/^/rollout_/' "$OUT/rollout.out" >>"$OUT/facts"
  rm -rf "$WORK/rollout"
fi

echo "load_after=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/facts"

# ---- Table and JSON -----------------------------------------------------------------------
mkdir -p "$(dirname "$RESULTS")"
python3 "$ROOT/bench/report.py" "$OUT" "$RESULTS" "$TYPE" "$ROOT"
