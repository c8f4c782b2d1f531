#!/usr/bin/env bash
# The long crash-point run: a mixed workload against the real storeplaned, killed with
# SIGKILL at KILL_POINTS random moments and restarted on the same data directory, with the
# invariants of docs/RELIABILITY.md checked after every kill.
# Usage: scripts/crash-points.sh [KILL_POINTS (default 2000)] [SEED (default random)]
# Environment: BUILD_DIR (default build/; built with scripts/build.sh -DSTOREPLANE_BUILD_TESTS=ON
# when it has no driver yet), STOREPLANE_CRASH_AUDIT_EVERY (verify the audit chain every N
# kill points, default 20; always at the end), STOREPLANE_CRASH_PACE_MS (the workload's
# pause between requests, at most, default 50), CRASH_LOG (the driver's output, default
# $BUILD_DIR/crash-points.log), STOREPLANE_CRASH_STOP_FILE (touch it to end the run early,
# with the final checks and the summary).
set -euo pipefail
cd "$(dirname "$0")/.."
points="${1:-2000}"
seed="${2:-}"
build_dir="${BUILD_DIR:-build}"
driver="$build_dir/tests/crash/crash_points_test"

if [[ ! -x "$driver" ]]; then
  if [[ "$build_dir" == "build" ]]; then
    scripts/build.sh -DSTOREPLANE_BUILD_TESTS=ON
  else
    cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE="${STOREPLANE_BUILD_TYPE:-RelWithDebInfo}" \
      -DSTOREPLANE_BUILD_TESTS=ON >/dev/null
    cmake --build "$build_dir" --target crash_points_test storeplaned shop-agent storeplane-cli
  fi
else
  # An existing build: bring the driver and the binaries it runs up to date.
  cmake --build "$build_dir" --target crash_points_test storeplaned shop-agent storeplane-cli >/dev/null
fi

log="${CRASH_LOG:-$build_dir/crash-points.log}"
summary="$(mktemp "${TMPDIR:-/tmp}/crash-summary-XXXXXX.json")"
trap 'rm -f "$summary"' EXIT
echo "crash points: $points kill points${seed:+, seed $seed}; output in $log"
set +e
STOREPLANE_CRASH_POINTS="$points" STOREPLANE_CRASH_SEED="$seed" \
  STOREPLANE_CRASH_AUDIT_EVERY="${STOREPLANE_CRASH_AUDIT_EVERY:-20}" STOREPLANE_CRASH_SUMMARY="$summary" \
  STOREPLANE_CRASH_PACE_MS="${STOREPLANE_CRASH_PACE_MS:-50}" \
  "$driver" 2>&1 | tee "$log" | grep --line-buffered -E '^(crash:|VIOLATION)'
status=${PIPESTATUS[0]}
set -e

if [[ ! -s "$summary" ]]; then
  echo "crash points: the driver wrote no summary (exit status $status); see $log" >&2
  exit 1
fi
python3 - "$summary" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
rows = [
    ("seed", s["seed"]),
    ("kill points", s["kill_points"]),
    ("restarts", s["restarts"]),
    ("integrity checks (all ok unless a violation says so)", s["integrity_checks"]),
    ("acknowledged writes", s["acknowledged_writes"]),
    ("acknowledged writes checked (write x restart)", s["acknowledged_checks"]),
    ("stores / runs / changes / operations acknowledged",
     f'{s["stores"]} / {s["runs"]} / {s["changes"]} / {s["operations"]}'),
    ("triggers received by the stub CI", s["triggers"]),
    ("distinct runs triggered", s["runs_triggered"]),
    ("duplicate triggers (must be 0)", s["duplicates"]),
    ("find / status requests", s["finds"]),
    ("runs adopted by ask-before-resend (found_at_provider)", s["adopted_at_provider"]),
    ("callbacks accepted / already received", f'{s["callbacks_ok"]} / {s["callbacks_already_received"]}'),
    ("audit chain verifications", s["audit_verifications"]),
    ("audit records at the end", s["audit_records"]),
    ("run.transition records checked", s["audit_transitions_checked"]),
    ("slowest restart (ms)", round(s["max_restart_ms"])),
    ("checker: connections retried / 429s waited out",
     f'{s.get("transient_connect_failures", 0)} / {s.get("rate_limited", 0)}'),
    ("violations", s["violations"]),
    ("duration (s)", round(s["duration_s"])),
]
width = max(len(k) for k, _ in rows)
for k, v in rows:
    print(f"{k:<{width}}  {v}")
PY
exit "$status"
