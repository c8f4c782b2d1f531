// The generic webhook adapter against a local receiver: the signed trigger it sends (body,
// headers, a signature core::VerifySignature accepts), the status requests, and the mapping
// of the contract's status values.
#include <gtest/gtest.h>

#include <boost/json/serialize.hpp>
#include <chrono>

#include "core/callback_signature.h"
#include "fake_http_server_support.h"
#include "provider_test_support.h"

namespace storeplane::cicd {
namespace {

using testing::FakeHttpServer;
using testing::kCorrelationId;
using testing::Reply;

constexpr const char* kSecret = "whsec-0123456789abcdef";

std::int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Status Verify(const testing::RecordedRequest& request, const std::string& secret) {
  core::SignatureCheck check;
  check.secrets = {secret};
  const std::string timestamp = request.Header("x-storeplane-timestamp");
  const std::string signature = request.Header("x-storeplane-signature");
  check.timestamp_header = timestamp;
  check.signature_header = signature;
  check.body = request.body;
  check.now_ms = NowMs();
  return core::VerifySignature(check);
}

class WebhookProviderTest : public ::testing::Test {
 protected:
  std::unique_ptr<Provider> Make(std::map<std::string, std::string> settings = {}) {
    ProviderConfig config;
    config.name = "hook";
    config.type = "webhook";
    config.base_url = server_.url() + "/storeplane/";
    config.secret_file = dir_.Write("secret", std::string(kSecret) + "\n");
    config.settings = std::move(settings);
    return testing::MustMake(config);
  }

