#include "server/run_coordinator.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>

#include "core/lifecycle.h"
#include "server/handler_support.h"
#include "server/leadership.h"
#include "server/logging.h"
#include "server/provider_pacing.h"
#include "server/run_requests.h"

namespace storeplane::server {
namespace {

Result<std::string> ReadSecret(const std::string& file, const std::string& env, const std::string& what) {
  if (!file.empty()) {
    std::ifstream in(file);
    if (!in) return Error::Invalid("cannot read " + what + " file " + file);
    std::string text;
    std::getline(in, text);
    while (!text.empty() && (text.back() == '\r' || text.back() == ' ')) text.pop_back();
    if (text.empty()) return Error::Invalid(what + " file " + file + " is empty");
    return text;
  }
  if (!env.empty()) {
    const char* value = std::getenv(env.c_str());
    if (value == nullptr || *value == '\0') return Error::Invalid(what + " variable " + env + " is not set");
    return std::string(value);
  }
  return std::string();
}

// The events that bring a run from `from` to what the provider reports, or none.
std::vector<core::RunEvent> EventsFor(core::RunKind kind, core::RunState from, cicd::ProviderRunStatus status) {
  using E = core::RunEvent;
  using S = core::RunState;
  std::vector<E> events;
  if (from == S::kPending && status != cicd::ProviderRunStatus::kNotFound) events.push_back(E::kTriggerAccepted);
  const auto at = events.empty() ? from : S::kTriggered;
  switch (status) {
    case cicd::ProviderRunStatus::kNotFound:
    case cicd::ProviderRunStatus::kQueued: break;
    case cicd::ProviderRunStatus::kRunning:
      if (at == S::kTriggered) events.push_back(E::kStarted);
      break;
    case cicd::ProviderRunStatus::kSucceeded:
      if (at == S::kTriggered || at == S::kRunning) {
        events.push_back(E::kSucceeded);
        if (core::HasHealthGate(kind)) events.push_back(E::kVerify);
      }
      break;
    case cicd::ProviderRunStatus::kFailed:
      if (at == S::kTriggered || at == S::kRunning) events.push_back(E::kFailed);
      break;
    case cicd::ProviderRunStatus::kCancelled:
      if (at == S::kTriggered || at == S::kRunning) events.push_back(E::kCancelled);
      break;
  }
  return events;
}

}  // namespace

RunCoordinator::RunCoordinator(db::Repository& repo, const CicdConfig& config, std::string public_url,
                               std::map<std::string, ProviderSlot> providers, Clock now_ms)
    : repo_(repo),
      config_(config),
      public_url_(std::move(public_url)),
      providers_(std::move(providers)),
      now_ms_(std::move(now_ms)) {
  gate_policy_.consecutive = config.gate_consecutive;
  gate_policy_.window_ms = static_cast<std::int64_t>(config.gate_window_s) * 1000;
}

RunCoordinator::~RunCoordinator() { Stop(); }

Result<std::map<std::string, RunCoordinator::ProviderSlot>> RunCoordinator::MakeProviders(const CicdConfig& config) {
  std::map<std::string, ProviderSlot> slots;
  for (const auto& entry : config.providers) {
    auto provider = cicd::MakeProvider(entry.provider);
    if (!provider.ok()) {
      return Error::Invalid("cicd provider '" + entry.provider.name + "': " + provider.error().message);
    }
    ProviderSlot slot;
    slot.provider = std::move(*provider);
    auto current = ReadSecret(entry.callback_secret_file, entry.callback_secret_env, "callback secret");
    if (!current.ok()) return current.error();
    if (!current->empty()) slot.callback_secrets.push_back(*current);
    auto previous = ReadSecret(entry.callback_previous_secret_file, "", "previous callback secret");
    if (!previous.ok()) return previous.error();
    if (!previous->empty()) slot.callback_secrets.push_back(*previous);
    slots.emplace(entry.provider.name, std::move(slot));
  }
  return slots;
}

void RunCoordinator::SetLeadership(Leadership* leadership) {
  if (leadership_ != nullptr && listener_id_ != 0) leadership_->RemoveListener(listener_id_);
  listener_id_ = 0;
  leadership_ = leadership;
  if (leadership_ != nullptr) listener_id_ = leadership_->AddListener([this](bool leader) { OnLeadership(leader); });
  std::lock_guard lock(gates_mu_);
  rebuild_ = true;
}

void RunCoordinator::OnLeadership(bool leader) {
  {
    // Whatever this replica knew as leader may be stale now: another replica may have led.
    std::lock_guard lock(gates_mu_);
    gates_.clear();
    next_poll_ms_.clear();
    poll_backoff_.clear();
    rebuild_ = true;
  }
  if (leader) Kick();  // a new leader starts within a pass
}

RunCoordinator::Term RunCoordinator::CurrentTerm() const {
  if (leadership_ == nullptr) return Term{true, std::nullopt};
  auto fence = leadership_->fence();
  return Term{fence.has_value(), std::move(fence)};
}

bool RunCoordinator::StillLeads(const Term& term) const {
  if (leadership_ == nullptr) return true;
  auto fence = leadership_->fence();
  return fence && term.fence && fence->token == term.fence->token;
}

std::optional<RunCoordinator::Term> RunCoordinator::BeginPass() {
  Term term = CurrentTerm();
  if (!term.leader) return std::nullopt;
  const std::int64_t token = term.fence ? term.fence->token : 0;
  {
    std::lock_guard lock(gates_mu_);
    if (!rebuild_ && state_token_ == token) return term;
  }
  // A new term: the gates from the stored runs (gate_opened_at), polls from scratch.
  auto active = repo_.ListActiveRuns();
  if (!active.ok()) {
    log::Error("cannot read the active runs", {{"detail", active.error().message}});
    return std::nullopt;
  }
  std::lock_guard lock(gates_mu_);
  if (!StillLeads(term)) return std::nullopt;
  gates_.clear();
  next_poll_ms_.clear();
  poll_backoff_.clear();
  for (const auto& run : *active) {
    if (run.state != core::ToString(core::RunState::kVerifying)) continue;
    core::HealthGate gate;
    gate.release = run.release;
    gate.opened_at_ms = run.gate_opened_at_ms.value_or(now_ms_());
    gates_[run.store_id] = {run.id, gate};
  }
  rebuild_ = false;
  state_token_ = token;
  return term;
}

Result<db::WriteResult> RunCoordinator::Write(const db::WriteBatch& batch) {
  auto written = repo_.Apply(batch);
  if (!written.ok() && batch.fence && leadership_ != nullptr && IsFenceRefusal(written.error())) {
    leadership_->LostLeadership();
  }
  return written;
}

void RunCoordinator::AuditSystem(const core::AuditEntry& entry, const std::optional<db::Fence>& fence) {
  if (!fence) {
    (void)repo_.AppendAudit(entry, true);
    return;
  }
  db::WriteBatch batch;
  batch.audit.push_back(entry);
  batch.fence = fence;
  (void)Write(batch);
}

void RunCoordinator::Start() {
  (void)BeginPass();  // the gates of the runs verifying now, when leading
  std::lock_guard lock(mu_);
  if (!worker_.joinable() && !stopping_) worker_ = std::thread([this] { Main(); });
}

void RunCoordinator::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
  if (leadership_ != nullptr && listener_id_ != 0) leadership_->RemoveListener(listener_id_);
  listener_id_ = 0;
}

