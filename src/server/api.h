// The operator API's route table: every route, its method, path template and the
// authority action it maps to. The router is built from this table, the OpenAPI
// description is checked against it, and (later) every route's action is enforced.
#pragma once

#include <string_view>
#include <vector>

namespace storeplane::server {

// Who may call a route: operators and service accounts with bearer tokens (/v1), agents
// with their credential (/agent/v1; the handler authenticates them), CI/CD pipelines with
// signed callbacks (/hooks; the handler verifies the signature), or anyone (health, and the
// web UI's static files, which hold no data: the UI calls /v1 with the operator's token).
enum class RouteAudience { kOperator, kAgent, kPublic, kCallback };

struct RouteSpec {
  std::string_view method;         // "GET", "POST", "PATCH", ...
  std::string_view path_template;  // OpenAPI style: "/v1/stores/{id}"
  // Authority action, e.g. "store.read"; a family such as "operation.run.*" when the
  // handler decides the concrete action from the request; "" for agent and public routes.
  std::string_view action;
  RouteAudience audience = RouteAudience::kOperator;
  // Answered on the I/O thread, without the hand-off to a worker: only routes whose handler
  // touches memory alone and leaves any blocking work in Response::finish_on_worker.
  bool io_thread = false;
  // A prefix route: path_template ends in '/' and matches itself and every path below it;
  // the rest of the path (possibly empty) is the parameter "path". Only the web UI's files.
  bool prefix = false;
};

// Every route the server answers, in a stable order.
const std::vector<RouteSpec>& ApiRouteTable();

}  // namespace storeplane::server
