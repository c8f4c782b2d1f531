// Fleet rollouts (ADR 0011): create one (or preview its plan with dry_run=true), list and read
// them with their targets, and queue the operator's commands (pause, resume, abort, approve
// the next wave) for the orchestrator, which applies them at its next step. A rollout is
// decided against its environment; creating one is decided against every store it plans,
// and in an environment whose deploys need approval it becomes a change request.
#include <boost/json/array.hpp>
#include <boost/json/serialize.hpp>
#include <set>

#include "core/deploy_window.h"
#include "server/api_json.h"
#include "server/app.h"
#include "server/handler_support.h"
#include "server/json_body.h"
#include "server/rollout_orchestrator.h"
#include "server/rollout_requests.h"
#include "server/run_requests.h"
#include "server/store_actions.h"

namespace storeplane::server {
namespace {

namespace json = boost::json;

core::AuthzTarget EnvironmentTarget(const std::string& environment) { return core::AuthzTarget{"", environment, {}}; }

// Why the rollout is not moving now, as far as this replica can tell.
std::optional<RolloutWait> WaitingFor(RequestContext& ctx, const db::RolloutRecord& rollout) {
  const auto state = core::ParseRolloutState(rollout.state);
  if (!state) return std::nullopt;
  if (*state == core::RolloutState::kAwaitingApproval) return RolloutWait{"approval", std::nullopt};
  if (*state == core::RolloutState::kWaitingBetweenWaves) return RolloutWait{"pause", rollout.resume_at_ms};
  if (*state == core::RolloutState::kPending || *state == core::RolloutState::kRunning) {
    const auto window = core::DecideWindow(ctx.policy.windows, "deploy.request", rollout.environment, ctx.now_ms);
    if (!window.open) return RolloutWait{"window_closed", window.next_open_at};
  }
  if (ctx.services.rollouts != nullptr) return ctx.services.rollouts->WaitingFor(rollout.id);
  return std::nullopt;
}

// Loads a rollout the caller may perform `action` on; one outside the caller's scope does not
// exist (404), like a store.
Result<db::RolloutRecord> LoadRollout(RequestContext& ctx, std::string_view action) {
  const auto& id = ctx.params.at("id");
  ctx.audit_target = "rollout/" + id;
  auto rollout = ctx.services.repo.GetRollout(id);
  if (!rollout.ok()) {
    if (rollout.error().code == ErrorCode::kNotFound) return Error::NotFound("no rollout '" + id + "'");
    return rollout.error();
  }
  const auto target = EnvironmentTarget(rollout->environment);
  if (action != "rollout.read" && !core::Decide(ctx.policy, ctx.caller->principal_id, "rollout.read", target).allowed &&
      !core::Decide(ctx.policy, ctx.caller->principal_id, action, target).allowed) {
    ctx.Authorize("rollout.read", target);
    return Error::NotFound("no rollout '" + id + "'");
  }
  const auto decision = ctx.Authorize(action, target);
  if (!decision.allowed) {
    if (action == "rollout.read") return Error::NotFound("no rollout '" + id + "'");
    return Error{ErrorCode::kPermissionDenied, "not allowed to perform " + std::string(action), {}};
  }
  return rollout;
}

Result<Response> CreateRollout(RequestContext& ctx) {
  const auto& req = ctx.request;
  SP_RETURN_IF_ERROR(RequireMediaType(req, {"application/json"}));
  bool dry_run = false;
  auto query = ParseQueryParams(req.query, {"dry_run"});
  if (!query.ok()) return query.error();
  if (auto it = query->find("dry_run"); it != query->end()) {
    if (it->second != "true" && it->second != "false") return Error::Invalid("dry_run takes true or false", "dry_run");
    dry_run = it->second == "true";
  }
  auto spec = DecodeRolloutSpec(req.body, ctx.services.config.environments);
  if (!spec.ok()) return spec.error();
  ctx.audit_params = {{"release", spec->release}, {"environment", spec->selector.environment}};
  ctx.audit_target = "environment/" + spec->selector.environment;

  auto check = CheckIdempotencyKey(ctx, 201);
  if (!check.ok()) return check.error();
  auto prepared = PrepareRollout(*spec, ctx.services.repo, ctx.caller->principal_id, ctx.request_id, ctx.now_ms);
  if (!prepared.ok()) {
    ctx.Authorize("rollout.create", EnvironmentTarget(spec->selector.environment));
    return prepared.error();
  }
  // A rollout is a deploy to each of its stores: the caller must be allowed on every one.
  const core::ApprovalRule* approval = nullptr;
  for (const auto& store : prepared->stores) {
    const auto decision = ctx.Authorize("rollout.create", TargetOf(store));
    if (!decision.allowed) {
      return Error{ErrorCode::kPermissionDenied,
                   "not allowed to perform rollout.create on store '" + store.id + "', which the selector matches",
                   {}};
    }
    if (decision.approval != nullptr && approval == nullptr) approval = decision.approval;
  }
  if (check->answer) return std::move(*check->answer);
  auto route = RouteRun(ctx.services.config.cicd, spec->selector.environment, core::RunKind::kDeploy);
  if (!route.ok()) return route.error();

  if (dry_run) {
    ctx.audit_params["dry_run"] = "true";
    auto body = RolloutJson(prepared->record);
    body["id"] = nullptr;
    body["dry_run"] = true;
    // The preview names the stores of each wave.
    auto& waves = body["waves"].as_array();
    for (std::size_t i = 0; i < waves.size() && i < prepared->plan.waves.size(); ++i) {
      json::array ids;
      for (const auto& id : prepared->plan.waves[i]) ids.emplace_back(id);
      waves[i].as_object()["stores"] = std::move(ids);
    }
    return JsonResponse(200, body);
  }
  auto idem = std::move(check->record);
  if (approval != nullptr) {
    core::Store scope;
    scope.environment = spec->selector.environment;
    auto change = NewChange("rollout.create", scope, ctx.caller->principal_id, req.body, *approval, ctx.now_ms);
    change.target = "environment/" + spec->selector.environment;
    auto params = ctx.audit_params;
    params["stores"] = std::to_string(prepared->stores.size());
    return RecordChangeRequest(ctx, std::move(change), ctx.audit_target, std::move(idem), params);
  }

  const auto location = "/v1/rollouts/" + prepared->record.id;
  const auto body = json::serialize(RolloutJson(prepared->record));
  if (idem) {
    idem->response_body = body;
    idem->location = location;
  }
  auto params = ctx.audit_params;
  params["rollout"] = prepared->record.id;
  params["stores"] = std::to_string(prepared->stores.size());
  params["waves"] = std::to_string(prepared->plan.waves.size());
  db::WriteBatch batch;
  batch.effects.emplace_back(db::InsertRolloutEffect{prepared->record, std::move(prepared->targets)});
  batch.audit.push_back(ctx.Audit("rollout/" + prepared->record.id, "ok", std::move(params)));
  batch.idempotency = idem;
  auto written = ctx.services.repo.Apply(batch);
  if (!written.ok()) {
    if (auto twin = ReplayTwin(ctx, idem, written.error())) return std::move(*twin);
    return written.error();
  }
  ctx.MarkAudited();
  if (ctx.services.rollouts != nullptr) ctx.services.rollouts->Kick();
  Response resp;
  resp.status = 201;
  resp.body = body;
  resp.SetHeader("Content-Type", "application/json");
  resp.SetHeader("Location", location);
  return resp;
}

Result<Response> ListRollouts(RequestContext& ctx) {
  auto params = ParseQueryParams(ctx.request.query, {"environment", "state", "active", "limit", "cursor"});
  if (!params.ok()) return params.error();
  db::Repository::RolloutQuery query;
  for (const auto& [key, value] : *params) {
    if (key == "environment") {
      if (!ctx.services.config.environments.names.contains(value)) {
        return Error::Invalid("unknown environment '" + value + "'", key);
      }
      query.environment = value;
    } else if (key == "state") {
      if (!core::ParseRolloutState(value)) return Error::Invalid("state '" + value + "' is not a rollout state", key);
      query.state = value;
    } else if (key == "active") {
      if (value != "true") return Error::Invalid("active takes only true (omit it for every rollout)", key);
      query.active_only = true;
    } else if (key == "limit") {
      auto n = ParseCount(value, key, 1, 1000);
      if (!n.ok()) return n.error();
      query.limit = static_cast<int>(*n);
    } else if (key == "cursor") {
      query.before_id = value;
    }
  }
  std::map<std::string, bool> visible;  // environment -> may read its rollouts
  auto page = CollectVisible<db::RolloutRecord>(
      query.limit,
      [&](const std::string& cursor) {
        if (!cursor.empty()) query.before_id = cursor;
        return ctx.services.repo.ListRollouts(query);
      },
      [&](const db::RolloutRecord& rollout) {
        auto [it, fresh] = visible.try_emplace(rollout.environment, false);
        if (fresh) {
          it->second =
              core::Decide(ctx.policy, ctx.caller->principal_id, "rollout.read", EnvironmentTarget(rollout.environment))
                  .allowed;
        }
        return it->second;
      },
      [](const db::RolloutRecord& rollout) { return rollout.id; });
  if (!page.ok()) return page.error();
  json::array items;
  for (const auto& rollout : page->items) items.emplace_back(RolloutJson(rollout, WaitingFor(ctx, rollout)));
  const std::string next = page->next;
  ctx.authorized = true;
  ctx.decision = core::Decision{true, "object-scope", "rollouts outside the caller's scope are filtered out", nullptr};
  json::object body{{"items", std::move(items)}};
  body["next_cursor"] = next.empty() ? json::value(nullptr) : json::value(next);
  return JsonResponse(200, body);
}

Result<Response> GetRollout(RequestContext& ctx) {
  auto rollout = LoadRollout(ctx, "rollout.read");
  if (!rollout.ok()) return rollout.error();
  return JsonResponse(200, RolloutJson(*rollout, WaitingFor(ctx, *rollout)));
}

Result<Response> ListTargets(RequestContext& ctx) {
  auto rollout = LoadRollout(ctx, "rollout.read");
  if (!rollout.ok()) return rollout.error();
  auto params = ParseQueryParams(ctx.request.query, {"wave", "state", "limit", "cursor"});
  if (!params.ok()) return params.error();
  db::Repository::RolloutTargetQuery query;
  query.limit = 100;
  for (const auto& [key, value] : *params) {
    if (key == "wave") {
      auto n = ParseCount(value, key, 0, 1'000'000);
      if (!n.ok()) return n.error();
      query.wave = static_cast<int>(*n);
    } else if (key == "state") {
      if (!core::ParseTargetState(value)) return Error::Invalid("state '" + value + "' is not a target state", key);
      query.state = value;
    } else if (key == "limit") {
      auto n = ParseCount(value, key, 1, 1000);
      if (!n.ok()) return n.error();
      query.limit = static_cast<int>(*n);
    } else if (key == "cursor") {
      auto n = ParseCount(value, key, 0, 100'000'000);
      if (!n.ok()) return n.error();
      query.after_position = static_cast<int>(*n);
    }
  }
  auto targets = ctx.services.repo.ListRolloutTargets(rollout->id, query);
  if (!targets.ok()) return targets.error();
  json::array items;
  for (const auto& t : *targets) items.emplace_back(RolloutTargetJson(t));
  json::object body{{"items", std::move(items)}};
  body["next_cursor"] = static_cast<int>(targets->size()) == query.limit && !targets->empty()
                            ? json::value(std::to_string(targets->back().position))
                            : json::value(nullptr);
  return JsonResponse(200, body);
}

Result<Response> QueueCommand(RequestContext& ctx, core::RolloutCommandKind kind) {
  const auto& req = ctx.request;
  core::RolloutCommand command;
  command.kind = kind;
  if (!req.body.empty()) {
    SP_RETURN_IF_ERROR(RequireMediaType(req, {"application/json"}));
    auto object = ParseJsonObject(req.body);
    if (!object.ok()) return object.error();
    FieldReader fields(*object);
    if (kind == core::RolloutCommandKind::kAbort) {
      SP_RETURN_IF_ERROR(fields.RejectUnknown({"rollback"}));
      if (const auto* rollback = object->if_contains("rollback"); rollback != nullptr) {
        if (!rollback->is_bool()) return Error::Invalid("rollback must be true or false", "rollback");
        command.rollback = rollback->as_bool();
      }
    } else if (kind == core::RolloutCommandKind::kApproveWave) {
      SP_RETURN_IF_ERROR(fields.RejectUnknown({"wave"}));
    } else {
      SP_RETURN_IF_ERROR(fields.RejectUnknown({}));
    }
    if (kind == core::RolloutCommandKind::kApproveWave) {
      const auto* wave = object->if_contains("wave");
      if (wave == nullptr || !wave->is_int64() || wave->as_int64() < 0 || wave->as_int64() > 1'000'000) {
        return Error::Invalid("wave is required: the number of the wave awaiting approval", "wave");
      }
      command.wave = static_cast<int>(wave->as_int64());
    }
  } else if (kind == core::RolloutCommandKind::kApproveWave) {
    return Error::Invalid("wave is required: the number of the wave awaiting approval", "wave");
  }
  const std::string action(ctx.action);
  auto rollout = LoadRollout(ctx, action);
  if (!rollout.ok()) return rollout.error();
  ctx.audit_params = {{"command", std::string(core::ToString(kind))}};
  if (kind == core::RolloutCommandKind::kApproveWave) ctx.audit_params["wave"] = std::to_string(command.wave);
  if (kind == core::RolloutCommandKind::kAbort) ctx.audit_params["rollback"] = command.rollback ? "true" : "false";
  if (kind == core::RolloutCommandKind::kApproveWave && rollout->created_by == ctx.caller->principal_id) {
    return Error{ErrorCode::kPermissionDenied,
                 "a wave of a rollout is approved by someone other than its creator ('" + rollout->created_by + "')",
                 {}};
  }
  auto plan = PlanOf(*rollout);
  if (!plan.ok()) return plan.error();
  // A command's check needs only the state and the wave, not the targets.
  auto progress = ProgressOf(*rollout, {});
  if (!progress.ok()) return progress.error();
  // Commands already queued apply first: check against the state they lead to when simple.
  auto queued = ctx.services.repo.ListRolloutCommands(rollout->id);
  if (!queued.ok()) return queued.error();
  for (const auto& q : *queued) {
    if (q.kind == core::ToString(kind) && q.wave == command.wave) {
      return Error{ErrorCode::kConflict, "the same command is already queued for rollout '" + rollout->id + "'", {}};
    }
  }
  if (queued->empty()) SP_RETURN_IF_ERROR(core::CheckRolloutCommand(*plan, *progress, command));

  db::RolloutCommandRecord record;
  record.rollout_id = rollout->id;
  record.kind = std::string(core::ToString(kind));
  record.wave = command.wave;
  record.rollback = command.rollback;
  record.principal_id = ctx.caller->principal_id;
  record.request_id = ctx.request_id;
  record.created_at_ms = ctx.now_ms;
  db::WriteBatch batch;
  batch.effects.emplace_back(db::InsertRolloutCommandEffect{record});
  batch.audit.push_back(ctx.Audit("rollout/" + rollout->id, "ok", ctx.audit_params));
  auto written = ctx.services.repo.Apply(batch);
  if (!written.ok()) return written.error();
  ctx.MarkAudited();
  if (ctx.services.rollouts != nullptr) ctx.services.rollouts->Kick();
  json::object body{
      {"rollout", RolloutJson(*rollout, WaitingFor(ctx, *rollout))},
      {"command", json::object{{"kind", record.kind}, {"wave", command.wave}, {"rollback", command.rollback}}}};
  return JsonResponse(202, body);
}

}  // namespace

void RegisterRolloutHandlers(std::map<std::string, Handler>& by_route) {
  by_route[RouteKey("GET", "/v1/rollouts")] = ListRollouts;
  by_route[RouteKey("POST", "/v1/rollouts")] = CreateRollout;
  by_route[RouteKey("GET", "/v1/rollouts/{id}")] = GetRollout;
  by_route[RouteKey("GET", "/v1/rollouts/{id}/targets")] = ListTargets;
  by_route[RouteKey("POST", "/v1/rollouts/{id}/pause")] = [](RequestContext& ctx) {
    return QueueCommand(ctx, core::RolloutCommandKind::kPause);
  };
  by_route[RouteKey("POST", "/v1/rollouts/{id}/resume")] = [](RequestContext& ctx) {
    return QueueCommand(ctx, core::RolloutCommandKind::kResume);
  };
  by_route[RouteKey("POST", "/v1/rollouts/{id}/abort")] = [](RequestContext& ctx) {
    return QueueCommand(ctx, core::RolloutCommandKind::kAbort);
  };
  by_route[RouteKey("POST", "/v1/rollouts/{id}/approve")] = [](RequestContext& ctx) {
    return QueueCommand(ctx, core::RolloutCommandKind::kApproveWave);
  };
}

}  // namespace storeplane::server