void RunCoordinator::Kick() {
  {
    std::lock_guard lock(mu_);
    kicked_ = true;
  }
  cv_.notify_all();
}

const std::vector<std::string>* RunCoordinator::CallbackSecrets(const std::string& provider) const {
  auto it = providers_.find(provider);
  if (it == providers_.end() || it->second.callback_secrets.empty()) return nullptr;
  return &it->second.callback_secrets;
}

void RunCoordinator::Main() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    // Paced triggers go out as their tokens come, so look again sooner while any wait.
    cv_.wait_for(lock, std::chrono::milliseconds(pacer_ != nullptr ? 250 : 1000),
                 [this] { return stopping_ || kicked_; });
    if (stopping_) break;
    kicked_ = false;
    lock.unlock();
    if (auto term = BeginPass()) {
      Dispatch(*term);
      if (StillLeads(*term)) Poll(*term);
    }
    lock.lock();
  }
}

Result<db::PipelineRunRecord> RunCoordinator::Move(db::PipelineRunRecord run, const std::vector<core::RunEvent>& events,
                                                   const std::string& detail, const std::string& source,
                                                   const std::string& request_id, std::vector<db::Effect> extra,
                                                   const std::optional<db::Fence>& fence) {
  const auto now = now_ms_();
  const auto kind = core::ParseRunKind(run.kind);
  const auto from = core::ParseRunState(run.state);
  if (!kind || !from) return Error::Internal("run " + run.id + " is stored in an unknown shape");
  auto state = *from;
  for (auto event : events) {
    auto next = core::TransitionRun(*kind, state, event);
    if (!next.ok()) return next.error();
    state = *next;
  }
  db::PipelineRunRecord updated = run;
  updated.state = std::string(core::ToString(state));
  updated.active = core::IsActive(*kind, state);
  updated.updated_at_ms = now;
  updated.version = run.version + 1;
  if (!detail.empty()) updated.outcome_detail = detail;
  if (state == core::RunState::kTriggered ||
      (!run.triggered_at_ms && *from == core::RunState::kPending && state != core::RunState::kPending)) {
    updated.triggered_at_ms = now;
  }
  if (state == core::RunState::kVerifying && *from != core::RunState::kVerifying) {
    updated.gate_opened_at_ms = now;
    updated.gate_streak = 0;
  }
  // Only the move into a final state ends the run (a later note, e.g. an external id that
  // arrives after the outcome, changes nothing else).
  const bool final = core::IsFinal(*kind, state) && !core::IsFinal(*kind, *from);
  if (final) updated.finished_at_ms = now;

  db::WriteBatch batch;
  batch.fence = fence;
  batch.effects.emplace_back(db::UpdateRunEffect{updated, run.version});
  for (auto& e : extra) batch.effects.push_back(std::move(e));

  // The store follows its run: lifecycle at the end, releases and isolation on success.
  if (final) {
    auto store = repo_.GetStore(run.store_id);
    if (!store.ok()) return store.error();
    core::Store next = *store;
    bool changed = false;
    if (auto event = core::LifecycleEventAtEnd(*kind, state)) {
      auto moved = core::Transition(store->state, *event);
      if (moved.ok()) {
        next.state = *moved;
        changed = true;
      } else {
        log::Error("run end does not fit the store's lifecycle", {{"run", run.id}, {"detail", moved.error().message}});
      }
    }
    if (core::IsSuccess(*kind, state)) {
      batch.effects.emplace_back(db::UpsertLastSuccessEffect{{run.store_id, "pipeline", run.kind, now, run.id}});
      if (*kind == core::RunKind::kDeploy || *kind == core::RunKind::kRollback) {
        next.current_release = run.release;
        next.last_known_good_release = run.release;
        changed = true;
      } else if (*kind == core::RunKind::kIsolationMigration) {
        if (auto mode = core::ParseIsolationMode(run.target_isolation)) {
          next.isolation_mode = *mode;
          changed = true;
        }
      }
    }
    if (changed) {
      next.version = store->version + 1;
      next.updated_at_ms = now;
      batch.effects.emplace_back(db::UpdateStoreEffect{next, store->version});
    }
  }
  std::map<std::string, std::string> params = {
      {"run", run.id}, {"kind", run.kind}, {"from", run.state}, {"to", updated.state}, {"source", source}};
  if (!detail.empty()) params["detail"] = detail;
  auto entry = SystemAuditEntry(now, "run.transition", "store/" + run.store_id, "ok", std::move(params));
  entry.request_id = request_id;
  batch.audit.push_back(std::move(entry));
  auto written = Write(batch);
  if (!written.ok()) return written.error();
  const auto stored = written->runs.empty() ? updated : written->runs.front();
  if (store_observer_) {
    for (const auto& store : written->stores) store_observer_(store);
  }
  log::Info("run moved", {{"run", run.id}, {"store", run.store_id}, {"from", run.state}, {"to", stored.state}});
  if (final && !stored.rollout_id.empty() && rollout_run_observer_) rollout_run_observer_(stored);

  {
    // The gates are the leader's: a replica that does not lead leaves a new gate to it (its
    // next pass finds the run verifying in the database).
    const bool leading = CurrentTerm().leader;
    std::lock_guard lock(gates_mu_);
    if (state == core::RunState::kVerifying && leading) {
      core::HealthGate gate;
      gate.release = run.release;
      gate.opened_at_ms = stored.gate_opened_at_ms.value_or(now);
      gates_[run.store_id] = {run.id, gate};
    } else if (final) {
      auto it = gates_.find(run.store_id);
      if (it != gates_.end() && it->second.first == run.id) gates_.erase(it);
      next_poll_ms_.erase(run.id);
      poll_backoff_.erase(run.id);
    }
  }

  // A deploy that failed its gate is rolled back once, automatically, to the last known
  // good release; a rollback that fails stops automation for the store.
  if (*kind == core::RunKind::kDeploy && state == core::RunState::kVerificationFailed && run.schema_changed) {
    // Rolling back across a schema change is never automatic: an operator decides (and in
    // production the approval rules hold that rollback for a second person).
    AuditSystem(SystemAuditEntry(now_ms_(), "rollback.automatic", "store/" + run.store_id, "error:held",
                                 {{"after", run.id}, {"reason", "schema_changed"}}),
                fence);
    log::Warn("automatic rollback held: the release changed the database schema", {{"run", run.id}});
  } else if (*kind == core::RunKind::kDeploy && state == core::RunState::kVerificationFailed) {
    auto store = repo_.GetStore(run.store_id);
    if (store.ok()) {
      RunRequest request;
      request.kind = core::RunKind::kRollback;
      RunPlanInput input;
      input.request = &request;
      input.store = &*store;
      input.requested_by = "system";
      input.reason = "automatic rollback: " + run.id + " failed its health gate";
      input.now_ms = now_ms_();
      auto plan = PlanRun(input, config_, repo_);
      db::WriteBatch rollback;
      rollback.fence = fence;
      if (plan.ok()) {
        rollback.effects = std::move(plan->effects);
        rollback.audit.push_back(
            SystemAuditEntry(input.now_ms, "rollback.automatic", "store/" + run.store_id, "ok",
                             {{"run", plan->run.id}, {"after", run.id}, {"release", plan->run.release}}));
        auto done = Write(rollback);
        if (done.ok()) {
          Kick();
        } else {
          log::Error("automatic rollback not recorded", {{"store", run.store_id}, {"detail", done.error().message}});
        }
      } else {
        rollback.audit.push_back(SystemAuditEntry(input.now_ms, "rollback.automatic", "store/" + run.store_id,
                                                  "error:refused",
                                                  {{"after", run.id}, {"reason", plan.error().message}}));
        AuditSystem(rollback.audit.front(), fence);
        log::Error("automatic rollback refused; the store needs an operator",
                   {{"store", run.store_id}, {"detail", plan.error().message}});
      }
    }
  }
  return stored;
}

