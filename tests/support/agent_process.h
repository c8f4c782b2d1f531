// Test support: runs the real shop-agent binary as a child process with a config file
// written by the test, its stderr (JSON log lines) captured to a file, and stops it with
// SIGTERM or SIGKILL. Also copies the fake Magento directory (tests/support/fake_magento)
// so that each test has its own store files and argv log.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace storeplane::testing {

class AgentProcess {
 public:
  // Path of the shop-agent binary under test (SHOP_AGENT_BIN compile definition).
  static std::string BinaryPath();
  // The committed fake Magento directory (FAKE_MAGENTO_DIR compile definition).
  static std::string FakeMagentoSource();
  // Copies the fake Magento directory to `dest` (created), keeping modes.
  static bool CopyFakeMagento(const std::string& dest);

  // `config_path`: the YAML file to pass with --config; `env`: extra NAME=value entries.
  AgentProcess(std::string config_path, std::string log_path, std::vector<std::string> env = {});
  ~AgentProcess();  // SIGKILL if still running
  AgentProcess(const AgentProcess&) = delete;
  AgentProcess& operator=(const AgentProcess&) = delete;

  bool Start();
  // SIGTERM and wait up to 10 s; the exit status, or -1 when it had to be killed.
  int Stop();
  void Kill();
  bool running() const { return pid_ > 0; }
  // Waits up to `timeout_ms` for the process to exit by itself; its exit status or -1.
  int WaitExit(int timeout_ms);
  std::string Logs() const;

 private:
  std::string config_path_;
  std::string log_path_;
  std::vector<std::string> env_;
  pid_t pid_ = -1;
};

// The lines of `path` (empty when it does not exist).
std::vector<std::string> ReadLines(const std::string& path);
// Kills every process whose working directory is under `dir` (leftovers of a hung
// command after its agent was SIGKILLed).
void KillProcessesUnder(const std::string& dir);

}  // namespace storeplane::testing
