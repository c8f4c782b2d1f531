// Lifecycle through CI/CD: provision, decommission, deploy, roll back and migrate isolation
// by asking for a pipeline run (202 with the run, or 202 with a change request when an
// approval rule holds it), and the runs themselves. The run and its trigger are recorded
// in one transaction (the outbox); the run coordinator sends the trigger.
#include <boost/json/array.hpp>
#include <boost/json/serialize.hpp>
#include <set>

#include "core/time_format.h"
#include "server/agent_hub.h"
#include "server/api_json.h"
#include "server/app.h"
#include "server/handler_support.h"
#include "server/problem.h"
#include "server/run_coordinator.h"
#include "server/run_requests.h"
#include "server/store_actions.h"

namespace storeplane::server {
namespace {

namespace json = boost::json;

json::value TextOrNull(const std::string& text) { return text.empty() ? json::value(nullptr) : json::value(text); }

Result<Response> RequestRun(RequestContext& ctx, core::RunKind kind) {
  const auto& req = ctx.request;
  if (!req.body.empty()) SP_RETURN_IF_ERROR(RequireMediaType(req, {"application/json"}));
  auto request = DecodeRunRequest(kind, req.body);
  if (!request.ok()) return request.error();
  const auto action = std::string(ActionOfRunKind(kind));
  auto store = LoadStoreFor(ctx, ctx.params.at("id"), action);
  if (!store.ok()) return store.error();

  auto check = CheckIdempotencyKey(ctx, 202);
  if (!check.ok()) return check.error();
  if (check->answer) {
    if (!ctx.Authorize(action, TargetOf(*store)).allowed) {
      return Error{ErrorCode::kPermissionDenied, "not allowed to perform " + action, {}};
    }
    return std::move(*check->answer);
  }
  auto idem = std::move(check->record);
  const auto decision = ctx.Authorize(action, TargetOf(*store));
  ctx.audit_params = {{"kind", std::string(core::ToString(kind))}};
  if (request->release) ctx.audit_params["release"] = *request->release;
  if (!decision.allowed) return Error{ErrorCode::kPermissionDenied, "not allowed to perform " + action, {}};

  bool mismatch = false;
  if (ctx.services.agents != nullptr) {
    if (auto view = ctx.services.agents->View(store->id)) {
      mismatch = std::find(view->health.reasons.begin(), view->health.reasons.end(), "isolation_mismatch") !=
                 view->health.reasons.end();
    }
  }
  RunPlanInput input;
  input.request = &*request;
  input.store = &*store;
  input.isolation_mismatch = mismatch;
  input.requested_by = ctx.caller->principal_id;
  input.request_id = ctx.request_id;
  input.now_ms = ctx.now_ms;
  // Checked now even when the run waits for approval, so that nobody approves the impossible.
  auto plan = PlanRun(input, ctx.services.config.cicd, ctx.services.repo);
  if (!plan.ok()) return plan.error();

  // Deploy windows and freezes (policy `windows:`): closed means refused, or with
  // break_glass, a change request that an approver must approve (one change even when a
  // normal approval rule covers the request too).
  const auto window = core::DecideWindow(ctx.policy.windows, action, store->environment, ctx.now_ms);
  if (request->break_glass_reason) {
    ctx.audit_params["break_glass"] = window.open ? "not_needed" : "true";
    ctx.audit_params["break_glass_reason"] = *request->break_glass_reason;
  }
  if (!window.open) {
    std::string ids;
    for (const auto& id : window.windows) ids += (ids.empty() ? "" : ",") + id;
    ctx.audit_params["window"] = ids;
    if (!request->break_glass_reason) {
      std::vector<std::pair<std::string, std::string>> extra;
      if (window.next_open_at) extra.emplace_back("next_open_at", core::FormatRfc3339Millis(*window.next_open_at));
      return ProblemResponse(WindowClosedError(window, action, store->environment), req.path, ctx.request_id, extra);
    }
    auto rule = BreakGlassRule(ctx.policy, decision.approval);
    if (!rule.ok()) return rule.error();
    return RequestApproval(ctx, *store, req.body, std::move(idem), *rule, ctx.audit_params);
  }

  if (decision.approval != nullptr) {
    return RequestApproval(ctx, *store, req.body.empty() ? "{}" : req.body, std::move(idem));
  }

  const auto location = "/v1/runs/" + plan->run.id;
  if (idem) {
    idem->response_body = json::serialize(RunJson(plan->run));
    idem->location = location;
  }
  ctx.audit_params["run"] = plan->run.id;
  db::WriteBatch batch;
  batch.effects = std::move(plan->effects);
  batch.audit.push_back(ctx.Audit("store/" + store->id, "ok", ctx.audit_params));
  batch.idempotency = idem;
  auto written = ctx.services.repo.Apply(batch);
  if (!written.ok()) {
    if (auto twin = ReplayTwin(ctx, idem, written.error())) return std::move(*twin);
    return written.error();
  }
  ctx.MarkAudited();
  if (ctx.services.runs != nullptr) ctx.services.runs->Kick();
  if (ctx.services.agents != nullptr) {
    for (const auto& changed : written->stores) ctx.services.agents->OnStoreChanged(changed);
  }
  auto resp = JsonResponse(202, RunJson(written->runs.at(0)));
  resp.SetHeader("Location", location);
  return resp;
}

Result<Response> ListRuns(RequestContext& ctx) {
  auto params = ParseQueryParams(ctx.request.query, {"store", "state", "active", "rollout", "limit", "cursor"});
  if (!params.ok()) return params.error();
  db::Repository::RunQuery query;
  for (const auto& [key, value] : *params) {
    if (key == "store") {
      query.store_id = value;
    } else if (key == "state") {
      if (!core::ParseRunState(value)) return Error::Invalid("state '" + value + "' is not a run state", key);
      query.state = value;
    } else if (key == "active") {
      if (value != "true") return Error::Invalid("active takes only true (omit it for every run)", key);
      query.active_only = true;
    } else if (key == "rollout") {
      query.rollout_id = value;
    } else if (key == "limit") {
      auto n = ParseCount(value, key, 1, 1000);
      if (!n.ok()) return n.error();
      query.limit = static_cast<int>(*n);
    } else if (key == "cursor") {
      query.before_id = value;
    }
  }
  // Object scope: runs of stores the caller may not read runs of are filtered out.
  std::map<std::string, bool> visible;
  auto page = CollectVisible<db::PipelineRunRecord>(
      query.limit,
      [&](const std::string& cursor) {
        if (!cursor.empty()) query.before_id = cursor;
        return ctx.services.repo.ListRuns(query);
      },
      [&](const db::PipelineRunRecord& run) {
        auto [it, fresh] = visible.try_emplace(run.store_id, false);
        if (fresh) {
          auto store = ctx.services.repo.GetStore(run.store_id);
          it->second =
              store.ok() && core::Decide(ctx.policy, ctx.caller->principal_id, "run.read", TargetOf(*store)).allowed;
        }
        return it->second;
      },
      [](const db::PipelineRunRecord& run) { return run.id; });
  if (!page.ok()) return page.error();
  json::array items;
  for (const auto& run : page->items) items.emplace_back(RunJson(run));
  const std::string next = page->next;
  ctx.authorized = true;
  ctx.decision = core::Decision{true, "object-scope", "runs outside the caller's scope are filtered out", nullptr};
  json::object body{{"items", std::move(items)}};
  body["next_cursor"] = TextOrNull(next);
  return JsonResponse(200, body);
}

Result<Response> GetRun(RequestContext& ctx) {
  const auto& id = ctx.params.at("id");
  auto run = ctx.services.repo.GetRun(id);
  if (!run.ok()) return run.error().code == ErrorCode::kNotFound ? Error::NotFound("no run '" + id + "'") : run.error();
  auto store = LoadStoreFor(ctx, run->store_id, "run.read");
  if (!store.ok()) return Error::NotFound("no run '" + id + "'");
  if (!ctx.Authorize("run.read", TargetOf(*store)).allowed) {
    return Error{ErrorCode::kPermissionDenied, "not allowed to perform run.read", {}};
  }
  return JsonResponse(200, RunJson(*run));
}

}  // namespace

void RegisterRunHandlers(std::map<std::string, Handler>& by_route) {
  by_route[RouteKey("POST", "/v1/stores/{id}/provision")] = [](RequestContext& ctx) {
    return RequestRun(ctx, core::RunKind::kProvision);
  };
  by_route[RouteKey("POST", "/v1/stores/{id}/decommission")] = [](RequestContext& ctx) {
    return RequestRun(ctx, core::RunKind::kDecommission);
  };
  by_route[RouteKey("POST", "/v1/stores/{id}/deployments")] = [](RequestContext& ctx) {
    return RequestRun(ctx, core::RunKind::kDeploy);
  };
  by_route[RouteKey("POST", "/v1/stores/{id}/rollbacks")] = [](RequestContext& ctx) {
    return RequestRun(ctx, core::RunKind::kRollback);
  };
  by_route[RouteKey("POST", "/v1/stores/{id}/isolation-migrations")] = [](RequestContext& ctx) {
    return RequestRun(ctx, core::RunKind::kIsolationMigration);
  };
  by_route[RouteKey("GET", "/v1/runs")] = ListRuns;
  by_route[RouteKey("GET", "/v1/runs/{id}")] = GetRun;
}

}  // namespace storeplane::server
