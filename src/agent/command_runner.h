// Runs one fixed argv as a child process, without a shell: fork + execve in its own process
// group, stdin from /dev/null, stdout and stderr into one pipe, a minimal environment
// (PATH and LANG only), a deadline and an output cap that kill the whole group.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "agent/stop_signal.h"

namespace storeplane::agent {

struct CommandSpec {
  std::vector<std::string> argv;  // argv[0] is the program's absolute path
  std::string cwd;
  std::chrono::milliseconds timeout{60000};
  std::size_t max_output_bytes = 1048576;
};

enum class CommandOutcome {
  kExited,          // the program ran and exited; see exit_code
  kSignaled,        // the program was killed by a signal it did not get from us
  kTimeout,         // killed (with its group) at the deadline
  kOutputTooLarge,  // killed (with its group) after more than max_output_bytes
  kSpawnFailed,     // could not be started (missing program, bad cwd, no resources)
  kStopped,         // killed (with its group) because the agent is stopping
};

struct CommandResult {
  CommandOutcome outcome = CommandOutcome::kSpawnFailed;
  int exit_code = -1;  // kExited only
  std::string output;  // stdout and stderr interleaved; stays inside the agent
  std::int64_t duration_ms = 0;
};

// The environment every command gets, and nothing else.
const std::vector<std::string>& MinimalEnvironment();  // PATH=/usr/local/bin:/usr/bin:/bin, LANG=C

class CommandRunner {
 public:
  virtual ~CommandRunner() = default;
  virtual CommandResult Run(const CommandSpec& spec) = 0;
};

// The real runner. `stop` (optional) aborts a running command when requested.
class ProcessRunner : public CommandRunner {
 public:
  explicit ProcessRunner(const StopSignal* stop = nullptr) : stop_(stop) {}
  CommandResult Run(const CommandSpec& spec) override;

 private:
  const StopSignal* stop_;
};

}  // namespace storeplane::agent
