// The action catalog, pattern rules, policy validation, Decide() and DecideApproval()
// (src/core/authority.h), on policies built in code. The default policy file is tested
// in tests/server/default_policy_test.cc.
#include "core/authority.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

namespace storeplane::core {
namespace {

Rule MakeRule(std::vector<std::string> actions, std::set<std::string> envs = {}, std::string_view selector = "") {
  Rule rule;
  rule.actions = std::move(actions);
  rule.environments = std::move(envs);
  Result<LabelSelector> parsed = LabelSelector::Parse(selector);
  EXPECT_TRUE(parsed.ok()) << selector;
  if (parsed.ok()) rule.selector = *parsed;
  return rule;
}

Role MakeRole(std::string name, std::vector<Rule> allow, std::vector<Rule> deny = {}) {
  Role role;
  role.name = std::move(name);
  role.allow = std::move(allow);
  role.deny = std::move(deny);
  return role;
}

void AddRole(Policy& policy, Role role) {
  std::string name = role.name;
  policy.roles[name] = std::move(role);
}

void AddPrincipal(Policy& policy, std::string id, std::vector<std::string> roles, std::string kind = "operator") {
  policy.principals[id] = PolicyPrincipal{id, std::move(kind), std::move(roles)};
}

AuthzTarget Store(std::string id, std::string env, Labels labels = {}) {
  return AuthzTarget{std::move(id), std::move(env), std::move(labels)};
}

// A small policy exercising every feature: patterns, environments, selectors, denies
// across roles and an approval rule.
Policy SamplePolicy() {
  Policy policy;
  AddRole(policy, MakeRole("reader", {MakeRule({"store.read", "change.read"})}));
  AddRole(policy, MakeRole("ops", {MakeRule({"store.*", "operation.run.*"}, {"staging", "development"}),
                                   MakeRule({"store.read"}, {}, "team=web")}));
  AddRole(policy, MakeRole("no-flush", {}, {MakeRule({"operation.run.cache.flush"})}));
  AddRole(policy, MakeRole("deploy", {MakeRule({"deploy.request", "rollback.request"})}));
  AddRole(policy, MakeRole("approve", {MakeRule({"change.approve", "change.reject"}), MakeRule({"change.read"})}));
  AddRole(policy, MakeRole("tokens", {MakeRule({"token.*"})}));
  AddPrincipal(policy, "reader", {"reader"});
  AddPrincipal(policy, "ops", {"ops"});
  AddPrincipal(policy, "ops-no-flush", {"ops", "no-flush"});
  AddPrincipal(policy, "deployer", {"deploy"});
  AddPrincipal(policy, "ci", {"deploy"}, "service");
  AddPrincipal(policy, "approver-1", {"approve"});
  AddPrincipal(policy, "approver-2", {"approve", "deploy"});
  AddPrincipal(policy, "tokens", {"tokens"});
  ApprovalRule approval;
  approval.actions = {"deploy.request", "rollback.request"};
  approval.environments = {"production"};
  approval.approvals = 1;
  approval.approver_role = "approve";
  policy.approvals.push_back(approval);
  NumberRules(policy);
  return policy;
}

// --- the catalog --------------------------------------------------------------------

TEST(AuthorityCatalogTest, HoldsExactlyTheDocumentedActionsWithTheirScope) {
  const std::vector<std::pair<std::string_view, bool>> expected = {
      {"store.read", true},
      {"store.register", true},
      {"store.label", true},
      {"store.provision", true},
      {"store.decommission", true},
      {"deploy.request", true},
      {"rollback.request", true},
      {"isolation.migrate", true},
      {"operation.run.health.probe", true},
      {"operation.run.maintenance.enable", true},
      {"operation.run.maintenance.disable", true},
      {"operation.run.cache.flush", true},
      {"operation.run.indexer.status", true},
      {"operation.run.db.status", true},
      {"operation.run.release.report", true},
      {"operation.read", true},
      {"agent.read", true},
      {"agent.enroll", true},
      {"agent.revoke", true},
      {"run.read", true},
      {"rollout.read", true},
      {"rollout.create", true},
      {"rollout.pause", true},
      {"rollout.resume", true},
      {"rollout.abort", true},
      {"rollout.approve", true},
      {"change.read", false},
      {"change.approve", true},
      {"change.reject", true},
      {"audit.read", false},
      {"audit.export", false},
      {"authz.explain", false},
      {"token.create", false},
      {"token.read", false},
      {"token.revoke", false},
      {"principal.whoami", false},
      {"event.watch", false},
      {"metrics.read", false},
      {"window.read", false},
      {"policy.reload", false},
      {"agent.enrolled", false},
      {"agent.credential.rotate", false},
      {"operation.report", false},
      {"operation.expire", false},
      {"run.trigger", false},
      {"run.transition", false},
      {"rollback.automatic", false},
      {"callback.refused", false},
      {"rollout.step", false},
  };
  const std::vector<ActionInfo>& catalog = ActionCatalog();
  ASSERT_EQ(catalog.size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(catalog[i].name, expected[i].first);
    EXPECT_EQ(catalog[i].store_scoped, expected[i].second) << catalog[i].name;
    EXPECT_FALSE(catalog[i].summary.empty()) << catalog[i].name;
    EXPECT_EQ(catalog[i].summary.find('\n'), std::string_view::npos) << catalog[i].name;
    EXPECT_EQ(FindAction(catalog[i].name), &catalog[i]);
  }
}

TEST(AuthorityCatalogTest, FindActionIsExact) {
  for (const char* name : {"", "store", "store.", "store.*", "*", "STORE.READ", "store.read ", "store.destroy"}) {
    EXPECT_EQ(FindAction(name), nullptr) << name;
  }
}

TEST(AuthorityCatalogTest, OnlyServerAndAgentInitiatedActionsAreSystemActions) {
  const std::set<std::string_view> system = {"policy.reload",    "agent.enrolled",     "agent.credential.rotate",
                                             "operation.report", "operation.expire",   "run.trigger",
                                             "run.transition",   "rollback.automatic", "callback.refused"};
  for (const ActionInfo& info : ActionCatalog()) {
    EXPECT_EQ(IsSystemAction(info.name), system.contains(info.name)) << info.name;
  }
  EXPECT_FALSE(ActionMatches("agent.*", "agent.enrolled"));
  EXPECT_FALSE(ActionMatches("operation.*", "operation.report"));
}

// --- patterns -------------------------------------------------------------------------

TEST(AuthorityPatternTest, PrefixStarCoversEveryActionUnderThePrefix) {
  const std::vector<std::string_view> ops = ExpandActionPattern("operation.run.*");
  EXPECT_EQ(ops, (std::vector<std::string_view>{"operation.run.health.probe", "operation.run.maintenance.enable",
                                                "operation.run.maintenance.disable", "operation.run.cache.flush",
                                                "operation.run.indexer.status", "operation.run.db.status",
                                                "operation.run.release.report"}));
  EXPECT_EQ(ExpandActionPattern("operation.run.maintenance.*"),
            (std::vector<std::string_view>{"operation.run.maintenance.enable", "operation.run.maintenance.disable"}));
  EXPECT_EQ(ExpandActionPattern("store.*"),
            (std::vector<std::string_view>{"store.read", "store.register", "store.label", "store.provision",
                                           "store.decommission"}));
  EXPECT_EQ(ExpandActionPattern("token.*"),
            (std::vector<std::string_view>{"token.create", "token.read", "token.revoke"}));
  EXPECT_EQ(ExpandActionPattern("store.read"), (std::vector<std::string_view>{"store.read"}));
}

TEST(AuthorityPatternTest, MatchesOnlyWholeSegments) {
  EXPECT_TRUE(ActionMatches("store.*", "store.read"));
  EXPECT_FALSE(ActionMatches("store.*", "store"));
  EXPECT_FALSE(ActionMatches("stor.*", "store.read"));
  EXPECT_FALSE(ActionMatches("operation.run.cache.*", "operation.run.cache"));
  EXPECT_FALSE(ActionMatches("*", "store.read"));
  EXPECT_FALSE(ActionMatches("store*", "store.read"));
  EXPECT_FALSE(ActionMatches("*.read", "store.read"));
  EXPECT_FALSE(ActionMatches("policy.*", "policy.reload"));
  EXPECT_FALSE(ActionMatches("policy.reload", "policy.reload"));
}

TEST(AuthorityPatternTest, RefusesWholesaleWildcardsUnknownNamesAndSystemActions) {
  struct Case {
    const char* pattern;
    const char* message;
  };
  for (const Case& c : std::vector<Case>{
           {"*", "never granted wholesale"},
           {"", "empty action"},
           {"store*", "bad wildcard"},
           {"*.read", "bad wildcard"},
           {"store.*.x", "bad wildcard"},
           {".*", "bad wildcard"},
           {"store.**", "bad wildcard"},
           {"nothing.*", "matches no grantable action"},
           {"policy.*", "matches no grantable action"},
           {"store.destroy", "unknown action 'store.destroy'"},
           {"policy.reload", "performed by the server only"},
       }) {
    Status s = ValidateActionPattern(c.pattern);
    ASSERT_FALSE(s.ok()) << c.pattern;
    EXPECT_EQ(s.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(s.error().message.find(c.message), std::string::npos) << c.pattern << ": " << s.error().message;
    EXPECT_TRUE(ExpandActionPattern(c.pattern).empty()) << c.pattern;
  }
  for (const char* ok : {"store.*", "operation.*", "operation.run.*", "change.approve", "principal.whoami"}) {
    EXPECT_TRUE(ValidateActionPattern(ok).ok()) << ok;
  }
}

// --- validation ---------------------------------------------------------------------

void ExpectInvalid(const Policy& policy, std::string_view message_part) {
  Status s = ValidatePolicy(policy);
  ASSERT_FALSE(s.ok()) << "expected an error containing: " << message_part;
  EXPECT_EQ(s.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(s.error().message.find(message_part), std::string::npos) << s.error().message;
}

TEST(AuthorityValidateTest, SamplePolicyIsValid) {
  Status s = ValidatePolicy(SamplePolicy());
  EXPECT_TRUE(s.ok()) << s.error().message;
}

TEST(AuthorityValidateTest, EmptyPolicyIsValidAndDeniesEverything) {
  Policy policy;
  EXPECT_TRUE(ValidatePolicy(policy).ok());
  EXPECT_FALSE(Decide(policy, "anyone", "store.read", Store("s", "development")).allowed);
}

TEST(AuthorityValidateTest, NumberRulesAssignsTheDocumentedIds) {
  const Policy policy = SamplePolicy();
  EXPECT_EQ(policy.roles.at("ops").allow[0].id, "ops/allow/1");
  EXPECT_EQ(policy.roles.at("ops").allow[1].id, "ops/allow/2");
  EXPECT_EQ(policy.roles.at("no-flush").deny[0].id, "no-flush/deny/1");
  EXPECT_EQ(policy.approvals[0].id, "approval/1");
}

TEST(AuthorityValidateTest, RefusesBadRules) {
  {
    Policy p = SamplePolicy();
    p.roles["ops"].allow[0].actions.push_back("store.destroy");
    ExpectInvalid(p, "rule ops/allow/1: unknown action 'store.destroy'");
  }
  {
    Policy p = SamplePolicy();
    p.roles["ops"].allow[0].actions = {"*"};
    ExpectInvalid(p, "never granted wholesale");
  }
  {
    Policy p = SamplePolicy();
    p.roles["reader"].allow[0].actions.clear();
    ExpectInvalid(p, "at least one action");
  }
  {
    Policy p = SamplePolicy();
    p.roles["ops"].allow[0].environments.insert("prod");
    ExpectInvalid(p, "unknown environment 'prod'");
  }
  {
    Policy p = SamplePolicy();
    p.roles["no-flush"].deny[0].actions = {"policy.reload"};
    ExpectInvalid(p, "performed by the server only");
  }
  {
    Policy p = SamplePolicy();
    p.roles["ops"].allow[0].id = "ops/allow/7";
    ExpectInvalid(p, "should be 'ops/allow/1'");
  }
  {
    Policy p = SamplePolicy();
    p.roles["reader"].name = "other";
    ExpectInvalid(p, "stored under the name");
  }
  {
    Policy p = SamplePolicy();
    AddRole(p, MakeRole("Bad_Name", {}));
    ExpectInvalid(p, "bad role name 'Bad_Name'");
  }
}

TEST(AuthorityValidateTest, RefusesExactGlobalActionsInLimitedRules) {
  for (const Rule& rule :
       {MakeRule({"store.read", "audit.read"}, {"production"}), MakeRule({"token.create"}, {}, "team=web")}) {
    Policy p = SamplePolicy();
    AddRole(p, MakeRole("limited", {rule}));
    NumberRules(p);
    ExpectInvalid(p, "is a global action");
  }
  // A pattern spanning global and scoped actions may be limited: the global ones are
  // simply never granted by it (see Decide below).
  Policy p = SamplePolicy();
  AddRole(p, MakeRole("limited", {MakeRule({"change.*"}, {"production"})}));
  NumberRules(p);
  EXPECT_TRUE(ValidatePolicy(p).ok());
}

TEST(AuthorityValidateTest, RefusesBadPrincipals) {
  {
    Policy p = SamplePolicy();
    AddPrincipal(p, "nobody", {});
    ExpectInvalid(p, "principal 'nobody': a principal needs at least one role");
  }
  {
    Policy p = SamplePolicy();
    AddPrincipal(p, "typo", {"reedr"});
    ExpectInvalid(p, "principal 'typo': unknown role 'reedr'");
  }
  {
    Policy p = SamplePolicy();
    AddPrincipal(p, "twice", {"reader", "reader"});
    ExpectInvalid(p, "listed twice");
  }
  {
    Policy p = SamplePolicy();
    AddPrincipal(p, "robot", {"reader"}, "robot");
    ExpectInvalid(p, "kind must be 'operator' or 'service'");
  }
  {
    Policy p = SamplePolicy();
    AddPrincipal(p, "system", {"reader"});
    ExpectInvalid(p, "reserved");
  }
  {
    Policy p = SamplePolicy();
    AddPrincipal(p, "-dash", {"reader"});
    ExpectInvalid(p, "bad principal id");
  }
}

TEST(AuthorityValidateTest, RefusesBadApprovalRules) {
  {
    Policy p = SamplePolicy();
    p.approvals[0].approvals = 0;
    ExpectInvalid(p, "approval/1: approvals must be between 1 and 10");
  }
  {
    Policy p = SamplePolicy();
    p.approvals[0].approver_role = "ghost";
    ExpectInvalid(p, "unknown approver_role 'ghost'");
  }
  {
    Policy p = SamplePolicy();
    p.approvals[0].approver_role = "reader";
    ExpectInvalid(p, "approver_role 'reader' is not allowed change.approve in production");
  }
  {
    Policy p = SamplePolicy();
    p.approvals[0].actions = {"token.create"};
    ExpectInvalid(p, "approvals apply to store-scoped actions only");
  }
  {
    Policy p = SamplePolicy();
    p.approvals[0].actions = {"change.*"};
    ExpectInvalid(p, "global action");  // change.read comes first in the catalog
  }
  {
    Policy p = SamplePolicy();
    p.approvals[0].actions = {"change.approve"};
    ExpectInvalid(p, "cannot itself need approval");
  }
  {
    Policy p = SamplePolicy();
    p.approvals[0].expires_after_ms = 999;
    ExpectInvalid(p, "between 1 second and 30 days");
  }
  {
    Policy p = SamplePolicy();
    // An approver limited to staging cannot serve a rule covering production.
    p.roles["approve"].allow[0].environments = {"staging"};
    ExpectInvalid(p, "is not allowed change.approve in production");
  }
}

// --- Decide -----------------------------------------------------------------------------

TEST(AuthorityDecideTest, UnknownPrincipalsActionsAndMissingTargetsAreDenied) {
  const Policy policy = SamplePolicy();
  const AuthzTarget dev = Store("s1", "development", {{"team", "web"}});
  for (const char* action : {"store.destroy", "", "*", "store.*", "STORE.READ"}) {
    Decision d = Decide(policy, "ops", action, dev);
    EXPECT_FALSE(d.allowed) << action;
    EXPECT_EQ(d.rule, "default-deny");
    EXPECT_NE(d.reason.find("not a known action"), std::string::npos) << d.reason;
  }
  Decision unknown = Decide(policy, "mallory", "store.read", dev);
  EXPECT_FALSE(unknown.allowed);
  EXPECT_EQ(unknown.rule, "default-deny");
  Decision empty = Decide(policy, "", "store.read", dev);
  EXPECT_FALSE(empty.allowed);
  Decision no_target = Decide(policy, "ops", "store.read", std::nullopt);
  EXPECT_FALSE(no_target.allowed);
  EXPECT_NE(no_target.reason.find("needs a target store"), std::string::npos);
}

TEST(AuthorityDecideTest, PolicyReloadIsNeverGranted) {
  Policy policy = SamplePolicy();
  for (const auto& [id, principal] : policy.principals) {
    EXPECT_FALSE(Decide(policy, id, "policy.reload", std::nullopt).allowed) << id;
  }
  EXPECT_FALSE(Decide(policy, kSystemPrincipal, "policy.reload", std::nullopt).allowed);
}

TEST(AuthorityDecideTest, AllowsByTheFirstMatchingRuleAndNamesIt) {
  const Policy policy = SamplePolicy();
  Decision d = Decide(policy, "ops", "store.register", Store("s1", "staging"));
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.rule, "ops/allow/1");
  EXPECT_EQ(d.approval, nullptr);
  EXPECT_NE(d.reason.find("ops/allow/1"), std::string::npos);
  // store.read in production through the selector rule only.
  Decision read = Decide(policy, "ops", "store.read", Store("s2", "production", {{"team", "web"}}));
  EXPECT_TRUE(read.allowed);
  EXPECT_EQ(read.rule, "ops/allow/2");
}

TEST(AuthorityDecideTest, EnvironmentsLimitScopedActions) {
  const Policy policy = SamplePolicy();
  EXPECT_TRUE(Decide(policy, "ops", "store.provision", Store("s", "development")).allowed);
  EXPECT_TRUE(Decide(policy, "ops", "store.provision", Store("s", "staging")).allowed);
  Decision prod = Decide(policy, "ops", "store.provision", Store("s", "production"));
  EXPECT_FALSE(prod.allowed);
  EXPECT_EQ(prod.rule, "default-deny");
  EXPECT_FALSE(Decide(policy, "ops", "store.provision", Store("s", "")).allowed);
  EXPECT_FALSE(Decide(policy, "ops", "store.provision", Store("s", "qa")).allowed);
}

TEST(AuthorityDecideTest, SelectorsLimitScope) {
  const Policy policy = SamplePolicy();
  EXPECT_TRUE(Decide(policy, "ops", "store.read", Store("s", "production", {{"team", "web"}})).allowed);
  EXPECT_FALSE(Decide(policy, "ops", "store.read", Store("s", "production", {{"team", "api"}})).allowed);
  EXPECT_FALSE(Decide(policy, "ops", "store.read", Store("s", "production")).allowed);
  // The selector grants only what its rule names.
  EXPECT_FALSE(Decide(policy, "ops", "store.label", Store("s", "production", {{"team", "web"}})).allowed);

  Policy scoped;
  AddRole(scoped, MakeRole("team-a", {MakeRule({"store.*", "operation.run.*"}, {}, "team=a,!legacy")}));
  AddPrincipal(scoped, "alice", {"team-a"});
  NumberRules(scoped);
  ASSERT_TRUE(ValidatePolicy(scoped).ok());
  EXPECT_TRUE(Decide(scoped, "alice", "store.decommission", Store("s", "production", {{"team", "a"}})).allowed);
  EXPECT_FALSE(Decide(scoped, "alice", "store.decommission", Store("s", "production", {{"team", "a"}, {"legacy", "1"}}))
                   .allowed);
  EXPECT_FALSE(Decide(scoped, "alice", "store.read", Store("s", "staging", {{"team", "b"}})).allowed);
}

TEST(AuthorityDecideTest, DenyWinsOverAllowAcrossRoles) {
  const Policy policy = SamplePolicy();
  EXPECT_TRUE(Decide(policy, "ops", "operation.run.cache.flush", Store("s", "staging")).allowed);
  Decision d = Decide(policy, "ops-no-flush", "operation.run.cache.flush", Store("s", "staging"));
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.rule, "no-flush/deny/1");
  EXPECT_NE(d.reason.find("no-flush/deny/1"), std::string::npos);
  // The deny covers only what it names.
  EXPECT_TRUE(Decide(policy, "ops-no-flush", "operation.run.health.probe", Store("s", "staging")).allowed);

  // Deny order does not matter: a deny in a role sorting after the allowing one still wins.
  Policy p;
  AddRole(p, MakeRole("a-allow", {MakeRule({"store.*"})}));
  AddRole(p, MakeRole("z-deny", {}, {MakeRule({"store.decommission"}, {"production"})}));
  AddPrincipal(p, "u", {"z-deny", "a-allow"});
  NumberRules(p);
  ASSERT_TRUE(ValidatePolicy(p).ok());
  EXPECT_FALSE(Decide(p, "u", "store.decommission", Store("s", "production")).allowed);
  EXPECT_EQ(Decide(p, "u", "store.decommission", Store("s", "production")).rule, "z-deny/deny/1");
  EXPECT_TRUE(Decide(p, "u", "store.decommission", Store("s", "staging")).allowed);
}

TEST(AuthorityDecideTest, RolesAreTriedInNameOrderRegardlessOfPrincipalOrder) {
  Policy p;
  AddRole(p, MakeRole("b-role", {MakeRule({"store.read"})}));
  AddRole(p, MakeRole("a-role", {MakeRule({"store.*"})}));
  AddPrincipal(p, "u", {"b-role", "a-role"});
  NumberRules(p);
  EXPECT_EQ(Decide(p, "u", "store.read", Store("s", "staging")).rule, "a-role/allow/1");
}

TEST(AuthorityDecideTest, GlobalActionsIgnoreTargetsAndLimitedRulesNeverGrantThem) {
  Policy p;
  AddRole(p, MakeRole("limited", {MakeRule({"change.*"}, {"staging"}), MakeRule({"token.*"}, {}, "team=a")}));
  AddRole(p, MakeRole("plain", {MakeRule({"audit.read"})}));
  AddPrincipal(p, "u", {"limited"});
  AddPrincipal(p, "v", {"plain"});
  NumberRules(p);
  ASSERT_TRUE(ValidatePolicy(p).ok());
  EXPECT_TRUE(Decide(p, "u", "change.approve", Store("s", "staging")).allowed);
  EXPECT_FALSE(Decide(p, "u", "change.approve", Store("s", "production")).allowed);
  EXPECT_FALSE(Decide(p, "u", "change.read", std::nullopt).allowed);
  EXPECT_FALSE(Decide(p, "u", "change.read", Store("s", "staging")).allowed);
  EXPECT_FALSE(Decide(p, "u", "token.create", Store("s", "staging", {{"team", "a"}})).allowed);
  EXPECT_TRUE(Decide(p, "v", "audit.read", std::nullopt).allowed);
  EXPECT_TRUE(Decide(p, "v", "audit.read", Store("s", "production")).allowed);
}

TEST(AuthorityDecideTest, LimitedDenyAlwaysAppliesToGlobalActions) {
  Policy p;
  AddRole(p, MakeRole("all-changes", {MakeRule({"change.*"})}));
  AddRole(p, MakeRole("no-prod-changes", {}, {MakeRule({"change.*"}, {"production"})}));
  AddPrincipal(p, "u", {"all-changes", "no-prod-changes"});
  NumberRules(p);
  ASSERT_TRUE(ValidatePolicy(p).ok());
  EXPECT_FALSE(Decide(p, "u", "change.approve", Store("s", "production")).allowed);
  EXPECT_TRUE(Decide(p, "u", "change.approve", Store("s", "staging")).allowed);
  // change.read has no environment to compare: in doubt, the deny applies.
  EXPECT_FALSE(Decide(p, "u", "change.read", std::nullopt).allowed);
}

TEST(AuthorityDecideTest, AttachesTheMatchingApprovalRuleToAllowedDecisions) {
  const Policy policy = SamplePolicy();
  Decision prod = Decide(policy, "deployer", "deploy.request", Store("s", "production"));
  EXPECT_TRUE(prod.allowed);
  ASSERT_NE(prod.approval, nullptr);
  EXPECT_EQ(prod.approval, &policy.approvals[0]);
  EXPECT_EQ(prod.approval->id, "approval/1");
  EXPECT_NE(prod.reason.find("approval/1"), std::string::npos);
  Decision staging = Decide(policy, "deployer", "deploy.request", Store("s", "staging"));
  EXPECT_TRUE(staging.allowed);
  EXPECT_EQ(staging.approval, nullptr);
  // A denied decision never carries an approval.
  Decision denied = Decide(policy, "reader", "deploy.request", Store("s", "production"));
  EXPECT_FALSE(denied.allowed);
  EXPECT_EQ(denied.approval, nullptr);
}

TEST(AuthorityDecideTest, ReasonsNameOnlyTheDecidingRule) {
  const Policy policy = SamplePolicy();
  std::vector<Decision> decisions = {
      Decide(policy, "ops-no-flush", "operation.run.cache.flush", Store("s", "staging")),
      Decide(policy, "ops", "store.register", Store("s", "staging")),
      Decide(policy, "reader", "store.register", Store("s", "production")),
      Decide(policy, "mallory", "store.read", Store("s", "production")),
      Decide(policy, "deployer", "deploy.request", Store("s", "production")),
  };
  for (const Decision& d : decisions) {
    EXPECT_FALSE(d.reason.empty());
    for (const auto& [name, role] : policy.roles) {
      for (const Rule& rule : role.allow) {
        if (rule.id != d.rule) {
          EXPECT_EQ(d.reason.find(rule.id), std::string::npos) << d.reason;
        }
      }
      for (const Rule& rule : role.deny) {
        if (rule.id != d.rule) {
          EXPECT_EQ(d.reason.find(rule.id), std::string::npos) << d.reason;
        }
      }
    }
    EXPECT_EQ(d.reason.find("team=web"), std::string::npos) << d.reason;    // no selectors
    EXPECT_EQ(d.reason.find("approver-1"), std::string::npos) << d.reason;  // no other principals
  }
}

// --- DecideApproval -------------------------------------------------------------------

TEST(AuthorityApprovalTest, ADifferentPrincipalWithTheApproverRoleMayApprove) {
  const Policy policy = SamplePolicy();
  const ApprovalRule& rule = policy.approvals[0];
  Decision d = DecideApproval(policy, rule, "approver-1", "deployer", Store("s", "production"));
  EXPECT_TRUE(d.allowed) << d.reason;
  EXPECT_EQ(d.rule, "approve/allow/1");
  EXPECT_EQ(d.approval, nullptr);
}

TEST(AuthorityApprovalTest, TheRequesterCannotApproveEvenHoldingTheRole) {
  const Policy policy = SamplePolicy();
  const ApprovalRule& rule = policy.approvals[0];
  // approver-2 holds both deploy and approve: it may request, and approve others' requests,
  // but never its own (any token of the same principal id is the same requester).
  EXPECT_TRUE(Decide(policy, "approver-2", "deploy.request", Store("s", "production")).allowed);
  Decision self = DecideApproval(policy, rule, "approver-2", "approver-2", Store("s", "production"));
  EXPECT_FALSE(self.allowed);
  EXPECT_EQ(self.rule, "approval/1");
  EXPECT_NE(self.reason.find("requester"), std::string::npos);
  EXPECT_TRUE(DecideApproval(policy, rule, "approver-2", "deployer", Store("s", "production")).allowed);
}

TEST(AuthorityApprovalTest, RefusesPrincipalsWithoutTheRoleUnknownOnesAndMissingRequesters) {
  const Policy policy = SamplePolicy();
  const ApprovalRule& rule = policy.approvals[0];
  const AuthzTarget prod = Store("s", "production");
  EXPECT_FALSE(DecideApproval(policy, rule, "ops", "deployer", prod).allowed);
  EXPECT_FALSE(DecideApproval(policy, rule, "ci", "deployer", prod).allowed);
  Decision unknown = DecideApproval(policy, rule, "mallory", "deployer", prod);
  EXPECT_FALSE(unknown.allowed);
  EXPECT_EQ(unknown.rule, "default-deny");
  EXPECT_FALSE(DecideApproval(policy, rule, "approver-1", "", prod).allowed);
}

TEST(AuthorityApprovalTest, TheApproverRoleAloneIsNotEnoughWhenChangeApproveIsDenied) {
  Policy policy = SamplePolicy();
  AddRole(policy, MakeRole("frozen", {}, {MakeRule({"change.approve"}, {"production"})}));
  AddPrincipal(policy, "approver-3", {"approve", "frozen"});
  NumberRules(policy);
  ASSERT_TRUE(ValidatePolicy(policy).ok());
  Decision d = DecideApproval(policy, policy.approvals[0], "approver-3", "deployer", Store("s", "production"));
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.rule, "frozen/deny/1");
  EXPECT_TRUE(DecideApproval(policy, policy.approvals[0], "approver-3", "deployer", Store("s", "staging")).allowed);
}

TEST(AuthorityApprovalTest, ScopeOfTheApproverAppliesToTheTarget) {
  Policy policy = SamplePolicy();
  AddRole(policy, MakeRole("web-approve", {MakeRule({"change.approve"}, {}, "team=web")}));
  AddPrincipal(policy, "web-approver", {"web-approve"});
  policy.approvals.push_back(policy.approvals[0]);
  policy.approvals[1].approver_role = "web-approve";
  NumberRules(policy);
  Status s = ValidatePolicy(policy);
  ASSERT_TRUE(s.ok()) << s.error().message;
  const ApprovalRule& rule = policy.approvals[1];
  EXPECT_TRUE(
      DecideApproval(policy, rule, "web-approver", "deployer", Store("s", "production", {{"team", "web"}})).allowed);
  EXPECT_FALSE(
      DecideApproval(policy, rule, "web-approver", "deployer", Store("s", "production", {{"team", "api"}})).allowed);
}

}  // namespace
}  // namespace storeplane::core
