#include "tests/support/prometheus_process.h"

#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#include "client/http_client.h"
#include "tests/support/child_process.h"

namespace storeplane::testing {

bool PrometheusInstalled() { return OnPath("prometheus") && OnPath("promtool"); }

bool PrometheusRequired() { return EnvFlagSet("STOREPLANE_REQUIRE_PROMETHEUS"); }

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
  ChildSpec spec;
  spec.argv = std::move(args);
  spec.log_path = log_path_;
  std::string spawn_error;
  const pid_t pid = SpawnChild(spec, &spawn_error);
  if (pid < 0) {
    error_ = "cannot start prometheus: " + spawn_error;
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
  StopChild(pid_, SIGTERM, std::chrono::seconds(10));
  pid_ = -1;
}

std::string PrometheusProcess::Logs() const { return ReadWholeFile(log_path_); }

}  // namespace storeplane::testing
