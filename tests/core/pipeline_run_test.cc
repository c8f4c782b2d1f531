// Pipeline runs (src/core/pipeline_run.h): every (kind, state, event) triple against an
// explicit table, finality and success for every (kind, state), the lifecycle events runs
// cause, the request checks for every kind and store state, and the health gate.
#include "core/pipeline_run.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <iterator>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace storeplane::core {
namespace {

using E = RunEvent;
using K = RunKind;
using S = RunState;
using SS = StoreState;

// ---- Names -----------------------------------------------------------------------------

TEST(PipelineRunTest, NamesRoundTrip) {
  const std::vector<std::pair<K, std::string>> kinds = {{K::kProvision, "provision"},
                                                        {K::kDeploy, "deploy"},
                                                        {K::kRollback, "rollback"},
                                                        {K::kDecommission, "decommission"},
                                                        {K::kIsolationMigration, "isolation_migration"}};
  ASSERT_EQ(AllRunKinds().size(), kinds.size());
  for (const auto& [kind, name] : kinds) {
    EXPECT_EQ(ToString(kind), name);
    EXPECT_EQ(ParseRunKind(name), kind);
  }
  const std::vector<std::pair<S, std::string>> states = {
      {S::kPending, "pending"},    {S::kTriggered, "triggered"},
      {S::kRunning, "running"},    {S::kSucceeded, "succeeded"},
      {S::kFailed, "failed"},      {S::kCancelled, "cancelled"},
      {S::kTimedOut, "timed_out"}, {S::kVerifying, "verifying"},
      {S::kVerified, "verified"},  {S::kVerificationFailed, "verification_failed"}};
  ASSERT_EQ(AllRunStates().size(), states.size());
  for (const auto& [state, name] : states) {
    EXPECT_EQ(ToString(state), name);
    EXPECT_EQ(ParseRunState(name), state);
  }
  const std::vector<std::pair<E, std::string>> events = {{E::kTriggerAccepted, "trigger_accepted"},
                                                         {E::kStarted, "started"},
                                                         {E::kSucceeded, "succeeded"},
                                                         {E::kFailed, "failed"},
                                                         {E::kCancelled, "cancelled"},
                                                         {E::kTimedOut, "timed_out"},
                                                         {E::kVerify, "verify"},
                                                         {E::kGatePassed, "gate_passed"},
                                                         {E::kGateFailed, "gate_failed"}};
  ASSERT_EQ(AllRunEvents().size(), events.size());
  for (const auto& [event, name] : events) {
    EXPECT_EQ(ToString(event), name);
    EXPECT_EQ(ParseRunEvent(name), event);
  }
  EXPECT_EQ(ParseRunKind("Deploy"), std::nullopt);
  EXPECT_EQ(ParseRunKind(""), std::nullopt);
  EXPECT_EQ(ParseRunState("timed-out"), std::nullopt);
  EXPECT_EQ(ParseRunEvent("start"), std::nullopt);
  EXPECT_EQ(ToString(GateVerdict::kPending), "pending");
  EXPECT_EQ(ToString(GateVerdict::kPassed), "passed");
  EXPECT_EQ(ToString(GateVerdict::kFailed), "failed");
}

TEST(PipelineRunTest, OnlyDeployAndRollbackHaveAHealthGate) {
  EXPECT_FALSE(HasHealthGate(K::kProvision));
  EXPECT_TRUE(HasHealthGate(K::kDeploy));
  EXPECT_TRUE(HasHealthGate(K::kRollback));
  EXPECT_FALSE(HasHealthGate(K::kDecommission));
  EXPECT_FALSE(HasHealthGate(K::kIsolationMigration));
}

// ---- The transition table --------------------------------------------------------------

// The expected tables, written out in full: 10 states x 9 events. X = illegal (kConflict).
// Columns: trigger_accepted, started, succeeded, failed, cancelled, timed_out, verify,
//          gate_passed, gate_failed.
constexpr std::optional<S> X = std::nullopt;
constexpr int kEvents = 9;
const E kColumns[kEvents] = {E::kTriggerAccepted, E::kStarted, E::kSucceeded,  E::kFailed,    E::kCancelled,
                             E::kTimedOut,        E::kVerify,  E::kGatePassed, E::kGateFailed};
struct Row {
  S from;
  std::optional<S> next[kEvents];
};

// provision, decommission, isolation_migration: no health gate.
const Row kUngated[] = {
    // clang-format off
    //                       trigger_accepted  started       succeeded       failed       cancelled       timed_out       verify gate_passed gate_failed
    {S::kPending,            {S::kTriggered,   X,            X,              S::kFailed,  S::kCancelled,  S::kTimedOut,   X,     X,          X}},
    {S::kTriggered,          {X,               S::kRunning,  S::kSucceeded,  S::kFailed,  S::kCancelled,  S::kTimedOut,   X,     X,          X}},
    {S::kRunning,            {X,               X,            S::kSucceeded,  S::kFailed,  S::kCancelled,  S::kTimedOut,   X,     X,          X}},
    {S::kSucceeded,          {X,               X,            X,              X,           X,              X,              X,     X,          X}},
    {S::kFailed,             {X,               X,            X,              X,           X,              X,              X,     X,          X}},
    {S::kCancelled,          {X,               X,            X,              X,           X,              X,              X,     X,          X}},
    {S::kTimedOut,           {X,               X,            X,              X,           X,              X,              X,     X,          X}},
    {S::kVerifying,          {X,               X,            X,              X,           X,              X,              X,     X,          X}},
    {S::kVerified,           {X,               X,            X,              X,           X,              X,              X,     X,          X}},
    {S::kVerificationFailed, {X,               X,            X,              X,           X,              X,              X,     X,          X}},
    // clang-format on
};

// deploy, rollback: the health gate follows success.
const Row kGated[] = {
    // clang-format off
    //                       trigger_accepted  started       succeeded       failed       cancelled       timed_out       verify          gate_passed   gate_failed
    {S::kPending,            {S::kTriggered,   X,            X,              S::kFailed,  S::kCancelled,  S::kTimedOut,   X,              X,            X}},
    {S::kTriggered,          {X,               S::kRunning,  S::kSucceeded,  S::kFailed,  S::kCancelled,  S::kTimedOut,   X,              X,            X}},
    {S::kRunning,            {X,               X,            S::kSucceeded,  S::kFailed,  S::kCancelled,  S::kTimedOut,   X,              X,            X}},
    {S::kSucceeded,          {X,               X,            X,              X,           X,              X,              S::kVerifying,  X,            X}},
    {S::kFailed,             {X,               X,            X,              X,           X,              X,              X,              X,            X}},
    {S::kCancelled,          {X,               X,            X,              X,           X,              X,              X,              X,            X}},
    {S::kTimedOut,           {X,               X,            X,              X,           X,              X,              X,              X,            X}},
    {S::kVerifying,          {X,               X,            X,              X,           X,              X,              X,              S::kVerified, S::kVerificationFailed}},
    {S::kVerified,           {X,               X,            X,              X,           X,              X,              X,              X,            X}},
    {S::kVerificationFailed, {X,               X,            X,              X,           X,              X,              X,              X,            X}},
    // clang-format on
};

struct KindTable {
  K kind;
  const Row* rows;
};
const KindTable kKindTables[] = {
    {K::kProvision, kUngated},          {K::kDeploy, kGated}, {K::kRollback, kGated}, {K::kDecommission, kUngated},
    {K::kIsolationMigration, kUngated},
};

TEST(PipelineRunTest, TablesCoverEveryKindStateAndEvent) {
  ASSERT_EQ(std::size(kKindTables), AllRunKinds().size());
  for (std::size_t k = 0; k < std::size(kKindTables); ++k) EXPECT_EQ(kKindTables[k].kind, AllRunKinds()[k]);
  ASSERT_EQ(std::size(kUngated), AllRunStates().size());
  ASSERT_EQ(std::size(kGated), AllRunStates().size());
  for (std::size_t i = 0; i < AllRunStates().size(); ++i) {
    EXPECT_EQ(kUngated[i].from, AllRunStates()[i]);
    EXPECT_EQ(kGated[i].from, AllRunStates()[i]);
  }
  ASSERT_EQ(static_cast<std::size_t>(kEvents), AllRunEvents().size());
  for (int e = 0; e < kEvents; ++e) EXPECT_EQ(kColumns[e], AllRunEvents()[static_cast<std::size_t>(e)]);
}

TEST(PipelineRunTest, EveryTripleMatchesTheTable) {
  int legal = 0;
  int illegal = 0;
  for (const KindTable& table : kKindTables) {
    for (std::size_t i = 0; i < AllRunStates().size(); ++i) {
      const Row& row = table.rows[i];
      for (int e = 0; e < kEvents; ++e) {
        const E event = kColumns[e];
        const auto got = TransitionRun(table.kind, row.from, event);
        const std::string label = std::string(ToString(table.kind)) + " " + std::string(ToString(row.from)) + " --" +
                                  std::string(ToString(event)) + "-->";
        if (row.next[e]) {
          ++legal;
          ASSERT_TRUE(got.ok()) << label << ": " << got.error().message;
          EXPECT_EQ(*got, *row.next[e]) << label;
        } else {
          ++illegal;
          ASSERT_FALSE(got.ok()) << label << " " << ToString(*got);
          EXPECT_EQ(got.error().code, ErrorCode::kConflict) << label;
          // The message names the kind, the state and the event.
          EXPECT_NE(got.error().message.find(std::string(ToString(table.kind))), std::string::npos) << label;
          EXPECT_NE(got.error().message.find(std::string(ToString(row.from))), std::string::npos) << label;
          EXPECT_NE(got.error().message.find(std::string(ToString(event))), std::string::npos) << label;
        }
      }
    }
  }
  // 3 ungated kinds x 13 legal pairs (4 from pending, 5 from triggered, 4 from running)
  // + 2 gated kinds x 16 (the same and verify, gate_passed, gate_failed).
  EXPECT_EQ(legal, 3 * 13 + 2 * 16);
  EXPECT_EQ(legal + illegal, 5 * 10 * 9);
}

TEST(PipelineRunTest, StartedTwiceIsAConflictNotANoOp) {
  const auto again = TransitionRun(K::kDeploy, S::kRunning, E::kStarted);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, ErrorCode::kConflict);
  EXPECT_EQ(again.error().message, "a deploy run in state running cannot take the event started");
}

