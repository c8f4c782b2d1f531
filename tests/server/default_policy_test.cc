// The default policy (config/policy.yaml, built in as DefaultPolicyText()) against an
// expected table written out here: every role x every catalog action x every environment.
// Anything not listed in the table must be denied. Changing a default grant means
// changing this table in the same review, and docs/CONTROL_PLANE_AUTHORITY.md with it.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/authority.h"
#include "server/policy_loader.h"

namespace storeplane::server {
namespace {

using core::AuthzTarget;
using core::Decide;
using core::Decision;

// Per action, the outcome in production, staging and development, in that order:
//   'A' allowed, 'a' allowed but needs approval, '-' denied.
// Global actions have no environment: their three columns are equal, and they are also
// decided without a target.
using Row = std::map<std::string, std::string>;

const std::map<std::string, Row>& ExpectedTable() {
  static const std::map<std::string, Row> kTable = {
      {"viewer",
       {
           {"store.read", "AAA"},
           {"agent.read", "AAA"},
           {"operation.read", "AAA"},
           {"run.read", "AAA"},
           {"change.read", "AAA"},
           {"principal.whoami", "AAA"},
           {"event.watch", "AAA"},
           {"metrics.read", "AAA"},
           {"window.read", "AAA"},
           {"rollout.read", "AAA"},
       }},
      {"operator",
       {
           {"store.read", "AAA"},
           {"agent.read", "AAA"},
           {"operation.read", "AAA"},
           {"run.read", "AAA"},
           {"change.read", "AAA"},
           {"principal.whoami", "AAA"},
           {"event.watch", "AAA"},
           {"metrics.read", "AAA"},
           {"window.read", "AAA"},
           {"store.register", "aAA"},
           {"store.label", "AAA"},
           {"store.provision", "aAA"},
           {"store.decommission", "aAA"},
           {"isolation.migrate", "aAA"},
           {"operation.run.health.probe", "AAA"},
           {"operation.run.maintenance.enable", "AAA"},
           {"operation.run.maintenance.disable", "AAA"},
           {"operation.run.cache.flush", "AAA"},
           {"operation.run.indexer.status", "AAA"},
           {"operation.run.db.status", "AAA"},
           {"operation.run.release.report", "AAA"},
           {"agent.enroll", "AAA"},
           {"agent.revoke", "AAA"},
           {"rollout.read", "AAA"},
           {"rollout.pause", "AAA"},
           {"rollout.abort", "AAA"},
       }},
      {"deployer",
       {
           {"store.read", "AAA"},
           {"agent.read", "AAA"},
           {"operation.read", "AAA"},
           {"run.read", "AAA"},
           {"change.read", "AAA"},
           {"principal.whoami", "AAA"},
           {"event.watch", "AAA"},
           {"window.read", "AAA"},
           {"deploy.request", "aAA"},
           {"rollback.request", "aAA"},
           {"rollout.read", "AAA"},
           {"rollout.create", "aAA"},
           {"rollout.pause", "AAA"},
           {"rollout.resume", "AAA"},
           {"rollout.abort", "AAA"},
           {"operation.run.health.probe", "AAA"},
           {"operation.run.release.report", "AAA"},
       }},
      {"approver",
       {
           {"store.read", "AAA"},
           {"agent.read", "AAA"},
           {"operation.read", "AAA"},
           {"run.read", "AAA"},
           {"change.read", "AAA"},
           {"principal.whoami", "AAA"},
           {"event.watch", "AAA"},
           {"window.read", "AAA"},
           {"change.approve", "AAA"},
           {"change.reject", "AAA"},
           {"rollout.read", "AAA"},
           {"rollout.approve", "AAA"},
       }},
      {"auditor",
       {
           {"audit.read", "AAA"},
           {"audit.export", "AAA"},
           {"principal.whoami", "AAA"},
       }},
      {"security-admin",
       {
           {"token.create", "AAA"},
           {"token.read", "AAA"},
           {"token.revoke", "AAA"},
           {"agent.read", "AAA"},
           {"agent.enroll", "AAA"},
           {"agent.revoke", "AAA"},
           {"audit.read", "AAA"},
           {"authz.explain", "AAA"},
           {"principal.whoami", "AAA"},
           {"event.watch", "AAA"},
       }},
  };
  return kTable;
}

const std::vector<std::string> kEnvironments = {"production", "staging", "development"};

// The actions whose production requests wait for approval (approval/1 of the default).
const std::set<std::string> kProductionRequests = {"store.register", "store.provision",  "store.decommission",
                                                   "deploy.request", "rollback.request", "isolation.migrate",
                                                   "rollout.create"};

core::Policy DefaultPolicy() {
  Result<core::Policy> policy = ParsePolicyText(DefaultPolicyText(), "default policy");
  EXPECT_TRUE(policy.ok()) << (policy.ok() ? "" : policy.error().message);
  return policy.ok() ? *policy : core::Policy{};
}

// The default policy plus one principal per role, "only-<role>", holding that role alone.
core::Policy PolicyWithOneRolePrincipals() {
  core::Policy policy = DefaultPolicy();
  for (const auto& [name, role] : policy.roles) {
    policy.principals["only-" + name] = core::PolicyPrincipal{"only-" + name, "operator", {name}};
  }
  Status s = core::ValidatePolicy(policy);
  EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().message);
  return policy;
}

AuthzTarget StoreIn(const std::string& env) { return AuthzTarget{"shop-1", env, {{"team", "web"}}}; }

char Outcome(const Decision& d) {
  if (!d.allowed) return '-';
  return d.approval != nullptr ? 'a' : 'A';
}

TEST(DefaultPolicyTest, TableCoversExactlyTheDefaultRolesAndNamesOnlyCatalogActions) {
  const core::Policy policy = DefaultPolicy();
  std::set<std::string> roles;
  for (const auto& [name, role] : policy.roles) roles.insert(name);
  std::set<std::string> table_roles;
  for (const auto& [name, row] : ExpectedTable()) {
    table_roles.insert(name);
    for (const auto& [action, outcome] : row) {
      const core::ActionInfo* info = core::FindAction(action);
      ASSERT_NE(info, nullptr) << name << ": " << action;
      ASSERT_EQ(outcome.size(), kEnvironments.size()) << name << ": " << action;
      if (!info->store_scoped) {
        EXPECT_EQ(outcome, std::string(3, outcome[0])) << name << ": global " << action;
        EXPECT_NE(outcome[0], 'a') << name << ": global " << action;
      }
    }
  }
  EXPECT_EQ(roles, table_roles);
  for (const char* required : {"viewer", "operator", "deployer", "approver", "auditor", "security-admin"}) {
    EXPECT_TRUE(roles.contains(required)) << required;
  }
}

// The generated test: 6 roles x 49 actions x 3 environments, each against the table.
TEST(DefaultPolicyTest, EveryRoleActionAndEnvironmentMatchesTheTable) {
  const core::Policy policy = PolicyWithOneRolePrincipals();
  int checked = 0;
  for (const auto& [role, row] : ExpectedTable()) {
    const std::string principal = "only-" + role;
    for (const core::ActionInfo& info : core::ActionCatalog()) {
      const std::string action(info.name);
      const auto listed = row.find(action);
      const std::string expected = listed == row.end() ? "---" : listed->second;
      for (std::size_t e = 0; e < kEnvironments.size(); ++e) {
        const Decision d = Decide(policy, principal, action, StoreIn(kEnvironments[e]));
        EXPECT_EQ(Outcome(d), expected[e])
            << role << " " << action << " in " << kEnvironments[e] << ": rule " << d.rule << ", " << d.reason;
        if (d.allowed) {
          EXPECT_EQ(d.rule.rfind(role + "/allow/", 0), 0u) << d.rule;
        } else {
          EXPECT_EQ(d.approval, nullptr);
        }
        ++checked;
      }
      if (!info.store_scoped) {
        const Decision d = Decide(policy, principal, action, std::nullopt);
        EXPECT_EQ(Outcome(d), expected[0]) << role << " " << action << " without a target";
      } else {
        EXPECT_FALSE(Decide(policy, principal, action, std::nullopt).allowed) << role << " " << action;
      }
    }
  }
  EXPECT_EQ(checked, 6 * 49 * 3);
}

TEST(DefaultPolicyTest, UnknownActionsAndUnknownPrincipalsAreDenied) {
  const core::Policy policy = PolicyWithOneRolePrincipals();
  for (const auto& [role, row] : ExpectedTable()) {
    for (const char* action : {"store.destroy", "store.*", "*", "", "operation.run.shell", "Store.Read",
                               "token.create.all", "policy.reload"}) {
      for (const std::string& env : kEnvironments) {
        EXPECT_FALSE(Decide(policy, "only-" + role, action, StoreIn(env)).allowed) << role << " " << action;
      }
      EXPECT_FALSE(Decide(policy, "only-" + role, action, std::nullopt).allowed) << role << " " << action;
    }
  }
  for (const core::ActionInfo& info : core::ActionCatalog()) {
    for (const char* who : {"mallory", "", "system", "Admin", "admin "}) {
      for (const std::string& env : kEnvironments) {
        const Decision d = Decide(policy, who, info.name, StoreIn(env));
        EXPECT_FALSE(d.allowed) << who << " " << info.name;
        EXPECT_EQ(d.rule, "default-deny");
      }
    }
  }
}

TEST(DefaultPolicyTest, NoRoleBothRequestsAndApprovesProductionChanges) {
  const core::Policy policy = PolicyWithOneRolePrincipals();
  const AuthzTarget prod = StoreIn("production");
  for (const auto& [role, unused] : policy.roles) {
    const std::string principal = "only-" + role;
    bool requests = false;
    for (const std::string& action : kProductionRequests) {
      requests = requests || Decide(policy, principal, action, prod).allowed;
    }
    const bool approves = Decide(policy, principal, "change.approve", prod).allowed;
    EXPECT_FALSE(requests && approves) << role;
  }
}

TEST(DefaultPolicyTest, ProductionRequestsNeedOneApprovalByAnApproverWithin24Hours) {
  const core::Policy policy = PolicyWithOneRolePrincipals();
  ASSERT_EQ(policy.approvals.size(), 1u);
  const core::ApprovalRule& rule = policy.approvals[0];
  EXPECT_EQ(rule.id, "approval/1");
  EXPECT_EQ(rule.approvals, 1);
  EXPECT_EQ(rule.approver_role, "approver");
  EXPECT_EQ(rule.expires_after_ms, 24LL * 3600 * 1000);
  EXPECT_EQ(rule.environments, (std::set<std::string>{"production"}));
  EXPECT_EQ(std::set<std::string>(rule.actions.begin(), rule.actions.end()), kProductionRequests);

  const AuthzTarget prod = StoreIn("production");
  EXPECT_TRUE(core::DecideApproval(policy, rule, "only-approver", "only-deployer", prod).allowed);
  EXPECT_FALSE(core::DecideApproval(policy, rule, "only-approver", "only-approver", prod).allowed);
  for (const char* other :
       {"only-viewer", "only-operator", "only-deployer", "only-auditor", "only-security-admin", "admin"}) {
    EXPECT_FALSE(core::DecideApproval(policy, rule, other, "only-deployer", prod).allowed) << other;
  }
}

TEST(DefaultPolicyTest, BootstrapAdminRunsTheQuickStartButNeverDeploysOrApproves) {
  const core::Policy policy = DefaultPolicy();
  ASSERT_EQ(policy.principals.size(), 1u);
  const core::PolicyPrincipal& admin = policy.principals.at("admin");
  EXPECT_EQ(admin.kind, "operator");
  EXPECT_EQ(admin.roles, (std::vector<std::string>{"security-admin", "operator"}));

  const AuthzTarget dev = StoreIn("development");
  const AuthzTarget prod = StoreIn("production");
  EXPECT_TRUE(Decide(policy, "admin", "store.register", dev).allowed);
  EXPECT_EQ(Decide(policy, "admin", "store.register", dev).approval, nullptr);
  EXPECT_TRUE(Decide(policy, "admin", "store.read", dev).allowed);
  EXPECT_TRUE(Decide(policy, "admin", "store.label", dev).allowed);
  for (const char* action : {"token.create", "token.read", "token.revoke", "principal.whoami", "audit.read"}) {
    EXPECT_TRUE(Decide(policy, "admin", action, std::nullopt).allowed) << action;
  }
  EXPECT_NE(Decide(policy, "admin", "store.decommission", prod).approval, nullptr);
  for (const char* action :
       {"deploy.request", "rollback.request", "change.approve", "change.reject", "rollout.create", "rollout.approve"}) {
    for (const AuthzTarget& target : {dev, prod}) {
      const Decision d = Decide(policy, "admin", action, target);
      EXPECT_FALSE(d.allowed) << action;
      EXPECT_EQ(d.rule, "security-admin/deny/1") << action;
    }
  }
  EXPECT_FALSE(Decide(policy, "admin", "audit.export", std::nullopt).allowed);
}

TEST(DefaultPolicyTest, SecurityAdminNeverDeploysOrApprovesWhateverElseItHolds) {
  core::Policy policy = DefaultPolicy();
  policy.principals["everything"] = core::PolicyPrincipal{
      "everything", "operator", {"viewer", "operator", "deployer", "approver", "auditor", "security-admin"}};
  const AuthzTarget prod = StoreIn("production");
  for (const char* action :
       {"deploy.request", "rollback.request", "change.approve", "change.reject", "rollout.create", "rollout.approve"}) {
    EXPECT_FALSE(Decide(policy, "everything", action, prod).allowed) << action;
  }
  // Without security-admin, the same combination may request and approve, but never
  // approve its own request.
  policy.principals["most"] =
      core::PolicyPrincipal{"most", "operator", {"viewer", "operator", "deployer", "approver", "auditor"}};
  EXPECT_TRUE(Decide(policy, "most", "deploy.request", prod).allowed);
  EXPECT_FALSE(core::DecideApproval(policy, policy.approvals[0], "most", "most", prod).allowed);
}

}  // namespace
}  // namespace storeplane::server
