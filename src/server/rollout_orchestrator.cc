#include "server/rollout_orchestrator.h"

#include <algorithm>
#include <chrono>
#include <set>

#include "core/deploy_window.h"
#include "server/app.h"
#include "server/handler_support.h"
#include "server/leadership.h"
#include "server/logging.h"
#include "server/provider_pacing.h"
#include "server/run_requests.h"

namespace storeplane::server {
namespace {

// The deploy-starting states: a closed window or an empty bucket holds these back.
bool StartsDeploys(core::RolloutState state) {
  return state == core::RolloutState::kPending || state == core::RolloutState::kRunning ||
         state == core::RolloutState::kWaitingBetweenWaves || state == core::RolloutState::kAwaitingApproval;
}

// A run request the database refused at the last moment, as the reason the target is skipped.
core::SkipReason SkipReasonOf(const Error& error) {
  if (error.code == ErrorCode::kConflict && error.message.find("active") != std::string::npos) {
    return core::SkipReason::kActiveRun;
  }
  return core::SkipReason::kNotActive;
}

}  // namespace

RolloutOrchestrator::RolloutOrchestrator(Dependencies deps) : deps_(std::move(deps)) {}

RolloutOrchestrator::~RolloutOrchestrator() { Stop(); }

void RolloutOrchestrator::SetLeadership(Leadership* leadership) {
  if (leadership_ != nullptr && listener_id_ != 0) leadership_->RemoveListener(listener_id_);
  listener_id_ = 0;
  leadership_ = leadership;
  term_changed_ = true;
  if (leadership_ == nullptr) return;
  listener_id_ = leadership_->AddListener([this](bool leader) {
    term_changed_ = true;  // the worker drops the cache at its next pass (it owns it)
    if (leader) Kick();    // a new leader starts within a pass
  });
}

bool RolloutOrchestrator::StillLeads(const std::optional<db::Fence>& fence) const {
  if (leadership_ == nullptr) return true;
  auto now = leadership_->fence();
  return now && fence && now->token == fence->token;
}

void RolloutOrchestrator::DropTermState() {
  loaded_.clear();
  loaded_token_.reset();
  std::lock_guard lock(mu_);
  waiting_.clear();
  next_wake_ms_.reset();
}

void RolloutOrchestrator::Start() {
  std::lock_guard lock(mu_);
  if (!worker_.joinable() && !stopping_) worker_ = std::thread([this] { Main(); });
}

void RolloutOrchestrator::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
  if (leadership_ != nullptr && listener_id_ != 0) leadership_->RemoveListener(listener_id_);
  listener_id_ = 0;
}

void RolloutOrchestrator::Kick() {
  {
    std::lock_guard lock(mu_);
    kicked_ = true;
  }
  cv_.notify_all();
}

std::optional<std::int64_t> RolloutOrchestrator::next_wake_ms() const {
  std::lock_guard lock(mu_);
  return next_wake_ms_;
}

std::optional<RolloutWait> RolloutOrchestrator::WaitingFor(const std::string& rollout_id) const {
  std::lock_guard lock(mu_);
  auto it = waiting_.find(rollout_id);
  if (it == waiting_.end()) return std::nullopt;
  return it->second;
}

void RolloutOrchestrator::Main() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    auto wait = std::chrono::milliseconds(1000);
    if (next_wake_ms_) {
      const auto until = *next_wake_ms_ - deps_.now_ms();
      wait = std::chrono::milliseconds(std::clamp<std::int64_t>(until, 0, 1000));
    }
    cv_.wait_for(lock, wait, [this] { return stopping_ || kicked_; });
    if (stopping_) break;
    kicked_ = false;
    lock.unlock();
    PassOnce();
    lock.lock();
  }
}

