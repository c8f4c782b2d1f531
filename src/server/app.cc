#include "server/app.h"

#include <chrono>
#include <stdexcept>

#include "server/auth.h"
#include "server/logging.h"
#include "server/problem.h"

namespace storeplane::server {
namespace {

class AdminOnlyAuthorizer final : public Authorizer {
 public:
  Status Authorize(const db::Principal& principal, std::string_view action,
                   const RequestContext& /*ctx*/) const override {
    for (const auto& role : principal.roles) {
      if (role == "admin") return Status::Ok();
    }
    return Error{ErrorCode::kPermissionDenied, "not allowed to perform " + std::string(action), {}};
  }
};

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

}  // namespace

std::int64_t SystemNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string RouteKey(std::string_view method, std::string_view path_template) {
  return std::string(method) + " " + std::string(path_template);
}

App::App(Services services)
    : services_(std::move(services)), router_(ApiRouteTable()), authorizer_(std::make_unique<AdminOnlyAuthorizer>()) {
  std::map<std::string, Handler> by_route;
  RegisterHealthHandlers(by_route, *this);
  RegisterStoreHandlers(by_route);
  RegisterWhoamiHandlers(by_route);
  for (const auto& route : ApiRouteTable()) {
    auto it = by_route.find(RouteKey(route.method, route.path_template));
    if (it == by_route.end()) {
      throw std::logic_error("route without a handler: " + RouteKey(route.method, route.path_template));
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

Result<Response> App::Dispatch(const Request& request, const std::string& request_id, std::int64_t now_ms,
                               std::string& principal_id) {
  const auto match = router_.Match(request.method, request.path);
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
  std::optional<db::Principal> principal;
  if (!route.action.empty()) {
    auto authed = Authenticate(services_.repo, request.Header("authorization"), now_ms);
    if (!authed.ok()) return authed.error();
    principal = std::move(authed.value());
    principal_id = principal->id;
    if (!AllowRate(principal->id)) {
      return Error{ErrorCode::kResourceExhausted, "request rate limit exceeded for this principal", {}};
    }
  }
  RequestContext ctx{request, match.params, principal ? &*principal : nullptr, request_id, now_ms, services_};
  if (principal) {
    SP_RETURN_IF_ERROR(authorizer_->Authorize(*principal, route.action, ctx));
  }
  return handlers_.at(&route)(ctx);
}

Response App::Handle(const Request& request) {
  const auto started = SteadyMicros();
  const auto request_id = RequestIdFor(request);
  const auto now_ms = services_.now_ms();
  std::string principal_id;
  Response response;
  try {
    auto result = Dispatch(request, request_id, now_ms, principal_id);
    if (result.ok()) {
      response = std::move(result.value());
    } else {
      const auto& err = result.error();
      if (err.code == ErrorCode::kInternal || err.code == ErrorCode::kUnavailable) {
        log::Error("request failed", {{"request_id", request_id}, {"detail", err.message}});
      }
      response = ProblemResponse(err, request.path, request_id);
      if (response.status == 401) response.SetHeader("WWW-Authenticate", "Bearer realm=\"storeplane\"");
    }
  } catch (const std::exception& e) {
    log::Error("unhandled exception in handler", {{"request_id", request_id}, {"detail", e.what()}});
    response = ProblemResponse(Error::Internal("an internal error occurred"), request.path, request_id);
  }
  response.SetHeader("X-Request-Id", request_id);
  const auto elapsed_us = SteadyMicros() - started;
  log::Info("request", {{"request_id", request_id},
                        {"method", request.method},
                        {"path", request.path},
                        {"status", response.status},
                        {"duration_us", elapsed_us},
                        {"principal", principal_id},
                        {"remote", request.remote}});
  return response;
}

}  // namespace storeplane::server
