#include "server/app.h"

#include <chrono>
#include <stdexcept>

#include "server/auth.h"
#include "server/logging.h"
#include "server/metrics.h"
#include "server/problem.h"

namespace storeplane::server {
namespace {

bool WellFormedRequestId(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    const bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
    if (!ok) return false;
  }
  return true;
}

std::int64_t SteadyMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

Error Forbidden(std::string_view principal, std::string_view action) {
  return Error{ErrorCode::kPermissionDenied,
               "principal '" + std::string(principal) + "' is not allowed to perform " + std::string(action),
               {}};
}

}  // namespace

std::int64_t SystemNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::int64_t SteadyNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string RouteKey(std::string_view method, std::string_view path_template) {
  return std::string(method) + " " + std::string(path_template);
}

core::Decision RequestContext::Authorize(std::string_view act, const std::optional<core::AuthzTarget>& target) {
  decision = caller == nullptr ? core::Decision{false, "unauthenticated", "no caller", nullptr}
                               : core::Decide(policy, caller->principal_id, act, target);
  authorized = true;
  decided_action = std::string(act);
  if (services.metrics != nullptr) services.metrics->CountDecision(act, decision);
  if (target && !target->store_id.empty() && audit_target.empty()) audit_target = "store/" + target->store_id;
  return decision;
}

core::AuditEntry RequestContext::Audit(std::string target, std::string outcome,
                                       std::map<std::string, std::string> params) const {
  core::AuditEntry e;
  e.time_ms = now_ms;
  e.principal = caller ? caller->principal_id : "";
  e.source = request.remote;
  e.action = std::string(action);
  // A route of a family ("operation.run.*") records the member it decided
  // ("operation.run.cache.flush"), so the trail names what was actually allowed or denied.
  if (e.action.ends_with(".*") && decided_action.starts_with(e.action.substr(0, e.action.size() - 1))) {
    e.action = decided_action;
  }
  e.target = std::move(target);
  e.request_id = request_id;
  e.decision = !authorized ? "none" : (decision.allowed ? "allow" : "deny");
  e.rule = decision.rule;
  e.outcome = std::move(outcome);
  e.params = std::move(params);
  if (caller && !caller->token_id.empty()) e.params.emplace("token_id", caller->token_id);
  return e;
}

App::App(Services services) : services_(std::move(services)), router_(ApiRouteTable()) {
  std::map<std::string, Handler> by_route;
  RegisterHealthHandlers(by_route, *this);
  RegisterStoreHandlers(by_route);
  RegisterWhoamiHandlers(by_route);
  RegisterTokenHandlers(by_route);
  RegisterChangeHandlers(by_route);
  RegisterAuditHandlers(by_route);
  RegisterAuthzHandlers(by_route);
  RegisterAgentChannelHandlers(by_route);
  RegisterAgentHandlers(by_route);
  RegisterOperationHandlers(by_route);
  RegisterStoreHealthHandlers(by_route);
  RegisterRunHandlers(by_route);
  RegisterWindowHandlers(by_route);
  RegisterRolloutHandlers(by_route);
  RegisterCicdHookHandlers(by_route);
  RegisterEventHandlers(by_route);
  RegisterMetricsHandlers(by_route);
  RegisterUiHandlers(by_route);
  for (const auto& route : ApiRouteTable()) {
    auto it = by_route.find(RouteKey(route.method, route.path_template));
    if (it == by_route.end()) {
      throw std::logic_error("route without a handler: " + RouteKey(route.method, route.path_template));
    }
    if (!route.action.empty() && !route.action.ends_with(".*") && core::FindAction(route.action) == nullptr) {
      throw std::logic_error("route with an action outside the catalog: " + std::string(route.action));
    }
    handlers_[&route] = std::move(it->second);
    by_route.erase(it);
  }
  if (!by_route.empty()) throw std::logic_error("handler without a route: " + by_route.begin()->first);
}

App::~App() = default;

std::string App::RequestIdFor(const Request& request) {
  auto given = request.Header("x-request-id");
  if (WellFormedRequestId(given)) return given;
  return RandomHex(12);
}

bool App::AllowRate(const std::string& principal_id) {
  const auto& limits = services_.config.limits;
  const auto now = SteadyMicros();
  std::lock_guard lock(buckets_mu_);
  auto [it, inserted] = buckets_.try_emplace(principal_id, Bucket{limits.principal_burst, now});
  auto& b = it->second;
  if (!inserted) {
    const double elapsed_s = static_cast<double>(now - b.last_us) / 1e6;
    b.tokens = std::min(limits.principal_burst, b.tokens + elapsed_s * limits.principal_rps);
    b.last_us = now;
  }
  if (b.tokens < 1.0) return false;
  b.tokens -= 1.0;
  return true;
}

Result<Caller> App::Authenticate(const Request& request, std::int64_t now_ms, const core::Policy& policy) {
  const auto token = BearerToken(request.Header("authorization"));
  if (!token) {
    return Error{ErrorCode::kUnauthenticated, "a bearer token is required (Authorization: Bearer <token>)", {}};
  }
  auto found = services_.repo.FindTokenByHash(Sha256Hex(*token));
  if (!found.ok()) return found.error();
  const auto& record = *found;
  // Unknown, revoked and expired tokens get the same answer: nothing to probe.
  if (!record || record->revoked_at_ms || (record->expires_at_ms && *record->expires_at_ms <= now_ms)) {
    return Error{ErrorCode::kUnauthenticated, "the bearer token is not valid", {}};
  }
  Caller caller{record->principal_id, record->id, {}, {}};
  if (auto it = policy.principals.find(caller.principal_id); it != policy.principals.end()) {
    caller.kind = it->second.kind;
    caller.roles = it->second.roles;
  }
  return caller;
}

