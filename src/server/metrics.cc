#include "server/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <map>
#include <sstream>
#include <tuple>
#include <utility>
#include <vector>

#include "core/agent_health.h"
#include "core/pipeline_run.h"
#include "server/agent_hub.h"
#include "server/api.h"

namespace storeplane::server {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

// Request latency buckets (seconds): a heartbeat answers in tens of microseconds, a group
// commit in milliseconds, an audit export may take seconds.
const prometheus::Histogram::BucketBoundaries& LatencyBuckets() {
  static const prometheus::Histogram::BucketBoundaries kBuckets = {
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
  return kBuckets;
}

constexpr int kMinStatus = 100;
constexpr int kMaxStatus = 599;
constexpr std::string_view kUnmatchedRoute = "unmatched";
// The method label of an unmatched request: one of these, else "other" (a client may send
// any token as a method).
constexpr std::array<std::string_view, 8> kMethods = {"GET",   "HEAD",   "POST",    "PUT",
                                                      "PATCH", "DELETE", "OPTIONS", "other"};

constexpr std::array<std::string_view, 3> kDecisions = {"allow", "deny", "approval_required"};

constexpr std::array kStoreStates = {
    core::StoreState::kRegistered,     core::StoreState::kProvisioning,    core::StoreState::kProvisionFailed,
    core::StoreState::kActive,         core::StoreState::kDecommissioning, core::StoreState::kDecommissionFailed,
    core::StoreState::kDecommissioned,
};
constexpr std::array kIsolationModes = {core::IsolationMode::kShared, core::IsolationMode::kDedicated,
                                        core::IsolationMode::kIsolated};
constexpr std::array kAvailabilities = {core::Availability::kOnline, core::Availability::kStale,
                                        core::Availability::kOffline, core::Availability::kNeverSeen};
constexpr std::array kHealths = {core::Health::kHealthy, core::Health::kDegraded, core::Health::kUnhealthy,
                                 core::Health::kUnknown};
constexpr std::array kRunKinds = {core::RunKind::kProvision, core::RunKind::kDeploy, core::RunKind::kRollback,
                                  core::RunKind::kDecommission, core::RunKind::kIsolationMigration};
constexpr std::array kRunStates = {
    core::RunState::kPending,  core::RunState::kTriggered,
    core::RunState::kRunning,  core::RunState::kSucceeded,
    core::RunState::kFailed,   core::RunState::kCancelled,
    core::RunState::kTimedOut, core::RunState::kVerifying,
    core::RunState::kVerified, core::RunState::kVerificationFailed,
};
constexpr std::array<std::string_view, 2> kOpenOperationStates = {"queued", "delivered"};

bool IsGateState(core::RunState state) {
  return state == core::RunState::kVerifying || state == core::RunState::kVerified ||
         state == core::RunState::kVerificationFailed;
}

// The metric behind `slot`, made by `make` the first time (racing makers get the same
// metric back from prometheus-cpp, which dedupes by labels).
template <typename T, typename Make>
T& Cached(std::atomic<T*>& slot, Make&& make) {
  T* metric = slot.load(std::memory_order_acquire);
  if (metric == nullptr) {
    metric = &make();
    slot.store(metric, std::memory_order_release);
  }
  return *metric;
}

// ---- Scrape-time families, built by hand ----
MetricFamily NewFamily(std::string name, std::string help, MetricType type) {
  MetricFamily family;
  family.name = std::move(name);
  family.help = std::move(help);
  family.type = type;
  return family;
}

void AddSample(MetricFamily& family, std::vector<std::pair<std::string_view, std::string_view>> labels, double value) {
  ClientMetric sample;
  for (const auto& [name, text] : labels) sample.label.push_back({std::string(name), std::string(text)});
  if (family.type == MetricType::Counter) {
    sample.counter.value = value;
  } else {
    sample.gauge.value = value;
  }
  family.metric.push_back(std::move(sample));
}

MetricFamily Single(std::string name, std::string help, MetricType type, double value) {
  auto family = NewFamily(std::move(name), std::move(help), type);
  AddSample(family, {}, value);
  return family;
}

}  // namespace

struct Metrics::Impl {
  // The series of one route template and method (or of unmatched requests with a method).
  struct RouteSeries {
    std::string route;
    std::string method;
    std::atomic<prometheus::Histogram*> duration{nullptr};
    std::array<std::atomic<prometheus::Counter*>, kMaxStatus - kMinStatus + 1> by_status{};
  };
  struct DecisionSeries {
    std::array<std::atomic<prometheus::Counter*>, kDecisions.size()> by_decision{};
  };