Result<db::PipelineRunRecord> RunCoordinator::ApplyReport(const Report& report) {
  return ApplyReportWith(report, std::nullopt);  // a callback, on any replica: not leader work
}

Result<db::PipelineRunRecord> RunCoordinator::ApplyReportWith(const Report& report,
                                                              const std::optional<db::Fence>& fence) {
  // The dispatcher or a poll may move the run at the same moment: read again and retry
  // (not when the fence was refused: the term is over).
  for (int attempt = 0;; ++attempt) {
    auto applied = ApplyReportOnce(report, fence);
    if (applied.ok() || applied.error().code != ErrorCode::kPreconditionFailed || IsFenceRefusal(applied.error()) ||
        attempt >= 4) {
      return applied;
    }
  }
}

Result<db::PipelineRunRecord> RunCoordinator::ApplyReportOnce(const Report& report,
                                                              const std::optional<db::Fence>& fence) {
  auto run = repo_.GetRun(report.run_id);
  if (!run.ok()) return run.error();
  if (run->provider != report.provider) return Error::NotFound("no run '" + report.run_id + "' for this provider");
  const auto kind = core::ParseRunKind(run->kind);
  const auto state = core::ParseRunState(run->state);
  if (!kind || !state) return Error::Internal("run " + run->id + " is stored in an unknown shape");
  std::vector<db::Effect> extra;
  if (!report.delivery_id.empty()) {
    extra.emplace_back(db::InsertCallbackDeliveryEffect{report.provider, report.delivery_id, run->id, now_ms_()});
  }
  auto events = core::IsFinal(*kind, *state) ? std::vector<core::RunEvent>{} : EventsFor(*kind, *state, report.status);
  db::PipelineRunRecord base = *run;
  if (!report.external_id.empty()) base.external_id = report.external_id;
  if (!report.external_url.empty()) base.external_url = report.external_url;
  if (report.schema_changed) base.schema_changed = true;
  if (events.empty() && base.external_id == run->external_id && base.external_url == run->external_url &&
      base.schema_changed == run->schema_changed) {
    if (extra.empty()) return *run;
    // Nothing moves, but the delivery id is remembered all the same (replays stay refused).
    db::WriteBatch batch;
    batch.fence = fence;
    batch.effects = std::move(extra);
    batch.audit.push_back(SystemAuditEntry(now_ms_(), "run.transition", "store/" + run->store_id, "ok",
                                           {{"run", run->id}, {"source", report.source}, {"detail", "no change"}}));
    auto written = Write(batch);
    if (!written.ok()) return written.error();
    return *run;
  }
  return Move(base, events, std::string(cicd::ToString(report.status)), report.source, report.request_id,
              std::move(extra), fence);
}

