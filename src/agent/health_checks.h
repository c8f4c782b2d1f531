// The agent's health checks (docs/OPERATIONS.md, "Health checks"): storefront, maintenance,
// cron, disk, release and isolation. Each yields a status and a machine code, never text
// from the store. The pure verdict functions are separate from the probes for testing.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "agent/agent_config.h"
#include "agent/stop_signal.h"
#include "core/operation.h"

namespace storeplane::agent {

// All six checks, in catalog order. A stop request cuts the storefront request short.
std::vector<core::CheckResult> RunHealthChecks(const AgentConfig& config, const StopSignal* stop = nullptr);

// GET `url` (no redirects) within `timeout_ms`: 2xx pass "http_2xx", 5xx fail "http_<code>",
// others warn "http_<code>", transport error fail "unreachable", empty url pass "disabled".
core::CheckResult CheckStorefront(const std::string& url, int timeout_ms, const StopSignal* stop = nullptr);
core::CheckResult StorefrontVerdict(std::optional<long> http_status);  // nullopt: unreachable

core::CheckResult CheckMaintenance(const std::string& maintenance_flag_path);

core::CheckResult CheckCron(const std::string& marker_path, int max_age_s);
// nullopt age: the marker is missing.
core::CheckResult CronVerdict(std::optional<std::chrono::seconds> marker_age, int max_age_s);

core::CheckResult CheckDisk(const std::string& path, int warn_percent, int fail_percent);
core::CheckResult DiskVerdict(double free_percent, int warn_percent, int fail_percent);

core::CheckResult CheckRelease(const std::string& marker_path);
core::CheckResult CheckIsolation(std::optional<core::IsolationMode> mode);

// The release marker's id (trimmed, core::ValidateReleaseId), or nothing when the file is
// missing, larger than 256 bytes or not a valid id.
std::optional<std::string> ReadReleaseMarker(const std::string& marker_path);

}  // namespace storeplane::agent
