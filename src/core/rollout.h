// Fleet rollouts: one release to many stores in waves, as a pure state machine. A rollout is
// a validated spec, a plan fixed at creation (waves of store ids) and a progress that only
// Step() moves: observations, operator commands, the pacing budget and the time go in;
// decisions (start a deploy or rollback run, skip a store, wave finished, ...) come out.
//
//   pending -> running -> (wave done) -> waiting_between_waves | awaiting_approval -> running ...
//           -> succeeded
//   running | waiting_between_waves | awaiting_approval <-pause/resume-> paused
//   failure budget exceeded: halting (in-flight runs finish) -> rolling_back -> failed
//   abort: aborting (in-flight runs finish) [-> rolling_back if asked] -> aborted
//
// The contract with the orchestrator (the edge that owns the database, the clock and the
// provider rate limiter), in the order of one pass:
//   1. load the stores named by StoresToObserve(plan, progress) and observe each one;
//   2. Step(spec, plan, progress, input); step again at once when it says step_again, at
//      wake_at_ms, on a command, or when one of the rollout's runs ends;
//   3. in ONE transaction: for every kStartDeploy/kStartRollback decision, request the run
//      (core::CheckRunRequest via the server's PlanRun) and AttachRun() its id, or
//      RecordRefusedStart() when it is refused; write the changed targets and the progress;
//      append the events and audit records;
//   4. only after the commit, let the run coordinator send the triggers (the outbox).
// A target is `deploying` before its run exists only inside that transaction, so a restart
// or a new leader that reloads the progress never decides a second deploy for a store.
// Not thread-safe; values only, no I/O, no clock: `now_ms` is passed in.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/agent_health.h"
#include "core/label_selector.h"
#include "core/pipeline_run.h"
#include "core/result.h"
#include "core/store.h"

