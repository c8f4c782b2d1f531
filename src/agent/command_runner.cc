#include "agent/command_runner.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <optional>

namespace storeplane::agent {
namespace {

using Clock = std::chrono::steady_clock;

// How long a command's remaining output may take once its main process exited.
constexpr std::chrono::milliseconds kDrainGrace{2000};
// The longest the read loop sleeps before looking at the clock and the stop request again.
constexpr int kTickMs = 50;

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { Close(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

std::int64_t MillisSince(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
}

// In the child, between fork and execve: async-signal-safe calls only. Never returns.
[[noreturn]] void ExecChild(char* const* argv, char* const* envp, const char* cwd, int stdin_fd, int output_fd,
                            int error_fd, int max_fd) {
  ::setpgid(0, 0);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  struct sigaction default_action = {};
  default_action.sa_handler = SIG_DFL;
  for (int sig : {SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGCHLD, SIGUSR1, SIGUSR2}) {
    ::sigaction(sig, &default_action, nullptr);
  }
  int err = 0;
  if (::dup2(stdin_fd, STDIN_FILENO) < 0 || ::dup2(output_fd, STDOUT_FILENO) < 0 ||
      ::dup2(output_fd, STDERR_FILENO) < 0) {
    err = errno;
  } else if (::chdir(cwd) != 0) {
    err = errno;
  } else {
    // Nothing the agent holds open (sockets, the journal) reaches the command: every other
    // descriptor closes at execve (the error pipe too, which tells the parent exec worked).
    if (::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
      for (int fd = 3; fd < max_fd; ++fd) {
        if (fd != error_fd) ::close(fd);
      }
    }
    ::execve(argv[0], argv, envp);
    err = errno;
  }
  ssize_t ignored = ::write(error_fd, &err, sizeof err);
  (void)ignored;
  ::_exit(127);
}

}  // namespace

const std::vector<std::string>& MinimalEnvironment() {
  static const std::vector<std::string> env = {"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C"};
  return env;
}

CommandResult ProcessRunner::Run(const CommandSpec& spec) {
  const auto start = Clock::now();
  CommandResult result;
  if (spec.argv.empty() || spec.argv.front().empty()) return result;

  // Everything the child needs is built before fork: it may not allocate afterwards.
  std::vector<char*> argv;
  argv.reserve(spec.argv.size() + 1);
  for (const auto& arg : spec.argv) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (const auto& var : MinimalEnvironment()) envp.push_back(const_cast<char*>(var.c_str()));
  envp.push_back(nullptr);
  struct rlimit files = {};
  int max_fd = 1024;
  if (::getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur != RLIM_INFINITY) {
    max_fd = static_cast<int>(std::min<rlim_t>(files.rlim_cur, 65536));
  }

  std::array<int, 2> output_pipe = {-1, -1};
  std::array<int, 2> error_pipe = {-1, -1};
  if (::pipe2(output_pipe.data(), O_CLOEXEC) != 0) return result;
  Fd output_read(output_pipe[0]);
  Fd output_write(output_pipe[1]);
  if (::pipe2(error_pipe.data(), O_CLOEXEC) != 0) return result;
  Fd error_read(error_pipe[0]);
  Fd error_write(error_pipe[1]);
  Fd dev_null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (dev_null.get() < 0) return result;

  const pid_t pid = ::fork();
  if (pid < 0) return result;
  if (pid == 0) {
    ExecChild(argv.data(), envp.data(), spec.cwd.c_str(), dev_null.get(), output_write.get(), error_write.get(),
              max_fd);
  }
  ::setpgid(pid, pid);  // also done by the child; whichever runs first wins, no race on kill
  output_write.Close();
  error_write.Close();
  dev_null.Close();

  auto reap = [pid]() -> std::optional<int> {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0) {
      if (errno != EINTR) return std::nullopt;
    }
    return status;
  };
  // The group is killed while its leader is still unreaped, so its id cannot be reused.
  auto kill_group = [pid] { ::kill(-pid, SIGKILL); };

  // execve closes the error pipe on success; otherwise the child wrote errno into it.
  int exec_errno = 0;
  ssize_t got = 0;
  do {
    got = ::read(error_read.get(), &exec_errno, sizeof exec_errno);
  } while (got < 0 && errno == EINTR);
  if (got == static_cast<ssize_t>(sizeof exec_errno)) {
    (void)reap();
    result.outcome = CommandOutcome::kSpawnFailed;
    result.duration_ms = MillisSince(start);
    return result;
  }
  error_read.Close();

  ::fcntl(output_read.get(), F_SETFL, ::fcntl(output_read.get(), F_GETFL) | O_NONBLOCK);
  const auto deadline = start + spec.timeout;
  std::optional<CommandOutcome> killed_for;
  std::optional<Clock::time_point> drain_until;
  bool eof = false;
  std::array<char, 65536> buffer{};

  while (!killed_for) {
    if (stop_ != nullptr && stop_->requested()) {
      killed_for = CommandOutcome::kStopped;
      break;
    }
    const auto now = Clock::now();
    if (now >= deadline) {
      killed_for = CommandOutcome::kTimeout;
      break;
    }
    if (!drain_until) {
      siginfo_t info = {};
      if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == pid) {
        drain_until = now + kDrainGrace;
      }
    }
    if (drain_until && (eof || now >= *drain_until)) break;

    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count();
    const int wait_ms = static_cast<int>(std::clamp<std::int64_t>(left, 1, drain_until || eof ? 10 : kTickMs));
    if (eof) {
      ::poll(nullptr, 0, wait_ms);  // output closed, main process still running
      continue;
    }
    struct pollfd pfd = {output_read.get(), POLLIN, 0};
    if (::poll(&pfd, 1, wait_ms) <= 0) continue;
    while (true) {
      const ssize_t n = ::read(output_read.get(), buffer.data(), buffer.size());
      if (n > 0) {
        const auto count = static_cast<std::size_t>(n);
        if (result.output.size() + count > spec.max_output_bytes) {
          killed_for = CommandOutcome::kOutputTooLarge;
          break;
        }
        result.output.append(buffer.data(), count);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) eof = true;  // a read error ends the output too
      break;
    }
  }

  // Stragglers (background children that kept running) go with the group.
  kill_group();
  const auto status = reap();
  result.duration_ms = MillisSince(start);
  if (killed_for) {
    result.outcome = *killed_for;
    result.output.clear();
    return result;
  }
  if (status && WIFEXITED(*status)) {
    result.outcome = CommandOutcome::kExited;
    result.exit_code = WEXITSTATUS(*status);
  } else {
    result.outcome = CommandOutcome::kSignaled;
  }
  return result;
}

}  // namespace storeplane::agent