TEST(PipelineRunTest, GoldenPaths) {
  // A deploy through every step.
  S state = S::kPending;
  for (E event : {E::kTriggerAccepted, E::kStarted, E::kSucceeded, E::kVerify, E::kGatePassed}) {
    const auto next = TransitionRun(K::kDeploy, state, event);
    ASSERT_TRUE(next.ok()) << ToString(event);
    state = *next;
  }
  EXPECT_EQ(state, S::kVerified);
  EXPECT_TRUE(IsSuccess(K::kDeploy, state));
  // A provider that reports only the end.
  const auto only_end = TransitionRun(K::kProvision, S::kTriggered, E::kSucceeded);
  ASSERT_TRUE(only_end.ok());
  EXPECT_TRUE(IsSuccess(K::kProvision, *only_end));
  EXPECT_TRUE(IsFinal(K::kProvision, *only_end));
  // A succeeded rollback is not done until its gate passes.
  EXPECT_FALSE(IsFinal(K::kRollback, S::kSucceeded));
  EXPECT_FALSE(IsSuccess(K::kRollback, S::kSucceeded));
}

// ---- Finality, activity, success -------------------------------------------------------

// Columns follow AllRunStates(): pending, triggered, running, succeeded, failed, cancelled,
// timed_out, verifying, verified, verification_failed.
struct KindFlags {
  K kind;
  bool final_[10];
  bool success[10];
};
constexpr bool T = true;
constexpr bool F = false;
const KindFlags kFlags[] = {
    // clang-format off
    //                          pend trig run succ fail canc tout vfyg vfd vfail
    {K::kProvision,          {F,   F,   F,  T,   T,   T,   T,   T,   T,  T},
                             {F,   F,   F,  T,   F,   F,   F,   F,   F,  F}},
    {K::kDeploy,             {F,   F,   F,  F,   T,   T,   T,   F,   T,  T},
                             {F,   F,   F,  F,   F,   F,   F,   F,   T,  F}},
    {K::kRollback,           {F,   F,   F,  F,   T,   T,   T,   F,   T,  T},
                             {F,   F,   F,  F,   F,   F,   F,   F,   T,  F}},
    {K::kDecommission,       {F,   F,   F,  T,   T,   T,   T,   T,   T,  T},
                             {F,   F,   F,  T,   F,   F,   F,   F,   F,  F}},
    {K::kIsolationMigration, {F,   F,   F,  T,   T,   T,   T,   T,   T,  T},
                             {F,   F,   F,  T,   F,   F,   F,   F,   F,  F}},
    // clang-format on
};

