#!/usr/bin/env python3
"""bench/run.sh's report: merges the swarm processes' JSON (exact, from their sparse
latency histograms), prints each figure beside its target (brief section 9) and writes
the results JSON.

usage: report.py OUT_DIR RESULTS_JSON BUILD_TYPE REPO_ROOT
"""
import datetime
import glob
import json
import os
import platform
import re
import subprocess
import sys

out_dir, results_path, build_type, root = sys.argv[1:5]

facts = {}
for line in open(os.path.join(out_dir, "facts")):
    if "=" in line:
        k, v = line.rstrip("\n").split("=", 1)
        facts[k] = v


def num(key, default=None):
    try:
        return float(facts[key])
    except (KeyError, ValueError):
        return default


def quantiles(hist):
    """hist: [[us, count], ...] sorted or not; returns a latency summary in ms."""
    hist = sorted(hist)
    total = sum(c for _, c in hist)
    out = {"count": total}
    for name, q in (("p50_ms", 0.50), ("p90_ms", 0.90), ("p99_ms", 0.99), ("p999_ms", 0.999)):
        if total == 0:
            out[name] = None
            continue
        rank = max(1, int(q * total))
        seen = 0
        for us, c in hist:
            seen += c
            if seen >= rank:
                out[name] = us / 1000.0
                break
    out["max_ms"] = hist[-1][0] / 1000.0 if hist else None
    return out


SUM_KEYS = ("agents", "agents_ready", "conns", "connections_open", "long_polls", "long_poll_returns",
            "long_poll_errors", "requests_ok", "requests_rejected", "requests_throttled", "io_errors",
            "setup_errors", "late_sends", "warmup_requests_ok", "ops_requested", "ops_received", "ops_refused", "lost",
            "lost_detected", "list_items", "offered_rate")
HIST_KEYS = ("latency", "operator_post", "detection", "list")


def merged(name):
    files = sorted(glob.glob(os.path.join(out_dir, f"{name}.*.json")))
    parts = []
    for f in files:
        try:
            parts.append(json.load(open(f)))
        except (OSError, ValueError):
            pass
    if not parts:
        return None
    r = {"processes": len(parts), "target": parts[0]["target"], "mode": parts[0]["mode"]}
    for k in SUM_KEYS:
        if any(k in p for p in parts):
            r[k] = sum(p.get(k, 0) for p in parts)
    r["seconds"] = max(p["seconds"] for p in parts)
    r["setup_s"] = max(p["setup_s"] for p in parts)
    r["connect_s"] = max(p["connect_s"] for p in parts)
    r["requests_per_s"] = r["requests_ok"] / r["seconds"] if r["seconds"] else 0.0
    for k in HIST_KEYS:
        if any(k in p for p in parts):
            r[k] = quantiles([pair for p in parts if k in p for pair in p[k]["hist_us"]])
    return r


def fmt(v, spec=".1f"):
    return "-" if v is None else format(v, spec)


def verdict(ok):
    return "met" if ok else "MISSED"


scenarios = {}
rows = []  # (scenario, figure, measured, target, verdict)


def row(scenario, figure, measured, target="", ok=None):
    rows.append((scenario, figure, measured, target, "" if ok is None else verdict(ok)))


def lat(r, key="latency"):
    h = r.get(key) or {}
    return (f"p50 {fmt(h.get('p50_ms'), '.2f')} / p99 {fmt(h.get('p99_ms'), '.2f')} / "
            f"p99.9 {fmt(h.get('p999_ms'), '.2f')} / max {fmt(h.get('max_ms'), '.1f')} ms")


def errors(r):
    return (r.get("requests_rejected", 0) + r.get("io_errors", 0) + r.get("setup_errors", 0)
            + r.get("long_poll_errors", 0))


# 1. heartbeat
closed, hello = merged("hb_closed"), merged("hb_hello")
if closed:
    hb = {"closed_loop": closed, "hello": hello, "open_loop": {}}
    ratio = closed["requests_per_s"] / hello["requests_per_s"] if hello and hello["requests_per_s"] else None
    hb["ratio_to_hello"] = ratio
    hb["storeplaned_rss_kb"] = num("hb_closed_rss_kb")
    row("1 heartbeat", f"closed loop, {closed['agents_ready']} conns + {closed['long_polls']} long-polls",
        f"{closed['requests_per_s']:,.0f}/s; {lat(closed)}; errors {errors(closed)}")
    if hello:
        row("1 heartbeat", f"bare Beast hello, {hello['agents_ready']} conns",
            f"{hello['requests_per_s']:,.0f}/s; {lat(hello)}; errors {errors(hello)}")
        row("1 heartbeat", "heartbeats / hello", f"{ratio:.1%}", ">= 60%", ratio >= 0.60)
    row("1 heartbeat", "p99, closed loop (saturating: Little's law)", f"{closed['latency']['p99_ms']:.1f} ms",
        "< 20 ms", closed["latency"]["p99_ms"] < 20)
    for f in sorted(glob.glob(os.path.join(out_dir, "hb_open_*.0.json"))):
        name = os.path.basename(f).rsplit(".", 2)[0]
        r = merged(name)
        rate = int(name.rsplit("_", 1)[1])
        hb["open_loop"][str(rate)] = r
        row("1 heartbeat", f"open loop, {r['agents_ready']} agents at {rate:,}/s offered, {r['long_polls']} long-polls",
            f"{r['requests_per_s']:,.0f}/s; {lat(r)}; errors {errors(r)}", "p99 < 20 ms",
            r["latency"]["p99_ms"] is not None and r["latency"]["p99_ms"] < 20)
    scenarios["heartbeat"] = hb

