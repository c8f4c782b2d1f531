#include "server/policy_loader.h"

#include <openssl/evp.h>
#include <yaml-cpp/yaml.h>

#include <charconv>
#include <fstream>
#include <set>
#include <utility>
#include <vector>

namespace storeplane::server {
namespace {

constexpr std::size_t kMaxPolicyBytes = 1024 * 1024;

std::string Sha256HexOf(std::string_view bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), digest, &length, EVP_sha256(), nullptr) != 1) return {};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(length * 2);
  for (unsigned int i = 0; i < length; ++i) {
    hex += kHex[digest[i] >> 4];
    hex += kHex[digest[i] & 0x0f];
  }
  return hex;
}

std::string Quote(std::string_view text) { return "'" + std::string(text) + "'"; }

// A scalar with the node it came from, so that later checks can still name its line.
struct Item {
  std::string text;
  YAML::Node node;
};

// One parse of one file. Every method returns the first problem found, as
// "<name>:<line>: <problem>" (or "<name>: <problem>" when yaml-cpp has no position).
class PolicyParser {
 public:
  PolicyParser(std::string name, const core::EnvironmentSet& environments)
      : name_(std::move(name)), environments_(environments) {}

  Result<core::Policy> Parse(std::string_view text) {
    YAML::Node root;
    try {
      root = YAML::Load(std::string(text));
    } catch (const YAML::Exception& e) {
      const std::string where = e.mark.is_null() ? name_ : name_ + ":" + std::to_string(e.mark.line + 1);
      return Error::Invalid(where + ": not valid YAML: " + e.msg);
    }
    try {
      return ParseRoot(root);
    } catch (const YAML::Exception& e) {  // defensive: the checks above should leave none
      return Error::Invalid(name_ + ": " + e.msg);
    }
  }

 private:
  Error At(const YAML::Node& node, const std::string& problem) const {
    const YAML::Mark mark = node.Mark();
    if (mark.is_null() || mark.line < 0) return Error::Invalid(name_ + ": " + problem);
    return Error::Invalid(name_ + ":" + std::to_string(mark.line + 1) + ": " + problem);
  }

  // `node` must be a mapping whose keys are distinct scalars from `known`.
  Status CheckMap(const YAML::Node& node, const std::set<std::string>& known, const std::string& what) const {
    if (!node.IsMap()) return At(node, what + " must be a mapping");
    std::set<std::string> seen;
    for (const auto& kv : node) {
      if (!kv.first.IsScalar()) return At(kv.first, "keys in " + what + " must be plain names");
      const std::string key = kv.first.Scalar();
      if (!known.empty() && !known.contains(key)) return At(kv.first, "unknown key " + Quote(key) + " in " + what);
      if (!seen.insert(key).second) return At(kv.first, "duplicate key " + Quote(key) + " in " + what);
    }
    return Status::Ok();
  }

  Result<std::string> Scalar(const YAML::Node& node, const std::string& what) const {
    if (!node.IsScalar()) return At(node, what + " must be a single value");
    return node.Scalar();
  }

  // A sequence of scalars; an empty value (null) is an empty list.
  Result<std::vector<Item>> ScalarList(const YAML::Node& node, const std::string& what) const {
    std::vector<Item> items;
    if (node.IsNull()) return items;
    if (!node.IsSequence()) return At(node, what + " must be a list");
    for (const auto& element : node) {
      if (!element.IsScalar()) return At(element, "each entry of " + what + " must be a single value");
      items.push_back({element.Scalar(), element});
    }
    return items;
  }

  Status CheckEnvironment(const Item& env) const {
    if (env.text.empty()) return At(env.node, "empty environment name");
    if (!environments_.names.contains(env.text)) {
      std::string known;
      for (const std::string& n : environments_.names) known += (known.empty() ? "" : ", ") + n;
      return At(env.node, "unknown environment " + Quote(env.text) + " (known: " + known + ")");
    }
    return Status::Ok();
  }

  Result<std::vector<std::string>> Actions(const YAML::Node& owner, const std::string& what) const {
    const YAML::Node node = owner["actions"];
    if (!node) return At(owner, what + " needs 'actions'");
    auto items = ScalarList(node, "'actions'");
    if (!items.ok()) return items.error();
    if (items->empty()) return At(node, what + " needs at least one action");
    std::vector<std::string> actions;
    for (const Item& item : *items) {
      if (Status s = core::ValidateActionPattern(item.text); !s) return At(item.node, s.error().message);
      actions.push_back(item.text);
    }
    return actions;
  }

