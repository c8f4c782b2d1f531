// Agent availability and store health (src/core/agent_health.h): the heartbeat-age
// boundaries, the sweep period, and the health rules with their reasons in order.
#include "core/agent_health.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace storeplane::core {
namespace {

using A = Availability;

constexpr std::int64_t kInterval = 10'000;  // 10 s
constexpr std::int64_t kNow = 1'700'000'000'000;

A At(std::int64_t age_ms, std::int64_t interval_ms = kInterval) {
  return AvailabilityAt(kNow - age_ms, kNow, interval_ms);
}

TEST(AvailabilityTest, NamesRoundTrip) {
  for (A a : {A::kOnline, A::kStale, A::kOffline, A::kNeverSeen}) EXPECT_EQ(ParseAvailability(ToString(a)), a);
  EXPECT_EQ(ToString(A::kNeverSeen), "never_seen");
  EXPECT_FALSE(ParseAvailability("away").has_value());
}

TEST(AvailabilityTest, NeverSeenWithoutAHeartbeat) {
  EXPECT_EQ(AvailabilityAt(std::nullopt, kNow, kInterval), A::kNeverSeen);
  EXPECT_EQ(AvailabilityAt(std::nullopt, 0, kInterval), A::kNeverSeen);
}

TEST(AvailabilityTest, Boundaries) {
  EXPECT_EQ(At(0), A::kOnline);
  EXPECT_EQ(At(kInterval), A::kOnline);
  EXPECT_EQ(At(15'000), A::kOnline) << "exactly 1.5 intervals is still online";
  EXPECT_EQ(At(15'001), A::kStale);
  EXPECT_EQ(At(25'000), A::kStale) << "exactly 2.5 intervals is still stale";
  EXPECT_EQ(At(25'001), A::kOffline);
  EXPECT_EQ(At(3'600'000), A::kOffline);
}

TEST(AvailabilityTest, BoundariesAreExactForOddIntervals) {
  // 1.5 x 7 ms = 10.5 ms and 2.5 x 7 ms = 17.5 ms: no rounding moves a boundary.
  EXPECT_EQ(At(10, 7), A::kOnline);
  EXPECT_EQ(At(11, 7), A::kStale);
  EXPECT_EQ(At(17, 7), A::kStale);
  EXPECT_EQ(At(18, 7), A::kOffline);
}

TEST(AvailabilityTest, HeartbeatFromTheFutureIsOnline) {
  EXPECT_EQ(AvailabilityAt(kNow + 60'000, kNow, kInterval), A::kOnline);
}

TEST(AvailabilityTest, SweepPeriodIsAQuarterIntervalAtLeast50Ms) {
  EXPECT_EQ(SweepPeriodMs(10'000), 2'500);
  EXPECT_EQ(SweepPeriodMs(1'000), 250);
  EXPECT_EQ(SweepPeriodMs(200), 50);
  EXPECT_EQ(SweepPeriodMs(100), 50);
  EXPECT_EQ(SweepPeriodMs(0), 50);
}

TEST(AvailabilityTest, ASweptLostAgentIsOfflineWithinThreeIntervals) {
  // Last heartbeat at 0; sweeps at multiples of the period. The first sweep that sees
  // the agent offline happens no later than 2.75 intervals.
  for (std::int64_t interval : {1'000, 7'000, 10'000, 60'000}) {
    const std::int64_t period = SweepPeriodMs(interval);
    std::int64_t t = 0;
    while (AvailabilityAt(0, t, interval) != A::kOffline) t += period;
    EXPECT_LE(4 * t, 11 * interval) << interval;
  }
}

// ---- Health ----------------------------------------------------------------------------

HealthInput HealthyInput() {
  HealthInput in;
  in.availability = A::kOnline;
  in.state = StoreState::kActive;
  in.recorded_isolation = IsolationMode::kDedicated;
  in.reported_isolation = IsolationMode::kDedicated;
  for (CheckName name : AllCheckNames()) in.checks.push_back({name, CheckStatus::kPass, "ok"});
  return in;
}

void SetStatus(HealthInput& in, CheckName name, CheckStatus status) {
  for (CheckResult& check : in.checks) {
    if (check.name == name) check.status = status;
  }
}

HealthAssessment Expect(Health health, std::vector<std::string> reasons) {
  return HealthAssessment{health, std::move(reasons)};
}

TEST(HealthTest, NamesRoundTrip) {
  for (Health h : {Health::kHealthy, Health::kDegraded, Health::kUnhealthy, Health::kUnknown}) {
    EXPECT_EQ(ParseHealth(ToString(h)), h);
  }
  EXPECT_EQ(ToString(Health::kUnhealthy), "unhealthy");
  EXPECT_FALSE(ParseHealth("ok").has_value());
}

TEST(HealthTest, AllPassingIsHealthy) { EXPECT_EQ(AssessHealth(HealthyInput()), Expect(Health::kHealthy, {})); }

TEST(HealthTest, UnknownRules) {
  HealthInput offline = HealthyInput();
  offline.availability = A::kOffline;
  EXPECT_EQ(AssessHealth(offline), Expect(Health::kUnknown, {"agent_offline"}));

  HealthInput never = HealthyInput();
  never.availability = A::kNeverSeen;
  never.checks.clear();
  EXPECT_EQ(AssessHealth(never), Expect(Health::kUnknown, {"agent_never_seen"}));

  HealthInput gone = HealthyInput();
  gone.state = StoreState::kDecommissioned;
  EXPECT_EQ(AssessHealth(gone), Expect(Health::kUnknown, {"decommissioned"}));

  HealthInput silent = HealthyInput();
  silent.checks.clear();
  EXPECT_EQ(AssessHealth(silent), Expect(Health::kUnknown, {"no_checks"}));

  HealthInput stale_silent = HealthyInput();
  stale_silent.availability = A::kStale;
  stale_silent.checks.clear();
  EXPECT_EQ(AssessHealth(stale_silent), Expect(Health::kUnknown, {"no_checks"}));
}

TEST(HealthTest, UnknownOutranksEverythingAndCarriesOnlyItsOwnReasons) {
  // The checks of an agent that is gone say nothing about the store now.
  HealthInput in = HealthyInput();
  in.availability = A::kOffline;
  in.reported_isolation = IsolationMode::kShared;
  SetStatus(in, CheckName::kDisk, CheckStatus::kFail);
  SetStatus(in, CheckName::kCron, CheckStatus::kWarn);
  EXPECT_EQ(AssessHealth(in), Expect(Health::kUnknown, {"agent_offline"}));

  in.state = StoreState::kDecommissioned;
  EXPECT_EQ(AssessHealth(in), Expect(Health::kUnknown, {"agent_offline", "decommissioned"}));

  in.availability = A::kOnline;
  in.checks.clear();
  EXPECT_EQ(AssessHealth(in), Expect(Health::kUnknown, {"decommissioned", "no_checks"}));
}

TEST(HealthTest, UnhealthyRules) {
  HealthInput mismatch = HealthyInput();
  mismatch.reported_isolation = IsolationMode::kShared;
  EXPECT_EQ(AssessHealth(mismatch), Expect(Health::kUnhealthy, {"isolation_mismatch"}));

  HealthInput failing = HealthyInput();
  SetStatus(failing, CheckName::kStorefront, CheckStatus::kFail);
  EXPECT_EQ(AssessHealth(failing), Expect(Health::kUnhealthy, {"check_failed:storefront"}));

  HealthInput both = HealthyInput();
  both.reported_isolation = IsolationMode::kIsolated;
  SetStatus(both, CheckName::kDisk, CheckStatus::kFail);
  EXPECT_EQ(AssessHealth(both), Expect(Health::kUnhealthy, {"isolation_mismatch", "check_failed:disk"}));
}

TEST(HealthTest, DegradedRules) {
  HealthInput warning = HealthyInput();
  SetStatus(warning, CheckName::kMaintenance, CheckStatus::kWarn);
  EXPECT_EQ(AssessHealth(warning), Expect(Health::kDegraded, {"check_warning:maintenance"}));

  HealthInput stale = HealthyInput();
  stale.availability = A::kStale;
  EXPECT_EQ(AssessHealth(stale), Expect(Health::kDegraded, {"agent_stale"}));

  HealthInput both = stale;
  SetStatus(both, CheckName::kCron, CheckStatus::kWarn);
  EXPECT_EQ(AssessHealth(both), Expect(Health::kDegraded, {"check_warning:cron", "agent_stale"}));
}

TEST(HealthTest, MostSevereFirstInCatalogOrder) {
  HealthInput in = HealthyInput();
  in.availability = A::kStale;
  in.reported_isolation = IsolationMode::kShared;
  // Reported in reverse; reasons still follow AllCheckNames().
  std::reverse(in.checks.begin(), in.checks.end());
  SetStatus(in, CheckName::kIsolation, CheckStatus::kWarn);
  SetStatus(in, CheckName::kDisk, CheckStatus::kFail);
  SetStatus(in, CheckName::kStorefront, CheckStatus::kFail);
  SetStatus(in, CheckName::kCron, CheckStatus::kWarn);
  EXPECT_EQ(AssessHealth(in),
            Expect(Health::kUnhealthy, {"isolation_mismatch", "check_failed:storefront", "check_failed:disk",
                                        "check_warning:cron", "check_warning:isolation", "agent_stale"}));
}

TEST(HealthTest, UnreportedIsolationIsNoMismatch) {
  HealthInput in = HealthyInput();
  in.reported_isolation.reset();
  SetStatus(in, CheckName::kIsolation, CheckStatus::kWarn);
  EXPECT_EQ(AssessHealth(in), Expect(Health::kDegraded, {"check_warning:isolation"}));
}

TEST(HealthTest, OnlySomeChecksReportedIsEnough) {
  HealthInput in = HealthyInput();
  in.checks = {{CheckName::kDisk, CheckStatus::kPass, "disk_ok"}};
  EXPECT_EQ(AssessHealth(in), Expect(Health::kHealthy, {}));
}

TEST(HealthTest, EveryLifecycleStateButDecommissionedIsJudgedOnTheChecks) {
  for (StoreState state : {StoreState::kRegistered, StoreState::kProvisioning, StoreState::kProvisionFailed,
                           StoreState::kActive, StoreState::kDecommissioning, StoreState::kDecommissionFailed}) {
    HealthInput in = HealthyInput();
    in.state = state;
    EXPECT_EQ(AssessHealth(in).health, Health::kHealthy) << ToString(state);
  }
}

}  // namespace
}  // namespace storeplane::core
