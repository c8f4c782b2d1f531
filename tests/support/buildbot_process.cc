#include "support/buildbot_process.h"

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "tests/support/child_process.h"

namespace storeplane::testing {
namespace {

struct ScriptRun {
  int exit_status = -1;  // -1: did not finish in time (killed) or could not start
  std::string output;    // stdout and stderr
};

// Runs buildbot-env.sh with `args` and the extra environment entries, output to `log_path`,
// killing it after `timeout`.
ScriptRun RunScript(const std::vector<std::string>& script_args, const std::vector<std::string>& extra_env,
                    const std::string& log_path, std::chrono::seconds timeout) {
  ChildSpec spec;
  spec.argv = {"/bin/sh", BuildbotSupportDir() + "/buildbot-env.sh"};
  spec.argv.insert(spec.argv.end(), script_args.begin(), script_args.end());
  spec.extra_env = extra_env;
  spec.log_path = log_path;
  const ChildRun run = RunChild(spec, timeout);
  return ScriptRun{run.exit_status, run.output};
}

}  // namespace

bool BuildbotInstalled() { return OnPath("buildbot") && OnPath("buildbot-worker"); }

bool BuildbotRequired() { return EnvFlagSet("STOREPLANE_REQUIRE_BUILDBOT"); }

std::string BuildbotSupportDir() {
  if (const char* env = std::getenv("STOREPLANE_BUILDBOT_DIR"); env != nullptr && *env != '\0') return env;
  // From CMake, not __FILE__: a ccache with base_dir makes __FILE__ relative to the build.
  return STOREPLANE_BUILDBOT_SUPPORT_DIR;
}

BuildbotProcess::BuildbotProcess(BuildbotOptions options) : options_(std::move(options)) {}

BuildbotProcess::~BuildbotProcess() { Stop(); }

bool BuildbotProcess::Start() {
  error_.clear();
  if (running_) {
    error_ = "already running";
    return false;
  }
  if (options_.dir.empty()) {
    error_ = "BuildbotOptions.dir is required";
    return false;
  }
  std::error_code ec;
  std::filesystem::create_directories(options_.dir, ec);
  const std::vector<std::string> env = {
      "STOREPLANE_BUILDBOT_SECRET_FILE=" + options_.callback_secret_file,
      "STOREPLANE_BUILDBOT_PIPELINE_SLEEP=" + std::to_string(options_.pipeline_sleep_s),
      "STOREPLANE_BUILDBOT_SITE_ROOT=" + options_.site_root,
  };
  for (int attempt = 1;; ++attempt) {
    // Both ports held at once so that they differ; released just before the master binds.
    int http_port = 0;
    int worker_port = 0;
    int http_fd = BindLoopbackEphemeral(&http_port);
    int worker_fd = BindLoopbackEphemeral(&worker_port);
    if (http_fd >= 0) ::close(http_fd);
    if (worker_fd >= 0) ::close(worker_fd);
    if (http_fd < 0 || worker_fd < 0) {
      error_ = "cannot find free loopback ports";
      return false;
    }
    ScriptRun run = RunScript({"start", options_.dir, std::to_string(http_port), std::to_string(worker_port)}, env,
                              options_.dir + "/buildbot-env.out", std::chrono::seconds(60));
    running_ = true;  // whatever happened, Stop() has something to clean up
    if (run.exit_status == 0) {
      http_port_ = http_port;
      url_ = "http://127.0.0.1:" + std::to_string(http_port);
      return true;
    }
    Stop();
    const bool port_taken = run.output.find("CannotListenError") != std::string::npos ||
                            run.output.find("Address already in use") != std::string::npos;
    if (!port_taken || attempt == 3) {
      error_ = "buildbot-env.sh start failed (exit " + std::to_string(run.exit_status) + "):\n" + run.output;
      return false;
    }
  }
}

void BuildbotProcess::Stop() {
  if (!running_) return;
  RunScript({"stop", options_.dir}, {}, options_.dir + "/buildbot-env-stop.out", std::chrono::seconds(40));
  running_ = false;
}

std::string BuildbotProcess::Logs() const {
  return "--- master/twistd.log\n" + ReadWholeFile(options_.dir + "/master/twistd.log") + "--- worker/twistd.log\n" +
         ReadWholeFile(options_.dir + "/worker/twistd.log");
}

}  // namespace storeplane::testing
