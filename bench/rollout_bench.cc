// bench_rollout: a fleet rollout of 10,000 stores through the real orchestrator and the real
// SQLite repository, in one process, with an instant-success provider (ADR 0011, issue 9).
//
//   bench_rollout [--data-dir DIR] [--stores 10000] [--canary 1] [--growth-factor 2]
//                 [--max-concurrent 500]
//
// 1. Fills a fresh database (DIR/storeplane.db; default: a temp dir under /var/tmp, removed
//    at the end) with N active staging stores at r1 (last known good r1), in batches of
//    1,000 through db::Repository::Apply, each with its audit record.
// 2. "plan": server::PrepareRollout (selects every page of stores, plans the waves) and the
//    InsertRolloutEffect with its audit record, as POST /v1/rollouts does.
// 3. "orchestrate": a server::RolloutOrchestrator (an AgentObserver that reports every store
//    online, healthy, at r1; no provider pacing; the built-in default policy) is passed
//    (PassOnce) until the rollout is final. After each pass the "provider" moves every active
//    run of the rollout to verified at once (UpdateRunEffect, the store's releases and a
//    run.transition audit record, as callbacks and the health gate would), in batches.
// Prints key=value lines on stdout (bench/run.sh's facts: wall times, passes, steps, runs,
// peak RSS from getrusage and the RSS growth) and a summary on stderr. Exit 1 when the
// rollout does not succeed.
#include <sys/resource.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <string_view>

#include "core/audit.h"
#include "core/rollout.h"
#include "core/store.h"
#include "db/repository.h"
#include "db/sqlite_repository.h"
#include "server/app.h"
#include "server/config.h"
#include "server/logging.h"
#include "server/policy_loader.h"
#include "server/rollout_orchestrator.h"
#include "server/rollout_requests.h"

namespace fs = std::filesystem;
using namespace storeplane;

namespace {

std::int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

double Since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Resident set (KiB): now (VmRSS) and at its peak.
long StatusKb(const std::string& field) {
  std::ifstream status("/proc/self/status");
  std::string key;
  long value = 0;
  while (status >> key) {
    if (key == field) {
      status >> value;
      return value;
    }
    std::getline(status, key);
  }
  return -1;
}
long RssKb() { return StatusKb("VmRSS:"); }
// getrusage's ru_maxrss; the kernel updates it lazily, so never below VmHWM or VmRSS.
long PeakRssKb() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  return std::max({usage.ru_maxrss, StatusKb("VmHWM:"), RssKb()});
}

core::AuditEntry Entry(std::int64_t now_ms, std::string principal, std::string action, std::string target,
                       std::map<std::string, std::string> params) {
  core::AuditEntry e;
  e.time_ms = now_ms;
  e.principal = std::move(principal);
  e.source = "internal";
  e.action = std::move(action);
  e.target = std::move(target);
  e.request_id = "bench";
  e.decision = "allow";
  e.rule = "system";
  e.outcome = "ok";
  e.params = std::move(params);
  return e;
}

