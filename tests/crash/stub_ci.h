// A stub CI/CD provider for the crash-point driver, speaking the generic signed webhook
// protocol (src/cicd/webhook_provider.cc):
//   POST <base>                    a trigger: counted per correlation id, answered 202
//   GET  <base>/runs/<correlation> the run's status (200) or 404 when it never arrived
// and playing the pipeline: each accepted trigger runs a short "pipeline" that reports
// `running` and then an outcome by signed callbacks (core::SignPayload) to the control
// plane, retried while the control plane is down; the status it answers to a Find is the
// pipeline's current one, so polling ends a run whose callbacks were lost.
//
// A trigger counts only once its whole request was read (a sender killed mid-request sent
// nothing); the count per correlation id is what "never triggered twice" is checked on.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace storeplane::client {
class HttpClient;
}

namespace storeplane::crash {

class StubCi {
 public:
  struct Pipeline {
    std::string correlation_id;
    std::string store_id;
    std::string kind;
    std::string release;
    std::string status = "queued";  // queued, running, succeeded, failed
    std::int64_t accepted_ms = 0;
    std::int64_t running_at_ms = 0;  // when it reports running
    std::int64_t done_at_ms = 0;     // when it reports its outcome
    std::string outcome;             // succeeded or failed, decided at the trigger
    bool silent = false;             // never calls back: only polling (Find) learns its outcome
    bool running_sent = false;       // the callback got an answer (200 or 409)
    bool outcome_sent = false;
    int callback_attempts = 0;
    std::int64_t next_callback_ms = 0;
  };
  struct Counts {
    std::int64_t triggers = 0;    // accepted trigger requests, all runs
    std::int64_t runs = 0;        // distinct correlation ids
    std::int64_t duplicates = 0;  // correlation ids triggered more than once
    std::int64_t finds = 0;       // status requests (ask-before-resend and polling)
    std::int64_t bad_signatures = 0;
    std::int64_t callbacks_ok = 0;   // callbacks answered 200
    std::int64_t callbacks_dup = 0;  // answered 409 (already received: a lost answer or a replay)
  };

  // `trigger_secret` checks the triggers' signatures; `callback_secret` signs callbacks.
  StubCi(std::string trigger_secret, std::string callback_secret, std::uint64_t seed);
  ~StubCi();
  StubCi(const StubCi&) = delete;
  StubCi& operator=(const StubCi&) = delete;

  std::string base_url() const;  // what the provider's base_url is set to
  // Where callbacks go, e.g. http://127.0.0.1:4711/hooks/cicd/hook.
  void SetCallbackUrl(const std::string& url);
  // Called (on the pipeline thread) just before a successful deploy or rollback reports
  // its outcome: the "installation" (the driver writes the fake store's release marker).
  void OnSuccess(std::function<void(const Pipeline&)> hook);

  Counts counts();
  std::map<std::string, int> trigger_counts();  // correlation id -> triggers received
  std::vector<Pipeline> pipelines();
  // Problems the stub saw itself (a bad signature, a malformed trigger).
  std::vector<std::string> problems();

 private:
  void Serve();
  void Handle(int fd);
  void RunPipelines();
  bool SendCallback(const Pipeline& p, const std::string& status, const std::string& delivery);

  std::string trigger_secret_;
  std::string callback_secret_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::mutex mu_;
  std::string callback_url_;
  std::function<void(const Pipeline&)> on_success_;
  std::map<std::string, int> triggers_;
  std::map<std::string, Pipeline> pipelines_;
  std::vector<std::string> problems_;
  Counts counts_;
  std::mt19937_64 rng_;
  std::unique_ptr<client::HttpClient> callback_http_;  // the pipeline thread's
  std::thread server_thread_;
  std::thread pipeline_thread_;
};

}  // namespace storeplane::crash
