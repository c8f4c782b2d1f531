// The CI/CD side of the store lifecycle, run by the server on its own: sends the outbox's
// triggers (asking the provider first whether a run already exists when an earlier attempt
// may have reached it, so a crash never sends one twice), polls runs without news, times
// runs out, applies outcomes from callbacks and polls, judges the health gate from the
// agent's heartbeats, and starts one automatic rollback when a gate fails. Every
// transition is one audited transaction with its store's lifecycle change.
//
// Replicas (ADR 0012): all of that is leader work, done only while the Leadership leads,
// and every write it makes carries the leader's fence. A write refused for its fence ends
// the term at once (Leadership::LostLeadership). In-memory leader state (the gates'
// observation windows, the poll schedule) belongs to one term: it is dropped when the term
// ends and rebuilt from the database when one begins, as at a restart. Reports from
// callbacks (ApplyReport) are made on any replica and carry no fence.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "cicd/provider.h"
#include "core/agent_health.h"
#include "core/pipeline_run.h"
#include "core/result.h"
#include "db/repository.h"
#include "server/config.h"

namespace storeplane::server {

class Leadership;
class ProviderPacer;

class RunCoordinator {
 public:
  using Clock = std::function<std::int64_t()>;
  struct ProviderSlot {
    std::unique_ptr<cicd::Provider> provider;
    std::vector<std::string> callback_secrets;  // current first, then the previous one
  };

  RunCoordinator(db::Repository& repo, const CicdConfig& config, std::string public_url,
                 std::map<std::string, ProviderSlot> providers, Clock now_ms);
  ~RunCoordinator();
  RunCoordinator(const RunCoordinator&) = delete;
  RunCoordinator& operator=(const RunCoordinator&) = delete;

  // Builds the providers of the configuration and reads the callback secrets.
  static Result<std::map<std::string, ProviderSlot>> MakeProviders(const CicdConfig& config);

  // Told of every store a run changed (its lifecycle state, release or isolation mode).
  void SetStoreObserver(std::function<void(const core::Store&)> observer) { store_observer_ = std::move(observer); }

  // Told of every run of a rollout that reached a final state (after its commit).
  void SetRolloutRunObserver(std::function<void(const db::PipelineRunRecord&)> observer) {
    rollout_run_observer_ = std::move(observer);
  }
  // Before Start(): triggers wait for a token of their provider (null: no pacing).
  void SetPacer(ProviderPacer* pacer) { pacer_ = pacer; }

  // Before Start(): where pipelines send their callbacks (base URL of this server).
  void SetPublicUrl(std::string url) { public_url_ = std::move(url); }

  // Before Start(): leader work runs only while `leadership` leads (null, the default:
  // always, with no fence: a single process, tests and tools). The coordinator listens to
  // it until Stop(); `leadership` must outlive that.
  void SetLeadership(Leadership* leadership);

  // Loads the leader state (when leading) and starts the worker.
  void Start();
  void Stop();
  // A run was queued (or an approved change created one): send its trigger soon.
  void Kick();

  bool HasProvider(const std::string& name) const { return providers_.contains(name); }
  const std::vector<std::string>* CallbackSecrets(const std::string& provider) const;

  // What a provider reported about a run, from a signed callback (with its delivery id) or
  // from a poll. Applied in one transaction with the delivery id, so a replayed or
  // concurrent duplicate delivery is kAlreadyExists and moves nothing.
  struct Report {
    std::string run_id;
    cicd::ProviderRunStatus status = cicd::ProviderRunStatus::kNotFound;
    std::string external_id;
    std::string external_url;
    std::string provider;     // who reported
    std::string delivery_id;  // callbacks only
    std::string source;       // peer address or "poll"
    std::string request_id;
    bool schema_changed = false;  // the pipeline changed the database schema
  };
  Result<db::PipelineRunRecord> ApplyReport(const Report& report);

  // Whether a verifying run of the store has its health gate open (memory only, never blocks).
  bool GatesStore(const std::string& store_id);
  // One heartbeat of a store: feeds the health gate of its verifying run, if any.
  void ObserveHeartbeat(const std::string& store_id, const std::optional<std::string>& release, core::Health health);

  // One pass of each reconciler (nothing unless leading); the worker thread runs them,
  // tests may call them.
  void DispatchOnce();
  void PollOnce();

 private:
  // The term leader work runs in: whether this replica leads, and the fence its writes carry
  // (none without a Leadership).
  struct Term {
    bool leader = false;
    std::optional<db::Fence> fence;
  };
  Term CurrentTerm() const;
  // Whether `term` still holds (checked before each item of a pass and before a trigger).
  bool StillLeads(const Term& term) const;
  // The term a pass runs in, with the leader state rebuilt from the database when the term
  // is new; nullopt when not leading.
  std::optional<Term> BeginPass();
  void OnLeadership(bool leader);
  // Apply; a refusal for the fence ends the term.
  Result<db::WriteResult> Write(const db::WriteBatch& batch);
  void AuditSystem(const core::AuditEntry& entry, const std::optional<db::Fence>& fence);
  void Dispatch(const Term& term);
  void Poll(const Term& term);

  Result<db::PipelineRunRecord> ApplyReportWith(const Report& report, const std::optional<db::Fence>& fence);
  Result<db::PipelineRunRecord> ApplyReportOnce(const Report& report, const std::optional<db::Fence>& fence);
  Result<db::PipelineRunRecord> Move(db::PipelineRunRecord run, const std::vector<core::RunEvent>& events,
                                     const std::string& detail, const std::string& source,
                                     const std::string& request_id, std::vector<db::Effect> extra,
                                     const std::optional<db::Fence>& fence);
  void FinishGate(const std::string& run_id, bool passed, const std::string& detail, const Term& term);
  void Main();

  db::Repository& repo_;
  const CicdConfig& config_;
  std::string public_url_;
  std::map<std::string, ProviderSlot> providers_;
  Clock now_ms_;
  std::function<void(const core::Store&)> store_observer_;
  std::function<void(const db::PipelineRunRecord&)> rollout_run_observer_;
  ProviderPacer* pacer_ = nullptr;
  core::HealthGatePolicy gate_policy_;

  Leadership* leadership_ = nullptr;
  int listener_id_ = 0;

  // The leader state of one term, guarded by gates_mu_.
  std::mutex gates_mu_;
  std::map<std::string, std::pair<std::string, core::HealthGate>> gates_;  // store -> (run id, gate)
  std::map<std::string, std::int64_t> next_poll_ms_;                       // run id -> next poll
  std::map<std::string, int> poll_backoff_;                                // run id -> interval multiple
  bool rebuild_ = true;                                                    // the state is of no term
  std::int64_t state_token_ = 0;                                           // the term the state is of

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool kicked_ = false;
  std::thread worker_;
};

}  // namespace storeplane::server
