// A CI server for the integration tests (the generic signed webhook provider's other end):
// accepts every trigger with 202 and remembers it, and answers the provider's look-up
// (GET <base>/runs/<correlation id>) with whether that run was triggered. A test may hand
// each trigger to a hook (the scripted pipeline of the rollout tests).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace storeplane::testing {

class FakeCi {
 public:
  struct Trigger {
    std::map<std::string, std::string> headers;  // lower-case names
    std::string body;
    std::int64_t received_at_ms = 0;  // system clock, after the whole request was read
  };

  FakeCi();
  ~FakeCi();
  FakeCi(const FakeCi&) = delete;
  FakeCi& operator=(const FakeCi&) = delete;

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/trigger"; }

  // Called with every trigger after it was answered and recorded, on the server's thread
  // (keep it short: hand the work to another thread). Set before the first trigger.
  void OnTrigger(std::function<void(const Trigger&)> hook);

  // Waits for the n-th trigger (1-based).
  std::optional<Trigger> WaitTrigger(std::size_t n, std::chrono::milliseconds timeout);
  std::size_t count();
  std::vector<Trigger> all();

 private:
  void Serve();

  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Trigger> triggers_;
  std::function<void(const Trigger&)> hook_;
};

}  // namespace storeplane::testing
