#include "server/event_feed.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <exception>
#include <optional>
#include <utility>

#include "server/logging.h"

namespace storeplane::server {

namespace {

constexpr int kFirstBackoffMs = 100;

// The seq a kEvents notification names; nullopt when it names none (a reconnect).
std::optional<std::int64_t> NotifiedSeq(const std::string& payload) {
  std::int64_t seq = 0;
  auto [end, ec] = std::from_chars(payload.data(), payload.data() + payload.size(), seq);
  if (ec != std::errc() || end != payload.data() + payload.size()) return std::nullopt;
  return seq;
}

}  // namespace

EventFeed::EventFeed(db::Repository& repo, EventHub& hub, OperationQueued on_operation_queued)
    : EventFeed(repo, hub, std::move(on_operation_queued), Options{}) {}

EventFeed::EventFeed(db::Repository& repo, EventHub& hub, OperationQueued on_operation_queued, Options options)
    : repo_(repo), hub_(hub), on_operation_queued_(std::move(on_operation_queued)), options_(options) {
  options_.wait_ms = std::max(1, options_.wait_ms);
  options_.poll_ms = std::max(1, options_.poll_ms);
  options_.read_batch = std::max(1, options_.read_batch);
  options_.max_backoff_ms = std::max(kFirstBackoffMs, options_.max_backoff_ms);
}

EventFeed::~EventFeed() { Stop(); }

void EventFeed::Start() {
  if (thread_.joinable()) return;
  {
    std::lock_guard lock(stop_mu_);
    stop_ = false;
  }
  positioned_ = Position();
  thread_ = std::thread([this] { Run(); });
  appender_ = std::thread([this] { RunAppender(); });
}

void EventFeed::Stop() {
  {
    std::lock_guard lock(stop_mu_);
    stop_ = true;
  }
  stop_cv_.notify_all();
  {
    std::lock_guard lock(append_mu_);  // the appender is waiting, or will see stop_
  }
  append_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (appender_.joinable()) appender_.join();
}

void EventFeed::SetOnOperationQueued(OperationQueued on_operation_queued) {
  std::lock_guard lock(callback_mu_);
  on_operation_queued_ = std::move(on_operation_queued);
}

void EventFeed::Append(EventDraft draft) {
  db::StoredEvent event = EventHub::Encode(draft);
  bool dropped_first = false;
  {
    std::lock_guard lock(append_mu_);
    pending_.push_back(std::move(event));
    if (pending_.size() > options_.max_pending) {
      pending_.pop_front();
      ++front_index_;
      dropped_first = !dropping_;
      dropping_ = true;
    } else {
      dropping_ = false;
    }
  }
  append_cv_.notify_one();
  if (dropped_first) {
    log::Warn("the event log cannot take agents' status events fast enough; dropping the oldest",
              {{"max_pending", options_.max_pending}});
  }
}

void EventFeed::RunAppender() {
  int backoff_ms = 0;
  while (true) {
    std::vector<db::StoredEvent> batch;
    std::uint64_t batch_end = 0;  // the index after the batch's last event
    bool last_round = false;
    {
      std::unique_lock lock(append_mu_);
      append_cv_.wait(lock, [this] { return !pending_.empty() || stopping(); });
      last_round = stopping();
      const std::size_t n = std::min(pending_.size(), static_cast<std::size_t>(options_.read_batch));
      batch.assign(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(n));
      batch_end = front_index_ + n;
    }
    if (batch.empty()) return;  // stopping, nothing left
    Status appended = repo_.AppendEvents(batch);
    if (appended.ok()) {
      Succeeded(append_);
      backoff_ms = 0;
      std::lock_guard lock(append_mu_);
      // Append() may have dropped some of the batch meanwhile: remove only what is left of it.
      while (front_index_ < batch_end && !pending_.empty()) {
        pending_.pop_front();
        ++front_index_;
      }
      continue;
    }
    Failed(append_, appended.error());
    if (last_round) {
      std::lock_guard lock(append_mu_);
      log::Warn("stopping with agents' status events not appended to the event log", {{"events", pending_.size()}});
      return;
    }
    backoff_ms = backoff_ms == 0 ? kFirstBackoffMs : std::min(options_.max_backoff_ms, backoff_ms * 2);
    SleepUnlessStopped(backoff_ms);  // when stopping: one last attempt on the next round
  }
}

bool EventFeed::stopping() {
  std::lock_guard lock(stop_mu_);
  return stop_;
}

bool EventFeed::SleepUnlessStopped(int ms) {
  std::unique_lock lock(stop_mu_);
  return !stop_cv_.wait_for(lock, std::chrono::milliseconds(ms), [this] { return stop_; });
}

bool EventFeed::Position() {
  auto seq = repo_.LastEventSeq();
  if (!seq.ok()) {
    Failed(read_, seq.error());
    return false;
  }
  Succeeded(read_);
  hub_.StartAt(*seq);
  last_seq_ = hub_.last_seq();
  return true;
}

bool EventFeed::CatchUp() {
  while (true) {
    auto events = repo_.ReadEvents(last_seq_.load(), options_.read_batch);
    if (!events.ok()) {
      Failed(read_, events.error());
      return false;
    }
    Succeeded(read_);
    if (events->empty()) return true;
    hub_.PublishStored(*events);
    last_seq_ = std::max(last_seq_.load(), events->back().seq);
    if (on_published_) on_published_(*events);
    if (events->size() < static_cast<std::size_t>(options_.read_batch) || stopping()) return true;
  }
}

void EventFeed::Failed(Streak& streak, const Error& error) {
  if (streak.failing) return;
  streak.failing = true;
  log::Warn("the event feed cannot " + std::string(streak.what) + "; retrying (events are delayed, not lost)",
            {{"error", error.message}});
}

void EventFeed::Succeeded(Streak& streak) {
  if (!streak.failing) return;
  streak.failing = false;
  log::Info("the event feed can " + std::string(streak.what) + " again");
}

void EventFeed::Run() {
  using Clock = std::chrono::steady_clock;
  auto read_at = Clock::now();  // positioned: the first read is due at once
  while (!stopping()) {
    bool failed = false;
    if (!positioned_) {
      positioned_ = Position();
      failed = !positioned_;
    }
    bool read_now = false;
    if (!failed) {
      auto notes = repo_.WaitForNotifications(options_.wait_ms);
      if (stopping()) break;
      if (!notes.ok()) {
        Failed(listen_, notes.error());
        failed = true;
      } else {
        Succeeded(listen_);
        for (const auto& note : *notes) {
          if (note.kind == db::Notification::Kind::kOperationQueued) {
            std::lock_guard lock(callback_mu_);
            if (!on_operation_queued_) continue;
            try {
              on_operation_queued_(note.payload);
            } catch (const std::exception& e) {
              log::Error("the operation-queued callback failed", {{"error", e.what()}});
            }
          } else {
            const auto seq = NotifiedSeq(note.payload);
            read_now = read_now || !seq || *seq > last_seq_.load();
          }
        }
      }
      // Not notified, or the notification was missed: read anyway once a poll is due.
      if (positioned_ && (read_now || Clock::now() >= read_at)) {
        read_at = Clock::now() + std::chrono::milliseconds(options_.poll_ms);
        if (!CatchUp()) failed = true;
      }
    }
    if (!failed) PruneIfDue();
    if (failed) {
      backoff_ms_ = backoff_ms_ == 0 ? kFirstBackoffMs : std::min(options_.max_backoff_ms, backoff_ms_ * 2);
      if (!SleepUnlessStopped(backoff_ms_)) break;
    } else {
      backoff_ms_ = 0;
    }
  }
}

void EventFeed::PruneIfDue() {
  if (!is_leader_ || options_.prune_every_ms <= 0) return;
  const auto now = std::chrono::steady_clock::now();
  if (now < prune_at_) return;
  prune_at_ = now + std::chrono::milliseconds(options_.prune_every_ms);
  if (!is_leader_()) return;
  const std::int64_t now_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  const std::int64_t cutoff = now_ms - options_.retention_ms;
  auto pruned = repo_.PruneEvents(cutoff);
  if (!pruned.ok()) {
    log::Warn("cannot prune the event log", {{"detail", pruned.error().message}});
  } else if (*pruned > 0) {
    log::Info("pruned the event log", {{"events", *pruned}});
  }
}

}  // namespace storeplane::server