  core::EnvironmentSet environments;
  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();
  prometheus::Family<prometheus::Counter>& requests =
      prometheus::BuildCounter()
          .Name("storeplane_http_requests_total")
          .Help("HTTP requests answered, by route template, method and status code")
          .Register(*registry);
  prometheus::Family<prometheus::Histogram>& durations =
      prometheus::BuildHistogram()
          .Name("storeplane_http_request_duration_seconds")
          .Help(
              "Time from reading a request to its answer (a long-poll's parked wait excluded), by route template "
              "and method")
          .Register(*registry);
  prometheus::Family<prometheus::Counter>& decisions =
      prometheus::BuildCounter()
          .Name("storeplane_authz_decisions_total")
          .Help("Authorization decisions, by catalog action and decision (allow, deny, approval_required)")
          .Register(*registry);
  prometheus::Counter& heartbeats = prometheus::BuildCounter()
                                        .Name("storeplane_agent_heartbeats_total")
                                        .Help("Agent heartbeats recorded")
                                        .Register(*registry)
                                        .Add({});

  // Indexed like ApiRouteTable(); built in the constructor, never resized.
  std::vector<std::unique_ptr<RouteSeries>> routes;
  std::array<std::unique_ptr<RouteSeries>, kMethods.size()> unmatched;
  // Catalog action -> its series; "unknown" for a name outside the catalog. Never changed
  // after construction, so lookups need no lock.
  std::map<std::string, std::unique_ptr<DecisionSeries>, std::less<>> by_action;

