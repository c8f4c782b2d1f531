// Test support: the small child-process toolkit the *_process helpers share (finding a
// program on PATH, starting a child with its output in a log file, optionally as another
// user, waiting with a deadline, stopping with a signal then SIGKILL). fork/exec with
// everything prepared before the fork, so it is safe from multithreaded tests.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace storeplane::testing {

// The full path of `name` on PATH (or `name` itself when it contains a '/' and is
// executable); "" when not found.
std::string FindOnPath(const std::string& name);
bool OnPath(const std::string& name);
// Whether the environment variable `name` is set to anything but "" or "0" (the
// STOREPLANE_REQUIRE_* switches).
bool EnvFlagSet(const char* name);
// A socket bound to 127.0.0.1 on a port the kernel picks (close-on-exec); -1 on failure.
// `port` is set.
int BindLoopbackEphemeral(int* port);
// A loopback TCP port that was free a moment ago (bound to port 0, then released); 0 on
// failure.
int FreeLoopbackPort();
// The file's contents; "" when it cannot be read.
std::string ReadWholeFile(const std::string& path);
// The last `max` bytes of `text` (prefixed with "..." when cut).
std::string Tail(const std::string& text, std::size_t max);

struct ChildSpec {
  std::vector<std::string> argv;       // argv[0] is a path, or a name looked up on PATH
  std::vector<std::string> extra_env;  // "NAME=value" entries added to this process's environment
  std::string log_path;                // stdout and stderr (appended); "" = /dev/null
  std::string cwd;                     // "" = inherit
  // When set (>= 0), the child drops to this user (setgroups/setgid/setuid) before exec;
  // needs root. The log file is opened before dropping privileges.
  uid_t uid = static_cast<uid_t>(-1);
  gid_t gid = static_cast<gid_t>(-1);
  // When non-zero, the child gets this signal if the thread that started it dies
  // (PR_SET_PDEATHSIG), so a crashed or killed test does not leave it running. Only for
  // children started from a thread that outlives them (the test's main thread).
  int parent_death_signal = 0;
};

// Starts the child; its pid, or -1 with `error` set.
pid_t SpawnChild(const ChildSpec& spec, std::string* error);
// waitpid with a deadline: true (and `status`) when the child was reaped (or is not ours).
bool WaitForExit(pid_t pid, int* status, std::chrono::milliseconds timeout);
// Sends `sig`, waits up to `grace`, then SIGKILLs and reaps. Returns the wait status.
int StopChild(pid_t pid, int sig, std::chrono::milliseconds grace);

struct ChildRun {
  int exit_status = -1;  // -1: could not start, killed by a signal, or timed out (killed)
  std::string output;    // the log file's contents (stdout and stderr)
};
// Runs the child to completion (SIGKILL after `timeout`), output to spec.log_path (which it
// truncates first; required).
ChildRun RunChild(const ChildSpec& spec, std::chrono::seconds timeout);

}  // namespace storeplane::testing