# PostgreSQL replicas (scenario `replicas`): the same open loops and mutation closed loop,
# rows beside the SQLite ones.
PG_SETS = (("pg3", "PostgreSQL, 3 replicas"), ("pg1", "PostgreSQL, 1 replica"))
WINDOW_KEYS = ("pg_write_xacts_per_s", "pg_commits_per_s", "pg_wal_syncs_per_s", "pg_wal_kib_per_s", "pg_rows_written_per_s",
               "replicas_cpu_percent", "pg_cpu_percent", "window_s")
replicas = {}


def pg_window(name):
    return {k: num(f"{name}_{k}") for k in WINDOW_KEYS}


def server_side(w):
    return (f"PostgreSQL {fmt(w['pg_write_xacts_per_s'], ',.0f')} write xacts/s, "
            f"{fmt(w['pg_commits_per_s'], ',.0f')} commits/s (read-only too), "
            f"{fmt(w['pg_wal_syncs_per_s'], ',.1f')} WAL fsyncs/s, {fmt(w['pg_wal_kib_per_s'], ',.1f')} KiB WAL/s, "
            f"{fmt(w['pg_rows_written_per_s'], ',.0f')} rows written/s; "
            f"CPU: replicas {fmt(w['replicas_cpu_percent'], '.0f')}%, PostgreSQL {fmt(w['pg_cpu_percent'], '.0f')}%")


for pg_set, label in PG_SETS:
    if num(f"{pg_set}_replicas") is None:
        continue
    entry = {"label": label, "replicas": int(num(f"{pg_set}_replicas")), "heartbeat_open_loop": {},
             "mutations": None, "log_warnings_and_errors": num(f"{pg_set}_log_problems"),
             "log_summary": facts.get(f"{pg_set}_log_summary", ""),
             "rss_kb": [int(v) for v in facts.get(f"{pg_set}_rss_kb", "").split()]}
    for f in sorted(glob.glob(os.path.join(out_dir, f"{pg_set}_hb_*.0.json")),
                    key=lambda f: int(os.path.basename(f).split(".")[0].rsplit("_", 1)[1])):
        name = os.path.basename(f).rsplit(".", 2)[0]
        r = merged(name)
        if r:
            entry["heartbeat_open_loop"][name.rsplit("_", 1)[1]] = dict(r, server=pg_window(name))
    mut = merged(f"{pg_set}_mut")
    if mut:
        entry["mutations"] = dict(mut, server=pg_window(f"{pg_set}_mut"))
    replicas[pg_set] = entry
if replicas:
    scenarios["replicas"] = dict(replicas, postgres_version=facts.get("pg_version"),
                                 postgres_settings=facts.get("pg_settings"), filesystem=facts.get("pg_dir_fs"))


def replica_heartbeat_rows():
    for pg_set, entry in replicas.items():
        label = entry["label"]
        for i, (rate, r) in enumerate(entry["heartbeat_open_loop"].items()):
            if i == 0:
                row("1 heartbeat", f"{label}: enrollment through the API, {r['agents']:,} agents",
                    f"stores + tokens {r['setup_s']:.1f} s, enroll + first heartbeat {r['connect_s']:.1f} s; "
                    f"{r['agents_ready']:,} ready")
            p99 = r["latency"]["p99_ms"]
            row("1 heartbeat", f"{label}: open loop, {r['agents_ready']:,} agents at {int(rate):,}/s offered, "
                f"{r['long_polls']} long-polls", f"{r['requests_per_s']:,.0f}/s; {lat(r)}; errors {errors(r)}",
                "p99 < 20 ms", p99 is not None and p99 < 20)
            row("1 heartbeat", f"{label}: server side at {int(rate):,}/s", server_side(r["server"]))


