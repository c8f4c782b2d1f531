// The Jenkins adapter against a local stand-in for Jenkins' remote access API: the
// buildWithParameters form (decoded and compared field by field) with basic auth, following
// a queue item to its build, the search by STOREPLANE_CORRELATION_ID, and the result mapping.
#include <gtest/gtest.h>

#include "fake_http_server_support.h"
#include "provider_test_support.h"

namespace storeplane::cicd {
namespace {

using testing::FakeHttpServer;
using testing::kCorrelationId;
using testing::Reply;

constexpr const char* kToken = "deployer:11d0APItokenSECRET";
// base64("deployer:11d0APItokenSECRET")
constexpr const char* kBasic = "Basic ZGVwbG95ZXI6MTFkMEFQSXRva2VuU0VDUkVU";
constexpr const char* kJob = "/jenkins/job/stores/job/store%20deploy";
constexpr const char* kQueueSearch =
    "/jenkins/queue/api/json?tree=items%5Bid,cancelled,actions%5Bparameters%5Bname,value%5D%5D%5D";
constexpr const char* kBuildsSearch =
    "/api/json?tree=builds%5Bnumber,result,building,url,actions%5Bparameters%5Bname,value%5D%5D%5D%7B0,50%7D";

std::string Parameters(const std::string& correlation_id) {
  return R"({"_class": "hudson.model.ParametersAction", "parameters": [)"
         R"({"_class": "hudson.model.StringParameterValue", "name": "STOREPLANE_STORE_ID", "value": "store-1"},)"
         R"({"_class": "hudson.model.StringParameterValue", "name": "STOREPLANE_CORRELATION_ID", "value": ")" +
         correlation_id + R"("}]})";
}

std::string Build(long number, const std::string& result, bool building, const std::string& correlation_id) {
  return R"({"_class": "hudson.model.FreeStyleBuild", "actions": [{}, )" + Parameters(correlation_id) +
         R"(, {"_class": "hudson.model.CauseAction"}], "building": )" + (building ? "true" : "false") +
         R"(, "number": )" + std::to_string(number) + R"(, "result": )" +
         (result.empty() ? std::string("null") : "\"" + result + "\"") +
         R"(, "url": "https://jenkins.example/job/stores/job/store%20deploy/)" + std::to_string(number) + R"(/"})";
}

class JenkinsProviderTest : public ::testing::Test {
 protected:
  std::unique_ptr<Provider> Make() {
    ProviderConfig config;
    config.name = "jenkins";
    config.type = "jenkins";
    config.base_url = server_.url() + "/jenkins";
    config.token_file = dir_.Write("jenkins.token", std::string(kToken) + "\n");
    config.settings = {{"job", "stores/store deploy"}};
    return testing::MustMake(config);
  }

  FakeHttpServer server_;
  testing::TempDir dir_;
};

TEST_F(JenkinsProviderTest, TriggerPostsTheParametersAndLearnsTheQueueItem) {
  Reply created = Reply::Empty(201);
  created.headers.emplace_back("Location", server_.url() + "/jenkins/queue/item/17/");
  server_.On("POST", std::string(kJob) + "/buildWithParameters", created);
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  auto result = provider->Trigger(testing::SampleRequest("jenkins"));
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_EQ(result->external_id, "queue:17");
  EXPECT_EQ(result->external_url, server_.url() + kJob + "/");

  const auto requests = server_.requests();
  ASSERT_EQ(requests.size(), 1u);
  const auto& sent = requests[0];
  EXPECT_EQ(sent.method, "POST");
  EXPECT_EQ(sent.target, std::string(kJob) + "/buildWithParameters");
  EXPECT_EQ(sent.Header("authorization"), kBasic);
  EXPECT_EQ(sent.Header("content-type"), "application/x-www-form-urlencoded");
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"STOREPLANE_CORRELATION_ID", "run_0123abcd"},
      {"STOREPLANE_STORE_ID", "store-1"},
      {"STOREPLANE_ENVIRONMENT", "production"},
      {"STOREPLANE_ISOLATION_MODE", "dedicated"},
      {"STOREPLANE_KIND", "deploy"},
      {"STOREPLANE_RELEASE", "2026.12.04-1"},
      {"STOREPLANE_CALLBACK_URL", "https://plane.example/hooks/cicd/jenkins"},
  };
  EXPECT_EQ(testing::ParseForm(sent.body), expected);
}

TEST_F(JenkinsProviderTest, AWaitingQueueItemIsQueuedAndACancelledOneCancelled) {
  server_.On("GET", "/jenkins/queue/item/17/api/json",
             Reply::Json(200, R"({"_class": "hudson.model.Queue$WaitingItem", "id": 17, "blocked": false,)"
                              R"( "buildable": false, "why": "In the quiet period.", "cancelled": false})"));
  server_.On("GET", "/jenkins/queue/item/17/api/json",
             Reply::Json(200, R"({"_class": "hudson.model.Queue$LeftItem", "id": 17, "cancelled": true,)"
                              R"( "executable": null})"));
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  auto waiting = provider->Find(kCorrelationId, "queue:17");
  ASSERT_TRUE(waiting.ok()) << waiting.error().message;
  EXPECT_EQ(waiting->status, ProviderRunStatus::kQueued);
  EXPECT_EQ(waiting->external_id, "queue:17");
  auto cancelled = provider->Find(kCorrelationId, "queue:17");
  ASSERT_TRUE(cancelled.ok()) << cancelled.error().message;
  EXPECT_EQ(cancelled->status, ProviderRunStatus::kCancelled);
  for (const auto& request : server_.requests()) EXPECT_EQ(request.Header("authorization"), kBasic);
}

