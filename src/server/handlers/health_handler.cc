// /healthz (the process is alive) and /readyz (it can serve: database reachable, not draining).
#include "server/app.h"

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
    Response resp;
    resp.body = R"({"status":"ready"})";
    return resp;
  };
}

}  // namespace storeplane::server
