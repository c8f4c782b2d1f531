// A process-wide "stop now" request shared by the agent's threads: SIGTERM/SIGINT set it,
// long waits wake up at once, curl transfers and running commands check it and abort.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>

namespace storeplane::agent {

class StopSignal {
 public:
  void Request() {
    {
      std::lock_guard lock(mutex_);
      stopped_.store(true);
    }
    cv_.notify_all();
  }
  bool requested() const { return stopped_.load(); }
  // Sleeps up to `duration`; true when a stop was requested (before or during the wait).
  bool WaitFor(std::chrono::milliseconds duration) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, duration, [this] { return stopped_.load(); });
  }

 private:
  std::atomic<bool> stopped_{false};
  std::mutex mutex_;
  std::condition_variable cv_;
};

}  // namespace storeplane::agent
