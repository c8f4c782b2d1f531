#include "agent/agent_loop.h"

#include <fcntl.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <optional>
#include <thread>

#include "agent/agent_log.h"
#include "agent/command_runner.h"
#include "agent/control_plane_client.h"
#include "agent/credential_file.h"
#include "agent/health_checks.h"
#include "agent/operation_executor.h"
#include "agent/operation_journal.h"
#include "protocol/agent_wire.h"

namespace storeplane::agent {
namespace {

using std::chrono::milliseconds;

constexpr long kRequestTimeoutMs = 15000;
constexpr long kPollTimeoutSlackMs = 10000;  // the long-poll's client timeout is wait_ms + this
constexpr int kDefaultHeartbeatIntervalS = 10;

int ClampInterval(int seconds) { return std::clamp(seconds, 1, 3600); }

// One plain line for a fatal problem before the loops start, like the config errors.
void FatalLine(const std::string& problem) { std::cerr << "shop-agent: " << problem << std::endl; }

LogFields ReplyFields(const Result<ControlPlaneReply>& reply, const Backoff& backoff, milliseconds delay) {
  LogFields fields;
  if (reply.ok()) {
    fields.emplace_back("http_status", std::int64_t{reply->status});
  } else {
    fields.emplace_back("error", reply.error().message);
  }
  fields.emplace_back("attempt", std::int64_t{backoff.attempt()});
  fields.emplace_back("retry_in_ms", std::int64_t{delay.count()});
  return fields;
}

// Waits out one backoff step after a failed call, logging why; true when stopping.
bool BackOff(StopSignal& stop, Backoff& backoff, std::string_view what, const Result<ControlPlaneReply>& reply) {
  const auto delay = backoff.Next();
  auto fields = ReplyFields(reply, backoff, delay);
  fields.emplace_back("call", std::string(what));
  switch (Classify(reply)) {
    case ReplyClass::kUnauthorized: Log(LogLevel::kWarn, "credential refused", fields); break;
    case ReplyClass::kRejected: Log(LogLevel::kError, "request rejected by the control plane", fields); break;
    case ReplyClass::kRetry:
    case ReplyClass::kSuccess: Log(LogLevel::kWarn, "control plane unavailable", fields); break;
  }
  return stop.WaitFor(delay);
}

Status PrepareStateDir(const std::string& dir) {
  std::error_code ec;
  if (std::filesystem::is_directory(dir, ec)) return Status::Ok();
  if (std::filesystem::exists(dir, ec)) return Error::Invalid("state_dir " + dir + " is not a directory");
  const auto parent = std::filesystem::path(dir).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return Error::Internal("cannot create state_dir " + dir + ": " + std::strerror(errno));
  }
  ::chmod(dir.c_str(), 0700);
  return Status::Ok();
}

struct Enrollment {
  int exit_code = kExitOk;
  std::string credential;
  int heartbeat_interval_s = kDefaultHeartbeatIntervalS;
};

Enrollment Enroll(const AgentConfig& config, StopSignal& stop) {
  Enrollment outcome;
  auto token = ReadEnrollmentToken(config.enrollment_token_file, std::getenv(kEnrollmentTokenEnv));
  ::unsetenv(kEnrollmentTokenEnv);  // nothing started later inherits it
  if (!token.ok()) {
    FatalLine("no credential at " + config.credential_file + " and " + token.error().message);
    outcome.exit_code = kExitUsage;
    return outcome;
  }
  protocol::EnrollRequest request{config.store_id, *token, kAgentVersion};
  std::string body = protocol::Encode(request);
  std::fill(token->begin(), token->end(), '\0');
  std::fill(request.enrollment_token.begin(), request.enrollment_token.end(), '\0');
  auto wipe = [&body] { std::fill(body.begin(), body.end(), '\0'); };

  ControlPlaneClient client(config.control_plane_url, config.ca_file, &stop);
  Backoff backoff;
  Log(LogLevel::kInfo, "enrolling", {{"store_id", config.store_id}});
  while (true) {
    const auto reply = client.Post("/agent/v1/enroll", body, kRequestTimeoutMs);
    if (stop.requested()) {
      wipe();
      return outcome;
    }
    const auto kind = Classify(reply);
    if (kind == ReplyClass::kRetry) {
      if (BackOff(stop, backoff, "enroll", reply)) {
        wipe();
        return outcome;
      }
      continue;
    }
    wipe();
    if (kind == ReplyClass::kUnauthorized) {
      FatalLine("enrollment refused (HTTP 401): the enrollment token is unknown, used, expired or for another store");
      outcome.exit_code = kExitEnrollmentRefused;
      return outcome;
    }
    if (kind == ReplyClass::kRejected) {
      FatalLine("enrollment rejected (HTTP " + std::to_string(reply->status) + ")");
      outcome.exit_code = kExitEnrollmentRefused;
      return outcome;
    }
    auto answer = protocol::DecodeEnrollResponse(reply->body);
    if (!answer.ok() || answer->store_id != config.store_id || !IsPlausibleSecret(answer->credential)) {
      FatalLine("enrollment failed: the control plane's answer is not a credential for store " + config.store_id);
      outcome.exit_code = kExitEnrollmentRefused;
      return outcome;
    }
    if (auto s = WriteCredentialFile(config.credential_file, answer->credential); !s.ok()) {
      FatalLine(s.error().message);
      outcome.exit_code = kExitFailure;
      return outcome;
    }
    outcome.credential = std::move(answer->credential);
    outcome.heartbeat_interval_s = ClampInterval(answer->heartbeat_interval_s);
    Log(LogLevel::kInfo, "enrolled", {{"store_id", config.store_id}, {"agent_id", answer->agent_id}});
    return outcome;
  }
}

class AgentRun {
 public:
  AgentRun(const AgentConfig& config, StopSignal& stop, std::string credential, int heartbeat_interval_s,
           OperationJournal& journal)
      : config_(config),
        stop_(stop),
        credential_(std::move(credential)),
        session_(NewSessionId()),
        heartbeat_interval_s_(heartbeat_interval_s),
        runner_(&stop),
        executor_(config, runner_, &journal, [this] { return RunHealthChecks(config_, &stop_); }) {}

