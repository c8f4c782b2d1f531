// Leadership: whether this replica is the leader now, and the fence its leader-only writes
// carry (ADR 0012). A thread takes or renews the lease in the database every `renew_ms`;
// the replica counts itself leader until `sent + lease - margin` on its own monotonic clock,
// where `sent` is when the last successful renewal was sent, so it stops leader work
// before the database can hand the lease to another replica. A fenced write refused by the
// database (kPreconditionFailed from a batch with a fence) means the lease was lost: the
// caller reports it with LostLeadership() and leader work stops at once.
//
// On SQLite the repository always grants token 1: the one process is always the leader.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "db/repository.h"

namespace storeplane::server {

// Whether a write was refused because its fence no longer holds the lease (the replica
// lost leadership), as opposed to an ordinary version conflict (also kPreconditionFailed).
bool IsFenceRefusal(const Error& error);

class Leadership {
 public:
  // How the lease is taken, renewed and given up: the repository's calls, or a test's.
  struct Lease {
    std::function<Result<std::optional<std::int64_t>>(std::string_view holder, std::int64_t lease_ms)> acquire;
    std::function<Status(std::string_view holder)> release;
  };
  struct Options {
    std::string holder;              // this replica's name: unique among replicas (host, pid, random)
    std::int64_t lease_ms = 10'000;  // how long a lease lasts without renewal
    std::int64_t renew_ms = 3'000;   // how often the holder renews (and others try)
    std::int64_t margin_ms = 2'000;  // stop this long before the lease could expire
  };
  // `monotonic_ms`: a steady clock (tests may drive it).
  Leadership(db::Repository& repo, Options options, std::function<std::int64_t()> monotonic_ms);
  // Over any lease (tests: a lease that is never granted, or granted on demand).
  Leadership(Lease lease, Options options, std::function<std::int64_t()> monotonic_ms);
  ~Leadership();  // Stop()
  Leadership(const Leadership&) = delete;
  Leadership& operator=(const Leadership&) = delete;

  // Tries once at once (so a single replica leads from its first moment), then starts the
  // renewal thread.
  void Start();
  // Ends the thread and gives the lease up (another replica need not wait for it to expire).
  void Stop();

  // The fence for a leader-only write, when this replica leads now; nullopt otherwise.
  std::optional<db::Fence> fence() const;
  bool is_leader() const { return fence().has_value(); }
  const std::string& holder() const { return options_.holder; }
  // Times this replica became leader (for metrics and tests).
  std::uint64_t terms() const { return terms_.load(); }

  // Called when gaining or losing leadership (on the renewal thread, or the caller of
  // LostLeadership or Stop): reconcilers wake up, or drop in-memory leader state. A
  // listener must not call AddListener/RemoveListener. Thread-safe, at any time; returns an
  // id for RemoveListener.
  int AddListener(std::function<void(bool leader)> listener);
  // After it returns, the listener is never called again (nor running): call it before the
  // listener's owner goes away.
  void RemoveListener(int id);

  // A fenced write was refused: this replica is not the leader any more (until it renews).
  void LostLeadership();

  // One acquire-or-renew attempt now (the thread's body; tests may call it).
  void RenewOnce();

 private:
  void Main();
  void Notify(bool leader);

  Lease lease_;
  const Options options_;
  const std::function<std::int64_t()> now_ms_;

  mutable std::mutex mu_;
  std::optional<std::int64_t> token_;  // guarded by mu_
  std::int64_t deadline_ms_ = 0;       // guarded by mu_: leader until then (monotonic)

  // Held while listeners run, so that RemoveListener waits for a call in flight; recursive,
  // as a listener may report a lost lease itself.
  std::recursive_mutex listeners_mu_;
  std::vector<std::pair<int, std::function<void(bool)>>> listeners_;  // guarded by listeners_mu_
  int next_listener_id_ = 1;                                          // guarded by listeners_mu_

  std::atomic<std::uint64_t> terms_{0};
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;  // guarded by stop_mu_
  std::thread thread_;
};

// A name for this replica that a restart of the same installation keeps: the host name and
// a digest of the data directory's absolute path. A replica restarted after a crash thus
// takes its own lease back at once instead of waiting for it to expire; the daemon holds
// a lock on the data directory so that no two processes share the name.
std::string DefaultReplicaName(const std::string& data_dir);

}  // namespace storeplane::server