TEST(PipelineRunTest, FinalActiveAndSuccessForEveryKindAndState) {
  ASSERT_EQ(std::size(kFlags), AllRunKinds().size());
  for (const KindFlags& flags : kFlags) {
    for (std::size_t i = 0; i < AllRunStates().size(); ++i) {
      const S state = AllRunStates()[i];
      const std::string label = std::string(ToString(flags.kind)) + " " + std::string(ToString(state));
      EXPECT_EQ(IsFinal(flags.kind, state), flags.final_[i]) << label;
      EXPECT_EQ(IsActive(flags.kind, state), !flags.final_[i]) << label;
      EXPECT_EQ(IsSuccess(flags.kind, state), flags.success[i]) << label;
      EXPECT_TRUE(!flags.success[i] || flags.final_[i]) << label;  // success is final
    }
  }
}

// The header's definition: final exactly when no event moves the run any more.
TEST(PipelineRunTest, FinalMeansNoEventIsAccepted) {
  for (K kind : AllRunKinds()) {
    for (S state : AllRunStates()) {
      bool any_legal = false;
      for (E event : AllRunEvents()) any_legal = any_legal || TransitionRun(kind, state, event).ok();
      EXPECT_EQ(IsFinal(kind, state), !any_legal) << ToString(kind) << " " << ToString(state);
    }
  }
}

