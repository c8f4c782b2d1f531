// Authority end to end against the real binary: object scope, approvals (no self-approval,
// exactly-once execution, expiry), tokens and revocation, explain, policy start-up and
// SIGHUP reload, and the audit trail's guarantees (tamper detection, no audit no change,
// no secrets anywhere).
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "tests/integration/integration_fixture.h"

namespace storeplane::testing {
namespace {

const char* kTeamPolicy = R"(version: 1
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
  web-staging-viewer:
    allow:
      - actions: [principal.whoami]
      - actions: [store.read]
        environments: [staging]
        selector: team=web
  web-operator:
    allow:
      - actions: [store.read, store.label]
        selector: team=web
  auditor:
    allow:
      - actions: [audit.read, audit.export, principal.whoami]
  security-admin:
    allow:
      - actions: [token.*, audit.read, audit.export, authz.explain, principal.whoami]
    deny:
      - actions: [change.approve, change.reject]
principals:
  admin: {kind: operator, roles: [security-admin, operator]}
  alice: {kind: operator, roles: [operator]}
  bob: {kind: operator, roles: [approver]}
  carol: {kind: operator, roles: [approver]}
  dave: {kind: operator, roles: [operator, approver]}
  eve: {kind: operator, roles: [web-staging-viewer]}
  walt: {kind: operator, roles: [web-operator]}
  audrey: {kind: operator, roles: [auditor]}
approvals:
  - actions: [store.register, store.label]
    environments: [production]
    approvals: 1
    approver_role: approver
    expires_after: EXPIRY
)";

std::string TeamPolicy(const std::string& expiry = "1h") {
  std::string p = kTeamPolicy;
  p.replace(p.find("EXPIRY"), 6, expiry);
  return p;
}

class Authority : public ServerTest {
 protected:
  void SetUp() override {
    ServerTest::SetUp();
    WritePolicy(TeamPolicy());
    StartServer({"--config", WriteConfig()});
    for (const auto* p : {"alice", "bob", "carol", "dave", "eve", "walt", "audrey"}) tokens_[p] = CreateToken(p);
  }

  std::string WriteConfig() {
    const auto path = dir_->path() + "/config.yaml";
    std::ofstream(path) << "audit:\n  checkpoint_every_records: 5\n";
    return path;
  }

  client::HttpResponse RegisterAs(const std::string& who, const std::string& id, const std::string& env,
                                  const std::string& labels = "{}") {
    return CallAs(
        tokens_[who], "POST", "/v1/stores",
        R"({"id":")" + id + R"(","environment":")" + env + R"(","isolation_mode":"shared","labels":)" + labels + "}",
        {{"Content-Type", "application/json"}});
  }
  client::HttpResponse Approve(const std::string& who, const std::string& change) {
    return CallAs(tokens_[who], "POST", "/v1/changes/" + change + "/approve");
  }
  std::string PendingChange(const std::string& who, const std::string& id) {
    auto resp = RegisterAs(who, id, "production");
    EXPECT_EQ(resp.status, 202) << resp.body;
    EXPECT_EQ(Json(resp)["status"].as_string(), "pending");
    return std::string(Json(resp)["id"].as_string());
  }
  std::vector<boost::json::object> AuditRecords(const std::string& query = "") {
    std::vector<boost::json::object> out;
    auto resp = Call("GET", "/v1/audit?limit=1000" + query);
    EXPECT_EQ(resp.status, 200) << resp.body;
    const auto body = Json(resp);
    for (const auto& item : body.at("items").as_array()) out.push_back(item.as_object());
    return out;
  }

