// Keeps docs/openapi.yaml honest: its (method, path) pairs must be exactly the server's
// route table (server/api.h), and each route is documented as its RouteAudience says:
// every operator (/v1) operation must require the bearer scheme, name its action and
// declare its errors (403 naming that action included) as RFC 9457 problems; every agent
// channel (/agent/v1) operation must require the agent credential scheme (enrollment,
// authenticated by the token in its body, declares no security), name no action and
// declare problem errors; every CI/CD callback (/hooks) operation must require the
// callback signature scheme and neither token scheme, name no action and declare problem
// errors; and the unauthenticated probes must say so.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "server/api.h"

#ifndef STOREPLANE_SOURCE_DIR
#error "STOREPLANE_SOURCE_DIR must name the source tree (set by tests/docs/CMakeLists.txt)"
#endif

namespace {

constexpr std::string_view kProblemMediaType = "application/problem+json";
constexpr std::string_view kBearerScheme = "bearerAuth";
constexpr std::string_view kAgentScheme = "agentCredential";
constexpr std::string_view kCallbackScheme = "callbackSignature";
constexpr std::string_view kCallbackSignatureHeader = "X-Storeplane-Signature";
// The one agent route without a credential: the enrollment token in its body authenticates.
constexpr std::string_view kEnrollPath = "/agent/v1/enroll";
// The one operator route outside /v1: Prometheus scrapes at its conventional path.
constexpr std::string_view kMetricsPath = "/metrics";
constexpr std::string_view kHttpMethods[] = {"get", "put", "post", "delete", "options", "head", "patch", "trace"};

using MethodAndPath = std::pair<std::string, std::string>;
using storeplane::server::RouteAudience;
using storeplane::server::RouteSpec;

std::string Upper(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return out;
}

std::string Describe(const MethodAndPath& route) { return route.first + " " + route.second; }

// How a route's path is written in OpenAPI: its template, or for a prefix route (the web
// UI's "/ui/", RouteSpec::prefix) the template followed by a `{path}` parameter.
std::string DocumentedPath(const RouteSpec& route) {
  return std::string(route.path_template) + (route.prefix ? "{path}" : "");
}

bool IsHttpMethod(std::string_view key) {
  return std::find(std::begin(kHttpMethods), std::end(kHttpMethods), key) != std::end(kHttpMethods);
}

struct Operation {
  std::string method;  // upper case, as in the route table
  std::string path;
  YAML::Node node;
};

bool IsErrorStatusKey(std::string_view key) {
  return key == "default" || (!key.empty() && (key[0] == '4' || key[0] == '5'));
}

bool DeclaresEmptySecurity(const YAML::Node& security) {
  return security && security.IsSequence() && security.size() == 0;
}

class OpenApiRoutesTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    spec_ = new YAML::Node(YAML::LoadFile(std::string(STOREPLANE_SOURCE_DIR) + "/docs/openapi.yaml"));
  }
  static void TearDownTestSuite() {
    delete spec_;
    spec_ = nullptr;
  }

  static const YAML::Node& Spec() { return *spec_; }

  // Every operation under `paths`, skipping path-item keys that are not methods
  // (parameters, summary, description, servers).
  static std::vector<Operation> Operations() {
    std::vector<Operation> ops;
    const YAML::Node& paths = Spec()["paths"];
    for (const auto& path_item : paths) {
      const std::string path = path_item.first.as<std::string>();
      for (const auto& entry : path_item.second) {
        const std::string key = entry.first.as<std::string>();
        if (IsHttpMethod(key)) ops.push_back({Upper(key), path, entry.second});
      }
    }
    return ops;
  }

  static std::set<MethodAndPath> DocumentedRoutes() {
    std::set<MethodAndPath> routes;
    for (const Operation& op : Operations()) routes.emplace(op.method, op.path);
    return routes;
  }

  static std::set<MethodAndPath> ServerRoutes() {
    std::set<MethodAndPath> routes;
    for (const auto& route : storeplane::server::ApiRouteTable()) {
      routes.emplace(std::string(route.method), DocumentedPath(route));
    }
    return routes;
  }

  // The route table's entry for a documented operation, or nullptr when it is not served.
  static const RouteSpec* RouteOf(const Operation& op) {
    for (const auto& route : storeplane::server::ApiRouteTable()) {
      if (route.method == op.method && DocumentedPath(route) == op.path) return &route;
    }
    return nullptr;
  }

  // The audience of a documented operation: the route table's, or, for a route that is
  // only documented (DocumentsExactlyTheServerRoutes reports it), the one its path implies.
  static RouteAudience AudienceOf(const Operation& op) {
    if (const RouteSpec* route = RouteOf(op)) return route->audience;
    if (op.path.rfind("/v1/", 0) == 0 || op.path == kMetricsPath) return RouteAudience::kOperator;
    if (op.path.rfind("/agent/", 0) == 0) return RouteAudience::kAgent;
    if (op.path.rfind("/hooks/", 0) == 0) return RouteAudience::kCallback;
    return RouteAudience::kPublic;
  }

  // Follows local references ("#/components/responses/NotFound"); other nodes are
  // returned as they are. An unresolvable reference gives an undefined node.
  static YAML::Node Resolve(const YAML::Node& original) {
    YAML::Node node = Clone(original);
    for (int hops = 0; hops < 8 && node.IsMap() && std::as_const(node)["$ref"]; ++hops) {
      const std::string ref = std::as_const(node)["$ref"].as<std::string>();
      if (ref.rfind("#/", 0) != 0) return YAML::Node(YAML::NodeType::Undefined);
      YAML::Node current = Clone(Spec());
      std::string_view rest = std::string_view(ref).substr(2);
      while (!rest.empty()) {
        const std::size_t slash = rest.find('/');
        std::string token(rest.substr(0, slash));
        rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
        token = Unescape(token);
        const YAML::Node& parent = current;
        YAML::Node child = parent[token];
        if (!child) return YAML::Node(YAML::NodeType::Undefined);
        current.reset(child);
      }
      node.reset(current);
    }
    return node;
  }

  // The security requirements that apply to an operation: its own, else the root's.
  static YAML::Node EffectiveSecurity(const Operation& op) {
    if (op.node["security"]) return op.node["security"];
    return Spec()["security"];
  }

  // Every error response (4xx, 5xx, default) of `op` is a problem document, and at least one
  // is a 4xx or default one.
  static void ExpectProblemErrors(const Operation& op) {
    const std::string where = op.method + " " + op.path;
    const YAML::Node responses = op.node["responses"];
    ASSERT_TRUE(responses && responses.IsMap()) << where << " has no responses";
    bool has_client_or_default_problem = false;
    for (const auto& entry : responses) {
      const std::string status = entry.first.as<std::string>();
      if (!IsErrorStatusKey(status)) continue;
      const YAML::Node response = Resolve(entry.second);  // const: lookups never insert
      ASSERT_TRUE(response.IsMap()) << where << " " << status << ": unresolvable response";
      const bool is_problem = response["content"] && response["content"][std::string(kProblemMediaType)];
      EXPECT_TRUE(is_problem) << where << " " << status << " is not " << kProblemMediaType;
      if (is_problem && (status == "default" || status[0] == '4')) has_client_or_default_problem = true;
    }
    EXPECT_TRUE(has_client_or_default_problem)
        << where << " declares neither a 4xx nor a default " << kProblemMediaType << " response";
  }

 private:
  // Another handle on the same node (yaml-cpp's operator= would copy into the target).
  static YAML::Node Clone(const YAML::Node& node) {
    YAML::Node alias;
    alias.reset(node);
    return alias;
  }
  // JSON pointer escapes: "~1" is "/", "~0" is "~".
  static std::string Unescape(const std::string& token) {
    std::string out;
    for (std::size_t i = 0; i < token.size(); ++i) {
      if (token[i] == '~' && i + 1 < token.size() && (token[i + 1] == '0' || token[i + 1] == '1')) {
        out.push_back(token[i + 1] == '1' ? '/' : '~');
        ++i;
      } else {
        out.push_back(token[i]);
      }
    }
    return out;
  }

  static inline YAML::Node* spec_ = nullptr;
};

