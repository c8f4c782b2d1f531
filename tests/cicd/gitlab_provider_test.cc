// The GitLab CI adapter against a local stand-in for the REST API: the pipeline trigger form
// it sends (decoded and compared field by field), reading a pipeline with the API token,
// finding one by its STOREPLANE_CORRELATION_ID variable, and the status mapping.
#include <gtest/gtest.h>

#include "fake_http_server_support.h"
#include "provider_test_support.h"

namespace storeplane::cicd {
namespace {

using testing::FakeHttpServer;
using testing::kCorrelationId;
using testing::Reply;

constexpr const char* kTriggerToken = "glptt-TRIGGERsecret0123";
constexpr const char* kApiToken = "glpat-APIsecret0123456";
constexpr const char* kProject = "/api/v4/projects/platform%2Fstores";

std::string Pipeline(long id, const std::string& status) {
  return R"({"id": )" + std::to_string(id) + R"(, "iid": 12, "project_id": 7, "sha": "a91957a8", "ref": "main", )" +
         R"("status": ")" + status + R"(", "source": "trigger", "created_at": "2026-12-04T10:00:00.000Z", )" +
         R"("updated_at": "2026-12-04T10:00:00.000Z", "web_url": "https://gitlab.example/platform/stores/-/pipelines/)" +
         std::to_string(id) + R"("})";
}

std::string Variables(const std::string& correlation_id) {
  return R"([{"key": "STOREPLANE_STORE_ID", "variable_type": "env_var", "value": "store-1"},)"
         R"( {"key": "STOREPLANE_CORRELATION_ID", "variable_type": "env_var", "value": ")" +
         correlation_id + R"("}])";
}

class GitlabProviderTest : public ::testing::Test {
 protected:
  std::unique_ptr<Provider> Make(bool with_api_token = true, const std::string& project = "platform/stores") {
    ProviderConfig config;
    config.name = "gl";
    config.type = "gitlab";
    config.base_url = server_.url();
    config.token_file = dir_.Write("trigger.token", std::string(kTriggerToken) + "\n");
    config.settings = {{"project", project}, {"ref", "main"}};
    if (with_api_token) config.settings["api_token_file"] = dir_.Write("api.token", kApiToken);
    return testing::MustMake(config);
  }

  FakeHttpServer server_;
  testing::TempDir dir_;
};

TEST_F(GitlabProviderTest, TriggerPostsTheTriggerTokenRefAndSevenVariables) {
  server_.On("POST", std::string(kProject) + "/trigger/pipeline", Reply::Json(201, Pipeline(4242, "created")));
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  auto result = provider->Trigger(testing::SampleRequest("gl"));
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_EQ(result->external_id, "4242");
  EXPECT_EQ(result->external_url, "https://gitlab.example/platform/stores/-/pipelines/4242");

  const auto requests = server_.requests();
  ASSERT_EQ(requests.size(), 1u);
  const auto& sent = requests[0];
  EXPECT_EQ(sent.method, "POST");
  EXPECT_EQ(sent.target, std::string(kProject) + "/trigger/pipeline") << "the token never goes in the URL";
  EXPECT_EQ(sent.Header("content-type"), "application/x-www-form-urlencoded");
  EXPECT_FALSE(sent.HasHeader("private-token"));
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"token", kTriggerToken},
      {"ref", "main"},
      {"variables[STOREPLANE_CORRELATION_ID]", "run_0123abcd"},
      {"variables[STOREPLANE_STORE_ID]", "store-1"},
      {"variables[STOREPLANE_ENVIRONMENT]", "production"},
      {"variables[STOREPLANE_ISOLATION_MODE]", "dedicated"},
      {"variables[STOREPLANE_KIND]", "deploy"},
      {"variables[STOREPLANE_RELEASE]", "2026.12.04-1"},
      {"variables[STOREPLANE_CALLBACK_URL]", "https://plane.example/hooks/cicd/gl"},
  };
  EXPECT_EQ(testing::ParseForm(sent.body), expected);
}

TEST_F(GitlabProviderTest, ANumericProjectIdIsUsedAsIs) {
  server_.On("POST", "/api/v4/projects/7/trigger/pipeline", Reply::Json(201, Pipeline(1, "pending")));
  auto provider = Make(true, "7");
  ASSERT_NE(provider, nullptr);
  auto result = provider->Trigger(testing::SampleRequest());
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_EQ(result->external_id, "1");
}