  FakeHttpServer server_;
  testing::TempDir dir_;
};

TEST_F(WebhookProviderTest, TriggerPostsTheSignedFactsAndNothingElse) {
  server_.On("POST", "/storeplane",
             Reply::Json(202, R"({"external_id": "job-77", "external_url": "https://ci.example/jobs/77"})"));
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  EXPECT_EQ(provider->type(), "webhook");
  EXPECT_EQ(provider->name(), "hook");

  auto result = provider->Trigger(testing::SampleRequest("hook"));
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_EQ(result->external_id, "job-77");
  EXPECT_EQ(result->external_url, "https://ci.example/jobs/77");

  const auto requests = server_.requests();
  ASSERT_EQ(requests.size(), 1u);
  const auto& sent = requests[0];
  EXPECT_EQ(sent.method, "POST");
  EXPECT_EQ(sent.target, "/storeplane");
  EXPECT_EQ(sent.Header("content-type"), "application/json");
  EXPECT_EQ(sent.Header("x-storeplane-delivery"), kCorrelationId);
  EXPECT_EQ(sent.Header("user-agent"), "storeplane");
  EXPECT_FALSE(sent.HasHeader("authorization"));
  // Exactly the seven facts, in the documented order.
  EXPECT_EQ(sent.body, R"({"correlation_id":"run_0123abcd","store_id":"store-1","environment":"production",)"
                       R"("isolation_mode":"dedicated","kind":"deploy","release":"2026.12.04-1",)"
                       R"("callback_url":"https://plane.example/hooks/cicd/hook"})");

  const std::int64_t timestamp = std::stoll(sent.Header("x-storeplane-timestamp"));
  EXPECT_LE(std::abs(timestamp - NowMs() / 1000), 5);
  EXPECT_EQ(sent.Header("x-storeplane-signature"), core::SignPayload(kSecret, timestamp, sent.body));
  const auto verified = Verify(sent, kSecret);
  EXPECT_TRUE(verified.ok()) << verified.error().message;
  EXPECT_FALSE(Verify(sent, "another-secret").ok());
}

TEST_F(WebhookProviderTest, AnyTwoHundredIsAcceptedWhateverTheBody) {
  Reply reply;
  reply.status = 200;
  reply.body = "<html>ok</html>";
  server_.On("POST", "/storeplane", reply);
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  auto result = provider->Trigger(testing::SampleRequest());
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_TRUE(result->external_id.empty());
  EXPECT_TRUE(result->external_url.empty());
}

TEST_F(WebhookProviderTest, FindMapsEveryStatusOfTheContract) {
  const struct {
    const char* status;
    ProviderRunStatus expected;
  } cases[] = {
      {"queued", ProviderRunStatus::kQueued},       {"running", ProviderRunStatus::kRunning},
      {"succeeded", ProviderRunStatus::kSucceeded}, {"failed", ProviderRunStatus::kFailed},
      {"cancelled", ProviderRunStatus::kCancelled},
  };
  for (const auto& c : cases) {
    FakeHttpServer server;
    server.On("GET", "/storeplane/runs/run_0123abcd",
              Reply::Json(200, std::string(R"({"status": ")") + c.status +
                                   R"(", "external_id": 991, "external_url": "https://ci.example/991"})"));
    ProviderConfig config;
    config.name = "hook";
    config.type = "webhook";
    config.base_url = server.url() + "/storeplane";
    config.secret_env = "STOREPLANE_TEST_WEBHOOK_SECRET";
    ::setenv("STOREPLANE_TEST_WEBHOOK_SECRET", kSecret, 1);
    auto provider = testing::MustMake(config);
    ASSERT_NE(provider, nullptr);

    auto found = provider->Find(kCorrelationId, "");
    ASSERT_TRUE(found.ok()) << c.status << ": " << found.error().message;
    EXPECT_EQ(found->status, c.expected) << c.status;
    EXPECT_EQ(found->external_id, "991");
    EXPECT_EQ(found->external_url, "https://ci.example/991");

    const auto requests = server.requests();
    ASSERT_EQ(requests.size(), 1u);
    EXPECT_EQ(requests[0].method, "GET");
    EXPECT_TRUE(requests[0].body.empty());
    EXPECT_TRUE(Verify(requests[0], kSecret).ok()) << "the status request is signed over an empty body";
    EXPECT_EQ(requests[0].Header("x-storeplane-delivery").rfind("status.run_0123abcd.", 0), 0u);
  }
}

TEST_F(WebhookProviderTest, FindUsesTheConfiguredStatusUrlAndKeepsAKnownId) {
  server_.On("GET", "/api/status/run_0123abcd", Reply::Json(200, R"({"status": "running"})"));
  auto provider = Make({{"status_url", server_.url() + "/api/status/"}});
  ASSERT_NE(provider, nullptr);
  auto found = provider->Find(kCorrelationId, "job-77");
  ASSERT_TRUE(found.ok()) << found.error().message;
  EXPECT_EQ(found->status, ProviderRunStatus::kRunning);
  EXPECT_EQ(found->external_id, "job-77");
}

TEST_F(WebhookProviderTest, NotFoundIsAStatusAndAnUnknownStatusIsAnError) {
  server_.On("GET", "/storeplane/runs/run_0123abcd", Reply::Json(404, R"({"error": "no such run"})"));
  server_.On("GET", "/storeplane/runs/run_0123abcd", Reply::Json(200, R"({"status": "exploded"})"));
  server_.On("GET", "/storeplane/runs/run_0123abcd", Reply::Json(200, R"(["running"])"));
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  auto missing = provider->Find(kCorrelationId, "");
  ASSERT_TRUE(missing.ok()) << missing.error().message;
  EXPECT_EQ(missing->status, ProviderRunStatus::kNotFound);

  auto unknown = provider->Find(kCorrelationId, "");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code, ErrorCode::kUnavailable);
  auto malformed = provider->Find(kCorrelationId, "");
  ASSERT_FALSE(malformed.ok());
  EXPECT_EQ(malformed.error().code, ErrorCode::kUnavailable);
}

TEST_F(WebhookProviderTest, AMalformedCorrelationIdNeverReachesAUrl) {
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  auto found = provider->Find("../admin", "");
  ASSERT_FALSE(found.ok());
  EXPECT_EQ(found.error().code, ErrorCode::kInvalidArgument);
  auto request = testing::SampleRequest();
  request.correlation_id = "run x";
  EXPECT_FALSE(provider->Trigger(request).ok());
  EXPECT_TRUE(server_.requests().empty());
}

}  // namespace
}  // namespace storeplane::cicd