bool RunCoordinator::GatesStore(const std::string& store_id) {
  if (!CurrentTerm().leader) return false;
  std::lock_guard lock(gates_mu_);
  return !rebuild_ && gates_.contains(store_id);
}

void RunCoordinator::ObserveHeartbeat(const std::string& store_id, const std::optional<std::string>& release,
                                      core::Health health) {
  const Term term = CurrentTerm();
  if (!term.leader) return;  // the gates are judged by the leader
  std::string run_id;
  core::GateVerdict verdict = core::GateVerdict::kPending;
  {
    std::lock_guard lock(gates_mu_);
    // State of an earlier term waits for the worker to rebuild it.
    if (rebuild_ || state_token_ != (term.fence ? term.fence->token : 0)) return;
    auto it = gates_.find(store_id);
    if (it == gates_.end()) return;
    verdict = core::ObserveGate(gate_policy_, it->second.second, {now_ms_(), release, health});
    run_id = it->second.first;
  }
  if (verdict == core::GateVerdict::kPassed) FinishGate(run_id, true, "gate_passed", term);
  if (verdict == core::GateVerdict::kFailed) FinishGate(run_id, false, "gate_window_passed", term);
}

void RunCoordinator::FinishGate(const std::string& run_id, bool passed, const std::string& detail, const Term& term) {
  if (!StillLeads(term)) return;
  auto run = repo_.GetRun(run_id);
  if (!run.ok()) return;
  if (run->state != core::ToString(core::RunState::kVerifying)) {
    // Judged already (a pass may have re-opened the gate from a read made just before).
    std::lock_guard lock(gates_mu_);
    auto it = gates_.find(run->store_id);
    if (it != gates_.end() && it->second.first == run_id) gates_.erase(it);
    return;
  }
  auto moved = Move(*run, {passed ? core::RunEvent::kGatePassed : core::RunEvent::kGateFailed}, detail, "gate", "", {},
                    term.fence);
  if (!moved.ok()) log::Error("health gate not recorded", {{"run", run_id}, {"detail", moved.error().message}});
}

