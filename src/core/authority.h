// Authority: the closed catalog of actions, the policy model (roles granting actions,
// optionally limited by environment and label selector; explicit denies; approval rules),
// and Decide(), the pure deny-by-default decision. No I/O; the policy file is parsed by
// server/policy_loader.cc into these types. See docs/CONTROL_PLANE_AUTHORITY.md.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

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

struct Policy {
  std::map<std::string, Role> roles;
  std::map<std::string, PolicyPrincipal> principals;
  std::vector<ApprovalRule> approvals;
  std::string source_hash;  // hex SHA-256 of the file it came from, for the audit trail
};

// Checks internal consistency: known actions (or prefixes of known actions), roles that
// exist, approver roles that exist and can approve (hold change.approve), approvals >= 1.
Status ValidatePolicy(const Policy& policy);

struct Decision {
  bool allowed = false;
  std::string rule;  // the deciding rule id; "default-deny" when nothing matched
  std::string reason;  // safe, human-readable ("no role of P grants A in production")
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