TEST_F(GitlabProviderTest, FindByIdMapsEveryPipelineStatus) {
  const struct {
    const char* status;
    ProviderRunStatus expected;
  } cases[] = {
      {"created", ProviderRunStatus::kQueued},    {"waiting_for_resource", ProviderRunStatus::kQueued},
      {"preparing", ProviderRunStatus::kQueued},  {"pending", ProviderRunStatus::kQueued},
      {"scheduled", ProviderRunStatus::kQueued},  {"manual", ProviderRunStatus::kQueued},
      {"running", ProviderRunStatus::kRunning},   {"canceling", ProviderRunStatus::kRunning},
      {"success", ProviderRunStatus::kSucceeded}, {"canceled", ProviderRunStatus::kCancelled},
      {"failed", ProviderRunStatus::kFailed},     {"skipped", ProviderRunStatus::kFailed},
  };
  for (const auto& c : cases) {
    FakeHttpServer server;
    server.On("GET", std::string(kProject) + "/pipelines/4242", Reply::Json(200, Pipeline(4242, c.status)));
    ProviderConfig config;
    config.name = "gl";
    config.type = "gitlab";
    config.base_url = server.url();
    config.token_file = dir_.Write("trigger.token", kTriggerToken);
    config.settings = {
        {"project", "platform/stores"}, {"ref", "main"}, {"api_token_file", dir_.Write("api", kApiToken)}};
    auto provider = testing::MustMake(config);
    ASSERT_NE(provider, nullptr);
    auto found = provider->Find(kCorrelationId, "4242");
    ASSERT_TRUE(found.ok()) << found.error().message;
    EXPECT_EQ(found->status, c.expected) << c.status;
    EXPECT_EQ(found->external_id, "4242");
    const auto requests = server.requests();
    ASSERT_EQ(requests.size(), 1u);
    EXPECT_EQ(requests[0].method, "GET");
    EXPECT_EQ(requests[0].Header("private-token"), kApiToken);
  }
}

TEST_F(GitlabProviderTest, FindWithoutAnIdChecksTheVariablesOfRecentTriggeredPipelines) {
  const std::string list = std::string(kProject) + "/pipelines?per_page=20&order_by=id&sort=desc&source=trigger";
  server_.On("GET", list, Reply::Json(200, "[" + Pipeline(4300, "running") + "," + Pipeline(4242, "success") + "]"));
  server_.On("GET", std::string(kProject) + "/pipelines/4300/variables", Reply::Json(200, Variables("run_ffff")));
  server_.On("GET", std::string(kProject) + "/pipelines/4242/variables", Reply::Json(200, Variables(kCorrelationId)));
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  auto found = provider->Find(kCorrelationId, "");
  ASSERT_TRUE(found.ok()) << found.error().message;
  EXPECT_EQ(found->status, ProviderRunStatus::kSucceeded);
  EXPECT_EQ(found->external_id, "4242");
  EXPECT_EQ(found->external_url, "https://gitlab.example/platform/stores/-/pipelines/4242");

  const auto requests = server_.requests();
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[0].target, list);
  EXPECT_EQ(requests[1].target, std::string(kProject) + "/pipelines/4300/variables");
  EXPECT_EQ(requests[2].target, std::string(kProject) + "/pipelines/4242/variables");
  for (const auto& request : requests) EXPECT_EQ(request.Header("private-token"), kApiToken);
}

TEST_F(GitlabProviderTest, AGonePipelineFallsBackToTheSearchAndMayFindNothing) {
  server_.On("GET", std::string(kProject) + "/pipelines/99", Reply::Json(404, R"({"message": "404 Not found"})"));
  server_.On("GET", std::string(kProject) + "/pipelines?per_page=20&order_by=id&sort=desc&source=trigger",
             Reply::Json(200, "[" + Pipeline(4300, "running") + "]"));
  server_.On("GET", std::string(kProject) + "/pipelines/4300/variables", Reply::Json(200, Variables("run_ffff")));
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  auto found = provider->Find(kCorrelationId, "99");
  ASSERT_TRUE(found.ok()) << found.error().message;
  EXPECT_EQ(found->status, ProviderRunStatus::kNotFound);
  EXPECT_TRUE(found->external_id.empty());
}

TEST_F(GitlabProviderTest, WithoutAnApiTokenReadsAreAnonymous) {
  server_.On("GET", std::string(kProject) + "/pipelines/4242", Reply::Json(200, Pipeline(4242, "running")));
  auto provider = Make(false);
  ASSERT_NE(provider, nullptr);
  auto found = provider->Find(kCorrelationId, "4242");
  ASSERT_TRUE(found.ok()) << found.error().message;
  EXPECT_EQ(found->status, ProviderRunStatus::kRunning);
  ASSERT_EQ(server_.requests().size(), 1u);
  EXPECT_FALSE(server_.requests()[0].HasHeader("private-token"));
}

TEST_F(GitlabProviderTest, ARefusedTriggerNamesGitlabsMessageButNotTheToken) {
  server_.On("POST", std::string(kProject) + "/trigger/pipeline",
             Reply::Json(400, R"({"message": {"base": ["Reference not found"]}})"));
  server_.On("POST", std::string(kProject) + "/trigger/pipeline",
             Reply::Json(404, std::string(R"({"message": "404 Not Found: token )") + kTriggerToken + "\"}"));
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  auto bad_ref = provider->Trigger(testing::SampleRequest());
  ASSERT_FALSE(bad_ref.ok());
  EXPECT_EQ(bad_ref.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(bad_ref.error().message.find("Reference not found"), std::string::npos) << bad_ref.error().message;
  auto echoed = provider->Trigger(testing::SampleRequest());
  ASSERT_FALSE(echoed.ok());
  EXPECT_EQ(echoed.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(echoed.error().message.find(kTriggerToken), std::string::npos) << echoed.error().message;
  EXPECT_NE(echoed.error().message.find("[redacted]"), std::string::npos) << echoed.error().message;
}

}  // namespace
}  // namespace storeplane::cicd