TEST_F(OpenApiRoutesTest, IsOpenApi31) {
  ASSERT_TRUE(Spec()["openapi"]);
  EXPECT_EQ(Spec()["openapi"].as<std::string>().rfind("3.1.", 0), 0u)
      << "openapi: " << Spec()["openapi"].as<std::string>();
}

TEST_F(OpenApiRoutesTest, RouteTableHasNoDuplicates) {
  std::set<MethodAndPath> seen;
  for (const auto& route : storeplane::server::ApiRouteTable()) {
    MethodAndPath key{std::string(route.method), std::string(route.path_template)};
    EXPECT_TRUE(seen.insert(key).second) << "route listed twice: " << Describe(key);
  }
}

// The audience of each route matches its path and its action: operator routes live under
// /v1/ (or are /metrics) and name an action, agent routes live under /agent/v1/ and name none (the handler
// authenticates the agent), callback routes live under /hooks/ and name none (the handler
// verifies the signature), public routes are outside all three and name none.
TEST_F(OpenApiRoutesTest, RouteAudiencesMatchPathsAndActions) {
  for (const auto& route : storeplane::server::ApiRouteTable()) {
    const std::string where = std::string(route.method) + " " + std::string(route.path_template);
    const bool under_v1 = route.path_template.rfind("/v1/", 0) == 0;
    const bool under_agent = route.path_template.rfind("/agent/v1/", 0) == 0;
    const bool under_hooks = route.path_template.rfind("/hooks/", 0) == 0;
    switch (route.audience) {
      case RouteAudience::kOperator:
        EXPECT_TRUE(under_v1 || route.path_template == kMetricsPath) << where << " is an operator route outside /v1/";
        EXPECT_FALSE(route.action.empty()) << where << " is an operator route without an action";
        break;
      case RouteAudience::kAgent:
        EXPECT_TRUE(under_agent) << where << " is an agent route outside /agent/v1/";
        EXPECT_TRUE(route.action.empty()) << where << " is an agent route with an action";
        break;
      case RouteAudience::kCallback:
        EXPECT_TRUE(under_hooks) << where << " is a callback route outside /hooks/";
        EXPECT_TRUE(route.action.empty()) << where << " is a callback route with an action";
        break;
      case RouteAudience::kPublic:
        EXPECT_FALSE(under_v1 || under_agent || under_hooks)
            << where << " is a public route under an authenticated prefix";
        EXPECT_TRUE(route.action.empty()) << where << " is a public route with an action";
        break;
    }
  }
}

