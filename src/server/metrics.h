// storeplaned's Prometheus metrics (GET /metrics): counters and histograms updated on the
// request path (prometheus-cpp core), and gauges read at scrape time from the repository's
// aggregates and the AgentHub's memory. Every label takes values from a closed set (route
// template, method, status code, catalog action, lifecycle and run states, configured
// environments): never a store id, a label value or a raw path. Thread-safe; one instance,
// owned by the daemon and reached through Services::metrics.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/authority.h"
#include "core/result.h"
#include "core/store.h"
#include "db/repository.h"

namespace storeplane::server {

class AgentHub;
struct RouteSpec;

class Metrics {
 public:
  // What GET /metrics answers with: the Prometheus text exposition format 0.0.4.
  static constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

  // `environments`: the configured set, so that every (state, environment, isolation)
  // series of storeplane_stores exists, at zero, from the first scrape.
  explicit Metrics(core::EnvironmentSet environments);
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // ---- Hot path: any thread, I/O threads included. No lock of ours; the series of a
  // route are created once and cached (prometheus-cpp's own family lock is taken only
  // the first time a route answers with a given status code), and a histogram observation
  // takes prometheus-cpp's per-histogram mutex. ----------------------------------------
  // One answered request. `route` is the matched entry of ApiRouteTable(), or null when
  // nothing matched (404, 405): then the route label is "unmatched" and the method is
  // one of the standard ones or "other".
  void ObserveRequest(const RouteSpec* route, std::string_view method, int status, double seconds);
  // One authorization decision of the pipeline or a handler (RequestContext::Authorize).
  void CountDecision(std::string_view action, const core::Decision& decision);
  // One heartbeat recorded by the AgentHub.
  void CountHeartbeat();

  // ---- Scrape ----------------------------------------------------------------------------
  // Reads the repository's aggregates and the hub's counts (`agents` may be null: no agent
  // metrics) and renders everything in the text format. Blocking (database reads): call
  // it on a worker. Errors are the repository's.
  Result<std::string> Render(db::Repository& repo, const AgentHub* agents, std::int64_t now_ms);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace storeplane::server
