// The agent's life: enrollment when it has no credential, then a heartbeat thread (health
// checks every heartbeat_interval_s) and the poll loop (long-poll for operations, run them
// one at a time, report). On control-plane loss both back off and do nothing to the store.
#pragma once

#include <chrono>
#include <cstdint>
#include <random>
#include <string>

#include "agent/agent_config.h"
#include "agent/stop_signal.h"

namespace storeplane::agent {

// shop-agent's exit codes.
inline constexpr int kExitOk = 0;                 // stopped by SIGTERM/SIGINT
inline constexpr int kExitFailure = 1;            // local state unusable (state_dir, journal, credential file)
inline constexpr int kExitUsage = 2;              // bad flags, bad configuration, no enrollment token
inline constexpr int kExitEnrollmentRefused = 3;  // the control plane refused the enrollment (401, 4xx)

// Capped exponential backoff with full jitter: the n-th delay is uniform in
// [0, min(cap, initial * 2^n)]. Reset() after a success.
class Backoff {
 public:
  explicit Backoff(std::chrono::milliseconds initial = std::chrono::milliseconds(200),
                   std::chrono::milliseconds cap = std::chrono::milliseconds(30000),
                   std::uint64_t seed = std::random_device{}());
  std::chrono::milliseconds Next();
  void Reset() { attempt_ = 0; }
  int attempt() const { return attempt_; }
  std::chrono::milliseconds Ceiling() const;  // the upper bound of the next delay

 private:
  std::chrono::milliseconds initial_;
  std::chrono::milliseconds cap_;
  int attempt_ = 0;
  std::mt19937_64 random_;
};

// 32 lowercase hex characters from 16 random bytes (OpenSSL RAND_bytes, else /dev/urandom).
std::string NewSessionId();

// Runs until `stop` is requested (exit 0) or a fatal problem (the exit codes above).
int RunAgent(const AgentConfig& config, StopSignal& stop);

}  // namespace storeplane::agent
