// A one-shot wake-up signal between threads, with no transport types: a handler that has
// nothing to answer yet (an agent's long-poll) returns a Response carrying one; whoever
// produces work fires it, and the HTTP session then runs the handler again.
#pragma once

#include <functional>
#include <mutex>
#include <utility>

namespace storeplane::server {

class Wakeup {
 public:
  // Idempotent; the callback (if set) runs once, on the firing thread, outside the lock.
  void Fire() {
    std::function<void()> callback;
    {
      std::lock_guard lock(mu_);
      if (fired_) return;
      fired_ = true;
      callback = std::move(callback_);
    }
    if (callback) callback();
  }
  // Runs `callback` when fired, or at once (on this thread) when it already was.
  void OnFire(std::function<void()> callback) {
    {
      std::lock_guard lock(mu_);
      if (!fired_) {
        callback_ = std::move(callback);
        return;
      }
    }
    callback();
  }
  bool fired() const {
    std::lock_guard lock(mu_);
    return fired_;
  }

 private:
  mutable std::mutex mu_;
  bool fired_ = false;
  std::function<void()> callback_;
};

}  // namespace storeplane::server
