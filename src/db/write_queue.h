// WriteQueue: the single writer thread that owns the only read-write connection. Callers
// Submit() a mutation and wait on the returned future; the writer commits queued mutations
// in batches (group commit: one BEGIN IMMEDIATE ... COMMIT, one fsync, per batch), each in
// its own SAVEPOINT so a failing mutation is rolled back alone. A future completes only
// after COMMIT returned. Submit() is thread-safe; mutations run on the writer thread only.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "core/result.h"
#include "db/sqlite_handle.h"

namespace storeplane::db {

struct WriteQueueOptions {
  bool group_commit = true;  // false: one transaction per mutation
  int max_batch = 512;       // most mutations in one transaction (>= 1)
  // With an observer: how long the writer sleeps while idle before calling OnIdle().
  // Zero: never (the writer sleeps until work arrives).
  std::chrono::milliseconds idle_tick{0};
};

// State that lives on the writer thread alongside its transactions (the audit chain head).
// Every call comes from the writer thread, in this order per batch: OnBatchBegin() before
// BEGIN, then either BeforeCommit() and (if COMMIT succeeded) nothing more, or
// OnBatchRolledBack() when the batch did not commit. OnIdle() and OnClose() run outside
// any transaction; the observer may open and commit its own there.
class WriteObserver {
 public:
  virtual ~WriteObserver() = default;
  virtual void OnBatchBegin() {}
  // Inside the batch's transaction, after every mutation; may write. An error here is the
  // observer's to handle: it must leave the transaction open and usable.
  virtual void BeforeCommit(Connection&) {}
  virtual void OnBatchRolledBack() {}
  virtual void OnIdle(Connection&) {}
  // After the last batch, when the queue is closing.
  virtual void OnClose(Connection&) {}
};

// Counters since construction; read with WriteQueue::stats().
struct WriteQueueStats {
  std::uint64_t batches = 0;         // transactions committed
  std::uint64_t mutations = 0;       // mutations in committed transactions (ok or rolled back alone)
  std::uint64_t failed_batches = 0;  // transactions that could not begin or commit
  std::uint64_t largest_batch = 0;
  std::uint64_t pending = 0;  // mutations queued now, not yet taken by the writer
};

class WriteQueue {
 public:
  // A change run against the write connection inside a savepoint. Returning an error
  // rolls back only this mutation; its effects otherwise commit with the batch. Must not
  // open or end transactions itself. Exceptions are caught and become kInternal.
  using Mutation = std::function<Status(Connection&)>;

  WriteQueue(Connection conn, WriteQueueOptions options, std::shared_ptr<WriteObserver> observer = nullptr);
  // Drains everything already submitted, commits it, then joins the writer thread.
  ~WriteQueue();
  WriteQueue(const WriteQueue&) = delete;
  WriteQueue& operator=(const WriteQueue&) = delete;

  // Queues a mutation. The future yields the mutation's status once its transaction has
  // committed, or kUnavailable if the transaction could not commit (or the queue is
  // shutting down).
  std::future<Status> Submit(Mutation mutation);
  // Submit() with `on_committed`, run on the writer thread right after COMMIT when the
  // mutation succeeded, before its future completes, in commit order. It must be quick and
  // must not wait for the queue (it feeds the event stream).
  std::future<Status> Submit(Mutation mutation, std::function<void()> on_committed);
  // Submit() and wait.
  Status Run(Mutation mutation) { return Submit(std::move(mutation)).get(); }

  WriteQueueStats stats() const;

 private:
  struct Pending {
    Mutation mutation;
    std::promise<Status> done;
    std::function<void()> on_committed;
  };

  void WriterLoop();
  void CommitBatch(std::vector<Pending>& batch);

  Connection conn_;  // used only by the writer thread
  const WriteQueueOptions options_;
  const std::shared_ptr<WriteObserver> observer_;  // called only by the writer thread

  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::deque<Pending> queue_;  // guarded by mu_
  bool stopping_ = false;      // guarded by mu_
  WriteQueueStats stats_;      // guarded by mu_

  std::thread writer_;  // last: started after everything above is constructed
};

}  // namespace storeplane::db
