#include "db/write_queue.h"

#include <algorithm>
#include <exception>
#include <utility>

namespace storeplane::db {

namespace {

constexpr const char* kSavepoint = "SAVEPOINT mutation";
constexpr const char* kRelease = "RELEASE mutation";
constexpr const char* kRollbackToSavepoint = "ROLLBACK TO mutation";

Error Unavailable(const Error& cause) {
  return Error{ErrorCode::kUnavailable, "write not committed (" + cause.message + ")", {}};
}

Status RunGuarded(const WriteQueue::Mutation& mutation, Connection& conn) {
  try {
    return mutation(conn);
  } catch (const std::exception&) {
    return Error::Internal("write failed unexpectedly");
  } catch (...) {
    return Error::Internal("write failed unexpectedly");
  }
}

}  // namespace

WriteQueue::WriteQueue(Connection conn, WriteQueueOptions options, std::shared_ptr<WriteObserver> observer)
    : conn_(std::move(conn)), options_(options), observer_(std::move(observer)), writer_([this] { WriterLoop(); }) {}

WriteQueue::~WriteQueue() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (writer_.joinable()) writer_.join();
}

std::future<Status> WriteQueue::Submit(Mutation mutation) { return Submit(std::move(mutation), nullptr); }

std::future<Status> WriteQueue::Submit(Mutation mutation, std::function<void()> on_committed) {
  Pending pending{std::move(mutation), {}, std::move(on_committed)};
  std::future<Status> result = pending.done.get_future();
  {
    std::lock_guard lock(mu_);
    if (stopping_) {
      pending.done.set_value(Error{ErrorCode::kUnavailable, "the database is shutting down", {}});
      return result;
    }
    queue_.push_back(std::move(pending));
  }
  wake_.notify_one();
  return result;
}

WriteQueueStats WriteQueue::stats() const {
  std::lock_guard lock(mu_);
  WriteQueueStats stats = stats_;
  stats.pending = queue_.size();
  return stats;
}

void WriteQueue::WriterLoop() {
  const std::size_t limit =
      options_.group_commit ? static_cast<std::size_t>(std::max(1, options_.max_batch)) : std::size_t{1};
  std::vector<Pending> batch;
  const bool ticks = observer_ != nullptr && options_.idle_tick.count() > 0;
  for (;;) {
    {
      std::unique_lock lock(mu_);
      auto ready = [this] { return stopping_ || !queue_.empty(); };
      if (ticks) {
        if (!wake_.wait_for(lock, options_.idle_tick, ready)) {
          lock.unlock();
          observer_->OnIdle(conn_);
          continue;
        }
      } else {
        wake_.wait(lock, ready);
      }
      if (queue_.empty()) {  // stopping and drained
        lock.unlock();
        if (observer_) observer_->OnClose(conn_);
        return;
      }
      const std::size_t take = std::min(limit, queue_.size());
      for (std::size_t i = 0; i < take; ++i) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    CommitBatch(batch);
    batch.clear();
  }
}

void WriteQueue::CommitBatch(std::vector<Pending>& batch) {
  auto fail_all = [&](const Error& cause) {
    if (!conn_.autocommit()) (void)conn_.Exec(kSqlRollback, "roll back write batch");
    if (observer_) observer_->OnBatchRolledBack();
    {
      std::lock_guard lock(mu_);
      ++stats_.failed_batches;
    }
    const Error error = Unavailable(cause);
    for (Pending& pending : batch) pending.done.set_value(error);
  };

  if (observer_) observer_->OnBatchBegin();
  if (auto st = conn_.Exec(kSqlBeginImmediate, "begin write batch"); !st.ok()) return fail_all(st.error());

  std::vector<Status> results;
  results.reserve(batch.size());
  for (Pending& pending : batch) {
    if (auto st = conn_.Exec(kSavepoint, "begin write"); !st.ok()) return fail_all(st.error());
    Status result = RunGuarded(pending.mutation, conn_);
    // SQLite rolls the whole transaction back by itself after some errors (IOERR, FULL,
    // NOMEM); then the batch is lost and must not be reported as committed.
    if (conn_.autocommit()) {
      return fail_all(result.ok() ? Error::Internal("transaction ended early") : result.error());
    }
    if (!result.ok()) {
      if (auto st = conn_.Exec(kRollbackToSavepoint, "roll back write"); !st.ok()) return fail_all(st.error());
    }
    if (auto st = conn_.Exec(kRelease, "end write"); !st.ok()) return fail_all(st.error());
    results.push_back(std::move(result));
  }

  if (observer_) {
    observer_->BeforeCommit(conn_);
    if (conn_.autocommit()) return fail_all(Error::Internal("transaction ended early"));
  }
  if (auto st = conn_.Exec(kSqlCommit, "commit write batch"); !st.ok()) return fail_all(st.error());

  {
    std::lock_guard lock(mu_);
    ++stats_.batches;
    stats_.mutations += batch.size();
    stats_.largest_batch = std::max<std::uint64_t>(stats_.largest_batch, batch.size());
  }
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (batch[i].on_committed && results[i].ok()) {
      try {
        batch[i].on_committed();
      } catch (...) {  // a listener's failure never un-commits a write
      }
    }
    batch[i].done.set_value(std::move(results[i]));
  }
}

}  // namespace storeplane::db
