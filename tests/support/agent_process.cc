#include "support/agent_process.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

extern char** environ;

namespace storeplane::testing {
namespace {

namespace fs = std::filesystem;

bool Reap(pid_t pid, int timeout_ms, int* status) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    const pid_t r = ::waitpid(pid, status, WNOHANG);
    if (r == pid) return true;
    if (r < 0) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace

std::string AgentProcess::BinaryPath() {
  if (const char* env = std::getenv("SHOP_AGENT_BIN")) return env;
#ifdef SHOP_AGENT_BIN
  return SHOP_AGENT_BIN;
#else
  return "shop-agent";
#endif
}

std::string AgentProcess::FakeMagentoSource() {
#ifdef FAKE_MAGENTO_DIR
  return FAKE_MAGENTO_DIR;
#else
  return "tests/support/fake_magento";
#endif
}

bool AgentProcess::CopyFakeMagento(const std::string& dest) {
  std::error_code ec;
  fs::create_directories(dest, ec);
  if (ec) return false;
  fs::copy(FakeMagentoSource(), dest, fs::copy_options::recursive | fs::copy_options::overwrite_existing, ec);
  if (ec) return false;
  fs::create_directories(dest + "/var", ec);
  return !ec;
}

AgentProcess::AgentProcess(std::string config_path, std::string log_path, std::vector<std::string> env)
    : config_path_(std::move(config_path)), log_path_(std::move(log_path)), env_(std::move(env)) {}

AgentProcess::~AgentProcess() {
  if (pid_ > 0) Kill();
}

bool AgentProcess::Start() {
  const std::string bin = BinaryPath();
  std::vector<std::string> args = {bin, "--config", config_path_};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) env_strings.emplace_back(*e);
  for (const auto& e : env_) env_strings.push_back(e);
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
  posix_spawn_file_actions_addopen(&actions, 2, log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, bin.c_str(), &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return false;
  pid_ = pid;
  return true;
}

int AgentProcess::Stop() {
  if (pid_ <= 0) return -1;
  ::kill(pid_, SIGTERM);
  int status = 0;
  if (!Reap(pid_, 10'000, &status)) {
    Kill();
    return -1;
  }
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void AgentProcess::Kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  Reap(pid_, 10'000, &status);
  pid_ = -1;
}

int AgentProcess::WaitExit(int timeout_ms) {
  if (pid_ <= 0) return -1;
  int status = 0;
  if (!Reap(pid_, timeout_ms, &status)) return -1;
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string AgentProcess::Logs() const {
  std::ifstream in(log_path_);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> ReadLines(const std::string& path) {
  std::vector<std::string> lines;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

void KillProcessesUnder(const std::string& dir) {
  std::error_code ec;
  const auto root = fs::weakly_canonical(dir, ec).string();
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    const auto name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::error_code cec;
    const auto cwd = fs::read_symlink(entry.path() / "cwd", cec).string();
    if (cec || cwd.rfind(root, 0) != 0) continue;
    ::kill(std::stoi(name), SIGKILL);
  }
}

}  // namespace storeplane::testing
