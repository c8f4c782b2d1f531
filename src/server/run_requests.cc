#include "server/run_requests.h"

#include <algorithm>

#include "core/labels.h"
#include "core/lifecycle.h"
#include "core/time_format.h"
#include "server/auth.h"
#include "server/json_body.h"

namespace storeplane::server {

std::string_view ActionOfRunKind(core::RunKind kind) {
  switch (kind) {
    case core::RunKind::kProvision: return "store.provision";
    case core::RunKind::kDeploy: return "deploy.request";
    case core::RunKind::kRollback: return "rollback.request";
    case core::RunKind::kDecommission: return "store.decommission";
    case core::RunKind::kIsolationMigration: return "isolation.migrate";
  }
  return "";
}

std::optional<core::RunKind> RunKindOfAction(std::string_view action) {
  for (auto kind : core::AllRunKinds()) {
    if (ActionOfRunKind(kind) == action) return kind;
  }
  return std::nullopt;
}

Status ValidateBreakGlassReason(std::string_view reason) {
  constexpr char kField[] = "break_glass.reason";
  if (reason.size() < 10 || reason.size() > 500) {
    return Error::Invalid("break_glass.reason must be 10 to 500 bytes: say why this cannot wait", kField);
  }
  for (char c : reason) {
    if (static_cast<unsigned char>(c) < 0x20 && c != ' ') {
      return Error::Invalid("break_glass.reason may not contain control characters", kField);
    }
  }
  // The control plane never holds secrets: each word goes through the labels' heuristics.
  std::size_t start = 0;
  while (start < reason.size()) {
    std::size_t end = reason.find(' ', start);
    if (end == std::string_view::npos) end = reason.size();
    if (end > start) {
      if (Status s = core::CheckNotSecretLike("reason", reason.substr(start, end - start)); !s) {
        return Error::Invalid(
            "break_glass.reason holds something that looks like a secret; the control plane "
            "never stores secrets",
            kField);
      }
    }
    start = end + 1;
  }
  return Status::Ok();
}

namespace {

// "break_glass": {"reason": "..."} from a request body, when present.
Status DecodeBreakGlass(const boost::json::object& object, RunRequest& request) {
  const auto* value = object.if_contains("break_glass");
  if (value == nullptr || value->is_null()) return Status::Ok();
  if (!value->is_object()) return Error::Invalid("break_glass must be an object {\"reason\": \"...\"}", "break_glass");
  FieldReader fields(value->as_object());
  SP_RETURN_IF_ERROR(fields.RejectUnknown({"reason"}));
  auto reason = fields.RequiredString("reason");
  if (!reason.ok()) return Error::Invalid("break_glass needs a reason", "break_glass.reason");
  SP_RETURN_IF_ERROR(ValidateBreakGlassReason(*reason));
  request.break_glass_reason = *reason;
  return Status::Ok();
}

}  // namespace

Error WindowClosedError(const core::WindowDecision& decision, std::string_view action, std::string_view environment) {
  std::string message = std::string(action) + " in " + std::string(environment) + " is outside its deploy window (" +
                        decision.reason + "); ";
  message += decision.next_open_at ? "it opens at " + core::FormatRfc3339Millis(*decision.next_open_at)
                                   : std::string("it does not open within 366 days");
  message += ". A request with break_glass becomes a change request for an approver";
  return Error{ErrorCode::kConflict, std::move(message), {}};
}

Result<core::ApprovalRule> BreakGlassRule(const core::Policy& policy, const core::ApprovalRule* normal) {
  core::ApprovalRule rule = policy.break_glass;
  const auto role = policy.roles.find(rule.approver_role);
  if (role == policy.roles.end() || !core::RoleCanApprove(role->second)) {
    return Error{ErrorCode::kConflict,
                 "break-glass is not available: the policy has no role '" + rule.approver_role +
                     "' allowed change.approve (see break_glass in the policy file)",
                 {}};
  }
  if (normal != nullptr) rule.approvals = std::max(rule.approvals, normal->approvals);
  return rule;
}

Result<RunRequest> DecodeRunRequest(core::RunKind kind, std::string_view body) {
  RunRequest request;
  request.kind = kind;
  if (body.empty() && kind != core::RunKind::kDeploy && kind != core::RunKind::kIsolationMigration) return request;
  auto object = ParseJsonObject(body);
  if (!object.ok()) return object.error();
  FieldReader fields(*object);
  SP_RETURN_IF_ERROR(DecodeBreakGlass(*object, request));
  switch (kind) {
    case core::RunKind::kProvision:
    case core::RunKind::kDecommission: SP_RETURN_IF_ERROR(fields.RejectUnknown({"break_glass"})); break;
    case core::RunKind::kDeploy: {
      SP_RETURN_IF_ERROR(fields.RejectUnknown({"release", "break_glass"}));
      auto release = fields.RequiredString("release");
      if (!release.ok()) return release.error();
      SP_RETURN_IF_ERROR(core::ValidateReleaseId(*release));
      request.release = *release;
      break;
    }
    case core::RunKind::kRollback: {
      SP_RETURN_IF_ERROR(fields.RejectUnknown({"release", "break_glass"}));
      auto release = fields.OptionalString("release");
      if (!release.ok()) return release.error();
      if (*release) {
        SP_RETURN_IF_ERROR(core::ValidateReleaseId(**release));
        request.release = **release;
      }
      break;
    }
    case core::RunKind::kIsolationMigration: {
      SP_RETURN_IF_ERROR(fields.RejectUnknown({"isolation_mode", "break_glass"}));
      auto mode = fields.RequiredString("isolation_mode");
      if (!mode.ok()) return mode.error();
      auto parsed = core::ParseIsolationMode(*mode);
      if (!parsed) return Error::Invalid("isolation_mode must be shared, dedicated or isolated", "isolation_mode");
      request.target_isolation = *parsed;
      break;
    }
  }
  return request;
}

Result<std::string> RouteRun(const CicdConfig& config, const std::string& environment, core::RunKind kind) {
  const std::string kind_text(core::ToString(kind));
  for (const auto& route : config.routes) {
    if (!route.environments.empty() && !route.environments.contains(environment)) continue;
    if (!route.kinds.empty() && !route.kinds.contains(kind_text)) continue;
    return route.provider;
  }
  return Error{ErrorCode::kConflict,
               "no CI/CD provider is configured for " + kind_text + " in " + environment + " (cicd.routes)",
               {}};
}

Result<RunPlan> PlanRun(const RunPlanInput& input, const CicdConfig& config, db::Repository& repo) {
  const auto& request = *input.request;
  const auto& store = *input.store;
  db::Repository::RunQuery query;
  query.store_id = store.id;
  query.active_only = true;
  query.limit = 1;
  auto active = repo.ListRuns(query);
  if (!active.ok()) return active.error();

  core::RunRequestCheck check;
  check.kind = request.kind;
  check.store = &store;
  check.other_run_active = !active->empty();
  check.release = request.release;
  check.target_isolation = request.target_isolation;
  check.isolation_mismatch = input.isolation_mismatch;
  SP_RETURN_IF_ERROR(core::CheckRunRequest(check));
  // A named rollback target must be a release this store was verified on before.
  if (request.kind == core::RunKind::kRollback && request.release) {
    auto verified = repo.ListVerifiedReleases(store.id, 1000);
    if (!verified.ok()) return verified.error();
    if (std::find(verified->begin(), verified->end(), *request.release) == verified->end()) {
      return Error{ErrorCode::kConflict,
                   "release '" + *request.release + "' was never verified on store '" + store.id +
                       "'; a rollback goes back to a verified release",
                   {}};
    }
  }
  auto provider = RouteRun(config, store.environment, request.kind);
  if (!provider.ok()) return provider.error();

  RunPlan plan;
  auto& run = plan.run;
  run.id = "run_" + RandomHex(12);
  run.store_id = store.id;
  run.kind = std::string(core::ToString(request.kind));
  run.state = std::string(core::ToString(core::RunState::kPending));
  run.active = true;
  if (request.kind == core::RunKind::kDeploy) run.release = *request.release;
  if (request.kind == core::RunKind::kRollback) {
    run.release = request.release ? *request.release : store.last_known_good_release.value_or("");
  }
  run.previous_release = store.current_release.value_or("");
  if (request.target_isolation) run.target_isolation = std::string(core::ToString(*request.target_isolation));
  run.provider = *provider;
  run.requested_by = input.requested_by;
  run.request_id = input.request_id;
  run.reason = input.reason;
  run.created_at_ms = input.now_ms;
  run.updated_at_ms = input.now_ms;
  run.deadline_ms = input.now_ms + static_cast<std::int64_t>(config.run_timeout_s) * 1000;
  run.version = 1;

  db::OutboxEntry outbox;
  outbox.run_id = run.id;
  outbox.provider = run.provider;
  outbox.created_at_ms = input.now_ms;
  outbox.next_attempt_at_ms = input.now_ms;
  outbox.version = 1;
  plan.effects.emplace_back(db::InsertRunEffect{run, outbox});

  if (auto event = core::LifecycleEventAtRequest(request.kind)) {
    auto next = core::Transition(store.state, *event);
    if (!next.ok()) return next.error();
    core::Store updated = store;
    updated.state = *next;
    updated.version = store.version + 1;
    updated.updated_at_ms = input.now_ms;
    plan.effects.emplace_back(db::UpdateStoreEffect{updated, store.version});
  }
  return plan;
}

}  // namespace storeplane::server
