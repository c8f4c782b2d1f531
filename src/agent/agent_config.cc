#include "agent/agent_config.h"

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <set>
#include <system_error>

namespace storeplane::agent {
namespace {

// Reads one YAML file; every error names the file and the line of the offending node.
class ConfigReader {
 public:
  explicit ConfigReader(std::string path) : path_(std::move(path)) {}

  Error At(const YAML::Node& node, const std::string& problem) const {
    int line = 1;
    if (node.IsDefined() && node.Mark().line >= 0) line = node.Mark().line + 1;
    return Error::Invalid(path_ + ":" + std::to_string(line) + ": " + problem);
  }

  Status CheckKeys(const YAML::Node& map, const std::set<std::string>& known, const std::string& section) const {
    if (!map.IsMap()) return At(map, "'" + section + "' must be a mapping");
    for (const auto& kv : map) {
      std::string key;
      try {
        key = kv.first.as<std::string>();
      } catch (const YAML::Exception&) {
        return At(kv.first, "keys in " + section + " must be names");
      }
      if (!known.contains(key)) return At(kv.first, "unknown key '" + key + "' in " + section);
    }
    return Status::Ok();
  }

  // A string; null (`key:` or `key: ~`) reads as empty.
  Status ReadString(const YAML::Node& node, const std::string& name, std::string& out) const {
    if (node.IsNull()) {
      out.clear();
      return Status::Ok();
    }
    if (!node.IsScalar()) return At(node, "'" + name + "' must be a string");
    out = node.Scalar();
    return Status::Ok();
  }

  template <typename Int>
  Status ReadInt(const YAML::Node& node, const std::string& name, Int min, Int max, Int& out) const {
    Int value{};
    if (!node.IsScalar()) return At(node, "'" + name + "' must be an integer");
    try {
      value = node.as<Int>();
    } catch (const YAML::Exception&) {
      return At(node, "'" + name + "' must be an integer");
    }
    if (value < min || value > max) {
      return At(node, "'" + name + "' must be between " + std::to_string(min) + " and " + std::to_string(max));
    }
    out = value;
    return Status::Ok();
  }

  Status Required(const YAML::Node& root, const char* key) const {
    if (!root[key]) return At(root, "'" + std::string(key) + "' is required");
    return Status::Ok();
  }

