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
      {"POST", "/v1/authz/explain", "authz.explain"},
      {"GET", "/v1/tokens", "token.read"},
      {"POST", "/v1/tokens", "token.create"},
      {"DELETE", "/v1/tokens/{id}", "token.revoke"},
      {"GET", "/v1/changes", "change.read"},
      {"GET", "/v1/changes/{id}", "change.read"},
      {"POST", "/v1/changes/{id}/approve", "change.approve"},
      {"POST", "/v1/changes/{id}/reject", "change.reject"},
      {"GET", "/v1/audit", "audit.read"},
      {"GET", "/v1/audit/checkpoints", "audit.read"},
      {"GET", "/v1/audit/public-key", "audit.read"},
      {"GET", "/v1/audit/export", "audit.export"},
  };
  return kRoutes;
}

}  // namespace storeplane::server
