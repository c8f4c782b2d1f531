// Authority: the closed catalog of actions, the policy model (roles granting actions,
// optionally limited by environment and label selector; explicit denies; approval rules),
// and Decide(), the pure deny-by-default decision. No I/O; the policy file is parsed by
// server/policy_loader.cc into these types. See docs/CONTROL_PLANE_AUTHORITY.md.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/deploy_window.h"
#include "core/label_selector.h"
#include "core/result.h"
#include "core/store.h"

namespace storeplane::core {

// One named action. Store-scoped actions are decided against a target store's environment
// and labels; global ones (tokens, audit, explain) have no target.
struct ActionInfo {
  std::string_view name;  // e.g. "store.register"
  bool store_scoped;
  std::string_view summary;
};

// Every action storeplane knows, in a stable order. A name not here is never allowed.
const std::vector<ActionInfo>& ActionCatalog();
const ActionInfo* FindAction(std::string_view name);

// What an action is decided against: nothing (global actions) or a store's environment
// and labels (for registration, the store being registered).
struct AuthzTarget {
  std::string store_id;
  std::string environment;
  Labels labels;
};

// A grant or deny rule inside a role. Empty `environments` means every environment;
// an empty selector matches every label set. `actions` hold exact names or "prefix.*".
struct Rule {
  std::string id;  // stable, human-readable: "<role>/allow/<n>" or "<role>/deny/<n>"
  std::vector<std::string> actions;
  std::set<std::string> environments;
  LabelSelector selector;
};

struct Role {
  std::string name;
  std::string description;
  std::vector<Rule> allow;
  std::vector<Rule> deny;  // explicit denies win over any allow, across all roles
};

struct PolicyPrincipal {
  std::string id;
  std::string kind;  // "operator" | "service"
  std::vector<std::string> roles;
};

// "Actions A in environments E need N approvals by principals holding role R, none of
// them the requester."
struct ApprovalRule {
  std::string id;  // "approval/<n>"
  std::vector<std::string> actions;
  std::set<std::string> environments;  // empty = every environment
  int approvals = 1;
  std::string approver_role;
  std::int64_t expires_after_ms = 24 * 3600 * 1000;
};

// The approval rule id of break-glass change requests.
inline constexpr std::string_view kBreakGlassRule = "break-glass";

struct Policy {
  std::map<std::string, Role> roles;
  std::map<std::string, PolicyPrincipal> principals;
  std::vector<ApprovalRule> approvals;
  // Deploy windows and freezes (core/deploy_window.h), ids "window/<n>" in file order.
  std::vector<DeployWindow> windows;
  // Who approves a run requested with break_glass outside its window: the rule's count,
  // approver role and expiry (its actions and environments are unused). Built in when the
  // file has no `break_glass:` section: 1 approval by "approver", expiring after 4h; then a
  // policy without an "approver" role able to approve has no break-glass at all.
  ApprovalRule break_glass{std::string(kBreakGlassRule), {}, {}, 1, "approver", 4LL * 3600 * 1000};
  std::string source_hash;  // hex SHA-256 of the file it came from, for the audit trail
};

// --- Additions (declarations below this line extend the contract above) ---------------

// The principal id under which the server audits its own actions (policy.reload on SIGHUP).
// Reserved: a policy may not declare a principal with this id.
inline constexpr std::string_view kSystemPrincipal = "system";
// Decision.rule when nothing matched, or when the request cannot be decided at all.
inline constexpr std::string_view kDefaultDenyRule = "default-deny";

// System-initiated actions (policy.reload): in the catalog so that they can be audited,
// but never granted to a principal. No rule may name one, and Decide() always denies them.
bool IsSystemAction(std::string_view action);
// Whether `pattern` (an exact catalog name or "prefix.*") covers `action`. "prefix.*"
// covers every action starting with "prefix."; "*" alone covers nothing.
bool ActionMatches(std::string_view pattern, std::string_view action);
// Checks one entry of a rule's `actions`: an exact catalog name, or "prefix.*" covering at
// least one catalog action. "*", other wildcards and system actions are errors.
Status ValidateActionPattern(std::string_view pattern);
// The catalog actions that `pattern` covers, in catalog order (empty when it is invalid).
std::vector<std::string_view> ExpandActionPattern(std::string_view pattern);
// Role names: 1..63 of [a-z0-9-], starting with a letter, not ending with '-'.
Status ValidateRoleName(std::string_view name);
// Principal ids: 1..63 of [a-z0-9._-], starting and ending alphanumeric; "system" reserved.
Status ValidatePrincipalId(std::string_view id);
// One rule on its own: valid action patterns, known environments, and no exact global
// action in a rule limited by environments or selector (such a rule could never grant it).
Status ValidateRule(const Rule& rule, const EnvironmentSet& environments);
// One approval rule on its own: valid patterns covering store-scoped actions only (not
// change.approve/change.reject), known environments, 1 <= approvals <= 10,
// 1 minute <= expires_after <= 30 days. The approver role is checked by ValidatePolicy.
Status ValidateApprovalRule(const ApprovalRule& rule, const EnvironmentSet& environments);
// One deploy window on its own: actions that become pipeline runs (IsWindowedAction), known
// environments, a duration of whole minutes from 1m to 31d, a description of <= 200 bytes.
Status ValidateWindow(const DeployWindow& window, const EnvironmentSet& environments);
// Whether `role` grants change.approve through some allow rule (in any environment).
bool RoleCanApprove(const Role& role);
// Assigns the documented rule ids from positions: "<role>/allow/<n>", "<role>/deny/<n>",
// "approval/<n>", n counting from 1 in file order. The loader calls it; so may tests.
void NumberRules(Policy& policy);
// Checks the policy against a configured set of environments (ValidatePolicy(policy) uses
// the default set: production, staging, development). Also checks that each rule id is the
// one NumberRules() would assign, and that map keys equal the names inside.
Status ValidatePolicy(const Policy& policy, const EnvironmentSet& environments);

// Checks internal consistency: known actions (or prefixes of known actions), roles that
// exist, approver roles that exist and can approve (hold change.approve), approvals >= 1.
Status ValidatePolicy(const Policy& policy);

struct Decision {
  bool allowed = false;
  std::string rule;                        // the deciding rule id; "default-deny" when nothing matched
  std::string reason;                      // safe, human-readable ("no role of P grants A in production")
  const ApprovalRule* approval = nullptr;  // set when allowed but the action needs approval
};

// Deny by default. A principal unknown to the policy, an action not in the catalog, or a
// store-scoped action without a target is denied. Any matching deny wins; otherwise the
// first matching allow (roles in name order, rules in file order) decides.
Decision Decide(const Policy& policy, std::string_view principal_id, std::string_view action,
                const std::optional<AuthzTarget>& target);

// Whether `principal_id` may approve a change for `rule` requested by `requester_id`:
// holds rule.approver_role, is allowed change.approve on the target, and is not the requester.
Decision DecideApproval(const Policy& policy, const ApprovalRule& rule, std::string_view principal_id,
                        std::string_view requester_id, const AuthzTarget& target);

}  // namespace storeplane::core
