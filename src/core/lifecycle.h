// The store lifecycle as a pure state machine: Transition(state, event) gives the next
// state or an error for an illegal pair. Illegal transitions are errors, never no-ops.
//   registered -> provisioning -> active -> decommissioning -> decommissioned
//   with provision_failed and decommission_failed; decommissioned is a tombstone.
#pragma once

#include <optional>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "core/store.h"

namespace storeplane::core {

enum class LifecycleEvent {
  kProvisionRequested,     // an operator asks to provision
  kProvisionSucceeded,     // the provision pipeline succeeded
  kProvisionFailed,        // the provision pipeline failed, was cancelled or timed out
  kDecommissionRequested,  // an operator asks to decommission
  kDecommissionSucceeded,
  kDecommissionFailed,
};

std::string_view ToString(LifecycleEvent event);
std::optional<LifecycleEvent> ParseLifecycleEvent(std::string_view text);

// Every state and every event, for exhaustive tests and documentation.
const std::vector<StoreState>& AllStoreStates();
const std::vector<LifecycleEvent>& AllLifecycleEvents();

// The next state, or kConflict naming the state and event when the pair is illegal.
Result<StoreState> Transition(StoreState from, LifecycleEvent event);

// True for the terminal tombstone state.
bool IsTerminal(StoreState state);

}  // namespace storeplane::core