  // Waits (up to 20 s) for `text` to appear in the server's log.
  bool WaitForLog(const std::string& text) {
    for (int i = 0; i < 400; ++i) {
      if (server_->Logs().find(text) != std::string::npos) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

  std::map<std::string, std::string> tokens_;
};

TEST_F(Authority, ProductionRegistrationWaitsForAnotherPrincipalsApproval) {
  const auto change = PendingChange("alice", "prod-shop");
  ExpectProblem(Call("GET", "/v1/stores/prod-shop"), 404, "not-found");  // not executed yet

  auto approved = Approve("bob", change);
  ASSERT_EQ(approved.status, 200) << approved.body;
  EXPECT_EQ(Json(approved)["status"].as_string(), "executed");
  EXPECT_EQ(Call("GET", "/v1/stores/prod-shop").status, 200);

  // Approving again executes nothing twice.
  ExpectProblem(Approve("carol", change), 409, "conflict");
  // Requester, approver and the execution are all in the trail.
  const auto records = AuditRecords("&target=store/prod-shop");
  int pending = 0, executed = 0;
  for (const auto& r : records) {
    if (r.at("outcome").as_string() == "pending_approval" && r.at("principal").as_string() == "alice") ++pending;
    if (r.at("action").as_string() == "store.register" && r.at("outcome").as_string() == "ok") {
      ++executed;
      EXPECT_EQ(r.at("principal").as_string(), "alice");
      EXPECT_EQ(r.at("params").as_object().at("approved_by").as_string(), "bob");
    }
  }
  EXPECT_EQ(pending, 1);
  EXPECT_EQ(executed, 1);
  const auto approvals = AuditRecords("&action=change.approve");
  ASSERT_FALSE(approvals.empty());
  EXPECT_EQ(approvals.front().at("principal").as_string(), "bob");
}

TEST_F(Authority, SelfApprovalIsRefusedEvenWithASecondToken) {
  const auto change = PendingChange("dave", "self-shop");
  ExpectProblem(Approve("dave", change), 403, "forbidden");
  const auto second = CreateToken("dave");
  ASSERT_NE(second, tokens_["dave"]);
  ExpectProblem(CallAs(second, "POST", "/v1/changes/" + change + "/approve"), 403, "forbidden");
  // Nor can a principal without the approver role approve.
  ExpectProblem(Approve("alice", change), 403, "forbidden");
  auto got = Call("GET", "/v1/changes/" + change);
  EXPECT_EQ(Json(got)["status"].as_string(), "pending");
  ExpectProblem(Call("GET", "/v1/stores/self-shop"), 404, "not-found");
}

TEST_F(Authority, ATokenCreatedByTheRequesterCannotApproveItsChange) {
  // admin holds token.create: every approver token here was created by admin, so none of
  // them may approve admin's own change.
  auto resp = Register("sod-shop", "production");
  ASSERT_EQ(resp.status, 202) << resp.body;
  const std::string change(Json(resp)["id"].as_string());
  auto refused = Approve("bob", change);
  ExpectProblem(refused, 403, "forbidden");
  EXPECT_NE(refused.body.find("created by the change's requester"), std::string::npos) << refused.body;
  EXPECT_EQ(Json(Call("GET", "/v1/changes/" + change))["status"].as_string(), "pending");
}

TEST_F(Authority, ConcurrentApprovalsExecuteExactlyOnce) {
  for (int round = 0; round < 5; ++round) {
    const auto id = "race-" + std::to_string(round);
    const auto change = PendingChange("alice", id);
    long statuses[2] = {0, 0};
    std::thread a([&] {
      client::HttpClient http;
      auto r = http.Send({"POST",
                          server_->url() + "/v1/changes/" + change + "/approve",
                          {{"Authorization", "Bearer " + tokens_["bob"]}},
                          "",
                          10000});
      statuses[0] = r.ok() ? r->status : -1;
    });
    std::thread b([&] {
      client::HttpClient http;
      auto r = http.Send({"POST",
                          server_->url() + "/v1/changes/" + change + "/approve",
                          {{"Authorization", "Bearer " + tokens_["carol"]}},
                          "",
                          10000});
      statuses[1] = r.ok() ? r->status : -1;
    });
    a.join();
    b.join();
    EXPECT_EQ((statuses[0] == 200) + (statuses[1] == 200), 1) << statuses[0] << " " << statuses[1];
    EXPECT_EQ((statuses[0] == 409) + (statuses[1] == 409), 1) << statuses[0] << " " << statuses[1];
    EXPECT_EQ(AuditRecords("&target=store/" + id + "&action=store.register").size(), 2u);  // request + execution
    EXPECT_EQ(Call("GET", "/v1/stores/" + id).status, 200);
  }
}

TEST_F(Authority, AnExpiredChangeCannotBeApproved) {
  WritePolicy(TeamPolicy("1s"));
  StartServer({"--config", WriteConfig()});
  const auto change = PendingChange("alice", "late-shop");
  std::this_thread::sleep_for(std::chrono::milliseconds(1300));
  EXPECT_EQ(Json(Call("GET", "/v1/changes/" + change))["status"].as_string(), "expired");
  ExpectProblem(Approve("bob", change), 409, "conflict");
  ExpectProblem(Call("GET", "/v1/stores/late-shop"), 404, "not-found");
  EXPECT_EQ(Json(Call("GET", "/v1/changes/" + change))["status"].as_string(), "expired");
}

TEST_F(Authority, RejectedChangesNeverRun) {
  const auto change = PendingChange("alice", "no-shop");
  auto rejected = CallAs(tokens_["bob"], "POST", "/v1/changes/" + change + "/reject", R"({"reason":"not now"})",
                         {{"Content-Type", "application/json"}});
  ASSERT_EQ(rejected.status, 200) << rejected.body;
  EXPECT_EQ(Json(rejected)["status"].as_string(), "rejected");
  ExpectProblem(Approve("carol", change), 409, "conflict");
  ExpectProblem(Call("GET", "/v1/stores/no-shop"), 404, "not-found");
}

TEST_F(Authority, ObjectScopeHidesStoresOutsideIt) {
  ASSERT_EQ(RegisterAs("alice", "web-stg", "staging", R"({"team":"web"})").status, 201);
  ASSERT_EQ(RegisterAs("alice", "api-stg", "staging", R"({"team":"api"})").status, 201);
  ASSERT_EQ(RegisterAs("alice", "web-dev", "development", R"({"team":"web"})").status, 201);

  auto list = CallAs(tokens_["eve"], "GET", "/v1/stores");
  ASSERT_EQ(list.status, 200) << list.body;
  const auto items = Json(list)["items"].as_array();
  ASSERT_EQ(items.size(), 1u) << list.body;
  EXPECT_EQ(items[0].as_object().at("id").as_string(), "web-stg");
  // Filters cannot widen the scope; guessed ids are simply not there.
  EXPECT_TRUE(Json(CallAs(tokens_["eve"], "GET", "/v1/stores?environment=development"))["items"].as_array().empty());
  EXPECT_EQ(CallAs(tokens_["eve"], "GET", "/v1/stores/web-stg").status, 200);
  ExpectProblem(CallAs(tokens_["eve"], "GET", "/v1/stores/api-stg"), 404, "not-found");
  ExpectProblem(CallAs(tokens_["eve"], "GET", "/v1/stores/web-dev"), 404, "not-found");
  // Paging over a scoped list still returns exactly the visible stores.
  auto page = CallAs(tokens_["eve"], "GET", "/v1/stores?limit=1");
  EXPECT_TRUE(Json(page)["next_cursor"].is_null()) << page.body;

  // A label-scoped operator cannot move a store out of its scope, nor touch others.
  ExpectProblem(CallAs(tokens_["walt"], "PATCH", "/v1/stores/web-stg", R"({"labels":{"team":"api"}})",
                       {{"Content-Type", "application/merge-patch+json"}, {"If-Match", "\"1\""}}),
                403, "forbidden");
  ExpectProblem(CallAs(tokens_["walt"], "PATCH", "/v1/stores/api-stg", R"({"labels":{"team":"web"}})",
                       {{"Content-Type", "application/merge-patch+json"}, {"If-Match", "\"1\""}}),
                404, "not-found");
  EXPECT_EQ(CallAs(tokens_["walt"], "PATCH", "/v1/stores/web-stg", R"({"labels":{"team":"web","tier":"gold"}})",
                   {{"Content-Type", "application/merge-patch+json"}, {"If-Match", "\"1\""}})
                .status,
            200);
}

TEST_F(Authority, UnlistedActionsAreDeniedWithTheActionNamed) {
  auto resp = CallAs(tokens_["eve"], "POST", "/v1/stores",
                     R"({"id":"x1","environment":"staging","isolation_mode":"shared","labels":{"team":"web"}})",
                     {{"Content-Type", "application/json"}});
  ExpectProblem(resp, 403, "forbidden");
  EXPECT_NE(resp.body.find("store.register"), std::string::npos) << resp.body;
  EXPECT_EQ(resp.body.find("web-staging-viewer"), std::string::npos) << "no policy internals: " << resp.body;
  ExpectProblem(CallAs(tokens_["alice"], "GET", "/v1/audit"), 403, "forbidden");
  ExpectProblem(CallAs(tokens_["alice"], "POST", "/v1/tokens", R"({"principal":"alice"})",
                       {{"Content-Type", "application/json"}}),
                403, "forbidden");
  ExpectProblem(CallAs(tokens_["audrey"], "GET", "/v1/stores/anything"), 404, "not-found");
  // Denials are audited too (queued to the writer, so give it a moment).
  bool found = false;
  for (int attempt = 0; attempt < 100 && !found; ++attempt) {
    if (attempt > 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    for (const auto& r : AuditRecords("&principal=eve&action=store.register")) {
      found = found || (r.at("decision").as_string() == "deny" && r.at("outcome").as_string() == "denied");
    }
  }
  EXPECT_TRUE(found);
}

TEST_F(Authority, RevokedTokensStopWorkingAtOnce) {
  ASSERT_EQ(CallAs(tokens_["alice"], "GET", "/v1/whoami").status, 200);
  auto list = Call("GET", "/v1/tokens?principal=alice");
  ASSERT_EQ(list.status, 200);
  const auto items = Json(list)["items"].as_array();
  ASSERT_EQ(items.size(), 1u);
  EXPECT_FALSE(items[0].as_object().contains("token"));
  const std::string id(items[0].as_object().at("id").as_string());
  ASSERT_EQ(Call("DELETE", "/v1/tokens/" + id).status, 200);
  ExpectProblem(CallAs(tokens_["alice"], "GET", "/v1/whoami"), 401, "unauthenticated");
  ExpectProblem(Call("DELETE", "/v1/tokens/" + id), 409, "conflict");
  ExpectProblem(Call("POST", "/v1/tokens", R"({"principal":"mallory"})", {{"Content-Type", "application/json"}}), 422,
                "validation-failed");
}

TEST_F(Authority, ExplainSaysWhyWithoutActing) {
  auto explain = [&](const std::string& body) {
    auto resp = Call("POST", "/v1/authz/explain", body, {{"Content-Type", "application/json"}});
    EXPECT_EQ(resp.status, 200) << resp.body;
    return Json(resp);
  };
  auto a = explain(R"({"principal":"alice","action":"store.register","target":{"environment":"production"}})");
  EXPECT_TRUE(a["allowed"].as_bool());
  EXPECT_EQ(a["approval"].as_object().at("approver_role").as_string(), "approver");
  auto b = explain(
      R"({"principal":"eve","action":"store.read","target":{"environment":"staging","labels":{"team":"api"}}})");
  EXPECT_FALSE(b["allowed"].as_bool());
  EXPECT_EQ(b["rule"].as_string(), "default-deny");
  auto c = explain(R"({"principal":"bob","action":"change.approve","target":{"environment":"production"}})");
  EXPECT_TRUE(c["allowed"].as_bool());
  ExpectProblem(Call("POST", "/v1/authz/explain", R"({"principal":"bob","action":"store.destroy"})",
                     {{"Content-Type", "application/json"}}),
                422, "validation-failed");
}

TEST_F(Authority, ABadReloadKeepsTheOldPolicyAndAGoodOneIsSwappedIn) {
  ASSERT_EQ(RegisterAs("alice", "before-reload", "staging").status, 201);
  WritePolicy("version: 1\nroles:\n  operator:\n    allow:\n      - actions: [store.destroy]\n");
  server_->SendSignal(SIGHUP);
  ASSERT_TRUE(WaitForLog("policy reload refused")) << server_->Logs();
  EXPECT_EQ(RegisterAs("alice", "after-bad-reload", "staging").status, 201);

  std::string without_alice = TeamPolicy();
  without_alice.replace(without_alice.find("alice: {kind: operator, roles: [operator]}"), 42,
                        "alice: {kind: operator, roles: [viewer]}");
  WritePolicy(without_alice);
  server_->SendSignal(SIGHUP);
  ASSERT_TRUE(WaitForLog("\"msg\":\"policy reloaded\"")) << server_->Logs();
  ExpectProblem(RegisterAs("alice", "after-good-reload", "staging"), 403, "forbidden");
  int ok = 0, refused = 0;
  for (const auto& r : AuditRecords("&action=policy.reload")) {
    if (r.at("params").as_object().at("reason").as_string() != "sighup") continue;  // loads at start
    if (r.at("outcome").as_string() == "ok") ++ok;
    if (r.at("outcome").as_string() == "error:invalid") ++refused;
  }
  EXPECT_EQ(ok, 1);
  EXPECT_EQ(refused, 1);
}

TEST(AuthorityStartup, ABadPolicyFileStopsTheServerWithFileAndLine) {
  TempDir dir;
  const auto policy = dir.path() + "/policy.yaml";
  std::ofstream(policy) << "version: 1\nroles:\n  operator:\n    allow:\n      - actions: [store.destroy]\n";
  ServerOptions options;
  options.data_dir = dir.path() + "/data";
  options.extra_args = {"--policy", policy};
  ServerProcess server(options);
  EXPECT_FALSE(server.Start());
  EXPECT_NE(server.Logs().find("policy.yaml:5"), std::string::npos) << server.Logs();
  EXPECT_NE(server.Logs().find("store.destroy"), std::string::npos) << server.Logs();
}

}  // namespace
}  // namespace storeplane::testing
