// Every route of the operator API maps to exactly one action of the catalog: a /v1 route
// without one, or with a name the catalog does not hold, fails here (and the server
// refuses to start with it). Only the health endpoints and the web UI's files are
// unauthenticated; /metrics is the one operator route outside /v1 (Prometheus'
// conventional path).
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "core/authority.h"
#include "server/api.h"
#include "server/router.h"

namespace storeplane::server {
namespace {

TEST(RouteActions, EveryApiRouteNamesOneCatalogAction) {
  std::set<std::string> seen;
  for (const auto& route : ApiRouteTable()) {
    const std::string key = std::string(route.method) + " " + std::string(route.path_template);
    EXPECT_TRUE(seen.insert(key).second) << "route listed twice: " << key;
    if (route.path_template.rfind("/v1/", 0) == 0) {
      EXPECT_EQ(route.audience, RouteAudience::kOperator) << key;
      ASSERT_FALSE(route.action.empty()) << key << " has no action";
      if (route.action.ends_with(".*")) {
        // A family: the handler decides the concrete action; at least one must exist.
        const auto prefix = route.action.substr(0, route.action.size() - 1);
        bool any = false;
        for (const auto& info : core::ActionCatalog()) any = any || info.name.starts_with(prefix);
        EXPECT_TRUE(any) << key << " names the family '" << route.action << "' with no member";
        EXPECT_TRUE(core::FindAction(route.action) == nullptr) << key;
      } else {
        EXPECT_NE(core::FindAction(route.action), nullptr)
            << key << " names '" << route.action << "', not in the catalog";
      }
    } else if (route.path_template.rfind("/agent/v1/", 0) == 0) {
      // The agent channel: agent credentials only, decided by the handlers, never an action.
      EXPECT_EQ(route.audience, RouteAudience::kAgent) << key;
      EXPECT_TRUE(route.action.empty()) << key;
    } else if (route.path_template.rfind("/hooks/", 0) == 0) {
      // CI/CD callbacks: authenticated by their signature in the handler, never an action.
      EXPECT_EQ(route.audience, RouteAudience::kCallback) << key;
      EXPECT_TRUE(route.action.empty()) << key;
    } else if (route.path_template == "/metrics") {
      // Prometheus scrapes at the conventional path, with a bearer token holding metrics.read.
      EXPECT_EQ(route.audience, RouteAudience::kOperator) << key;
      EXPECT_EQ(route.action, "metrics.read") << key;
    } else {
      // The probes, and the web UI's static files (they hold no data; the UI calls /v1 with
      // the operator's token).
      EXPECT_TRUE(route.path_template == "/healthz" || route.path_template == "/readyz" || route.path_template == "/" ||
                  route.path_template == "/ui" || route.path_template == "/ui/")
          << key;
      EXPECT_EQ(route.audience, RouteAudience::kPublic) << key;
      EXPECT_TRUE(route.action.empty()) << key;
    }
  }
}

TEST(RouteActions, ReadsAndWritesAreDifferentActions) {
  for (const auto& route : ApiRouteTable()) {
    if (route.action.empty()) continue;
    const std::string action(route.action);
    if (route.method == "GET") {
      EXPECT_TRUE(action.ends_with(".read") || action == "audit.export" || action == "principal.whoami" ||
                  action == "event.watch")
          << action;
    } else {
      EXPECT_FALSE(action.ends_with(".read")) << route.method << " " << route.path_template;
    }
  }
}

TEST(RouteActions, OnlyTheHeartbeatIsAnsweredOnTheIoThread) {
  // The I/O thread must never block: the heartbeat handler touches memory only and leaves
  // its rare blocking part to a worker. Any other route would stall every connection.
  std::set<std::string> io_thread;
  for (const auto& route : ApiRouteTable()) {
    if (route.io_thread) io_thread.insert(std::string(route.method) + " " + std::string(route.path_template));
  }
  EXPECT_EQ(io_thread, (std::set<std::string>{"POST /agent/v1/heartbeat"}));
}

TEST(RouteActions, OnlyTheWebUiIsAPrefixRoute) {
  std::set<std::string> prefixed;
  for (const auto& route : ApiRouteTable()) {
    if (route.prefix) prefixed.insert(std::string(route.method) + " " + std::string(route.path_template));
  }
  EXPECT_EQ(prefixed, (std::set<std::string>{"GET /ui/"}));
}

TEST(Router, PrefixRouteMatchesEverythingBelowItWithThePathAsParameter) {
  const Router router(ApiRouteTable());
  auto index = router.Match("GET", "/ui/");
  ASSERT_EQ(index.outcome, RouteMatch::Outcome::kMatched);
  EXPECT_EQ(index.route->path_template, "/ui/");
  EXPECT_EQ(index.params.at("path"), "");
  auto nested = router.Match("GET", "/ui/pages/fleet.js");
  ASSERT_EQ(nested.outcome, RouteMatch::Outcome::kMatched);
  EXPECT_EQ(nested.params.at("path"), "pages/fleet.js");
  auto post = router.Match("POST", "/ui/app.js");
  EXPECT_EQ(post.outcome, RouteMatch::Outcome::kMethodNotAllowed);
  EXPECT_EQ(post.allowed_methods, (std::vector<std::string>{"GET"}));
}

TEST(Router, ExactRoutesAreUnchangedBesideThePrefixRoute) {
  const Router router(ApiRouteTable());
  EXPECT_EQ(router.Match("GET", "/ui").route->path_template, "/ui");
  EXPECT_EQ(router.Match("GET", "/").route->path_template, "/");
  EXPECT_EQ(router.Match("GET", "/uix").outcome, RouteMatch::Outcome::kNoPath);
  EXPECT_EQ(router.Match("GET", "/v1/stores/").outcome, RouteMatch::Outcome::kNoPath);
  auto store = router.Match("GET", "/v1/stores/acme");
  ASSERT_EQ(store.outcome, RouteMatch::Outcome::kMatched);
  EXPECT_EQ(store.params.at("id"), "acme");
}

}  // namespace
}  // namespace storeplane::server
