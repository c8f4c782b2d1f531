// The agent's HTTP(S) client for the control plane's /agent/v1/ channel, over libcurl: one
// instance (one curl easy handle) per thread, Bearer credential, optional CA bundle, and
// transfers that abort as soon as the agent is asked to stop. libcurl honours the standard
// proxy variables (lowercase http_proxy, https_proxy, no_proxy; HTTPS_PROXY and NO_PROXY too).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/stop_signal.h"
#include "core/result.h"
#include "protocol/agent_wire.h"

namespace storeplane::agent {

struct ControlPlaneReply {
  long status = 0;
  std::string body;
};

// How the agent treats a reply or a transport error.
enum class ReplyClass {
  kSuccess,       // 2xx
  kUnauthorized,  // 401: the credential (or enrollment token) is refused
  kRetry,         // transport error, 5xx, 429: the control plane is away; back off and retry
  kRejected,      // any other 4xx (or an unexpected status): retrying the same request won't help
};
ReplyClass Classify(const Result<ControlPlaneReply>& reply);

class ControlPlaneClient {
 public:
  // `base_url` like "https://cp.example:8750" (no trailing '/').
  ControlPlaneClient(std::string base_url, std::string ca_file, const StopSignal* stop);
  ~ControlPlaneClient();
  ControlPlaneClient(const ControlPlaneClient&) = delete;
  ControlPlaneClient& operator=(const ControlPlaneClient&) = delete;

  // Sent as "Authorization: Bearer <credential>" from now on.
  void SetCredential(std::string credential) { credential_ = std::move(credential); }

  // Any HTTP status is a reply; transport failures (and a stop) are kUnavailable errors
  // whose message names the curl error, never a secret.
  Result<ControlPlaneReply> Get(std::string_view path, long timeout_ms);
  Result<ControlPlaneReply> Post(std::string_view path, const std::string& json_body, long timeout_ms);

 private:
  Result<ControlPlaneReply> Send(const char* method, std::string_view path, const std::string* body, long timeout_ms);

  std::string base_url_;
  std::string ca_file_;
  const StopSignal* stop_;
  std::string credential_;
  void* curl_;  // CURL*
};

// One entry of a GET /agent/v1/operations answer. `envelope` is set when it decodes; else
// the agent answers `id` with failed/"refused_unknown" (an operation it does not know).
struct DeliveredOperation {
  std::string id;
  std::optional<protocol::OperationEnvelope> envelope;
  std::string problem;  // why it did not decode (the field), for the log
};
// Decodes {"operations": [...]} one operation at a time, so that one the agent does not know
// does not hide the others. An error when the body is not that shape at all. Entries
// without a usable id (see IsSafeOperationId) are dropped.
Result<std::vector<DeliveredOperation>> DecodeDelivery(std::string_view body);

// [A-Za-z0-9_-]{1,128}: safe in a URL path.
bool IsSafeOperationId(std::string_view id);

}  // namespace storeplane::agent