  Result<std::set<std::string>> Environments(const YAML::Node& owner) const {
    std::set<std::string> envs;
    const YAML::Node node = owner["environments"];
    if (!node) return envs;
    auto items = ScalarList(node, "'environments'");
    if (!items.ok()) return items.error();
    for (const Item& item : *items) {
      SP_RETURN_IF_ERROR(CheckEnvironment(item));
      envs.insert(item.text);
    }
    return envs;
  }

  Result<core::Rule> ParseRule(const YAML::Node& node) const {
    SP_RETURN_IF_ERROR(CheckMap(node, {"actions", "environments", "selector"}, "a rule"));
    core::Rule rule;
    auto actions = Actions(node, "a rule");
    if (!actions.ok()) return actions.error();
    rule.actions = std::move(*actions);
    auto envs = Environments(node);
    if (!envs.ok()) return envs.error();
    rule.environments = std::move(*envs);
    if (const YAML::Node selector = node["selector"]) {
      auto text = Scalar(selector, "'selector'");
      if (!text.ok()) return text.error();
      auto parsed = core::LabelSelector::Parse(*text);
      if (!parsed.ok()) return At(selector, "bad selector: " + parsed.error().message);
      rule.selector = std::move(*parsed);
    }
    if (Status s = core::ValidateRule(rule, environments_); !s) return At(node, s.error().message);
    return rule;
  }

  Result<std::vector<core::Rule>> ParseRules(const YAML::Node& node, const std::string& what) const {
    std::vector<core::Rule> rules;
    if (node.IsNull()) return rules;
    if (!node.IsSequence()) return At(node, what + " must be a list of rules");
    for (const auto& element : node) {
      auto rule = ParseRule(element);
      if (!rule.ok()) return rule.error();
      rules.push_back(std::move(*rule));
    }
    return rules;
  }

  Result<core::Role> ParseRole(const YAML::Node& key, const YAML::Node& value) const {
    core::Role role;
    role.name = key.Scalar();
    if (Status s = core::ValidateRoleName(role.name); !s) return At(key, s.error().message);
    const std::string what = "role " + Quote(role.name);
    if (value.IsNull()) return At(key, what + " is empty");
    SP_RETURN_IF_ERROR(CheckMap(value, {"description", "allow", "deny"}, what));
    if (const YAML::Node d = value["description"]) {
      auto text = Scalar(d, "'description'");
      if (!text.ok()) return text.error();
      role.description = *text;
    }
    if (const YAML::Node allow = value["allow"]) {
      auto rules = ParseRules(allow, "'allow'");
      if (!rules.ok()) return rules.error();
      role.allow = std::move(*rules);
    }
    if (const YAML::Node deny = value["deny"]) {
      auto rules = ParseRules(deny, "'deny'");
      if (!rules.ok()) return rules.error();
      role.deny = std::move(*rules);
    }
    return role;
  }

  Result<core::PolicyPrincipal> ParsePrincipal(const YAML::Node& key, const YAML::Node& value,
                                               const core::Policy& policy) const {
    core::PolicyPrincipal principal;
    principal.id = key.Scalar();
    if (Status s = core::ValidatePrincipalId(principal.id); !s) return At(key, s.error().message);
    const std::string what = "principal " + Quote(principal.id);
    if (value.IsNull()) return At(key, what + " has no roles");
    SP_RETURN_IF_ERROR(CheckMap(value, {"kind", "roles"}, what));
    const YAML::Node kind = value["kind"];
    if (!kind) return At(value, what + " needs 'kind' (operator or service)");
    auto kind_text = Scalar(kind, "'kind'");
    if (!kind_text.ok()) return kind_text.error();
    if (*kind_text != "operator" && *kind_text != "service") {
      return At(kind, "kind must be 'operator' or 'service', not " + Quote(*kind_text));
    }
    principal.kind = *kind_text;
    const YAML::Node roles = value["roles"];
    if (!roles) return At(value, what + " has no roles");
    auto items = ScalarList(roles, "'roles'");
    if (!items.ok()) return items.error();
    if (items->empty()) return At(roles, what + " has no roles");
    for (const Item& item : *items) {
      if (!policy.roles.contains(item.text)) return At(item.node, what + ": unknown role " + Quote(item.text));
      for (const std::string& seen : principal.roles) {
        if (seen == item.text) return At(item.node, what + ": role " + Quote(item.text) + " is listed twice");
      }
      principal.roles.push_back(item.text);
    }
    return principal;
  }

