#include "server/api.h"

namespace storeplane::server {

const std::vector<RouteSpec>& ApiRouteTable() {
  static const std::vector<RouteSpec> kRoutes = {
      {"GET", "/healthz", ""},
      {"GET", "/readyz", ""},
      {"GET", "/v1/stores", "store.read"},
      {"POST", "/v1/stores", "store.register"},
      {"GET", "/v1/stores/{id}", "store.read"},
      {"PATCH", "/v1/stores/{id}", "store.label"},
      {"GET", "/v1/whoami", "principal.whoami"},
  };
  return kRoutes;
}

}  // namespace storeplane::server
