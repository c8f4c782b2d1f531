#include "agent/control_plane_client.h"

#include <curl/curl.h>

#include <boost/json.hpp>
#include <mutex>

namespace storeplane::agent {
namespace {

constexpr std::size_t kMaxReplyBytes = 4 * 1024 * 1024;

void CurlInitOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

size_t OnBody(char* data, size_t size, size_t count, void* user) {
  auto* out = static_cast<std::string*>(user);
  const size_t bytes = size * count;
  if (out->size() + bytes > kMaxReplyBytes) return 0;  // CURLE_WRITE_ERROR
  try {
    out->append(data, bytes);
  } catch (...) {
    return 0;
  }
  return bytes;
}

// Returning non-zero aborts the transfer (CURLE_ABORTED_BY_CALLBACK).
int OnProgress(void* user, curl_off_t /*dltotal*/, curl_off_t /*dlnow*/, curl_off_t /*ultotal*/, curl_off_t /*ulnow*/) {
  const auto* stop = static_cast<const StopSignal*>(user);
  return stop != nullptr && stop->requested() ? 1 : 0;
}

}  // namespace

ReplyClass Classify(const Result<ControlPlaneReply>& reply) {
  if (!reply.ok()) return ReplyClass::kRetry;
  const long status = reply->status;
  if (status >= 200 && status < 300) return ReplyClass::kSuccess;
  if (status == 401) return ReplyClass::kUnauthorized;
  if (status == 429 || status >= 500) return ReplyClass::kRetry;
  return ReplyClass::kRejected;
}

ControlPlaneClient::ControlPlaneClient(std::string base_url, std::string ca_file, const StopSignal* stop)
    : base_url_(std::move(base_url)), ca_file_(std::move(ca_file)), stop_(stop) {
  CurlInitOnce();
  curl_ = curl_easy_init();
}

ControlPlaneClient::~ControlPlaneClient() {
  if (curl_ != nullptr) curl_easy_cleanup(static_cast<CURL*>(curl_));
}

Result<ControlPlaneReply> ControlPlaneClient::Get(std::string_view path, long timeout_ms) {
  return Send("GET", path, nullptr, timeout_ms);
}

Result<ControlPlaneReply> ControlPlaneClient::Post(std::string_view path, const std::string& json_body,
                                                   long timeout_ms) {
  return Send("POST", path, &json_body, timeout_ms);
}

Result<ControlPlaneReply> ControlPlaneClient::Send(const char* method, std::string_view path, const std::string* body,
                                                   long timeout_ms) {
  const std::string url = base_url_ + std::string(path);
  auto unavailable = [&](std::string_view why) {
    const std::string_view route = path.substr(0, path.find('?'));
    return Error{ErrorCode::kUnavailable, std::string(method) + " " + std::string(route) + ": " + std::string(why), {}};
  };
  if (curl_ == nullptr) return unavailable("libcurl could not be initialised");
  if (stop_ != nullptr && stop_->requested()) return unavailable("stopping");
  CURL* curl = static_cast<CURL*>(curl_);
  curl_easy_reset(curl);  // keeps the connection cache, clears per-request options

  ControlPlaneReply reply;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, std::min<long>(timeout_ms, 10000L));
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &OnBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &reply.body);
  curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, &OnProgress);
  curl_easy_setopt(curl, CURLOPT_XFERINFODATA, const_cast<StopSignal*>(stop_));
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "shop-agent/0.1");
  if (!ca_file_.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO, ca_file_.c_str());
  if (body != nullptr) {
    curl_easy_setopt(curl, CURLOPT_POST, 1L);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body->data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body->size()));
  } else {
    curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
  }

  curl_slist* headers = nullptr;
  std::string authorization;
  auto add_header = [&headers](const char* line) {
    if (curl_slist* next = curl_slist_append(headers, line)) headers = next;
  };
  add_header("Accept: application/json");
  add_header("Expect:");
  if (body != nullptr) add_header("Content-Type: application/json");
  if (!credential_.empty()) {
    authorization = "Authorization: Bearer " + credential_;
    add_header(authorization.c_str());
  }
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);

  const CURLcode rc = curl_easy_perform(curl);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, nullptr);
  curl_slist_free_all(headers);
  // The header list held the credential: wipe the local copy.
  std::fill(authorization.begin(), authorization.end(), '\0');
  if (rc != CURLE_OK) return unavailable(curl_easy_strerror(rc));
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &reply.status);
  return reply;
}

bool IsSafeOperationId(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (const char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

Result<std::vector<DeliveredOperation>> DecodeDelivery(std::string_view body) {
  boost::system::error_code ec;
  const auto value = boost::json::parse(body, ec);
  if (ec || !value.is_object()) return Error{ErrorCode::kMalformedRequest, "the operations answer is not JSON", {}};
  const auto* operations = value.as_object().if_contains("operations");
  if (operations == nullptr || !operations->is_array()) {
    return Error::Invalid("the operations answer has no 'operations' list", "operations");
  }
  std::vector<DeliveredOperation> delivered;
  for (const auto& item : operations->as_array()) {
    if (!item.is_object()) continue;
    const auto* id = item.as_object().if_contains("id");
    if (id == nullptr || !id->is_string() || !IsSafeOperationId(id->as_string())) continue;
    DeliveredOperation entry;
    entry.id = std::string(id->as_string());
    boost::json::object one;
    one["operations"] = boost::json::array{item};
    auto decoded = protocol::DecodeOperations(boost::json::serialize(one));
    if (decoded.ok() && decoded->size() == 1) {
      entry.envelope = std::move(decoded->front());
    } else {
      entry.problem = decoded.ok() ? "operations" : decoded.error().field;
    }
    delivered.push_back(std::move(entry));
  }
  return delivered;
}

}  // namespace storeplane::agent
