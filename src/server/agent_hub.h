// The control plane's live view of the agents: credentials (by hash, in memory), the
// latest heartbeat of each, availability and health derived by the core, open operations
// and the long-polls waiting for them. Heartbeats only touch memory; a sweeper thread
// judges availability every quarter interval, writes changes of availability or health at
// once and everything else in batches, and expires operations that outlive their deadline.
//
// Shared storage (AgentHubOptions::shared_storage: several replicas on one PostgreSQL,
// ADR 0012). Off (SQLite, one process), everything above holds and this process's memory is
// the truth. On, the database is the meeting point of the replicas:
// - Every refresh (at each sweep; the sweeper runs every min(refresh_interval_ms, quarter
//   heartbeat interval)) reloads every agent row with ONE query (ListAgents) and every open
//   operation with one more (ListOpenOperations), and merges: a newer last_seen_ms in the
//   database (a heartbeat that went to another replica) wins, with its telemetry; new
//   enrollments, rotations and revocations made on other replicas take effect here. So a
//   credential revoked or rotated on any replica stops authenticating on every replica
//   within one refresh interval (plus the time of the query). Store state and isolation
//   are reloaded every store_refresh_interval_ms (ListStores, 1000 a page).
// - Availability is judged from the merged view (the later of memory and the database), so
//   an agent whose heartbeats move between replicas is never judged offline by either.
// - Only the leader (SetLeadership / SetLeaderHooks) publishes status changes, writes the
//   availability and health columns and expires operations. What it publishes is what
//   differs from those columns, so a new leader takes over where the old one stopped.
//   Other replicas judge availability for their views only, and write the heartbeats they
//   received (batched: every agent heard from since the last sweep) with the columns'
//   availability and health as last read, never their own judgement.
// - The leader's health gate (SetHeartbeatObserver) is also told of heartbeats that
//   reached other replicas, when a refresh brings a newer last_seen of a watched store.
// - Operations queued on another replica are loaded by OnOperationQueuedElsewhere (the
//   daemon calls it from LISTEN, Notification::kOperationQueued), which wakes the store's
//   long-polls here; the refresh also picks up any missed, and drops operations finished,
//   expired or moved on by other replicas.
// A local change (OnEnrolled, OnRotated, OnRevoked, OnStoreChanged, OnOperationQueued,
// OnOperationFinished, a delivery) made after a refresh's query began is never undone by
// that refresh's older rows.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/agent_health.h"
#include "core/operation.h"
#include "core/result.h"
#include "core/store.h"
#include "db/repository.h"
#include "protocol/agent_wire.h"
#include "server/wakeup.h"

namespace storeplane::server {

struct AgentHubOptions {
  std::int64_t heartbeat_interval_ms = 10'000;
  std::int64_t flush_interval_ms = 5'000;  // batch writes of heartbeat telemetry
  // A heartbeat that changes nothing but the times (last seen, a check's last pass) makes
  // its agent due for writing only once this much time has passed since its last write:
  // at 100,000 agents, writing every time at every flush is most of the server's work.
  std::int64_t seen_write_ms = 10'000;       // the daemon uses the heartbeat interval
  std::int64_t success_write_ms = 60'000;    // a check's last pass
  std::int64_t redeliver_after_ms = 30'000;  // a delivered, unfinished operation goes out again
  std::int64_t finish_grace_ms = 30'000;     // after delivery + timeout, an operation expires
  double agent_rps = 20;                     // per-agent sustained requests/s
  double agent_burst = 40;
  // Several replicas on one database (see the top of this file). Off: exactly one process.
  bool shared_storage = false;
  std::int64_t refresh_interval_ms = 1'000;         // shared: reload agents and open operations
  std::int64_t store_refresh_interval_ms = 10'000;  // shared: reload stores' state and isolation
};

class Leadership;

// Who an agent credential belongs to.
struct AgentIdentity {
  std::string store_id;
  std::string agent_id;
};

// What the operator API shows about one store's agent.
struct AgentView {
  db::AgentRecord record;  // telemetry fields hold the live values
  core::Availability availability = core::Availability::kNeverSeen;
  core::HealthAssessment health;
  std::vector<core::CheckResult> checks;
  core::StoreState store_state = core::StoreState::kRegistered;
  core::IsolationMode recorded_isolation = core::IsolationMode::kShared;
  std::map<std::string, std::int64_t> check_successes;  // check name -> last pass (ms)
};

class AgentHub {
 public:
  using Clock = std::function<std::int64_t()>;
  AgentHub(db::Repository& repo, AgentHubOptions options, Clock now_ms);
  ~AgentHub();
  AgentHub(const AgentHub&) = delete;
  AgentHub& operator=(const AgentHub&) = delete;