def replica_mutation_rows():
    for pg_set, entry in replicas.items():
        m = entry["mutations"]
        if not m:
            continue
        label = entry["label"]
        row("3 mutations", f"{label}: {m['conns']} clients POST /v1/stores",
            f"{m['requests_per_s']:,.0f}/s; {lat(m)}; errors {errors(m)}")
        row("3 mutations", f"{label}: server side", server_side(m["server"]))
        if entry["log_warnings_and_errors"]:
            row("3 mutations", f"{label}: warning/error lines in the replicas' logs (whole scenario)",
                f"{entry['log_warnings_and_errors']:.0f}: {entry['log_summary']}")


replica_heartbeat_rows()

# 2. scale
scale = merged("scale")
if scale:
    cpu, rss, hwm = num("scale_cpu_percent"), num("scale_rss_kb"), num("scale_hwm_kb")
    scenarios["scale"] = {"swarm": scale, "ramp_s": num("scale_ramp_s"), "cpu_percent_of_one_core": cpu, "cpu_window_s": num("scale_cpu_window_s"),
                          "rss_kb": rss, "hwm_kb": hwm, "rss_end_kb": num("scale_rss_end_kb")}
    ramp = num("scale_ramp_s", 0)
    row("2 scale", f"{scale['agents_ready']:,} agents over {scale['connections_open']:,} conns, 10 s interval, "
        f"joining over {ramp:.0f} s",
        f"{scale['requests_per_s']:,.0f}/s of {scale['offered_rate']:,.0f}/s offered; {lat(scale)}; "
        f"errors {errors(scale)}; {scale.get('warmup_requests_ok', 0):,} answered in the warm-up")
    row("2 scale", "storeplaned CPU (100% = one core)", f"{fmt(cpu)}%")
    mem = max(v for v in (rss, hwm, 0) if v is not None)
    row("2 scale", "storeplaned memory (VmRSS / VmHWM)", f"{fmt(rss and rss / 1024, '.0f')} / "
        f"{fmt(hwm and hwm / 1024, '.0f')} MiB", "< 1 GiB", mem < 1024 * 1024)

# 3. mutations
gc, nogc = merged("mut_true"), merged("mut_false")
if gc and nogc:
    ratio = gc["requests_per_s"] / nogc["requests_per_s"] if nogc["requests_per_s"] else None
    scenarios["mutations"] = {"group_commit": gc, "one_transaction_each": nogc, "ratio": ratio,
                              "filesystem": facts.get("mutations_dir_fs")}
    row("3 mutations", f"group commit, {gc['conns']} clients POST /v1/stores",
        f"{gc['requests_per_s']:,.0f}/s; {lat(gc)}; errors {errors(gc)}")
    row("3 mutations", "one transaction per mutation", f"{nogc['requests_per_s']:,.0f}/s; {lat(nogc)}; "
        f"errors {errors(nogc)}")
    row("3 mutations", "group commit / one each", fmt(ratio, ".1f") + "x", ">= 5x", ratio is not None and ratio >= 5)
replica_mutation_rows()

# 4. receipt
rc = merged("rc")
if rc:
    scenarios["receipt"] = rc
    row("4 receipt", f"{rc['agents_ready']:,} agents long-polling; {rc['ops_received']}/{rc['ops_requested']} "
        f"operations received ({rc['ops_refused']} refused)", lat(rc), "p99 < 50 ms",
        rc["latency"]["p99_ms"] is not None and rc["latency"]["p99_ms"] < 50 and rc["ops_received"] > 0)
    row("4 receipt", "operator POST .../operations (202)", lat(rc, "operator_post"))

# 5. lost
lost = merged("lost")
if lost:
    d = lost["detection"]
    interval_ms = 1000.0
    scenarios["lost"] = dict(lost, interval_s=1)
    worst = d["max_ms"] / interval_ms if d["max_ms"] is not None else None
    row("5 lost", f"{lost['lost_detected']}/{lost['lost']} lost agents reported offline (1 s interval)",
        f"p50 {fmt(d['p50_ms'] and d['p50_ms'] / interval_ms, '.2f')} / max {fmt(worst, '.2f')} intervals",
        "<= 3 intervals", worst is not None and worst <= 3 and lost["lost_detected"] == lost["lost"])

# 6. restart
if "restart_1_ms" in facts:
    r1, r2 = num("restart_1_ms"), num("restart_2_ms")
    db = num("big_db_bytes")
    scenarios["restart"] = {"first_start_ms": r1, "restart_ms": r2, "db_bytes": db, "populate_s": num("populate_s"),
                            "rss_kb": num("restart_2_rss_kb") or num("restart_1_rss_kb")}
    worst = max(v for v in (r1, r2) if v is not None)
    row("6 restart", f"exec -> first 200 of GET /v1/stores?limit=1 (db {fmt(db and db / 2**20, '.0f')} MiB)",
        f"first start {fmt(r1, '.0f')} ms, restart {fmt(r2, '.0f')} ms", "< 2 s", worst < 2000)

