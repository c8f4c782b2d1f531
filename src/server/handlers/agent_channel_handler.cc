// /agent/v1: the agent channel. Agents enroll with a one-time token, then authenticate
// with their own credential (never an operator token), send heartbeats, long-poll for
// their store's operations and report outcomes. An agent sees and answers only its own
// store's operations. Enrollment, rotation and reports are audited as the agent's acts.
#include <boost/json/parse.hpp>
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
#include "server/logging.h"
#include "server/metrics.h"

namespace storeplane::server {
namespace {

namespace json = boost::json;

constexpr std::size_t kMaxAgentBodyBytes = 64 * 1024;
constexpr std::int64_t kMaxPollWaitMs = 30'000;

Error Unauthenticated(std::string message) { return Error{ErrorCode::kUnauthenticated, std::move(message), {}}; }

AgentHub& Hub(RequestContext& ctx) {
  if (ctx.services.agents == nullptr) throw std::logic_error("the agent hub is not configured");
  return *ctx.services.agents;
}

Status CheckBody(const Request& req) {
  if (req.body.size() > kMaxAgentBodyBytes) {
    return Error{ErrorCode::kPayloadTooLarge, "agent messages are limited to 64 KiB", {}};
  }
  return RequireMediaType(req, {"application/json"});
}

// The calling agent, from its credential; rate-limited per agent.
Result<AgentIdentity> AuthenticateAgent(RequestContext& ctx) {
  const auto token = BearerToken(ctx.request.Header("authorization"));
  if (!token || !token->starts_with("spa_")) return Unauthenticated("an agent credential is required");
  auto agent = Hub(ctx).Authenticate(*token);
  if (!agent) return Unauthenticated("the agent credential is not valid");
  if (!Hub(ctx).AllowRate(agent->store_id)) {
    return Error{ErrorCode::kResourceExhausted, "request rate limit exceeded for this agent", {}};
  }
  return *agent;
}

Result<Response> Enroll(RequestContext& ctx) {
  // Enrollment has no credential yet: its attempts are limited per peer address instead.
  const auto& remote = ctx.request.remote;
  if (!Hub(ctx).AllowRate("enroll@" + remote.substr(0, remote.rfind(':')))) {
    return Error{ErrorCode::kResourceExhausted, "too many enrollment attempts from this address", {}};
  }
  SP_RETURN_IF_ERROR(CheckBody(ctx.request));
  auto request = protocol::DecodeEnrollRequest(ctx.request.body);
  if (!request.ok()) return request.error();
  auto& repo = ctx.services.repo;
  // One answer for every way a token can be wrong, so that probing learns nothing.
  const auto refused = Unauthenticated("the enrollment token is not valid for this store");
  auto token = repo.FindEnrollmentTokenByHash(Sha256Hex(request->enrollment_token));
  if (!token.ok()) return token.error();
  if (!*token || (*token)->store_id != request->store_id || (*token)->used_at_ms ||
      (*token)->expires_at_ms <= ctx.now_ms) {
    log::Info("enrollment refused", {{"request_id", ctx.request_id}, {"store", request->store_id}});
    return refused;
  }
  auto store = repo.GetStore(request->store_id);
  if (!store.ok()) return store.error();
  if (store->state == core::StoreState::kDecommissioned) {
    return Error{ErrorCode::kConflict, "store '" + store->id + "' is decommissioned", {}};
  }
  const auto credential = GenerateSecret("spa_");
  db::AgentRecord agent;
  agent.store_id = store->id;
  agent.id = "agt_" + RandomHex(12);
  agent.credential_hash = Sha256Hex(credential);
  agent.enrolled_at_ms = ctx.now_ms;
  agent.agent_version = request->agent_version;
  db::WriteBatch batch;
  batch.effects.emplace_back(db::EnrollAgentEffect{(*token)->id, ctx.now_ms, agent});
  batch.audit.push_back(AgentAuditEntry(ctx.now_ms, store->id, ctx.request.remote, ctx.request_id, "agent.enrolled",
                                        "ok", {{"agent_id", agent.id}, {"enrollment_token", (*token)->id}}));
  auto written = repo.Apply(batch);
  if (!written.ok()) {
    if (written.error().code == ErrorCode::kConflict) return refused;  // used concurrently
    return written.error();
  }
  Hub(ctx).OnEnrolled(agent, *store);
  log::Info("agent enrolled", {{"request_id", ctx.request_id}, {"store", store->id}, {"agent_id", agent.id}});
  protocol::EnrollResponse response;
  response.agent_id = agent.id;
  response.store_id = store->id;
  response.credential = credential;
  response.heartbeat_interval_s = static_cast<int>(Hub(ctx).options().heartbeat_interval_ms / 1000);
  Response resp;
  resp.status = 201;
  resp.body = protocol::Encode(response);
  return resp;
}

Result<Response> Heartbeat(RequestContext& ctx) {
  auto agent = AuthenticateAgent(ctx);
  if (!agent.ok()) return agent.error();
  SP_RETURN_IF_ERROR(CheckBody(ctx.request));
  auto heartbeat = protocol::DecodeHeartbeat(ctx.request.body);
  if (!heartbeat.ok()) return heartbeat.error();
  Response resp;
  const auto ack = Hub(ctx).RecordHeartbeat(*agent, *heartbeat, ctx.on_io_thread ? &resp.finish_on_worker : nullptr);
  if (ctx.services.metrics != nullptr) ctx.services.metrics->CountHeartbeat();
  resp.body = protocol::Encode(ack);
  return resp;
}

struct PollQuery {
  std::string session;
  std::int64_t wait_ms = 25'000;
};

Result<PollQuery> ParsePollQuery(const Request& req) {
  auto params = ParseQueryParams(req.query, {"session", "wait_ms"});
  if (!params.ok()) return params.error();
  PollQuery q;
  for (const auto& [key, value] : *params) {
    if (key == "session") {
      const bool hex = value.find_first_not_of("0123456789abcdef") == std::string::npos;
      if (!hex || value.size() < 16 || value.size() > 64) {
        return Error::Invalid("session must be 16 to 64 lowercase hex characters", key);
      }
      q.session = value;
    } else if (key == "wait_ms") {
      auto wait = ParseCount(value, key, 0, kMaxPollWaitMs);
      if (!wait.ok()) return wait.error();
      q.wait_ms = *wait;
    }
  }
  if (q.session.empty()) return Error::Invalid("session is required", "session");
  return q;
}

// Long-poll: subscribe first, then look, so that an operation queued in between wakes us.
Result<Response> PollOperations(RequestContext& ctx) {
  auto agent = AuthenticateAgent(ctx);
  if (!agent.ok()) return agent.error();
  auto query = ParsePollQuery(ctx.request);
  if (!query.ok()) return query.error();
  auto& hub = Hub(ctx);
  auto wakeup = hub.Subscribe(agent->store_id);
  auto taken = hub.TakeDeliverable(*agent, query->session);
  if (!taken.ok()) return taken.error();
  if (!taken->empty()) {
    std::vector<protocol::OperationEnvelope> envelopes;
    for (const auto& op : *taken) {
      protocol::OperationEnvelope e;
      e.id = op.id;
      e.name = core::ParseOperationName(op.name).value_or(core::OperationName::kHealthProbe);
      boost::system::error_code ec;
      auto params = protocol::ParamsFromJson(e.name, json::parse(op.params_json, ec));
      if (ec || !params.ok() || !core::ParseOperationName(op.name)) {
        return Error::Internal("operation " + op.id + " is stored in a shape this server cannot send");
      }
      e.params = std::move(params.value());
      e.timeout_s = op.timeout_s;
      e.expires_at_ms = op.expires_at_ms;
      envelopes.push_back(std::move(e));
      log::Info("operation delivered", {{"request_id", ctx.request_id},
                                        {"operation", op.id},
                                        {"store", op.store_id},
                                        {"delivery", op.delivery_count}});
    }
    Response resp;
    resp.body = protocol::Encode(envelopes);
    return resp;
  }
  Response resp;
  if (ctx.request.wait_expired || query->wait_ms == 0) {
    resp.status = 204;
    resp.content_type.clear();
    return resp;
  }
  resp.wait = std::move(wakeup);
  resp.wait_ms = query->wait_ms;
  return resp;
}

Result<Response> ReportResult(RequestContext& ctx) {
  auto agent = AuthenticateAgent(ctx);
  if (!agent.ok()) return agent.error();
  SP_RETURN_IF_ERROR(CheckBody(ctx.request));
  auto& repo = ctx.services.repo;
  const auto& id = ctx.params.at("id");
  auto op = repo.GetOperation(id);
  // Another store's operation does not exist for this agent.
  if (!op.ok() && op.error().code == ErrorCode::kNotFound) return Error::NotFound("no operation '" + id + "'");
  if (!op.ok()) return op.error();
  if (op->store_id != agent->store_id) return Error::NotFound("no operation '" + id + "'");
  const auto name = core::ParseOperationName(op->name);
  const auto state = core::ParseOperationState(op->state);
  if (!name || !state) return Error::Internal("operation " + id + " is stored in an unknown shape");
  auto report = protocol::DecodeOperationReport(*name, ctx.request.body);
  if (!report.ok()) return report.error();
  auto next = core::TransitionOperation(
      *state, report->succeeded ? core::OperationEvent::kSucceed : core::OperationEvent::kFail);
  if (!next.ok()) {
    return Error{ErrorCode::kConflict, "operation " + id + " is " + op->state + "; its outcome is already known", {}};
  }
  db::OperationRecord updated = *op;
  updated.state = std::string(core::ToString(*next));
  updated.code = report->succeeded ? "" : report->code;
  updated.result_json = report->succeeded ? json::serialize(protocol::ResultToJson(report->result)) : "";
  updated.finished_at_ms = ctx.now_ms;
  updated.version = op->version + 1;
  db::WriteBatch batch;
  batch.effects.emplace_back(db::UpdateOperationEffect{updated, op->version});
  if (report->succeeded) {
    batch.effects.emplace_back(db::UpsertLastSuccessEffect{{op->store_id, "operation", op->name, ctx.now_ms, op->id}});
  }
  std::map<std::string, std::string> params = {{"operation", op->id},
                                               {"name", op->name},
                                               {"outcome", updated.state},
                                               {"duration_ms", std::to_string(report->duration_ms)}};
  if (!updated.code.empty()) params["code"] = updated.code;
  batch.audit.push_back(AgentAuditEntry(ctx.now_ms, agent->store_id, ctx.request.remote, ctx.request_id,
                                        "operation.report", "ok", std::move(params)));
  auto written = repo.Apply(batch);
  if (!written.ok()) {
    if (written.error().code == ErrorCode::kPreconditionFailed) {
      return Error{ErrorCode::kConflict, "operation " + id + " changed meanwhile; report again", {}};
    }
    return written.error();
  }
  Hub(ctx).OnOperationFinished(updated);
  log::Info("operation finished", {{"request_id", ctx.request_id},
                                   {"operation", id},
                                   {"store", op->store_id},
                                   {"name", op->name},
                                   {"state", updated.state},
                                   {"code", updated.code}});
  return JsonResponse(200, OperationJson(written->operations.at(0)));
}

Result<Response> RotateCredential(RequestContext& ctx) {
  auto agent = AuthenticateAgent(ctx);
  if (!agent.ok()) return agent.error();
  const auto credential = GenerateSecret("spa_");
  const auto hash = Sha256Hex(credential);
  db::WriteBatch batch;
  batch.effects.emplace_back(db::RotateAgentCredentialEffect{agent->store_id, agent->agent_id, hash, ctx.now_ms});
  batch.audit.push_back(AgentAuditEntry(ctx.now_ms, agent->store_id, ctx.request.remote, ctx.request_id,
                                        "agent.credential.rotate", "ok", {{"agent_id", agent->agent_id}}));
  auto written = ctx.services.repo.Apply(batch);
  if (!written.ok()) return written.error();
  Hub(ctx).OnRotated(agent->store_id, hash, ctx.now_ms);
  Response resp;
  resp.body = json::serialize(json::object{{"credential", credential}});
  return resp;
}

}  // namespace

void RegisterAgentChannelHandlers(std::map<std::string, Handler>& by_route) {
  by_route[RouteKey("POST", "/agent/v1/enroll")] = Enroll;
  by_route[RouteKey("POST", "/agent/v1/heartbeat")] = Heartbeat;
  by_route[RouteKey("GET", "/agent/v1/operations")] = PollOperations;
  by_route[RouteKey("POST", "/agent/v1/operations/{id}/result")] = ReportResult;
  by_route[RouteKey("POST", "/agent/v1/credential/rotate")] = RotateCredential;
}

}  // namespace storeplane::server
