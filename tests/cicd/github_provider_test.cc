// The GitHub Actions adapter against a local stand-in for the REST API: the workflow
// dispatch it sends (path, headers, body), finding a run by the correlation id in its title,
// and the mapping of run status and conclusion.
#include <gtest/gtest.h>

#include "fake_http_server_support.h"
#include "provider_test_support.h"

namespace storeplane::cicd {
namespace {

using testing::FakeHttpServer;
using testing::kCorrelationId;
using testing::Reply;

constexpr const char* kToken = "ghp_0123456789SECRETtoken";
constexpr const char* kRunsTarget =
    "/api/v3/repos/acme/stores/actions/workflows/deploy.yml/runs?event=workflow_dispatch&per_page=50";

std::string WorkflowRun(long id, const std::string& title, const std::string& status, const std::string& conclusion) {
  return R"({"id": )" + std::to_string(id) + R"(, "name": "Deploy store", "display_title": ")" + title +
         R"(", "event": "workflow_dispatch", "status": ")" + status + R"(", "conclusion": )" +
         (conclusion.empty() ? std::string("null") : "\"" + conclusion + "\"") +
         R"(, "html_url": "https://github.com/acme/stores/actions/runs/)" + std::to_string(id) + R"("})";
}

class GithubProviderTest : public ::testing::Test {
 protected:
  std::unique_ptr<Provider> Make() {
    ProviderConfig config;
    config.name = "gh-prod";
    config.type = "github";
    config.base_url = server_.url() + "/api/v3";  // GitHub Enterprise Server's layout
    config.token_file = dir_.Write("gh.token", std::string("  ") + kToken + "\n");
    config.settings = {{"owner", "acme"}, {"repo", "stores"}, {"workflow", "deploy.yml"}, {"ref", "main"}};
    return testing::MustMake(config);
  }

  void ExpectApiHeaders(const testing::RecordedRequest& request) {
    EXPECT_EQ(request.Header("authorization"), std::string("Bearer ") + kToken);
    EXPECT_EQ(request.Header("accept"), "application/vnd.github+json");
    EXPECT_EQ(request.Header("x-github-api-version"), "2022-11-28");
    EXPECT_EQ(request.Header("user-agent"), "storeplane");
  }

  FakeHttpServer server_;
  testing::TempDir dir_;
};

TEST_F(GithubProviderTest, TriggerDispatchesTheWorkflowWithTheFactsAsInputs) {
  server_.On("POST", "/api/v3/repos/acme/stores/actions/workflows/deploy.yml/dispatches", Reply::Empty(204));
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  auto result = provider->Trigger(testing::SampleRequest("gh-prod"));
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_TRUE(result->external_id.empty()) << "a 204 names no run";

  const auto requests = server_.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].method, "POST");
  ExpectApiHeaders(requests[0]);
  EXPECT_EQ(requests[0].Header("content-type"), "application/json");
  EXPECT_EQ(testing::Json(requests[0].body), testing::Json(R"({
    "ref": "main",
    "inputs": {
      "correlation_id": "run_0123abcd", "store_id": "store-1", "environment": "production",
      "isolation_mode": "dedicated", "kind": "deploy", "release": "2026.12.04-1",
      "callback_url": "https://plane.example/hooks/cicd/gh-prod"
    }
  })"));
}

TEST_F(GithubProviderTest, TriggerTakesARunIdWhenTheAnswerNamesOne) {
  server_.On("POST", "/api/v3/repos/acme/stores/actions/workflows/deploy.yml/dispatches",
             Reply::Json(200, R"({"workflow_run_id": 555, "run_url": "x", "html_url": "https://gh/run/555"})"));
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  auto result = provider->Trigger(testing::SampleRequest());
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_EQ(result->external_id, "555");
  EXPECT_EQ(result->external_url, "https://gh/run/555");
}

TEST_F(GithubProviderTest, FindWithoutAnIdSearchesDispatchedRunsByTitle) {
  server_.On(
      "GET", kRunsTarget,
      Reply::Json(200, R"({"total_count": 3, "workflow_runs": [)" +
                           WorkflowRun(9003, "storeplane deploy store-2 run_0123abcdef", "in_progress", "") + "," +
                           WorkflowRun(9002, "storeplane deploy store-1 run_0123abcd", "completed", "success") + "," +
                           WorkflowRun(9001, "storeplane deploy store-1 run_0123abcd", "completed", "failure") + "]}"));
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  auto found = provider->Find(kCorrelationId, "");
  ASSERT_TRUE(found.ok()) << found.error().message;
  EXPECT_EQ(found->status, ProviderRunStatus::kSucceeded);
  EXPECT_EQ(found->external_id, "9002") << "the newest run whose title holds the id as a whole word";
  EXPECT_EQ(found->external_url, "https://github.com/acme/stores/actions/runs/9002");

  const auto requests = server_.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].method, "GET");
  ExpectApiHeaders(requests[0]);
}

TEST_F(GithubProviderTest, FindReportsNotFoundWhenNoTitleMatches) {
  server_.On("GET", kRunsTarget,
             Reply::Json(200, R"({"total_count": 1, "workflow_runs": [)" +
                                  WorkflowRun(9003, "storeplane deploy store-2 run_ffff", "queued", "") + "]}"));
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  auto found = provider->Find(kCorrelationId, "");
  ASSERT_TRUE(found.ok()) << found.error().message;
  EXPECT_EQ(found->status, ProviderRunStatus::kNotFound);
  EXPECT_TRUE(found->external_id.empty());
}

