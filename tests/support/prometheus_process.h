// Test support: Debian's Prometheus (the prometheus package: the `prometheus` server and
// `promtool`) for the metrics tests. Runs promtool over a file, and runs one Prometheus
// server with its own configuration and TSDB directory on a free loopback port, stopped
// (SIGTERM, then SIGKILL) by Stop() or the destructor, so a failing test never leaves it
// running.
#pragma once

#include <sys/types.h>

#include <string>

namespace storeplane::testing {

// Whether both `prometheus` and `promtool` are on PATH.
bool PrometheusInstalled();
// Whether a missing Prometheus must fail the tests instead of skipping them: the environment
// variable STOREPLANE_REQUIRE_PROMETHEUS is set to anything but "" or "0" (scripts/test.sh
// sets it, so CI never silently skips).
bool PrometheusRequired();

struct CommandRun {
  int exit_status = -1;  // -1: could not run or did not exit normally
  std::string output;    // stdout and stderr
};
// `promtool check metrics` with the file at `path` on its standard input.
CommandRun PromtoolCheckMetrics(const std::string& path);

class PrometheusProcess {
 public:
  // `dir`: the test's directory; the TSDB, the log and nothing else go under it.
  // `config_path`: the prometheus.yml to run with.
  PrometheusProcess(std::string dir, std::string config_path);
  ~PrometheusProcess();  // Stop()
  PrometheusProcess(const PrometheusProcess&) = delete;
  PrometheusProcess& operator=(const PrometheusProcess&) = delete;

  // Starts the server on a free loopback port and waits (up to 30 s) until /-/ready answers
  // 200. False (and error() with the log's tail) on failure.
  bool Start();
  // SIGTERM, SIGKILL after 10 s. Safe to call twice.
  void Stop();
  bool running() const { return pid_ > 0; }

  const std::string& url() const { return url_; }  // e.g. http://127.0.0.1:41234
  const std::string& error() const { return error_; }
  std::string Logs() const;

 private:
  std::string dir_;
  std::string config_path_;
  std::string log_path_;
  pid_t pid_ = -1;
  std::string url_;
  std::string error_;
};

}  // namespace storeplane::testing
