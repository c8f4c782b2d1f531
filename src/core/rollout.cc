#include "core/rollout.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "core/operation.h"

namespace storeplane::core {

namespace {

std::string Quoted(std::string_view text) { return "'" + std::string(text) + "'"; }

Error Conflict(std::string message) { return Error{ErrorCode::kConflict, std::move(message), {}}; }

// Whether a deploy of `release` may start on an observed store now, or why not. Checked in
// this order, so the reason names the most basic obstacle.
std::optional<SkipReason> SkipReasonFor(const StoreObservation& store, std::string_view release) {
  if (store.state != StoreState::kActive) return SkipReason::kNotActive;
  if (store.availability == Availability::kOffline || store.availability == Availability::kNeverSeen) {
    return SkipReason::kAgentOffline;
  }
  if (store.health == Health::kUnhealthy || store.health == Health::kUnknown) return SkipReason::kUnhealthy;
  if (store.other_run_active) return SkipReason::kActiveRun;
  if (store.current_release && *store.current_release == release) return SkipReason::kAlreadyAtRelease;
  if (!store.window_open) return SkipReason::kWindowClosed;
  return std::nullopt;
}

// The deploys of a halted or aborted wave that get a rollback: every deploy that started,
// except one whose health gate failed (the run coordinator already started its automatic
// rollback to the same last known good release, ADR 0008).
bool WantsRollback(const TargetProgress& target) {
  if (target.state == TargetState::kSucceeded) return true;
  return target.state == TargetState::kFailed && target.deploy_final_state != RunState::kVerificationFailed;
}

bool InFlight(TargetState state) { return state == TargetState::kDeploying || state == TargetState::kRollingBack; }

// The index range of each wave in progress.targets.
struct WaveRange {
  std::size_t begin = 0;
  std::size_t end = 0;
};

WaveRange RangeOf(const RolloutPlan& plan, int wave) {
  WaveRange range;
  for (int w = 0; w < wave; ++w) range.begin += plan.waves[static_cast<std::size_t>(w)].size();
  range.end = range.begin + plan.waves[static_cast<std::size_t>(wave)].size();
  return range;
}

// One call of Step(): the inputs, the result being built, and the state's work.
class Stepper {
 public:
  Stepper(const RolloutSpec& spec, const RolloutPlan& plan, const StepInput& input, StepResult& out)
      : spec_(spec), plan_(plan), input_(input), out_(out), p_(out.progress), budget_(input.trigger_budget) {}

  Status Run() {
    for (const RolloutCommand& command : input_.commands) ApplyCommand(command);
    SP_RETURN_IF_ERROR(ApplyRunOutcomes());
    CheckFailureBudget();
    SP_RETURN_IF_ERROR(Advance());
    std::sort(changed_.begin(), changed_.end());
    changed_.erase(std::unique(changed_.begin(), changed_.end()), changed_.end());
    out_.changed_targets = std::move(changed_);
    return Status::Ok();
  }

 private:
  TargetProgress& Target(std::size_t i) {
    changed_.push_back(i);
    return p_.targets[i];
  }
  WaveRange Current() const { return RangeOf(plan_, p_.current_wave); }
  const StoreObservation* Observe(const TargetProgress& target) const {
    auto it = input_.observations.find(target.store_id);
    return it == input_.observations.end() ? nullptr : &it->second;
  }
  void Decide(RolloutDecision decision) { out_.decisions.push_back(std::move(decision)); }
  void Finish(RolloutState final_state) {
    p_.state = final_state;
    p_.paused_from.reset();
    p_.resume_at_ms.reset();
    RolloutDecision d;
    d.kind = DecisionKind::kRolloutFinished;
    d.final_state = final_state;
    Decide(std::move(d));
  }
  void StartWave(int wave) {
    p_.state = RolloutState::kRunning;
    p_.current_wave = wave;
    RolloutDecision d;
    d.kind = DecisionKind::kWaveStarted;
    d.wave = wave;
    Decide(std::move(d));
  }
  // Halting or aborting: whatever has not started never will.
  void MarkWaitingNotStarted() {
    for (std::size_t i = 0; i < p_.targets.size(); ++i) {
      if (p_.targets[i].state == TargetState::kWaiting) Target(i).state = TargetState::kNotStarted;
    }
  }

