#include "server/api.h"

namespace storeplane::server {

const std::vector<RouteSpec>& ApiRouteTable() {
  static const std::vector<RouteSpec> kRoutes = {
      {"GET", "/healthz", "", RouteAudience::kPublic},
      {"GET", "/readyz", "", RouteAudience::kPublic},
      {"GET", "/metrics", "metrics.read"},
      // The web UI (handlers/ui_handler.cc): static files embedded at build time.
      {"GET", "/", "", RouteAudience::kPublic},
      {"GET", "/ui", "", RouteAudience::kPublic},
      {"GET", "/ui/", "", RouteAudience::kPublic, false, true},
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
      {"GET", "/v1/agents", "agent.read"},
      {"GET", "/v1/stores/{id}/agent", "agent.read"},
      {"DELETE", "/v1/stores/{id}/agent", "agent.revoke"},
      {"POST", "/v1/stores/{id}/enrollment-tokens", "agent.enroll"},
      {"GET", "/v1/stores/{id}/health", "store.read"},
      {"POST", "/v1/stores/{id}/operations", "operation.run.*"},
      {"GET", "/v1/stores/{id}/operations", "operation.read"},
      {"GET", "/v1/stores/{id}/operations/{op}", "operation.read"},
      {"POST", "/v1/stores/{id}/provision", "store.provision"},
      {"POST", "/v1/stores/{id}/decommission", "store.decommission"},
      {"POST", "/v1/stores/{id}/deployments", "deploy.request"},
      {"POST", "/v1/stores/{id}/rollbacks", "rollback.request"},
      {"POST", "/v1/stores/{id}/isolation-migrations", "isolation.migrate"},
      {"GET", "/v1/runs", "run.read"},
      {"GET", "/v1/runs/{id}", "run.read"},
      {"GET", "/v1/deploy-windows", "window.read"},
      {"GET", "/v1/events", "event.watch"},
      {"POST", "/hooks/cicd/{provider}", "", RouteAudience::kCallback},
      {"POST", "/agent/v1/enroll", "", RouteAudience::kAgent},
      {"POST", "/agent/v1/heartbeat", "", RouteAudience::kAgent, true},
      {"GET", "/agent/v1/operations", "", RouteAudience::kAgent},
      {"POST", "/agent/v1/operations/{id}/result", "", RouteAudience::kAgent},
      {"POST", "/agent/v1/credential/rotate", "", RouteAudience::kAgent},
  };
  return kRoutes;
}

}  // namespace storeplane::server