int Fail(const std::string& what) {
  std::cerr << "bench_rollout: " << what << "\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::string data_dir;
  long stores = 10'000;
  int canary = 1;
  double growth = 2;
  int max_concurrent = 500;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (i + 1 >= argc) {
      std::cerr << "usage: bench_rollout [--data-dir DIR] [--stores N] [--canary N] [--growth-factor F] "
                   "[--max-concurrent N]\n";
      return 2;
    }
    if (arg == "--data-dir") {
      data_dir = argv[++i];
    } else if (arg == "--stores") {
      stores = std::atol(argv[++i]);
    } else if (arg == "--canary") {
      canary = std::atoi(argv[++i]);
    } else if (arg == "--growth-factor") {
      growth = std::atof(argv[++i]);
    } else if (arg == "--max-concurrent") {
      max_concurrent = std::atoi(argv[++i]);
    } else {
      std::cerr << "bench_rollout: unknown argument " << arg << "\n";
      return 2;
    }
  }
  if (stores < 1) return Fail("--stores must be at least 1");
  server::log::Init("warn");  // the orchestrator's per-rollout info lines are not the figures
  bool remove_dir = false;
  if (data_dir.empty()) {
    const char* base = std::getenv("BENCH_DATA_DIR");
    std::string pattern = std::string(base != nullptr ? base : "/var/tmp") + "/storeplane-rollout-bench.XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) return Fail("cannot create a temp dir under /var/tmp");
    data_dir = pattern;
    remove_dir = true;
  }
  fs::create_directories(data_dir);
  const fs::path dir{data_dir};
  if (fs::exists(dir / "storeplane.db")) return Fail((dir / "storeplane.db").string() + " exists already");

  const long rss_start = RssKb();
  auto key = core::GenerateSigningKey();
  if (!key.ok()) return Fail("cannot generate a signing key: " + key.error().message);
  db::SqliteOptions options;
  options.path = (dir / "storeplane.db").string();
  options.signing_key_pem = key->private_pem;
  auto opened = db::OpenSqliteRepository(options);
  if (!opened.ok()) return Fail("cannot open the database: " + opened.error().message);
  db::Repository& repo = **opened;

  // ---- 1. The fleet ---------------------------------------------------------------------
  const auto fill_started = std::chrono::steady_clock::now();
  const core::EnvironmentSet envs;
  for (long first = 0; first < stores; first += 1000) {
    const long last = std::min(stores, first + 1000);
    db::WriteBatch batch;
    const auto now = NowMs();
    for (long i = first; i < last; ++i) {
      char id[32];
      std::snprintf(id, sizeof id, "fleet-%05ld", i);
      core::StoreRegistration reg{id, std::string("Fleet store ") + id, "staging", "shared", {{"tier", "gold"}}};
      auto store = core::NewStore(reg, envs, now);
      if (!store.ok()) return Fail(std::string("store ") + id + ": " + store.error().message);
      store->state = core::StoreState::kActive;
      store->current_release = "r1";
      store->last_known_good_release = "r1";
      batch.effects.emplace_back(db::InsertStoreEffect{*store});
      batch.audit.push_back(Entry(now, "admin", "store.register", std::string("store/") + id,
                                  {{"environment", "staging"}, {"isolation_mode", "shared"}}));
    }
    if (auto written = repo.Apply(batch); !written.ok()) return Fail("stores: " + written.error().message);
  }
  const double fill_s = Since(fill_started);

  server::Config config;
  config.data_dir = data_dir;
  server::CicdProviderEntry provider;
  provider.provider.name = "bench";
  provider.provider.type = "webhook";
  provider.provider.base_url = "http://127.0.0.1:9/trigger";
  config.cicd.providers.push_back(provider);
  config.cicd.routes.push_back(server::CicdRoute{{}, {}, "bench"});
  auto policy = server::ParsePolicyText(server::DefaultPolicyText(), "built-in default policy", config.environments);
  if (!policy.ok()) return Fail("the default policy: " + policy.error().message);
  server::PolicyHolder holder(std::make_shared<const core::Policy>(std::move(*policy)));

  core::RolloutSpec spec;
  spec.release = "r2";
  spec.selector.environment = "staging";
  spec.waves.canary_size = canary;
  spec.waves.growth_factor = growth;
  spec.max_concurrent = max_concurrent;
  spec.failure_budget.max_failures = 0;
  if (auto valid = core::ValidateRolloutSpec(spec, config.environments); !valid.ok()) {
    return Fail("spec: " + valid.error().message);
  }
  const long rss_before = RssKb();
  const long peak_before = PeakRssKb();

  // ---- 2. Plan ----------------------------------------------------------------------------
  const auto plan_started = std::chrono::steady_clock::now();
  auto prepared = server::PrepareRollout(spec, repo, "admin", "bench", NowMs());
  if (!prepared.ok()) return Fail("PrepareRollout: " + prepared.error().message);
  const std::string rollout_id = prepared->record.id;
  const std::size_t waves = prepared->plan.waves.size();
  const std::size_t planned = prepared->plan.StoreCount();
  {
    db::WriteBatch batch;
    batch.effects.emplace_back(db::InsertRolloutEffect{prepared->record, prepared->targets});
    batch.audit.push_back(Entry(NowMs(), "admin", "rollout.create", "rollout/" + rollout_id,
                                {{"release", "r2"}, {"environment", "staging"}}));
    if (auto written = repo.Apply(batch); !written.ok()) return Fail("InsertRollout: " + written.error().message);
  }
  const double plan_s = Since(plan_started);

  // ---- 3. Orchestrate ---------------------------------------------------------------------
  server::RolloutOrchestrator orchestrator(
      {repo,
       config,
       holder,
       [](const std::string&) {
         return server::AgentObservation{core::Availability::kOnline, core::Health::kHealthy, "r1"};
       },
       nullptr,
       {},
       NowMs});
  const auto orchestrate_started = std::chrono::steady_clock::now();
  double pass_s = 0, provider_s = 0;
  long passes = 0, steps = 0, runs_verified = 0, idle = 0, max_in_flight = 0;  // in flight: verified after a pass
  std::string state;
  for (;;) {
    const auto pass_started = std::chrono::steady_clock::now();
    const int stepped = orchestrator.PassOnce();
    pass_s += Since(pass_started);
    ++passes;
    steps += stepped;

    // The instant provider: every active run of the rollout is verified now.
    const auto provider_started = std::chrono::steady_clock::now();
    long moved = 0;
    for (;;) {
      db::Repository::RunQuery query;
      query.rollout_id = rollout_id;
      query.active_only = true;
      query.limit = 1000;
      auto active = repo.ListRuns(query);
      if (!active.ok()) return Fail("ListRuns: " + active.error().message);
      if (active->empty()) break;
      db::WriteBatch batch;
      const auto now = NowMs();
      for (const auto& run : *active) {
        db::PipelineRunRecord done = run;
        done.state = "verified";
        done.active = false;
        done.outcome_detail = "gate_passed";
        done.triggered_at_ms = run.triggered_at_ms.value_or(now);
        done.gate_opened_at_ms = now;
        done.finished_at_ms = now;
        done.updated_at_ms = now;
        done.version = run.version + 1;
        batch.effects.emplace_back(db::UpdateRunEffect{done, run.version});
        auto store = repo.GetStore(run.store_id);
        if (!store.ok()) return Fail("GetStore: " + store.error().message);
        core::Store next = *store;
        next.current_release = run.release;
        next.last_known_good_release = run.release;
        next.version = store->version + 1;
        next.updated_at_ms = now;
        batch.effects.emplace_back(db::UpdateStoreEffect{next, store->version});
        batch.audit.push_back(
            Entry(now, "system", "run.transition", "store/" + run.store_id,
                  {{"run", run.id}, {"kind", run.kind}, {"from", run.state}, {"to", "verified"}, {"source", "bench"}}));
      }
      if (auto written = repo.Apply(batch); !written.ok()) return Fail("verify runs: " + written.error().message);
      moved += static_cast<long>(active->size());
    }
    provider_s += Since(provider_started);
    runs_verified += moved;
    max_in_flight = std::max(max_in_flight, moved);

    auto rollout = repo.GetRollout(rollout_id);
    if (!rollout.ok()) return Fail("GetRollout: " + rollout.error().message);
    state = rollout->state;
    const auto parsed = core::ParseRolloutState(state);
    if (parsed && core::IsFinal(*parsed)) break;
    idle = (stepped == 0 && moved == 0) ? idle + 1 : 0;
    if (idle >= 50) return Fail("no progress in 50 passes; the rollout is " + state);
  }
  const double orchestrate_s = Since(orchestrate_started);

  // Every planned store has exactly one deploy run of the rollout.
  long runs_recorded = 0;
  {
    db::Repository::RunQuery query;
    query.rollout_id = rollout_id;
    query.limit = 1000;
    for (;;) {
      auto page = repo.ListRuns(query);
      if (!page.ok()) return Fail("ListRuns: " + page.error().message);
      runs_recorded += static_cast<long>(page->size());
      if (static_cast<int>(page->size()) < query.limit) break;
      query.before_id = page->back().id;
    }
  }
  const long rss_after = RssKb();
  const long peak = PeakRssKb();
  opened->reset();
  std::error_code ec;
  const auto db_bytes = fs::file_size(dir / "storeplane.db", ec);
  if (remove_dir) fs::remove_all(dir, ec);

  std::cout << "stores=" << stores << "\ncanary=" << canary << "\ngrowth_factor=" << growth
            << "\nmax_concurrent=" << max_concurrent << "\nwaves=" << waves << "\nplanned=" << planned
            << "\nfill_s=" << fill_s << "\nplan_ms=" << plan_s * 1000 << "\norchestrate_s=" << orchestrate_s
            << "\npass_s=" << pass_s << "\nprovider_s=" << provider_s << "\npasses=" << passes << "\nsteps=" << steps
            << "\nruns=" << runs_recorded << "\nruns_verified=" << runs_verified << "\nmax_in_flight=" << max_in_flight
            << "\nstate=" << state << "\nrss_start_kb=" << rss_start << "\nrss_before_kb=" << rss_before
            << "\nrss_after_kb=" << rss_after << "\nrss_peak_kb=" << peak
            << "\nrss_growth_kb=" << (rss_after - rss_before) << "\nrss_peak_growth_kb=" << (peak - peak_before)
            << "\ndb_bytes=" << (ec ? 0 : db_bytes) << "\n";
  std::cerr << "bench_rollout: " << stores << " stores, canary " << canary << ", growth factor " << growth
            << ", max_concurrent " << max_concurrent << ": " << waves << " waves; plan " << plan_s * 1000
            << " ms; orchestrate " << orchestrate_s << " s (passes " << pass_s << " s, instant provider " << provider_s
            << " s), " << passes << " passes, " << steps << " steps, " << runs_recorded << " runs; rollout " << state
            << "; RSS " << rss_before / 1024 << " -> " << rss_after / 1024 << " MiB, peak " << peak / 1024 << " MiB\n";
  if (state != "succeeded") return 1;
  if (runs_recorded != static_cast<long>(planned)) return Fail("runs recorded != stores planned");
  return 0;
}
