// One error vocabulary for every adapter: transport failures, timeouts, 5xx and 429 are
// kUnavailable (retry later), 401/403 kPermissionDenied, other 4xx kInvalidArgument; every
// message names the provider and the status and never a credential, even one the server echoes.
#include <gtest/gtest.h>

#include <chrono>

#include "fake_http_server_support.h"
#include "provider_test_support.h"

namespace storeplane::cicd {
namespace {

using testing::FakeHttpServer;
using testing::kCorrelationId;
using testing::Reply;

constexpr const char* kCredential = "SeCrEt-credential-0123456789";

class ProviderErrorsTest : public ::testing::TestWithParam<std::string> {
 protected:
  ProviderConfig Config(const std::string& base_url) {
    ProviderConfig config;
    config.name = "ci-" + GetParam();
    config.type = GetParam();
    config.base_url = base_url;
    config.timeout_ms = 2000;
    const std::string& type = GetParam();
    if (type == "webhook") {
      config.secret_file = dir_.Write("secret", kCredential);
    } else if (type == "jenkins") {
      config.token_file = dir_.Write("token", std::string("deployer:") + kCredential);
      config.settings = {{"job", "deploy"}};
    } else {
      config.token_file = dir_.Write("token", kCredential);
    }
    if (type == "github")
      config.settings = {{"owner", "acme"}, {"repo", "stores"}, {"workflow", "d.yml"}, {"ref", "main"}};
    if (type == "gitlab") {
      config.settings = {{"project", "7"}, {"ref", "main"}, {"api_token_file", dir_.Write("api", kCredential)}};
    }
    if (type == "buildbot") config.settings = {{"scheduler", "force"}, {"builder", "deploy"}};
    return config;
  }

  void ExpectSafe(const Error& error) {
    EXPECT_EQ(error.message.find(kCredential), std::string::npos) << error.message;
    EXPECT_NE(error.message.find(GetParam() + " provider \"ci-" + GetParam() + "\""), std::string::npos)
        << error.message;
  }

  testing::TempDir dir_;
};

TEST_P(ProviderErrorsTest, HttpStatusesMapToTheErrorVocabulary) {
  const struct {
    int status;
    ErrorCode expected;
  } cases[] = {
      {500, ErrorCode::kUnavailable},     {502, ErrorCode::kUnavailable},      {503, ErrorCode::kUnavailable},
      {429, ErrorCode::kUnavailable},     {401, ErrorCode::kPermissionDenied}, {403, ErrorCode::kPermissionDenied},
      {404, ErrorCode::kInvalidArgument}, {400, ErrorCode::kInvalidArgument},  {422, ErrorCode::kInvalidArgument},
      {301, ErrorCode::kInvalidArgument},
  };
  for (const auto& c : cases) {
    FakeHttpServer server;
    // Every request is refused, with the credential echoed in a JSON message.
    server.Fallback([&c](const testing::RecordedRequest&) {
      return Reply::Json(c.status, std::string(R"({"message": "refused credential )") + kCredential + "\"}");
    });
    auto provider = testing::MustMake(Config(server.url()));
    ASSERT_NE(provider, nullptr);
    auto triggered = provider->Trigger(testing::SampleRequest());
    ASSERT_FALSE(triggered.ok()) << c.status;
    EXPECT_EQ(triggered.error().code, c.expected) << c.status << ": " << triggered.error().message;
    EXPECT_NE(triggered.error().message.find("HTTP " + std::to_string(c.status)), std::string::npos)
        << triggered.error().message;
    ExpectSafe(triggered.error());

    if (c.status == 404) continue;  // Find reads 404 as "no such run" where the API means that
    auto found = provider->Find(kCorrelationId, "");
    ASSERT_FALSE(found.ok()) << c.status;
    EXPECT_EQ(found.error().code, c.expected) << c.status << ": " << found.error().message;
    ExpectSafe(found.error());
  }
}

TEST_P(ProviderErrorsTest, ATimeoutIsUnavailable) {
  FakeHttpServer server;
  server.Fallback([](const testing::RecordedRequest&) { return Reply::Hang(); });
  auto config = Config(server.url());
  config.timeout_ms = 300;
  auto provider = testing::MustMake(config);
  ASSERT_NE(provider, nullptr);
  const auto start = std::chrono::steady_clock::now();
  auto triggered = provider->Trigger(testing::SampleRequest());
  const auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(triggered.ok());
  EXPECT_EQ(triggered.error().code, ErrorCode::kUnavailable) << triggered.error().message;
  EXPECT_LT(elapsed, std::chrono::seconds(3));
  ExpectSafe(triggered.error());
  auto found = provider->Find(kCorrelationId, "");
  ASSERT_FALSE(found.ok());
  EXPECT_EQ(found.error().code, ErrorCode::kUnavailable) << found.error().message;
}

TEST_P(ProviderErrorsTest, ARefusedConnectionIsUnavailable) {
  auto provider = testing::MustMake(Config("http://127.0.0.1:" + std::to_string(testing::UnusedPort())));
  ASSERT_NE(provider, nullptr);
  auto triggered = provider->Trigger(testing::SampleRequest());
  ASSERT_FALSE(triggered.ok());
  EXPECT_EQ(triggered.error().code, ErrorCode::kUnavailable) << triggered.error().message;
  EXPECT_NE(triggered.error().message.find("cannot reach 127.0.0.1:"), std::string::npos) << triggered.error().message;
  ExpectSafe(triggered.error());
  auto found = provider->Find(kCorrelationId, "");
  ASSERT_FALSE(found.ok());
  EXPECT_EQ(found.error().code, ErrorCode::kUnavailable) << found.error().message;
}

TEST_P(ProviderErrorsTest, AnHtmlErrorPageIsNeverQuoted) {
  FakeHttpServer server;
  server.Fallback([](const testing::RecordedRequest&) {
    Reply reply;
    reply.status = 500;
    reply.body = "<html><body>Stack trace: java.lang.NullPointerException at secret.Internal</body></html>";
    return reply;
  });
  auto provider = testing::MustMake(Config(server.url()));
  ASSERT_NE(provider, nullptr);
  auto triggered = provider->Trigger(testing::SampleRequest());
  ASSERT_FALSE(triggered.ok());
  EXPECT_EQ(triggered.error().message.find("NullPointerException"), std::string::npos) << triggered.error().message;
}

INSTANTIATE_TEST_SUITE_P(AllAdapters, ProviderErrorsTest,
                         ::testing::Values("webhook", "github", "gitlab", "jenkins", "buildbot"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace storeplane::cicd