  // Loads agents, their stores and the open operations from the repository.
  Status Load();
  // Starts the sweeper thread; Stop() ends it after a final flush (also run by the destructor).
  void Start();
  void Stop();

  const AgentHubOptions& options() const { return options_; }

  // ---- Replicas (shared storage) --------------------------------------------------------
  // Who leads: `is_leader` now; `fence` for the leader-only writes (operation expiry):
  // nullopt when not leading any more, an empty function to write them unfenced; `lost`
  // when a fenced write was refused. Without hooks (or with shared_storage off) this hub
  // counts itself the leader. Set before Start().
  struct LeaderHooks {
    std::function<bool()> is_leader;
    std::function<std::optional<db::Fence>()> fence;
    std::function<void()> lost;
  };
  void SetLeaderHooks(LeaderHooks hooks) { leader_ = std::move(hooks); }
  // The hooks of a Leadership (which must outlive the hub's sweeper).
  void SetLeadership(Leadership* leadership);
  bool leading() const;
  // One refresh from the database now (the sweeper runs it at each sweep; tests may call it
  // while the sweeper is not running). A no-op without shared_storage.
  Status Refresh();
  // An operation was queued for `store_id` on some replica (LISTEN): loads the store's open
  // operations (one query) and wakes its long-polls here.
  void OnOperationQueuedElsewhere(const std::string& store_id);

  // ---- The agent channel ---------------------------------------------------------------
  // The agent owning this credential text, unless unknown or revoked.
  std::optional<AgentIdentity> Authenticate(std::string_view credential) const;
  // Per-agent token bucket.
  bool AllowRate(const std::string& store_id);
  // Remembers the heartbeat in memory. A change of availability or health is handed to the
  // sweeper, which writes it within moments in one batch with the others (the heartbeat
  // never waits for a disk). A watching observer is told before returning; with
  // `blocking_rest`, nothing blocks: the observer call (if any) is left in *blocking_rest
  // for the caller to run on a worker before answering.
  protocol::HeartbeatAck RecordHeartbeat(const AgentIdentity& agent, const protocol::Heartbeat& heartbeat,
                                         std::function<void()>* blocking_rest = nullptr);
  // A wake-up fired when an operation is queued for the store (or the hub stops).
  std::shared_ptr<Wakeup> Subscribe(const std::string& store_id);
  // The store's operations that `session` should run now: queued ones, and delivered ones
  // not finished whose delivery went to another session or is older than
  // redeliver_after_ms. They are recorded as delivered (durably) before being returned.
  Result<std::vector<db::OperationRecord>> TakeDeliverable(const AgentIdentity& agent, const std::string& session);

  // ---- Told by handlers after a committed change ---------------------------------------
  void OnEnrolled(const db::AgentRecord& agent, const core::Store& store);
  void OnRotated(const std::string& store_id, const std::string& credential_hash, std::int64_t at_ms);
  void OnRevoked(const std::string& store_id, std::int64_t at_ms);
  void OnStoreChanged(const core::Store& store);
  void OnOperationQueued(const db::OperationRecord& operation);
  void OnOperationFinished(const db::OperationRecord& operation);

  // ---- Views ---------------------------------------------------------------------------
  std::optional<AgentView> View(const std::string& store_id) const;
  std::vector<AgentView> ViewAll() const;  // ordered by store id
  // The open operation, if the hub holds it.
  std::optional<db::OperationRecord> OpenOperation(const std::string& id) const;

