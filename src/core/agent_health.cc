#include "core/agent_health.h"

#include <algorithm>
#include <string>

namespace storeplane::core {

std::string_view ToString(Availability availability) {
  switch (availability) {
    case Availability::kOnline: return "online";
    case Availability::kStale: return "stale";
    case Availability::kOffline: return "offline";
    case Availability::kNeverSeen: return "never_seen";
  }
  return "never_seen";
}

std::optional<Availability> ParseAvailability(std::string_view text) {
  for (Availability a :
       {Availability::kOnline, Availability::kStale, Availability::kOffline, Availability::kNeverSeen}) {
    if (ToString(a) == text) return a;
  }
  return std::nullopt;
}

std::string_view ToString(Health health) {
  switch (health) {
    case Health::kHealthy: return "healthy";
    case Health::kDegraded: return "degraded";
    case Health::kUnhealthy: return "unhealthy";
    case Health::kUnknown: return "unknown";
  }
  return "unknown";
}

std::optional<Health> ParseHealth(std::string_view text) {
  for (Health h : {Health::kHealthy, Health::kDegraded, Health::kUnhealthy, Health::kUnknown}) {
    if (ToString(h) == text) return h;
  }
  return std::nullopt;
}

// Compared in whole numbers (2 x age against 3 or 5 intervals) so that the boundaries are
// exact. A heartbeat stamped after `now` (a clock step) counts as age 0.
Availability AvailabilityAt(std::optional<std::int64_t> last_seen_ms, std::int64_t now_ms, std::int64_t interval_ms) {
  if (!last_seen_ms) return Availability::kNeverSeen;
  const std::int64_t age = std::max<std::int64_t>(0, now_ms - *last_seen_ms);
  if (2 * age <= 3 * interval_ms) return Availability::kOnline;
  if (2 * age <= 5 * interval_ms) return Availability::kStale;
  return Availability::kOffline;
}

std::int64_t SweepPeriodMs(std::int64_t interval_ms) { return std::max<std::int64_t>(50, interval_ms / 4); }

// When health is unknown the reasons are only why it is unknown: the checks of an agent
// that is gone, or of a decommissioned store, say nothing about the store now. Otherwise
// every unhealthy reason comes before every degraded one, and the checks are named in the
// order of AllCheckNames(), whatever order the agent reported them in.
HealthAssessment AssessHealth(const HealthInput& input) {
  HealthAssessment out;

  const bool reporting = input.availability == Availability::kOnline || input.availability == Availability::kStale;
  if (input.availability == Availability::kOffline) out.reasons.emplace_back("agent_offline");
  if (input.availability == Availability::kNeverSeen) out.reasons.emplace_back("agent_never_seen");
  if (input.state == StoreState::kDecommissioned) out.reasons.emplace_back("decommissioned");
  if (reporting && input.checks.empty()) out.reasons.emplace_back("no_checks");
  if (!out.reasons.empty()) {
    out.health = Health::kUnknown;
    return out;
  }

  const auto status_of = [&input](CheckName name) -> std::optional<CheckStatus> {
    for (const CheckResult& check : input.checks) {
      if (check.name == name) return check.status;
    }
    return std::nullopt;
  };

  if (input.reported_isolation && *input.reported_isolation != input.recorded_isolation) {
    out.reasons.emplace_back("isolation_mismatch");
  }
  for (CheckName name : AllCheckNames()) {
    if (status_of(name) == CheckStatus::kFail) out.reasons.push_back("check_failed:" + std::string(ToString(name)));
  }
  const bool unhealthy = !out.reasons.empty();

  for (CheckName name : AllCheckNames()) {
    if (status_of(name) == CheckStatus::kWarn) out.reasons.push_back("check_warning:" + std::string(ToString(name)));
  }
  if (input.availability == Availability::kStale) out.reasons.emplace_back("agent_stale");

  if (unhealthy) {
    out.health = Health::kUnhealthy;
  } else if (!out.reasons.empty()) {
    out.health = Health::kDegraded;
  } else {
    out.health = Health::kHealthy;
  }
  return out;
}

}  // namespace storeplane::core