TEST_F(OpenApiRoutesTest, DocumentsExactlyTheServerRoutes) {
  const std::set<MethodAndPath> documented = DocumentedRoutes();
  const std::set<MethodAndPath> served = ServerRoutes();
  ASSERT_FALSE(served.empty());
  for (const auto& route : served) {
    EXPECT_TRUE(documented.count(route)) << "served but not in docs/openapi.yaml: " << Describe(route);
  }
  for (const auto& route : documented) {
    EXPECT_TRUE(served.count(route)) << "in docs/openapi.yaml but not served (src/server/api.cc): " << Describe(route);
  }
}

TEST_F(OpenApiRoutesTest, BearerSchemeIsHttpBearer) {
  const YAML::Node scheme = Spec()["components"]["securitySchemes"][std::string(kBearerScheme)];
  ASSERT_TRUE(scheme) << "components.securitySchemes." << kBearerScheme << " is missing";
  EXPECT_EQ(scheme["type"].as<std::string>(""), "http");
  EXPECT_EQ(Upper(scheme["scheme"].as<std::string>("")), "BEARER");
}

TEST_F(OpenApiRoutesTest, AgentSchemeIsHttpBearer) {
  const YAML::Node scheme = Spec()["components"]["securitySchemes"][std::string(kAgentScheme)];
  ASSERT_TRUE(scheme) << "components.securitySchemes." << kAgentScheme << " is missing";
  EXPECT_EQ(scheme["type"].as<std::string>(""), "http");
  EXPECT_EQ(Upper(scheme["scheme"].as<std::string>("")), "BEARER");
}

