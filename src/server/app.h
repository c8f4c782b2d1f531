// The request pipeline, free of any transport: request id, routing, bearer authentication,
// per-principal rate limits, deny-by-default authorization against the current policy,
// the handler, problem+json for errors, one audit record per action (allowed or denied)
// and one access-log line. Handle() is blocking and thread-safe: the HTTP server calls it
// on worker threads.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "core/audit.h"
#include "core/authority.h"
#include "core/result.h"
#include "db/repository.h"
#include "server/config.h"
#include "server/http_types.h"
#include "server/router.h"

namespace storeplane::server {

// Wall-clock milliseconds; injected so that tests and handlers never read the clock.
using Clock = std::function<std::int64_t()>;
std::int64_t SystemNowMs();
// A monotonic clock in milliseconds (leases and deadlines): never jumps with the wall clock.
std::int64_t SteadyNowMs();

// The policy in force. Readers take a snapshot for a whole request; a reload swaps the
// pointer atomically, so a request never sees half of two policies.
class PolicyHolder {
 public:
  explicit PolicyHolder(std::shared_ptr<const core::Policy> policy) : policy_(std::move(policy)) {}
  std::shared_ptr<const core::Policy> Get() const {
    std::lock_guard lock(mu_);
    return policy_;
  }
  void Set(std::shared_ptr<const core::Policy> policy) {
    std::lock_guard lock(mu_);
    policy_ = std::move(policy);
  }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const core::Policy> policy_;
};

class AgentHub;
class EventHub;
class RunCoordinator;
class RolloutOrchestrator;
class Leadership;
class Metrics;

struct Services {
  db::Repository& repo;
  const Config& config;
  PolicyHolder& policy;
  std::string audit_public_key_pem;  // served at /v1/audit/public-key
  Clock now_ms = SystemNowMs;
  AgentHub* agents = nullptr;               // the agents' live state; set by the daemon
  RunCoordinator* runs = nullptr;           // the CI/CD side of the lifecycle; set by the daemon
  EventHub* events = nullptr;               // the live event stream's source; set by the daemon
  Metrics* metrics = nullptr;               // Prometheus metrics (server/metrics.h); set by the daemon
  RolloutOrchestrator* rollouts = nullptr;  // fleet rollouts' orchestrator; set by the daemon
  Leadership* leadership = nullptr;         // whether this replica leads (ADR 0012); set by the daemon
};

// The authenticated caller: the token's principal and its roles from the policy.
struct Caller {
  std::string principal_id;
  std::string token_id;
  std::string kind;  // from the policy; "" when the policy does not name the principal
  std::vector<std::string> roles;
};

struct RequestContext {
  const Request& request;
  const std::map<std::string, std::string>& params;
  const Caller* caller;  // null on unauthenticated routes
  const std::string& request_id;
  std::int64_t now_ms;
  Services& services;
  const core::Policy& policy;  // snapshot for this request
  std::string_view action;     // the route's action
  bool on_io_thread = false;   // must not block: leave blocking work in finish_on_worker

  // Decides `action` for the caller against `target` and remembers the decision for the
  // audit record. Store-scoped routes must call this before acting (the pipeline refuses
  // a success that skipped it).
  core::Decision Authorize(std::string_view action, const std::optional<core::AuthzTarget>& target);
  // An audit entry prefilled with this request's principal, source, request id and the
  // last decision; the handler adds target, outcome and whitelisted params.
  core::AuditEntry Audit(std::string target, std::string outcome, std::map<std::string, std::string> params = {}) const;
  // Marks that the handler wrote this request's audit record itself (in its WriteBatch).
  void MarkAudited() { audited = true; }

  // Set by Authorize / the handler; read by the pipeline.
  bool authorized = false;
  bool audited = false;
  core::Decision decision;
  std::string decided_action;  // the action of the last Authorize (a member of a family route)
  std::string audit_target;
  std::map<std::string, std::string> audit_params;
};

using Handler = std::function<Result<Response>(RequestContext&)>;

class App {
 public:
  explicit App(Services services);
  ~App();

  Response Handle(const Request& request);
  // Whether `request`'s route is answered on the I/O thread (RouteSpec::io_thread); then the
  // server calls HandleOnIoThread instead of taking Handle to a worker.
  bool RunsOnIoThread(const Request& request) const;
  Response HandleOnIoThread(const Request& request);
  // A request id for `request`: its X-Request-Id when well-formed, else a new one.
  static std::string RequestIdFor(const Request& request);
  // Marks the server as draining: /readyz answers 503 from now on.
  void SetDraining() { draining_ = true; }
  bool draining() const { return draining_; }

 private:
  Response HandleOn(const Request& request, bool on_io_thread);
  Result<Response> Dispatch(const Request& request, const std::string& request_id, std::int64_t now_ms,
                            std::optional<RequestContext>& ctx, Caller& caller, const core::Policy& policy,
                            bool on_io_thread, const RouteSpec*& matched);
  Result<Caller> Authenticate(const Request& request, std::int64_t now_ms, const core::Policy& policy);
  bool AllowRate(const std::string& principal_id);

  Services services_;
  Router router_;
  std::map<const RouteSpec*, Handler> handlers_;
  std::atomic<bool> draining_{false};

  struct Bucket {
    double tokens;
    std::int64_t last_us;
  };
  std::mutex buckets_mu_;
  std::map<std::string, Bucket> buckets_;
};

// Handler registration, one function per resource file (handlers/*.cc).
void RegisterHealthHandlers(std::map<std::string, Handler>& by_route, const App& app);
void RegisterStoreHandlers(std::map<std::string, Handler>& by_route);
void RegisterWhoamiHandlers(std::map<std::string, Handler>& by_route);
void RegisterTokenHandlers(std::map<std::string, Handler>& by_route);
void RegisterChangeHandlers(std::map<std::string, Handler>& by_route);
void RegisterAuditHandlers(std::map<std::string, Handler>& by_route);
void RegisterAuthzHandlers(std::map<std::string, Handler>& by_route);
void RegisterAgentChannelHandlers(std::map<std::string, Handler>& by_route);
void RegisterAgentHandlers(std::map<std::string, Handler>& by_route);
void RegisterOperationHandlers(std::map<std::string, Handler>& by_route);
void RegisterStoreHealthHandlers(std::map<std::string, Handler>& by_route);
void RegisterRunHandlers(std::map<std::string, Handler>& by_route);
void RegisterWindowHandlers(std::map<std::string, Handler>& by_route);
void RegisterRolloutHandlers(std::map<std::string, Handler>& by_route);
void RegisterCicdHookHandlers(std::map<std::string, Handler>& by_route);
void RegisterEventHandlers(std::map<std::string, Handler>& by_route);
void RegisterMetricsHandlers(std::map<std::string, Handler>& by_route);
void RegisterUiHandlers(std::map<std::string, Handler>& by_route);

// "METHOD path_template", the key handlers register under.
std::string RouteKey(std::string_view method, std::string_view path_template);

}  // namespace storeplane::server