  void ApplyCommand(const RolloutCommand& command) {
    if (Status s = CheckRolloutCommand(plan_, p_, command); !s) {
      out_.refused_commands.push_back(RefusedCommand{command, s.error()});
      return;
    }
    switch (command.kind) {
      case RolloutCommandKind::kPause:
        p_.paused_from = p_.state;
        p_.state = RolloutState::kPaused;
        return;
      case RolloutCommandKind::kResume:
        p_.state = *p_.paused_from;
        p_.paused_from.reset();
        return;
      case RolloutCommandKind::kAbort:
        p_.state = RolloutState::kAborting;
        p_.paused_from.reset();
        p_.resume_at_ms.reset();
        p_.ending = RolloutEnding::kAbort;
        p_.rollback_on_abort = command.rollback;
        MarkWaitingNotStarted();
        return;
      case RolloutCommandKind::kApproveWave: StartWave(command.wave); return;
    }
  }

  // Runs of the current wave that ended move their targets on.
  Status ApplyRunOutcomes() {
    const WaveRange wave = Current();
    for (std::size_t i = wave.begin; i < wave.end; ++i) {
      const TargetProgress& target = p_.targets[i];
      if (!InFlight(target.state)) continue;
      const bool deploy = target.state == TargetState::kDeploying;
      const RunKind kind = deploy ? RunKind::kDeploy : RunKind::kRollback;
      if (!(deploy ? target.deploy_run_id : target.rollback_run_id)) {
        return Error::Invalid("target " + Quoted(target.store_id) + " is " + std::string(ToString(target.state)) +
                                  " without a run id (AttachRun was not called)",
                              "progress");
      }
      const StoreObservation* store = Observe(target);
      if (store == nullptr || !store->run) {
        return Error::Invalid("no observed run for target " + Quoted(target.store_id), "observations");
      }
      if (store->run->kind != kind) {
        return Error::Invalid("the observed run of target " + Quoted(target.store_id) + " is a " +
                                  std::string(ToString(store->run->kind)) + " run, not a " +
                                  std::string(ToString(kind)) + " run",
                              "observations");
      }
      const RunState run_state = store->run->state;
      if (!IsFinal(kind, run_state)) continue;
      TargetProgress& moved = Target(i);
      const bool success = IsSuccess(kind, run_state);
      if (deploy) {
        moved.deploy_final_state = run_state;
        moved.state = success ? TargetState::kSucceeded : TargetState::kFailed;
        if (!success) ++p_.failed_deploys;
      } else {
        moved.rollback_final_state = run_state;
        moved.state = success ? TargetState::kRolledBack : TargetState::kRollbackFailed;
      }
    }
    return Status::Ok();
  }

  // Exceeding the budget halts whatever the rollout was doing, a pause included; an abort
  // in progress stays an abort.
  void CheckFailureBudget() {
    const RolloutState s = p_.state;
    if (s != RolloutState::kRunning && s != RolloutState::kPaused) return;
    if (p_.failed_deploys <= AllowedFailures(spec_.failure_budget, p_.targets.size())) return;
    p_.state = RolloutState::kHalting;
    p_.paused_from.reset();
    p_.ending = RolloutEnding::kFailureBudget;
    MarkWaitingNotStarted();
    RolloutDecision d;
    d.kind = DecisionKind::kHalted;
    d.failed_deploys = p_.failed_deploys;
    d.wave = p_.current_wave;
    Decide(std::move(d));
  }