void RunCoordinator::DispatchOnce() {
  if (auto term = BeginPass()) Dispatch(*term);
}

void RunCoordinator::PollOnce() {
  if (auto term = BeginPass()) Poll(*term);
}

void RunCoordinator::Dispatch(const Term& term) {
  const auto& fence = term.fence;
  const auto now = now_ms_();
  auto due = repo_.ListDueOutbox(now, 50);
  if (!due.ok()) {
    log::Error("cannot read the outbox", {{"detail", due.error().message}});
    return;
  }
  for (auto entry : *due) {
    if (!StillLeads(term)) return;  // the term ended: another replica may lead now
    auto run = repo_.GetRun(entry.run_id);
    if (!run.ok()) continue;
    auto mark_done = [&](const std::string& error) {
      db::OutboxEntry done = entry;
      done.sent_at_ms = now_ms_();
      done.last_error = error;
      done.version = entry.version + 1;
      return done;
    };
    if (run->state != core::ToString(core::RunState::kPending)) {
      // Already moved on (a callback arrived first, or the run timed out): nothing to send.
      db::WriteBatch batch;
      batch.fence = fence;
      batch.effects.emplace_back(db::UpdateOutboxEffect{mark_done(""), entry.version});
      batch.audit.push_back(SystemAuditEntry(now, "run.trigger", "store/" + run->store_id, "ok",
                                             {{"run", run->id}, {"detail", "not needed: run is " + run->state}}));
      (void)Write(batch);
      continue;
    }
    auto slot = providers_.find(entry.provider);
    if (slot == providers_.end()) {
      (void)Move(*run, {core::RunEvent::kFailed}, "provider_not_configured", "outbox", "", {}, fence);
      continue;
    }
    auto& provider = *slot->second.provider;
    // An earlier attempt may have reached the provider before a crash: ask first.
    if (entry.attempts > 0) {
      auto found = provider.Find(run->id, run->external_id);
      if (found.ok() && found->status != cicd::ProviderRunStatus::kNotFound) {
        db::OutboxEntry done = mark_done("");
        Report report{run->id, found->status, found->external_id, found->external_url, entry.provider, "", "outbox",
                      ""};
        auto events = EventsFor(*core::ParseRunKind(run->kind), core::RunState::kPending, found->status);
        db::PipelineRunRecord base = *run;
        base.external_id = found->external_id;
        base.external_url = found->external_url;
        (void)Move(base, events, "found_at_provider", "outbox", "", {db::UpdateOutboxEffect{done, entry.version}},
                   fence);
        continue;
      }
      if (!found.ok() && found.error().code == ErrorCode::kUnavailable) continue;  // ask again later
      if (!found.ok()) {
        // The provider will not say whether the earlier attempt arrived: sending again could
        // start a second pipeline, so the run fails instead (an operator asks again).
        (void)Move(*run, {core::RunEvent::kFailed}, "cannot_verify_earlier_trigger", "outbox", "",
                   {db::UpdateOutboxEffect{mark_done(found.error().message), entry.version}}, fence);
        continue;
      }
    }
    // Over the provider's rate: the trigger stays due and goes out when a token is free.
    if (pacer_ != nullptr && !pacer_->TryTake(entry.provider, now)) continue;
    // Record the attempt before making it, so that a crash in between asks first next time.
    db::OutboxEntry attempt = entry;
    attempt.attempts = entry.attempts + 1;
    const std::int64_t backoff_s =
        std::min<std::int64_t>(config_.trigger_retry_max_s, 1LL << std::min(attempt.attempts, 16));
    attempt.next_attempt_at_ms = now + backoff_s * 1000;
    attempt.version = entry.version + 1;
    {
      db::WriteBatch batch;
      batch.fence = fence;
      batch.effects.emplace_back(db::UpdateOutboxEffect{attempt, entry.version});
      batch.audit.push_back(SystemAuditEntry(
          now, "run.trigger", "store/" + run->store_id, "ok",
          {{"run", run->id}, {"provider", entry.provider}, {"attempt", std::to_string(attempt.attempts)}}));
      if (!Write(batch).ok()) continue;
    }
    auto store = repo_.GetStore(run->store_id);
    if (!store.ok()) continue;
    // The one effect outside the database: not after the term ended (the next leader finds
    // the attempt recorded and asks the provider before sending).
    if (!StillLeads(term)) return;
    cicd::TriggerRequest trigger;
    trigger.correlation_id = run->id;
    trigger.store_id = store->id;
    trigger.environment = store->environment;
    trigger.isolation_mode = std::string(core::ToString(store->isolation_mode));
    if (!run->target_isolation.empty()) trigger.isolation_mode = run->target_isolation;
    trigger.kind = run->kind;
    trigger.release = run->release;
    trigger.callback_url = public_url_ + "/hooks/cicd/" + entry.provider;
    auto sent = provider.Trigger(trigger);
    if (sent.ok()) {
      db::OutboxEntry done = attempt;
      done.sent_at_ms = now_ms_();
      done.last_error.clear();
      done.version = attempt.version + 1;
      // The pipeline may have called back already (and moved the run): read it again.
      Status recorded = Status::Ok();
      for (int retry = 0; retry < 5; ++retry) {
        auto current = retry == 0 ? Result<db::PipelineRunRecord>(*run) : repo_.GetRun(run->id);
        if (!current.ok()) break;
        db::PipelineRunRecord base = *current;
        if (base.external_id.empty()) base.external_id = sent->external_id;
        if (base.external_url.empty()) base.external_url = sent->external_url;
        std::vector<core::RunEvent> events;
        if (base.state == core::ToString(core::RunState::kPending)) events.push_back(core::RunEvent::kTriggerAccepted);
        auto moved = Move(base, events, "trigger_accepted", "outbox", "",
                          {db::UpdateOutboxEffect{done, attempt.version}}, fence);
        recorded = moved.ok() ? Status::Ok() : Status(moved.error());
        if (moved.ok() || moved.error().code != ErrorCode::kPreconditionFailed || IsFenceRefusal(moved.error())) break;
      }
      if (!recorded.ok()) {
        log::Error("trigger sent but not recorded", {{"run", run->id}, {"detail", recorded.error().message}});
      }
      continue;
    }
    const auto& err = sent.error();
    log::Warn("trigger failed", {{"run", run->id}, {"provider", entry.provider}, {"detail", err.message}});
    db::OutboxEntry failed = attempt;
    failed.last_error = err.message;
    failed.version = attempt.version + 1;
    if (err.code == ErrorCode::kUnavailable) {
      db::WriteBatch batch;
      batch.fence = fence;
      batch.effects.emplace_back(db::UpdateOutboxEffect{failed, attempt.version});
      batch.audit.push_back(SystemAuditEntry(now_ms_(), "run.trigger", "store/" + run->store_id, "error:unavailable",
                                             {{"run", run->id}, {"provider", entry.provider}}));
      (void)Write(batch);
    } else {
      // Refused for good (credentials, a bad request): the run fails; nothing is retried.
      failed.sent_at_ms = now_ms_();
      (void)Move(*run, {core::RunEvent::kFailed}, "trigger_refused", "outbox", "",
                 {db::UpdateOutboxEffect{failed, attempt.version}}, fence);
    }
  }
}

