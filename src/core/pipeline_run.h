// Pipeline runs: one CI/CD execution that provisions, deploys, rolls back, decommissions or
// migrates a store's isolation, as a pure state machine. The control plane never deploys
// anything itself; it records the run, triggers the provider through an outbox, and moves
// the run on from the provider's outcome and, for deploys and rollbacks, the health gate.
//
//   pending --trigger_accepted--> triggered --started--> running --succeeded--> succeeded
//   pending|triggered|running --failed--> failed, --cancelled--> cancelled, --timed_out--> timed_out
//   triggered --succeeded--> succeeded (a provider that reports only the end)
//   deploy and rollback runs: succeeded --verify--> verifying --gate_passed--> verified,
//                                                           --gate_failed--> verification_failed
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/agent_health.h"
#include "core/lifecycle.h"
#include "core/result.h"
#include "core/store.h"

namespace storeplane::core {

enum class RunKind { kProvision, kDeploy, kRollback, kDecommission, kIsolationMigration };
std::string_view ToString(RunKind kind);  // "provision", "deploy", "rollback", "decommission", "isolation_migration"
std::optional<RunKind> ParseRunKind(std::string_view text);
const std::vector<RunKind>& AllRunKinds();
// Deploy and rollback runs pass a health gate after the pipeline succeeds.
bool HasHealthGate(RunKind kind);

enum class RunState {
  kPending,    // recorded with its outbox entry; not sent yet
  kTriggered,  // the provider accepted it; its external id may be known
  kRunning,
  kSucceeded,
  kFailed,
  kCancelled,
  kTimedOut,
  kVerifying,  // deploy/rollback: waiting for the agent to show the release healthy
  kVerified,
  kVerificationFailed,
};
std::string_view ToString(RunState state);  // "pending", ..., "timed_out", "verification_failed"
std::optional<RunState> ParseRunState(std::string_view text);
const std::vector<RunState>& AllRunStates();

enum class RunEvent {
  kTriggerAccepted,  // the provider accepted the trigger
  kStarted,          // the provider reports the pipeline running
  kSucceeded,        // the provider reports success
  kFailed,           // the provider reports failure
  kCancelled,        // the provider reports cancellation
  kTimedOut,         // the control plane gave up waiting for an outcome
  kVerify,           // a gated run's pipeline succeeded: the gate opens
  kGatePassed,
  kGateFailed,
};
std::string_view ToString(RunEvent event);
std::optional<RunEvent> ParseRunEvent(std::string_view text);
const std::vector<RunEvent>& AllRunEvents();

// The next state; kConflict naming kind, state and event for an illegal triple (kVerify,
// kGatePassed and kGateFailed are illegal for kinds without a health gate; nothing leaves
// a final state).
Result<RunState> TransitionRun(RunKind kind, RunState from, RunEvent event);
// Final: no event moves the run any more. For gated kinds `succeeded` is not final (the
// gate follows); for the others it is.
bool IsFinal(RunKind kind, RunState state);
// Whether the run still occupies its store (at most one active run per store).
bool IsActive(RunKind kind, RunState state);
// Whether the run ended well: succeeded (ungated kinds) or verified (gated kinds).
bool IsSuccess(RunKind kind, RunState state);

// The store lifecycle event a run's start or end causes, if any: provision runs move the
// store registered|provision_failed -> provisioning at request and then to active or
// provision_failed at the end; decommission runs likewise through decommissioning.
std::optional<LifecycleEvent> LifecycleEventAtRequest(RunKind kind);
std::optional<LifecycleEvent> LifecycleEventAtEnd(RunKind kind, RunState final_state);

// Whether `kind` may be requested for `store` now, given whether another run is active on
// it. kConflict with the reason otherwise:
//   provision     store registered or provision_failed
//   deploy        store active, `release` valid (ValidateReleaseId), isolation not mismatched
//   rollback      store active, a target release known (`release`, else last_known_good)
//   decommission  store registered, active, provision_failed or decommission_failed
//   isolation_migration  store active, `target_isolation` strictly tighter than the store's
struct RunRequestCheck {
  RunKind kind = RunKind::kDeploy;
  const Store* store = nullptr;
  bool other_run_active = false;
  std::optional<std::string> release;             // deploy: required; rollback: optional
  std::optional<IsolationMode> target_isolation;  // isolation_migration: required
  bool isolation_mismatch = false;                // the agent reports another mode
};
Status CheckRunRequest(const RunRequestCheck& check);

// ---- The health gate -------------------------------------------------------------------
// After a gated run's pipeline succeeds, the agent must report the run's release with a
// healthy store for `consecutive` heartbeats in a row, within `window_ms` of the gate
// opening. Pure: the caller feeds each observation and the time.
struct HealthGatePolicy {
  int consecutive = 3;
  std::int64_t window_ms = 5 * 60 * 1000;
};

struct HealthGate {
  std::string release;  // the release the run put in place
  std::int64_t opened_at_ms = 0;
  int streak = 0;  // consecutive good observations so far
};

enum class GateVerdict { kPending, kPassed, kFailed };
std::string_view ToString(GateVerdict verdict);

struct GateObservation {
  std::int64_t at_ms = 0;
  std::optional<std::string> reported_release;
  Health health = Health::kUnknown;
};
// One heartbeat's observation: a good one (the release, and healthy) extends the streak, any
// other resets it. kPassed once the streak reaches `consecutive` inside the window; kFailed
// once the window has passed without that.
GateVerdict ObserveGate(const HealthGatePolicy& policy, HealthGate& gate, const GateObservation& observation);
// Without a heartbeat (the agent is silent): kFailed once the window has passed.
GateVerdict GateAt(const HealthGatePolicy& policy, const HealthGate& gate, std::int64_t now_ms);

}  // namespace storeplane::core
