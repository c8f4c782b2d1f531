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

  void SetHeader(std::string name, std::string value) { headers.emplace_back(std::move(name), std::move(value)); }
};

}  // namespace storeplane::server