void RunCoordinator::Poll(const Term& term) {
  auto active = repo_.ListActiveRuns();
  if (!active.ok()) return;
  for (const auto& run : *active) {
    if (!StillLeads(term)) return;
    const auto now = now_ms_();
    const auto state = core::ParseRunState(run.state);
    if (!state) continue;
    if (*state == core::RunState::kVerifying) {
      core::HealthGate gate;
      gate.release = run.release;
      gate.opened_at_ms = run.gate_opened_at_ms.value_or(now);
      {
        // A run another replica moved into its gate (a callback there) is gated here from now.
        std::lock_guard lock(gates_mu_);
        auto it = gates_.find(run.store_id);
        if (it == gates_.end() || it->second.first != run.id) gates_[run.store_id] = {run.id, gate};
      }
      if (core::GateAt(gate_policy_, gate, now) == core::GateVerdict::kFailed) {
        FinishGate(run.id, false, "gate_window_passed", term);
      }
      continue;
    }
    if (now >= run.deadline_ms) {
      (void)Move(run, {core::RunEvent::kTimedOut}, "no_outcome_by_deadline", "timeout", "", {}, term.fence);
      continue;
    }
    if (*state != core::RunState::kTriggered && *state != core::RunState::kRunning) continue;
    {
      std::lock_guard lock(gates_mu_);
      auto [it, inserted] = next_poll_ms_.try_emplace(run.id, now + config_.poll_interval_s * 1000LL);
      if (!inserted && it->second > now) continue;
      if (inserted) continue;
    }
    auto slot = providers_.find(run.provider);
    if (slot == providers_.end()) continue;
    auto found = slot->second.provider->Find(run.id, run.external_id);
    bool news = false;
    if (found.ok() && found->status != cicd::ProviderRunStatus::kNotFound) {
      Report report{run.id, found->status, found->external_id, found->external_url, run.provider, "", "poll", ""};
      auto applied = ApplyReportWith(report, term.fence);
      if (!applied.ok()) log::Warn("poll result not applied", {{"run", run.id}, {"detail", applied.error().message}});
      news = applied.ok() && applied->version != run.version;
    }
    // Back off while nothing changes (up to 8 intervals); poll at the interval after news.
    std::lock_guard lock(gates_mu_);
    int& backoff = poll_backoff_.try_emplace(run.id, 1).first->second;
    backoff = news ? 1 : std::min(backoff * 2, 8);
    next_poll_ms_[run.id] = now_ms_() + static_cast<std::int64_t>(config_.poll_interval_s) * 1000 * backoff;
  }
}

}  // namespace storeplane::server
