// Test support: follows a storeplaned event stream (/v1/events) on a thread of its own and
// keeps every event, so a test can wait for the one it expects.
#pragma once

#include <boost/json/object.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace storeplane::testing {

struct CollectedEvent {
  std::string id;
  std::string type;
  boost::json::object data;
};

class EventCollector {
 public:
  // Opens `url` (e.g. http://127.0.0.1:1234/v1/events?types=store) with `token`, sending
  // Last-Event-ID when `last_event_id` is set. The stream ends when the server ends it or
  // at Stop() (at the next piece the server sends: keep the keep-alive short in tests).
  EventCollector(std::string url, std::string token, std::string last_event_id = {});
  ~EventCollector();
  EventCollector(const EventCollector&) = delete;
  EventCollector& operator=(const EventCollector&) = delete;

  // Waits until an event satisfying `match` arrived; returns it, or nullopt-like empty type.
  CollectedEvent WaitFor(const std::function<bool(const CollectedEvent&)>& match, std::chrono::milliseconds timeout);
  // Waits until the stream answered (status known) or ended.
  long WaitStatus(std::chrono::milliseconds timeout);
  std::vector<CollectedEvent> events() const;
  bool ended() const { return ended_; }
  // How the exchange ended: "" while running, "ok" for a clean end, else the transport error.
  std::string end_reason() const;
  void Stop();

 private:
  void Run(std::string url, std::string token, std::string last_event_id);

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<CollectedEvent> events_;
  long status_ = 0;
  std::string end_reason_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> ended_{false};
  std::thread thread_;
};

}  // namespace storeplane::testing