// Callbacks are signed, not bearer-authenticated: the scheme names the signature header.
TEST_F(OpenApiRoutesTest, CallbackSchemeIsTheSignatureHeader) {
  const YAML::Node scheme = Spec()["components"]["securitySchemes"][std::string(kCallbackScheme)];
  ASSERT_TRUE(scheme) << "components.securitySchemes." << kCallbackScheme << " is missing";
  EXPECT_EQ(scheme["type"].as<std::string>(""), "apiKey");
  EXPECT_EQ(scheme["in"].as<std::string>(""), "header");
  EXPECT_EQ(scheme["name"].as<std::string>(""), kCallbackSignatureHeader);
}

// Operator routes (/v1) take bearer tokens only: an agent credential gets 401 there.
TEST_F(OpenApiRoutesTest, EveryV1OperationRequiresBearerAuth) {
  int checked = 0;
  for (const Operation& op : Operations()) {
    if (AudienceOf(op) != RouteAudience::kOperator) continue;
    ++checked;
    const std::string where = op.method + " " + op.path;
    const YAML::Node security = EffectiveSecurity(op);
    ASSERT_TRUE(security && security.IsSequence() && security.size() > 0) << where << " declares no security";
    bool has_bearer = false;
    for (const auto& requirement : security) {
      // An empty requirement object would make authentication optional.
      EXPECT_TRUE(requirement.IsMap() && requirement.size() > 0)
          << where << " has an empty security requirement (authentication optional)";
      if (requirement[std::string(kBearerScheme)]) has_bearer = true;
      EXPECT_FALSE(requirement[std::string(kAgentScheme)]) << where << " accepts " << kAgentScheme;
    }
    EXPECT_TRUE(has_bearer) << where << " does not require " << kBearerScheme;
  }
  EXPECT_GT(checked, 0);
}

// Agent routes (/agent/v1) take the agent credential only (operator tokens get 401 there),
// except enrollment, which the one-time token in its body authenticates.
TEST_F(OpenApiRoutesTest, EveryAgentOperationRequiresTheAgentCredential) {
  int checked = 0;
  for (const Operation& op : Operations()) {
    if (AudienceOf(op) != RouteAudience::kAgent || op.path == kEnrollPath) continue;
    ++checked;
    const std::string where = op.method + " " + op.path;
    const YAML::Node security = EffectiveSecurity(op);
    ASSERT_TRUE(security && security.IsSequence() && security.size() > 0) << where << " declares no security";
    bool has_agent = false;
    for (const auto& requirement : security) {
      EXPECT_TRUE(requirement.IsMap() && requirement.size() > 0)
          << where << " has an empty security requirement (authentication optional)";
      if (requirement[std::string(kAgentScheme)]) has_agent = true;
      EXPECT_FALSE(requirement[std::string(kBearerScheme)]) << where << " accepts operator " << kBearerScheme;
    }
    EXPECT_TRUE(has_agent) << where << " does not require " << kAgentScheme;
  }
  EXPECT_GT(checked, 0);
}

