#include "server/store_actions.h"

#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "server/auth.h"
#include "server/json_body.h"
#include "server/rollout_requests.h"
#include "server/run_requests.h"

namespace storeplane::server {
namespace json = boost::json;

Result<core::Store> DecodeRegistration(std::string_view body, const core::EnvironmentSet& environments,
                                       std::int64_t now_ms) {
  auto object = ParseJsonObject(body);
  if (!object.ok()) return object.error();
  FieldReader fields(*object);
  SP_RETURN_IF_ERROR(fields.RejectUnknown({"id", "name", "environment", "isolation_mode", "labels"}));
  auto id = fields.RequiredString("id");
  if (!id.ok()) return id.error();
  auto name = fields.OptionalString("name");
  if (!name.ok()) return name.error();
  auto env = fields.RequiredString("environment");
  if (!env.ok()) return env.error();
  auto mode = fields.RequiredString("isolation_mode");
  if (!mode.ok()) return mode.error();
  auto labels = fields.OptionalStringMap("labels");
  if (!labels.ok()) return labels.error();
  core::StoreRegistration reg{*id, name->value_or(""), *env, *mode, labels->value_or(core::Labels{})};
  return core::NewStore(reg, environments, now_ms);
}

Result<core::StorePatch> DecodeStorePatch(std::string_view body) {
  auto object = ParseJsonObject(body);
  if (!object.ok()) return object.error();
  FieldReader fields(*object);
  SP_RETURN_IF_ERROR(fields.RejectUnknown({"name", "labels"}));
  core::StorePatch patch;
  auto name = fields.OptionalString("name");
  if (!name.ok()) return name.error();
  if (object->contains("name") && !*name) return Error::Invalid("name cannot be removed", "name");
  patch.name = std::move(*name);
  auto labels = fields.OptionalStringMap("labels");
  if (!labels.ok()) return labels.error();
  // A JSON null for labels removes them all.
  if (object->contains("labels")) patch.labels = labels->value_or(core::Labels{});
  SP_RETURN_IF_ERROR(core::ValidatePatch(patch));
  return patch;
}

core::AuthzTarget TargetOf(const core::Store& store) { return {store.id, store.environment, store.labels}; }

std::string LabelChangeBody(std::string_view patch_body, std::int64_t expected_version) {
  boost::system::error_code ec;
  auto patch = json::parse(patch_body, ec);
  return json::serialize(json::object{{"expected_version", expected_version}, {"patch", ec ? json::value() : patch}});
}

db::ChangeRequest NewChange(std::string_view action, const core::Store& store, std::string requester,
                            std::string request_body, const core::ApprovalRule& rule, std::int64_t now_ms) {
  db::ChangeRequest c;
  c.id = "chg_" + RandomHex(12);
  c.action = std::string(action);
  c.target = "store/" + store.id;
  c.environment = store.environment;
  c.requester = std::move(requester);
  c.request_body = std::move(request_body);
  c.approval_rule = rule.id;
  c.approvals_needed = rule.approvals;
  c.status = "pending";
  c.created_at_ms = now_ms;
  c.expires_at_ms = now_ms + rule.expires_after_ms;
  c.version = 1;
  return c;
}

std::optional<std::string> BreakGlassReasonOf(const db::ChangeRequest& change) {
  if (change.approval_rule != core::kBreakGlassRule) return std::nullopt;
  auto kind = RunKindOfAction(change.action);
  if (!kind) return std::nullopt;
  auto request = DecodeRunRequest(*kind, change.request_body);
  if (!request.ok()) return std::nullopt;
  return request->break_glass_reason;
}

Result<std::vector<db::Effect>> EffectsForChange(const db::ChangeRequest& change, db::Repository& repo,
                                                 const Config& config, const core::Policy& policy,
                                                 std::int64_t now_ms) {
  const auto store_id = change.target.substr(std::string_view("store/").size());
  if (change.action == "rollout.create") {
    // The stores are selected again now: the plan is the one of the moment it runs.
    auto spec = DecodeRolloutSpec(change.request_body, config.environments);
    if (!spec.ok()) return spec.error();
    auto prepared = PrepareRollout(*spec, repo, change.requester, "", now_ms);
    if (!prepared.ok()) return prepared.error();
    return std::vector<db::Effect>{db::InsertRolloutEffect{std::move(prepared->record), std::move(prepared->targets)}};
  }
  if (change.action == "store.register") {
    auto store = DecodeRegistration(change.request_body, config.environments, now_ms);
    if (!store.ok()) return store.error();
    return std::vector<db::Effect>{db::InsertStoreEffect{std::move(*store)}};
  }
  if (auto kind = RunKindOfAction(change.action)) {
    auto request = DecodeRunRequest(*kind, change.request_body);
    if (!request.ok()) return request.error();
    auto store = repo.GetStore(store_id);
    if (!store.ok()) return store.error();
    if (change.approval_rule != core::kBreakGlassRule) {
      const auto window = core::DecideWindow(policy.windows, change.action, store->environment, now_ms);
      if (!window.open) return WindowClosedError(window, change.action, store->environment);
    }
    RunPlanInput input;
    input.request = &*request;
    input.store = &*store;
    input.requested_by = change.requester;
    input.reason = "approved change " + change.id;
    input.now_ms = now_ms;
    auto plan = PlanRun(input, config.cicd, repo);
    if (!plan.ok()) return plan.error();
    return std::move(plan->effects);
  }
  if (change.action == "store.label") {
    auto object = ParseJsonObject(change.request_body);
    if (!object.ok()) return object.error();
    const auto* version = object->if_contains("expected_version");
    const auto* patch_body = object->if_contains("patch");
    if (version == nullptr || !version->is_int64() || patch_body == nullptr) {
      return Error::Internal("change " + change.id + " holds a malformed request");
    }
    auto patch = DecodeStorePatch(json::serialize(*patch_body));
    if (!patch.ok()) return patch.error();
    auto current = repo.GetStore(store_id);
    if (!current.ok()) return current.error();
    if (current->version != version->as_int64()) {
      return Error{ErrorCode::kPreconditionFailed,
                   "store '" + current->id + "' changed since the request (version " +
                       std::to_string(current->version) + ", requested against " + std::to_string(version->as_int64()) +
                       ")",
                   {}};
    }
    return std::vector<db::Effect>{db::UpdateStoreEffect{core::ApplyPatch(*current, *patch, now_ms), current->version}};
  }
  return Error{ErrorCode::kConflict, "changes to " + change.action + " cannot be executed by this server", {}};
}

}  // namespace storeplane::server
