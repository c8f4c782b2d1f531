// Transport-neutral request and response values passed between the Beast session
// (http_server.cc) and the request pipeline (app.cc). Handlers never see Beast types.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "server/wakeup.h"

namespace storeplane::server {

struct Request {
  std::string method;                          // "GET", "POST", ...
  std::string path;                            // decoded path, without the query
  std::string query;                           // raw query string, without '?'
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  std::string remote;  // peer address, for logs
  // Set by the HTTP session when it runs a handler again after a deferred answer (see
  // Response::wait): true once the wait's deadline has passed.
  bool wait_expired = false;

  std::string Header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? std::string() : it->second;
  }
  bool HasHeader(const std::string& lower_name) const { return headers.contains(lower_name); }
};

// A streamed answer (Server-Sent Events). The session writes the status and headers at once
// (chunked), then asks Next() for each piece on a worker thread. A piece with data is
// written; a piece with `wait` set means nothing more for now: the session waits, holding
// no worker and not counting as in flight, until the wake-up fires, `idle_ms` passes (then
// Next(true) may send a keep-alive), the client hangs up or the server drains. The
// connection closes when a piece says `end`, or at drain after one last Next(true).
class ResponseStream {
 public:
  struct Piece {
    std::string data;
    bool end = false;
    std::shared_ptr<Wakeup> wait;  // set: wait for it (or idle_ms) before the next call
  };
  virtual ~ResponseStream() = default;
  // `idle`: called because idle_ms passed with nothing to send. `stopping`: the server is
  // draining; the stream should say goodbye and end.
  virtual Piece Next(bool idle, bool stopping) = 0;
  virtual std::int64_t idle_ms() const { return 15'000; }
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  bool close = false;  // close the connection after writing

  // A deferred answer (long-poll): when `wait` is set, nothing is written yet. The session
  // waits, without holding a worker thread, until `wait` fires or `wait_ms` passes, then
  // runs the handler again with Request::wait_expired telling which happened.
  std::shared_ptr<Wakeup> wait;
  std::int64_t wait_ms = 0;

  // Blocking work a handler that ran on the I/O thread left undone (feeding an open health
  // gate, which may write): the session runs it on the worker pool, then writes the answer.
  // Empty almost always.
  std::function<void()> finish_on_worker;

  // A streamed answer (see ResponseStream); `body` is then ignored.
  std::shared_ptr<ResponseStream> stream;

  void SetHeader(std::string name, std::string value) { headers.emplace_back(std::move(name), std::move(value)); }
};

}  // namespace storeplane::server