// ---- Lifecycle events ------------------------------------------------------------------

TEST(PipelineRunTest, LifecycleEventAtRequest) {
  EXPECT_EQ(LifecycleEventAtRequest(K::kProvision), LifecycleEvent::kProvisionRequested);
  EXPECT_EQ(LifecycleEventAtRequest(K::kDecommission), LifecycleEvent::kDecommissionRequested);
  EXPECT_EQ(LifecycleEventAtRequest(K::kDeploy), std::nullopt);
  EXPECT_EQ(LifecycleEventAtRequest(K::kRollback), std::nullopt);
  EXPECT_EQ(LifecycleEventAtRequest(K::kIsolationMigration), std::nullopt);
}

TEST(PipelineRunTest, LifecycleEventAtEndForEveryKindAndState) {
  using L = LifecycleEvent;
  constexpr std::optional<L> N = std::nullopt;
  struct EndRow {
    K kind;
    std::optional<L> at[10];  // columns follow AllRunStates()
  };
  const EndRow rows[] = {
      // clang-format off
      //                        pend trig run succeeded                  failed                  cancelled               timed_out               vfyg vfd vfail
      {K::kProvision,          {N,   N,   N,  L::kProvisionSucceeded,    L::kProvisionFailed,    L::kProvisionFailed,    L::kProvisionFailed,    N,   N,  N}},
      {K::kDeploy,             {N,   N,   N,  N,                         N,                      N,                      N,                      N,   N,  N}},
      {K::kRollback,           {N,   N,   N,  N,                         N,                      N,                      N,                      N,   N,  N}},
      {K::kDecommission,       {N,   N,   N,  L::kDecommissionSucceeded, L::kDecommissionFailed, L::kDecommissionFailed, L::kDecommissionFailed, N,   N,  N}},
      {K::kIsolationMigration, {N,   N,   N,  N,                         N,                      N,                      N,                      N,   N,  N}},
      // clang-format on
  };
  for (const EndRow& row : rows) {
    for (std::size_t i = 0; i < AllRunStates().size(); ++i) {
      EXPECT_EQ(LifecycleEventAtEnd(row.kind, AllRunStates()[i]), row.at[i])
          << ToString(row.kind) << " " << ToString(AllRunStates()[i]);
    }
  }
}

