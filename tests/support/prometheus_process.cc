#include "tests/support/prometheus_process.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string_view>
#include <thread>
#include <vector>

#include "client/http_client.h"
#include "tests/support/buildbot_process.h"

extern char** environ;

namespace storeplane::testing {
namespace {

bool OnPath(const std::string& name) {
  const char* path = std::getenv("PATH");
  if (path == nullptr) return false;
  std::stringstream dirs(path);
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (!dir.empty() && ::access((dir + "/" + name).c_str(), X_OK) == 0) return true;
  }
  return false;
}

// waitpid with a deadline; true (and `status`) when the child was reaped.
bool WaitFor(pid_t pid, int* status, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    const pid_t r = ::waitpid(pid, status, WNOHANG);
    if (r == pid) return true;
    if (r < 0) return true;  // not our child any more
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

std::string Tail(const std::string& text, std::size_t max) {
  return text.size() <= max ? text : "..." + text.substr(text.size() - max);
}

}  // namespace

bool PrometheusInstalled() { return OnPath("prometheus") && OnPath("promtool"); }

bool PrometheusRequired() {
  const char* value = std::getenv("STOREPLANE_REQUIRE_PROMETHEUS");
  return value != nullptr && *value != '\0' && std::string_view(value) != "0";
}

CommandRun PromtoolCheckMetrics(const std::string& path) {
  CommandRun run;
  const std::string command = "promtool check metrics < '" + path + "' 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return run;
  char buffer[4096];
  std::size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) run.output.append(buffer, n);
  const int status = ::pclose(pipe);
  if (status != -1 && WIFEXITED(status)) run.exit_status = WEXITSTATUS(status);
  return run;
}

PrometheusProcess::PrometheusProcess(std::string dir, std::string config_path)
    : dir_(std::move(dir)), config_path_(std::move(config_path)), log_path_(dir_ + "/prometheus.log") {}

PrometheusProcess::~PrometheusProcess() { Stop(); }

bool PrometheusProcess::Start() {
  const int port = FreeLoopbackPort();
  if (port == 0) {
    error_ = "no free loopback port";
    return false;
  }
  const std::string address = "127.0.0.1:" + std::to_string(port);
  std::vector<std::string> args = {"prometheus", "--config.file=" + config_path_,
                                   "--storage.tsdb.path=" + dir_ + "/tsdb", "--web.listen-address=" + address,
                                   "--log.level=info"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  pid_t pid = -1;
  const int rc = ::posix_spawnp(&pid, "prometheus", &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    error_ = "cannot start prometheus: " + std::to_string(rc);
    return false;
  }
  pid_ = pid;
  url_ = "http://" + address;

  client::HttpClient http;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      error_ = "prometheus exited during start; log:\n" + Tail(Logs(), 4000);
      return false;
    }
    client::HttpRequest ready;
    ready.url = url_ + "/-/ready";
    ready.timeout_ms = 1000;
    auto resp = http.Send(ready);
    if (resp.ok() && resp->status == 200) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  error_ = "prometheus was not ready within 30 s; log:\n" + Tail(Logs(), 4000);
  Stop();
  return false;
}

void PrometheusProcess::Stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  int status = 0;
  if (!WaitFor(pid_, &status, std::chrono::seconds(10))) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, &status, 0);
  }
  pid_ = -1;
}

std::string PrometheusProcess::Logs() const {
  std::ifstream in(log_path_, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace storeplane::testing
