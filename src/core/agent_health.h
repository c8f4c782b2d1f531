// Agent availability and store health as pure functions of what the control plane knows:
// the age of the last heartbeat against the interval, the checks the agent reported, the
// store's lifecycle state and its recorded against its reported isolation mode. An offline
// agent makes health unknown; it is never a reason to act on a store.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/operation.h"
#include "core/store.h"

namespace storeplane::core {

enum class Availability { kOnline, kStale, kOffline, kNeverSeen };
std::string_view ToString(Availability availability);  // "online" | "stale" | "offline" | "never_seen"
std::optional<Availability> ParseAvailability(std::string_view text);

enum class Health { kHealthy, kDegraded, kUnhealthy, kUnknown };
std::string_view ToString(Health health);  // "healthy" | "degraded" | "unhealthy" | "unknown"
std::optional<Health> ParseHealth(std::string_view text);

// From the age of the last heartbeat (now - last_seen):
//   no heartbeat ever             never_seen
//   age <= 1.5 x interval         online
//   age <= 2.5 x interval         stale
//   beyond                        offline
// A sweep every SweepPeriodMs(interval) therefore reports a lost agent offline within
// 2.75 intervals, inside the promised 3.
Availability AvailabilityAt(std::optional<std::int64_t> last_seen_ms, std::int64_t now_ms, std::int64_t interval_ms);
std::int64_t SweepPeriodMs(std::int64_t interval_ms);  // interval / 4, at least 50 ms

struct HealthInput {
  Availability availability = Availability::kNeverSeen;
  StoreState state = StoreState::kRegistered;
  IsolationMode recorded_isolation = IsolationMode::kShared;
  std::optional<IsolationMode> reported_isolation;  // as the agent's config says
  std::vector<CheckResult> checks;                  // the latest reported
};

// Health and the reasons for it, as machine codes, most severe first:
//   unknown   when the agent is offline ("agent_offline") or never seen ("agent_never_seen"),
//             when the store is decommissioned ("decommissioned"), or when an online agent
//             has reported no checks yet ("no_checks")
//   unhealthy when the reported isolation differs from the recorded one ("isolation_mismatch")
//             or any check fails ("check_failed:<name>")
//   degraded  when any check warns ("check_warning:<name>") or the agent is stale ("agent_stale")
//   healthy   otherwise
struct HealthAssessment {
  Health health = Health::kUnknown;
  std::vector<std::string> reasons;
  bool operator==(const HealthAssessment&) const = default;
};
HealthAssessment AssessHealth(const HealthInput& input);

}  // namespace storeplane::core
