#include "support/server_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <string_view>
#include <system_error>
#include <thread>

#include "tests/support/postgres_database.h"

extern char** environ;

namespace storeplane::testing {
namespace {

using Clock = std::chrono::steady_clock;

std::string TempBase() {
  const char* tmp = std::getenv("TMPDIR");
  return (tmp != nullptr && *tmp != '\0') ? std::string(tmp) : std::string("/tmp");
}

// Reads the rest of the child's stdout until EOF so the child never blocks on a full pipe,
// appending it to the log file. Owns and closes `fd`.
void DrainInBackground(int fd, std::string log_path) {
  std::thread([fd, log_path = std::move(log_path)] {
    std::ofstream log(log_path, std::ios::app | std::ios::binary);
    char buffer[4096];
    for (;;) {
      ssize_t n = ::read(fd, buffer, sizeof buffer);
      if (n > 0) {
        if (log) log.write(buffer, n).flush();
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      break;
    }
    ::close(fd);
  }).detach();
}

// waitpid with a deadline; returns true and fills `status` when the child was reaped.
bool WaitFor(pid_t pid, int* status, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    pid_t r = ::waitpid(pid, status, WNOHANG);
    if (r == pid) return true;
    if (r < 0 && errno != EINTR) return true;  // not our child any more: nothing to wait for
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

// The PostgreSQL database of each data directory (see server_process.h).
std::mutex databases_mu;
std::map<std::string, std::string>& Databases() {
  static auto* databases = new std::map<std::string, std::string>();  // never destroyed: used until exit
  return *databases;
}

bool NewInstallation(const std::string& data_dir) {
  std::error_code ec;
  return !std::filesystem::exists(data_dir, ec) || std::filesystem::is_empty(data_dir, ec);
}

// The database for `data_dir`: the one it had, or a fresh one for a new installation.
std::string DatabaseFor(const std::string& data_dir, std::string* error) {
  std::lock_guard lock(databases_mu);
  auto& databases = Databases();
  if (auto it = databases.find(data_dir); it != databases.end() && !NewInstallation(data_dir)) return it->second;
  std::string conninfo = FreshPostgresDatabase(error);
  if (!conninfo.empty()) databases[data_dir] = conninfo;
  return conninfo;
}

bool SetsStorageDriver(const std::vector<std::string>& env) {
  for (const auto& entry : env) {
    if (entry.rfind("STOREPLANE_STORAGE_DRIVER=", 0) == 0) return true;
  }
  return false;
}

}  // namespace

bool TestBackendIsPostgres() {
  const char* backend = std::getenv("STOREPLANE_TEST_BACKEND");
  return backend != nullptr && std::string_view(backend) == "postgres";
}

std::string PostgresConninfoFor(const std::string& data_dir) {
  std::lock_guard lock(databases_mu);
  auto& databases = Databases();
  auto it = databases.find(data_dir);
  return it == databases.end() ? std::string() : it->second;
}

bool MakeTestCertificate(const std::string& cert_path, const std::string& key_path) {
  const auto cmd =
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=127.0.0.1"
      " -addext subjectAltName=IP:127.0.0.1 -keyout '" +
      key_path + "' -out '" + cert_path + "' >/dev/null 2>&1";
  return std::system(cmd.c_str()) == 0;
}

TempDir::TempDir() {
  std::string pattern = TempBase() + "/storeplane-test-XXXXXX";
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  if (::mkdtemp(buffer.data()) == nullptr) {
    throw std::system_error(errno, std::generic_category(), "mkdtemp " + pattern);
  }
  path_ = buffer.data();
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string ServerProcess::BinaryPath() {
  if (const char* env = std::getenv("STOREPLANED_BIN"); env != nullptr && *env != '\0') return env;
#ifdef STOREPLANED_BIN
  return STOREPLANED_BIN;
#else
  return "storeplaned";
#endif
}

ServerProcess::ServerProcess(ServerOptions options) : options_(std::move(options)) {}

ServerProcess::~ServerProcess() {
  if (running()) Kill();
  if (stdout_fd_ >= 0) ::close(stdout_fd_);
  if (options_.data_dir.empty() && !stderr_path_.empty()) ::unlink(stderr_path_.c_str());
}

bool ServerProcess::Start() {
  error_.clear();
  url_.clear();
  token_.clear();
  if (running()) {
    error_ = "already running";
    return false;
  }
  if (options_.data_dir.empty() && !options_.dev) {
    error_ = "ServerOptions.data_dir is required unless dev is set";
    return false;
  }

  // The back end (before the log file below makes the data directory non-empty).
  std::vector<std::string> backend_env;
  if (TestBackendIsPostgres() && !options_.dev && !SetsStorageDriver(options_.env)) {
    std::string db_error;
    const std::string conninfo = DatabaseFor(options_.data_dir, &db_error);
    if (conninfo.empty()) {
      error_ = "STOREPLANE_TEST_BACKEND=postgres: " + db_error;
      return false;
    }
    backend_env = {"STOREPLANE_STORAGE_DRIVER=postgres", "STOREPLANE_POSTGRES_CONNINFO=" + conninfo};
  }

  // Where stderr (the logs) goes: a file in the data dir, or a temporary file.
  if (stderr_path_.empty()) {
    if (!options_.data_dir.empty()) {
      std::error_code ec;
      std::filesystem::create_directories(options_.data_dir, ec);  // the log file lives there
      stderr_path_ = options_.data_dir + "/storeplaned.stderr.log";
    } else {
      std::string pattern = TempBase() + "/storeplaned-stderr-XXXXXX";
      std::vector<char> buffer(pattern.begin(), pattern.end());
      buffer.push_back('\0');
      int fd = ::mkstemp(buffer.data());
      if (fd < 0) {
        error_ = std::string("mkstemp: ") + std::strerror(errno);
        return false;
      }
      ::close(fd);
      stderr_path_ = buffer.data();
    }
  }

  std::vector<std::string> args = {BinaryPath(), "--listen", "127.0.0.1:0"};
  if (options_.dev) args.push_back("--dev");
  if (!options_.data_dir.empty()) {
    args.push_back("--data-dir");
    args.push_back(options_.data_dir);
  }
  args.insert(args.end(), options_.extra_args.begin(), options_.extra_args.end());
  std::vector<char*> argv;
  for (auto& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);

  std::vector<std::string> env_storage;
  for (char** e = environ; *e != nullptr; ++e) env_storage.emplace_back(*e);
  env_storage.insert(env_storage.end(), backend_env.begin(), backend_env.end());
  env_storage.insert(env_storage.end(), options_.env.begin(), options_.env.end());
  std::vector<char*> envp;
  for (auto& entry : env_storage) envp.push_back(entry.data());
  envp.push_back(nullptr);

  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    error_ = std::string("pipe: ") + std::strerror(errno);
    return false;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 1);
  posix_spawn_file_actions_addopen(&actions, 2, stderr_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  ::close(pipe_fds[1]);
  if (rc != 0) {
    ::close(pipe_fds[0]);
    error_ = "cannot start " + args[0] + ": " + std::strerror(rc);
    return false;
  }
  pid_ = pid;
  stdout_fd_ = pipe_fds[0];

  // Read stdout lines until the address line; the token line comes before it.
  const auto deadline = Clock::now() + std::chrono::seconds(30);
  std::string pending;
  while (url_.empty()) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) {
      error_ = "storeplaned did not print STOREPLANE_ADDR within 30 s; logs:\n" + Logs();
      Kill();
      return false;
    }
    pollfd pfd{stdout_fd_, POLLIN, 0};
    int ready = ::poll(&pfd, 1, static_cast<int>(std::min<long long>(left, 200)));
    if (ready < 0 && errno != EINTR) {
      error_ = std::string("poll: ") + std::strerror(errno);
      Kill();
      return false;
    }
    if (ready <= 0) continue;
    char buffer[4096];
    ssize_t n = ::read(stdout_fd_, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int status = 0;
      bool reaped = WaitFor(pid_, &status, std::chrono::seconds(5));
      std::ostringstream why;
      why << "storeplaned closed stdout before printing STOREPLANE_ADDR";
      if (reaped && WIFEXITED(status)) why << " (exit status " << WEXITSTATUS(status) << ")";
      if (reaped && WIFSIGNALED(status)) why << " (signal " << WTERMSIG(status) << ")";
      if (reaped) pid_ = -1;
      error_ = why.str() + "; logs:\n" + Logs();
      if (running()) Kill();
      ::close(stdout_fd_);
      stdout_fd_ = -1;
      return false;
    }
    pending.append(buffer, static_cast<size_t>(n));
    size_t newline;
    while ((newline = pending.find('\n')) != std::string::npos) {
      std::string line = pending.substr(0, newline);
      pending.erase(0, newline + 1);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.rfind("STOREPLANE_TOKEN=", 0) == 0 && url_.empty()) {
        token_ = line.substr(std::strlen("STOREPLANE_TOKEN="));
      } else if (line.rfind("STOREPLANE_ADDR=", 0) == 0) {
        url_ = line.substr(std::strlen("STOREPLANE_ADDR="));
        break;
      }
    }
  }
  if (!pending.empty()) {
    std::ofstream(stderr_path_, std::ios::app | std::ios::binary) << pending;
  }
  DrainInBackground(stdout_fd_, stderr_path_);
  stdout_fd_ = -1;
  return true;
}

int ServerProcess::Stop() {
  if (!running()) return -1;
  ::kill(pid_, SIGTERM);
  int status = 0;
  if (!WaitFor(pid_, &status, std::chrono::seconds(20))) {
    ::kill(pid_, SIGKILL);
    WaitFor(pid_, &status, std::chrono::seconds(10));
    pid_ = -1;
    return -1;
  }
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void ServerProcess::SendSignal(int signal) {
  if (running()) ::kill(pid_, signal);
}

bool ServerProcess::Exited(int* status) {
  if (!running()) return false;
  int st = 0;
  const pid_t r = ::waitpid(pid_, &st, WNOHANG);
  if (r != pid_) return false;
  pid_ = -1;
  if (status != nullptr) *status = st;
  return true;
}

void ServerProcess::Kill() {
  if (!running()) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  WaitFor(pid_, &status, std::chrono::seconds(10));
  pid_ = -1;
}

std::string ServerProcess::Logs() const {
  if (stderr_path_.empty()) return {};
  std::ifstream in(stderr_path_, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

}  // namespace storeplane::testing
