// The authority and audit commands against a real storeplaned started with a test policy:
// admin (security-admin, operator, auditor), alice (operator) and bob (approver). Covers
// tokens (shown once, revocation on the next request), a production registration that
// waits for a second person, explain, and the audit trail: list, export and verify
// (live and offline, intact and edited).
#include <boost/json.hpp>

#include <gtest/gtest.h>
#include <fstream>
#include <string>
#include <vector>

#include "cli_test_support.h"
#include "client/http_client.h"
#include "support/server_process.h"

namespace storeplane {
namespace {

using testing::CliRun;
using testing::Lines;
using testing::OneErrorLine;
using testing::RunCli;
using testing::ServerOptions;
using testing::ServerProcess;
using testing::TempDir;
namespace json = boost::json;

constexpr const char* kPolicy = R"(version: 1
roles:
  operator:
    description: Runs the store lifecycle; production changes wait for an approver.
    allow:
      - actions: [store.read, change.read, principal.whoami]
      - actions: [store.register, store.label]
  approver:
    description: Approves or rejects change requests made by someone else.
    allow:
      - actions: [store.read, change.read, principal.whoami]
      - actions: [change.approve, change.reject]
  auditor:
    description: Reads and exports the audit trail.
    allow:
      - actions: [audit.read, audit.export, principal.whoami]
  security-admin:
    description: Manages tokens and explains decisions; never decides on changes.
    allow:
      - actions: [token.*, audit.read, authz.explain, principal.whoami]
    deny:
      - actions: [change.approve, change.reject]
principals:
  admin:
    kind: operator
    roles: [security-admin, operator, auditor]
  alice:
    kind: operator
    roles: [operator]
  bob:
    kind: operator
    roles: [approver]
approvals:
  - actions: [store.register]
    environments: [production]
    approvals: 1
    approver_role: approver
    expires_after: 24h
)";

class CliAuthorityServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    data_dir_ = new TempDir();
    std::string policy = data_dir_->path() + "/policy.yaml";
    std::ofstream(policy) << kPolicy;
    ServerOptions options;
    options.data_dir = data_dir_->path() + "/data";
    options.extra_args = {"--policy", policy};
    server_ = new ServerProcess(options);
    started_ = server_->Start();
  }
  static void TearDownTestSuite() {
    if (server_->running()) server_->Stop();
    delete server_;
    delete data_dir_;
    server_ = nullptr;
    data_dir_ = nullptr;
  }
  void SetUp() override {
    ASSERT_TRUE(started_) << server_->error();
    ASSERT_FALSE(server_->token().empty()) << "storeplaned printed no STOREPLANE_TOKEN line on first start";
  }

  // As admin, or with the given token.
  static CliRun Cli(std::vector<std::string> args, const std::string& token = server_->token()) {
    args.insert(args.end(), {"--server", server_->url(), "--token", token});
    return RunCli(args);
  }

  // A fresh token for `principal`, created by admin.
  static std::string TokenFor(const std::string& principal) {
    CliRun run = Cli({"tokens", "create", "--principal", principal, "--description", "cli test", "-o", "json"});
    EXPECT_EQ(run.exit_code, 0) << run;
    boost::system::error_code ec;
    json::value created = json::parse(run.out, ec);
    if (ec || !created.is_object() || !created.as_object().contains("token")) {
      ADD_FAILURE() << "no token in: " << run;
      return {};
    }
    return std::string(created.at("token").as_string());
  }

  static std::string ChangeIdOf(const CliRun& run) {
    boost::system::error_code ec;
    json::value change = json::parse(run.out, ec);
    if (ec || !change.is_object() || !change.as_object().contains("id")) return {};
    return std::string(change.at("id").as_string());
  }

  static TempDir* data_dir_;
  static ServerProcess* server_;
  static bool started_;
};

TempDir* CliAuthorityServerTest::data_dir_ = nullptr;
ServerProcess* CliAuthorityServerTest::server_ = nullptr;
bool CliAuthorityServerTest::started_ = false;