TEST_F(GithubProviderTest, FindByIdMapsEveryStatusAndConclusion) {
  const struct {
    const char* status;
    const char* conclusion;
    ProviderRunStatus expected;
  } cases[] = {
      {"queued", "", ProviderRunStatus::kQueued},
      {"waiting", "", ProviderRunStatus::kQueued},
      {"requested", "", ProviderRunStatus::kQueued},
      {"pending", "", ProviderRunStatus::kQueued},
      {"in_progress", "", ProviderRunStatus::kRunning},
      {"completed", "success", ProviderRunStatus::kSucceeded},
      {"completed", "cancelled", ProviderRunStatus::kCancelled},
      {"completed", "failure", ProviderRunStatus::kFailed},
      {"completed", "timed_out", ProviderRunStatus::kFailed},
      {"completed", "action_required", ProviderRunStatus::kFailed},
      {"completed", "startup_failure", ProviderRunStatus::kFailed},
      {"completed", "stale", ProviderRunStatus::kFailed},
      {"completed", "skipped", ProviderRunStatus::kFailed},
      {"completed", "neutral", ProviderRunStatus::kFailed},
      {"completed", "", ProviderRunStatus::kFailed},
  };
  for (const auto& c : cases) {
    FakeHttpServer server;
    server.On("GET", "/repos/acme/stores/actions/runs/9002",
              Reply::Json(200, WorkflowRun(9002, "storeplane deploy store-1 run_0123abcd", c.status, c.conclusion)));
    ProviderConfig config;
    config.name = "gh";
    config.type = "github";
    config.base_url = server.url();
    config.token_file = dir_.Write("token", kToken);
    config.settings = {{"owner", "acme"}, {"repo", "stores"}, {"workflow", "deploy.yml"}, {"ref", "main"}};
    auto provider = testing::MustMake(config);
    ASSERT_NE(provider, nullptr);
    auto found = provider->Find(kCorrelationId, "9002");
    ASSERT_TRUE(found.ok()) << found.error().message;
    EXPECT_EQ(found->status, c.expected) << c.status << "/" << c.conclusion;
    EXPECT_EQ(found->external_id, "9002");
    ASSERT_EQ(server.requests().size(), 1u);
    EXPECT_EQ(server.requests()[0].Header("authorization"), std::string("Bearer ") + kToken);
  }
}

TEST_F(GithubProviderTest, AGoneRunIdFallsBackToTheSearch) {
  server_.On("GET", "/api/v3/repos/acme/stores/actions/runs/1",
             Reply::Json(404, R"({"message": "Not Found", "documentation_url": "https://docs.github.com"})"));
  server_.On(
      "GET", kRunsTarget,
      Reply::Json(200, R"({"total_count": 1, "workflow_runs": [)" +
                           WorkflowRun(9002, "storeplane deploy store-1 run_0123abcd", "in_progress", "") + "]}"));
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  auto found = provider->Find(kCorrelationId, "1");
  ASSERT_TRUE(found.ok()) << found.error().message;
  EXPECT_EQ(found->status, ProviderRunStatus::kRunning);
  EXPECT_EQ(found->external_id, "9002");
  EXPECT_EQ(server_.requests().size(), 2u);
}

TEST_F(GithubProviderTest, ARateLimitedForbiddenIsUnavailableNotDenied) {
  Reply limited = Reply::Json(403, R"({"message": "API rate limit exceeded for installation ID 1."})");
  limited.headers.emplace_back("x-ratelimit-remaining", "0");
  server_.On("POST", "/api/v3/repos/acme/stores/actions/workflows/deploy.yml/dispatches", limited);
  server_.On("POST", "/api/v3/repos/acme/stores/actions/workflows/deploy.yml/dispatches",
             Reply::Json(403, R"({"message": "Resource not accessible by integration"})"));
  server_.On("POST", "/api/v3/repos/acme/stores/actions/workflows/deploy.yml/dispatches",
             Reply::Json(422, R"({"message": "Unexpected inputs provided: [\"kind\"]"})"));
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  auto first = provider->Trigger(testing::SampleRequest());
  ASSERT_FALSE(first.ok());
  EXPECT_EQ(first.error().code, ErrorCode::kUnavailable) << first.error().message;
  auto second = provider->Trigger(testing::SampleRequest());
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().code, ErrorCode::kPermissionDenied) << second.error().message;
  auto third = provider->Trigger(testing::SampleRequest());
  ASSERT_FALSE(third.ok());
  EXPECT_EQ(third.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(third.error().message.find("github provider \"gh-prod\""), std::string::npos) << third.error().message;
  EXPECT_NE(third.error().message.find("HTTP 422"), std::string::npos) << third.error().message;
  EXPECT_NE(third.error().message.find("Unexpected inputs provided"), std::string::npos) << third.error().message;
}

TEST_F(GithubProviderTest, AListThatIsNotTheApisShapeIsUnavailable) {
  server_.On("GET", kRunsTarget, Reply::Json(200, R"({"runs": []})"));
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  auto found = provider->Find(kCorrelationId, "");
  ASSERT_FALSE(found.ok());
  EXPECT_EQ(found.error().code, ErrorCode::kUnavailable);
}

}  // namespace
}  // namespace storeplane::cicd
