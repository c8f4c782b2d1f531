// GET /v1/stores/{id}/health: the store's health as derived in the core from its agent's
// availability, reported checks, lifecycle state and isolation match, with the last
// successful time of each operation and check.
#include <algorithm>
#include <boost/json/array.hpp>

#include "server/agent_hub.h"
#include "server/agent_views.h"
#include "server/api_json.h"
#include "server/app.h"
#include "server/handler_support.h"
#include "server/store_actions.h"

namespace storeplane::server {
namespace {

Result<Response> GetStoreHealth(RequestContext& ctx) {
  auto store = LoadVisibleStore(ctx, ctx.params.at("id"));
  if (!store.ok()) return store.error();
  ctx.Authorize("store.read", TargetOf(*store));
  if (ctx.services.agents == nullptr) return Error::Internal("the agent hub is not configured");
  auto successes = ctx.services.repo.ListLastSuccesses(store->id);
  if (!successes.ok()) return successes.error();
  const auto view = ctx.services.agents->View(store->id);
  auto body = StoreHealthJson(*store, view, *successes);
  // What needs an operator, from the store's latest run and what its agent reports.
  db::Repository::RunQuery query;
  query.store_id = store->id;
  query.limit = 1;
  auto runs = ctx.services.repo.ListRuns(query);
  if (!runs.ok()) return runs.error();
  boost::json::array flags;
  if (!runs->empty() && !runs->front().active) {
    const auto& last = runs->front();
    const bool in_maintenance =
        view && std::any_of(view->checks.begin(), view->checks.end(), [](const core::CheckResult& c) {
          return c.name == core::CheckName::kMaintenance && c.code == "maintenance_on";
        });
    if (in_maintenance) flags.emplace_back("left_in_maintenance_after_run:" + last.id);
    // A rollback the server started on its own that did not end well: automation stops here.
    if (last.kind == "rollback" && last.requested_by == "system" && last.state != "verified") {
      flags.emplace_back("automatic_rollback_failed:" + last.id);
    }
    if (last.kind == "deploy" && last.state == "verification_failed" && last.schema_changed) {
      flags.emplace_back("rollback_held_schema_changed:" + last.id);
    }
  }
  body["flags"] = std::move(flags);
  return JsonResponse(200, body);
}

}  // namespace

void RegisterStoreHealthHandlers(std::map<std::string, Handler>& by_route) {
  by_route[RouteKey("GET", "/v1/stores/{id}/health")] = GetStoreHealth;
}

}  // namespace storeplane::server
