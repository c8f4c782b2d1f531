// The policy file loader (src/server/policy_loader.h): the YAML shape, errors naming
// file:line and the problem, the source hash, and the built-in default policy being the
// same text as config/policy.yaml.
#include "server/policy_loader.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace storeplane::server {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

const std::string kConfigPolicy = std::string(STOREPLANE_SOURCE_DIR) + "/config/policy.yaml";

void ExpectError(const std::string& text, const std::string& expected) {
  Result<core::Policy> policy = ParsePolicyText(text, "policy.yaml");
  ASSERT_FALSE(policy.ok()) << "expected: " << expected << "\n--- text ---\n" << text;
  EXPECT_EQ(policy.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(policy.error().message.find(expected), std::string::npos)
      << "got: " << policy.error().message << "\nexpected: " << expected;
}

TEST(PolicyLoaderTest, DefaultPolicyTextEqualsConfigPolicyYaml) {
  const std::string file = ReadFile(kConfigPolicy);
  ASSERT_FALSE(file.empty()) << kConfigPolicy;
  EXPECT_EQ(DefaultPolicyText(), file) << "src/server/policy_loader.cc must hold config/policy.yaml byte for byte";
}

TEST(PolicyLoaderTest, LoadsConfigPolicyWithItsHash) {
  Result<core::Policy> loaded = LoadPolicyFile(kConfigPolicy);
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  Result<core::Policy> builtin = ParsePolicyText(DefaultPolicyText(), "default");
  ASSERT_TRUE(builtin.ok()) << builtin.error().message;
  EXPECT_EQ(loaded->source_hash.size(), 64u);
  EXPECT_EQ(loaded->source_hash, builtin->source_hash);
  EXPECT_EQ(loaded->roles.size(), 6u);
  EXPECT_TRUE(core::ValidatePolicy(*loaded).ok());
}

TEST(PolicyLoaderTest, SourceHashIsSha256OfTheBytes) {
  Result<core::Policy> p = ParsePolicyText("version: 1\nroles: {}\nprincipals: {}\n", "p.yaml");
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->source_hash, "e342bde40d72ce20a3730b5135640a1e46bab466c9edff113dadda34770c18b8");
  // A comment changes the bytes and so the hash, not the meaning.
  Result<core::Policy> q = ParsePolicyText("# c\nversion: 1\nroles: {}\nprincipals: {}\n", "p.yaml");
  ASSERT_TRUE(q.ok());
  EXPECT_NE(q->source_hash, p->source_hash);
}

TEST(PolicyLoaderTest, ParsesEveryPartOfTheFormat) {
  const std::string text = R"(version: 1
roles:
  web-ops:
    description: web team
    allow:
      - actions: [store.read, operation.run.*]
        environments: [staging, production]
        selector: "team=web,!legacy"
      - actions: [change.read]
    deny:
      - actions: [operation.run.cache.flush]
        environments: [production]
  approvers:
    allow:
      - actions: [change.approve, change.reject]
principals:
  alice:
    kind: operator
    roles: [web-ops]
  ci.github:
    kind: service
    roles: [web-ops, approvers]
approvals:
  - actions: [operation.run.maintenance.*]
    environments: [production]
    approvals: 2
    approver_role: approvers
    expires_after: 90m
  - actions: [store.decommission]
    approver_role: approvers
)";
  Result<core::Policy> p = ParsePolicyText(text, "p.yaml", core::EnvironmentSet{});
  ASSERT_TRUE(p.ok()) << p.error().message;
  const core::Role& web = p->roles.at("web-ops");
  EXPECT_EQ(web.description, "web team");
  ASSERT_EQ(web.allow.size(), 2u);
  EXPECT_EQ(web.allow[0].id, "web-ops/allow/1");
  EXPECT_EQ(web.allow[0].actions, (std::vector<std::string>{"store.read", "operation.run.*"}));
  EXPECT_EQ(web.allow[0].environments, (std::set<std::string>{"production", "staging"}));
  EXPECT_EQ(web.allow[0].selector.ToString(), "!legacy,team=web");  // canonical order
  EXPECT_EQ(web.allow[1].id, "web-ops/allow/2");
  ASSERT_EQ(web.deny.size(), 1u);
  EXPECT_EQ(web.deny[0].id, "web-ops/deny/1");
  EXPECT_EQ(p->principals.at("ci.github").kind, "service");
  EXPECT_EQ(p->principals.at("ci.github").roles, (std::vector<std::string>{"web-ops", "approvers"}));
  ASSERT_EQ(p->approvals.size(), 2u);
  EXPECT_EQ(p->approvals[0].id, "approval/1");
  EXPECT_EQ(p->approvals[0].approvals, 2);
  EXPECT_EQ(p->approvals[0].expires_after_ms, 90LL * 60 * 1000);
  EXPECT_EQ(p->approvals[1].id, "approval/2");
  EXPECT_EQ(p->approvals[1].approvals, 1);                          // default
  EXPECT_EQ(p->approvals[1].expires_after_ms, 24LL * 3600 * 1000);  // default
  EXPECT_TRUE(p->approvals[1].environments.empty());                // every environment

  const core::AuthzTarget prod_web{"s", "production", {{"team", "web"}}};
  EXPECT_TRUE(core::Decide(*p, "alice", "operation.run.health.probe", prod_web).allowed);
  EXPECT_FALSE(core::Decide(*p, "alice", "operation.run.cache.flush", prod_web).allowed);
  EXPECT_NE(core::Decide(*p, "alice", "operation.run.maintenance.enable", prod_web).approval, nullptr);
  EXPECT_FALSE(
      core::Decide(*p, "alice", "store.read", core::AuthzTarget{"s", "production", {{"team", "api"}}}).allowed);
  EXPECT_FALSE(
      core::Decide(*p, "alice", "store.read", core::AuthzTarget{"s", "development", {{"team", "web"}}}).allowed);
}