 private:
  std::string path_;
};

bool HasHttpScheme(const std::string& url) { return url.starts_with("http://") || url.starts_with("https://"); }

bool IsSafeRelativePath(const std::string& text) {
  if (text.empty()) return false;
  const std::filesystem::path path(text);
  if (path.is_absolute()) return false;
  for (const auto& part : path) {
    if (part == "..") return false;
  }
  return true;
}

Status ReadChecks(const ConfigReader& r, const YAML::Node& node, CheckSettings& checks) {
  SP_RETURN_IF_ERROR(r.CheckKeys(node,
                                 {"storefront_url", "storefront_timeout_ms", "cron_marker_file", "cron_max_age_s",
                                  "disk_warn_percent", "disk_fail_percent", "release_marker_file"},
                                 "checks"));
  if (auto n = node["storefront_url"]) {
    SP_RETURN_IF_ERROR(r.ReadString(n, "storefront_url", checks.storefront_url));
    if (!checks.storefront_url.empty() && !HasHttpScheme(checks.storefront_url)) {
      return r.At(n, "'storefront_url' must be an http:// or https:// URL");
    }
  }
  if (auto n = node["storefront_timeout_ms"]) {
    SP_RETURN_IF_ERROR(r.ReadInt(n, "storefront_timeout_ms", 100, 60000, checks.storefront_timeout_ms));
  }
  if (auto n = node["cron_marker_file"]) {
    SP_RETURN_IF_ERROR(r.ReadString(n, "cron_marker_file", checks.cron_marker_file));
    if (!IsSafeRelativePath(checks.cron_marker_file)) {
      return r.At(n, "'cron_marker_file' must be a path relative to magento_root, without '..'");
    }
  }
  if (auto n = node["cron_max_age_s"]) {
    SP_RETURN_IF_ERROR(r.ReadInt(n, "cron_max_age_s", 1, 7 * 86400, checks.cron_max_age_s));
  }
  if (auto n = node["disk_warn_percent"]) {
    SP_RETURN_IF_ERROR(r.ReadInt(n, "disk_warn_percent", 0, 100, checks.disk_warn_percent));
  }
  if (auto n = node["disk_fail_percent"]) {
    SP_RETURN_IF_ERROR(r.ReadInt(n, "disk_fail_percent", 0, 100, checks.disk_fail_percent));
  }
  if (checks.disk_fail_percent > checks.disk_warn_percent) {
    return r.At(node, "'disk_fail_percent' must not be above 'disk_warn_percent'");
  }
  if (auto n = node["release_marker_file"]) {
    SP_RETURN_IF_ERROR(r.ReadString(n, "release_marker_file", checks.release_marker_file));
    if (!IsSafeRelativePath(checks.release_marker_file)) {
      return r.At(n, "'release_marker_file' must be a path relative to magento_root, without '..'");
    }
  }
  return Status::Ok();
}

Status ReadAllowedOperations(const ConfigReader& r, const YAML::Node& node, std::vector<core::OperationName>& out) {
  if (!node.IsSequence()) return r.At(node, "'allowed_operations' must be a list of operation names (may be [])");
  std::set<core::OperationName> seen;
  for (const auto& item : node) {
    if (!item.IsScalar()) return r.At(item, "'allowed_operations' entries must be operation names");
    const auto name = core::ParseOperationName(item.Scalar());
    if (!name) return r.At(item, "'" + item.Scalar() + "' is not an operation of the catalog");
    if (!seen.insert(*name).second) return r.At(item, "'" + item.Scalar() + "' is listed twice");
    out.push_back(*name);
  }
  return Status::Ok();
}

Status ReadOperationTimeouts(const ConfigReader& r, const YAML::Node& node, std::map<core::OperationName, int>& out) {
  if (node.IsNull()) return Status::Ok();
  if (!node.IsMap()) return r.At(node, "'operation_timeouts_s' must map operation names to seconds");
  for (const auto& kv : node) {
    const std::string key = kv.first.IsScalar() ? kv.first.Scalar() : std::string();
    const auto name = core::ParseOperationName(key);
    if (!name) return r.At(kv.first, "'" + key + "' in operation_timeouts_s is not an operation of the catalog");
    int seconds = 0;
    SP_RETURN_IF_ERROR(r.ReadInt(kv.second, "operation_timeouts_s." + key, 1, 86400, seconds));
    out[*name] = seconds;
  }
  return Status::Ok();
}

Result<AgentConfig> ParseRoot(const ConfigReader& r, const YAML::Node& root) {
  AgentConfig config;
  SP_RETURN_IF_ERROR(
      r.CheckKeys(root,
                  {"control_plane_url", "ca_file", "store_id", "credential_file", "enrollment_token_file", "state_dir",
                   "magento_root", "php_binary", "isolation_mode", "allowed_operations", "max_output_bytes",
                   "poll_wait_ms", "operation_timeouts_s", "checks"},
                  "the top level"));
  for (const char* key : {"control_plane_url", "store_id", "credential_file", "state_dir", "magento_root", "php_binary",
                          "allowed_operations"}) {
    SP_RETURN_IF_ERROR(r.Required(root, key));
  }

  const auto url = root["control_plane_url"];
  SP_RETURN_IF_ERROR(r.ReadString(url, "control_plane_url", config.control_plane_url));
  if (!HasHttpScheme(config.control_plane_url) ||
      config.control_plane_url.find_first_of(" \t\r\n?#") != std::string::npos) {
    return r.At(url, "'control_plane_url' must be an http:// or https:// URL");
  }
  while (config.control_plane_url.ends_with('/')) config.control_plane_url.pop_back();
  if (config.control_plane_url == "http:/" || config.control_plane_url == "https:/" ||
      config.control_plane_url.ends_with("//")) {
    return r.At(url, "'control_plane_url' has no host");
  }

  if (auto n = root["ca_file"]) {
    SP_RETURN_IF_ERROR(r.ReadString(n, "ca_file", config.ca_file));
    std::error_code ec;
    if (!config.ca_file.empty() && !std::filesystem::is_regular_file(config.ca_file, ec)) {
      return r.At(n, "'ca_file' " + config.ca_file + " is not a readable file");
    }
  }

  const auto store = root["store_id"];
  SP_RETURN_IF_ERROR(r.ReadString(store, "store_id", config.store_id));
  if (!core::ValidateStoreId(config.store_id).ok()) {
    return r.At(store, "'store_id' must be a DNS label ([a-z0-9-], 1..63 characters)");
  }

  const auto credential = root["credential_file"];
  SP_RETURN_IF_ERROR(r.ReadString(credential, "credential_file", config.credential_file));
  if (config.credential_file.empty()) return r.At(credential, "'credential_file' must not be empty");

  if (auto n = root["enrollment_token_file"]) {
    SP_RETURN_IF_ERROR(r.ReadString(n, "enrollment_token_file", config.enrollment_token_file));
  }

  const auto state = root["state_dir"];
  SP_RETURN_IF_ERROR(r.ReadString(state, "state_dir", config.state_dir));
  if (config.state_dir.empty()) return r.At(state, "'state_dir' must not be empty");

  const auto magento = root["magento_root"];
  SP_RETURN_IF_ERROR(r.ReadString(magento, "magento_root", config.magento_root));
  {
    std::error_code ec;
    if (config.magento_root.empty() || !std::filesystem::is_directory(config.magento_root, ec)) {
      return r.At(magento, "'magento_root' " + config.magento_root + " is not an existing directory");
    }
  }

  const auto php = root["php_binary"];
  SP_RETURN_IF_ERROR(r.ReadString(php, "php_binary", config.php_binary));
  if (!std::filesystem::path(config.php_binary).is_absolute()) {
    return r.At(php, "'php_binary' must be an absolute path");
  }

  if (auto n = root["isolation_mode"]) {
    std::string text;
    SP_RETURN_IF_ERROR(r.ReadString(n, "isolation_mode", text));
    if (!text.empty()) {
      config.isolation_mode = core::ParseIsolationMode(text);
      if (!config.isolation_mode) return r.At(n, "'isolation_mode' must be shared, dedicated or isolated");
    }
  }

  SP_RETURN_IF_ERROR(ReadAllowedOperations(r, root["allowed_operations"], config.allowed_operations));

  if (auto n = root["max_output_bytes"]) {
    SP_RETURN_IF_ERROR(r.ReadInt(n, "max_output_bytes", 1024L, 64L * 1024 * 1024, config.max_output_bytes));
  }
  if (auto n = root["poll_wait_ms"]) {
    SP_RETURN_IF_ERROR(r.ReadInt(n, "poll_wait_ms", 0, 30000, config.poll_wait_ms));
  }
  if (auto n = root["operation_timeouts_s"]) {
    SP_RETURN_IF_ERROR(ReadOperationTimeouts(r, n, config.operation_timeouts_s));
  }
  if (auto n = root["checks"]) SP_RETURN_IF_ERROR(ReadChecks(r, n, config.checks));
  return config;
}

}  // namespace

bool AgentConfig::Allows(core::OperationName name) const {
  for (const auto allowed : allowed_operations) {
    if (allowed == name) return true;
  }
  return false;
}

int AgentConfig::EffectiveTimeoutS(core::OperationName name, int requested_timeout_s) const {
  int timeout = requested_timeout_s > 0 ? requested_timeout_s : core::SpecOf(name).default_timeout_s;
  if (auto it = operation_timeouts_s.find(name); it != operation_timeouts_s.end() && it->second < timeout) {
    timeout = it->second;
  }
  return timeout;
}

std::string AgentConfig::JournalPath() const { return (std::filesystem::path(state_dir) / "journal").string(); }

std::string AgentConfig::MaintenanceFlagPath() const {
  return (std::filesystem::path(magento_root) / "var" / ".maintenance.flag").string();
}

std::string AgentConfig::CronMarkerPath() const {
  return (std::filesystem::path(magento_root) / checks.cron_marker_file).string();
}

std::string AgentConfig::ReleaseMarkerPath() const {
  return (std::filesystem::path(magento_root) / checks.release_marker_file).string();
}

Result<AgentConfig> LoadAgentConfig(const std::string& path) {
  const ConfigReader reader(path);
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    return Error::Invalid(path + ":1: cannot read the configuration file");
  } catch (const YAML::ParserException& e) {
    return Error::Invalid(path + ":" + std::to_string(e.mark.line + 1) + ": does not parse: " + e.msg);
  }
  if (root.IsNull() || !root.IsDefined()) return Error::Invalid(path + ":1: the configuration is empty");
  try {
    return ParseRoot(reader, root);
  } catch (const YAML::Exception& e) {
    return Error::Invalid(path + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
}

}  // namespace storeplane::agent
