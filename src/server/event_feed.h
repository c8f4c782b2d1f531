// Feeds this replica's EventHub from the event log the replicas share (ADR 0012), for
// repositories that SharesEvents() (PostgreSQL). One thread per process: it LISTENs
// (Repository::WaitForNotifications), and on every event notification, and at least once
// every `poll_ms` regardless, reads the log after the last seq it published and
// PublishStored's it. So a missed NOTIFY (a dropped LISTEN connection, a notification
// queue overflow) only delays an event, never loses it. Operation notifications go to a
// callback (the AgentHub, to wake the agent's long-poll held by this replica).
//
// Events that no write batch causes (an agent's availability or health) go the other way:
// Append() queues them without blocking, and a second thread appends them to the log
// (Repository::AppendEvents), from where every replica's feed, this one's included, reads
// them.
//
// Errors (the database down) are logged once per failure streak, retried with backoff;
// the thread keeps going until Stop().
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "db/repository.h"
#include "server/event_hub.h"

namespace storeplane::server {

class EventFeed {
 public:
  struct Options {
    int wait_ms = 1000;         // one WaitForNotifications
    int poll_ms = 1000;         // read the log at least this often, notified or not
    int read_batch = 500;       // ReadEvents' limit
    int max_backoff_ms = 5000;  // between attempts while the database fails
    // Append()ed events waiting for the log; beyond this (the database down for long) the
    // oldest are dropped, with a warning.
    std::size_t max_pending = 10'000;
    // The shared log keeps events this long; the leader deletes older ones every
    // prune_every_ms (0: never). Streams behind that get a reset, as with the ring.
    std::int64_t retention_ms = 24LL * 3600 * 1000;
    int prune_every_ms = 60'000;
  };
  // Called on the feed's thread with the store id of a queued operation; must be quick.
  using OperationQueued = std::function<void(const std::string& store_id)>;

  EventFeed(db::Repository& repo, EventHub& hub, OperationQueued on_operation_queued);
  EventFeed(db::Repository& repo, EventHub& hub, OperationQueued on_operation_queued, Options options);
  ~EventFeed();  // Stop()
  EventFeed(const EventFeed&) = delete;
  EventFeed& operator=(const EventFeed&) = delete;

  // Positions the hub at the log's newest seq (hub.StartAt(repo.LastEventSeq())), so that
  // a stream opened from now on starts there, then starts the thread. If the log cannot
  // be read now, the thread positions the hub once it can.
  void Start();
  // Ends the threads (within about wait_ms), after one last attempt to append what
  // Append() queued. Idempotent.
  void Stop();

  // Replaces the operation callback, safely while running: once this returns, the old one
  // is not running and will not be called again (set nullptr before what it points at goes).
  void SetOnOperationQueued(OperationQueued on_operation_queued);

  // Queues an event for the shared log; never blocks on I/O (the AgentHub's status
  // listener runs on the heartbeat's I/O thread). Events are appended in call order; while
  // the database fails they wait, and are retried with backoff.
  void Append(EventDraft draft);

  // Whether this replica leads (it then prunes the log); unset: never prunes. Set before Start().
  void SetIsLeader(std::function<bool()> is_leader) { is_leader_ = std::move(is_leader); }

  // Told of every batch of events read from the log (after the hub has them), on the feed's
  // thread; must be quick (the daemon kicks the leader's reconcilers with it, so that work
  // requested on another replica starts at once). Set before Start().
  void SetOnPublished(std::function<void(const std::vector<db::StoredEvent>&)> fn) { on_published_ = std::move(fn); }

  // The newest seq published into the hub (tests, metrics).
  std::int64_t last_seq() const { return last_seq_.load(); }

 private:
  // A failure streak of one kind of call: logged at its first failure and when it ends.
  struct Streak {
    const char* what;
    bool failing = false;
  };
  void Run();
  bool Position();  // StartAt(LastEventSeq()); false on failure
  bool CatchUp();   // read until the log is exhausted; false on failure
  void Failed(Streak& streak, const Error& error);
  void Succeeded(Streak& streak);
  bool SleepUnlessStopped(int ms);  // false when stopping
  bool stopping();
  void RunAppender();

  void PruneIfDue();

  db::Repository& repo_;
  EventHub& hub_;
  std::function<bool()> is_leader_;
  std::function<void(const std::vector<db::StoredEvent>&)> on_published_;
  std::chrono::steady_clock::time_point prune_at_{};
  std::mutex callback_mu_;  // held while the callback runs
  OperationQueued on_operation_queued_;
  Options options_;

  bool positioned_ = false;  // the feed's thread only, after Start
  std::atomic<std::int64_t> last_seq_{0};
  Streak listen_{"listen for notifications"};
  Streak read_{"read the event log"};
  int backoff_ms_ = 0;

  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stop_ = false;
  std::thread thread_;

  // Append()'s queue and the thread that empties it.
  std::mutex append_mu_;
  std::condition_variable append_cv_;
  std::deque<db::StoredEvent> pending_;
  std::uint64_t front_index_ = 0;  // how many ever left pending_ (appended or dropped)
  bool dropping_ = false;          // dropped since the queue last had room (logged once)
  Streak append_{"append to the event log"};
  std::thread appender_;
};

}  // namespace storeplane::server