// ---- Request checks --------------------------------------------------------------------

Store MakeStore(SS state, IsolationMode mode = IsolationMode::kShared) {
  Store store;
  store.id = "shop-1";
  store.name = "Shop";
  store.environment = "production";
  store.isolation_mode = mode;
  store.state = state;
  store.last_known_good_release = "r-41";
  return store;
}

// A request that is complete for its kind, so that only the store's state can refuse it.
RunRequestCheck CompleteRequest(K kind, const Store& store) {
  RunRequestCheck check;
  check.kind = kind;
  check.store = &store;
  if (kind == K::kDeploy || kind == K::kRollback) check.release = "r-42";
  if (kind == K::kIsolationMigration) check.target_isolation = IsolationMode::kIsolated;
  return check;
}

TEST(PipelineRunTest, RequestAgainstEveryKindAndStoreState) {
  // Columns: registered, provisioning, provision_failed, active, decommissioning,
  //          decommission_failed, decommissioned.
  struct StateRow {
    K kind;
    bool allowed[7];
    std::string needs;
  };
  const StateRow rows[] = {
      // clang-format off
      {K::kProvision,          {T, F, T, F, F, F, F}, "provision needs a registered or provision_failed store"},
      {K::kDeploy,             {F, F, F, T, F, F, F}, "deploy needs an active store"},
      {K::kRollback,           {F, F, F, T, F, F, F}, "rollback needs an active store"},
      {K::kDecommission,       {T, F, T, T, F, T, F}, "decommission needs a registered, active, provision_failed or decommission_failed store"},
      {K::kIsolationMigration, {F, F, F, T, F, F, F}, "isolation_migration needs an active store"},
      // clang-format on
  };
  ASSERT_EQ(AllStoreStates().size(), 7U);
  for (const StateRow& row : rows) {
    for (std::size_t i = 0; i < AllStoreStates().size(); ++i) {
      const Store store = MakeStore(AllStoreStates()[i]);
      const std::string label = std::string(ToString(row.kind)) + " on " + std::string(ToString(store.state));
      const Status status = CheckRunRequest(CompleteRequest(row.kind, store));
      if (row.allowed[i]) {
        EXPECT_TRUE(status.ok()) << label << ": " << status.error().message;
      } else {
        ASSERT_FALSE(status.ok()) << label;
        EXPECT_EQ(status.error().code, ErrorCode::kConflict) << label;
        EXPECT_EQ(status.error().message, "store 'shop-1' is " + std::string(ToString(store.state)) + "; " + row.needs)
            << label;
      }
    }
  }
}

TEST(PipelineRunTest, RequestExampleMessage) {
  const Store store = MakeStore(SS::kRegistered);
  const Status status = CheckRunRequest(CompleteRequest(K::kDeploy, store));
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().message, "store 'shop-1' is registered; deploy needs an active store");
}

