// The HTTP(S) front door: Boost.Beast over Asio C++20 coroutines, HTTP/1.1 keep-alive,
// optional TLS, body/header limits, idle and read timeouts, a bound on requests in
// flight (429 beyond it). Each request is handed to App::Handle on the worker pool, so
// blocking work never runs on an I/O thread. Beast is included only in the .cc file.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "core/result.h"
#include "server/app.h"
#include "server/config.h"

namespace storeplane::server {

class HttpServer {
 public:
  HttpServer(const Config& config, App& app);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Loads TLS material and binds the listening socket. Errors are safe to print.
  Status Listen();
  // The base URL actually bound, e.g. http://127.0.0.1:41234 (valid after Listen).
  std::string url() const;
  // Serves until SIGTERM or SIGINT, then drains: stops accepting, closes idle
  // connections, lets requests in flight finish (up to the grace period) and returns.
  // `on_ready` runs once the server accepts connections. `on_reload`, if set, runs on a
  // worker thread for each SIGHUP.
  void Run(const std::function<void()>& on_ready, std::function<void()> on_reload = {});

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace storeplane::server
