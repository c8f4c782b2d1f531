// /healthz (the process is alive) and /readyz (it can serve: database reachable, not
// draining; it also names this replica and whether it leads, ADR 0012).
#include <boost/json.hpp>

#include "server/app.h"
#include "server/leadership.h"

namespace storeplane::server {

void RegisterHealthHandlers(std::map<std::string, Handler>& by_route, const App& app) {
  by_route[RouteKey("GET", "/healthz")] = [](RequestContext&) -> Result<Response> {
    Response resp;
    resp.body = R"({"status":"ok"})";
    return resp;
  };
  by_route[RouteKey("GET", "/readyz")] = [&app](RequestContext& ctx) -> Result<Response> {
    if (app.draining()) return Error{ErrorCode::kUnavailable, "the server is shutting down", {}};
    if (auto s = ctx.services.repo.Ping(); !s.ok()) {
      return Error{ErrorCode::kUnavailable, "the database is not reachable", {}};
    }
    boost::json::object body{{"status", "ready"}};
    if (const Leadership* leadership = ctx.services.leadership) {
      body["replica"] = leadership->holder();
      body["role"] = leadership->is_leader() ? "leader" : "follower";
    }
    Response resp;
    resp.body = boost::json::serialize(body);
    return resp;
  };
}

}  // namespace storeplane::server