TEST(PipelineRunTest, OneActiveRunPerStore) {
  for (K kind : AllRunKinds()) {
    const Store store = MakeStore(kind == K::kProvision ? SS::kRegistered : SS::kActive);
    RunRequestCheck check = CompleteRequest(kind, store);
    ASSERT_TRUE(CheckRunRequest(check).ok()) << ToString(kind);
    check.other_run_active = true;
    const Status status = CheckRunRequest(check);
    ASSERT_FALSE(status.ok()) << ToString(kind);
    EXPECT_EQ(status.error().code, ErrorCode::kConflict);
    EXPECT_EQ(status.error().message, "store 'shop-1' already has an active run");
  }
  // The store's state is reported first.
  const Store decommissioned = MakeStore(SS::kDecommissioned);
  RunRequestCheck check = CompleteRequest(K::kDeploy, decommissioned);
  check.other_run_active = true;
  const Status status = CheckRunRequest(check);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().message, "store 'shop-1' is decommissioned; deploy needs an active store");
}

TEST(PipelineRunTest, DeployNeedsAValidRelease) {
  const Store store = MakeStore(SS::kActive);
  RunRequestCheck check = CompleteRequest(K::kDeploy, store);
  check.release.reset();
  Status status = CheckRunRequest(check);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(status.error().field, "release");
  for (const char* bad : {"", "-r1", "r 1", "r/1", "r;rm", "ä"}) {
    check.release = bad;
    status = CheckRunRequest(check);
    ASSERT_FALSE(status.ok()) << bad;
    EXPECT_EQ(status.error().code, ErrorCode::kInvalidArgument) << bad;
    EXPECT_EQ(status.error().field, "release") << bad;
  }
  check.release = std::string(65, 'a');
  EXPECT_FALSE(CheckRunRequest(check).ok());
  for (const char* good : {"r1", "2024.06.01+build-7", "a", "v1.2.3_rc1"}) {
    check.release = good;
    EXPECT_TRUE(CheckRunRequest(check).ok()) << good;
  }
  check.release = std::string(64, 'a');
  EXPECT_TRUE(CheckRunRequest(check).ok());
}

TEST(PipelineRunTest, DeployIsRefusedWhileIsolationIsMismatched) {
  const Store store = MakeStore(SS::kActive);
  RunRequestCheck check = CompleteRequest(K::kDeploy, store);
  check.isolation_mismatch = true;
  Status status = CheckRunRequest(check);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().code, ErrorCode::kConflict);
  EXPECT_EQ(status.error().message,
            "the agent reports an isolation mode other than the recorded one; deploys are refused until they match");
  // A missing release is reported before the mismatch.
  check.release.reset();
  status = CheckRunRequest(check);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().code, ErrorCode::kInvalidArgument);
  // The header names the mismatch for deploys only; the other kinds do not look at it.
  for (K kind : {K::kRollback, K::kIsolationMigration}) {
    RunRequestCheck other = CompleteRequest(kind, store);
    other.isolation_mismatch = true;
    EXPECT_TRUE(CheckRunRequest(other).ok()) << ToString(kind);
  }
}

TEST(PipelineRunTest, RollbackNeedsATargetRelease) {
  Store store = MakeStore(SS::kActive);
  RunRequestCheck check = CompleteRequest(K::kRollback, store);
  EXPECT_TRUE(CheckRunRequest(check).ok());  // a named release
  check.release.reset();
  EXPECT_TRUE(CheckRunRequest(check).ok());  // the last known good one
  check.release = "not valid";
  Status status = CheckRunRequest(check);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(status.error().field, "release");

  store.last_known_good_release.reset();
  check.release = "r-40";
  EXPECT_TRUE(CheckRunRequest(check).ok());
  check.release.reset();
  status = CheckRunRequest(check);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().code, ErrorCode::kConflict);
  EXPECT_NE(status.error().message.find("'shop-1'"), std::string::npos);
  EXPECT_NE(status.error().message.find("last known good"), std::string::npos);
}