TEST_F(JenkinsProviderTest, AQueueItemThatStartedLeadsToItsBuildAndEveryResultMaps) {
  const struct {
    const char* result;
    bool building;
    ProviderRunStatus expected;
  } cases[] = {
      {"", true, ProviderRunStatus::kRunning},           {"", false, ProviderRunStatus::kRunning},
      {"SUCCESS", false, ProviderRunStatus::kSucceeded}, {"ABORTED", false, ProviderRunStatus::kCancelled},
      {"FAILURE", false, ProviderRunStatus::kFailed},    {"UNSTABLE", false, ProviderRunStatus::kFailed},
      {"NOT_BUILT", false, ProviderRunStatus::kFailed},
  };
  for (const auto& c : cases) {
    FakeHttpServer server;
    server.On("GET", "/queue/item/17/api/json",
              Reply::Json(200, R"({"_class": "hudson.model.Queue$LeftItem", "id": 17, "cancelled": false,)"
                               R"( "executable": {"_class": "hudson.model.FreeStyleBuild", "number": 42,)"
                               R"( "url": "https://jenkins.example/job/deploy/42/"}})"));
    server.On("GET", "/job/deploy/42/api/json", Reply::Json(200, Build(42, c.result, c.building, kCorrelationId)));
    ProviderConfig config;
    config.name = "jenkins";
    config.type = "jenkins";
    config.base_url = server.url();
    config.token_file = dir_.Write("token", kToken);
    config.settings = {{"job", "deploy"}};
    auto provider = testing::MustMake(config);
    ASSERT_NE(provider, nullptr);
    auto found = provider->Find(kCorrelationId, "queue:17");
    ASSERT_TRUE(found.ok()) << found.error().message;
    EXPECT_EQ(found->status, c.expected) << c.result << " building=" << c.building;
    EXPECT_EQ(found->external_id, "build:42");
    EXPECT_EQ(found->external_url, "https://jenkins.example/job/stores/job/store%20deploy/42/");
    EXPECT_EQ(server.requests().size(), 2u);
  }
}

TEST_F(JenkinsProviderTest, AForgottenQueueItemIsFoundAmongTheBuildsByItsParameter) {
  server_.On("GET", "/jenkins/queue/item/17/api/json", Reply::Empty(404));
  server_.On("GET", kQueueSearch,
             Reply::Json(200, R"({"_class": "hudson.model.Queue", "items": [{"_class": "x", "id": 20, "actions": [)" +
                                  Parameters("run_ffff") + "]}]}"));
  server_.On("GET", std::string(kJob) + kBuildsSearch,
             Reply::Json(200, R"({"_class": "hudson.model.FreeStyleProject", "builds": [)" +
                                  Build(43, "", true, "run_0123abcdef") + "," +
                                  Build(42, "SUCCESS", false, kCorrelationId) + "]}"));
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  auto found = provider->Find(kCorrelationId, "queue:17");
  ASSERT_TRUE(found.ok()) << found.error().message;
  EXPECT_EQ(found->status, ProviderRunStatus::kSucceeded);
  EXPECT_EQ(found->external_id, "build:42");

  const auto requests = server_.requests();
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[1].target, kQueueSearch);
  EXPECT_EQ(requests[2].target, std::string(kJob) + kBuildsSearch);
}

TEST_F(JenkinsProviderTest, FindWithoutAnIdFindsAnItemStillInTheQueue) {
  server_.On("GET", kQueueSearch,
             Reply::Json(200, R"({"_class": "hudson.model.Queue", "items": [{"_class": "x", "id": 21, "actions": [)" +
                                  Parameters(kCorrelationId) + R"(], "cancelled": false}]})"));
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  auto found = provider->Find(kCorrelationId, "");
  ASSERT_TRUE(found.ok()) << found.error().message;
  EXPECT_EQ(found->status, ProviderRunStatus::kQueued);
  EXPECT_EQ(found->external_id, "queue:21");
}

TEST_F(JenkinsProviderTest, FindWithoutAnyTraceIsNotFound) {
  server_.On("GET", kQueueSearch, Reply::Json(200, R"({"items": []})"));
  server_.On("GET", std::string(kJob) + kBuildsSearch, Reply::Json(200, R"({"builds": []})"));
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  auto found = provider->Find(kCorrelationId, "");
  ASSERT_TRUE(found.ok()) << found.error().message;
  EXPECT_EQ(found->status, ProviderRunStatus::kNotFound);
}

TEST_F(JenkinsProviderTest, AKnownBuildIsReadDirectly) {
  server_.On("GET", std::string(kJob) + "/42/api/json", Reply::Json(200, Build(42, "FAILURE", false, kCorrelationId)));
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  auto found = provider->Find(kCorrelationId, "build:42");
  ASSERT_TRUE(found.ok()) << found.error().message;
  EXPECT_EQ(found->status, ProviderRunStatus::kFailed);
  EXPECT_EQ(server_.requests().size(), 1u);
  auto odd = provider->Find(kCorrelationId, "job:42");
  ASSERT_FALSE(odd.ok());
  EXPECT_EQ(odd.error().code, ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace storeplane::cicd