# 7. reads
reads = merged("reads")
if reads:
    scenarios["reads"] = reads
    n_list = reads["list"]["count"] or 1
    row("7 reads", "GET /v1/stores/{id}", lat(reads))
    row("7 reads", f"GET page of 100 (env + selector), {reads['list_items'] / n_list:.0f} items/page", lat(reads, "list"))

# 8. etcd
ka, put = merged("etcd_keepalive"), merged("etcd_put")
if ka:
    hb_rate = closed["requests_per_s"] if closed else None
    ratio = hb_rate / ka["requests_per_s"] if hb_rate and ka["requests_per_s"] else None
    scenarios["etcd"] = {"keepalive": ka, "put": put, "version": facts.get("etcd_version"),
                         "storeplane_heartbeats_to_keepalives": ratio}
    row("8 etcd", f"lease keep-alives (JSON gateway), {ka['agents_ready']:,} conns",
        f"{ka['requests_per_s']:,.0f}/s; {lat(ka)}; errors {errors(ka)}")
    if put:
        row("8 etcd", f"puts (JSON gateway), {put['agents_ready']:,} conns",
            f"{put['requests_per_s']:,.0f}/s; {lat(put)}; errors {errors(put)}")
    if ratio is not None:
        row("8 etcd", "storeplane heartbeats / etcd keep-alives", f"{ratio:.2f}x", ">= 5x", ratio >= 5)
    else:
        row("8 etcd", "storeplane heartbeats / etcd keep-alives", "- (run the heartbeat scenario too)", ">= 5x")

# 9. rollout
if "rollout_orchestrate_s" in facts:
    ro = {k[len("rollout_"):]: (facts[k] if k == "rollout_state" else num(k)) for k in facts if k.startswith("rollout_")}
    scenarios["rollout"] = ro
    row("9 rollout", f"{ro['stores']:,.0f} stores, canary {ro['canary']:.0f}, growth factor {ro['growth_factor']:g}, "
        f"max_concurrent {ro['max_concurrent']:.0f}: {ro['waves']:.0f} waves",
        f"plan {ro['plan_ms']:.0f} ms; orchestrate {ro['orchestrate_s']:.1f} s (orchestrator {ro['pass_s']:.1f} s, "
        f"instant provider {ro['provider_s']:.1f} s); {ro['passes']:.0f} passes, {ro['steps']:.0f} steps, "
        f"{ro['runs']:.0f} runs; {ro['state']}")
    row("9 rollout", "bench_rollout memory (peak RSS / RSS growth over the rollout)",
        f"{ro['rss_peak_kb'] / 1024:.0f} MiB / {ro['rss_growth_kb'] / 1024:+.0f} MiB")


def cpu_model():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def mem_total_kb():
    for line in open("/proc/meminfo"):
        if line.startswith("MemTotal"):
            return int(re.findall(r"\d+", line)[0])
    return 0


try:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=root).stdout.strip()
    dirty = bool(subprocess.run(["git", "status", "--porcelain", "--", "src"], capture_output=True, text=True,
                                cwd=root).stdout.strip())
except OSError:
    commit, dirty = "", False

w1 = max(len(r[0]) for r in rows) if rows else 10
w2 = max(len(r[1]) for r in rows) if rows else 10
w3 = max(len(r[2]) for r in rows) if rows else 10
print()
print(f"{'scenario':<{w1}}  {'figure':<{w2}}  {'measured':<{w3}}  {'target':<15}  verdict")
for s, f, m, t, v in rows:
    print(f"{s:<{w1}}  {f:<{w2}}  {m:<{w3}}  {t:<15}  {v}")
sizes = "QUICK sizes (not the targets' sizes)" if facts.get("quick") == "1" else "full sizes"
print(f"\nload average before {facts.get('load_before')}, after {facts.get('load_after')}; {sizes}")

result = {
    "when": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    "commit": commit, "src_modified": dirty, "build_type": build_type, "quick": facts.get("quick") == "1",
    "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "kernel": platform.release(),
                "mem_gib": round(mem_total_kb() / 2**20, 1), "nofile_limit": 20000},
    "load_average": {"before": facts.get("load_before"), "after": facts.get("load_after")},
    "scenarios": scenarios,
    "table": [dict(zip(("scenario", "figure", "measured", "target", "verdict"), r)) for r in rows],
}
with open(results_path, "w") as f:
    json.dump(result, f, indent=1)
    f.write("\n")
print(f"results: {results_path}")
