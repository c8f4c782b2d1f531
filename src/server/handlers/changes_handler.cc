// /v1/changes: change requests that wait for approval (two-person rule). Approval is by a
// different principal holding the rule's approver role; the last approval executes the
// action exactly once, in the same transaction that marks the change executed and records
// the requester, the approver and the execution in the audit trail.
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include "server/agent_hub.h"
#include "server/api_json.h"
#include "server/app.h"
#include "server/json_body.h"
#include "server/run_coordinator.h"
#include "server/run_requests.h"
#include "server/store_actions.h"

namespace storeplane::server {
namespace {

namespace json = boost::json;

// A pending change past its expiry is expired, whether or not that was written down yet.
db::ChangeRequest Effective(db::ChangeRequest change, std::int64_t now_ms) {
  if (change.status == "pending" && now_ms >= change.expires_at_ms) change.status = "expired";
  return change;
}

// The store a change acts on, as the authority sees it: the stored one, or for a
// registration the store the request describes.
Result<core::AuthzTarget> TargetOfChange(const db::ChangeRequest& change, RequestContext& ctx) {
  // A change about a whole environment (a fleet rollout) is decided against the environment.
  constexpr std::string_view kEnvironment = "environment/";
  if (change.target.starts_with(kEnvironment)) return core::AuthzTarget{"", change.environment, {}};
  const auto id = change.target.substr(std::string_view("store/").size());
  auto store = ctx.services.repo.GetStore(id);
  if (store.ok()) return TargetOf(*store);
  if (store.error().code != ErrorCode::kNotFound) return store.error();
  auto described = DecodeRegistration(change.request_body, ctx.services.config.environments, change.created_at_ms);
  if (!described.ok()) return core::AuthzTarget{id, change.environment, {}};
  return TargetOf(*described);
}

Result<db::ChangeRequest> LoadChange(RequestContext& ctx) {
  const auto& id = ctx.params.at("id");
  ctx.audit_target = "change/" + id;
  return ctx.services.repo.GetChange(id);
}

Result<Response> ListChanges(RequestContext& ctx) {
  std::optional<std::string> status;
  std::int64_t limit = 100;
  auto params = ParseQueryParams(ctx.request.query, {"status", "limit"});
  if (!params.ok()) return params.error();
  for (const auto& [key, value] : *params) {
    if (key == "status") {
      if (value != "pending" && value != "executed" && value != "rejected" && value != "expired" && value != "failed") {
        return Error::Invalid("status must be pending, executed, rejected, expired or failed", key);
      }
      status = value;
    } else if (key == "limit") {
      auto n = ParseCount(value, key, 1, 1000);
      if (!n.ok()) return n.error();
      limit = *n;
    }
  }
  // Expired changes may still be stored as pending: filter on the effective status.
  const std::optional<std::string> stored_status = status == "expired" ? std::optional<std::string>("pending") : status;
  auto changes = ctx.services.repo.ListChanges(stored_status, static_cast<int>(limit));
  if (!changes.ok()) return changes.error();
  json::array items;
  for (const auto& c : *changes) {
    auto effective = Effective(c, ctx.now_ms);
    if (status && effective.status != *status && !(*status == "expired" && c.status == "expired")) continue;
    items.emplace_back(ChangeJson(effective));
  }
  return JsonResponse(200, json::object{{"items", std::move(items)}});
}

Result<Response> GetChange(RequestContext& ctx) {
  auto change = LoadChange(ctx);
  if (!change.ok()) return change.error();
  return JsonResponse(200, ChangeJson(Effective(*change, ctx.now_ms)));
}

// Writes an expired change down as expired, and answers 409.
Result<Response> RefuseExpired(RequestContext& ctx, db::ChangeRequest change) {
  const auto expected = change.version;
  change.status = "expired";
  change.outcome = "expired before enough approvals";
  change.version += 1;
  db::WriteBatch batch;
  batch.effects.emplace_back(db::UpdateChangeEffect{change, expected});
  batch.audit.push_back(ctx.Audit(ctx.audit_target, "error:409", {{"reason", "expired"}}));
  if (ctx.services.repo.Apply(batch).ok()) ctx.MarkAudited();
  return Error{ErrorCode::kConflict, "change '" + change.id + "' expired and can no longer be approved", {}};
}

Result<Response> ApproveChange(RequestContext& ctx) {
  auto loaded = LoadChange(ctx);
  if (!loaded.ok()) return loaded.error();
  auto change = *loaded;
  const auto& approver = ctx.caller->principal_id;
  auto target = TargetOfChange(change, ctx);
  if (!target.ok()) return target.error();

  const core::ApprovalRule* rule = nullptr;
  const auto break_glass_reason = BreakGlassReasonOf(change);
  if (change.approval_rule == core::kBreakGlassRule) {
    auto usable = BreakGlassRule(ctx.policy, nullptr);
    if (usable.ok()) rule = &ctx.policy.break_glass;
  }
  for (const auto& r : ctx.policy.approvals) {
    if (r.id == change.approval_rule) rule = &r;
  }
  if (rule == nullptr) {
    ctx.Authorize("change.approve", *target);
    return Error{
        ErrorCode::kConflict, "the approval rule of change '" + change.id + "' is no longer in the policy", {}};
  }
  ctx.decision = core::DecideApproval(ctx.policy, *rule, approver, change.requester, *target);
  // A break-glass change also stands for the normal approval the request needs (one round,
  // not two): the approver must be eligible under that rule as well.
  if (ctx.decision.allowed && change.approval_rule == core::kBreakGlassRule) {
    const auto normal = core::Decide(ctx.policy, change.requester, change.action, *target);
    if (normal.approval != nullptr && normal.approval->approver_role != rule->approver_role) {
      ctx.decision = core::DecideApproval(ctx.policy, *normal.approval, approver, change.requester, *target);
    }
  }
  std::map<std::string, std::string> bg_params;
  if (break_glass_reason) bg_params = {{"break_glass", "true"}, {"break_glass_reason", *break_glass_reason}};
  ctx.audit_params = bg_params;
  ctx.authorized = true;
  if (!ctx.decision.allowed) {
    const bool self = approver == change.requester;
    return Error{ErrorCode::kPermissionDenied,
                 self ? "change.approve refused: a change cannot be approved by the principal that requested it"
                      : "principal '" + approver + "' is not allowed to perform change.approve on this change",
                 {}};
  }
  // Separation of duties also across tokens: a token that the requester created for
  // someone else cannot approve the requester's change.
  auto token = ctx.services.repo.GetToken(ctx.caller->token_id);
  if (!token.ok()) return token.error();
  if (!*token || (*token)->created_by == change.requester) {
    ctx.decision = core::Decision{false, "separation-of-duties", "token created by the requester", nullptr};
    return Error{
        ErrorCode::kPermissionDenied, "change.approve refused: this token was created by the change's requester", {}};
  }
  if (change.status != "pending") {
    return Error{ErrorCode::kConflict, "change '" + change.id + "' is " + change.status + ", not pending", {}};
  }
  if (ctx.now_ms >= change.expires_at_ms) return RefuseExpired(ctx, change);
  for (const auto& a : change.approvers) {
    if (a == approver) return Error{ErrorCode::kConflict, "principal '" + approver + "' already approved", {}};
  }

  const auto expected = change.version;
  change.approvers.push_back(approver);
  change.version += 1;
  db::WriteBatch batch;
  auto approve_params = bg_params;
  approve_params["requester"] = change.requester;
  batch.audit.push_back(ctx.Audit(ctx.audit_target, "ok", approve_params));
  if (static_cast<int>(change.approvers.size()) >= change.approvals_needed) {
    auto effects = EffectsForChange(change, ctx.services.repo, ctx.services.config, ctx.policy, ctx.now_ms);
    if (effects.ok()) {
      change.status = "executed";
      change.outcome = "executed after approval by " + approver;
      for (auto& effect : *effects) batch.effects.push_back(std::move(effect));
      // The execution itself, on behalf of the requester.
      auto run_params = bg_params;
      run_params["change"] = change.id;
      run_params["approved_by"] = approver;
      core::AuditEntry run = ctx.Audit(change.target, "ok", run_params);
      run.principal = change.requester;
      run.action = change.action;
      run.rule = change.approval_rule;
      batch.audit.push_back(std::move(run));
    } else {
      change.status = "failed";
      change.outcome = effects.error().message;
    }
  }
  batch.effects.insert(batch.effects.begin(), db::UpdateChangeEffect{change, expected});
  auto written = ctx.services.repo.Apply(batch);
  if (!written.ok()) {
    auto now = ctx.services.repo.GetChange(change.id);
    if (now.ok() && now->version != expected) {
      return Error{ErrorCode::kConflict, "change '" + change.id + "' changed concurrently; read it again", {}};
    }
    if (written.error().code == ErrorCode::kUnavailable || written.error().code == ErrorCode::kInternal) {
      return written.error();
    }
    // The action itself was refused (e.g. the id was taken meanwhile): the change failed.
    change.status = "failed";
    change.outcome = written.error().message;
    db::WriteBatch failed;
    failed.effects.emplace_back(db::UpdateChangeEffect{change, expected});
    failed.audit.push_back(ctx.Audit(ctx.audit_target, "error:execution", {{"requester", change.requester}}));
    auto recorded = ctx.services.repo.Apply(failed);
    if (!recorded.ok()) return recorded.error();
    ctx.MarkAudited();
    return JsonResponse(200, ChangeJson(recorded->changes.empty() ? change : recorded->changes.front()));
  }
  ctx.MarkAudited();
  // A lifecycle change that became a run: its trigger goes out now, and the agent hub
  // learns the store's new state.
  if (ctx.services.runs != nullptr && !written->runs.empty()) ctx.services.runs->Kick();
  if (ctx.services.agents != nullptr) {
    for (const auto& store : written->stores) ctx.services.agents->OnStoreChanged(store);
  }
  return JsonResponse(200, ChangeJson(written->changes.empty() ? change : written->changes.front()));
}

Result<Response> RejectChange(RequestContext& ctx) {
  auto loaded = LoadChange(ctx);
  if (!loaded.ok()) return loaded.error();
  auto change = *loaded;
  std::string reason;
  if (!ctx.request.body.empty()) {
    SP_RETURN_IF_ERROR(RequireMediaType(ctx.request, {"application/json"}));
    auto object = ParseJsonObject(ctx.request.body);
    if (!object.ok()) return object.error();
    FieldReader fields(*object);
    SP_RETURN_IF_ERROR(fields.RejectUnknown({"reason"}));
    auto r = fields.OptionalString("reason");
    if (!r.ok()) return r.error();
    reason = r->value_or("");
    if (reason.size() > 500) return Error::Invalid("reason is limited to 500 bytes", "reason");
  }
  auto target = TargetOfChange(change, ctx);
  if (!target.ok()) return target.error();
  // The requester may withdraw its own change; anyone else needs change.reject.
  const auto decision = ctx.Authorize("change.reject", *target);
  if (!decision.allowed && ctx.caller->principal_id != change.requester) {
    return Error{ErrorCode::kPermissionDenied, "not allowed to perform change.reject on this change", {}};
  }
  if (!decision.allowed) ctx.decision = core::Decision{true, "requester-withdraws", "", nullptr};
  if (Effective(change, ctx.now_ms).status != "pending") {
    return Error{ErrorCode::kConflict,
                 "change '" + change.id + "' is " + Effective(change, ctx.now_ms).status + ", not pending",
                 {}};
  }
  const auto expected = change.version;
  change.status = "rejected";
  change.outcome = reason.empty() ? "rejected by " + ctx.caller->principal_id
                                  : "rejected by " + ctx.caller->principal_id + ": " + reason;
  change.version += 1;
  db::WriteBatch batch;
  batch.effects.emplace_back(db::UpdateChangeEffect{change, expected});
  batch.audit.push_back(ctx.Audit(ctx.audit_target, "ok", {{"requester", change.requester}}));
  auto written = ctx.services.repo.Apply(batch);
  if (!written.ok()) return written.error();
  ctx.MarkAudited();
  return JsonResponse(200, ChangeJson(written->changes.empty() ? change : written->changes.front()));
}

}  // namespace

void RegisterChangeHandlers(std::map<std::string, Handler>& by_route) {
  by_route[RouteKey("GET", "/v1/changes")] = ListChanges;
  by_route[RouteKey("GET", "/v1/changes/{id}")] = GetChange;
  by_route[RouteKey("POST", "/v1/changes/{id}/approve")] = ApproveChange;
  by_route[RouteKey("POST", "/v1/changes/{id}/reject")] = RejectChange;
}

}  // namespace storeplane::server