TEST(PipelineRunTest, IsolationMigrationOnlyTightens) {
  using I = IsolationMode;
  struct Case {
    I from;
    std::optional<I> to;
    bool ok;
  };
  const Case cases[] = {
      {I::kShared, I::kDedicated, true},  {I::kShared, I::kIsolated, true},      {I::kDedicated, I::kIsolated, true},
      {I::kShared, I::kShared, false},    {I::kDedicated, I::kDedicated, false}, {I::kIsolated, I::kIsolated, false},
      {I::kDedicated, I::kShared, false}, {I::kIsolated, I::kShared, false},     {I::kIsolated, I::kDedicated, false},
      {I::kShared, std::nullopt, false},
  };
  for (const Case& c : cases) {
    const Store store = MakeStore(SS::kActive, c.from);
    RunRequestCheck check = CompleteRequest(K::kIsolationMigration, store);
    check.target_isolation = c.to;
    const Status status = CheckRunRequest(check);
    const std::string label = std::string(ToString(c.from)) + " -> " + (c.to ? std::string(ToString(*c.to)) : "none");
    if (c.ok) {
      EXPECT_TRUE(status.ok()) << label;
    } else {
      ASSERT_FALSE(status.ok()) << label;
      EXPECT_EQ(status.error().code, ErrorCode::kInvalidArgument) << label;
      EXPECT_EQ(status.error().field, "isolation_mode") << label;
    }
  }
}

TEST(PipelineRunTest, RequestWithoutAStoreIsAnInternalError) {
  RunRequestCheck check;
  const Status status = CheckRunRequest(check);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().code, ErrorCode::kInternal);
}

// ---- The health gate -------------------------------------------------------------------

constexpr std::int64_t kOpened = 1'000'000;
constexpr std::int64_t kWindow = 5 * 60 * 1000;

HealthGate OpenGate() { return HealthGate{"r-42", kOpened, 0}; }

GateObservation Good(std::int64_t at) { return GateObservation{at, std::string("r-42"), Health::kHealthy}; }

TEST(PipelineRunTest, GatePassesAtExactlyTheStreak) {
  const HealthGatePolicy policy;  // 3 in a row within 5 minutes
  HealthGate gate = OpenGate();
  EXPECT_EQ(ObserveGate(policy, gate, Good(kOpened + 1000)), GateVerdict::kPending);
  EXPECT_EQ(gate.streak, 1);
  EXPECT_EQ(ObserveGate(policy, gate, Good(kOpened + 2000)), GateVerdict::kPending);
  EXPECT_EQ(gate.streak, 2);
  EXPECT_EQ(ObserveGate(policy, gate, Good(kOpened + 3000)), GateVerdict::kPassed);
  EXPECT_EQ(gate.streak, 3);
}

TEST(PipelineRunTest, GateCountsTheGateOpeningItself) {
  const HealthGatePolicy policy{1, kWindow};
  HealthGate gate = OpenGate();
  EXPECT_EQ(ObserveGate(policy, gate, Good(kOpened)), GateVerdict::kPassed);
}

TEST(PipelineRunTest, GateStreakResetsOnAnyBadObservation) {
  const HealthGatePolicy policy;
  const std::vector<GateObservation> bad = {
      {kOpened + 2500, std::string("r-41"), Health::kHealthy},    // the old release
      {kOpened + 2500, std::nullopt, Health::kHealthy},           // no release reported
      {kOpened + 2500, std::string("r-42"), Health::kDegraded},   // the release, not healthy
      {kOpened + 2500, std::string("r-42"), Health::kUnhealthy},  //
      {kOpened + 2500, std::string("r-42"), Health::kUnknown},    //
      {kOpened + 2500, std::string("R-42"), Health::kHealthy},    // releases compare exactly
  };
  for (const GateObservation& observation : bad) {
    HealthGate gate = OpenGate();
    EXPECT_EQ(ObserveGate(policy, gate, Good(kOpened + 1000)), GateVerdict::kPending);
    EXPECT_EQ(ObserveGate(policy, gate, Good(kOpened + 2000)), GateVerdict::kPending);
    EXPECT_EQ(ObserveGate(policy, gate, observation), GateVerdict::kPending);
    EXPECT_EQ(gate.streak, 0);
    EXPECT_EQ(ObserveGate(policy, gate, Good(kOpened + 3000)), GateVerdict::kPending);
    EXPECT_EQ(ObserveGate(policy, gate, Good(kOpened + 4000)), GateVerdict::kPending);
    EXPECT_EQ(ObserveGate(policy, gate, Good(kOpened + 5000)), GateVerdict::kPassed);
  }
}

