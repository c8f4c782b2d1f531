// /v1/stores/{id}/operations: request an operation from the closed catalog for a store's
// agent, and follow it. Requesting operation N is the action operation.run.N, decided
// against the store. The control plane refuses to queue what the agent would refuse: a
// store without a live credential, or an operation outside the agent's advertised
// allow-list. Queued operations wake the agent's long-poll at once.
#include <boost/json/array.hpp>
#include <boost/json/serialize.hpp>
#include <set>

#include "core/operation.h"
#include "protocol/agent_wire.h"
#include "server/agent_hub.h"
#include "server/agent_views.h"
#include "server/api_json.h"
#include "server/app.h"
#include "server/auth.h"
#include "server/handler_support.h"
#include "server/json_body.h"
#include "server/problem.h"
#include "server/store_actions.h"

namespace storeplane::server {
namespace {

namespace json = boost::json;

constexpr std::int64_t kDefaultExpiresInS = 300;
constexpr std::int64_t kMaxExpiresInS = 24 * 3600;

AgentHub& Hub(RequestContext& ctx) {
  if (ctx.services.agents == nullptr) throw std::logic_error("the agent hub is not configured");
  return *ctx.services.agents;
}

struct OperationRequest {
  core::OperationName name;
  core::OperationParams params;
  std::int64_t expires_in_s = kDefaultExpiresInS;
};

Result<OperationRequest> DecodeOperationRequest(std::string_view text) {
  auto body = ParseJsonObject(text);
  if (!body.ok()) return body.error();
  SP_RETURN_IF_ERROR(FieldReader(*body).RejectUnknown({"name", "params", "expires_in_s"}));
  auto name_text = FieldReader(*body).RequiredString("name");
  if (!name_text.ok()) return name_text.error();
  const auto name = core::ParseOperationName(*name_text);
  if (!name) {
    return Error::Invalid("'" + *name_text + "' is not an operation of the catalog (docs/OPERATIONS.md)", "name");
  }
  OperationRequest request{*name, {}, kDefaultExpiresInS};
  const json::value params = body->contains("params") ? body->at("params") : json::value(nullptr);
  auto decoded = protocol::ParamsFromJson(*name, params);
  if (!decoded.ok()) return decoded.error();
  request.params = std::move(decoded.value());
  if (body->contains("expires_in_s")) {
    const auto& v = body->at("expires_in_s");
    if (!v.is_int64() || v.as_int64() < 10 || v.as_int64() > kMaxExpiresInS) {
      return Error::Invalid("expires_in_s must be an integer from 10 to " + std::to_string(kMaxExpiresInS),
                            "expires_in_s");
    }
    request.expires_in_s = v.as_int64();
  }
  return request;
}

// Whether the store's agent would take the operation; a conflict naming why not.
Status CheckAgentAccepts(AgentHub& hub, const core::Store& store, core::OperationName name) {
  auto view = hub.View(store.id);
  if (!view) return Error{ErrorCode::kConflict, "store '" + store.id + "' has no enrolled agent", {}};
  if (view->record.revoked_at_ms) {
    return Error{ErrorCode::kConflict, "the agent of store '" + store.id + "' is revoked", {}};
  }
  if (!view->record.last_seen_ms) {
    return Error{ErrorCode::kConflict,
                 "the agent of store '" + store.id + "' has not reported its allow-list yet (no heartbeat)",
                 {}};
  }
  const auto& allowed = view->record.allowed_operations;
  if (std::find(allowed.begin(), allowed.end(), core::ToString(name)) == allowed.end()) {
    std::string list;
    for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
    return Error{ErrorCode::kConflict,
                 "the agent of store '" + store.id + "' does not allow " + std::string(core::ToString(name)) +
                     " (its local allow-list: " + (list.empty() ? "empty" : list) + ")",
                 {}};
  }
  return Status::Ok();
}

Result<Response> RequestOperation(RequestContext& ctx) {
  const auto& req = ctx.request;
  SP_RETURN_IF_ERROR(RequireMediaType(req, {"application/json"}));
  auto& repo = ctx.services.repo;
  const auto& principal = ctx.caller->principal_id;
  // The body first: a name outside the catalog is unrepresentable, whatever the store.
  auto request = DecodeOperationRequest(req.body);
  if (!request.ok()) return request.error();
  const auto action = core::OperationAction(request->name);
  auto store = LoadStoreFor(ctx, ctx.params.at("id"), action);
  if (!store.ok()) return store.error();

  auto check = CheckIdempotencyKey(ctx, 202);
  if (!check.ok()) return check.error();
  if (check->answer) {
    // A replay acts on nothing, but answers as the original did: the caller must still
    // be allowed what it asked for.
    if (!ctx.Authorize(action, TargetOf(*store)).allowed) {
      return Error{ErrorCode::kPermissionDenied, "not allowed to perform " + action, {}};
    }
    return std::move(*check->answer);
  }
  auto idem = std::move(check->record);
  ctx.audit_params = {{"name", std::string(core::ToString(request->name))}};
  SP_RETURN_IF_ERROR(AuthorizeWithoutApproval(ctx, action, *store));
  if (store->state == core::StoreState::kDecommissioned) {
    return Error{ErrorCode::kConflict, "store '" + store->id + "' is decommissioned", {}};
  }
  SP_RETURN_IF_ERROR(CheckAgentAccepts(Hub(ctx), *store, request->name));

  db::OperationRecord op;
  op.id = "op_" + RandomHex(12);
  op.store_id = store->id;
  op.name = std::string(core::ToString(request->name));
  op.params_json = json::serialize(protocol::ParamsToJson(request->name, request->params));
  op.state = std::string(core::ToString(core::OperationState::kQueued));
  op.requested_by = principal;
  op.request_id = ctx.request_id;
  op.created_at_ms = ctx.now_ms;
  op.expires_at_ms = ctx.now_ms + request->expires_in_s * 1000;
  op.timeout_s = core::SpecOf(request->name).default_timeout_s;
  const auto location = req.path + "/" + op.id;
  if (idem) {
    idem->response_body = json::serialize(OperationJson(op));
    idem->location = location;
  }
  ctx.audit_params["operation"] = op.id;
  db::WriteBatch batch;
  batch.effects.emplace_back(db::InsertOperationEffect{op});
  batch.audit.push_back(ctx.Audit("store/" + store->id, "ok", ctx.audit_params));
  batch.idempotency = idem;
  auto written = repo.Apply(batch);
  if (!written.ok()) {
    if (auto twin = ReplayTwin(ctx, idem, written.error())) return std::move(*twin);
    return written.error();
  }
  ctx.MarkAudited();
  Hub(ctx).OnOperationQueued(written->operations.at(0));
  auto resp = JsonResponse(202, OperationJson(written->operations.at(0)));
  resp.SetHeader("Location", location);
  return resp;
}

Result<Response> ListOperations(RequestContext& ctx) {
  auto store = LoadStoreFor(ctx, ctx.params.at("id"), "operation.read");
  if (!store.ok()) return store.error();
  if (!ctx.Authorize("operation.read", TargetOf(*store)).allowed) {
    return Error{ErrorCode::kPermissionDenied, "not allowed to perform operation.read", {}};
  }
  auto params = ParseQueryParams(ctx.request.query, {"limit", "cursor"});
  if (!params.ok()) return params.error();
  int limit = 50;
  std::string before;
  for (const auto& [key, value] : *params) {
    if (key == "limit") {
      auto n = ParseCount(value, key, 1, 1000);
      if (!n.ok()) return n.error();
      limit = static_cast<int>(*n);
    } else if (key == "cursor") {
      if (!value.starts_with("op_") || value.size() > 67)
        return Error::Invalid("cursor is not one this server issued", key);
      before = value;
    }
  }
  // One more than asked tells whether there is a next page (at the cap, a full page may).
  const int fetch = limit < 1000 ? limit + 1 : limit;
  auto ops = ctx.services.repo.ListOperations(store->id, before, fetch);
  if (!ops.ok()) return ops.error();
  json::array items;
  const bool more = static_cast<int>(ops->size()) > limit || (limit == 1000 && ops->size() == 1000);
  if (more) ops->resize(static_cast<std::size_t>(limit));
  for (const auto& op : *ops) items.emplace_back(OperationJson(op));
  json::object body{{"items", std::move(items)}};
  body["next_cursor"] = more ? json::value(ops->back().id) : json::value(nullptr);
  return JsonResponse(200, body);
}

Result<Response> GetOperation(RequestContext& ctx) {
  auto store = LoadStoreFor(ctx, ctx.params.at("id"), "operation.read");
  if (!store.ok()) return store.error();
  if (!ctx.Authorize("operation.read", TargetOf(*store)).allowed) {
    return Error{ErrorCode::kPermissionDenied, "not allowed to perform operation.read", {}};
  }
  const auto& id = ctx.params.at("op");
  auto op = ctx.services.repo.GetOperation(id);
  if (!op.ok() && op.error().code == ErrorCode::kNotFound) return Error::NotFound("no operation '" + id + "'");
  if (!op.ok()) return op.error();
  if (op->store_id != store->id) return Error::NotFound("no operation '" + id + "' on store '" + store->id + "'");
  return JsonResponse(200, OperationJson(*op));
}

}  // namespace

void RegisterOperationHandlers(std::map<std::string, Handler>& by_route) {
  by_route[RouteKey("POST", "/v1/stores/{id}/operations")] = RequestOperation;
  by_route[RouteKey("GET", "/v1/stores/{id}/operations")] = ListOperations;
  by_route[RouteKey("GET", "/v1/stores/{id}/operations/{op}")] = GetOperation;
}

}  // namespace storeplane::server