  // "90s", "30m", "24h", "7d".
  Result<std::int64_t> ParseDuration(const YAML::Node& node) const {
    auto text = Scalar(node, "'expires_after'");
    if (!text.ok()) return text.error();
    const std::string& s = *text;
    std::int64_t count = 0;
    const char* end = s.data() + s.size();
    auto [p, ec] = std::from_chars(s.data(), end, count);
    std::int64_t unit_ms = 0;
    if (ec == std::errc() && p + 1 == end && count > 0) {
      switch (*p) {
        case 's': unit_ms = 1000; break;
        case 'm': unit_ms = 60LL * 1000; break;
        case 'h': unit_ms = 3600LL * 1000; break;
        case 'd': unit_ms = 24LL * 3600 * 1000; break;
        default: break;
      }
    }
    constexpr std::int64_t kCountLimit = 1'000'000'000;  // keeps count * unit far from overflow
    if (unit_ms == 0 || count > kCountLimit) {
      return At(node,
                "expires_after must be a positive whole number with a unit s, m, h or d (e.g. 24h), not " + Quote(s));
    }
    return count * unit_ms;
  }

  Result<core::ApprovalRule> ParseApproval(const YAML::Node& node, const core::Policy& policy) const {
    SP_RETURN_IF_ERROR(
        CheckMap(node, {"actions", "environments", "approvals", "approver_role", "expires_after"}, "an approval rule"));
    core::ApprovalRule rule;
    auto actions = Actions(node, "an approval rule");
    if (!actions.ok()) return actions.error();
    rule.actions = std::move(*actions);
    auto envs = Environments(node);
    if (!envs.ok()) return envs.error();
    rule.environments = std::move(*envs);
    if (const YAML::Node count = node["approvals"]) {
      auto text = Scalar(count, "'approvals'");
      if (!text.ok()) return text.error();
      int value = 0;
      auto [p, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
      if (ec != std::errc() || p != text->data() + text->size()) {
        return At(count, "approvals must be a whole number, not " + Quote(*text));
      }
      if (value < 1) return At(count, "approvals must be at least 1");
      rule.approvals = value;
    }
    const YAML::Node role = node["approver_role"];
    if (!role) return At(node, "an approval rule needs 'approver_role'");
    auto role_name = Scalar(role, "'approver_role'");
    if (!role_name.ok()) return role_name.error();
    const auto found = policy.roles.find(*role_name);
    if (found == policy.roles.end()) return At(role, "unknown approver_role " + Quote(*role_name));
    if (!core::RoleCanApprove(found->second)) {
      return At(role, "approver_role " + Quote(*role_name) + " is not allowed change.approve");
    }
    rule.approver_role = *role_name;
    if (const YAML::Node expiry = node["expires_after"]) {
      auto ms = ParseDuration(expiry);
      if (!ms.ok()) return ms.error();
      rule.expires_after_ms = *ms;
    }
    if (Status s = core::ValidateApprovalRule(rule, environments_); !s) return At(node, s.error().message);
    return rule;
  }

  Result<core::DeployWindow> ParseWindow(const YAML::Node& node) const {
    SP_RETURN_IF_ERROR(
        CheckMap(node, {"kind", "environments", "actions", "schedule", "duration", "description"}, "a window"));
    core::DeployWindow window;
    const YAML::Node kind = node["kind"];
    if (!kind) return At(node, "a window needs 'kind' (allow or deny)");
    auto kind_text = Scalar(kind, "'kind'");
    if (!kind_text.ok()) return kind_text.error();
    if (*kind_text != "allow" && *kind_text != "deny") {
      return At(kind, "a window's kind must be 'allow' or 'deny', not " + Quote(*kind_text));
    }
    window.kind = *kind_text == "allow" ? core::WindowKind::kAllow : core::WindowKind::kDeny;
    auto envs = Environments(node);
    if (!envs.ok()) return envs.error();
    window.environments = std::move(*envs);
    if (const YAML::Node actions = node["actions"]) {
      auto items = ScalarList(actions, "'actions'");
      if (!items.ok()) return items.error();
      if (items->empty()) return At(actions, "a window needs at least one action (omit 'actions' for deploy.request)");
      window.actions.clear();
      for (const Item& item : *items) {
        const core::ActionInfo* info = core::FindAction(item.text);
        if (info == nullptr) return At(item.node, "unknown action " + Quote(item.text));
        if (!core::IsWindowedAction(item.text)) {
          return At(item.node,
                    "a window governs requests that become pipeline runs (deploy.request, rollback.request, "
                    "store.provision, store.decommission, isolation.migrate), not " +
                        Quote(item.text));
        }
        window.actions.push_back(item.text);
      }
    }
    const YAML::Node schedule = node["schedule"];
    if (!schedule) return At(node, "a window needs 'schedule' (cron: minute hour day-of-month month day-of-week, UTC)");
    auto schedule_text = Scalar(schedule, "'schedule'");
    if (!schedule_text.ok()) return schedule_text.error();
    auto parsed = core::CronSchedule::Parse(*schedule_text);
    if (!parsed.ok()) return At(schedule, "bad schedule: " + parsed.error().message);
    window.schedule = std::move(*parsed);
    const YAML::Node duration = node["duration"];
    if (!duration) return At(node, "a window needs 'duration' (e.g. 8h, 14d)");
    auto duration_text = Scalar(duration, "'duration'");
    if (!duration_text.ok()) return duration_text.error();
    auto ms = core::ParseWindowDuration(*duration_text);
    if (!ms.ok()) return At(duration, "bad duration " + Quote(*duration_text) + ": " + ms.error().message);
    window.duration_ms = *ms;
    if (const YAML::Node d = node["description"]) {
      auto text = Scalar(d, "'description'");
      if (!text.ok()) return text.error();
      window.description = *text;
    }
    if (Status s = core::ValidateWindow(window, environments_); !s) return At(node, s.error().message);
    return window;
  }

  Result<core::ApprovalRule> ParseBreakGlass(const YAML::Node& node, const core::Policy& policy) const {
    SP_RETURN_IF_ERROR(CheckMap(node, {"approvals", "approver_role", "expires_after"}, "'break_glass'"));
    core::ApprovalRule rule = policy.break_glass;
    if (const YAML::Node count = node["approvals"]) {
      auto text = Scalar(count, "'approvals'");
      if (!text.ok()) return text.error();
      int value = 0;
      auto [p, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
      if (ec != std::errc() || p != text->data() + text->size() || value < 1 || value > 10) {
        return At(count, "approvals must be a whole number from 1 to 10, not " + Quote(*text));
      }
      rule.approvals = value;
    }
    if (const YAML::Node role = node["approver_role"]) {
      auto role_name = Scalar(role, "'approver_role'");
      if (!role_name.ok()) return role_name.error();
      rule.approver_role = *role_name;
    }
    const auto found = policy.roles.find(rule.approver_role);
    if (found == policy.roles.end()) return At(node, "unknown approver_role " + Quote(rule.approver_role));
    if (!core::RoleCanApprove(found->second)) {
      return At(node, "approver_role " + Quote(rule.approver_role) + " is not allowed change.approve");
    }
    if (const YAML::Node expiry = node["expires_after"]) {
      auto ms = ParseDuration(expiry);
      if (!ms.ok()) return ms.error();
      if (*ms < 60LL * 1000 || *ms > 30LL * 24 * 3600 * 1000) return At(expiry, "expires_after must be from 1m to 30d");
      rule.expires_after_ms = *ms;
    }
    return rule;
  }

  Result<core::Policy> ParseRoot(const YAML::Node& root) const {
    if (!root || root.IsNull()) return Error::Invalid(name_ + ": the policy is empty");
    SP_RETURN_IF_ERROR(
        CheckMap(root, {"version", "roles", "principals", "approvals", "windows", "break_glass"}, "the policy"));
    const YAML::Node version = root["version"];
    if (!version) return At(root, "missing 'version' (this storeplane reads version 1)");
    auto version_text = Scalar(version, "'version'");
    if (!version_text.ok()) return version_text.error();
    if (*version_text != "1") {
      return At(version, "unsupported version " + Quote(*version_text) + " (this storeplane reads version 1)");
    }

    core::Policy policy;
    const YAML::Node roles = root["roles"];
    if (!roles) return At(root, "missing 'roles'");
    SP_RETURN_IF_ERROR(CheckMap(roles, {}, "'roles'"));
    for (const auto& kv : roles) {
      auto role = ParseRole(kv.first, kv.second);
      if (!role.ok()) return role.error();
      std::string name = role->name;
      policy.roles.emplace(std::move(name), std::move(*role));
    }

    // Principals and approvals refer to roles, so they are read after all roles.
    const YAML::Node principals = root["principals"];
    if (!principals) return At(root, "missing 'principals' (write 'principals: {}' for none)");
    if (!principals.IsNull()) {
      SP_RETURN_IF_ERROR(CheckMap(principals, {}, "'principals'"));
      for (const auto& kv : principals) {
        auto principal = ParsePrincipal(kv.first, kv.second, policy);
        if (!principal.ok()) return principal.error();
        std::string id = principal->id;
        policy.principals.emplace(std::move(id), std::move(*principal));
      }
    }

    if (const YAML::Node approvals = root["approvals"]; approvals && !approvals.IsNull()) {
      if (!approvals.IsSequence()) return At(approvals, "'approvals' must be a list of approval rules");
      for (const auto& element : approvals) {
        auto rule = ParseApproval(element, policy);
        if (!rule.ok()) return rule.error();
        policy.approvals.push_back(std::move(*rule));
      }
    }

    if (const YAML::Node windows = root["windows"]; windows && !windows.IsNull()) {
      if (!windows.IsSequence()) return At(windows, "'windows' must be a list of windows");
      for (const auto& element : windows) {
        auto window = ParseWindow(element);
        if (!window.ok()) return window.error();
        policy.windows.push_back(std::move(*window));
      }
    }
    if (const YAML::Node break_glass = root["break_glass"]; break_glass && !break_glass.IsNull()) {
      auto rule = ParseBreakGlass(break_glass, policy);
      if (!rule.ok()) return rule.error();
      policy.break_glass = std::move(*rule);
    }

    core::NumberRules(policy);
    if (Status s = core::ValidatePolicy(policy, environments_); !s) {
      return Error::Invalid(name_ + ": " + s.error().message);
    }
    return policy;
  }

  std::string name_;
  const core::EnvironmentSet& environments_;
};

}  // namespace

Result<core::Policy> ParsePolicyText(std::string_view text, const std::string& name_for_errors,
                                     const core::EnvironmentSet& environments) {
  if (text.size() > kMaxPolicyBytes) return Error::Invalid(name_for_errors + ": the policy is larger than 1 MiB");
  auto policy = PolicyParser(name_for_errors, environments).Parse(text);
  if (!policy.ok()) return policy.error();
  policy->source_hash = Sha256HexOf(text);
  if (policy->source_hash.empty()) return Error::Internal(name_for_errors + ": cannot hash the policy");
  return policy;
}

Result<core::Policy> ParsePolicyText(std::string_view text, const std::string& name_for_errors) {
  return ParsePolicyText(text, name_for_errors, core::EnvironmentSet{});
}

Result<core::Policy> LoadPolicyFile(const std::string& path, const core::EnvironmentSet& environments) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error::Invalid(path + ": cannot open the policy file");
  std::string text;
  char buffer[8192];
  while (in.read(buffer, sizeof buffer) || in.gcount() > 0) {
    text.append(buffer, static_cast<std::size_t>(in.gcount()));
    if (text.size() > kMaxPolicyBytes) return Error::Invalid(path + ": the policy is larger than 1 MiB");
  }
  if (in.bad()) return Error::Invalid(path + ": cannot read the policy file");
  return ParsePolicyText(text, path, environments);
}

