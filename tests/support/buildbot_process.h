// Test support: a real Buildbot 3.7 (Debian's buildbot and buildbot-worker packages) for
// the Buildbot adapter's tests and the end-to-end lifecycle tests. Starts one master and
// one worker in a directory of the test's, on free loopback ports, through
// tests/support/buildbot/buildbot-env.sh, and stops them. The master has builder "store"
// and force scheduler "storeplane-force" taking the seven storeplane_* properties; each
// build runs tests/support/buildbot/pipeline.sh, which fails for releases starting with
// "bad-" and posts a signed callback when given a callback URL and a secret (the contract
// is at the top of pipeline.sh).
#pragma once

#include <string>

#include "tests/support/child_process.h"  // FreeLoopbackPort, which used to be declared here

namespace storeplane::testing {

// Whether the buildbot and buildbot-worker commands are on PATH.
bool BuildbotInstalled();
// Whether a missing Buildbot must fail the tests instead of skipping them: the environment
// variable STOREPLANE_REQUIRE_BUILDBOT is set to anything but "" or "0" (scripts/test.sh
// sets it, so CI never silently skips).
bool BuildbotRequired();
// The directory holding master.cfg, pipeline.sh and buildbot-env.sh (the
// STOREPLANE_BUILDBOT_DIR environment variable overrides it).
std::string BuildbotSupportDir();

struct BuildbotOptions {
  std::string dir;                   // required: master/, worker/ and logs go here
  std::string callback_secret_file;  // the callback HMAC secret; empty: builds never call back
  double pipeline_sleep_s = 1.0;     // how long each build "works"
  std::string site_root;             // a stand-in store the pipeline deploys to (release marker)
};

class BuildbotProcess {
 public:
  explicit BuildbotProcess(BuildbotOptions options);
  ~BuildbotProcess();  // Stop()
  BuildbotProcess(const BuildbotProcess&) = delete;
  BuildbotProcess& operator=(const BuildbotProcess&) = delete;

  // Starts the master and the worker and waits (up to 45 s) until the REST API answers and
  // the worker is connected. Retries with other ports when one was taken meanwhile. False
  // (and error() with the logs' tails) on failure.
  bool Start();
  // Stops the worker and the master (SIGTERM, SIGKILL after 10 s). Safe to call twice.
  void Stop();
  bool running() const { return running_; }

  const std::string& url() const { return url_; }  // e.g. http://127.0.0.1:41234 (no slash)
  std::string api_url() const { return url_ + "/api/v2"; }
  int http_port() const { return http_port_; }
  const std::string& error() const { return error_; }
  // The master's and the worker's twistd.log, for failure messages.
  std::string Logs() const;

 private:
  BuildbotOptions options_;
  bool running_ = false;
  int http_port_ = 0;
  std::string url_;
  std::string error_;
};

}  // namespace storeplane::testing
