#include "tests/support/child_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string_view>
#include <thread>

extern char** environ;

namespace storeplane::testing {

std::string FindOnPath(const std::string& name) {
  if (name.empty()) return "";
  if (name.find('/') != std::string::npos) return ::access(name.c_str(), X_OK) == 0 ? name : "";
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path != nullptr ? path : "/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (dir.empty()) continue;
    const std::string candidate = dir + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

bool OnPath(const std::string& name) { return !FindOnPath(name).empty(); }

bool EnvFlagSet(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' && std::string_view(value) != "0";
}

int BindLoopbackEphemeral(int* port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
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

int FreeLoopbackPort() {
  int port = 0;
  const int fd = BindLoopbackEphemeral(&port);
  if (fd < 0) return 0;
  ::close(fd);
  return port;
}

std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string Tail(const std::string& text, std::size_t max) {
  return text.size() <= max ? text : "..." + text.substr(text.size() - max);
}

pid_t SpawnChild(const ChildSpec& spec, std::string* error) {
  if (spec.argv.empty()) {
    if (error) *error = "empty argv";
    return -1;
  }
  // Everything the child needs is prepared here: between fork and exec it only makes
  // async-signal-safe calls.
  const std::string program = FindOnPath(spec.argv[0]);
  if (program.empty()) {
    if (error) *error = "cannot find " + spec.argv[0];
    return -1;
  }
  std::vector<std::string> args = spec.argv;
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) env.emplace_back(*e);
  env.insert(env.end(), spec.extra_env.begin(), spec.extra_env.end());
  std::vector<char*> envp;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  const std::string log = spec.log_path.empty() ? "/dev/null" : spec.log_path;
  const bool drop = spec.uid != static_cast<uid_t>(-1);
  const bool chdir_to = !spec.cwd.empty();
  const int death_signal = spec.parent_death_signal;
  const pid_t parent = ::getpid();

  const pid_t pid = ::fork();
  if (pid < 0) {
    if (error) *error = std::string("fork: ") + std::strerror(errno);
    return -1;
  }
  if (pid == 0) {
    const int in = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    const int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (in < 0 || out < 0 || ::dup2(in, 0) < 0 || ::dup2(out, 1) < 0 || ::dup2(out, 2) < 0) ::_exit(126);
    if (drop) {
      const gid_t gid = spec.gid;
      if (::setgroups(1, &gid) != 0 || ::setgid(gid) != 0 || ::setuid(spec.uid) != 0) ::_exit(126);
    }
    // After the credentials change, which clears the parent-death signal.
    if (death_signal != 0 && (::prctl(PR_SET_PDEATHSIG, death_signal) != 0 || ::getppid() != parent)) ::_exit(126);
    if (chdir_to && ::chdir(spec.cwd.c_str()) != 0) ::_exit(126);
    ::execve(program.c_str(), argv.data(), envp.data());
    ::_exit(127);
  }
  return pid;
}

bool WaitForExit(pid_t pid, int* status, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    const pid_t r = ::waitpid(pid, status, WNOHANG);
    if (r == pid) return true;
    if (r < 0 && errno != EINTR) return true;  // not our child any more
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

int StopChild(pid_t pid, int sig, std::chrono::milliseconds grace) {
  int status = 0;
  if (pid <= 0) return status;
  ::kill(pid, sig);
  if (!WaitForExit(pid, &status, grace)) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
  }
  return status;
}

ChildRun RunChild(const ChildSpec& spec, std::chrono::seconds timeout) {
  ChildRun run;
  { std::ofstream truncate(spec.log_path, std::ios::trunc); }
  std::string error;
  const pid_t pid = SpawnChild(spec, &error);
  if (pid < 0) {
    run.output = error;
    return run;
  }
  int status = 0;
  if (!WaitForExit(pid, &status, timeout)) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    run.output = spec.argv[0] + " did not finish within " + std::to_string(timeout.count()) + " s\n";
  } else if (WIFEXITED(status)) {
    run.exit_status = WEXITSTATUS(status);
  }
  run.output += ReadWholeFile(spec.log_path);
  return run;
}

}  // namespace storeplane::testing