int RolloutOrchestrator::PassOnce() {
  std::optional<db::Fence> fence;
  if (leadership_ != nullptr) {
    fence = leadership_->fence();
    if (!fence) {
      DropTermState();
      return 0;
    }
  }
  const std::int64_t token = fence ? fence->token : 0;
  if (term_changed_.exchange(false) || loaded_token_ != token) DropTermState();
  loaded_token_ = token;

  auto active = deps_.repo.ListActiveRollouts();
  if (!active.ok()) {
    log::Error("cannot read the active rollouts", {{"detail", active.error().message}});
    return 0;
  }
  {
    std::lock_guard lock(mu_);
    next_wake_ms_.reset();
  }
  std::set<std::string> live;
  int steps = 0;
  for (const auto& listed : *active) {
    live.insert(listed.id);
    db::RolloutRecord rollout = listed;
    // A rollout is stepped until it has no news; the bound only guards against a bug.
    for (int round = 0; round < 10'000; ++round) {
      if (!StillLeads(fence)) {
        // The term ended (its lease ran out or a step was refused for its fence): stop now;
        // another replica may lead already.
        DropTermState();
        return steps;
      }
      auto again = StepRollout(rollout, fence);
      if (!again.ok()) {
        log::Error("rollout step failed", {{"rollout", rollout.id}, {"detail", again.error().message}});
        loaded_.erase(rollout.id);
        break;
      }
      if (!*again) break;
      ++steps;
      auto reread = deps_.repo.GetRollout(rollout.id);
      if (!reread.ok()) break;
      rollout = std::move(*reread);
    }
  }
  // Forget what finished rollouts left behind.
  for (auto it = loaded_.begin(); it != loaded_.end();)
    it = live.contains(it->first) ? std::next(it) : loaded_.erase(it);
  std::lock_guard lock(mu_);
  for (auto it = waiting_.begin(); it != waiting_.end();)
    it = live.contains(it->first) ? std::next(it) : waiting_.erase(it);
  return steps;
}

Result<RolloutOrchestrator::Loaded*> RolloutOrchestrator::Load(const db::RolloutRecord& rollout) {
  auto cached = loaded_.find(rollout.id);
  if (cached != loaded_.end() && cached->second.version == rollout.version) return &cached->second;
  Loaded loaded;
  auto spec = SpecOf(rollout);
  if (!spec.ok()) return spec.error();
  auto plan = PlanOf(rollout);
  if (!plan.ok()) return plan.error();
  auto targets = deps_.repo.ListRolloutTargets(rollout.id, {});
  if (!targets.ok()) return targets.error();
  auto progress = ProgressOf(rollout, *targets);
  if (!progress.ok()) return progress.error();
  loaded.version = rollout.version;
  loaded.spec = std::move(*spec);
  loaded.plan = std::move(*plan);
  loaded.progress = std::move(*progress);
  auto& slot = loaded_[rollout.id];
  slot = std::move(loaded);
  return &slot;
}