TEST_F(CliAuthorityServerTest, TokensAreShownOnceAndRevokedOnTheNextRequest) {
  CliRun created = Cli({"tokens", "create", "--principal", "alice", "--description", "laptop", "--expires-in", "1d"});
  ASSERT_EQ(created.exit_code, 0) << created;
  std::string token = Lines(created.out).at(0);
  EXPECT_EQ(token.rfind("spt_", 0), 0u) << created;
  EXPECT_NE(created.err.find("not shown again"), std::string::npos) << created;

  CliRun me = Cli({"whoami", "-o", "json"}, token);
  ASSERT_EQ(me.exit_code, 0) << me;
  EXPECT_EQ(json::parse(me.out).at("id"), "alice");

  CliRun list = Cli({"tokens", "list", "--principal", "alice", "-o", "json"});
  ASSERT_EQ(list.exit_code, 0) << list;
  EXPECT_EQ(list.out.find(token), std::string::npos) << "token text listed";
  std::string id;
  const json::value listed = json::parse(list.out);
  for (const auto& item : listed.at("items").as_array()) {
    EXPECT_EQ(item.at("principal"), "alice");
    EXPECT_FALSE(item.as_object().contains("token"));
    if (item.at("description") == "laptop") id = std::string(item.at("id").as_string());
  }
  ASSERT_FALSE(id.empty()) << list;

  CliRun forbidden = Cli({"tokens", "list"}, token);  // alice is an operator only
  EXPECT_EQ(forbidden.exit_code, 4) << forbidden;
  EXPECT_TRUE(OneErrorLine(forbidden));

  CliRun revoked = Cli({"tokens", "revoke", id});
  ASSERT_EQ(revoked.exit_code, 0) << revoked;
  CliRun after = Cli({"whoami"}, token);
  EXPECT_EQ(after.exit_code, 4) << after;
  EXPECT_TRUE(OneErrorLine(after));
  CliRun again = Cli({"tokens", "revoke", id});
  EXPECT_EQ(again.exit_code, 5) << again;
  CliRun missing = Cli({"tokens", "revoke", "tok_nope"});
  EXPECT_EQ(missing.exit_code, 3) << missing;

  CliRun unknown = Cli({"tokens", "create", "--principal", "nobody"});
  EXPECT_EQ(unknown.exit_code, 7) << unknown;
  EXPECT_TRUE(OneErrorLine(unknown));
}

TEST_F(CliAuthorityServerTest, AProductionRegistrationWaitsForASecondPerson) {
  std::string alice = TokenFor("alice");
  std::string bob = TokenFor("bob");

  CliRun dev =
      Cli({"stores", "register", "auth-dev", "--environment", "development", "--isolation-mode", "shared"}, alice);
  EXPECT_EQ(dev.exit_code, 0) << dev;
  EXPECT_EQ(dev.out, "store auth-dev registered\n");

  CliRun prod = Cli(
      {"stores", "register", "auth-prod", "--environment", "production", "--isolation-mode", "dedicated", "-o", "json"},
      alice);
  ASSERT_EQ(prod.exit_code, 0) << prod;
  std::string change = ChangeIdOf(prod);
  ASSERT_EQ(change.rfind("chg_", 0), 0u) << prod;
  EXPECT_EQ(json::parse(prod.out).at("status"), "pending");
  EXPECT_NE(prod.err.find("approval required: change " + change + " is pending"), std::string::npos) << prod;
  EXPECT_EQ(Cli({"stores", "get", "auth-prod"}).exit_code, 3) << "registered before approval";

  CliRun pending = Cli({"changes", "list", "--status", "pending", "-o", "json"}, bob);
  ASSERT_EQ(pending.exit_code, 0) << pending;
  EXPECT_NE(pending.out.find(change), std::string::npos) << pending;

  CliRun self = Cli({"changes", "approve", change}, alice);
  EXPECT_EQ(self.exit_code, 4) << self;
  EXPECT_TRUE(OneErrorLine(self));
  CliRun self_again = Cli({"changes", "approve", change}, TokenFor("alice"));  // another token, same person
  EXPECT_EQ(self_again.exit_code, 4) << self_again;
  CliRun admin = Cli({"changes", "approve", change});
  EXPECT_EQ(admin.exit_code, 4) << admin;

  CliRun approved = Cli({"changes", "approve", change}, bob);
  ASSERT_EQ(approved.exit_code, 0) << approved;
  EXPECT_NE(approved.out.find("executed"), std::string::npos) << approved;
  EXPECT_EQ(Cli({"stores", "get", "auth-prod"}).exit_code, 0);
  CliRun twice = Cli({"changes", "approve", change}, bob);
  EXPECT_EQ(twice.exit_code, 5) << twice;
  EXPECT_TRUE(OneErrorLine(twice));

  CliRun other = Cli({"stores", "register", "auth-prod-2", "--environment", "production", "--isolation-mode",
                      "dedicated", "-o", "json"},
                     alice);
  ASSERT_EQ(other.exit_code, 0) << other;
  std::string second = ChangeIdOf(other);
  CliRun rejected = Cli({"changes", "reject", second, "--reason", "not during the sale"}, bob);
  ASSERT_EQ(rejected.exit_code, 0) << rejected;
  EXPECT_EQ(rejected.out, "change " + second + " rejected\n");
  CliRun got = Cli({"changes", "get", second, "-o", "json"}, bob);
  ASSERT_EQ(got.exit_code, 0) << got;
  EXPECT_EQ(json::parse(got.out).at("status"), "rejected");
  EXPECT_EQ(Cli({"stores", "get", "auth-prod-2"}).exit_code, 3);
}