  void Run() {
    Log(LogLevel::kInfo, "connected loops starting", {{"store_id", config_.store_id}, {"session", session_}});
    std::thread heartbeat([this] { HeartbeatLoop(); });
    PollLoop();
    stop_.Request();  // PollLoop only returns when stopping; make sure the heartbeat follows
    heartbeat.join();
  }

 private:
  void HeartbeatLoop() {
    ControlPlaneClient client(config_.control_plane_url, config_.ca_file, &stop_);
    client.SetCredential(credential_);
    Backoff backoff;
    while (!stop_.requested()) {
      const auto started = std::chrono::steady_clock::now();
      protocol::Heartbeat heartbeat;
      heartbeat.agent_version = kAgentVersion;
      heartbeat.session = session_;
      heartbeat.release = ReadReleaseMarker(config_.ReleaseMarkerPath());
      heartbeat.isolation_mode = config_.isolation_mode;
      heartbeat.allowed_operations = config_.allowed_operations;
      heartbeat.checks = RunHealthChecks(config_, &stop_);
      const auto reply = client.Post("/agent/v1/heartbeat", protocol::Encode(heartbeat), kRequestTimeoutMs);
      if (stop_.requested()) return;
      if (Classify(reply) != ReplyClass::kSuccess) {
        if (BackOff(stop_, backoff, "heartbeat", reply)) return;
        continue;
      }
      if (backoff.attempt() > 0)
        Log(LogLevel::kInfo, "control plane reachable again", {{"call", std::string("heartbeat")}});
      backoff.Reset();
      if (auto ack = protocol::DecodeHeartbeatAck(reply->body); ack.ok()) {
        heartbeat_interval_s_ = ClampInterval(ack->heartbeat_interval_s);
      }
      const auto next = started + std::chrono::seconds(heartbeat_interval_s_);
      const auto wait = std::chrono::duration_cast<milliseconds>(next - std::chrono::steady_clock::now());
      if (stop_.WaitFor(std::max(wait, milliseconds(0)))) return;
    }
  }

  void PollLoop() {
    ControlPlaneClient client(config_.control_plane_url, config_.ca_file, &stop_);
    client.SetCredential(credential_);
    const std::string path =
        "/agent/v1/operations?session=" + session_ + "&wait_ms=" + std::to_string(config_.poll_wait_ms);
    const long timeout_ms = config_.poll_wait_ms + kPollTimeoutSlackMs;
    Backoff backoff;
    while (!stop_.requested()) {
      const auto reply = client.Get(path, timeout_ms);
      if (stop_.requested()) return;
      if (Classify(reply) != ReplyClass::kSuccess) {
        if (BackOff(stop_, backoff, "poll", reply)) return;
        continue;
      }
      if (backoff.attempt() > 0) Log(LogLevel::kInfo, "control plane reachable again", {{"call", std::string("poll")}});
      backoff.Reset();
      if (reply->status == 204) continue;
      auto delivery = DecodeDelivery(reply->body);
      if (!delivery.ok()) {
        Log(LogLevel::kError, "operations answer does not decode", {{"error", delivery.error().message}});
        if (stop_.WaitFor(backoff.Next())) return;
        continue;
      }
      for (const auto& operation : *delivery) {
        if (stop_.requested()) return;  // the rest is delivered again to the next session
        std::optional<std::string> report;
        if (operation.envelope) {
          report = executor_.Handle(*operation.envelope);
        } else {
          Log(LogLevel::kWarn, "operation refused: unknown to this agent",
              {{"op_id", operation.id}, {"field", operation.problem}, {"code", std::string("refused_unknown")}});
          report = protocol::Encode(FailureReport("refused_unknown"));
        }
        if (!report) return;  // stopped while it ran
        SendReport(client, operation.id, *report);
      }
    }
  }

