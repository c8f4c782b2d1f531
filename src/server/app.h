// The request pipeline, free of any transport: request id, routing, authentication,
// authorization (an Authorizer slot; the authority milestone fills it), per-principal
// rate limits, the handler, problem+json for errors, and one access-log line.
// Handle() is blocking and thread-safe: the HTTP server calls it on worker threads.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "core/result.h"
#include "db/repository.h"
#include "server/config.h"
#include "server/http_types.h"
#include "server/router.h"

namespace storeplane::server {

// Wall-clock milliseconds; injected so that tests and handlers never read the clock.
using Clock = std::function<std::int64_t()>;
std::int64_t SystemNowMs();

struct Services {
  db::Repository& repo;
  const Config& config;
  Clock now_ms = SystemNowMs;
};

struct RequestContext {
  const Request& request;
  const std::map<std::string, std::string>& params;
  const db::Principal* principal;  // null on unauthenticated routes
  const std::string& request_id;
  std::int64_t now_ms;
  Services& services;
};

using Handler = std::function<Result<Response>(RequestContext&)>;

// Decides whether `principal` may perform `action`. Until the authority milestone, any
// authenticated principal holding the "admin" role may do anything; others are denied.
class Authorizer {
 public:
  virtual ~Authorizer() = default;
  virtual Status Authorize(const db::Principal& principal, std::string_view action,
                           const RequestContext& ctx) const = 0;
};

class App {
 public:
  explicit App(Services services);
  ~App();

  Response Handle(const Request& request);
  // A request id for `request`: its X-Request-Id when well-formed, else a new one.
  static std::string RequestIdFor(const Request& request);
  // Marks the server as draining: /readyz answers 503 from now on.
  void SetDraining() { draining_ = true; }
  bool draining() const { return draining_; }

 private:
  Result<Response> Dispatch(const Request& request, const std::string& request_id, std::int64_t now_ms,
                            std::string& principal_id);
  bool AllowRate(const std::string& principal_id);

  Services services_;
  Router router_;
  std::map<const RouteSpec*, Handler> handlers_;
  std::unique_ptr<Authorizer> authorizer_;
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

// "METHOD path_template", the key handlers register under.
std::string RouteKey(std::string_view method, std::string_view path_template);

}  // namespace storeplane::server
