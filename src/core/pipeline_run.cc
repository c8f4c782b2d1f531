#include "core/pipeline_run.h"

#include <algorithm>
#include <climits>
#include <string>

#include "core/operation.h"

namespace storeplane::core {

namespace {

std::string Quoted(std::string_view text) { return "'" + std::string(text) + "'"; }

Error StoreStateConflict(const Store& store, RunKind kind, std::string_view needs) {
  return Error{ErrorCode::kConflict,
               "store " + Quoted(store.id) + " is " + std::string(ToString(store.state)) + "; " +
                   std::string(ToString(kind)) + " needs " + std::string(needs),
               {}};
}

// The store states in which `kind` may be requested, and how to say so.
bool StateAllows(RunKind kind, StoreState state) {
  switch (kind) {
    case RunKind::kProvision: return state == StoreState::kRegistered || state == StoreState::kProvisionFailed;
    case RunKind::kDeploy:
    case RunKind::kRollback:
    case RunKind::kIsolationMigration: return state == StoreState::kActive;
    case RunKind::kDecommission:
      // A store registered by mistake can be decommissioned without ever being provisioned.
      return state == StoreState::kRegistered || state == StoreState::kActive ||
             state == StoreState::kProvisionFailed || state == StoreState::kDecommissionFailed;
  }
  return false;
}

std::string_view StatesNeeded(RunKind kind) {
  switch (kind) {
    case RunKind::kProvision: return "a registered or provision_failed store";
    case RunKind::kDeploy:
    case RunKind::kRollback:
    case RunKind::kIsolationMigration: return "an active store";
    case RunKind::kDecommission: return "a registered, active, provision_failed or decommission_failed store";
  }
  return "an active store";
}

Status CheckRelease(const std::optional<std::string>& release, RunKind kind) {
  if (!release) return Error::Invalid(std::string(ToString(kind)) + " needs a release", "release");
  return ValidateReleaseId(*release);
}

}  // namespace

// ---- Names -----------------------------------------------------------------------------

std::string_view ToString(RunKind kind) {
  switch (kind) {
    case RunKind::kProvision: return "provision";
    case RunKind::kDeploy: return "deploy";
    case RunKind::kRollback: return "rollback";
    case RunKind::kDecommission: return "decommission";
    case RunKind::kIsolationMigration: return "isolation_migration";
  }
  return "deploy";
}

std::optional<RunKind> ParseRunKind(std::string_view text) {
  for (RunKind kind : AllRunKinds()) {
    if (ToString(kind) == text) return kind;
  }
  return std::nullopt;
}

const std::vector<RunKind>& AllRunKinds() {
  static const std::vector<RunKind> kAll = {
      RunKind::kProvision, RunKind::kDeploy, RunKind::kRollback, RunKind::kDecommission, RunKind::kIsolationMigration,
  };
  return kAll;
}

bool HasHealthGate(RunKind kind) { return kind == RunKind::kDeploy || kind == RunKind::kRollback; }

std::string_view ToString(RunState state) {
  switch (state) {
    case RunState::kPending: return "pending";
    case RunState::kTriggered: return "triggered";
    case RunState::kRunning: return "running";
    case RunState::kSucceeded: return "succeeded";
    case RunState::kFailed: return "failed";
    case RunState::kCancelled: return "cancelled";
    case RunState::kTimedOut: return "timed_out";
    case RunState::kVerifying: return "verifying";
    case RunState::kVerified: return "verified";
    case RunState::kVerificationFailed: return "verification_failed";
  }
  return "pending";
}

std::optional<RunState> ParseRunState(std::string_view text) {
  for (RunState state : AllRunStates()) {
    if (ToString(state) == text) return state;
  }
  return std::nullopt;
}

const std::vector<RunState>& AllRunStates() {
  static const std::vector<RunState> kAll = {
      RunState::kPending,  RunState::kTriggered,          RunState::kRunning,  RunState::kSucceeded,
      RunState::kFailed,   RunState::kCancelled,          RunState::kTimedOut, RunState::kVerifying,
      RunState::kVerified, RunState::kVerificationFailed,
  };
  return kAll;
}

std::string_view ToString(RunEvent event) {
  switch (event) {
    case RunEvent::kTriggerAccepted: return "trigger_accepted";
    case RunEvent::kStarted: return "started";
    case RunEvent::kSucceeded: return "succeeded";
    case RunEvent::kFailed: return "failed";
    case RunEvent::kCancelled: return "cancelled";
    case RunEvent::kTimedOut: return "timed_out";
    case RunEvent::kVerify: return "verify";
    case RunEvent::kGatePassed: return "gate_passed";
    case RunEvent::kGateFailed: return "gate_failed";
  }
  return "trigger_accepted";
}

std::optional<RunEvent> ParseRunEvent(std::string_view text) {
  for (RunEvent event : AllRunEvents()) {
    if (ToString(event) == text) return event;
  }
  return std::nullopt;
}

const std::vector<RunEvent>& AllRunEvents() {
  static const std::vector<RunEvent> kAll = {
      RunEvent::kTriggerAccepted, RunEvent::kStarted,    RunEvent::kSucceeded,
      RunEvent::kFailed,          RunEvent::kCancelled,  RunEvent::kTimedOut,
      RunEvent::kVerify,          RunEvent::kGatePassed, RunEvent::kGateFailed,
  };
  return kAll;
}

// ---- State machine ---------------------------------------------------------------------

// The whole table. Any triple not listed is illegal.
//   pending            --trigger_accepted-->  triggered
//   triggered          --started-->           running
//   triggered|running  --succeeded-->         succeeded
//   pending|triggered|running --failed|cancelled|timed_out--> failed|cancelled|timed_out
//   gated kinds only:
//   succeeded          --verify-->            verifying
//   verifying          --gate_passed-->       verified
//   verifying          --gate_failed-->       verification_failed
Result<RunState> TransitionRun(RunKind kind, RunState from, RunEvent event) {
  using E = RunEvent;
  using S = RunState;
  const bool gated = HasHealthGate(kind);
  const bool in_pipeline = from == S::kPending || from == S::kTriggered || from == S::kRunning;
  if (in_pipeline) {
    if (event == E::kFailed) return S::kFailed;
    if (event == E::kCancelled) return S::kCancelled;
    if (event == E::kTimedOut) return S::kTimedOut;
  }
  switch (from) {
    case S::kPending:
      if (event == E::kTriggerAccepted) return S::kTriggered;
      break;
    case S::kTriggered:
      if (event == E::kStarted) return S::kRunning;
      if (event == E::kSucceeded) return S::kSucceeded;
      break;
    case S::kRunning:
      if (event == E::kSucceeded) return S::kSucceeded;
      break;
    case S::kSucceeded:
      if (gated && event == E::kVerify) return S::kVerifying;
      break;
    case S::kVerifying:
      if (gated && event == E::kGatePassed) return S::kVerified;
      if (gated && event == E::kGateFailed) return S::kVerificationFailed;
      break;
    case S::kFailed:
    case S::kCancelled:
    case S::kTimedOut:
    case S::kVerified:
    case S::kVerificationFailed: break;
  }
  return Error{ErrorCode::kConflict,
               "a " + std::string(ToString(kind)) + " run in state " + std::string(ToString(from)) +
                   " cannot take the event " + std::string(ToString(event)),
               {}};
}

// Final exactly when TransitionRun accepts no event. For kinds without a gate the gate's
// states cannot be reached; should a run be found in one, it is final too, so that it can
// never hold its store forever.
bool IsFinal(RunKind kind, RunState state) {
  switch (state) {
    case RunState::kPending:
    case RunState::kTriggered:
    case RunState::kRunning: return false;
    case RunState::kSucceeded:
    case RunState::kVerifying: return !HasHealthGate(kind);
    case RunState::kFailed:
    case RunState::kCancelled:
    case RunState::kTimedOut:
    case RunState::kVerified:
    case RunState::kVerificationFailed: return true;
  }
  return false;
}

bool IsActive(RunKind kind, RunState state) { return !IsFinal(kind, state); }

bool IsSuccess(RunKind kind, RunState state) {
  return HasHealthGate(kind) ? state == RunState::kVerified : state == RunState::kSucceeded;
}

std::optional<LifecycleEvent> LifecycleEventAtRequest(RunKind kind) {
  switch (kind) {
    case RunKind::kProvision: return LifecycleEvent::kProvisionRequested;
    case RunKind::kDecommission: return LifecycleEvent::kDecommissionRequested;
    case RunKind::kDeploy:
    case RunKind::kRollback:
    case RunKind::kIsolationMigration: return std::nullopt;
  }
  return std::nullopt;
}

std::optional<LifecycleEvent> LifecycleEventAtEnd(RunKind kind, RunState final_state) {
  const bool succeeded = final_state == RunState::kSucceeded;
  const bool failed =
      final_state == RunState::kFailed || final_state == RunState::kCancelled || final_state == RunState::kTimedOut;
  switch (kind) {
    case RunKind::kProvision:
      if (succeeded) return LifecycleEvent::kProvisionSucceeded;
      if (failed) return LifecycleEvent::kProvisionFailed;
      return std::nullopt;
    case RunKind::kDecommission:
      if (succeeded) return LifecycleEvent::kDecommissionSucceeded;
      if (failed) return LifecycleEvent::kDecommissionFailed;
      return std::nullopt;
    case RunKind::kDeploy:
    case RunKind::kRollback:
    case RunKind::kIsolationMigration: return std::nullopt;
  }
  return std::nullopt;
}

// Checked in this order: the store's state, another active run, then the kind's own needs.
Status CheckRunRequest(const RunRequestCheck& check) {
  if (check.store == nullptr) return Error::Internal("a run request was checked without its store");
  const Store& store = *check.store;
  if (!StateAllows(check.kind, store.state)) return StoreStateConflict(store, check.kind, StatesNeeded(check.kind));
  if (check.other_run_active) {
    return Error{ErrorCode::kConflict, "store " + Quoted(store.id) + " already has an active run", {}};
  }
  switch (check.kind) {
    case RunKind::kProvision:
    case RunKind::kDecommission: return Status::Ok();
    case RunKind::kDeploy:
      SP_RETURN_IF_ERROR(CheckRelease(check.release, check.kind));
      if (check.isolation_mismatch) {
        return Error{ErrorCode::kConflict,
                     "the agent reports an isolation mode other than the recorded one; deploys are refused until "
                     "they match",
                     {}};
      }
      return Status::Ok();
    case RunKind::kRollback:
      if (check.release) return ValidateReleaseId(*check.release);
      if (!store.last_known_good_release) {
        return Error{ErrorCode::kConflict,
                     "store " + Quoted(store.id) + " has no last known good release to roll back to; name a release",
                     {}};
      }
      return Status::Ok();
    case RunKind::kIsolationMigration:
      if (!check.target_isolation)
        return Error::Invalid("isolation_migration needs a target isolation mode", "isolation_mode");
      if (!IsTightening(store.isolation_mode, *check.target_isolation)) {
        return Error::Invalid("store " + Quoted(store.id) + " is " + std::string(ToString(store.isolation_mode)) +
                                  "; an isolation mode may only be tightened, and " +
                                  std::string(ToString(*check.target_isolation)) + " is not stricter",
                              "isolation_mode");
      }
      return Status::Ok();
  }
  return Status::Ok();
}

// ---- The health gate -------------------------------------------------------------------

std::string_view ToString(GateVerdict verdict) {
  switch (verdict) {
    case GateVerdict::kPending: return "pending";
    case GateVerdict::kPassed: return "passed";
    case GateVerdict::kFailed: return "failed";
  }
  return "pending";
}

// The window is [opened_at_ms, opened_at_ms + window_ms): an observation at its end is
// already too late, and one from before the gate opened says nothing about the run's
// release, so it counts as a bad one.
GateVerdict ObserveGate(const HealthGatePolicy& policy, HealthGate& gate, const GateObservation& observation) {
  const bool good = observation.at_ms >= gate.opened_at_ms && observation.reported_release.has_value() &&
                    *observation.reported_release == gate.release && observation.health == Health::kHealthy;
  if (!good) {
    gate.streak = 0;
  } else if (gate.streak < INT_MAX) {
    ++gate.streak;
  }
  if (GateAt(policy, gate, observation.at_ms) == GateVerdict::kFailed) return GateVerdict::kFailed;
  if (gate.streak >= std::max(1, policy.consecutive)) return GateVerdict::kPassed;
  return GateVerdict::kPending;
}

GateVerdict GateAt(const HealthGatePolicy& policy, const HealthGate& gate, std::int64_t now_ms) {
  if (policy.window_ms <= 0) return GateVerdict::kFailed;
  if (now_ms < gate.opened_at_ms) return GateVerdict::kPending;
  // now - opened >= window, in unsigned arithmetic so that no pair of times can overflow.
  const std::uint64_t elapsed = static_cast<std::uint64_t>(now_ms) - static_cast<std::uint64_t>(gate.opened_at_ms);
  return elapsed >= static_cast<std::uint64_t>(policy.window_ms) ? GateVerdict::kFailed : GateVerdict::kPending;
}

}  // namespace storeplane::core
