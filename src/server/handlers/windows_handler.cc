// GET /v1/deploy-windows: the deploy windows and freezes of the policy in force, and per
// environment whether a pipeline run of the asked action (default deploy.request) may start
// now, why, and when that changes. Read-only; the windows change only with the policy file.
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <set>

#include "core/deploy_window.h"
#include "core/time_format.h"
#include "server/api_json.h"
#include "server/app.h"

namespace storeplane::server {
namespace {

namespace json = boost::json;

json::value TimeOrNull(const std::optional<std::int64_t>& ms) {
  return ms ? json::value(core::FormatRfc3339Millis(*ms)) : json::value(nullptr);
}

json::object WindowJson(const core::DeployWindow& w) {
  json::array envs;
  for (const auto& e : w.environments) envs.emplace_back(e);
  json::array actions;
  for (const auto& a : w.actions) actions.emplace_back(a);
  return json::object{{"id", w.id},
                      {"kind", std::string(core::ToString(w.kind))},
                      {"environments", std::move(envs)},
                      {"actions", std::move(actions)},
                      {"schedule", w.schedule.text()},
                      {"duration", core::FormatWindowDuration(w.duration_ms)},
                      {"description", w.description}};
}

Result<Response> ListDeployWindows(RequestContext& ctx) {
  auto params = ParseQueryParams(ctx.request.query, {"environment", "action"});
  if (!params.ok()) return params.error();
  std::optional<std::string> environment;
  std::string action = "deploy.request";
  for (const auto& [key, value] : *params) {
    if (key == "environment") {
      if (!ctx.services.config.environments.names.contains(value)) {
        return Error::Invalid("unknown environment '" + value + "'", key);
      }
      environment = value;
    } else if (key == "action") {
      if (!core::IsWindowedAction(value)) {
        return Error::Invalid(
            "action must be one that windows govern: deploy.request, rollback.request, store.provision, "
            "store.decommission or isolation.migrate",
            key);
      }
      action = value;
    }
  }
  const auto& windows = ctx.policy.windows;
  json::array environments;
  for (const auto& env : ctx.services.config.environments.names) {
    if (environment && env != *environment) continue;
    const auto d = core::DecideWindow(windows, action, env, ctx.now_ms);
    json::array deciding;
    for (const auto& id : d.windows) deciding.emplace_back(id);
    environments.emplace_back(json::object{{"environment", env},
                                           {"open", d.open},
                                           {"reason", d.reason},
                                           {"windows", std::move(deciding)},
                                           {"next_open_at", TimeOrNull(d.next_open_at)},
                                           {"closes_at", TimeOrNull(d.closes_at)}});
  }
  json::array configured;
  for (const auto& w : windows) {
    if (environment && !w.environments.empty() && !w.environments.contains(*environment)) continue;
    configured.emplace_back(WindowJson(w));
  }
  return JsonResponse(200, json::object{{"now", core::FormatRfc3339Millis(ctx.now_ms)},
                                        {"action", action},
                                        {"environments", std::move(environments)},
                                        {"windows", std::move(configured)}});
}

}  // namespace

void RegisterWindowHandlers(std::map<std::string, Handler>& by_route) {
  by_route[RouteKey("GET", "/v1/deploy-windows")] = ListDeployWindows;
}

}  // namespace storeplane::server
