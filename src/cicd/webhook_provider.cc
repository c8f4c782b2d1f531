#include "cicd/webhook_provider.h"

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <boost/url/parse.hpp>
#include <chrono>
#include <utility>

#include "core/callback_signature.h"

namespace storeplane::cicd {
namespace {

std::int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

class WebhookProvider final : public HttpAdapter {
 public:
  WebhookProvider(AdapterBasics basics, std::string secret, std::string status_url)
      : HttpAdapter(std::move(basics), {secret}), secret_(std::move(secret)), status_url_(std::move(status_url)) {}

  Result<TriggerResult> Trigger(const TriggerRequest& request) override {
    if (!IsValidCorrelationId(request.correlation_id)) return Invalid("the correlation id is malformed");
    boost::json::object body;
    body["correlation_id"] = request.correlation_id;
    body["store_id"] = request.store_id;
    body["environment"] = request.environment;
    body["isolation_mode"] = request.isolation_mode;
    body["kind"] = request.kind;
    body["release"] = request.release;
    body["callback_url"] = request.callback_url;

    HttpCall call;
    call.method = "POST";
    call.url = base_url();
    call.body = boost::json::serialize(body);
    call.headers = {{"Content-Type", "application/json"}, {"Accept", "application/json"}, {"User-Agent", "storeplane"}};
    Sign(call, request.correlation_id);

    constexpr std::string_view kWhat = "sending the trigger";
    auto answer = Send(kWhat, call);
    if (!answer.ok()) return answer.error();
    return Accepted(kWhat, *answer, "external_id", "external_url");
  }

  Result<RunStatus> Find(const std::string& correlation_id, const std::string& external_id) override {
    if (!IsValidCorrelationId(correlation_id)) return Invalid("the correlation id is malformed");
    HttpCall call;
    call.url = status_url_ + "/" + correlation_id;
    call.headers = {{"Accept", "application/json"}, {"User-Agent", "storeplane"}};
    Sign(call, "status." + correlation_id + "." + std::to_string(NowMs()));

    constexpr std::string_view kWhat = "asking for the run's status";
    auto answer = Send(kWhat, call);
    if (!answer.ok()) return answer.error();
    RunStatus found;
    found.external_id = external_id;
    if (answer->status == 404) return found;
    if (answer->status != 200) return Refused(kWhat, *answer);
    auto json = ParseJson(answer->body);
    if (!json || !json->is_object()) return Malformed(kWhat);
    const std::string status = Text(Field(&*json, "status"));
    if (status == "queued") {
      found.status = ProviderRunStatus::kQueued;
    } else if (status == "running") {
      found.status = ProviderRunStatus::kRunning;
    } else if (status == "succeeded") {
      found.status = ProviderRunStatus::kSucceeded;
    } else if (status == "failed") {
      found.status = ProviderRunStatus::kFailed;
    } else if (status == "cancelled") {
      found.status = ProviderRunStatus::kCancelled;
    } else {
      return Malformed(kWhat);
    }
    if (auto id = Text(Field(&*json, "external_id")); !id.empty()) found.external_id = std::move(id);
    found.external_url = Text(Field(&*json, "external_url"));
    return found;
  }

 private:
  // Timestamp and signature over the call's body, and the delivery id.
  void Sign(HttpCall& call, const std::string& delivery) const {
    const std::int64_t timestamp_s = NowMs() / 1000;
    call.headers.emplace_back(std::string(core::kTimestampHeader), std::to_string(timestamp_s));
    call.headers.emplace_back(std::string(core::kSignatureHeader), core::SignPayload(secret_, timestamp_s, call.body));
    call.headers.emplace_back(std::string(core::kDeliveryHeader), delivery);
  }

  std::string secret_;
  std::string status_url_;
};

}  // namespace

Result<std::unique_ptr<Provider>> MakeWebhookProvider(AdapterBasics basics, const ProviderConfig& config) {
  SP_RETURN_IF_ERROR(CheckSettings(config.settings, "webhook", {}, {"status_url"}));
  if (!config.token_file.empty() || !config.token_env.empty()) {
    return Error::Invalid("webhook providers sign with secret_file or secret_env and take no token", "token_file");
  }
  auto secret = ReadCredential("secret", config.secret_file, config.secret_env);
  if (!secret.ok()) return secret.error();
  if (secret->empty()) return Error::Invalid("webhook providers need secret_file or secret_env", "secret_file");

  std::string status_url = Setting(config.settings, "status_url");
  if (status_url.empty()) {
    status_url = basics.base_url + "/runs";
  } else {
    auto parsed = boost::urls::parse_absolute_uri(status_url);
    if (parsed.has_error() || (parsed->scheme() != "http" && parsed->scheme() != "https") ||
        parsed->encoded_host().empty() || parsed->has_userinfo() || parsed->has_query() || parsed->has_fragment()) {
      return Error::Invalid("settings.status_url must be an http(s) URL without credentials, query or fragment",
                            "settings.status_url");
    }
    while (!status_url.empty() && status_url.back() == '/') status_url.pop_back();
  }
  return std::unique_ptr<Provider>(
      std::make_unique<WebhookProvider>(std::move(basics), std::move(*secret), std::move(status_url)));
}

}  // namespace storeplane::cicd