TEST(PolicyLoaderTest, ConfiguredEnvironmentsReplaceTheDefaultOnes) {
  const std::string text =
      "version: 1\nroles:\n  r:\n    allow:\n      - actions: [store.read]\n        environments: [qa]\n"
      "principals: {}\n";
  ExpectError(text, "policy.yaml:6: unknown environment 'qa' (known: development, production, staging)");
  core::EnvironmentSet envs;
  envs.names = {"qa", "live"};
  Result<core::Policy> p = ParsePolicyText(text, "policy.yaml", envs);
  EXPECT_TRUE(p.ok()) << p.error().message;
}

TEST(PolicyLoaderTest, UnknownActionNamesFileAndLine) {
  ExpectError(R"(version: 1
roles:
  viewer:
    allow:
      - actions: [store.read]
      - actions:
          - store.destroy
principals: {}
)",
              "policy.yaml:7: unknown action 'store.destroy'");
}

// Each malformed document and the "file:line: problem" it must produce.
TEST(PolicyLoaderTest, MalformedFilesNameLineAndProblem) {
  const std::string head = "version: 1\nroles:\n  r:\n    allow:\n      - actions: [store.read, change.approve]\n";
  struct Case {
    std::string text;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {"", "policy.yaml: the policy is empty"},
      {"version: 1\nroles: [\n", "policy.yaml:3: not valid YAML"},
      {"- a\n- b\n", "policy.yaml:1: the policy must be a mapping"},
      {"roles: {}\nprincipals: {}\n", "policy.yaml:1: missing 'version'"},
      {"version: 2\nroles: {}\nprincipals: {}\n", "policy.yaml:1: unsupported version '2'"},
      {"version: 1\nprincipals: {}\n", "policy.yaml:1: missing 'roles'"},
      {"version: 1\nroles: {}\n", "policy.yaml:1: missing 'principals'"},
      {"version: 1\nroles: {}\nprincipals: {}\nextras: 1\n", "policy.yaml:4: unknown key 'extras' in the policy"},
      {"version: 1\nroles:\n  r:\n    alow: []\nprincipals: {}\n", "policy.yaml:4: unknown key 'alow' in role 'r'"},
      {"version: 1\nroles:\n  r:\n    allow:\n      - action: [store.read]\nprincipals: {}\n",
       "policy.yaml:5: unknown key 'action' in a rule"},
      {"version: 1\nroles:\n  r:\n    allow:\n      - environments: [staging]\nprincipals: {}\n",
       "policy.yaml:5: a rule needs 'actions'"},
      {"version: 1\nroles:\n  r:\n    allow:\n      - actions: []\nprincipals: {}\n",
       "policy.yaml:5: a rule needs at least one action"},
      {"version: 1\nroles:\n  r:\n    allow:\n      - actions: store.read\nprincipals: {}\n",
       "policy.yaml:5: 'actions' must be a list"},
      {"version: 1\nroles:\n  r:\n    allow:\n      - actions: [\"*\"]\nprincipals: {}\n",
       "policy.yaml:5: '*' is not allowed: authority is never granted wholesale"},
      {"version: 1\nroles:\n  r:\n    allow:\n      - actions: [store*]\nprincipals: {}\n",
       "policy.yaml:5: bad wildcard 'store*'"},
      {"version: 1\nroles:\n  r:\n    deny:\n      - actions: [policy.reload]\nprincipals: {}\n",
       "policy.yaml:5: 'policy.reload' is performed by the server only"},
      {"version: 1\nroles:\n  r:\n    allow:\n      - actions: [store.read]\n        selector: \"team in (a\"\n"
       "principals: {}\n",
       "policy.yaml:6: bad selector:"},
      {"version: 1\nroles:\n  r:\n    allow:\n      - actions: [audit.read]\n        environments: [production]\n"
       "principals: {}\n",
       "policy.yaml:5: 'audit.read' is a global action"},
      {"version: 1\nroles:\n  Root:\n    allow: []\nprincipals: {}\n", "policy.yaml:3: bad role name 'Root'"},
      {"version: 1\nroles:\n  r:\n    allow: []\n  r:\n    allow: []\nprincipals: {}\n",
       "policy.yaml:5: duplicate key 'r' in 'roles'"},
      {head + "principals:\n  alice:\n    kind: operator\n    roles: [r, ghost]\n",
       "policy.yaml:9: principal 'alice': unknown role 'ghost'"},
      {head + "principals:\n  alice:\n    kind: operator\n    roles: []\n",
       "policy.yaml:9: principal 'alice' has no roles"},
      {head + "principals:\n  alice:\n    kind: operator\n", "policy.yaml:8: principal 'alice' has no roles"},
      {head + "principals:\n  alice:\n", "policy.yaml:7: principal 'alice' has no roles"},
      {head + "principals:\n  alice:\n    roles: [r]\n", "policy.yaml:8: principal 'alice' needs 'kind'"},
      {head + "principals:\n  alice:\n    kind: robot\n    roles: [r]\n", "policy.yaml:8: kind must be 'operator'"},
      {head + "principals:\n  alice:\n    kind: operator\n    roles: [r]\n    email: a@b\n",
       "policy.yaml:10: unknown key 'email' in principal 'alice'"},
      {head + "principals:\n  system:\n    kind: service\n    roles: [r]\n",
       "policy.yaml:7: the principal id 'system' is reserved"},
      {head + "principals:\n  alice:\n    kind: operator\n    roles: [r, r]\n",
       "policy.yaml:9: principal 'alice': role 'r' is listed twice"},
      {head + "principals: {}\napprovals:\n  - actions: [deploy.request]\n    approvals: 0\n    approver_role: r\n",
       "policy.yaml:9: approvals must be at least 1"},
      {head + "principals: {}\napprovals:\n  - actions: [deploy.request]\n    approvals: two\n    approver_role: r\n",
       "policy.yaml:9: approvals must be a whole number"},
      {head + "principals: {}\napprovals:\n  - actions: [deploy.request]\n    approver_role: nobody\n",
       "policy.yaml:9: unknown approver_role 'nobody'"},
      {"version: 1\nroles:\n  r:\n    allow:\n      - actions: [store.read]\nprincipals: {}\napprovals:\n"
       "  - actions: [deploy.request]\n    approver_role: r\n",
       "policy.yaml:9: approver_role 'r' is not allowed change.approve"},
      {head +
           "principals: {}\napprovals:\n  - actions: [deploy.request]\n    approver_role: r\n    expires_after: 1w\n",
       "policy.yaml:10: expires_after must be a positive whole number with a unit"},
      {head +
           "principals: {}\napprovals:\n  - actions: [deploy.request]\n    approver_role: r\n    expires_after: 31d\n",
       "policy.yaml:8: expires_after must be between 1 second and 30 days"},
      {head + "principals: {}\napprovals:\n  - actions: [token.create]\n    approver_role: r\n",
       "policy.yaml:8: 'token.create' is a global action; approvals apply to store-scoped actions only"},
      {head + "principals: {}\napprovals:\n  - actions: [deploy.request]\n    environments: [prod]\n    approver_role: "
              "r\n",
       "policy.yaml:9: unknown environment 'prod'"},
      {head + "principals: {}\napprovals:\n  actions: [deploy.request]\n",
       "policy.yaml:8: 'approvals' must be a list of approval rules"},
  };
  for (const Case& c : cases) ExpectError(c.text, c.expected);
}

