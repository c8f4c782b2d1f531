// Reads a Server-Sent Events stream (the HTML living standard's event-stream format) fed in
// arbitrary pieces: the CLI's --watch and `storeplane events` use it on /v1/events.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace storeplane::client {

struct SseEvent {
  std::string id;    // the last id seen on the stream (kept across events, per the format)
  std::string type;  // "message" when the event named none
  std::string data;  // data lines joined with '\n'
};

class SseParser {
 public:
  // Lines longer than this end the stream as malformed (Feed returns false).
  explicit SseParser(std::size_t max_line = 1 << 20) : max_line_(max_line) {}

  // Feeds the next piece; calls `on_event` for each complete event. False when a line is
  // too long (the caller should drop the connection).
  bool Feed(std::string_view bytes, const std::function<void(const SseEvent&)>& on_event);

  const std::string& last_event_id() const { return last_id_; }
  // The reconnection delay the server asked for with `retry:`, or -1.
  long retry_ms() const { return retry_ms_; }

 private:
  void Line(std::string_view line, const std::function<void(const SseEvent&)>& on_event);

  std::size_t max_line_;
  std::string buffer_;
  bool skip_lf_ = false;  // a CR ended the last line; a following LF belongs to it
  std::string last_id_;
  std::string type_;
  std::string data_;
  bool has_data_ = false;
  long retry_ms_ = -1;
};

}  // namespace storeplane::client
