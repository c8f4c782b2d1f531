#include "server/handler_support.h"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "core/authority.h"
#include "server/api_json.h"
#include "server/auth.h"
#include "server/problem.h"
#include "server/store_actions.h"

namespace storeplane::server {

namespace json = boost::json;

Error NoSuchStore(std::string_view id) { return Error::NotFound("no store '" + std::string(id) + "'"); }

Result<core::Store> LoadVisibleStore(RequestContext& ctx, const std::string& id) {
  return LoadStoreFor(ctx, id, "store.read");
}

Result<core::Store> LoadStoreFor(RequestContext& ctx, const std::string& id, std::string_view action) {
  if (!core::ValidateStoreId(id).ok()) return NoSuchStore(id);
  auto store = ctx.services.repo.GetStore(id);
  if (!store.ok()) return store.error();
  const auto& principal = ctx.caller->principal_id;
  const auto target = TargetOf(*store);
  if (!core::Decide(ctx.policy, principal, "store.read", target).allowed &&
      (action == "store.read" || !core::Decide(ctx.policy, principal, action, target).allowed)) {
    ctx.Authorize(action, target);  // recorded as the denial it is
    return NoSuchStore(id);
  }
  return store;
}

Status AuthorizeWithoutApproval(RequestContext& ctx, std::string_view action, const core::Store& store) {
  const auto decision = ctx.Authorize(action, TargetOf(store));
  if (!decision.allowed) {
    return Error{ErrorCode::kPermissionDenied, "not allowed to perform " + std::string(action), {}};
  }
  if (decision.approval != nullptr) {
    return Error{ErrorCode::kConflict,
                 std::string(action) + " on store '" + store.id + "' needs approval (rule " + decision.approval->id +
                     "), and operations and agent credentials cannot wait for approval yet",
                 {}};
  }
  return Status::Ok();
}

Status ValidateIdempotencyKey(std::string_view key) {
  if (key.empty() || key.size() > 255)
    return Error::Invalid("Idempotency-Key must be 1..255 characters", "Idempotency-Key");
  for (char c : key) {
    if (c < '!' || c > '~') return Error::Invalid("Idempotency-Key must be printable ASCII", "Idempotency-Key");
  }
  return Status::Ok();
}

Response Replay(const db::IdempotencyRecord& rec) {
  Response resp;
  resp.status = rec.status;
  resp.body = rec.response_body;
  if (!rec.location.empty()) resp.SetHeader("Location", rec.location);
  boost::system::error_code ec;
  auto body = json::parse(rec.response_body, ec);
  if (!ec && rec.status == 201 && body.is_object() && body.as_object().contains("version")) {
    resp.SetHeader("ETag", "\"" + json::serialize(body.as_object().at("version")) + "\"");
  }
  resp.SetHeader("Idempotent-Replayed", "true");
  return resp;
}

Result<IdempotencyCheck> CheckIdempotencyKey(RequestContext& ctx, int status) {
  const auto& req = ctx.request;
  IdempotencyCheck check;
  if (!req.HasHeader("idempotency-key")) return check;
  const auto key = req.Header("idempotency-key");
  SP_RETURN_IF_ERROR(ValidateIdempotencyKey(key));
  const auto& principal = ctx.caller->principal_id;
  check.record = db::IdempotencyRecord{
      principal, key, Sha256Hex(req.method + " " + req.path + "\n" + req.body), status, {}, {}, ctx.now_ms};
  auto prior = ctx.services.repo.FindIdempotency(principal, key);
  if (!prior.ok()) return prior.error();
  if (*prior) {
    if ((*prior)->request_hash != check.record->request_hash) {
      check.answer = ProblemResponse(Error::Invalid("Idempotency-Key '" + key + "' was used for a different request"),
                                     req.path, ctx.request_id, ProblemKind::kIdempotencyKeyReused);
    } else {
      check.answer = Replay(**prior);
    }
  }
  return check;
}

std::optional<Response> ReplayTwin(RequestContext& ctx, const std::optional<db::IdempotencyRecord>& record,
                                   const Error& error) {
  if (!record || (error.code != ErrorCode::kAlreadyExists && error.code != ErrorCode::kConflict)) return std::nullopt;
  auto prior = ctx.services.repo.FindIdempotency(record->principal_id, record->key);
  if (prior.ok() && *prior && (*prior)->request_hash == record->request_hash) return Replay(**prior);
  return std::nullopt;
}

Result<Response> RequestApproval(RequestContext& ctx, const core::Store& store, std::string request_body,
                                 std::optional<db::IdempotencyRecord> idem) {
  return RequestApproval(ctx, store, std::move(request_body), std::move(idem), *ctx.decision.approval, {});
}

Result<Response> RequestApproval(RequestContext& ctx, const core::Store& store, std::string request_body,
                                 std::optional<db::IdempotencyRecord> idem, const core::ApprovalRule& rule,
                                 const std::map<std::string, std::string>& audit_params) {
  return RecordChangeRequest(
      ctx, NewChange(ctx.action, store, ctx.caller->principal_id, std::move(request_body), rule, ctx.now_ms),
      "store/" + store.id, std::move(idem), audit_params);
}

Result<Response> RecordChangeRequest(RequestContext& ctx, db::ChangeRequest change, const std::string& audit_target,
                                     std::optional<db::IdempotencyRecord> idem,
                                     const std::map<std::string, std::string>& audit_params) {
  const auto location = "/v1/changes/" + change.id;
  const auto body = boost::json::serialize(ChangeJson(change));
  if (idem) {
    idem->status = 202;
    idem->response_body = body;
    idem->location = location;
  }
  db::WriteBatch batch;
  auto params = audit_params;
  params["change"] = change.id;
  batch.audit.push_back(ctx.Audit(audit_target, "pending_approval", std::move(params)));
  batch.effects.emplace_back(db::InsertChangeEffect{std::move(change)});
  batch.idempotency = std::move(idem);
  auto written = ctx.services.repo.Apply(batch);
  if (!written.ok()) return written.error();
  ctx.MarkAudited();
  Response resp;
  resp.status = 202;
  resp.body = body;
  resp.SetHeader("Location", location);
  return resp;
}

core::AuditEntry SystemAuditEntry(std::int64_t now_ms, std::string action, std::string target, std::string outcome,
                                  std::map<std::string, std::string> params) {
  core::AuditEntry e;
  e.time_ms = now_ms;
  e.principal = "system";
  e.source = "internal";
  e.action = std::move(action);
  e.target = std::move(target);
  e.decision = "allow";
  e.rule = "system";
  e.outcome = std::move(outcome);
  e.params = std::move(params);
  return e;
}

core::AuditEntry AgentAuditEntry(std::int64_t now_ms, const std::string& store_id, std::string source,
                                 std::string request_id, std::string action, std::string outcome,
                                 std::map<std::string, std::string> params) {
  core::AuditEntry e;
  e.time_ms = now_ms;
  e.principal = "agent:" + store_id;
  e.source = std::move(source);
  e.action = std::move(action);
  e.target = "store/" + store_id;
  e.request_id = std::move(request_id);
  e.decision = "allow";
  e.rule = "agent-credential";
  e.outcome = std::move(outcome);
  e.params = std::move(params);
  return e;
}

}  // namespace storeplane::server