TEST(PolicyLoaderTest, EmptySectionsAreAllowed) {
  Result<core::Policy> p = ParsePolicyText(
      "version: 1\nroles:\n  r:\n    description: nothing yet\n    allow:\n    deny:\nprincipals:\napprovals:\n", "p");
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_TRUE(p->roles.at("r").allow.empty());
  EXPECT_TRUE(p->principals.empty());
  EXPECT_TRUE(p->approvals.empty());
}

TEST(PolicyLoaderTest, LoadPolicyFileNamesThePath) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / "storeplane-policy-loader-test";
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "bad-policy.yaml").string();
  {
    std::ofstream out(path, std::ios::binary);
    out << "version: 1\nroles:\n  r:\n    allow:\n      - actions: [store.destroy]\nprincipals: {}\n";
  }
  Result<core::Policy> bad = LoadPolicyFile(path);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message.rfind(path + ":5: unknown action 'store.destroy'", 0), 0u) << bad.error().message;

  Result<core::Policy> missing = LoadPolicyFile((dir / "absent.yaml").string());
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("absent.yaml: cannot open the policy file"), std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST(PolicyLoaderTest, RefusesOversizedText) {
  std::string text = "version: 1\nroles: {}\nprincipals: {}\n";
  text += std::string(1024 * 1024, '#');
  ExpectError(text, "policy.yaml: the policy is larger than 1 MiB");
}

}  // namespace
}  // namespace storeplane::server