  // Retries until the control plane has the report, refuses it for good, or the agent stops
  // (the journal then answers the redelivery).
  void SendReport(ControlPlaneClient& client, const std::string& id, const std::string& body) {
    const std::string path = "/agent/v1/operations/" + id + "/result";
    Backoff backoff;
    while (!stop_.requested()) {
      const auto reply = client.Post(path, body, kRequestTimeoutMs);
      const auto kind = Classify(reply);
      if (kind == ReplyClass::kSuccess) return;
      if (kind == ReplyClass::kRejected) {
        const bool settled = reply->status == 404 || reply->status == 409;
        Log(settled ? LogLevel::kInfo : LogLevel::kError,
            settled ? "result not needed: the operation is unknown or already final" : "result rejected",
            {{"op_id", id}, {"http_status", std::int64_t{reply->status}}});
        return;
      }
      if (BackOff(stop_, backoff, "result", reply)) return;
    }
  }

  const AgentConfig& config_;
  StopSignal& stop_;
  std::string credential_;
  std::string session_;
  std::atomic<int> heartbeat_interval_s_;
  ProcessRunner runner_;
  OperationExecutor executor_;
};

}  // namespace

Backoff::Backoff(milliseconds initial, milliseconds cap, std::uint64_t seed)
    : initial_(initial), cap_(cap), random_(seed) {}

milliseconds Backoff::Ceiling() const {
  const int shift = std::min(attempt_, 30);
  const auto grown = initial_.count() * (std::int64_t{1} << shift);
  return milliseconds(std::min<std::int64_t>(grown, cap_.count()));
}

milliseconds Backoff::Next() {
  const auto ceiling = Ceiling();
  ++attempt_;
  std::uniform_int_distribution<std::int64_t> pick(0, ceiling.count());
  return milliseconds(pick(random_));
}

std::string NewSessionId() {
  std::array<unsigned char, 16> bytes{};
  if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) {
    const int fd = ::open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    std::size_t got = 0;
    while (fd >= 0 && got < bytes.size()) {
      const ssize_t n = ::read(fd, bytes.data() + got, bytes.size() - got);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      got += static_cast<std::size_t>(n);
    }
    if (fd >= 0) ::close(fd);
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(bytes.size() * 2);
  for (const unsigned char b : bytes) {
    hex.push_back(kHex[b >> 4]);
    hex.push_back(kHex[b & 0x0f]);
  }
  return hex;
}

int RunAgent(const AgentConfig& config, StopSignal& stop) {
  Log(LogLevel::kInfo, "shop-agent starting",
      {{"version", std::string(kAgentVersion)},
       {"store_id", config.store_id},
       {"allowed_operations", std::int64_t(config.allowed_operations.size())}});
  if (auto s = PrepareStateDir(config.state_dir); !s.ok()) {
    FatalLine(s.error().message);
    return kExitFailure;
  }
  auto journal = OperationJournal::Open(config.JournalPath());
  if (!journal.ok()) {
    FatalLine(journal.error().message);
    return kExitFailure;
  }

  std::string credential;
  int interval_s = kDefaultHeartbeatIntervalS;
  auto stored = ReadCredentialFile(config.credential_file);
  if (!stored.ok()) {
    FatalLine(stored.error().message);
    return kExitFailure;
  }
  if (stored->has_value()) {
    credential = std::move(**stored);
    struct stat st = {};
    if (::stat(config.credential_file.c_str(), &st) == 0 && (st.st_mode & 0077) != 0) {
      Log(LogLevel::kWarn, "credential file is readable by group or others", {{"path", config.credential_file}});
    }
  } else {
    auto enrollment = Enroll(config, stop);
    if (enrollment.exit_code != kExitOk) return enrollment.exit_code;
    if (stop.requested()) return kExitOk;
    credential = std::move(enrollment.credential);
    interval_s = enrollment.heartbeat_interval_s;
  }

  AgentRun run(config, stop, std::move(credential), interval_s, *journal);
  run.Run();
  Log(LogLevel::kInfo, "shop-agent stopped");
  return kExitOk;
}

}  // namespace storeplane::agent
