#include "core/lifecycle.h"

#include <string>

namespace storeplane::core {

std::string_view ToString(LifecycleEvent event) {
  switch (event) {
    case LifecycleEvent::kProvisionRequested: return "provision_requested";
    case LifecycleEvent::kProvisionSucceeded: return "provision_succeeded";
    case LifecycleEvent::kProvisionFailed: return "provision_failed";
    case LifecycleEvent::kDecommissionRequested: return "decommission_requested";
    case LifecycleEvent::kDecommissionSucceeded: return "decommission_succeeded";
    case LifecycleEvent::kDecommissionFailed: return "decommission_failed";
  }
  return "provision_requested";
}

std::optional<LifecycleEvent> ParseLifecycleEvent(std::string_view text) {
  for (LifecycleEvent e : AllLifecycleEvents()) {
    if (ToString(e) == text) return e;
  }
  return std::nullopt;
}

const std::vector<StoreState>& AllStoreStates() {
  static const std::vector<StoreState> kAll = {
      StoreState::kRegistered,      StoreState::kProvisioning,       StoreState::kProvisionFailed, StoreState::kActive,
      StoreState::kDecommissioning, StoreState::kDecommissionFailed, StoreState::kDecommissioned,
  };
  return kAll;
}

const std::vector<LifecycleEvent>& AllLifecycleEvents() {
  static const std::vector<LifecycleEvent> kAll = {
      LifecycleEvent::kProvisionRequested,    LifecycleEvent::kProvisionSucceeded,
      LifecycleEvent::kProvisionFailed,       LifecycleEvent::kDecommissionRequested,
      LifecycleEvent::kDecommissionSucceeded, LifecycleEvent::kDecommissionFailed,
  };
  return kAll;
}

// The whole table. Any pair not listed is illegal.
//   registered          --provision_requested-->    provisioning
//   provisioning        --provision_succeeded-->    active
//   provisioning        --provision_failed-->       provision_failed
//   provision_failed    --provision_requested-->    provisioning         (retry)
//   registered          --decommission_requested--> decommissioning      (never provisioned; still
//                                                                          runs the pipeline)
//   active              --decommission_requested--> decommissioning
//   provision_failed    --decommission_requested--> decommissioning
//   decommissioning     --decommission_succeeded--> decommissioned       (terminal tombstone)
//   decommissioning     --decommission_failed-->    decommission_failed
//   decommission_failed --decommission_requested--> decommissioning      (retry)
Result<StoreState> Transition(StoreState from, LifecycleEvent event) {
  using E = LifecycleEvent;
  using S = StoreState;
  switch (from) {
    case S::kRegistered:
      if (event == E::kProvisionRequested) return S::kProvisioning;
      if (event == E::kDecommissionRequested) return S::kDecommissioning;
      break;
    case S::kProvisioning:
      if (event == E::kProvisionSucceeded) return S::kActive;
      if (event == E::kProvisionFailed) return S::kProvisionFailed;
      break;
    case S::kProvisionFailed:
      if (event == E::kProvisionRequested) return S::kProvisioning;
      if (event == E::kDecommissionRequested) return S::kDecommissioning;
      break;
    case S::kActive:
      if (event == E::kDecommissionRequested) return S::kDecommissioning;
      break;
    case S::kDecommissioning:
      if (event == E::kDecommissionSucceeded) return S::kDecommissioned;
      if (event == E::kDecommissionFailed) return S::kDecommissionFailed;
      break;
    case S::kDecommissionFailed:
      if (event == E::kDecommissionRequested) return S::kDecommissioning;
      break;
    case S::kDecommissioned: break;
  }
  return Error{ErrorCode::kConflict,
               "cannot " + std::string(ToString(event)) + " a store in state " + std::string(ToString(from)),
               {}};
}

bool IsTerminal(StoreState state) { return state == StoreState::kDecommissioned; }

}  // namespace storeplane::core