TEST_F(CliAuthorityServerTest, ExplainNamesTheRuleAndTheApproval) {
  CliRun prod = Cli({"authz", "explain", "--principal", "alice", "--action", "store.register", "--environment",
                     "production", "-o", "json"});
  ASSERT_EQ(prod.exit_code, 0) << prod;
  json::value answer = json::parse(prod.out);
  EXPECT_EQ(answer.at("allowed"), true);
  EXPECT_TRUE(answer.at("approval").is_object()) << prod;

  CliRun dev =
      Cli({"authz", "explain", "--principal", "alice", "--action", "store.register", "--environment", "development"});
  ASSERT_EQ(dev.exit_code, 0) << dev;
  EXPECT_NE(dev.out.find("allowed"), std::string::npos) << dev;
  EXPECT_NE(dev.out.find("not needed"), std::string::npos) << dev;

  CliRun bob =
      Cli({"authz", "explain", "--principal", "bob", "--action", "store.register", "--environment", "development"});
  ASSERT_EQ(bob.exit_code, 0) << bob;
  EXPECT_NE(bob.out.find("denied"), std::string::npos) << bob;

  CliRun as_alice = Cli({"authz", "explain", "--principal", "alice", "--action", "store.read"}, TokenFor("alice"));
  EXPECT_EQ(as_alice.exit_code, 4) << as_alice;  // authz.explain is security-admin's
}

TEST_F(CliAuthorityServerTest, TheAuditTrailListsExportsAndVerifies) {
  std::string alice = TokenFor("alice");
  ASSERT_EQ(Cli({"stores", "register", "audit-one", "--environment", "staging", "--isolation-mode", "shared"}, alice)
                .exit_code,
            0);
  EXPECT_EQ(Cli({"stores", "get", "no-such-store"}, alice).exit_code, 3);
  EXPECT_EQ(Cli({"tokens", "list"}, alice).exit_code, 4);  // denied, and audited

  CliRun mine = Cli({"audit", "list", "--all", "--principal", "alice", "-o", "json"});
  ASSERT_EQ(mine.exit_code, 0) << mine;
  bool saw_register = false;
  bool saw_denial = false;
  const json::value mine_json = json::parse(mine.out);
  for (const auto& record : mine_json.at("items").as_array()) {
    EXPECT_EQ(record.at("principal"), "alice");
    if (record.at("action") == "store.register" && record.at("target") == "store/audit-one") saw_register = true;
    if (record.at("decision") == "deny") saw_denial = true;
  }
  EXPECT_TRUE(saw_register) << mine;
  EXPECT_TRUE(saw_denial) << mine;
  EXPECT_EQ(Cli({"audit", "list"}, alice).exit_code, 4);

  CliRun live = Cli({"audit", "verify"});
  ASSERT_EQ(live.exit_code, 0) << live;
  EXPECT_EQ(live.out.rfind("audit chain OK: ", 0), 0u) << live;
  EXPECT_NE(live.err.find("internally consistent"), std::string::npos) << live;

  // The public key, as an operator would keep it apart from the server.
  client::HttpClient http;
  auto key_reply = http.Send(client::HttpRequest{
      "GET", server_->url() + "/v1/audit/public-key", {{"Authorization", "Bearer " + server_->token()}}, "", 10000});
  ASSERT_TRUE(key_reply.ok());
  ASSERT_EQ(key_reply->status, 200) << key_reply->body;
  TempDir dir;
  std::string key = dir.path() + "/audit.pub.pem";
  std::ofstream(key) << json::parse(key_reply->body).at("public_key_pem").as_string().c_str();

  CliRun with_key = Cli({"audit", "verify", "--public-key", key});
  ASSERT_EQ(with_key.exit_code, 0) << with_key;

  std::string file = dir.path() + "/audit.ndjson";
  CliRun exported = Cli({"audit", "export", "-f", file});
  ASSERT_EQ(exported.exit_code, 0) << exported;
  CliRun offline = RunCli({"audit", "verify", "--file", file, "--public-key", key});
  ASSERT_EQ(offline.exit_code, 0) << offline;

  // An edited line of a real export is named.
  std::ifstream in(file);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  ASSERT_GE(lines.size(), 3u);
  json::object second = json::parse(lines[1]).as_object();
  ASSERT_EQ(second.at("kind"), "record");
  second["outcome"] = "ok-but-edited";
  lines[1] = json::serialize(second);
  std::string edited = dir.path() + "/edited.ndjson";
  {
    std::ofstream out(edited);
    for (const auto& line : lines) out << line << "\n";
  }
  CliRun bad = RunCli({"audit", "verify", "--file", edited, "--public-key", key});
  EXPECT_EQ(bad.exit_code, 8) << bad;
  EXPECT_TRUE(OneErrorLine(bad));
  EXPECT_NE(bad.err.find("at record " + std::to_string(second.at("seq").as_int64()) + ": "), std::string::npos) << bad;
}

}  // namespace
}  // namespace storeplane
