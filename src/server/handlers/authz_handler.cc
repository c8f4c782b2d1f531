// POST /v1/authz/explain: "may principal P do action A on target T, and by which rule?"
// Decides against the policy in force without acting.
#include <boost/json/object.hpp>

#include "server/api_json.h"
#include "server/app.h"
#include "server/json_body.h"
#include "server/store_actions.h"

namespace storeplane::server {
namespace {

namespace json = boost::json;

Result<Response> Explain(RequestContext& ctx) {
  SP_RETURN_IF_ERROR(RequireMediaType(ctx.request, {"application/json"}));
  auto object = ParseJsonObject(ctx.request.body);
  if (!object.ok()) return object.error();
  FieldReader fields(*object);
  SP_RETURN_IF_ERROR(fields.RejectUnknown({"principal", "action", "target"}));
  auto principal = fields.RequiredString("principal");
  if (!principal.ok()) return principal.error();
  auto action = fields.RequiredString("action");
  if (!action.ok()) return action.error();
  if (core::FindAction(*action) == nullptr) return Error::Invalid("unknown action '" + *action + "'", "action");

  std::optional<core::AuthzTarget> target;
  if (const auto* t = object->if_contains("target"); t != nullptr && !t->is_null()) {
    if (!t->is_object()) return Error::Invalid("target must be an object", "target");
    FieldReader tf(t->as_object());
    SP_RETURN_IF_ERROR(tf.RejectUnknown({"store", "environment", "labels"}));
    auto store_id = tf.OptionalString("store");
    if (!store_id.ok()) return store_id.error();
    if (*store_id) {
      if (t->as_object().contains("environment") || t->as_object().contains("labels")) {
        return Error::Invalid("target takes either store or environment and labels", "target");
      }
      if (!core::ValidateStoreId(**store_id).ok()) return Error::NotFound("no store '" + **store_id + "'");
      auto store = ctx.services.repo.GetStore(**store_id);
      if (!store.ok()) return store.error();
      target = TargetOf(*store);
    } else {
      auto env = tf.RequiredString("environment");
      if (!env.ok()) return Error::Invalid("target needs store, or environment (and labels)", "target");
      auto labels = tf.OptionalStringMap("labels");
      if (!labels.ok()) return labels.error();
      target = core::AuthzTarget{"", *env, labels->value_or(core::Labels{})};
    }
  }
  const auto decision = core::Decide(ctx.policy, *principal, *action, target);
  json::value approval = nullptr;
  if (decision.allowed && decision.approval != nullptr) {
    approval = json::object{{"rule", decision.approval->id},
                            {"approvals", decision.approval->approvals},
                            {"approver_role", decision.approval->approver_role}};
  }
  ctx.audit_params = {{"principal", *principal}, {"action", *action}};
  return JsonResponse(
      200,
      json::object{
          {"allowed", decision.allowed}, {"rule", decision.rule}, {"reason", decision.reason}, {"approval", approval}});
}

}  // namespace

void RegisterAuthzHandlers(std::map<std::string, Handler>& by_route) {
  by_route[RouteKey("POST", "/v1/authz/explain")] = Explain;
}

}  // namespace storeplane::server