Result<Response> App::Dispatch(const Request& request, const std::string& request_id, std::int64_t now_ms,
                               std::optional<RequestContext>& ctx, Caller& caller, const core::Policy& policy,
                               bool on_io_thread, const RouteSpec*& matched) {
  const auto match = router_.Match(request.method, request.path);
  matched = match.route;
  if (match.outcome == RouteMatch::Outcome::kNoPath) {
    return Error::NotFound("no resource at " + request.path);
  }
  if (match.outcome == RouteMatch::Outcome::kMethodNotAllowed) {
    std::string allow;
    for (const auto& m : match.allowed_methods) allow += (allow.empty() ? "" : ", ") + m;
    auto resp = ProblemResponse(Error{ErrorCode::kInvalidArgument, request.method + " is not allowed here", {}},
                                request.path, request_id, ProblemKind::kMethodNotAllowed);
    resp.SetHeader("Allow", allow);
    return resp;
  }
  const RouteSpec& route = *match.route;
  // Public routes, and the agent channel, whose handlers authenticate agent credentials
  // themselves: operator tokens mean nothing there.
  if (route.audience != RouteAudience::kOperator) {
    ctx.emplace(RequestContext{request, match.params, nullptr, request_id, now_ms, services_, policy, route.action,
                               on_io_thread && route.io_thread});
    return handlers_.at(&route)(*ctx);
  }

  auto authed = Authenticate(request, now_ms, policy);
  if (!authed.ok()) return authed.error();
  caller = std::move(authed.value());
  if (!AllowRate(caller.principal_id)) {
    return Error{ErrorCode::kResourceExhausted, "request rate limit exceeded for this principal", {}};
  }
  ctx.emplace(RequestContext{request, match.params, &caller, request_id, now_ms, services_, policy, route.action});
  const auto* info = core::FindAction(route.action);
  const bool family = route.action.ends_with(".*");  // the handler decides the concrete action
  if (!family && (info == nullptr || !info->store_scoped)) {
    if (!ctx->Authorize(route.action, std::nullopt).allowed) return Forbidden(caller.principal_id, route.action);
  }
  auto result = handlers_.at(&route)(*ctx);
  if (result.ok() && result->status < 400 && !ctx->authorized) {
    // Fail closed: a store-scoped handler that did not decide must not succeed.
    log::Error("handler skipped authorization", {{"request_id", request_id}, {"action", route.action}});
    return Error::Internal("the request could not be authorized");
  }
  return result;
}

bool App::RunsOnIoThread(const Request& request) const {
  const auto match = router_.Match(request.method, request.path);
  // Operator routes write their audit record in Handle: never on the I/O thread.
  return match.outcome == RouteMatch::Outcome::kMatched && match.route->io_thread &&
         match.route->audience != RouteAudience::kOperator;
}

Response App::Handle(const Request& request) { return HandleOn(request, false); }

Response App::HandleOnIoThread(const Request& request) { return HandleOn(request, true); }

Response App::HandleOn(const Request& request, bool on_io_thread) {
  const auto started = SteadyMicros();
  const auto request_id = RequestIdFor(request);
  const auto now_ms = services_.now_ms();
  const auto policy = services_.policy.Get();
  std::optional<RequestContext> ctx;
  Caller caller;
  Response response;
  const RouteSpec* route = nullptr;  // the matched route, for the metrics
  try {
    auto result = Dispatch(request, request_id, now_ms, ctx, caller, *policy, on_io_thread, route);
    if (result.ok()) {
      response = std::move(result.value());
    } else {
      const auto& err = result.error();
      if (err.code == ErrorCode::kInternal || err.code == ErrorCode::kUnavailable) {
        log::Error("request failed", {{"request_id", request_id}, {"detail", err.message}});
      }
      response = ProblemResponse(err, request.path, request_id);
      if (response.status == 401 && (request.path.starts_with("/v1/") || request.path == "/metrics")) {
        response.SetHeader("WWW-Authenticate", "Bearer realm=\"storeplane\"");
      }
    }
  } catch (const std::exception& e) {
    log::Error("unhandled exception in handler", {{"request_id", request_id}, {"detail", e.what()}});
    response = ProblemResponse(Error::Internal("an internal error occurred"), request.path, request_id);
  }

  // One audit record for every authenticated action that the handler did not record itself.
  if (ctx && ctx->caller != nullptr && !ctx->audited) {
    std::string outcome = "ok";
    if (ctx->authorized && !ctx->decision.allowed) {
      outcome = "denied";
    } else if (response.status >= 400) {
      outcome = "error:" + std::to_string(response.status);
    }
    const bool quiet_read = outcome == "ok" && request.method == "GET" && !services_.config.audit.record_reads;
    if (!quiet_read) {
      auto entry = ctx->Audit(ctx->audit_target, outcome, ctx->audit_params);
      if (auto s = services_.repo.AppendAudit(entry, false); !s.ok()) {
        log::Error("audit append failed", {{"request_id", request_id}, {"detail", s.error().message}});
      }
    }
  }

  response.SetHeader("X-Request-Id", request_id);
  const auto duration_us = SteadyMicros() - started;
  // A deferred answer (long-poll) is not answered yet: it counts when its handler runs again.
  if (services_.metrics != nullptr && !response.wait) {
    services_.metrics->ObserveRequest(route, request.method, response.status, static_cast<double>(duration_us) / 1e6);
  }
  log::Info("request", {{"request_id", request_id},
                        {"method", request.method},
                        {"path", request.path},
                        {"status", response.status},
                        {"duration_us", duration_us},
                        {"principal", caller.principal_id},
                        {"remote", request.remote}});
  return response;
}

}  // namespace storeplane::server
