#include "support/event_collector.h"

#include <boost/json.hpp>

#include "client/http_client.h"
#include "client/sse_parser.h"

namespace storeplane::testing {

EventCollector::EventCollector(std::string url, std::string token, std::string last_event_id) {
  thread_ =
      std::thread([this, url = std::move(url), token = std::move(token), last = std::move(last_event_id)]() mutable {
        Run(std::move(url), std::move(token), std::move(last));
      });
}

EventCollector::~EventCollector() {
  Stop();
  if (thread_.joinable()) thread_.join();
}

void EventCollector::Stop() { stop_ = true; }

void EventCollector::Run(std::string url, std::string token, std::string last_event_id) {
  client::HttpClient http;
  client::SseParser parser;
  client::HttpRequest request;
  request.url = std::move(url);
  request.timeout_ms = 0;
  request.headers = {{"Authorization", "Bearer " + token}, {"Accept", "text/event-stream"}};
  if (!last_event_id.empty()) request.headers.emplace_back("Last-Event-ID", last_event_id);
  request.on_body = [&](std::string_view bytes) {
    {
      std::lock_guard lock(mu_);
      if (status_ == 0) status_ = 200;
    }
    cv_.notify_all();
    const bool ok = parser.Feed(bytes, [&](const client::SseEvent& event) {
      CollectedEvent collected{event.id, event.type, {}};
      boost::system::error_code ec;
      auto value = boost::json::parse(event.data, ec);
      if (!ec && value.is_object()) collected.data = value.as_object();
      {
        std::lock_guard lock(mu_);
        events_.push_back(std::move(collected));
      }
      cv_.notify_all();
    });
    return ok && !stop_;
  };
  auto response = http.Send(request);
  {
    std::lock_guard lock(mu_);
    if (response.ok()) {
      status_ = response->status;
      end_reason_ = "ok";
    } else {
      end_reason_ = response.error().message;
    }
  }
  ended_ = true;
  cv_.notify_all();
}

CollectedEvent EventCollector::WaitFor(const std::function<bool(const CollectedEvent&)>& match,
                                       std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  CollectedEvent found;
  cv_.wait_for(lock, timeout, [&] {
    for (const auto& e : events_) {
      if (match(e)) {
        found = e;
        return true;
      }
    }
    return ended_.load();
  });
  if (found.type.empty()) {
    for (const auto& e : events_) {
      if (match(e)) return e;
    }
  }
  return found;
}

long EventCollector::WaitStatus(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, timeout, [&] { return status_ != 0 || ended_.load(); });
  return status_;
}

std::vector<CollectedEvent> EventCollector::events() const {
  std::lock_guard lock(mu_);
  return events_;
}

std::string EventCollector::end_reason() const {
  std::lock_guard lock(mu_);
  return end_reason_;
}

}  // namespace storeplane::testing
