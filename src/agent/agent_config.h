// The shop agent's configuration: one YAML file (config/shop-agent.example.yaml documents
// every key). Loading is strict: unknown keys, wrong types and out-of-range values are
// refused with "<file>:<line>: <problem>".
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/operation.h"
#include "core/result.h"
#include "core/store.h"

namespace storeplane::agent {

inline constexpr const char* kAgentVersion = "0.1.0";

struct CheckSettings {
  std::string storefront_url;  // empty: the storefront check reports pass/"disabled"
  int storefront_timeout_ms = 2000;
  std::string cron_marker_file = "var/.storeplane-cron";  // relative to magento_root
  int cron_max_age_s = 600;
  int disk_warn_percent = 10;
  int disk_fail_percent = 3;
  std::string release_marker_file = ".storeplane-release";  // relative to magento_root
};

struct AgentConfig {
  std::string control_plane_url;  // http(s)://host[:port], without a trailing '/'
  std::string ca_file;            // PEM bundle to trust; empty: the system's
  std::string store_id;
  std::string credential_file;
  std::string enrollment_token_file;  // empty: env SHOP_AGENT_ENROLLMENT_TOKEN
  std::string state_dir;
  std::string magento_root;
  std::string php_binary;  // absolute
  std::optional<core::IsolationMode> isolation_mode;
  std::vector<core::OperationName> allowed_operations;
  long max_output_bytes = 1048576;
  int poll_wait_ms = 25000;
  std::map<core::OperationName, int> operation_timeouts_s;
  CheckSettings checks;

  bool Allows(core::OperationName name) const;
  // The envelope's timeout (the catalog default when it is not positive), capped by
  // operation_timeouts_s.
  int EffectiveTimeoutS(core::OperationName name, int requested_timeout_s) const;
  std::string JournalPath() const;          // state_dir/journal
  std::string MaintenanceFlagPath() const;  // magento_root/var/.maintenance.flag
  std::string CronMarkerPath() const;       // magento_root/checks.cron_marker_file
  std::string ReleaseMarkerPath() const;    // magento_root/checks.release_marker_file
};

// Errors are kInvalidArgument with the message "<path>:<line>: <problem>".
Result<AgentConfig> LoadAgentConfig(const std::string& path);

}  // namespace storeplane::agent