// CI/CD callback routes (/hooks) are authenticated by their signature only: neither an
// operator token nor an agent credential means anything there.
TEST_F(OpenApiRoutesTest, EveryCallbackOperationRequiresTheSignatureAndNoToken) {
  int checked = 0;
  for (const Operation& op : Operations()) {
    if (AudienceOf(op) != RouteAudience::kCallback) continue;
    ++checked;
    const std::string where = op.method + " " + op.path;
    const YAML::Node security = EffectiveSecurity(op);
    ASSERT_TRUE(security && security.IsSequence() && security.size() > 0) << where << " declares no security";
    bool has_signature = false;
    for (const auto& requirement : security) {
      EXPECT_TRUE(requirement.IsMap() && requirement.size() > 0)
          << where << " has an empty security requirement (authentication optional)";
      if (requirement[std::string(kCallbackScheme)]) has_signature = true;
      EXPECT_FALSE(requirement[std::string(kBearerScheme)]) << where << " accepts operator " << kBearerScheme;
      EXPECT_FALSE(requirement[std::string(kAgentScheme)]) << where << " accepts " << kAgentScheme;
    }
    EXPECT_TRUE(has_signature) << where << " does not require " << kCallbackScheme;
  }
  EXPECT_GT(checked, 0);
}

// Public routes and enrollment need no credentials on the server and say so; every other
// route is authenticated and must not be documented as open.
TEST_F(OpenApiRoutesTest, UnauthenticatedRoutesDeclareEmptySecurity) {
  std::set<MethodAndPath> open_routes;
  for (const auto& route : storeplane::server::ApiRouteTable()) {
    if (route.audience == RouteAudience::kPublic ||
        (route.audience == RouteAudience::kAgent && route.path_template == kEnrollPath)) {
      open_routes.emplace(std::string(route.method), DocumentedPath(route));
    }
  }
  EXPECT_TRUE(open_routes.count({"POST", std::string(kEnrollPath)})) << kEnrollPath << " is not an agent route";
  for (const Operation& op : Operations()) {
    const std::string where = op.method + " " + op.path;
    const bool declared_open = DeclaresEmptySecurity(EffectiveSecurity(op));
    if (open_routes.count({op.method, op.path})) {
      EXPECT_TRUE(declared_open) << where << " needs no credentials on the server; declare `security: []`";
    } else {
      EXPECT_FALSE(declared_open) << where << " is authenticated on the server but documented as open";
    }
  }
}

TEST_F(OpenApiRoutesTest, EveryV1OperationDeclaresProblemErrors) {
  int checked = 0;
  for (const Operation& op : Operations()) {
    if (AudienceOf(op) != RouteAudience::kOperator) continue;
    ++checked;
    ExpectProblemErrors(op);
  }
  EXPECT_GT(checked, 0);
}

TEST_F(OpenApiRoutesTest, EveryAgentOperationDeclaresProblemErrors) {
  int checked = 0;
  for (const Operation& op : Operations()) {
    if (AudienceOf(op) != RouteAudience::kAgent) continue;
    ++checked;
    ExpectProblemErrors(op);
  }
  EXPECT_GT(checked, 0);
}

TEST_F(OpenApiRoutesTest, EveryCallbackOperationDeclaresProblemErrors) {
  int checked = 0;
  for (const Operation& op : Operations()) {
    if (AudienceOf(op) != RouteAudience::kCallback) continue;
    ++checked;
    ExpectProblemErrors(op);
  }
  EXPECT_GT(checked, 0);
}

// Only operator routes are decided by the policy; agent, callback and public routes name
// no action.
TEST_F(OpenApiRoutesTest, AgentCallbackAndPublicOperationsNameNoAction) {
  for (const Operation& op : Operations()) {
    if (AudienceOf(op) == RouteAudience::kOperator) continue;
    EXPECT_FALSE(op.node["x-storeplane-action"]) << op.method << " " << op.path << " names an action";
  }
}