namespace storeplane::core {

// ---- The spec ---------------------------------------------------------------------------

// Which stores the rollout goes to. Decommissioned stores (tombstones) never match.
struct RolloutSelector {
  std::string environment;                      // required, one of the configured set
  std::optional<IsolationMode> isolation_mode;  // only stores recorded with this mode
  std::string labels;                           // label selector text (core/label_selector.h); empty: all
};

// A canary wave of `canary_size` stores, then waves of either `wave_size` stores or the
// previous wave's size times `growth_factor`, rounded up; each capped by the stores left.
// Exactly one of growth_factor and wave_size.
struct WavePlanSpec {
  int canary_size = 1;                  // >= 1
  std::optional<double> growth_factor;  // > 1, at most kMaxGrowthFactor
  std::optional<int> wave_size;         // >= 1
};

// How many failed deploys the rollout tolerates before it halts; exactly one of the two.
// The percentage is of the stores planned (all waves), rounded down: 10% of 25 allows 2.
// The budget is exceeded when failures > allowed, so a budget of 0 halts at the first one.
struct FailureBudget {
  std::optional<int> max_failures;         // >= 0
  std::optional<int> max_failure_percent;  // 0..100
};

enum class BetweenWaves {
  kNone,      // the next wave starts as soon as one finishes
  kPause,     // wait pause_ms after a wave finishes
  kApproval,  // wait for an approve-wave command naming the next wave
};
std::string_view ToString(BetweenWaves between);  // "none" | "pause" | "approval"
std::optional<BetweenWaves> ParseBetweenWaves(std::string_view text);

struct RolloutSpec {
  std::string release;  // validated like a deploy's release (ValidateReleaseId)
  RolloutSelector selector;
  WavePlanSpec waves;
  int max_concurrent = 1;  // deploy and rollback runs of this rollout active at once, >= 1
  FailureBudget failure_budget;
  BetweenWaves between_waves = BetweenWaves::kNone;
  std::int64_t pause_ms = 0;  // kPause: 1 ms .. kMaxPauseMs; otherwise 0
};

inline constexpr int kMaxConcurrentRuns = 10'000;
inline constexpr double kMaxGrowthFactor = 100.0;
inline constexpr std::int64_t kMaxPauseMs = 7LL * 24 * 60 * 60 * 1000;  // a week

// kInvalidArgument naming the field ("release", "selector.environment", "selector.labels",
// "waves.canary_size", "waves.growth_factor", "waves.wave_size", "max_concurrent",
// "failure_budget", "failure_budget.max_failures", "failure_budget.max_failure_percent",
// "pause_ms") for the first rule broken.
Status ValidateRolloutSpec(const RolloutSpec& spec, const EnvironmentSet& environments);

// Whether `store` is one of the selector's stores. REQUIRES: a validated selector.
bool MatchesRolloutSelector(const RolloutSelector& selector, const LabelSelector& labels, const Store& store);
// The ids of the stores that match, in the order given. kInvalidArgument for bad label text.
Result<std::vector<std::string>> SelectRolloutStores(const RolloutSelector& selector, const std::vector<Store>& stores);

// Failures tolerated for `planned` stores (see FailureBudget).
int AllowedFailures(const FailureBudget& budget, std::size_t planned);

// ---- The plan ---------------------------------------------------------------------------

// Fixed at creation and stored with the rollout: a restart re-derives nothing, so a store
// that joins or leaves the selector later does not change a running rollout.
struct RolloutPlan {
  std::vector<std::vector<std::string>> waves;  // waves[0] is the canary
  std::size_t StoreCount() const;
};

// Waves of the given store ids, which are sorted first (byte order): the same stores and
// spec always give the same plan, so a plan can be previewed (dry run) and reproduced. Every
// id lands in exactly one wave. O(n log n). kInvalidArgument ("stores") when there are no
// stores or an id appears twice; REQUIRES: a validated spec.
Result<RolloutPlan> PlanWaves(std::vector<std::string> store_ids, const WavePlanSpec& waves);

// ---- Progress ---------------------------------------------------------------------------

enum class RolloutState {
  kPending,              // created; the first Step starts the canary wave
  kRunning,              // deploying the current wave
  kWaitingBetweenWaves,  // the current wave finished; the next starts at resume_at_ms
  kAwaitingApproval,     // the current wave finished; the next waits for approve-wave
  kPaused,               // an operator paused: no new deploys; in-flight runs go on
  kHalting,              // failure budget exceeded: no new deploys; waiting for in-flight runs
  kAborting,             // aborted: no new deploys; waiting for in-flight runs
  kRollingBack,          // rolling back the current wave's deployed stores
  kSucceeded,            // final: every wave finished within the failure budget
  kFailed,               // final: halted by the failure budget (after its rollbacks)
  kAborted,              // final: aborted by an operator (after its rollbacks, if asked)
};
std::string_view ToString(RolloutState state);  // "pending", ..., "waiting_between_waves", ...
std::optional<RolloutState> ParseRolloutState(std::string_view text);
const std::vector<RolloutState>& AllRolloutStates();
bool IsFinal(RolloutState state);

enum class TargetState {
  kWaiting,          // its wave has not reached it
  kDeploying,        // a deploy run was decided (run_id set in the same transaction)
  kSucceeded,        // the deploy run ended well (verified)
  kFailed,           // the deploy run ended otherwise (deploy_final_state says how)
  kSkipped,          // not deployed at its turn (skip_reason says why); not a failure
  kRollbackWaiting,  // halted wave: a rollback is due, waiting for a slot
  kRollingBack,      // a rollback run was decided (rollback_run_id)
  kRolledBack,       // the rollback run ended well
  kRollbackFailed,   // the rollback run ended otherwise, or its request was refused
  kNotRolledBack,    // halted wave: deployed, but no earlier release is known to return to
  kNotStarted,       // the rollout halted or was aborted before its turn
};
std::string_view ToString(TargetState state);
std::optional<TargetState> ParseTargetState(std::string_view text);
const std::vector<TargetState>& AllTargetStates();

// Why a store was not deployed at its turn. A closed set.
enum class SkipReason {
  kAgentOffline,      // agent offline or never seen
  kUnhealthy,         // health unhealthy or unknown (isolation mismatch makes it unhealthy)
  kActiveRun,         // another pipeline run is active on the store
  kNotActive,         // lifecycle state is not active
  kWindowClosed,      // the deploy window of the store's environment is closed
  kAlreadyAtRelease,  // the agent already reports the rollout's release
};
std::string_view ToString(SkipReason reason);  // "agent_offline", "unhealthy", "active_run", ...
std::optional<SkipReason> ParseSkipReason(std::string_view text);
const std::vector<SkipReason>& AllSkipReasons();

struct TargetProgress {
  std::string store_id;
  int wave = 0;
  TargetState state = TargetState::kWaiting;
  std::optional<SkipReason> skip_reason;
  std::optional<std::string> deploy_run_id;
  std::optional<RunState> deploy_final_state;
  // The store's last known good release when its deploy was decided: what a rollback of
  // this rollout returns it to.
  std::optional<std::string> previous_release;
  std::optional<std::string> rollback_run_id;
  std::optional<RunState> rollback_final_state;
  bool operator==(const TargetProgress&) const = default;
};

// How a halted or aborted rollout ends.
enum class RolloutEnding { kFailureBudget, kAbort };

struct RolloutProgress {
  RolloutState state = RolloutState::kPending;
  std::optional<RolloutState> paused_from;  // kPaused: the state resume returns to
  int current_wave = 0;
  std::optional<std::int64_t> resume_at_ms;  // kWaitingBetweenWaves
  std::optional<RolloutEnding> ending;       // set when halting or aborting starts
  bool rollback_on_abort = false;            // the abort asked to roll back the current wave
  int failed_deploys = 0;                    // deploy runs that ended without success
  std::vector<TargetProgress> targets;       // every planned store, in plan order
  bool operator==(const RolloutProgress&) const = default;
};

// A fresh progress for a plan: pending, every target waiting.
RolloutProgress NewRolloutProgress(const RolloutPlan& plan);

// ---- Operator commands ------------------------------------------------------------------

enum class RolloutCommandKind { kPause, kResume, kAbort, kApproveWave };
std::string_view ToString(RolloutCommandKind kind);  // "pause" | "resume" | "abort" | "approve_wave"

struct RolloutCommand {
  RolloutCommandKind kind = RolloutCommandKind::kPause;
  int wave = 0;           // kApproveWave: the wave to start (0 is the canary)
  bool rollback = false;  // kAbort: roll back the current wave's deployed stores
};

// Whether `command` applies to `progress` now; kConflict saying why not:
//   pause        running, waiting_between_waves or awaiting_approval
//   resume       paused
//   abort        any state but halting, rolling_back and the final ones
//   approve_wave awaiting_approval, naming the next wave
// The API handler calls it for a clear 409; Step() calls it again for each command it gets.
Status CheckRolloutCommand(const RolloutPlan& plan, const RolloutProgress& progress, const RolloutCommand& command);

// ---- Observations -----------------------------------------------------------------------

struct ObservedRun {
  RunKind kind = RunKind::kDeploy;
  RunState state = RunState::kPending;
};

// What the orchestrator knows about one store when it calls Step().
struct StoreObservation {
  StoreState state = StoreState::kActive;
  bool other_run_active = false;  // a run not attached to this target is active on the store
  Availability availability = Availability::kNeverSeen;
  Health health = Health::kUnknown;
  bool window_open = true;                             // is the deploy window of the store's environment open now
  std::optional<std::string> current_release;          // as the agent reports it
  std::optional<std::string> last_known_good_release;  // what a rollback would return to
  // The run attached to the target (deploying: its deploy run; rolling_back: its rollback
  // run), required for those targets.
  std::optional<ObservedRun> run;
};

using StoreObservations = std::unordered_map<std::string, StoreObservation>;

// The stores Step() needs observations of: the current wave's targets that are waiting, in
// flight, or (while halting, aborting or rolling back) may be rolled back. Empty between
// waves and when final.
std::vector<std::string> StoresToObserve(const RolloutPlan& plan, const RolloutProgress& progress);

// ---- The step ---------------------------------------------------------------------------

struct StepInput {
  std::int64_t now_ms = 0;
  int trigger_budget = 0;                // run triggers the provider pacing allows now (deploys and rollbacks)
  std::vector<RolloutCommand> commands;  // received since the last step, in order
  StoreObservations observations;        // at least StoresToObserve(plan, progress)
};

enum class DecisionKind {
  kStartDeploy,      // request a deploy of spec.release for store_id
  kStartRollback,    // request a rollback of store_id to `release`
  kSkipTarget,       // store_id was skipped (skip_reason)
  kWaveStarted,      // wave `wave` is now the current wave (0, the canary, at the first step)
  kWaveFinished,     // wave `wave` has no target left to deploy or in flight
  kWaitUntil,        // the next wave starts at until_ms
  kAwaitApproval,    // the next wave (`wave`) waits for approve-wave
  kHalted,           // the failure budget is exceeded (failed_deploys)
  kRolloutFinished,  // the rollout reached `final_state`
};
std::string_view ToString(DecisionKind kind);

struct RolloutDecision {
  DecisionKind kind = DecisionKind::kStartDeploy;
  std::string store_id;                // start, skip
  std::size_t target = 0;              // start, skip: the index in progress.targets
  std::optional<std::string> release;  // start: the release to deploy or return to
  std::optional<SkipReason> skip_reason;
  int wave = 0;  // the wave of a start or skip; the wave started, finished or awaiting approval
  std::int64_t until_ms = 0;
  int failed_deploys = 0;                               // halted
  RolloutState final_state = RolloutState::kSucceeded;  // finished
};

struct RefusedCommand {
  RolloutCommand command;
  Error error;
};

struct StepResult {
  RolloutProgress progress;
  std::vector<RolloutDecision> decisions;    // in the order they were taken
  std::vector<std::size_t> changed_targets;  // indices into progress.targets, ascending, unique
  std::vector<RefusedCommand> refused_commands;
  // The progress reached a new wave whose stores were not observed: step again now.
  bool step_again = false;
  std::optional<std::int64_t> wake_at_ms;  // the earliest time a step without news can progress
};

// One step. `progress` is taken by value: move it in when the old one is not needed.
// Order: commands, then the outcomes of in-flight runs, then the failure budget, then the
// state's work (starting deploys or rollbacks within max_concurrent and trigger_budget,
// skipping ineligible stores, finishing waves). Deterministic; the same inputs give the
// same result. Errors (kInvalidArgument) only for inputs that break the contract: a plan
// that does not fit the progress, a missing observation, an observed run of the wrong kind.
Result<StepResult> Step(const RolloutSpec& spec, const RolloutPlan& plan, RolloutProgress progress,
                        const StepInput& input);

// After a start decision, in the transaction that records the run: the run's id on the
// target. kInvalidArgument if the decision does not name a target in that state.
Status AttachRun(RolloutProgress& progress, const RolloutDecision& start, std::string run_id);
// After a start decision whose run request was refused (the store changed in between): a
// deploy becomes skipped for `reason`, a rollback becomes rollback_failed.
Status RecordRefusedStart(RolloutProgress& progress, const RolloutDecision& start, SkipReason reason);

// Counts of targets by state, for the API and the events.
struct RolloutCounts {
  int planned = 0;
  int waiting = 0;
  int in_flight = 0;  // deploying, rollback_waiting or rolling_back
  int succeeded = 0;
  int failed = 0;
  int skipped = 0;
  int rolled_back = 0;
  int rollback_failed = 0;
  int not_rolled_back = 0;
  int not_started = 0;
};
RolloutCounts CountTargets(const RolloutProgress& progress);

}  // namespace storeplane::core