TEST(PipelineRunTest, GateFailsAtTheEndOfTheWindow) {
  const HealthGatePolicy policy;
  // The streak completed one millisecond before the end: passed.
  HealthGate gate = OpenGate();
  EXPECT_EQ(ObserveGate(policy, gate, Good(kOpened + kWindow - 3)), GateVerdict::kPending);
  EXPECT_EQ(ObserveGate(policy, gate, Good(kOpened + kWindow - 2)), GateVerdict::kPending);
  EXPECT_EQ(ObserveGate(policy, gate, Good(kOpened + kWindow - 1)), GateVerdict::kPassed);
  // Completed exactly at the end: too late.
  gate = OpenGate();
  EXPECT_EQ(ObserveGate(policy, gate, Good(kOpened + kWindow - 2)), GateVerdict::kPending);
  EXPECT_EQ(ObserveGate(policy, gate, Good(kOpened + kWindow - 1)), GateVerdict::kPending);
  EXPECT_EQ(ObserveGate(policy, gate, Good(kOpened + kWindow)), GateVerdict::kFailed);
  // A bad observation at or after the end fails it; one before does not.
  gate = OpenGate();
  const GateObservation bad_before{kOpened + kWindow - 1, std::string("r-41"), Health::kHealthy};
  EXPECT_EQ(ObserveGate(policy, gate, bad_before), GateVerdict::kPending);
  const GateObservation bad_at{kOpened + kWindow, std::string("r-41"), Health::kHealthy};
  EXPECT_EQ(ObserveGate(policy, gate, bad_at), GateVerdict::kFailed);
  gate = OpenGate();
  EXPECT_EQ(ObserveGate(policy, gate, Good(kOpened + kWindow + 60'000)), GateVerdict::kFailed);
}

TEST(PipelineRunTest, GateIgnoresObservationsFromBeforeItOpened) {
  const HealthGatePolicy policy{1, kWindow};
  HealthGate gate = OpenGate();
  EXPECT_EQ(ObserveGate(policy, gate, Good(kOpened - 1)), GateVerdict::kPending);
  EXPECT_EQ(gate.streak, 0);
  EXPECT_EQ(ObserveGate(policy, gate, Good(kOpened)), GateVerdict::kPassed);
}

TEST(PipelineRunTest, GateAtWithASilentAgent) {
  const HealthGatePolicy policy;
  HealthGate gate = OpenGate();
  EXPECT_EQ(GateAt(policy, gate, kOpened), GateVerdict::kPending);
  EXPECT_EQ(GateAt(policy, gate, kOpened + kWindow - 1), GateVerdict::kPending);
  EXPECT_EQ(GateAt(policy, gate, kOpened + kWindow), GateVerdict::kFailed);
  EXPECT_EQ(GateAt(policy, gate, kOpened + kWindow + 1), GateVerdict::kFailed);
  // A partial streak does not save a gate whose window has passed.
  EXPECT_EQ(ObserveGate(policy, gate, Good(kOpened + 1000)), GateVerdict::kPending);
  EXPECT_EQ(ObserveGate(policy, gate, Good(kOpened + 2000)), GateVerdict::kPending);
  EXPECT_EQ(GateAt(policy, gate, kOpened + kWindow), GateVerdict::kFailed);
  // A custom window.
  const HealthGatePolicy short_window{2, 10'000};
  EXPECT_EQ(GateAt(short_window, gate, kOpened + 9'999), GateVerdict::kPending);
  EXPECT_EQ(GateAt(short_window, gate, kOpened + 10'000), GateVerdict::kFailed);
  // Extreme times do not overflow.
  EXPECT_EQ(GateAt(policy, gate, INT64_MAX), GateVerdict::kFailed);
  EXPECT_EQ(GateAt(policy, gate, INT64_MIN), GateVerdict::kPending);
}

}  // namespace
}  // namespace storeplane::core
