// The store lifecycle state machine (src/core/lifecycle.h): every (state, event) pair
// against an explicit table, plus golden scenarios.
#include "core/lifecycle.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace storeplane::core {
namespace {

using E = LifecycleEvent;
using S = StoreState;

// The expected table, written out in full: 7 states x 6 events. std::nullopt = illegal.
// Columns: provision_requested, provision_succeeded, provision_failed,
//          decommission_requested, decommission_succeeded, decommission_failed.
constexpr std::optional<S> X = std::nullopt;
struct Row {
  S from;
  std::optional<S> next[6];
};
const Row kTable[] = {
    // clang-format off
    {S::kRegistered,         {S::kProvisioning, X,          X,                   S::kDecommissioning, X,                   X}},
    {S::kProvisioning,       {X,                S::kActive, S::kProvisionFailed, X,                   X,                   X}},
    {S::kProvisionFailed,    {S::kProvisioning, X,          X,                   S::kDecommissioning, X,                   X}},
    {S::kActive,             {X,                X,          X,                   S::kDecommissioning, X,                   X}},
    {S::kDecommissioning,    {X,                X,          X,                   X,                   S::kDecommissioned,  S::kDecommissionFailed}},
    {S::kDecommissionFailed, {X,                X,          X,                   S::kDecommissioning, X,                   X}},
    {S::kDecommissioned,     {X,                X,          X,                   X,                   X,                   X}},
    // clang-format on
};
const E kColumns[6] = {E::kProvisionRequested,    E::kProvisionSucceeded,    E::kProvisionFailed,
                       E::kDecommissionRequested, E::kDecommissionSucceeded, E::kDecommissionFailed};

TEST(LifecycleTest, TableCoversEveryStateAndEvent) {
  ASSERT_EQ(AllStoreStates().size(), 7u);
  ASSERT_EQ(AllLifecycleEvents().size(), 6u);
  ASSERT_EQ(std::size(kTable), AllStoreStates().size());
  for (std::size_t i = 0; i < std::size(kTable); ++i) EXPECT_EQ(kTable[i].from, AllStoreStates()[i]);
  for (std::size_t j = 0; j < 6; ++j) EXPECT_EQ(kColumns[j], AllLifecycleEvents()[j]);
}

TEST(LifecycleTest, EveryPairMatchesTheTable) {
  int legal = 0;
  for (const Row& row : kTable) {
    for (std::size_t j = 0; j < 6; ++j) {
      const E event = kColumns[j];
      const std::string pair = std::string(ToString(row.from)) + " + " + std::string(ToString(event));
      Result<S> got = Transition(row.from, event);
      if (row.next[j]) {
        ++legal;
        ASSERT_TRUE(got.ok()) << pair << ": " << got.error().message;
        EXPECT_EQ(*got, *row.next[j]) << pair << " -> " << ToString(*got);
      } else {
        ASSERT_FALSE(got.ok()) << pair << " should be illegal, got " << ToString(*got);
        EXPECT_EQ(got.error().code, ErrorCode::kConflict) << pair;
        EXPECT_EQ(got.error().message,
                  "cannot " + std::string(ToString(event)) + " a store in state " + std::string(ToString(row.from)));
      }
    }
  }
  EXPECT_EQ(legal, 10);
}

TEST(LifecycleTest, IllegalMessageIsReadable) {
  Result<S> r = Transition(S::kActive, E::kProvisionRequested);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "cannot provision_requested a store in state active");
}

TEST(LifecycleTest, OnlyDecommissionedIsTerminal) {
  for (S s : AllStoreStates()) EXPECT_EQ(IsTerminal(s), s == S::kDecommissioned) << ToString(s);
  for (E e : AllLifecycleEvents()) EXPECT_FALSE(Transition(S::kDecommissioned, e).ok()) << ToString(e);
}

TEST(LifecycleTest, EventNamesRoundTrip) {
  const std::vector<std::pair<E, const char*>> names = {
      {E::kProvisionRequested, "provision_requested"},
      {E::kProvisionSucceeded, "provision_succeeded"},
      {E::kProvisionFailed, "provision_failed"},
      {E::kDecommissionRequested, "decommission_requested"},
      {E::kDecommissionSucceeded, "decommission_succeeded"},
      {E::kDecommissionFailed, "decommission_failed"},
  };
  for (const auto& [event, name] : names) {
    EXPECT_EQ(ToString(event), name);
    EXPECT_EQ(ParseLifecycleEvent(name), event);
  }
  EXPECT_FALSE(ParseLifecycleEvent("ProvisionRequested").has_value());
  EXPECT_FALSE(ParseLifecycleEvent("").has_value());
}

// Golden scenarios: a script of events and the state after each, as a readable trace.
std::string Trace(S start, const std::vector<E>& events) {
  std::string trace(ToString(start));
  S state = start;
  for (E e : events) {
    Result<S> next = Transition(state, e);
    if (!next.ok()) return trace + " !" + std::string(ToString(e)) + " (" + next.error().message + ")";
    state = *next;
    trace += " -" + std::string(ToString(e)) + "-> " + std::string(ToString(state));
  }
  return trace;
}

TEST(LifecycleGoldenTest, ProvisionFailsRetriesThenDecommissionRetries) {
  EXPECT_EQ(Trace(S::kRegistered, {E::kProvisionRequested, E::kProvisionFailed, E::kProvisionRequested,
                                   E::kProvisionSucceeded, E::kDecommissionRequested, E::kDecommissionFailed,
                                   E::kDecommissionRequested, E::kDecommissionSucceeded}),
            "registered"
            " -provision_requested-> provisioning"
            " -provision_failed-> provision_failed"
            " -provision_requested-> provisioning"
            " -provision_succeeded-> active"
            " -decommission_requested-> decommissioning"
            " -decommission_failed-> decommission_failed"
            " -decommission_requested-> decommissioning"
            " -decommission_succeeded-> decommissioned");
}

TEST(LifecycleGoldenTest, NeverProvisionedStoreStillDecommissionsThroughThePipeline) {
  EXPECT_EQ(Trace(S::kRegistered, {E::kDecommissionRequested, E::kDecommissionSucceeded, E::kProvisionRequested}),
            "registered"
            " -decommission_requested-> decommissioning"
            " -decommission_succeeded-> decommissioned"
            " !provision_requested (cannot provision_requested a store in state decommissioned)");
}

TEST(LifecycleGoldenTest, DuplicateSuccessIsAnErrorNotANoOp) {
  EXPECT_EQ(Trace(S::kRegistered, {E::kProvisionRequested, E::kProvisionSucceeded, E::kProvisionSucceeded}),
            "registered"
            " -provision_requested-> provisioning"
            " -provision_succeeded-> active"
            " !provision_succeeded (cannot provision_succeeded a store in state active)");
}

}  // namespace
}  // namespace storeplane::core