// Every /v1 operation names its catalog action in `x-storeplane-action`, exactly the
// route table's, and documents 403 as a forbidden problem whose example details all name
// that action (the server's 403 detail does). For a family such as "operation.run.*" the
// handler decides the concrete action from the request, so the detail names one member of
// the family ("operation.run.cache.flush").
TEST_F(OpenApiRoutesTest, EveryV1OperationNamesItsActionAndItsForbidden) {
  std::map<MethodAndPath, std::string> actions;
  for (const auto& route : storeplane::server::ApiRouteTable()) {
    if (route.audience != RouteAudience::kOperator) continue;
    actions[{std::string(route.method), std::string(route.path_template)}] = std::string(route.action);
  }
  int checked = 0;
  for (const Operation& op : Operations()) {
    if (AudienceOf(op) != RouteAudience::kOperator) continue;
    const std::string where = op.method + " " + op.path;
    const auto found = actions.find({op.method, op.path});
    if (found == actions.end()) continue;  // DocumentsExactlyTheServerRoutes reports it
    ++checked;
    const std::string& action = found->second;
    EXPECT_FALSE(action.empty()) << where << " has no action in the route table";
    EXPECT_EQ(op.node["x-storeplane-action"].as<std::string>(""), action)
        << where << ": x-storeplane-action must be the route table's action";

    const YAML::Node forbidden = Resolve(op.node["responses"]["403"]);
    ASSERT_TRUE(forbidden.IsMap()) << where << " does not document 403";
    const YAML::Node media = forbidden["content"][std::string(kProblemMediaType)];
    ASSERT_TRUE(media.IsMap()) << where << " 403 is not " << kProblemMediaType;
    std::vector<YAML::Node> examples;
    if (media["example"]) examples.push_back(media["example"]);
    for (const auto& named : media["examples"]) examples.push_back(named.second["value"]);
    ASSERT_FALSE(examples.empty()) << where << " 403 has no example";
    const bool family = !action.empty() && action.back() == '*';
    const std::string named = family ? action.substr(0, action.size() - 1) : action;  // "operation.run."
    for (const YAML::Node& example : examples) {
      EXPECT_EQ(example["type"].as<std::string>(""), "urn:storeplane:problem:forbidden") << where;
      EXPECT_EQ(example["status"].as<int>(0), 403) << where;
      const std::string detail = example["detail"].as<std::string>("");
      const std::size_t at = detail.find(named);
      EXPECT_NE(at, std::string::npos) << where << " 403 example detail does not name " << action;
      if (family && at != std::string::npos) {
        // A concrete member: the family prefix followed by a name, never the wildcard.
        const std::size_t rest = at + named.size();
        EXPECT_TRUE(rest < detail.size() && std::isalnum(static_cast<unsigned char>(detail[rest])))
            << where << " 403 example detail names no member of " << action << ": " << detail;
      }
    }
  }
  EXPECT_GT(checked, 0);
}

TEST_F(OpenApiRoutesTest, ProblemTypesAreTheStoreplaneUrns) {
  const std::set<std::string> kinds = {"malformed-request",
                                       "validation-failed",
                                       "not-found",
                                       "already-exists",
                                       "conflict",
                                       "precondition-failed",
                                       "precondition-required",
                                       "unauthenticated",
                                       "forbidden",
                                       "payload-too-large",
                                       "unsupported-media-type",
                                       "too-many-requests",
                                       "unavailable",
                                       "internal",
                                       "method-not-allowed",
                                       "idempotency-key-reused",
                                       "not-acceptable",
                                       "request-header-fields-too-large"};
  std::set<std::string> expected;
  for (const auto& kind : kinds) expected.insert("urn:storeplane:problem:" + kind);

  const YAML::Node types = Spec()["components"]["schemas"]["Problem"]["properties"]["type"]["enum"];
  ASSERT_TRUE(types && types.IsSequence()) << "Problem.type must enumerate the problem types";
  std::set<std::string> documented;
  for (const auto& type : types) documented.insert(type.as<std::string>());
  EXPECT_EQ(documented, expected);
}

}  // namespace
