// GET /metrics: the Prometheus text format (server/metrics.h), for a bearer token whose
// principal holds metrics.read (the pipeline decides it: a global action). Like every
// allowed read, a scrape is audited when audit.record_reads is on (queued, not awaited).
#include "server/app.h"
#include "server/metrics.h"

namespace storeplane::server {
namespace {

Result<Response> GetMetrics(RequestContext& ctx) {
  if (ctx.services.metrics == nullptr) return Error::Internal("metrics are not configured");
  auto text = ctx.services.metrics->Render(ctx.services.repo, ctx.services.agents, ctx.now_ms);
  if (!text.ok()) return text.error();
  Response resp;
  resp.content_type = std::string(Metrics::kContentType);
  resp.body = std::move(*text);
  return resp;
}

}  // namespace

void RegisterMetricsHandlers(std::map<std::string, Handler>& by_route) {
  by_route[RouteKey("GET", "/metrics")] = GetMetrics;
}

}  // namespace storeplane::server
