#include "tests/integration/integration_fixture.h"

#include <fstream>

namespace storeplane::testing {

void ServerTest::SetUp() {
  dir_ = std::make_unique<TempDir>();
  token_file_ = dir_->path() + "/admin.token";
  policy_file_ = dir_->path() + "/policy.yaml";
  WritePolicy(PermissivePolicy());
  StartServer();
  ASSERT_FALSE(token_.empty()) << "the first start must print the bootstrap admin token";
}

void ServerTest::TearDown() {
  if (server_ && server_->running()) server_->Stop();
}

void ServerTest::StartServer(std::vector<std::string> extra_args) {
  if (server_ && server_->running()) server_->Stop();
  ServerOptions options;
  options.data_dir = dir_->path() + "/data";
  options.extra_args = {"--admin-token-file", token_file_, "--policy", policy_file_};
  for (auto& a : extra_args) options.extra_args.push_back(std::move(a));
  options.env = server_env_;
  server_ = std::make_unique<ServerProcess>(options);
  ASSERT_TRUE(server_->Start()) << server_->error() << "\n" << server_->Logs();
  if (!server_->token().empty()) token_ = server_->token();
}

std::string ServerTest::PermissivePolicy() {
  return R"(version: 1
roles:
  viewer:
    allow:
      - actions: [store.read, change.read, principal.whoami]
  operator:
    allow:
      - actions: [store.read, change.read, principal.whoami, store.register, store.label]
  approver:
    allow:
      - actions: [store.read, change.read, principal.whoami, change.approve, change.reject]
  auditor:
    allow:
      - actions: [audit.read, audit.export, principal.whoami]
  security-admin:
    allow:
      - actions: [token.*, audit.read, audit.export, authz.explain, principal.whoami]
principals:
  admin:
    kind: operator
    roles: [security-admin, operator]
)";
}

void ServerTest::WritePolicy(const std::string& yaml) {
  std::ofstream out(policy_file_, std::ios::trunc);
  out << yaml;
}

std::string ServerTest::CreateToken(const std::string& principal) {
  auto resp =
      Call("POST", "/v1/tokens", R"({"principal":")" + principal + R"("})", {{"Content-Type", "application/json"}});
  EXPECT_EQ(resp.status, 201) << resp.body;
  auto body = Json(resp);
  return body.contains("token") ? std::string(body["token"].as_string()) : std::string();
}

client::HttpResponse ServerTest::CallAs(const std::string& token, const std::string& method, const std::string& path,
                                        const std::string& body,
                                        std::vector<std::pair<std::string, std::string>> headers) {
  headers.emplace_back("Authorization", "Bearer " + token);
  return Call(method, path, body, std::move(headers), false);
}

client::HttpResponse ServerTest::Call(const std::string& method, const std::string& path, const std::string& body,
                                      std::vector<std::pair<std::string, std::string>> headers, bool with_token) {
  client::HttpRequest req;
  req.method = method;
  req.url = server_->url() + path;
  req.body = body;
  req.headers = std::move(headers);
  if (with_token) req.headers.emplace_back("Authorization", "Bearer " + token_);
  auto resp = http_.Send(req);
  EXPECT_TRUE(resp.ok()) << (resp.ok() ? "" : resp.error().message);
  return resp.ok() ? resp.value() : client::HttpResponse{};
}

client::HttpResponse ServerTest::Register(const std::string& id, const std::string& environment,
                                          const std::string& isolation, const std::string& labels_json) {
  const std::string body = R"({"id":")" + id + R"(","environment":")" + environment + R"(","isolation_mode":")" +
                           isolation + R"(","labels":)" + labels_json + "}";
  return Call("POST", "/v1/stores", body, {{"Content-Type", "application/json"}});
}

client::HttpResponse ServerTest::Patch(const std::string& id, const std::string& body, const std::string& if_match) {
  std::vector<std::pair<std::string, std::string>> headers{{"Content-Type", "application/merge-patch+json"}};
  if (!if_match.empty()) headers.emplace_back("If-Match", if_match);
  return Call("PATCH", "/v1/stores/" + id, body, headers);
}

std::string ServerTest::Snapshot() {
  std::string all;
  std::string cursor;
  for (;;) {
    auto resp = Call("GET", "/v1/stores?limit=1000" + (cursor.empty() ? "" : "&cursor=" + cursor));
    EXPECT_EQ(resp.status, 200);
    auto body = Json(resp);
    all += boost::json::serialize(body["items"]);
    if (body["next_cursor"].is_null()) break;
    cursor = std::string(body["next_cursor"].as_string());
  }
  return all;
}

boost::json::object ServerTest::Json(const client::HttpResponse& resp) {
  boost::system::error_code ec;
  auto v = boost::json::parse(resp.body, ec);
  EXPECT_FALSE(ec) << "not JSON: " << resp.body;
  if (ec || !v.is_object()) return {};
  return v.as_object();
}

void ServerTest::ExpectProblem(const client::HttpResponse& resp, long status, const std::string& kind) {
  EXPECT_EQ(resp.status, status) << resp.body;
  EXPECT_EQ(resp.Header("content-type"), "application/problem+json") << resp.body;
  auto body = Json(resp);
  ASSERT_TRUE(body.contains("type")) << resp.body;
  EXPECT_EQ(body["type"].as_string(), "urn:storeplane:problem:" + kind) << resp.body;
  EXPECT_EQ(body["status"].to_number<long>(), status);
  EXPECT_TRUE(body.contains("title"));
  EXPECT_TRUE(body.contains("detail"));
  EXPECT_FALSE(resp.Header("x-request-id").empty());
}

}  // namespace storeplane::testing