  Status Advance() {
    for (;;) {
      switch (p_.state) {
        case RolloutState::kPending: StartWave(0); continue;
        case RolloutState::kRunning: {
          SP_RETURN_IF_ERROR(StartDeploys());
          if (!WaveDone()) return Status::Ok();
          if (!FinishWave()) return Status::Ok();
          continue;
        }
        case RolloutState::kWaitingBetweenWaves:
          if (input_.now_ms < *p_.resume_at_ms) {
            out_.wake_at_ms = *p_.resume_at_ms;
            return Status::Ok();
          }
          p_.resume_at_ms.reset();
          StartWave(p_.current_wave + 1);
          continue;
        case RolloutState::kAwaitingApproval:
        case RolloutState::kPaused: return Status::Ok();
        case RolloutState::kHalting:
        case RolloutState::kAborting: {
          if (AnyInCurrentWave(TargetState::kDeploying)) return Status::Ok();
          if (p_.ending == RolloutEnding::kAbort && !p_.rollback_on_abort) {
            Finish(RolloutState::kAborted);
            return Status::Ok();
          }
          BeginRollback();
          continue;
        }
        case RolloutState::kRollingBack: {
          StartRollbacks();
          if (AnyInCurrentWave(TargetState::kRollbackWaiting) || AnyInCurrentWave(TargetState::kRollingBack)) {
            return Status::Ok();
          }
          Finish(p_.ending == RolloutEnding::kAbort ? RolloutState::kAborted : RolloutState::kFailed);
          return Status::Ok();
        }
        case RolloutState::kSucceeded:
        case RolloutState::kFailed:
        case RolloutState::kAborted: return Status::Ok();
      }
    }
  }

  bool AnyInCurrentWave(TargetState state) const {
    const WaveRange wave = Current();
    for (std::size_t i = wave.begin; i < wave.end; ++i) {
      if (p_.targets[i].state == state) return true;
    }
    return false;
  }
  bool WaveDone() const {
    return !out_.step_again && !AnyInCurrentWave(TargetState::kWaiting) && !AnyInCurrentWave(TargetState::kDeploying);
  }
  int InFlightInCurrentWave() const {
    const WaveRange wave = Current();
    int count = 0;
    for (std::size_t i = wave.begin; i < wave.end; ++i) count += InFlight(p_.targets[i].state) ? 1 : 0;
    return count;
  }

  // The current wave's waiting targets, in plan order, each at its turn: when a run slot and
  // a trigger are free. An ineligible store is skipped then and there, costing neither.
  Status StartDeploys() {
    const WaveRange wave = Current();
    int slots = spec_.max_concurrent - InFlightInCurrentWave();
    for (std::size_t i = wave.begin; i < wave.end && slots > 0 && budget_ > 0; ++i) {
      if (p_.targets[i].state != TargetState::kWaiting) continue;
      const StoreObservation* store = Observe(p_.targets[i]);
      if (store == nullptr) {  // a wave this step has just reached
        out_.step_again = true;
        return Status::Ok();
      }
      RolloutDecision d;
      d.store_id = p_.targets[i].store_id;
      d.target = i;
      d.wave = p_.current_wave;
      if (std::optional<SkipReason> reason = SkipReasonFor(*store, spec_.release)) {
        TargetProgress& target = Target(i);
        target.state = TargetState::kSkipped;
        target.skip_reason = reason;
        d.kind = DecisionKind::kSkipTarget;
        d.skip_reason = reason;
        Decide(std::move(d));
        continue;
      }
      TargetProgress& target = Target(i);
      target.state = TargetState::kDeploying;
      target.previous_release = store->last_known_good_release;
      d.kind = DecisionKind::kStartDeploy;
      d.release = spec_.release;
      Decide(std::move(d));
      --slots;
      --budget_;
    }
    return Status::Ok();
  }

  // The current wave is done. True when the rollout goes straight on to the next wave.
  bool FinishWave() {
    RolloutDecision finished;
    finished.kind = DecisionKind::kWaveFinished;
    finished.wave = p_.current_wave;
    Decide(std::move(finished));
    const int next = p_.current_wave + 1;
    if (static_cast<std::size_t>(next) == plan_.waves.size()) {
      Finish(RolloutState::kSucceeded);
      return false;
    }
    switch (spec_.between_waves) {
      case BetweenWaves::kNone: StartWave(next); return true;
      case BetweenWaves::kPause: {
        p_.state = RolloutState::kWaitingBetweenWaves;
        p_.resume_at_ms = input_.now_ms + spec_.pause_ms;
        out_.wake_at_ms = p_.resume_at_ms;
        RolloutDecision wait;
        wait.kind = DecisionKind::kWaitUntil;
        wait.wave = next;
        wait.until_ms = *p_.resume_at_ms;
        Decide(std::move(wait));
        return false;
      }
      case BetweenWaves::kApproval: {
        p_.state = RolloutState::kAwaitingApproval;
        RolloutDecision await;
        await.kind = DecisionKind::kAwaitApproval;
        await.wave = next;
        Decide(std::move(await));
        return false;
      }
    }
    return false;
  }

