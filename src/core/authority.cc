// The action catalog, policy validation and the deny-by-default decision (core/authority.h).
// Pure: no I/O. Reasons are shown to operators: they name the principal, the action, the
// target and the deciding rule id, never other rules, roles or principals.
#include "core/authority.h"

#include <algorithm>

namespace storeplane::core {
namespace {

constexpr std::size_t kMaxNameLength = 63;
constexpr int kMaxApprovals = 10;
constexpr std::int64_t kMinExpiryMs = 1000;  // short expiries are for tests and drills
constexpr std::int64_t kMaxExpiryMs = 30LL * 24 * 3600 * 1000;

std::string Quote(std::string_view text) { return "'" + std::string(text) + "'"; }

bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

bool IsExactGlobal(std::string_view pattern) {
  const ActionInfo* info = FindAction(pattern);
  return info != nullptr && !info->store_scoped;
}

bool IsLimited(const Rule& rule) { return !rule.environments.empty() || !rule.selector.empty(); }

bool CoversAction(const std::vector<std::string>& patterns, std::string_view action) {
  return std::any_of(patterns.begin(), patterns.end(), [&](const std::string& p) { return ActionMatches(p, action); });
}

// Whether `rule` applies to `action` on `target`. Store-scoped actions are checked against
// the target's environment and labels. Global actions have nothing to check limits
// against: a limited allow never grants one, a limited deny always applies (in doubt, deny).
bool RuleApplies(const Rule& rule, const ActionInfo& action, const std::optional<AuthzTarget>& target, bool is_deny) {
  if (!CoversAction(rule.actions, action.name)) return false;
  if (!action.store_scoped) return is_deny || !IsLimited(rule);
  if (!target) return is_deny;  // unreachable from Decide(): scoped actions need a target
  if (!rule.environments.empty() && !rule.environments.contains(target->environment)) return false;
  return rule.selector.Matches(target->labels);
}

// The roles a principal holds that exist in the policy, in name order, without duplicates.
std::vector<const Role*> RolesOf(const Policy& policy, const PolicyPrincipal& principal) {
  std::vector<const Role*> roles;
  for (const auto& [name, role] : policy.roles) {
    if (std::find(principal.roles.begin(), principal.roles.end(), name) != principal.roles.end()) {
      roles.push_back(&role);
    }
  }
  return roles;
}

std::string TargetText(const ActionInfo& action, const std::optional<AuthzTarget>& target) {
  if (!action.store_scoped || !target) return "";
  std::string text = target->store_id.empty() ? "" : " on store " + Quote(target->store_id);
  if (!target->environment.empty()) text += " in " + target->environment;
  return text;
}

std::string EnvironmentList(const EnvironmentSet& environments) {
  std::string list;
  for (const std::string& name : environments.names) {
    if (!list.empty()) list += ", ";
    list += name;
  }
  return list;
}

Status CheckEnvironments(const std::set<std::string>& envs, const EnvironmentSet& known) {
  for (const std::string& env : envs) {
    if (!known.names.contains(env)) {
      return Error::Invalid("unknown environment " + Quote(env) + " (known: " + EnvironmentList(known) + ")");
    }
  }
  return Status::Ok();
}

// Whether `role` grants change.approve for stores in `environment` through a rule limited
// by environment only (a selector may or may not match a given store, so it is accepted).
bool RoleCanApproveIn(const Role& role, const std::string& environment) {
  return std::any_of(role.allow.begin(), role.allow.end(), [&](const Rule& rule) {
    return CoversAction(rule.actions, "change.approve") &&
           (rule.environments.empty() || rule.environments.contains(environment));
  });
}

Error InContext(const std::string& context, const Error& error) {
  return Error::Invalid(context + ": " + error.message, error.field);
}

Status CheckRules(const std::string& role_name, const std::vector<Rule>& rules, std::string_view kind,
                  const EnvironmentSet& environments) {
  for (std::size_t i = 0; i < rules.size(); ++i) {
    const std::string expected = role_name + "/" + std::string(kind) + "/" + std::to_string(i + 1);
    if (rules[i].id != expected) {
      return Error::Invalid("role " + Quote(role_name) + ": rule id " + Quote(rules[i].id) + " should be " +
                            Quote(expected));
    }
    if (Status s = ValidateRule(rules[i], environments); !s) return InContext("rule " + expected, s.error());
  }
  return Status::Ok();
}

}  // namespace

const std::vector<ActionInfo>& ActionCatalog() {
  static const std::vector<ActionInfo> kCatalog = {
      {"store.read", true, "see a store's registry record (get, and presence in lists)"},
      {"store.register", true, "add a store to the registry (decided against the store being registered)"},
      {"store.label", true, "change a store's display name and labels"},
      {"store.provision", true, "start provisioning a store through CI/CD in its isolation mode"},
      {"store.decommission", true, "start decommissioning a store; its id stays reserved"},
      {"deploy.request", true, "ask CI/CD to deploy a release to a store"},
      {"rollback.request", true, "ask CI/CD to roll a store back to its last known good release"},
      {"isolation.migrate", true, "move a store to a stricter isolation mode (never a looser one)"},
      {"operation.run.health.probe", true, "ask the store's agent for a health probe"},
      {"operation.run.maintenance.enable", true, "ask the store's agent to enable maintenance mode"},
      {"operation.run.maintenance.disable", true, "ask the store's agent to disable maintenance mode"},
      {"operation.run.cache.flush", true, "ask the store's agent to flush the application cache"},
      {"operation.run.indexer.status", true, "ask the store's agent for indexer status"},
      {"operation.run.db.status", true,
       "ask the store's agent whether the Magento schema is up to date (nothing more)"},
      {"operation.run.release.report", true, "ask the store's agent which release it runs"},
      {"operation.read", true, "see a store's operations, their states and closed results"},
      {"agent.read", true, "see a store's agent: availability, health, version, allow-list"},
      {"agent.enroll", true, "create a one-time enrollment token for a store's agent"},
      {"agent.revoke", true, "revoke a store's agent credential; it can no longer connect"},
      {"run.read", true, "see a store's pipeline runs: provision, deploy, rollback, decommission, migration"},
      {"rollout.read", true, "see fleet rollouts and their targets (decided against the rollout's environment)"},
      {"rollout.create", true,
       "start a fleet rollout of a release (decided against every store it plans; a deploy to each)"},
      {"rollout.pause", true, "pause a fleet rollout: no new deploys; runs in flight go on"},
      {"rollout.resume", true, "resume a paused fleet rollout"},
      {"rollout.abort", true, "abort a fleet rollout, optionally rolling back its current wave"},
      {"rollout.approve", true, "approve the next wave of a fleet rollout created by someone else"},
      {"change.read", false, "list and read pending and past change requests"},
      {"change.approve", true, "approve a change request (decided against the change's target store)"},
      {"change.reject", true, "reject a change request (decided against the change's target store)"},
      {"audit.read", false, "read audit records, checkpoints and the audit public key"},
      {"audit.export", false, "export the audit trail as NDJSON"},
      {"authz.explain", false, "ask whether a principal may perform an action on a target, without acting"},
      {"token.create", false, "create a bearer token for a principal (shown once)"},
      {"token.read", false, "list tokens (ids and metadata, never secrets)"},
      {"token.revoke", false, "revoke a token"},
      {"principal.whoami", false, "see one's own principal id, kind and roles"},
      {"event.watch", false,
       "open the live event stream; each event is delivered only when the caller may read what it is about"},
      {"metrics.read", false, "scrape /metrics: fleet-wide counts and latencies, no store business data"},
      {"window.read", false, "see the deploy windows and freezes of the policy and whether each environment is open"},
      {"policy.reload", false, "reload the policy file (server-initiated on SIGHUP; never granted)"},
      {"agent.enrolled", false,
       "an agent exchanged its enrollment token for a credential (agent-initiated; never granted)"},
      {"agent.credential.rotate", false, "an agent replaced its own credential (agent-initiated; never granted)"},
      {"operation.report", false, "an agent reported an operation's outcome (agent-initiated; never granted)"},
      {"operation.expire", false, "the server expired an unfinished operation (server-initiated; never granted)"},
      {"run.trigger", false, "the server sent (or skipped) a run's trigger to CI/CD (server-initiated; never granted)"},
      {"run.transition", false, "a run moved on: provider outcome, timeout or health gate (never granted)"},
      {"rollback.automatic", false, "the server rolled back a deploy that failed its health gate (never granted)"},
      {"callback.refused", false, "a CI/CD callback was refused: signature, window, replay (never granted)"},
      {"rollout.step", false, "a fleet rollout moved on: runs started, waves, halts, ends (never granted)"},
  };
  return kCatalog;
}

const ActionInfo* FindAction(std::string_view name) {
  for (const ActionInfo& info : ActionCatalog()) {
    if (info.name == name) return &info;
  }
  return nullptr;
}

bool IsSystemAction(std::string_view action) {
  return action == "policy.reload" || action == "agent.enrolled" || action == "agent.credential.rotate" ||
         action == "operation.report" || action == "operation.expire" || action == "run.trigger" ||
         action == "run.transition" || action == "rollback.automatic" || action == "callback.refused";
}

bool ActionMatches(std::string_view pattern, std::string_view action) {
  if (IsSystemAction(action)) return false;
  if (pattern.size() > 2 && pattern.ends_with(".*")) {
    const std::string_view prefix = pattern.substr(0, pattern.size() - 1);  // keeps the '.'
    if (prefix.find('*') != std::string_view::npos) return false;
    return action.size() > prefix.size() && action.starts_with(prefix);
  }
  if (pattern.find('*') != std::string_view::npos) return false;
  return pattern == action;
}

std::vector<std::string_view> ExpandActionPattern(std::string_view pattern) {
  std::vector<std::string_view> actions;
  if (!ValidateActionPattern(pattern)) return actions;
  for (const ActionInfo& info : ActionCatalog()) {
    if (ActionMatches(pattern, info.name)) actions.push_back(info.name);
  }
  return actions;
}

Status ValidateActionPattern(std::string_view pattern) {
  if (pattern.empty()) return Error::Invalid("empty action name");
  if (pattern == "*") {
    return Error::Invalid(
        "'*' is not allowed: authority is never granted wholesale; name the actions or use 'prefix.*'");
  }
  const std::size_t star = pattern.find('*');
  if (star != std::string_view::npos) {
    if (star != pattern.size() - 1 || pattern.size() < 3 || pattern[pattern.size() - 2] != '.') {
      return Error::Invalid("bad wildcard " + Quote(pattern) + ": only a trailing 'prefix.*' is allowed");
    }
    bool any = false;
    for (const ActionInfo& info : ActionCatalog()) any = any || ActionMatches(pattern, info.name);
    if (!any) return Error::Invalid(Quote(pattern) + " matches no grantable action");
    return Status::Ok();
  }
  if (FindAction(pattern) == nullptr) return Error::Invalid("unknown action " + Quote(pattern));
  if (IsSystemAction(pattern)) {
    return Error::Invalid(Quote(pattern) + " is performed by the server only and cannot appear in a rule");
  }
  return Status::Ok();
}

Status ValidateRoleName(std::string_view name) {
  if (name.empty() || name.size() > kMaxNameLength) return Error::Invalid("role names have 1 to 63 characters");
  const bool chars_ok = std::all_of(name.begin(), name.end(), [](char c) { return IsLowerAlnum(c) || c == '-'; });
  if (!chars_ok || name.front() < 'a' || name.front() > 'z' || name.back() == '-') {
    return Error::Invalid("bad role name " + Quote(name) +
                          ": use a-z, 0-9 and '-', starting with a letter, not ending with '-'");
  }
  return Status::Ok();
}

Status ValidatePrincipalId(std::string_view id) {
  if (id.empty() || id.size() > kMaxNameLength) return Error::Invalid("principal ids have 1 to 63 characters");
  const bool chars_ok =
      std::all_of(id.begin(), id.end(), [](char c) { return IsLowerAlnum(c) || c == '-' || c == '.' || c == '_'; });
  if (!chars_ok || !IsLowerAlnum(id.front()) || !IsLowerAlnum(id.back())) {
    return Error::Invalid("bad principal id " + Quote(id) +
                          ": use a-z, 0-9, '.', '_' and '-', starting and ending with a letter or digit");
  }
  if (id == kSystemPrincipal) return Error::Invalid("the principal id 'system' is reserved for the server");
  return Status::Ok();
}

Status ValidateRule(const Rule& rule, const EnvironmentSet& environments) {
  if (rule.actions.empty()) return Error::Invalid("a rule needs at least one action");
  for (const std::string& pattern : rule.actions) SP_RETURN_IF_ERROR(ValidateActionPattern(pattern));
  SP_RETURN_IF_ERROR(CheckEnvironments(rule.environments, environments));
  if (IsLimited(rule)) {
    for (const std::string& pattern : rule.actions) {
      if (IsExactGlobal(pattern)) {
        return Error::Invalid(Quote(pattern) +
                              " is a global action: it has no store to check environments or a selector "
                              "against; put it in a rule without them");
      }
    }
  }
  return Status::Ok();
}

Status ValidateApprovalRule(const ApprovalRule& rule, const EnvironmentSet& environments) {
  if (rule.actions.empty()) return Error::Invalid("an approval rule needs at least one action");
  for (const std::string& pattern : rule.actions) {
    SP_RETURN_IF_ERROR(ValidateActionPattern(pattern));
    for (std::string_view action : ExpandActionPattern(pattern)) {
      if (!FindAction(action)->store_scoped) {
        return Error::Invalid(Quote(action) + " is a global action; approvals apply to store-scoped actions only");
      }
      if (action == "change.approve" || action == "change.reject") {
        return Error::Invalid(Quote(action) + " cannot itself need approval");
      }
    }
  }
  SP_RETURN_IF_ERROR(CheckEnvironments(rule.environments, environments));
  if (rule.approvals < 1 || rule.approvals > kMaxApprovals) {
    return Error::Invalid("approvals must be between 1 and " + std::to_string(kMaxApprovals));
  }
  if (rule.expires_after_ms < kMinExpiryMs || rule.expires_after_ms > kMaxExpiryMs) {
    return Error::Invalid("expires_after must be between 1 second and 30 days");
  }
  if (rule.approver_role.empty()) return Error::Invalid("approver_role is required");
  return Status::Ok();
}

bool RoleCanApprove(const Role& role) {
  return std::any_of(role.allow.begin(), role.allow.end(),
                     [](const Rule& rule) { return CoversAction(rule.actions, "change.approve"); });
}

void NumberRules(Policy& policy) {
  for (std::size_t i = 0; i < policy.windows.size(); ++i) policy.windows[i].id = "window/" + std::to_string(i + 1);
  for (auto& [name, role] : policy.roles) {
    for (std::size_t i = 0; i < role.allow.size(); ++i) role.allow[i].id = name + "/allow/" + std::to_string(i + 1);
    for (std::size_t i = 0; i < role.deny.size(); ++i) role.deny[i].id = name + "/deny/" + std::to_string(i + 1);
  }
  for (std::size_t i = 0; i < policy.approvals.size(); ++i) {
    policy.approvals[i].id = "approval/" + std::to_string(i + 1);
  }
}

Status ValidatePolicy(const Policy& policy) { return ValidatePolicy(policy, EnvironmentSet{}); }

Status ValidatePolicy(const Policy& policy, const EnvironmentSet& environments) {
  for (const auto& [name, role] : policy.roles) {
    if (name != role.name)
      return Error::Invalid("role " + Quote(name) + " is stored under the name " + Quote(role.name));
    SP_RETURN_IF_ERROR(ValidateRoleName(name));
    SP_RETURN_IF_ERROR(CheckRules(name, role.allow, "allow", environments));
    SP_RETURN_IF_ERROR(CheckRules(name, role.deny, "deny", environments));
  }
  for (const auto& [id, principal] : policy.principals) {
    const std::string context = "principal " + Quote(id);
    if (id != principal.id) return Error::Invalid(context + " is stored under the id " + Quote(principal.id));
    if (Status s = ValidatePrincipalId(id); !s) return InContext(context, s.error());
    if (principal.kind != "operator" && principal.kind != "service") {
      return Error::Invalid(context + ": kind must be 'operator' or 'service'");
    }
    if (principal.roles.empty()) return Error::Invalid(context + ": a principal needs at least one role");
    std::set<std::string> seen;
    for (const std::string& role : principal.roles) {
      if (!policy.roles.contains(role)) return Error::Invalid(context + ": unknown role " + Quote(role));
      if (!seen.insert(role).second) return Error::Invalid(context + ": role " + Quote(role) + " is listed twice");
    }
  }
  for (std::size_t i = 0; i < policy.approvals.size(); ++i) {
    const ApprovalRule& rule = policy.approvals[i];
    const std::string expected = "approval/" + std::to_string(i + 1);
    if (rule.id != expected) {
      return Error::Invalid("approval rule id " + Quote(rule.id) + " should be " + Quote(expected));
    }
    if (Status s = ValidateApprovalRule(rule, environments); !s) return InContext(expected, s.error());
    const auto role = policy.roles.find(rule.approver_role);
    if (role == policy.roles.end()) {
      return Error::Invalid(expected + ": unknown approver_role " + Quote(rule.approver_role));
    }
    const std::set<std::string>& envs = rule.environments.empty() ? environments.names : rule.environments;
    for (const std::string& env : envs) {
      if (!RoleCanApproveIn(role->second, env)) {
        return Error::Invalid(expected + ": approver_role " + Quote(rule.approver_role) +
                              " is not allowed change.approve in " + env);
      }
    }
  }
  for (std::size_t i = 0; i < policy.windows.size(); ++i) {
    const DeployWindow& window = policy.windows[i];
    const std::string expected = "window/" + std::to_string(i + 1);
    if (window.id != expected) return Error::Invalid("window id " + Quote(window.id) + " should be " + Quote(expected));
    if (Status s = ValidateWindow(window, environments); !s) return InContext(expected, s.error());
  }
  return Status::Ok();
}

Status ValidateWindow(const DeployWindow& window, const EnvironmentSet& environments) {
  if (window.actions.empty()) return Error::Invalid("a window needs at least one action");
  for (const std::string& action : window.actions) {
    if (!IsWindowedAction(action)) {
      return Error::Invalid(
          "windows govern the requests that become pipeline runs only (deploy.request, "
          "rollback.request, store.provision, store.decommission, isolation.migrate), not " +
          Quote(action));
    }
  }
  for (const std::string& env : window.environments) {
    if (!environments.names.contains(env)) return Error::Invalid("unknown environment " + Quote(env));
  }
  if (window.duration_ms <= 0 || window.duration_ms > kMaxWindowDurationMs || window.duration_ms % kMinuteMs != 0) {
    return Error::Invalid("a window's duration must be whole minutes, from 1m to 31d");
  }
  if (window.description.size() > 200) return Error::Invalid("a window's description is limited to 200 bytes");
  return Status::Ok();
}

Decision Decide(const Policy& policy, std::string_view principal_id, std::string_view action,
                const std::optional<AuthzTarget>& target) {
  Decision decision;
  decision.rule = std::string(kDefaultDenyRule);
  const ActionInfo* info = FindAction(action);
  if (info == nullptr) {
    decision.reason = Quote(action) + " is not a known action";
    return decision;
  }
  if (IsSystemAction(action)) {
    decision.reason = Quote(action) + " is performed by the server only";
    return decision;
  }
  const auto principal = policy.principals.find(std::string(principal_id));
  if (principal == policy.principals.end()) {
    decision.reason = "principal " + Quote(principal_id) + " holds no role in the policy";
    return decision;
  }
  if (info->store_scoped && !target) {
    decision.reason = Quote(action) + " needs a target store";
    return decision;
  }
  const std::vector<const Role*> roles = RolesOf(policy, principal->second);
  for (const Role* role : roles) {
    for (const Rule& rule : role->deny) {
      if (RuleApplies(rule, *info, target, /*is_deny=*/true)) {
        decision.rule = rule.id;
        decision.reason = Quote(action) + TargetText(*info, target) + " is denied by rule " + Quote(rule.id);
        return decision;
      }
    }
  }
  for (const Role* role : roles) {
    for (const Rule& rule : role->allow) {
      if (!RuleApplies(rule, *info, target, /*is_deny=*/false)) continue;
      decision.allowed = true;
      decision.rule = rule.id;
      decision.reason = Quote(action) + TargetText(*info, target) + " is allowed by rule " + Quote(rule.id);
      if (info->store_scoped) {
        for (const ApprovalRule& approval : policy.approvals) {
          if (CoversAction(approval.actions, action) &&
              (approval.environments.empty() || approval.environments.contains(target->environment))) {
            decision.approval = &approval;
            decision.reason += "; it needs " + std::to_string(approval.approvals) + " approval" +
                               (approval.approvals == 1 ? "" : "s") + " (" + approval.id + ")";
            break;
          }
        }
      }
      return decision;
    }
  }
  decision.reason = "no role of " + Quote(principal_id) + " grants " + Quote(action) + TargetText(*info, target);
  return decision;
}

Decision DecideApproval(const Policy& policy, const ApprovalRule& rule, std::string_view principal_id,
                        std::string_view requester_id, const AuthzTarget& target) {
  Decision decision;
  decision.rule = rule.id;
  if (requester_id.empty()) {
    decision.reason = "the change has no recorded requester";
    return decision;
  }
  if (principal_id == requester_id) {
    decision.reason = "the requester of a change cannot approve it (" + rule.id + ")";
    return decision;
  }
  const auto principal = policy.principals.find(std::string(principal_id));
  if (principal == policy.principals.end()) {
    decision.rule = std::string(kDefaultDenyRule);
    decision.reason = "principal " + Quote(principal_id) + " holds no role in the policy";
    return decision;
  }
  const std::vector<std::string>& roles = principal->second.roles;
  if (!policy.roles.contains(rule.approver_role) ||
      std::find(roles.begin(), roles.end(), rule.approver_role) == roles.end()) {
    decision.reason = Quote(principal_id) + " does not hold the role that " + rule.id + " requires";
    return decision;
  }
  decision = Decide(policy, principal_id, "change.approve", target);
  decision.approval = nullptr;
  return decision;
}

}  // namespace storeplane::core