  // Told of every heartbeat (after it is recorded) of a store it watches: the run
  // coordinator's health gate. `watches` must not block; the observer may. Shared storage:
  // the leader's sweeper also calls it (from Refresh) for heartbeats that reached other
  // replicas, so set it before Start().
  using HeartbeatObserver =
      std::function<void(const std::string& store_id, const std::optional<std::string>& release, core::Health)>;
  using HeartbeatWatch = std::function<bool(const std::string& store_id)>;
  void SetHeartbeatObserver(HeartbeatObserver observer, HeartbeatWatch watches) {
    observer_ = std::move(observer);
    watches_ = std::move(watches);
  }

  // Told of every change of an agent's availability or health, outside the hub's lock (the
  // event stream). Must not block: it runs on the heartbeat's I/O thread too. Set before Start().
  using StatusListener =
      std::function<void(const std::string& store_id, const std::string& agent_id, core::Availability, core::Health)>;
  void SetStatusListener(StatusListener listener) { status_listener_ = std::move(listener); }

  // One sweep now (availability, flush of changes, expiry); the sweeper calls it, tests may.
  void SweepOnce(bool flush_all);

  // ---- Counts for /metrics -------------------------------------------------------------
  // Unrevoked agents by availability and by health, judged at this moment as View() judges
  // them; one pass under the lock, nothing copied. Revoked agents are left out (their
  // stores' health is what a store without an agent gets).
  struct Tally {
    std::map<core::Availability, std::int64_t> by_availability;
    std::map<core::Health, std::int64_t> by_health;
    std::int64_t agents = 0;  // unrevoked
  };
  Tally Count() const;

 private:
  struct Live;  // one agent's live state
  struct Bucket {
    double tokens;
    std::int64_t last_ms;
  };

  void AssessLocked(Live& live, std::int64_t now_ms);
  // Shared, leader: whether the judgement differs from the stored columns (then they are
  // taken as written: the caller publishes and writes it).
  bool PublishDueLocked(Live& live) const;
  // Loads the stores' state and isolation (shared, every store_refresh_interval_ms).
  void RefreshStores(std::int64_t now_ms);
  void MergeOpsLocked(const std::vector<db::OperationRecord>& ops, std::uint64_t snapshot,
                      std::vector<std::shared_ptr<Wakeup>>* wake);
  void TakeWaitersLocked(const std::string& store_id, std::vector<std::shared_ptr<Wakeup>>* wake);
  // Writes the changes RecordHeartbeat handed over (the sweeper thread, when woken).
  void FlushChanges();
  db::Repository::AgentTelemetry TelemetryLocked(const Live& live, bool lead) const;
  AgentView ViewLocked(const Live& live) const;
  void ExpireDue(std::int64_t now_ms);
  void SweeperMain();

  db::Repository& repo_;
  HeartbeatObserver observer_;
  StatusListener status_listener_;
  HeartbeatWatch watches_;
  AgentHubOptions options_;
  Clock now_ms_;

  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<Live>, std::less<>> agents_;  // by store id
  std::map<std::string, std::string, std::less<>> credentials_;       // credential hash -> store id
  std::map<std::string, db::OperationRecord, std::less<>> open_ops_;  // by operation id
  std::map<std::string, std::vector<std::weak_ptr<Wakeup>>, std::less<>> waiters_;
  std::map<std::string, Bucket, std::less<>> buckets_;
  std::set<std::string, std::less<>> changed_;  // stores whose change of availability/health awaits writing
  // Shared storage: a counter of local changes; agents carry theirs (Live::local_gen),
  // operations here (kept until a refresh whose query began after it).
  std::uint64_t gen_ = 0;
  std::map<std::string, std::uint64_t, std::less<>> op_touched_;
  std::int64_t stores_refreshed_ms_ = 0;  // shared: when the stores were last reloaded
  LeaderHooks leader_;

  std::mutex sweeper_mu_;
  std::condition_variable sweeper_cv_;
  bool stopping_ = false;
  bool changes_pending_ = false;  // under sweeper_mu_: wake the sweeper to write changed_
  std::thread sweeper_;
};

}  // namespace storeplane::server