  void BeginRollback() {
    const WaveRange wave = Current();
    for (std::size_t i = wave.begin; i < wave.end; ++i) {
      if (!WantsRollback(p_.targets[i])) continue;
      TargetProgress& target = Target(i);
      target.state = target.previous_release ? TargetState::kRollbackWaiting : TargetState::kNotRolledBack;
    }
    p_.state = RolloutState::kRollingBack;
  }

  // Rollbacks are remediation: deploy windows and the agent's health do not hold them back,
  // but another active run on the store does (the store takes one run at a time).
  void StartRollbacks() {
    const WaveRange wave = Current();
    int slots = spec_.max_concurrent - InFlightInCurrentWave();
    for (std::size_t i = wave.begin; i < wave.end && slots > 0 && budget_ > 0; ++i) {
      if (p_.targets[i].state != TargetState::kRollbackWaiting) continue;
      const StoreObservation* store = Observe(p_.targets[i]);
      if (store == nullptr) {  // the rollback began in this step; its stores come next step
        out_.step_again = true;
        return;
      }
      if (store->other_run_active) continue;
      TargetProgress& target = Target(i);
      if (store->state != StoreState::kActive) {
        target.state = TargetState::kRollbackFailed;
        continue;
      }
      target.state = TargetState::kRollingBack;
      RolloutDecision d;
      d.kind = DecisionKind::kStartRollback;
      d.store_id = target.store_id;
      d.target = i;
      d.wave = p_.current_wave;
      d.release = target.previous_release;
      Decide(std::move(d));
      --slots;
      --budget_;
    }
  }

