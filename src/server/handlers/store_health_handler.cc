// GET /v1/stores/{id}/health: the store's health as derived in the core from its agent's
// availability, reported checks, lifecycle state and isolation match, with the last
// successful time of each operation and check.
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
  return JsonResponse(200, StoreHealthJson(*store, ctx.services.agents->View(store->id), *successes));
}

}  // namespace

void RegisterStoreHealthHandlers(std::map<std::string, Handler>& by_route) {
  by_route[RouteKey("GET", "/v1/stores/{id}/health")] = GetStoreHealth;
}

}  // namespace storeplane::server
