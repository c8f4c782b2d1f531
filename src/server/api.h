// The operator API's route table: every route, its method, path template and the
// authority action it maps to. The router is built from this table, the OpenAPI
// description is checked against it, and (later) every route's action is enforced.
#pragma once

#include <string_view>
#include <vector>

namespace storeplane::server {

struct RouteSpec {
  std::string_view method;         // "GET", "POST", "PATCH", ...
  std::string_view path_template;  // OpenAPI style: "/v1/stores/{id}"
  std::string_view action;         // authority action, e.g. "store.read"; "" = unauthenticated
};

// Every route the server answers, in a stable order.
const std::vector<RouteSpec>& ApiRouteTable();

}  // namespace storeplane::server