  const RolloutSpec& spec_;
  const RolloutPlan& plan_;
  const StepInput& input_;
  StepResult& out_;
  RolloutProgress& p_;
  int budget_;
  std::vector<std::size_t> changed_;
};

template <typename Enum>
std::optional<Enum> ParseByName(std::string_view text, const std::vector<Enum>& all) {
  for (Enum value : all) {
    if (ToString(value) == text) return value;
  }
  return std::nullopt;
}

}  // namespace

// ---- Names --------------------------------------------------------------------------------

std::string_view ToString(BetweenWaves between) {
  switch (between) {
    case BetweenWaves::kNone: return "none";
    case BetweenWaves::kPause: return "pause";
    case BetweenWaves::kApproval: return "approval";
  }
  return "none";
}

std::optional<BetweenWaves> ParseBetweenWaves(std::string_view text) {
  return ParseByName(text,
                     std::vector<BetweenWaves>{BetweenWaves::kNone, BetweenWaves::kPause, BetweenWaves::kApproval});
}

std::string_view ToString(RolloutState state) {
  switch (state) {
    case RolloutState::kPending: return "pending";
    case RolloutState::kRunning: return "running";
    case RolloutState::kWaitingBetweenWaves: return "waiting_between_waves";
    case RolloutState::kAwaitingApproval: return "awaiting_approval";
    case RolloutState::kPaused: return "paused";
    case RolloutState::kHalting: return "halting";
    case RolloutState::kAborting: return "aborting";
    case RolloutState::kRollingBack: return "rolling_back";
    case RolloutState::kSucceeded: return "succeeded";
    case RolloutState::kFailed: return "failed";
    case RolloutState::kAborted: return "aborted";
  }
  return "pending";
}

std::optional<RolloutState> ParseRolloutState(std::string_view text) { return ParseByName(text, AllRolloutStates()); }

const std::vector<RolloutState>& AllRolloutStates() {
  static const std::vector<RolloutState> kAll = {
      RolloutState::kPending,          RolloutState::kRunning,     RolloutState::kWaitingBetweenWaves,
      RolloutState::kAwaitingApproval, RolloutState::kPaused,      RolloutState::kHalting,
      RolloutState::kAborting,         RolloutState::kRollingBack, RolloutState::kSucceeded,
      RolloutState::kFailed,           RolloutState::kAborted,
  };
  return kAll;
}

bool IsFinal(RolloutState state) {
  return state == RolloutState::kSucceeded || state == RolloutState::kFailed || state == RolloutState::kAborted;
}

std::string_view ToString(TargetState state) {
  switch (state) {
    case TargetState::kWaiting: return "waiting";
    case TargetState::kDeploying: return "deploying";
    case TargetState::kSucceeded: return "succeeded";
    case TargetState::kFailed: return "failed";
    case TargetState::kSkipped: return "skipped";
    case TargetState::kRollbackWaiting: return "rollback_waiting";
    case TargetState::kRollingBack: return "rolling_back";
    case TargetState::kRolledBack: return "rolled_back";
    case TargetState::kRollbackFailed: return "rollback_failed";
    case TargetState::kNotRolledBack: return "not_rolled_back";
    case TargetState::kNotStarted: return "not_started";
  }
  return "waiting";
}

std::optional<TargetState> ParseTargetState(std::string_view text) { return ParseByName(text, AllTargetStates()); }

const std::vector<TargetState>& AllTargetStates() {
  static const std::vector<TargetState> kAll = {
      TargetState::kWaiting,        TargetState::kDeploying,       TargetState::kSucceeded,   TargetState::kFailed,
      TargetState::kSkipped,        TargetState::kRollbackWaiting, TargetState::kRollingBack, TargetState::kRolledBack,
      TargetState::kRollbackFailed, TargetState::kNotRolledBack,   TargetState::kNotStarted,
  };
  return kAll;
}

std::string_view ToString(SkipReason reason) {
  switch (reason) {
    case SkipReason::kAgentOffline: return "agent_offline";
    case SkipReason::kUnhealthy: return "unhealthy";
    case SkipReason::kActiveRun: return "active_run";
    case SkipReason::kNotActive: return "not_active";
    case SkipReason::kWindowClosed: return "window_closed";
    case SkipReason::kAlreadyAtRelease: return "already_at_release";
  }
  return "not_active";
}

std::optional<SkipReason> ParseSkipReason(std::string_view text) { return ParseByName(text, AllSkipReasons()); }

const std::vector<SkipReason>& AllSkipReasons() {
  static const std::vector<SkipReason> kAll = {SkipReason::kAgentOffline, SkipReason::kUnhealthy,
                                               SkipReason::kActiveRun,    SkipReason::kNotActive,
                                               SkipReason::kWindowClosed, SkipReason::kAlreadyAtRelease};
  return kAll;
}

std::string_view ToString(RolloutCommandKind kind) {
  switch (kind) {
    case RolloutCommandKind::kPause: return "pause";
    case RolloutCommandKind::kResume: return "resume";
    case RolloutCommandKind::kAbort: return "abort";
    case RolloutCommandKind::kApproveWave: return "approve_wave";
  }
  return "pause";
}

std::string_view ToString(DecisionKind kind) {
  switch (kind) {
    case DecisionKind::kStartDeploy: return "start_deploy";
    case DecisionKind::kStartRollback: return "start_rollback";
    case DecisionKind::kSkipTarget: return "skip_target";
    case DecisionKind::kWaveStarted: return "wave_started";
    case DecisionKind::kWaveFinished: return "wave_finished";
    case DecisionKind::kWaitUntil: return "wait_until";
    case DecisionKind::kAwaitApproval: return "await_approval";
    case DecisionKind::kHalted: return "halted";
    case DecisionKind::kRolloutFinished: return "rollout_finished";
  }
  return "start_deploy";
}

// ---- Spec ---------------------------------------------------------------------------------

Status ValidateRolloutSpec(const RolloutSpec& spec, const EnvironmentSet& environments) {
  SP_RETURN_IF_ERROR(ValidateReleaseId(spec.release));
  if (Status s = ValidateEnvironment(spec.selector.environment, environments); !s) {
    return Error::Invalid("selector." + s.error().message, "selector.environment");
  }
  if (Result<LabelSelector> labels = LabelSelector::Parse(spec.selector.labels); !labels) {
    return Error::Invalid(labels.error().message, "selector.labels");
  }
  const WavePlanSpec& waves = spec.waves;
  if (waves.canary_size < 1) return Error::Invalid("waves.canary_size must be at least 1", "waves.canary_size");
  if (waves.growth_factor.has_value() == waves.wave_size.has_value()) {
    return Error::Invalid("waves needs exactly one of growth_factor and wave_size", "waves.growth_factor");
  }
  if (waves.growth_factor) {
    const double f = *waves.growth_factor;
    if (!std::isfinite(f) || f <= 1.0 || f > kMaxGrowthFactor) {
      return Error::Invalid("waves.growth_factor must be greater than 1 and at most 100", "waves.growth_factor");
    }
  }
  if (waves.wave_size && *waves.wave_size < 1) {
    return Error::Invalid("waves.wave_size must be at least 1", "waves.wave_size");
  }
  if (spec.max_concurrent < 1 || spec.max_concurrent > kMaxConcurrentRuns) {
    return Error::Invalid("max_concurrent must be 1 to " + std::to_string(kMaxConcurrentRuns), "max_concurrent");
  }
  const FailureBudget& budget = spec.failure_budget;
  if (budget.max_failures.has_value() == budget.max_failure_percent.has_value()) {
    return Error::Invalid("failure_budget needs exactly one of max_failures and max_failure_percent", "failure_budget");
  }
  if (budget.max_failures && *budget.max_failures < 0) {
    return Error::Invalid("failure_budget.max_failures must be 0 or more", "failure_budget.max_failures");
  }
  if (budget.max_failure_percent && (*budget.max_failure_percent < 0 || *budget.max_failure_percent > 100)) {
    return Error::Invalid("failure_budget.max_failure_percent must be 0 to 100", "failure_budget.max_failure_percent");
  }
  if (spec.between_waves == BetweenWaves::kPause) {
    if (spec.pause_ms < 1 || spec.pause_ms > kMaxPauseMs) {
      return Error::Invalid("pause_ms must be 1 to " + std::to_string(kMaxPauseMs) + " when between_waves is pause",
                            "pause_ms");
    }
  } else if (spec.pause_ms != 0) {
    return Error::Invalid("pause_ms is only for between_waves pause", "pause_ms");
  }
  return Status::Ok();
}

bool MatchesRolloutSelector(const RolloutSelector& selector, const LabelSelector& labels, const Store& store) {
  if (store.state == StoreState::kDecommissioned) return false;
  if (store.environment != selector.environment) return false;
  if (selector.isolation_mode && store.isolation_mode != *selector.isolation_mode) return false;
  return labels.Matches(store.labels);
}

Result<std::vector<std::string>> SelectRolloutStores(const RolloutSelector& selector,
                                                     const std::vector<Store>& stores) {
  Result<LabelSelector> labels = LabelSelector::Parse(selector.labels);
  if (!labels) return Error::Invalid(labels.error().message, "selector.labels");
  std::vector<std::string> ids;
  for (const Store& store : stores) {
    if (MatchesRolloutSelector(selector, *labels, store)) ids.push_back(store.id);
  }
  return ids;
}

int AllowedFailures(const FailureBudget& budget, std::size_t planned) {
  if (budget.max_failures) return *budget.max_failures;
  const auto percent = static_cast<std::int64_t>(budget.max_failure_percent.value_or(0));
  return static_cast<int>(static_cast<std::int64_t>(planned) * percent / 100);
}

// ---- Plan ---------------------------------------------------------------------------------

std::size_t RolloutPlan::StoreCount() const {
  std::size_t count = 0;
  for (const auto& wave : waves) count += wave.size();
  return count;
}

Result<RolloutPlan> PlanWaves(std::vector<std::string> store_ids, const WavePlanSpec& waves) {
  if (store_ids.empty()) return Error::Invalid("the rollout matches no stores", "stores");
  std::sort(store_ids.begin(), store_ids.end());
  if (auto dup = std::adjacent_find(store_ids.begin(), store_ids.end()); dup != store_ids.end()) {
    return Error::Invalid("store " + Quoted(*dup) + " is listed twice", "stores");
  }
  RolloutPlan plan;
  const std::size_t total = store_ids.size();
  std::size_t next = 0;
  std::size_t size = std::min<std::size_t>(static_cast<std::size_t>(std::max(waves.canary_size, 1)), total);
  while (next < total) {
    const std::size_t left = total - next;
    size = std::min(size, left);
    std::vector<std::string>& wave = plan.waves.emplace_back();
    wave.reserve(size);
    for (std::size_t i = 0; i < size; ++i) wave.push_back(std::move(store_ids[next + i]));
    next += size;
    if (waves.wave_size) {
      size = static_cast<std::size_t>(std::max(*waves.wave_size, 1));
    } else {
      const double grown = std::ceil(static_cast<double>(size) * waves.growth_factor.value_or(2.0));
      // Capped before the conversion, so a huge factor cannot overflow.
      size = grown >= static_cast<double>(total) ? total : std::max(static_cast<std::size_t>(grown), size + 1);
    }
  }
  return plan;
}

// ---- Progress -----------------------------------------------------------------------------

RolloutProgress NewRolloutProgress(const RolloutPlan& plan) {
  RolloutProgress progress;
  progress.targets.reserve(plan.StoreCount());
  for (std::size_t w = 0; w < plan.waves.size(); ++w) {
    for (const std::string& id : plan.waves[w]) {
      TargetProgress& target = progress.targets.emplace_back();
      target.store_id = id;
      target.wave = static_cast<int>(w);
    }
  }
  return progress;
}

Status CheckRolloutCommand(const RolloutPlan& plan, const RolloutProgress& progress, const RolloutCommand& command) {
  const RolloutState state = progress.state;
  const std::string in = "the rollout is " + std::string(ToString(state));
  switch (command.kind) {
    case RolloutCommandKind::kPause:
      if (state == RolloutState::kRunning || state == RolloutState::kWaitingBetweenWaves ||
          state == RolloutState::kAwaitingApproval) {
        return Status::Ok();
      }
      return Conflict(in + "; only a running, waiting or awaiting rollout can be paused");
    case RolloutCommandKind::kResume:
      if (state == RolloutState::kPaused) return Status::Ok();
      return Conflict(in + "; only a paused rollout can be resumed");
    case RolloutCommandKind::kAbort:
      if (state == RolloutState::kHalting || state == RolloutState::kRollingBack) {
        return Conflict(in + "; it ends by itself once its runs and rollbacks are done");
      }
      if (state == RolloutState::kAborting || IsFinal(state)) return Conflict(in + "; there is nothing to abort");
      return Status::Ok();
    case RolloutCommandKind::kApproveWave: {
      if (state != RolloutState::kAwaitingApproval) return Conflict(in + "; no wave is awaiting approval");
      const int next = progress.current_wave + 1;
      if (command.wave != next || static_cast<std::size_t>(next) >= plan.waves.size()) {
        return Conflict("the wave awaiting approval is " + std::to_string(next) + ", not " +
                        std::to_string(command.wave));
      }
      return Status::Ok();
    }
  }
  return Conflict("unknown command");
}

std::vector<std::string> StoresToObserve(const RolloutPlan& plan, const RolloutProgress& progress) {
  std::vector<std::string> ids;
  if (progress.targets.size() != plan.StoreCount() || plan.waves.empty()) return ids;
  if (progress.current_wave < 0 || static_cast<std::size_t>(progress.current_wave) >= plan.waves.size()) return ids;
  const RolloutState s = progress.state;
  const bool deploying = s == RolloutState::kPending || s == RolloutState::kRunning || s == RolloutState::kPaused;
  const bool ending = s == RolloutState::kHalting || s == RolloutState::kAborting || s == RolloutState::kRollingBack;
  if (!deploying && !ending) return ids;
  const WaveRange wave = RangeOf(plan, progress.current_wave);
  for (std::size_t i = wave.begin; i < wave.end; ++i) {
    const TargetProgress& target = progress.targets[i];
    bool wanted = InFlight(target.state);
    if (deploying) wanted = wanted || target.state == TargetState::kWaiting;
    if (ending) wanted = wanted || target.state == TargetState::kRollbackWaiting || WantsRollback(target);
    if (wanted) ids.push_back(target.store_id);
  }
  return ids;
}

// ---- Step ---------------------------------------------------------------------------------

Result<StepResult> Step(const RolloutSpec& spec, const RolloutPlan& plan, RolloutProgress progress,
                        const StepInput& input) {
  if (plan.waves.empty() || progress.targets.size() != plan.StoreCount()) {
    return Error::Invalid("the progress does not fit the plan", "progress");
  }
  if (progress.current_wave < 0 || static_cast<std::size_t>(progress.current_wave) >= plan.waves.size()) {
    return Error::Invalid(
        "the progress names wave " + std::to_string(progress.current_wave) + " of " + std::to_string(plan.waves.size()),
        "progress.current_wave");
  }
  if (progress.state == RolloutState::kWaitingBetweenWaves && !progress.resume_at_ms) {
    return Error::Invalid("a rollout waiting between waves needs resume_at_ms", "progress.resume_at_ms");
  }
  if (progress.state == RolloutState::kPaused && !progress.paused_from) {
    return Error::Invalid("a paused rollout needs paused_from", "progress.paused_from");
  }
  for (const std::string& id : StoresToObserve(plan, progress)) {
    if (input.observations.count(id) == 0) {
      return Error::Invalid("no observation for store " + Quoted(id), "observations");
    }
  }
  StepResult out;
  out.progress = std::move(progress);
  Stepper stepper(spec, plan, input, out);
  SP_RETURN_IF_ERROR(stepper.Run());
  return out;
}

namespace {

Result<TargetProgress*> StartedTarget(RolloutProgress& progress, const RolloutDecision& start) {
  if (start.kind != DecisionKind::kStartDeploy && start.kind != DecisionKind::kStartRollback) {
    return Error::Invalid("the decision is not a start", "decision");
  }
  if (start.target >= progress.targets.size() || progress.targets[start.target].store_id != start.store_id) {
    return Error::Invalid("the decision names no target of this rollout", "decision");
  }
  TargetProgress& target = progress.targets[start.target];
  const bool deploy = start.kind == DecisionKind::kStartDeploy;
  const TargetState expected = deploy ? TargetState::kDeploying : TargetState::kRollingBack;
  const std::optional<std::string>& run_id = deploy ? target.deploy_run_id : target.rollback_run_id;
  if (target.state != expected || run_id) {
    return Error::Invalid("target " + Quoted(target.store_id) + " is " + std::string(ToString(target.state)) +
                              (run_id ? " with a run already" : ""),
                          "decision");
  }
  return &target;
}

}  // namespace

Status AttachRun(RolloutProgress& progress, const RolloutDecision& start, std::string run_id) {
  Result<TargetProgress*> target = StartedTarget(progress, start);
  if (!target) return target.error();
  if (run_id.empty()) return Error::Invalid("run id must not be empty", "run_id");
  if (start.kind == DecisionKind::kStartDeploy) {
    (*target)->deploy_run_id = std::move(run_id);
  } else {
    (*target)->rollback_run_id = std::move(run_id);
  }
  return Status::Ok();
}

Status RecordRefusedStart(RolloutProgress& progress, const RolloutDecision& start, SkipReason reason) {
  Result<TargetProgress*> target = StartedTarget(progress, start);
  if (!target) return target.error();
  if (start.kind == DecisionKind::kStartDeploy) {
    (*target)->state = TargetState::kSkipped;
    (*target)->skip_reason = reason;
    (*target)->previous_release.reset();
  } else {
    (*target)->state = TargetState::kRollbackFailed;
  }
  return Status::Ok();
}

RolloutCounts CountTargets(const RolloutProgress& progress) {
  RolloutCounts counts;
  for (const TargetProgress& target : progress.targets) {
    ++counts.planned;
    switch (target.state) {
      case TargetState::kWaiting: ++counts.waiting; break;
      case TargetState::kDeploying:
      case TargetState::kRollbackWaiting:
      case TargetState::kRollingBack: ++counts.in_flight; break;
      case TargetState::kSucceeded: ++counts.succeeded; break;
      case TargetState::kFailed: ++counts.failed; break;
      case TargetState::kSkipped: ++counts.skipped; break;
      case TargetState::kRolledBack: ++counts.rolled_back; break;
      case TargetState::kRollbackFailed: ++counts.rollback_failed; break;
      case TargetState::kNotRolledBack: ++counts.not_rolled_back; break;
      case TargetState::kNotStarted: ++counts.not_started; break;
    }
  }
  return counts;
}

}  // namespace storeplane::core
