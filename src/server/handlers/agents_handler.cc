// The operator's side of agents: enrollment tokens for a store (one-time, expiring,
// stored hashed), the agents with their availability and health, and revocation of a
// store's agent credential. Each is decided against the store as target.
#include <boost/json/array.hpp>
#include <boost/json/serialize.hpp>

#include "core/time_format.h"
#include "server/agent_hub.h"
#include "server/agent_views.h"
#include "server/api_json.h"
#include "server/app.h"
#include "server/auth.h"
#include "server/handler_support.h"
#include "server/json_body.h"
#include "server/store_actions.h"

namespace storeplane::server {
namespace {

namespace json = boost::json;

constexpr std::int64_t kDefaultEnrollmentTtlS = 3600;
constexpr std::int64_t kMaxEnrollmentTtlS = 7 * 24 * 3600;

AgentHub& Hub(RequestContext& ctx) {
  if (ctx.services.agents == nullptr) throw std::logic_error("the agent hub is not configured");
  return *ctx.services.agents;
}

Error Forbidden(std::string_view action) {
  return Error{ErrorCode::kPermissionDenied, "not allowed to perform " + std::string(action), {}};
}

Result<std::int64_t> DecodeTtl(const Request& req) {
  if (req.body.empty()) return kDefaultEnrollmentTtlS;
  SP_RETURN_IF_ERROR(RequireMediaType(req, {"application/json"}));
  auto body = ParseJsonObject(req.body);
  if (!body.ok()) return body.error();
  SP_RETURN_IF_ERROR(FieldReader(*body).RejectUnknown({"ttl_s"}));
  if (!body->contains("ttl_s")) return kDefaultEnrollmentTtlS;
  const auto& v = body->at("ttl_s");
  if (!v.is_int64() || v.as_int64() < 60 || v.as_int64() > kMaxEnrollmentTtlS) {
    return Error::Invalid("ttl_s must be an integer from 60 to " + std::to_string(kMaxEnrollmentTtlS), "ttl_s");
  }
  return v.as_int64();
}

Result<Response> CreateEnrollmentToken(RequestContext& ctx) {
  auto ttl = DecodeTtl(ctx.request);
  if (!ttl.ok()) return ttl.error();
  auto store = LoadStoreFor(ctx, ctx.params.at("id"), "agent.enroll");
  if (!store.ok()) return store.error();
  SP_RETURN_IF_ERROR(AuthorizeWithoutApproval(ctx, "agent.enroll", *store));
  if (store->state == core::StoreState::kDecommissioned) {
    return Error{ErrorCode::kConflict, "store '" + store->id + "' is decommissioned; it takes no agent", {}};
  }
  const auto token = GenerateSecret("spe_");
  db::EnrollmentToken record;
  record.id = "enr_" + RandomHex(12);
  record.token_hash = Sha256Hex(token);
  record.store_id = store->id;
  record.created_by = ctx.caller->principal_id;
  record.created_at_ms = ctx.now_ms;
  record.expires_at_ms = ctx.now_ms + *ttl * 1000;
  db::WriteBatch batch;
  batch.effects.emplace_back(db::InsertEnrollmentTokenEffect{record});
  batch.audit.push_back(
      ctx.Audit("store/" + store->id, "ok", {{"enrollment_token", record.id}, {"ttl_s", std::to_string(*ttl)}}));
  auto written = ctx.services.repo.Apply(batch);
  if (!written.ok()) return written.error();
  ctx.MarkAudited();
  json::object body{{"id", record.id},
                    {"token", token},
                    {"store_id", store->id},
                    {"expires_at", core::FormatRfc3339Millis(record.expires_at_ms)}};
  auto resp = JsonResponse(201, body);
  return resp;
}

Result<Response> ListAgents(RequestContext& ctx) {
  if (!ctx.request.query.empty()) return Error::Invalid("this list takes no query parameters", "query");
  // Object scope: agents of stores the caller may not see agents of are left out.
  json::array items;
  for (const auto& view : Hub(ctx).ViewAll()) {
    auto store = ctx.services.repo.GetStore(view.record.store_id);
    if (!store.ok()) continue;
    if (!core::Decide(ctx.policy, ctx.caller->principal_id, "agent.read", TargetOf(*store)).allowed) continue;
    items.emplace_back(AgentJson(view));
  }
  ctx.authorized = true;
  ctx.decision = core::Decision{true, "object-scope", "agents outside the caller's scope are filtered out", nullptr};
  return JsonResponse(200, json::object{{"items", std::move(items)}});
}

Result<Response> GetAgent(RequestContext& ctx) {
  auto store = LoadStoreFor(ctx, ctx.params.at("id"), "agent.read");
  if (!store.ok()) return store.error();
  if (!ctx.Authorize("agent.read", TargetOf(*store)).allowed) return Forbidden("agent.read");
  auto view = Hub(ctx).View(store->id);
  if (!view) return Error::NotFound("store '" + store->id + "' has no enrolled agent");
  return JsonResponse(200, AgentJson(*view));
}

Result<Response> RevokeAgent(RequestContext& ctx) {
  auto store = LoadStoreFor(ctx, ctx.params.at("id"), "agent.revoke");
  if (!store.ok()) return store.error();
  SP_RETURN_IF_ERROR(AuthorizeWithoutApproval(ctx, "agent.revoke", *store));
  auto& repo = ctx.services.repo;
  auto agent = repo.GetAgent(store->id);
  if (!agent.ok()) return agent.error();
  if (!*agent) return Error::NotFound("store '" + store->id + "' has no enrolled agent");
  if ((*agent)->revoked_at_ms) {
    return Error{ErrorCode::kConflict, "the agent of store '" + store->id + "' is already revoked", {}};
  }
  db::WriteBatch batch;
  batch.effects.emplace_back(db::RevokeAgentEffect{store->id, ctx.now_ms});
  // What was waiting for this agent will never run: it fails now, on the record.
  auto open = repo.ListOpenOperations();
  if (!open.ok()) return open.error();
  std::vector<db::OperationRecord> failed;
  for (const auto& op : *open) {
    if (op.store_id != store->id) continue;
    db::OperationRecord updated = op;
    updated.state = std::string(core::ToString(core::OperationState::kFailed));
    updated.code = "agent_revoked";
    updated.finished_at_ms = ctx.now_ms;
    updated.version = op.version + 1;
    batch.effects.emplace_back(db::UpdateOperationEffect{updated, op.version});
    failed.push_back(updated);
  }
  batch.audit.push_back(ctx.Audit("store/" + store->id, "ok",
                                  {{"agent_id", (*agent)->id}, {"failed_operations", std::to_string(failed.size())}}));
  auto written = repo.Apply(batch);
  if (!written.ok()) return written.error();
  ctx.MarkAudited();
  Hub(ctx).OnRevoked(store->id, ctx.now_ms);
  for (const auto& op : failed) Hub(ctx).OnOperationFinished(op);
  auto view = Hub(ctx).View(store->id);
  if (!view) return Error::Internal("the revoked agent vanished");
  return JsonResponse(200, AgentJson(*view));
}

}  // namespace

void RegisterAgentHandlers(std::map<std::string, Handler>& by_route) {
  by_route[RouteKey("POST", "/v1/stores/{id}/enrollment-tokens")] = CreateEnrollmentToken;
  by_route[RouteKey("GET", "/v1/agents")] = ListAgents;
  by_route[RouteKey("GET", "/v1/stores/{id}/agent")] = GetAgent;
  by_route[RouteKey("DELETE", "/v1/stores/{id}/agent")] = RevokeAgent;
}

}  // namespace storeplane::server
