// The fleet rollout orchestrator (ADR 0011): the edge around core/rollout.h that owns the
// database, the clock, the agents' live state, the deploy windows and the provider pacing.
// For every rollout not yet final it loads the stored progress, observes the stores the
// core asks about, steps, and records the step in ONE transaction: each deploy or rollback
// run it decides (the run, its outbox entry and audit record, exactly as a single request
// would make it, PlanRun), the run ids on their targets, the changed targets, the progress
// and the commands consumed. Only after the commit does the run coordinator send the
// triggers. A restart (or a new leader) reloads the progress and never starts a store twice.
//
// A pass steps each active rollout until it has no news; the worker runs a pass when kicked
// (a new rollout, a command, one of its runs ending), at the earliest wake time a step asked
// for, and at least every second.
//
// Replicas (ADR 0012): passes run only while the Leadership leads, each step's transaction
// carries the leader's fence, a step refused for its fence ends the term at once, and the
// rollout cache (and the waits) belong to one term: dropped when it ends, reloaded from the
// database when one begins.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "core/agent_health.h"
#include "core/result.h"
#include "core/rollout.h"
#include "db/repository.h"
#include "server/config.h"
#include "server/rollout_requests.h"

namespace storeplane::server {

class Leadership;
class PolicyHolder;
class ProviderPacer;

// What the orchestrator knows of a store's agent. From the AgentHub in the server; tests and
// the benchmark may supply their own.
struct AgentObservation {
  core::Availability availability = core::Availability::kNeverSeen;
  core::Health health = core::Health::kUnknown;
  std::optional<std::string> release;  // as the agent reports it
};
using AgentObserver = std::function<AgentObservation(const std::string& store_id)>;

class RolloutOrchestrator {
 public:
  using Clock = std::function<std::int64_t()>;
  struct Dependencies {
    db::Repository& repo;
    const Config& config;                    // cicd (routes, run timeout)
    PolicyHolder& policy;                    // the deploy windows of the policy in force
    AgentObserver agents;                    // required
    ProviderPacer* pacer;                    // null: no pacing
    std::function<void()> on_runs_recorded;  // let the run coordinator send the triggers; may be empty
    Clock now_ms;
  };
  explicit RolloutOrchestrator(Dependencies deps);
  ~RolloutOrchestrator();
  RolloutOrchestrator(const RolloutOrchestrator&) = delete;
  RolloutOrchestrator& operator=(const RolloutOrchestrator&) = delete;

  // Before Start(): passes run only while `leadership` leads (null, the default: always,
  // with no fence). The orchestrator listens to it until Stop(); it must outlive that.
  void SetLeadership(Leadership* leadership);

  void Start();
  void Stop();
  // Something changed (a rollout created, a command queued, a rollout's run ended): pass soon.
  void Kick();

  // One pass over every active rollout; each is stepped until it has no news. Returns the
  // number of steps recorded (0, doing nothing, when not leading). The worker calls it; tests and the benchmark may too
  // (never while the worker runs).
  int PassOnce();
  // The earliest time a step asked to be woken at, if any (after the last pass).
  std::optional<std::int64_t> next_wake_ms() const;
  // Why the rollout started nothing at its last step although stores were waiting (the
  // provider's pacing or a closed deploy window), if so.
  std::optional<RolloutWait> WaitingFor(const std::string& rollout_id) const;

 private:
  // A rollout's spec, plan and progress as of its stored version (the orchestrator is the
  // only writer of progress, so a version it wrote itself need not be read again).
  struct Loaded {
    std::int64_t version = 0;
    core::RolloutSpec spec;
    core::RolloutPlan plan;
    core::RolloutProgress progress;
  };
  // Steps one rollout once; true when it should be stepped again now.
  Result<bool> StepRollout(const db::RolloutRecord& rollout, const std::optional<db::Fence>& fence);
  // Whether the term of `fence` still holds (always without a Leadership).
  bool StillLeads(const std::optional<db::Fence>& fence) const;
  // Forgets the leader state of a term: the cache, the waits, the wake time.
  void DropTermState();
  Result<Loaded*> Load(const db::RolloutRecord& rollout);
  void Main();

  Dependencies deps_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool kicked_ = false;
  std::optional<std::int64_t> next_wake_ms_;
  std::map<std::string, RolloutWait> waiting_;  // guarded by mu_
  std::map<std::string, Loaded> loaded_;        // the worker's (or PassOnce caller's) only
  std::optional<std::int64_t> loaded_token_;    // the term loaded_ is of (the same)
  Leadership* leadership_ = nullptr;
  int listener_id_ = 0;
  std::atomic<bool> term_changed_{false};  // set by the listener: drop the cache
  std::thread worker_;
};

}  // namespace storeplane::server