Result<core::Policy> LoadPolicyFile(const std::string& path) { return LoadPolicyFile(path, core::EnvironmentSet{}); }

// BEGIN DEFAULT POLICY: a copy of config/policy.yaml, byte for byte (policy_loader_test fails when they differ)
const std::string& DefaultPolicyText() {
  static const std::string kText =
      R"policy(# storeplane default policy (format version 1). See docs/CONTROL_PLANE_AUTHORITY.md.
#
# Deny by default: a principal may do only what one of its roles allows, and an explicit
# deny in any of its roles wins over every allow. Rules name catalog actions exactly or
# as "prefix.*"; "*" alone is refused. A rule limited by `environments` or `selector`
# applies to store-scoped actions only. Rule ids are "<role>/allow/<n>",
# "<role>/deny/<n>" and "approval/<n>", counted from 1 in file order.
#
# This file changes through review and CI/CD, never through the API. storeplaned reloads
# it on SIGHUP; a file that does not validate is refused and the old policy stays.
version: 1

roles:
  viewer:
    description: Sees stores, their agents, operations and change requests; changes nothing.
    allow:
      - actions: [store.read, agent.read, operation.read, run.read, change.read, principal.whoami, event.watch, metrics.read, window.read, rollout.read]

  operator:
    description: >-
      Runs the store lifecycle and the allow-listed agent operations. Outside production
      it acts alone; in production its lifecycle changes wait for an approver.
    allow:
      - actions: [store.read, agent.read, operation.read, run.read, change.read, principal.whoami, event.watch, metrics.read, window.read, rollout.read]
      - actions: [store.register, store.label, store.provision, store.decommission, isolation.migrate]
      - actions: [operation.run.*, agent.enroll, agent.revoke, rollout.pause, rollout.abort]

  deployer:
    description: >-
      Requests deploys and rollbacks (approved by an approver in production) and checks
      their result.
    allow:
      - actions: [store.read, agent.read, operation.read, run.read, change.read, principal.whoami, event.watch, window.read, rollout.read]
      - actions: [deploy.request, rollback.request, rollout.create, rollout.pause, rollout.resume, rollout.abort]
      - actions: [operation.run.health.probe, operation.run.release.report]

  approver:
    description: >-
      Approves or rejects change requests made by someone else; requests nothing itself.
    allow:
      - actions: [store.read, agent.read, operation.read, run.read, change.read, principal.whoami, event.watch, window.read, rollout.read]
      - actions: [change.approve, change.reject, rollout.approve]

  auditor:
    description: Reads and exports the audit trail; nothing else.
    allow:
      - actions: [audit.read, audit.export, principal.whoami]

  security-admin:
    description: >-
      Manages tokens and agent credentials, reads the audit trail and explains decisions.
      Whoever holds it never deploys, rolls back or decides on change requests, whatever
      other roles it holds.
    allow:
      - actions: [token.*, agent.read, agent.enroll, agent.revoke, audit.read, authz.explain, principal.whoami, event.watch]
    deny:
      - actions: [deploy.request, rollback.request, change.approve, change.reject, rollout.create, rollout.approve]

principals:
  # The bootstrap principal, created by storeplaned on its first start. Create named
  # principals for people and services, and retire this one's token.
  admin:
    kind: operator
    roles: [security-admin, operator]

approvals:
  # Production lifecycle changes, deploys and rollbacks need a second person.
  - actions: [store.register, store.provision, store.decommission, deploy.request, rollback.request, isolation.migrate, rollout.create]
    environments: [production]
    approvals: 1
    approver_role: approver
    expires_after: 24h

# Deploy windows and freezes (see docs/CICD.md, "Deploy windows and freezes"). None by
# default: every environment is open. Times are UTC; a window is active from each start of
# its cron schedule for its duration. An active deny window that applies closes; where allow
# windows apply, one must be active. Rollbacks are not held unless a window names
# rollback.request. Outside a window, a request with "break_glass" becomes a change request
# that an approver (never the requester) must approve.
#
# windows:
#   - kind: allow                       # allow | deny
#     environments: [production]        # optional: absent = every environment
#     actions: [deploy.request]         # optional: default [deploy.request]
#     schedule: "0 9 * * mon-thu"       # minute hour day-of-month month day-of-week (UTC)
#     duration: 8h                      # m, h or d; 1m..31d
#     description: Production deploys Monday to Thursday, 09:00-17:00 UTC
#   - kind: deny
#     schedule: "0 0 20 12 *"
#     duration: 14d
#     description: Year-end freeze
#
# break_glass:                          # optional; this is the built-in default
#   approvals: 1
#   approver_role: approver
#   expires_after: 4h
)policy";
  return kText;
}
// END DEFAULT POLICY

}  // namespace storeplane::server