  RouteSeries& SeriesOf(const RouteSpec* route, std::string_view method) {
    const auto& table = ApiRouteTable();
    if (route != nullptr && route >= table.data() && route < table.data() + table.size()) {
      return *routes[static_cast<std::size_t>(route - table.data())];
    }
    const auto* it = std::find(kMethods.begin(), kMethods.end() - 1, method);
    return *unmatched[static_cast<std::size_t>(it - kMethods.begin())];
  }
};

Metrics::Metrics(core::EnvironmentSet environments) : impl_(std::make_unique<Impl>()) {
  impl_->environments = std::move(environments);
  for (const auto& route : ApiRouteTable()) {
    auto series = std::make_unique<Impl::RouteSeries>();
    series->route = std::string(route.path_template);
    series->method = std::string(route.method);
    impl_->routes.push_back(std::move(series));
  }
  for (std::size_t i = 0; i < kMethods.size(); ++i) {
    impl_->unmatched[i] = std::make_unique<Impl::RouteSeries>();
    impl_->unmatched[i]->route = std::string(kUnmatchedRoute);
    impl_->unmatched[i]->method = std::string(kMethods[i]);
  }
  for (const auto& action : core::ActionCatalog()) {
    impl_->by_action.emplace(std::string(action.name), std::make_unique<Impl::DecisionSeries>());
  }
  impl_->by_action.emplace("unknown", std::make_unique<Impl::DecisionSeries>());
}

Metrics::~Metrics() = default;

void Metrics::ObserveRequest(const RouteSpec* route, std::string_view method, int status, double seconds) {
  auto& series = impl_->SeriesOf(route, method);
  Cached(series.duration, [&]() -> prometheus::Histogram& {
    return impl_->durations.Add({{"route", series.route}, {"method", series.method}}, LatencyBuckets());
  }).Observe(seconds);
  if (status < kMinStatus || status > kMaxStatus) return;
  Cached(series.by_status[static_cast<std::size_t>(status - kMinStatus)], [&]() -> prometheus::Counter& {
    return impl_->requests.Add({{"route", series.route}, {"method", series.method}, {"code", std::to_string(status)}});
  }).Increment();
}

void Metrics::CountDecision(std::string_view action, const core::Decision& decision) {
  auto it = impl_->by_action.find(action);
  if (it == impl_->by_action.end()) it = impl_->by_action.find(std::string_view("unknown"));
  const std::size_t index = !decision.allowed ? 1 : (decision.approval != nullptr ? 2 : 0);
  const std::string& name = it->first;
  Cached(it->second->by_decision[index], [&]() -> prometheus::Counter& {
    return impl_->decisions.Add({{"action", name}, {"decision", std::string(kDecisions[index])}});
  }).Increment();
}

void Metrics::CountHeartbeat() { impl_->heartbeats.Increment(); }

Result<std::string> Metrics::Render(db::Repository& repo, const AgentHub* agents, std::int64_t now_ms) {
  auto stores = repo.CountStoresByGroup();
  if (!stores.ok()) return stores.error();
  auto runs = repo.CountRunsByKindState();
  if (!runs.ok()) return runs.error();
  auto operations = repo.CountOpenOperationsByState();
  if (!operations.ok()) return operations.error();
  auto outbox = repo.CountPendingOutbox();
  if (!outbox.ok()) return outbox.error();
  auto audit = repo.GetAuditHead();
  if (!audit.ok()) return audit.error();
  const auto writer = repo.GetWriterStats();
  const auto tally = agents != nullptr ? agents->Count() : AgentHub::Tally{};

  std::vector<MetricFamily> families = impl_->registry->Collect();

  // Stores: every (state, environment, isolation) of the closed sets, at zero when empty.
  using StoreKey = std::tuple<std::string, std::string, std::string>;
  std::map<StoreKey, std::int64_t> by_group;
  for (const auto state : kStoreStates) {
    for (const auto& environment : impl_->environments.names) {
      for (const auto mode : kIsolationModes) {
        by_group[{std::string(core::ToString(state)), environment, std::string(core::ToString(mode))}] = 0;
      }
    }
  }
  std::int64_t total_stores = 0;
  for (const auto& group : *stores) {
    by_group[{group.state, group.environment, group.isolation_mode}] += group.count;
    total_stores += group.count;
  }
  auto store_family = NewFamily("storeplane_stores",
                                "Stores (decommissioned tombstones included) by lifecycle state, environment and "
                                "recorded isolation mode",
                                MetricType::Gauge);
  for (const auto& [key, count] : by_group) {
    const auto& [state, environment, mode] = key;
    AddSample(store_family, {{"state", state}, {"environment", environment}, {"isolation_mode", mode}},
              static_cast<double>(count));
  }
  families.push_back(std::move(store_family));

  // Health: from the hub for stores with an unrevoked agent; the rest get what the API
  // reports for a store without one.
  std::map<core::Health, std::int64_t> by_health;
  for (const auto health : kHealths) by_health[health] = 0;
  for (const auto& [health, count] : tally.by_health) by_health[health] += count;
  by_health[core::AssessHealth(core::HealthInput{}).health] += std::max<std::int64_t>(0, total_stores - tally.agents);
  auto health_family = NewFamily("storeplane_stores_by_health",
                                 "Stores by health, as GET /v1/stores/{id}/health reports it", MetricType::Gauge);
  for (const auto health : kHealths) {
    AddSample(health_family, {{"health", core::ToString(health)}}, static_cast<double>(by_health[health]));
  }
  families.push_back(std::move(health_family));

  if (agents != nullptr) {
    auto agent_family = NewFamily("storeplane_agents", "Enrolled, unrevoked agents by availability", MetricType::Gauge);
    for (const auto availability : kAvailabilities) {
      const auto it = tally.by_availability.find(availability);
      AddSample(agent_family, {{"availability", core::ToString(availability)}},
                static_cast<double>(it == tally.by_availability.end() ? 0 : it->second));
    }
    families.push_back(std::move(agent_family));
  }

  // Runs: every kind and the states it can be in, at zero when empty.
  std::map<std::pair<std::string, std::string>, std::int64_t> by_run;
  for (const auto kind : kRunKinds) {
    for (const auto state : kRunStates) {
      if (IsGateState(state) && !core::HasHealthGate(kind)) continue;
      by_run[{std::string(core::ToString(kind)), std::string(core::ToString(state))}] = 0;
    }
  }
  for (const auto& group : *runs) by_run[{group.kind, group.state}] += group.count;
  auto run_family = NewFamily("storeplane_runs", "Pipeline runs (never deleted) by kind and state", MetricType::Gauge);
  for (const auto& [key, count] : by_run) {
    AddSample(run_family, {{"kind", key.first}, {"state", key.second}}, static_cast<double>(count));
  }
  families.push_back(std::move(run_family));

  std::map<std::string, std::int64_t, std::less<>> open_ops;
  for (const auto state : kOpenOperationStates) open_ops[std::string(state)] = 0;
  for (const auto& [state, count] : *operations) open_ops[state] += count;
  auto op_family = NewFamily("storeplane_operations_open", "Operations not finished yet, by state (queued, delivered)",
                             MetricType::Gauge);
  for (const auto& [state, count] : open_ops) AddSample(op_family, {{"state", state}}, static_cast<double>(count));
  families.push_back(std::move(op_family));

  families.push_back(Single("storeplane_outbox_pending", "CI/CD triggers in the outbox not sent yet", MetricType::Gauge,
                            static_cast<double>(*outbox)));
  families.push_back(Single("storeplane_db_write_batches_total",
                            "Write transactions committed by the database writer (group commit) since start",
                            MetricType::Counter, static_cast<double>(writer.batches)));
  families.push_back(Single("storeplane_db_write_mutations_total",
                            "Mutations in the writer's committed transactions since start", MetricType::Counter,
                            static_cast<double>(writer.mutations)));
  families.push_back(Single("storeplane_db_write_failed_batches_total",
                            "Write transactions that could not begin or commit since start", MetricType::Counter,
                            static_cast<double>(writer.failed_batches)));
  families.push_back(Single("storeplane_db_write_pending", "Mutations waiting for the database writer",
                            MetricType::Gauge, static_cast<double>(writer.pending)));
  families.push_back(Single("storeplane_audit_records_total",
                            "Audit records in the hash chain (the sequence number of the newest)", MetricType::Counter,
                            static_cast<double>(audit->last_seq)));
  if (audit->last_checkpoint_ms) {
    const double age_s = static_cast<double>(std::max<std::int64_t>(0, now_ms - *audit->last_checkpoint_ms)) / 1000.0;
    families.push_back(Single("storeplane_audit_checkpoint_age_seconds",
                              "Time since the newest signed audit checkpoint (absent before the first)",
                              MetricType::Gauge, age_s));
  }

  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, families);
  return out.str();
}

}  // namespace storeplane::server
