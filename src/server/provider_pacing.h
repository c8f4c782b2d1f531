// Provider pacing: a token bucket per CI/CD provider (cicd.providers.<name>.max_triggers_per_minute),
// so that a rollout of thousands of stores never sends triggers faster than the provider
// accepts them (GitHub, for one, limits workflow dispatches). A provider without a rate is
// unlimited. Waiting for a token never fails anything: the outbox dispatcher leaves the
// trigger due and the rollout orchestrator starts fewer runs. Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>

namespace storeplane::server {

class ProviderPacer {
 public:
  static constexpr int kUnlimited = 1'000'000;

  // provider name -> triggers per minute (>= 1); providers not named are unlimited.
  explicit ProviderPacer(const std::map<std::string, int>& per_minute);

  // Whole tokens `provider` has now (kUnlimited without a rate). Bucket size: one minute's rate.
  int Available(const std::string& provider, std::int64_t now_ms);
  // Takes one token; false (and nothing taken) when none is available.
  bool TryTake(const std::string& provider, std::int64_t now_ms);
  // Milliseconds until `provider` has a token again (0 when it has one now).
  std::int64_t WaitMs(const std::string& provider, std::int64_t now_ms);

 private:
  struct Bucket {
    double per_ms = 0;
    double capacity = 0;
    double tokens = 0;
    std::int64_t last_ms = -1;
  };
  void RefillLocked(Bucket& bucket, std::int64_t now_ms);

  std::mutex mu_;
  std::map<std::string, Bucket> buckets_;
};

}  // namespace storeplane::server