namespace storeplane::server {
namespace {

const std::string kWindowHead =
    "version: 1\nroles:\n  approver:\n    allow:\n      - actions: [change.approve]\n  viewer:\n    allow:\n"
    "      - actions: [store.read]\nprincipals: {}\n";

TEST(PolicyLoaderWindowsTest, ParsesWindowsAndBreakGlass) {
  const std::string text = kWindowHead +
                           "windows:\n"
                           "  - kind: allow\n"
                           "    environments: [production]\n"
                           "    schedule: \"0 9 * * mon-thu\"\n"
                           "    duration: 8h\n"
                           "    description: business hours\n"
                           "  - kind: deny\n"
                           "    actions: [deploy.request, rollback.request]\n"
                           "    schedule: \"0 0 20 12 *\"\n"
                           "    duration: 14d\n"
                           "break_glass:\n"
                           "  approvals: 2\n"
                           "  expires_after: 2h\n";
  auto policy = ParsePolicyText(text, "policy.yaml");
  ASSERT_TRUE(policy.ok()) << policy.error().message;
  ASSERT_EQ(policy->windows.size(), 2U);
  const auto& allow = policy->windows[0];
  EXPECT_EQ(allow.id, "window/1");
  EXPECT_EQ(allow.kind, core::WindowKind::kAllow);
  EXPECT_EQ(allow.environments, std::set<std::string>{"production"});
  EXPECT_EQ(allow.actions, std::vector<std::string>{"deploy.request"});  // the default
  EXPECT_EQ(allow.schedule.text(), "0 9 * * mon-thu");
  EXPECT_EQ(allow.duration_ms, 8 * 3600 * 1000);
  EXPECT_EQ(allow.description, "business hours");
  const auto& deny = policy->windows[1];
  EXPECT_EQ(deny.id, "window/2");
  EXPECT_EQ(deny.kind, core::WindowKind::kDeny);
  EXPECT_TRUE(deny.environments.empty());
  EXPECT_EQ(deny.actions, (std::vector<std::string>{"deploy.request", "rollback.request"}));
  EXPECT_EQ(policy->break_glass.id, "break-glass");
  EXPECT_EQ(policy->break_glass.approvals, 2);
  EXPECT_EQ(policy->break_glass.approver_role, "approver");
  EXPECT_EQ(policy->break_glass.expires_after_ms, 2 * 3600 * 1000);
}

TEST(PolicyLoaderWindowsTest, DefaultPolicyHasNoWindowsAndTheBuiltInBreakGlass) {
  auto policy = ParsePolicyText(DefaultPolicyText(), "default");
  ASSERT_TRUE(policy.ok());
  EXPECT_TRUE(policy->windows.empty());
  EXPECT_EQ(policy->break_glass.approvals, 1);
  EXPECT_EQ(policy->break_glass.approver_role, "approver");
  EXPECT_EQ(policy->break_glass.expires_after_ms, 4 * 3600 * 1000);
}

TEST(PolicyLoaderWindowsTest, BadWindowsNameLineAndProblem) {
  const std::string w = kWindowHead + "windows:\n  - kind: deny\n";  // the window starts on line 11
  const std::vector<std::pair<std::string, std::string>> cases = {
      {kWindowHead + "windows: 3\n", "policy.yaml:10: 'windows' must be a list"},
      {kWindowHead + "windows:\n  - schedule: \"* * * * *\"\n    duration: 1m\n",
       "policy.yaml:11: a window needs 'kind'"},
      {kWindowHead + "windows:\n  - kind: maybe\n    schedule: \"* * * * *\"\n    duration: 1m\n",
       "policy.yaml:11: a window's kind must be 'allow' or 'deny'"},
      {w + "    duration: 1m\n", "policy.yaml:11: a window needs 'schedule'"},
      {w + "    schedule: \"* * * * *\"\n", "policy.yaml:11: a window needs 'duration'"},
      {w + "    schedule: \"* 25 * * *\"\n    duration: 1m\n",
       "policy.yaml:12: bad schedule: hour: 25 is out of range"},
      {w + "    schedule: \"* * * * mon-xyz\"\n    duration: 1m\n", "policy.yaml:12: bad schedule: day-of-week"},
      {w + "    schedule: \"* * * * *\"\n    duration: 32d\n", "policy.yaml:13: bad duration '32d'"},
      {w + "    schedule: \"* * * * *\"\n    duration: 0m\n", "policy.yaml:13: bad duration '0m'"},
      {w + "    schedule: \"* * * * *\"\n    duration: 1m\n    environments: [prod]\n",
       "policy.yaml:14: unknown environment 'prod'"},
      {w + "    schedule: \"* * * * *\"\n    duration: 1m\n    actions: [store.destroy]\n",
       "policy.yaml:14: unknown action 'store.destroy'"},
      {w + "    schedule: \"* * * * *\"\n    duration: 1m\n    actions: [change.read]\n",
       "policy.yaml:14: a window governs requests that become pipeline runs"},
      {w + "    schedule: \"* * * * *\"\n    duration: 1m\n    actions: [operation.run.cache.flush]\n",
       "policy.yaml:14: a window governs requests that become pipeline runs"},
      {w + "    schedule: \"* * * * *\"\n    duration: 1m\n    actions: []\n",
       "policy.yaml:14: a window needs at least"},
      {w + "    schedule: \"* * * * *\"\n    duration: 1m\n    color: red\n", "policy.yaml:14: unknown key 'color'"},
      {kWindowHead + "break_glass:\n  approver_role: viewer\n",
       "policy.yaml:11: approver_role 'viewer' is not allowed change.approve"},
      {kWindowHead + "break_glass:\n  approver_role: nobody\n", "policy.yaml:11: unknown approver_role 'nobody'"},
      {kWindowHead + "break_glass:\n  approvals: 0\n", "policy.yaml:11: approvals must be a whole number from 1"},
      {kWindowHead + "break_glass:\n  expires_after: 31d\n", "policy.yaml:11: expires_after must be from 1m to 30d"},
      {kWindowHead + "break_glass:\n  reason: x\n", "policy.yaml:11: unknown key 'reason'"},
  };
  for (const auto& [text, expected] : cases) ExpectError(text, expected);
}

}  // namespace
}  // namespace storeplane::server
