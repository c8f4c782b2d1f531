#include "server/agent_hub.h"

#include <algorithm>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <chrono>

#include "server/auth.h"
#include "server/handler_support.h"
#include "server/leadership.h"
#include "server/logging.h"

namespace storeplane::server {

struct AgentHub::Live {
  db::AgentRecord record;  // telemetry fields are the live values
  core::StoreState store_state = core::StoreState::kRegistered;
  core::IsolationMode recorded_isolation = core::IsolationMode::kShared;
  std::vector<core::CheckResult> checks;
  core::Availability availability = core::Availability::kNeverSeen;
  core::HealthAssessment health;
  std::map<std::string, std::int64_t> check_successes;  // check name -> last pass
  std::set<std::string> unsaved_successes;              // names whose last pass is due for writing
  std::map<std::string, std::int64_t> success_written;  // check name -> pass time last made due
  std::int64_t seen_written_ms = 0;                     // last_seen_ms as last made due
  bool dirty = false;                                   // telemetry due for the next flush
  bool changed = false;  // a change of availability or health not written yet (in changed_)
  // Shared storage: the row's availability and health columns as last read or written (what
  // was last published), the checks text last merged, and the hub's gen_ at the last local
  // change of the credential, the agent or its store.
  std::string db_availability = "never_seen";
  std::string db_health = "unknown";
  std::string db_checks_json;
  std::uint64_t local_gen = 0;
};

namespace {

std::vector<core::CheckResult> ChecksFromText(const std::string& text) {
  boost::system::error_code ec;
  auto value = boost::json::parse(text, ec);
  if (ec) return {};
  auto checks = protocol::ChecksFromJson(value);
  return checks.ok() ? std::move(checks.value()) : std::vector<core::CheckResult>{};
}

core::HealthAssessment Assess(const core::Availability availability, const core::StoreState state,
                              const core::IsolationMode recorded, const std::optional<std::string>& reported,
                              const std::vector<core::CheckResult>& checks) {
  core::HealthInput input;
  input.availability = availability;
  input.state = state;
  input.recorded_isolation = recorded;
  if (reported) input.reported_isolation = core::ParseIsolationMode(*reported);
  input.checks = checks;
  return core::AssessHealth(input);
}

// When an unfinished operation expires: its queue deadline, or for a delivered one the
// later of that and delivery + timeout + grace (the agent may still be running it).
std::int64_t DeadlineOf(const db::OperationRecord& op, std::int64_t grace_ms) {
  if (!op.delivered_at_ms) return op.expires_at_ms;
  return std::max(op.expires_at_ms, *op.delivered_at_ms + static_cast<std::int64_t>(op.timeout_s) * 1000 + grace_ms);
}

}  // namespace

AgentHub::AgentHub(db::Repository& repo, AgentHubOptions options, Clock now_ms)
    : repo_(repo), options_(options), now_ms_(std::move(now_ms)) {}

AgentHub::~AgentHub() { Stop(); }

Status AgentHub::Load() {
  auto agents = repo_.ListAgents();
  if (!agents.ok()) return agents.error();
  auto open = repo_.ListOpenOperations();
  if (!open.ok()) return open.error();
  const auto now = now_ms_();
  std::lock_guard lock(mu_);
  for (auto& record : *agents) {
    auto live = std::make_unique<Live>();
    auto store = repo_.GetStore(record.store_id);
    if (!store.ok()) return store.error();
    live->store_state = store->state;
    live->recorded_isolation = store->isolation_mode;
    live->checks = ChecksFromText(record.checks_json);
    live->db_availability = record.availability;
    live->db_health = record.health;
    live->db_checks_json = record.checks_json;
    if (options_.shared_storage && record.last_seen_ms) live->seen_written_ms = *record.last_seen_ms;
    live->record = std::move(record);
    AssessLocked(*live, now);
    if (!live->record.revoked_at_ms) credentials_[live->record.credential_hash] = live->record.store_id;
    agents_[live->record.store_id] = std::move(live);
  }
  for (auto& op : *open) open_ops_[op.id] = std::move(op);
  stores_refreshed_ms_ = now;
  return Status::Ok();
}

void AgentHub::SetLeadership(Leadership* leadership) {
  if (leadership == nullptr) {
    leader_ = {};
    return;
  }
  leader_.is_leader = [leadership] { return leadership->is_leader(); };
  leader_.fence = [leadership] { return leadership->fence(); };
  leader_.lost = [leadership] { leadership->LostLeadership(); };
}

bool AgentHub::leading() const { return !options_.shared_storage || !leader_.is_leader || leader_.is_leader(); }

bool AgentHub::PublishDueLocked(Live& live) const {
  if (live.record.availability == live.db_availability && live.record.health == live.db_health) return false;
  live.db_availability = live.record.availability;
  live.db_health = live.record.health;
  return true;
}

void AgentHub::TakeWaitersLocked(const std::string& store_id, std::vector<std::shared_ptr<Wakeup>>* wake) {
  auto it = waiters_.find(store_id);
  if (it == waiters_.end()) return;
  for (auto& w : it->second) {
    if (auto p = w.lock()) wake->push_back(std::move(p));
  }
  waiters_.erase(it);
}

// Open operations read from the database (a query begun at `snapshot`): new ones are
// added (queued ones wake their store's long-polls), newer versions win; operations
// touched here since the snapshot are left as memory has them.
void AgentHub::MergeOpsLocked(const std::vector<db::OperationRecord>& ops, std::uint64_t snapshot,
                              std::vector<std::shared_ptr<Wakeup>>* wake) {
  for (const auto& op : ops) {
    if (op.state != "queued" && op.state != "delivered") continue;
    if (auto t = op_touched_.find(op.id); t != op_touched_.end() && t->second > snapshot) continue;
    auto it = open_ops_.find(op.id);
    if (it == open_ops_.end()) {
      open_ops_[op.id] = op;
      if (op.state == "queued") TakeWaitersLocked(op.store_id, wake);
    } else if (op.version > it->second.version) {
      it->second = op;
    }
  }
}

Status AgentHub::Refresh() {
  if (!options_.shared_storage) return Status::Ok();
  const auto started = now_ms_();
  std::uint64_t snapshot = 0;
  std::vector<std::string> ops_before;
  {
    std::lock_guard lock(mu_);
    snapshot = gen_;
    ops_before.reserve(open_ops_.size());
    for (const auto& [id, op] : open_ops_) ops_before.push_back(id);
  }
  auto agents = repo_.ListAgents();
  if (!agents.ok()) return agents.error();
  auto open = repo_.ListOpenOperations();
  if (!open.ok()) return open.error();
  if (options_.store_refresh_interval_ms > 0 && started - stores_refreshed_ms_ >= options_.store_refresh_interval_ms) {
    RefreshStores(started);
  }

  // Agents enrolled elsewhere (or enrolled again): their stores, one query each (rare).
  std::map<std::string, core::Store> new_stores;
  {
    std::vector<std::string> missing;
    {
      std::lock_guard lock(mu_);
      for (const auto& record : *agents) {
        auto it = agents_.find(record.store_id);
        if (it == agents_.end() || it->second->record.id != record.id) missing.push_back(record.store_id);
      }
    }
    for (const auto& id : missing) {
      auto store = repo_.GetStore(id);
      if (store.ok()) new_stores[id] = std::move(*store);
    }
  }

  struct Observed {
    std::string store_id;
    std::optional<std::string> release;
    core::Health health;
  };
  std::vector<Observed> observed;
  std::vector<std::shared_ptr<Wakeup>> wake;
  const bool lead = leading();
  const auto now = now_ms_();
  {
    std::lock_guard lock(mu_);
    for (auto& record : *agents) {
      auto it = agents_.find(record.store_id);
      if (it != agents_.end() && it->second->local_gen > snapshot) {
        // Changed here since the query began: the credential and the agent stay as memory
        // has them; a newer heartbeat elsewhere still counts below.
        if (it->second->record.id != record.id) continue;
      } else if (it == agents_.end() || it->second->record.id != record.id) {
        auto store = new_stores.find(record.store_id);
        if (store == new_stores.end()) continue;  // the next refresh tries again
        if (it != agents_.end()) credentials_.erase(it->second->record.credential_hash);
        auto live = std::make_unique<Live>();
        live->store_state = store->second.state;
        live->recorded_isolation = store->second.isolation_mode;
        live->checks = ChecksFromText(record.checks_json);
        live->db_availability = record.availability;
        live->db_health = record.health;
        live->db_checks_json = record.checks_json;
        if (record.last_seen_ms) live->seen_written_ms = *record.last_seen_ms;
        live->record = std::move(record);
        AssessLocked(*live, now);
        if (!live->record.revoked_at_ms) credentials_[live->record.credential_hash] = live->record.store_id;
        agents_[live->record.store_id] = std::move(live);
        continue;
      } else {
        // Rotations and revocations made elsewhere.
        Live& live = *it->second;
        if (record.credential_hash != live.record.credential_hash) {
          credentials_.erase(live.record.credential_hash);
          live.record.credential_hash = record.credential_hash;
          live.record.rotated_at_ms = record.rotated_at_ms;
          if (!live.record.revoked_at_ms) credentials_[live.record.credential_hash] = live.record.store_id;
        }
        if (record.revoked_at_ms && !live.record.revoked_at_ms) {
          credentials_.erase(live.record.credential_hash);
          live.record.revoked_at_ms = record.revoked_at_ms;
        }
      }
      Live& live = *it->second;
      if (!live.changed) {  // else a change published here awaits writing: the row is older
        live.db_availability = record.availability;
        live.db_health = record.health;
      }
      if (record.last_seen_ms.value_or(INT64_MIN) > live.record.last_seen_ms.value_or(INT64_MIN)) {
        // A heartbeat that went to another replica: its telemetry is newer than ours, and
        // what we have not written yet is older (the successes of checks stay due).
        live.record.last_seen_ms = record.last_seen_ms;
        live.record.agent_version = record.agent_version;
        live.record.release = record.release;
        live.record.reported_isolation = record.reported_isolation;
        live.record.allowed_operations = record.allowed_operations;
        if (record.checks_json != live.db_checks_json) {
          live.checks = ChecksFromText(record.checks_json);
          live.db_checks_json = record.checks_json;
        }
        live.seen_written_ms = *record.last_seen_ms;
        live.dirty = false;
        AssessLocked(live, now);
        if (lead && !live.record.revoked_at_ms)
          observed.push_back({record.store_id, live.record.release, live.health.health});
      } else {
        AssessLocked(live, now);
      }
    }

    // Open operations: queued elsewhere (and the notification missed), delivered elsewhere
    // (a newer version), finished or expired elsewhere (gone from the list).
    MergeOpsLocked(*open, snapshot, &wake);
    std::set<std::string_view> still_open;
    for (const auto& op : *open) still_open.insert(op.id);
    for (const auto& id : ops_before) {
      if (still_open.contains(id)) continue;
      if (auto t = op_touched_.find(id); t != op_touched_.end() && t->second > snapshot) continue;
      open_ops_.erase(id);
    }
    std::erase_if(op_touched_, [snapshot](const auto& entry) { return entry.second <= snapshot; });
  }
  for (auto& w : wake) w->Fire();
  if (observer_ && watches_) {
    for (const auto& o : observed) {
      if (watches_(o.store_id)) observer_(o.store_id, o.release, o.health);
    }
  }
  return Status::Ok();
}

void AgentHub::RefreshStores(std::int64_t now_ms) {
  std::uint64_t snapshot = 0;
  {
    std::lock_guard lock(mu_);
    snapshot = gen_;
  }
  std::vector<core::Store> stores;
  db::StoreQuery query;
  query.limit = 1000;
  while (true) {
    auto page = repo_.ListStores(query);
    if (!page.ok()) {
      log::Error("cannot reload the stores of agents", {{"detail", page.error().message}});
      return;
    }
    for (auto& store : page->items) stores.push_back(std::move(store));
    if (page->next_after_id.empty()) break;
    query.after_id = page->next_after_id;
  }
  stores_refreshed_ms_ = now_ms;
  std::lock_guard lock(mu_);
  for (const auto& store : stores) {
    auto it = agents_.find(store.id);
    if (it == agents_.end() || it->second->local_gen > snapshot) continue;
    it->second->store_state = store.state;
    it->second->recorded_isolation = store.isolation_mode;
  }
}

void AgentHub::OnOperationQueuedElsewhere(const std::string& store_id) {
  if (!options_.shared_storage) return;
  std::uint64_t snapshot = 0;
  {
    std::lock_guard lock(mu_);
    snapshot = gen_;
  }
  auto ops = repo_.ListOperations(store_id, "", 100);
  if (!ops.ok()) {
    log::Error("cannot load queued operations", {{"store", store_id}, {"detail", ops.error().message}});
    return;
  }
  std::vector<std::shared_ptr<Wakeup>> wake;
  {
    std::lock_guard lock(mu_);
    MergeOpsLocked(*ops, snapshot, &wake);
    // Queued here already (the notification of our own insert): wake anyway, it is cheap.
    TakeWaitersLocked(store_id, &wake);
  }
  for (auto& w : wake) w->Fire();
}

void AgentHub::Start() {
  std::lock_guard lock(sweeper_mu_);
  if (sweeper_.joinable() || stopping_) return;
  sweeper_ = std::thread([this] { SweeperMain(); });
}

void AgentHub::Stop() {
  {
    std::lock_guard lock(sweeper_mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  sweeper_cv_.notify_all();
  if (sweeper_.joinable()) sweeper_.join();
  {
    // The last flush writes every time not written yet, so a restart starts from them.
    std::lock_guard lock(mu_);
    for (auto& [store, live] : agents_) {
      if (live->record.last_seen_ms.value_or(0) > live->seen_written_ms) live->dirty = true;
      for (const auto& [name, at] : live->check_successes) {
        if (at > live->success_written[name]) live->unsaved_successes.insert(name);
      }
    }
  }
  SweepOnce(true);
  std::vector<std::shared_ptr<Wakeup>> wake;
  {
    std::lock_guard lock(mu_);
    for (auto& [store, list] : waiters_) {
      for (auto& w : list) {
        if (auto p = w.lock()) wake.push_back(std::move(p));
      }
    }
    waiters_.clear();
  }
  for (auto& w : wake) w->Fire();
}

void AgentHub::SweeperMain() {
  auto period_ms = core::SweepPeriodMs(options_.heartbeat_interval_ms);
  if (options_.shared_storage)
    period_ms = std::max<std::int64_t>(50, std::min(period_ms, options_.refresh_interval_ms));
  const auto period = std::chrono::milliseconds(period_ms);
  auto last_flush = std::chrono::steady_clock::now();
  auto next_sweep = last_flush + period;
  std::unique_lock lock(sweeper_mu_);
  while (!stopping_) {
    // Woken early by heartbeats that changed an agent: their writes go out in one batch
    // (more gather while it commits), without waiting for the next sweep.
    sweeper_cv_.wait_until(lock, next_sweep, [this] { return stopping_ || changes_pending_; });
    if (stopping_) break;
    changes_pending_ = false;
    lock.unlock();
    const auto now = std::chrono::steady_clock::now();
    if (now < next_sweep) {
      FlushChanges();
    } else {
      next_sweep = now + period;
      const bool flush_all = now - last_flush >= std::chrono::milliseconds(options_.flush_interval_ms);
      if (flush_all) last_flush = now;
      SweepOnce(flush_all);
    }
    lock.lock();
  }
}

void AgentHub::FlushChanges() {
  db::Repository::TelemetryBatch batch;
  const bool lead = leading();
  {
    std::lock_guard lock(mu_);
    for (const auto& store : changed_) {
      auto it = agents_.find(store);
      if (it == agents_.end() || !it->second->changed || it->second->record.revoked_at_ms) continue;
      batch.agents.push_back(TelemetryLocked(*it->second, lead));
      it->second->changed = false;
      it->second->dirty = false;
    }
    changed_.clear();
  }
  if (batch.agents.empty()) return;
  if (auto s = repo_.WriteTelemetry(batch); !s.ok()) {
    // Kept dirty: the next full flush writes them again.
    log::Error("cannot write agent telemetry", {{"agents", batch.agents.size()}, {"detail", s.error().message}});
    std::lock_guard lock(mu_);
    for (const auto& agent : batch.agents) {
      if (auto it = agents_.find(agent.store_id); it != agents_.end()) it->second->dirty = true;
    }
  }
}

std::optional<AgentIdentity> AgentHub::Authenticate(std::string_view credential) const {
  const auto hash = Sha256Hex(credential);
  std::lock_guard lock(mu_);
  auto it = credentials_.find(hash);
  if (it == credentials_.end()) return std::nullopt;
  auto live = agents_.find(it->second);
  if (live == agents_.end() || live->second->record.revoked_at_ms) return std::nullopt;
  return AgentIdentity{live->second->record.store_id, live->second->record.id};
}

bool AgentHub::AllowRate(const std::string& store_id) {
  const auto now = now_ms_();
  std::lock_guard lock(mu_);
  auto [it, inserted] = buckets_.try_emplace(store_id, Bucket{options_.agent_burst, now});
  auto& b = it->second;
  if (!inserted) {
    const double refill = static_cast<double>(std::max<std::int64_t>(0, now - b.last_ms)) / 1000.0 * options_.agent_rps;
    b.tokens = std::min(options_.agent_burst, b.tokens + refill);
    b.last_ms = now;
  }
  if (b.tokens < 1.0) return false;
  b.tokens -= 1.0;
  return true;
}

void AgentHub::AssessLocked(Live& live, std::int64_t now_ms) {
  live.availability = core::AvailabilityAt(live.record.last_seen_ms, now_ms, options_.heartbeat_interval_ms);
  live.health =
      Assess(live.availability, live.store_state, live.recorded_isolation, live.record.reported_isolation, live.checks);
  live.record.availability = std::string(core::ToString(live.availability));
  live.record.health = std::string(core::ToString(live.health.health));
}

db::Repository::AgentTelemetry AgentHub::TelemetryLocked(const Live& live, bool lead) const {
  db::Repository::AgentTelemetry t;
  t.store_id = live.record.store_id;
  t.agent_id = live.record.id;
  t.agent_version = live.record.agent_version;
  t.last_seen_ms = live.record.last_seen_ms;
  t.availability = live.record.availability;
  t.health = live.record.health;
  if (options_.shared_storage && !lead) {
    // Not the leader: the columns stay as the leader wrote them.
    t.availability = live.db_availability;
    t.health = live.db_health;
  }
  t.release = live.record.release;
  t.reported_isolation = live.record.reported_isolation;
  t.allowed_operations = live.record.allowed_operations;
  t.checks_json = boost::json::serialize(protocol::ChecksToJson(live.checks));
  return t;
}

protocol::HeartbeatAck AgentHub::RecordHeartbeat(const AgentIdentity& agent, const protocol::Heartbeat& heartbeat,
                                                 std::function<void()>* blocking_rest) {
  const auto now = now_ms_();
  const bool shared = options_.shared_storage;
  const bool lead = leading();
  bool changed = false;
  std::optional<core::Health> health;
  std::optional<std::pair<core::Availability, core::Health>> status;  // when it changed
  {
    std::lock_guard lock(mu_);
    auto it = agents_.find(agent.store_id);
    if (it != agents_.end() && it->second->record.id == agent.agent_id) {
      Live& live = *it->second;
      const auto before_availability = live.availability;
      const auto before_health = live.health;
      live.record.last_seen_ms = now;
      std::optional<std::string> isolation;
      if (heartbeat.isolation_mode) isolation = std::string(core::ToString(*heartbeat.isolation_mode));
      std::vector<std::string> allowed;
      allowed.reserve(heartbeat.allowed_operations.size());
      for (auto name : heartbeat.allowed_operations) allowed.emplace_back(core::ToString(name));
      // What the agent reports, beyond the time, is written at the next flush when it
      // changed; the time alone once seen_write_ms has passed since it was last written.
      const bool reported_changed = live.record.agent_version != heartbeat.agent_version ||
                                    live.record.release != heartbeat.release ||
                                    live.record.reported_isolation != isolation ||
                                    live.record.allowed_operations != allowed || live.checks != heartbeat.checks;
      if (reported_changed) {
        live.record.agent_version = heartbeat.agent_version;
        live.record.release = heartbeat.release;
        live.record.reported_isolation = std::move(isolation);
        live.record.allowed_operations = std::move(allowed);
        live.checks = heartbeat.checks;
      }
      // Shared: other replicas judge from what is written, so every heartbeat is written
      // (in the next sweep's batch).
      if (reported_changed || shared || now - live.seen_written_ms >= options_.seen_write_ms) {
        live.dirty = true;
        live.seen_written_ms = now;
      }
      for (const auto& check : heartbeat.checks) {
        if (check.status != core::CheckStatus::kPass) continue;
        const std::string name(core::ToString(check.name));
        live.check_successes[name] = now;
        auto& written = live.success_written[name];
        if (now - written >= options_.success_write_ms) {
          live.unsaved_successes.insert(name);
          written = now;
        }
      }
      AssessLocked(live, now);
      health = live.health.health;
      const bool publish = shared ? lead && PublishDueLocked(live)
                                  : live.availability != before_availability || live.health != before_health;
      if (publish) {
        changed = !live.changed;
        live.changed = true;
        changed_.insert(agent.store_id);
        status = std::make_pair(live.availability, live.health.health);
      }
    }
  }
  if (status && status_listener_) status_listener_(agent.store_id, agent.agent_id, status->first, status->second);
  if (changed) {
    {
      std::lock_guard lock(sweeper_mu_);
      changes_pending_ = true;
    }
    sweeper_cv_.notify_one();
  }
  if (observer_ && health && watches_ && watches_(agent.store_id)) {
    auto observe = [this, store_id = agent.store_id, release = heartbeat.release, health = *health] {
      observer_(store_id, release, health);
    };
    if (blocking_rest != nullptr) {
      *blocking_rest = std::move(observe);
    } else {
      observe();
    }
  }
  protocol::HeartbeatAck ack;
  ack.heartbeat_interval_s = static_cast<int>(options_.heartbeat_interval_ms / 1000);
  ack.server_time_ms = now;
  return ack;
}

std::shared_ptr<Wakeup> AgentHub::Subscribe(const std::string& store_id) {
  auto wakeup = std::make_shared<Wakeup>();
  std::lock_guard lock(mu_);
  auto& list = waiters_[store_id];
  std::erase_if(list, [](const std::weak_ptr<Wakeup>& w) { return w.expired(); });
  list.push_back(wakeup);
  return wakeup;
}

Result<std::vector<db::OperationRecord>> AgentHub::TakeDeliverable(const AgentIdentity& agent,
                                                                   const std::string& session) {
  const auto now = now_ms_();
  std::vector<db::OperationRecord> taken;
  std::vector<db::OperationRecord> before;
  {
    std::lock_guard lock(mu_);
    for (auto& [id, op] : open_ops_) {
      if (op.store_id != agent.store_id || now >= DeadlineOf(op, options_.finish_grace_ms)) continue;
      const bool queued = op.state == "queued";
      const bool redeliver =
          op.state == "delivered" &&
          (op.delivered_session != session || now - op.delivered_at_ms.value_or(0) >= options_.redeliver_after_ms);
      if (!queued && !redeliver) continue;
      before.push_back(op);
      // Claimed in memory at once, so that a concurrent poll does not take it too.
      op.state = "delivered";
      op.delivered_at_ms = now;
      op.delivered_session = session;
      op.delivery_count += 1;
      op.version += 1;
      if (options_.shared_storage) op_touched_[id] = ++gen_;
      taken.push_back(op);
    }
  }
  if (taken.empty()) return taken;
  db::Repository::TelemetryBatch batch;
  for (const auto& op : taken) batch.deliveries.push_back({op.id, session, now});
  if (auto s = repo_.WriteTelemetry(batch); !s.ok()) {
    std::lock_guard lock(mu_);
    for (auto& op : before) {
      if (auto it = open_ops_.find(op.id); it != open_ops_.end()) it->second = op;
    }
    return s.error();
  }
  std::sort(taken.begin(), taken.end(), [](const auto& a, const auto& b) {
    return a.created_at_ms != b.created_at_ms ? a.created_at_ms < b.created_at_ms : a.id < b.id;
  });
  return taken;
}

void AgentHub::OnEnrolled(const db::AgentRecord& agent, const core::Store& store) {
  std::lock_guard lock(mu_);
  ++gen_;
  if (auto old = agents_.find(agent.store_id); old != agents_.end())
    credentials_.erase(old->second->record.credential_hash);
  auto live = std::make_unique<Live>();
  live->record = agent;
  live->store_state = store.state;
  live->recorded_isolation = store.isolation_mode;
  live->db_checks_json = agent.checks_json;
  live->local_gen = gen_;
  AssessLocked(*live, now_ms_());
  credentials_[agent.credential_hash] = agent.store_id;
  agents_[agent.store_id] = std::move(live);
}

void AgentHub::OnRotated(const std::string& store_id, const std::string& credential_hash, std::int64_t at_ms) {
  std::lock_guard lock(mu_);
  auto it = agents_.find(store_id);
  if (it == agents_.end()) return;
  it->second->local_gen = ++gen_;
  credentials_.erase(it->second->record.credential_hash);
  it->second->record.credential_hash = credential_hash;
  it->second->record.rotated_at_ms = at_ms;
  credentials_[credential_hash] = store_id;
}

void AgentHub::OnRevoked(const std::string& store_id, std::int64_t at_ms) {
  std::lock_guard lock(mu_);
  auto it = agents_.find(store_id);
  if (it == agents_.end()) return;
  it->second->local_gen = ++gen_;
  credentials_.erase(it->second->record.credential_hash);
  it->second->record.revoked_at_ms = at_ms;
}

void AgentHub::OnStoreChanged(const core::Store& store) {
  std::lock_guard lock(mu_);
  auto it = agents_.find(store.id);
  if (it == agents_.end()) return;
  it->second->local_gen = ++gen_;
  it->second->store_state = store.state;
  it->second->recorded_isolation = store.isolation_mode;
  AssessLocked(*it->second, now_ms_());
}

void AgentHub::OnOperationQueued(const db::OperationRecord& operation) {
  std::vector<std::shared_ptr<Wakeup>> wake;
  {
    std::lock_guard lock(mu_);
    open_ops_[operation.id] = operation;
    if (options_.shared_storage) op_touched_[operation.id] = ++gen_;
    TakeWaitersLocked(operation.store_id, &wake);
  }
  for (auto& w : wake) w->Fire();
}

void AgentHub::OnOperationFinished(const db::OperationRecord& operation) {
  std::lock_guard lock(mu_);
  open_ops_.erase(operation.id);
  if (options_.shared_storage) op_touched_[operation.id] = ++gen_;
}

AgentView AgentHub::ViewLocked(const Live& live) const {
  AgentView view;
  view.record = live.record;
  view.checks = live.checks;
  view.store_state = live.store_state;
  view.recorded_isolation = live.recorded_isolation;
  view.check_successes = live.check_successes;
  view.availability = core::AvailabilityAt(live.record.last_seen_ms, now_ms_(), options_.heartbeat_interval_ms);
  view.health =
      Assess(view.availability, live.store_state, live.recorded_isolation, live.record.reported_isolation, live.checks);
  view.record.availability = std::string(core::ToString(view.availability));
  view.record.health = std::string(core::ToString(view.health.health));
  return view;
}

std::optional<AgentView> AgentHub::View(const std::string& store_id) const {
  std::lock_guard lock(mu_);
  auto it = agents_.find(store_id);
  if (it == agents_.end()) return std::nullopt;
  return ViewLocked(*it->second);
}

std::vector<AgentView> AgentHub::ViewAll() const {
  std::lock_guard lock(mu_);
  std::vector<AgentView> views;
  views.reserve(agents_.size());
  for (const auto& [store, live] : agents_) views.push_back(ViewLocked(*live));
  return views;
}

AgentHub::Tally AgentHub::Count() const {
  const auto now = now_ms_();
  Tally tally;
  std::lock_guard lock(mu_);
  for (const auto& [store, live] : agents_) {
    if (live->record.revoked_at_ms) continue;
    const auto availability = core::AvailabilityAt(live->record.last_seen_ms, now, options_.heartbeat_interval_ms);
    // The last assessment holds unless time alone moved the availability since (rare).
    const auto health = availability == live->availability
                            ? live->health.health
                            : Assess(availability, live->store_state, live->recorded_isolation,
                                     live->record.reported_isolation, live->checks)
                                  .health;
    ++tally.by_availability[availability];
    ++tally.by_health[health];
    ++tally.agents;
  }
  return tally;
}

std::optional<db::OperationRecord> AgentHub::OpenOperation(const std::string& id) const {
  std::lock_guard lock(mu_);
  auto it = open_ops_.find(id);
  if (it == open_ops_.end()) return std::nullopt;
  return it->second;
}

void AgentHub::SweepOnce(bool flush_all) {
  const bool shared = options_.shared_storage;
  if (shared) {
    if (auto s = Refresh(); !s.ok()) {
      log::Error("cannot refresh the agents from the database", {{"detail", s.error().message}});
    }
  }
  const bool lead = leading();
  const auto now = now_ms_();
  db::Repository::TelemetryBatch batch;
  std::vector<std::string> written;
  struct StatusChange {
    std::string store_id, agent_id;
    core::Availability availability;
    core::Health health;
  };
  std::vector<StatusChange> statuses;
  {
    std::lock_guard lock(mu_);
    changed_.clear();  // this pass writes every pending change
    for (auto& [store, live] : agents_) {
      if (live->record.revoked_at_ms) continue;
      const auto before_availability = live->availability;
      const auto before_health = live->health;
      AssessLocked(*live, now);
      // Shared: only the leader publishes, what differs from the stored columns.
      const bool changed = shared ? lead && PublishDueLocked(*live)
                                  : live->availability != before_availability || live->health != before_health;
      if (changed) {
        log::Info("agent availability",
                  {{"store", store}, {"availability", live->record.availability}, {"health", live->record.health}});
        statuses.push_back({store, live->record.id, live->availability, live->health.health});
      }
      if (changed || live->changed || ((flush_all || shared) && live->dirty)) {
        batch.agents.push_back(TelemetryLocked(*live, lead));
        live->dirty = false;
        live->changed = false;
        written.push_back(store);
      }
      if (flush_all) {
        for (const auto& name : live->unsaved_successes) {
          batch.successes.push_back(db::LastSuccess{store, "check", name, live->check_successes[name], ""});
        }
        live->unsaved_successes.clear();
      }
    }
  }
  if (status_listener_) {
    for (const auto& st : statuses) status_listener_(st.store_id, st.agent_id, st.availability, st.health);
  }
  if (!batch.agents.empty() || !batch.successes.empty()) {
    if (auto s = repo_.WriteTelemetry(batch); !s.ok()) {
      log::Error("cannot write agent telemetry", {{"agents", batch.agents.size()}, {"detail", s.error().message}});
      std::lock_guard lock(mu_);
      for (const auto& store : written) {
        if (auto it = agents_.find(store); it != agents_.end()) it->second->dirty = true;
      }
      for (const auto& success : batch.successes) {
        if (auto it = agents_.find(success.store_id); it != agents_.end()) {
          it->second->unsaved_successes.insert(success.name);
        }
      }
    }
  }
  if (lead) ExpireDue(now);
}

void AgentHub::ExpireDue(std::int64_t now_ms) {
  std::vector<db::OperationRecord> due;
  {
    std::lock_guard lock(mu_);
    for (const auto& [id, op] : open_ops_) {
      if (now_ms >= DeadlineOf(op, options_.finish_grace_ms)) due.push_back(op);
    }
  }
  for (const auto& op : due) {
    db::OperationRecord updated = op;
    updated.state = std::string(core::ToString(core::OperationState::kExpired));
    updated.code = "expired";
    updated.finished_at_ms = now_ms;
    updated.version = op.version + 1;
    db::WriteBatch batch;
    if (options_.shared_storage && leader_.fence) {
      batch.fence = leader_.fence();
      if (!batch.fence) return;  // not the leader any more
    }
    batch.effects.emplace_back(db::UpdateOperationEffect{updated, op.version});
    batch.audit.push_back(SystemAuditEntry(now_ms, "operation.expire", "store/" + op.store_id, "ok",
                                           {{"operation", op.id}, {"name", op.name}, {"was", op.state}}));
    auto written = repo_.Apply(batch);
    if (written.ok()) {
      log::Info("operation expired", {{"operation", op.id}, {"store", op.store_id}, {"name", op.name}});
      OnOperationFinished(updated);
      continue;
    }
    // Someone else moved it (the agent reported, or a delivery): take the stored state.
    auto stored = repo_.GetOperation(op.id);
    if (batch.fence && written.error().code == ErrorCode::kPreconditionFailed && stored.ok() &&
        stored->version == op.version) {
      // Nothing moved the operation: the fence refused the write, the lease is lost.
      log::Info("operation expiry stopped: leadership lost", {{"operation", op.id}});
      if (leader_.lost) leader_.lost();
      return;
    }
    std::lock_guard lock(mu_);
    if (!stored.ok()) {
      log::Error("cannot expire operation", {{"operation", op.id}, {"detail", written.error().message}});
      continue;
    }
    const auto state = core::ParseOperationState(stored->state);
    if (!state || core::IsFinal(*state)) {
      open_ops_.erase(op.id);
    } else {
      open_ops_[op.id] = *stored;
    }
  }
}

}  // namespace storeplane::server
