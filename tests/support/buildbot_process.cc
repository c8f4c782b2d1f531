#include "support/buildbot_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

extern char** environ;

namespace storeplane::testing {
namespace {

using Clock = std::chrono::steady_clock;

bool OnPath(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path != nullptr ? path : "/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (dir.empty()) continue;
    if (::access((dir + "/" + name).c_str(), X_OK) == 0) return true;
  }
  return false;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// A socket bound to 127.0.0.1 on a port the kernel picks; -1 on failure. `port` is set.
int BindEphemeral(int* port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    return -1;
  }
  *port = ntohs(addr.sin_port);
  return fd;
}

struct ScriptRun {
  int exit_status = -1;  // -1: did not finish in time (killed) or could not start
  std::string output;    // stdout and stderr
};

// Runs buildbot-env.sh with `args` and the extra environment entries, output to `log_path`,
// killing it after `timeout`.
ScriptRun RunScript(const std::vector<std::string>& script_args, const std::vector<std::string>& extra_env,
                    const std::string& log_path, std::chrono::seconds timeout) {
  ScriptRun run;
  std::vector<std::string> args = {"/bin/sh", BuildbotSupportDir() + "/buildbot-env.sh"};
  args.insert(args.end(), script_args.begin(), script_args.end());
  std::vector<char*> argv;
  for (auto& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);

  std::vector<std::string> env_storage;
  for (char** e = environ; *e != nullptr; ++e) env_storage.emplace_back(*e);
  env_storage.insert(env_storage.end(), extra_env.begin(), extra_env.end());
  std::vector<char*> envp;
  for (auto& entry : env_storage) envp.push_back(entry.data());
  envp.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    run.output = std::string("cannot run buildbot-env.sh: ") + std::strerror(rc);
    return run;
  }
  const auto deadline = Clock::now() + timeout;
  int status = 0;
  for (;;) {
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      run.exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      break;
    }
    if (r < 0 && errno != EINTR) break;
    if (Clock::now() >= deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      run.output = "buildbot-env.sh did not finish within " + std::to_string(timeout.count()) + " s\n";
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  run.output += ReadFile(log_path);
  return run;
}

}  // namespace

bool BuildbotInstalled() { return OnPath("buildbot") && OnPath("buildbot-worker"); }

bool BuildbotRequired() {
  const char* value = std::getenv("STOREPLANE_REQUIRE_BUILDBOT");
  return value != nullptr && *value != '\0' && std::string_view(value) != "0";
}

std::string BuildbotSupportDir() {
  if (const char* env = std::getenv("STOREPLANE_BUILDBOT_DIR"); env != nullptr && *env != '\0') return env;
  // From CMake, not __FILE__: a ccache with base_dir makes __FILE__ relative to the build.
  return STOREPLANE_BUILDBOT_SUPPORT_DIR;
}

int FreeLoopbackPort() {
  int port = 0;
  int fd = BindEphemeral(&port);
  if (fd < 0) return 0;
  ::close(fd);
  return port;
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
    int http_fd = BindEphemeral(&http_port);
    int worker_fd = BindEphemeral(&worker_port);
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
  return "--- master/twistd.log\n" + ReadFile(options_.dir + "/master/twistd.log") + "--- worker/twistd.log\n" +
         ReadFile(options_.dir + "/worker/twistd.log");
}

}  // namespace storeplane::testing