Result<bool> RolloutOrchestrator::StepRollout(const db::RolloutRecord& rollout, const std::optional<db::Fence>& fence) {
  auto loaded = Load(rollout);
  if (!loaded.ok()) return loaded.error();
  Loaded& state = **loaded;
  const auto now = deps_.now_ms();
  const std::string& environment = rollout.environment;

  auto commands = deps_.repo.ListRolloutCommands(rollout.id);
  if (!commands.ok()) return commands.error();

  core::StepInput input;
  input.now_ms = now;
  std::int64_t consumed = 0;
  for (const auto& c : *commands) {
    core::RolloutCommand command;
    if (c.kind == "pause")
      command.kind = core::RolloutCommandKind::kPause;
    else if (c.kind == "resume")
      command.kind = core::RolloutCommandKind::kResume;
    else if (c.kind == "abort")
      command.kind = core::RolloutCommandKind::kAbort;
    else if (c.kind == "approve_wave")
      command.kind = core::RolloutCommandKind::kApproveWave;
    else
      continue;
    command.wave = c.wave;
    command.rollback = c.rollback;
    input.commands.push_back(command);
    consumed = std::max(consumed, c.seq);
  }

  // Observe the stores the core asks about: one read of the active runs, then each store.
  const auto names = core::StoresToObserve(state.plan, state.progress);
  if (!names.empty()) {
    auto active_runs = deps_.repo.ListActiveRuns();
    if (!active_runs.ok()) return active_runs.error();
    std::map<std::string, const db::PipelineRunRecord*> active_by_store;
    for (const auto& run : *active_runs) active_by_store[run.store_id] = &run;
    std::map<std::string, const core::TargetProgress*> by_store;
    const auto& targets = state.progress.targets;
    for (const auto& t : targets) by_store.emplace(t.store_id, &t);
    for (const auto& name : names) {
      core::StoreObservation o;
      auto store = deps_.repo.GetStore(name);
      if (store.ok()) {
        o.state = store->state;
        o.last_known_good_release = store->last_known_good_release;
      } else if (store.error().code == ErrorCode::kNotFound) {
        o.state = core::StoreState::kDecommissioned;
      } else {
        return store.error();
      }
      const auto agent = deps_.agents(name);
      o.availability = agent.availability;
      o.health = agent.health;
      o.current_release = agent.release;
      const auto* target = by_store.at(name);
      std::optional<std::string> attached;
      if (target->state == core::TargetState::kDeploying) attached = target->deploy_run_id;
      if (target->state == core::TargetState::kRollingBack) attached = target->rollback_run_id;
      auto active = active_by_store.find(name);
      o.other_run_active = active != active_by_store.end() && (!attached || active->second->id != *attached);
      if (attached) {
        const db::PipelineRunRecord* run =
            active != active_by_store.end() && active->second->id == *attached ? active->second : nullptr;
        std::optional<db::PipelineRunRecord> loaded_run;
        if (run == nullptr) {
          auto got = deps_.repo.GetRun(*attached);
          if (!got.ok()) return got.error();
          loaded_run = std::move(*got);
          run = &*loaded_run;
        }
        const auto kind = core::ParseRunKind(run->kind);
        const auto run_state = core::ParseRunState(run->state);
        if (!kind || !run_state) return Error::Internal("run " + run->id + " is stored in an unknown shape");
        o.run = core::ObservedRun{*kind, *run_state};
      }
      input.observations.emplace(name, std::move(o));
    }
  }

  // How many runs may start now: none for deploys while the window is closed; the provider's
  // tokens, less the triggers already waiting in the outbox, otherwise.
  std::optional<RolloutWait> waiting;
  int budget = ProviderPacer::kUnlimited;
  const bool deploying = StartsDeploys(state.progress.state);
  const auto policy = deps_.policy.Get();
  if (deploying) {
    const auto window = core::DecideWindow(policy->windows, "deploy.request", environment, now);
    if (!window.open) {
      budget = 0;
      waiting = RolloutWait{"window_closed", window.next_open_at};
    }
  }
  if (budget > 0 && deps_.pacer != nullptr) {
    const auto kind = deploying ? core::RunKind::kDeploy : core::RunKind::kRollback;
    auto provider = RouteRun(deps_.config.cicd, environment, kind);
    if (provider.ok()) {
      int available = deps_.pacer->Available(*provider, now);
      if (available < ProviderPacer::kUnlimited) {
        auto pending = deps_.repo.CountPendingOutbox();
        if (!pending.ok()) return pending.error();
        available = static_cast<int>(std::max<std::int64_t>(0, available - *pending));
        if (available == 0) waiting = RolloutWait{"provider_pacing", now + deps_.pacer->WaitMs(*provider, now)};
      }
      budget = available;
    }
  }
  input.trigger_budget = budget;

  auto stepped = core::Step(state.spec, state.plan, state.progress, input);
  if (!stepped.ok()) return stepped.error();
  auto& result = *stepped;
  for (const auto& refused : result.refused_commands) {
    log::Warn("rollout command refused", {{"rollout", rollout.id},
                                          {"command", std::string(core::ToString(refused.command.kind))},
                                          {"detail", refused.error.message}});
  }

  // Only a step that started nothing, although it could have, is waiting for the bucket or
  // the window.
  bool started = false;
  for (const auto& d : result.decisions) {
    started = started || d.kind == core::DecisionKind::kStartDeploy || d.kind == core::DecisionKind::kStartRollback;
  }
  {
    std::lock_guard lock(mu_);
    const bool has_waiting =
        std::any_of(state.progress.targets.begin(), state.progress.targets.end(), [](const core::TargetProgress& t) {
          return t.state == core::TargetState::kWaiting || t.state == core::TargetState::kRollbackWaiting;
        });
    if (waiting && !started && has_waiting) {
      waiting_[rollout.id] = *waiting;
    } else {
      waiting_.erase(rollout.id);
    }
    auto wake = result.wake_at_ms;
    if (waiting && waiting->until_ms && has_waiting) {
      wake = wake ? std::min(*wake, *waiting->until_ms) : *waiting->until_ms;
    }
    if (wake && (!next_wake_ms_ || *wake < *next_wake_ms_)) next_wake_ms_ = wake;
  }

  const bool news = !result.decisions.empty() || !result.changed_targets.empty() || consumed > 0 ||
                    !(result.progress == state.progress);
  if (!news) return result.step_again;

  // Record the step: the runs it decided, the targets, the progress, the consumed commands.
  db::WriteBatch batch;
  batch.fence = fence;
  std::set<std::size_t> changed(result.changed_targets.begin(), result.changed_targets.end());
  int runs = 0;
  for (const auto& d : result.decisions) {
    if (d.kind != core::DecisionKind::kStartDeploy && d.kind != core::DecisionKind::kStartRollback) continue;
    const bool deploy = d.kind == core::DecisionKind::kStartDeploy;
    auto store = deps_.repo.GetStore(d.store_id);
    RunRequest request;
    request.kind = deploy ? core::RunKind::kDeploy : core::RunKind::kRollback;
    request.release = d.release;
    // A rollback to the store's last known good release is a plain rollback (the run
    // coordinator's own kind); another release must have been verified on the store.
    if (!deploy && store.ok() && d.release == store->last_known_good_release) request.release.reset();
    auto plan = [&]() -> Result<RunPlan> {
      if (!store.ok()) return store.error();
      RunPlanInput plan_input;
      plan_input.request = &request;
      plan_input.store = &*store;
      plan_input.requested_by = rollout.created_by;
      plan_input.request_id = rollout.request_id;
      plan_input.reason = "rollout " + rollout.id + ", wave " + std::to_string(d.wave) + (deploy ? "" : ": rollback");
      plan_input.now_ms = now;
      return PlanRun(plan_input, deps_.config.cicd, deps_.repo);
    }();
    changed.insert(d.target);
    if (!plan.ok()) {
      SP_RETURN_IF_ERROR(core::RecordRefusedStart(result.progress, d, SkipReasonOf(plan.error())));
      batch.audit.push_back(SystemAuditEntry(now, std::string(ActionOfRunKind(request.kind)), "store/" + d.store_id,
                                             "error:refused",
                                             {{"rollout", rollout.id}, {"reason", plan.error().message}}));
      continue;
    }
    for (auto& effect : plan->effects) {
      if (auto* insert = std::get_if<db::InsertRunEffect>(&effect)) insert->run.rollout_id = rollout.id;
      batch.effects.push_back(std::move(effect));
    }
    SP_RETURN_IF_ERROR(core::AttachRun(result.progress, d, plan->run.id));
    batch.audit.push_back(SystemAuditEntry(now, std::string(ActionOfRunKind(request.kind)), "store/" + d.store_id, "ok",
                                           {{"rollout", rollout.id},
                                            {"run", plan->run.id},
                                            {"release", plan->run.release},
                                            {"wave", std::to_string(d.wave)}}));
    ++runs;
  }

  db::RolloutRecord updated = rollout;
  StoreProgress(result.progress, state.plan, updated);
  updated.version = rollout.version + 1;
  updated.updated_at_ms = now;
  if (core::IsFinal(result.progress.state) && !updated.finished_at_ms) updated.finished_at_ms = now;
  db::UpdateRolloutEffect update;
  update.expected_version = rollout.version;
  update.consumed_commands_through = consumed;
  for (auto i : changed)
    update.changed_targets.push_back(TargetRecordOf(rollout.id, i, result.progress.targets[i], now));
  update.updated = updated;
  batch.effects.insert(batch.effects.begin(), db::UpdateRolloutEffect{std::move(update)});

  std::map<std::string, std::string> params = {{"rollout", rollout.id},
                                               {"from", rollout.state},
                                               {"to", updated.state},
                                               {"wave", std::to_string(updated.current_wave)},
                                               {"runs", std::to_string(runs)}};
  for (const auto& d : result.decisions) {
    if (d.kind == core::DecisionKind::kHalted) params["halted"] = "failed_deploys=" + std::to_string(d.failed_deploys);
  }
  if (!result.refused_commands.empty()) params["refused_commands"] = std::to_string(result.refused_commands.size());
  batch.audit.insert(batch.audit.begin(),
                     SystemAuditEntry(now, "rollout.step", "rollout/" + rollout.id, "ok", std::move(params)));
  auto written = deps_.repo.Apply(batch);
  if (!written.ok()) {
    // Nothing of the step was recorded: the next pass decides again from the stored progress.
    loaded_.erase(rollout.id);
    if (fence && leadership_ != nullptr && IsFenceRefusal(written.error())) leadership_->LostLeadership();
    return written.error();
  }
  state.version = updated.version;
  state.progress = std::move(result.progress);
  if (runs > 0 && deps_.on_runs_recorded) deps_.on_runs_recorded();
  if (updated.state != rollout.state) {
    log::Info("rollout moved", {{"rollout", rollout.id}, {"from", rollout.state}, {"to", updated.state}});
  }
  return true;
}

}  // namespace storeplane::server
