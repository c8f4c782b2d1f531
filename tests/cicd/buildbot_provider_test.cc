// The Buildbot adapter against a local stand-in for the REST API v2 (answers shaped as
// Buildbot 3.7's): the builder lookup (cached), the force scheduler's JSON-RPC "force" call,
// following buildset -> build request -> build, the search by reason, and results codes.
#include <gtest/gtest.h>

#include "fake_http_server_support.h"
#include "provider_test_support.h"

namespace storeplane::cicd {
namespace {

using testing::FakeHttpServer;
using testing::kCorrelationId;
using testing::Reply;

constexpr const char* kBuilders = "/api/v2/builders?name=store-deploy";
constexpr const char* kForce = "/api/v2/forceschedulers/force-store";

// GET /api/v2/forceschedulers/force-store as Buildbot 3.7 answers it: the fields nest.
std::string SchedulerAnswer(const std::string& builder = "store-deploy", const std::string& skip = "") {
  std::string facts;
  for (const char* name :
       {"storeplane_correlation_id", "storeplane_store_id", "storeplane_environment", "storeplane_isolation_mode",
        "storeplane_kind", "storeplane_release", "storeplane_callback_url"}) {
    if (name == skip) continue;
    if (!facts.empty()) facts += ",";
    facts += std::string(R"({"default": "", "fullName": ")") + name + R"(", "hide": false, "label": ")" + name +
             R"(", "multiple": false, "name": ")" + name + R"(", "regex": null, "required": false, "size": 80,)" +
             R"( "tablabel": ")" + name + R"(", "type": "text"})";
  }
  return R"({"forceschedulers": [{"all_fields": [)"
         R"({"columns": 1, "default": "", "fields": [)"
         R"({"default": "", "fullName": "username", "label": "owner", "name": "username", "need_email": false,)"
         R"( "type": "username"},)"
         R"({"default": "storeplane", "fullName": "reason", "label": "reason", "name": "reason", "type": "text"}],)"
         R"( "fullName": null, "hide": false, "label": "", "layout": "vertical", "name": "", "type": "nested"},)"
         R"({"columns": 2, "default": "", "fields": [)" +
         facts +
         R"(], "fullName": null, "hide": false, "label": "", "layout": "vertical", "name": "", "type": "nested"}],)"
         R"( "builder_names": [")" +
         builder +
         R"("], "button_name": "Run pipeline", "enabled": true, "label": "force-store",)"
         R"( "name": "force-store"}], "meta": {}})";
}

std::string BuildersAnswer() {
  return R"({"builders": [{"builderid": 3, "description": null, "masterids": [1], "name": "store-deploy",)"
         R"( "tags": []}], "meta": {"total": 1}})";
}

std::string BuildRequest(long brid, bool complete, const std::string& results) {
  return R"({"buildrequests": [{"buildrequestid": )" + std::to_string(brid) +
         R"(, "builderid": 3, "buildsetid": 57, "claimed": false, "claimed_at": null, "claimed_by_masterid": null,)"
         R"( "complete": )" +
         (complete ? "true" : "false") + R"(, "complete_at": null, "priority": 0, "results": )" +
         (results.empty() ? "null" : results) +
         R"(, "submitted_at": 1764842400, "waited_for": false}],)"
         R"( "meta": {"total": 1}})";
}

std::string Builds(const std::vector<std::tuple<long, long, bool, std::string>>& builds) {
  std::string out = R"({"builds": [)";
  for (std::size_t i = 0; i < builds.size(); ++i) {
    const auto& [buildid, number, complete, results] = builds[i];
    if (i > 0) out += ",";
    out += R"({"buildid": )" + std::to_string(buildid) + R"(, "number": )" + std::to_string(number) +
           R"(, "builderid": 3, "buildrequestid": 91, "workerid": 1, "masterid": 1, "started_at": 1764842410,)"
           R"( "complete": )" +
           (complete ? "true" : "false") + R"(, "complete_at": null, "state_string": "building", "results": )" +
           (results.empty() ? "null" : results) + "}";
  }
  return out + R"(], "meta": {"total": )" + std::to_string(builds.size()) + "}}";
}

class BuildbotProviderTest : public ::testing::Test {
 protected:
  std::unique_ptr<Provider> Make(FakeHttpServer& server, bool with_token = false) {
    ProviderConfig config;
    config.name = "bb";
    config.type = "buildbot";
    config.base_url = server.url() + "/";
    config.settings = {{"scheduler", "force-store"}, {"builder", "store-deploy"}};
    if (with_token) config.token_file = dir_.Write("bb.token", "bb-SECRET-token\n");
    return testing::MustMake(config);
  }

  FakeHttpServer server_;
  testing::TempDir dir_;
};

TEST_F(BuildbotProviderTest, TriggerForcesTheSchedulerWithTheFactsAsProperties) {
  server_.On("GET", kForce, Reply::Json(200, SchedulerAnswer()));
  server_.On("GET", kBuilders, Reply::Json(200, BuildersAnswer()));
  server_.On("POST", kForce, Reply::Json(200, R"({"id": 1, "jsonrpc": "2.0", "result": [57, {"3": 91}]})"));
  auto provider = Make(server_);
  ASSERT_NE(provider, nullptr);
  auto result = provider->Trigger(testing::SampleRequest("bb"));
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_EQ(result->external_id, "buildset:57");
  EXPECT_EQ(result->external_url, server_.url() + "/#/buildrequests/91");

  auto again = provider->Trigger(testing::SampleRequest("bb"));
  ASSERT_TRUE(again.ok()) << again.error().message;

  const auto requests = server_.requests();
  ASSERT_EQ(requests.size(), 4u) << "the scheduler and the builder id are looked up once";
  EXPECT_EQ(requests[0].method, "GET");
  EXPECT_EQ(requests[0].target, kForce);
  EXPECT_EQ(requests[1].method, "GET");
  EXPECT_EQ(requests[1].target, kBuilders);
  EXPECT_EQ(requests[2].method, "POST");
  EXPECT_EQ(requests[2].target, kForce);
  EXPECT_EQ(requests[2].Header("content-type"), "application/json");
  EXPECT_EQ(requests[2].Header("accept"), "application/json");
  EXPECT_FALSE(requests[2].HasHeader("authorization"));
  EXPECT_EQ(testing::Json(requests[2].body), testing::Json(R"({
    "id": 1, "jsonrpc": "2.0", "method": "force",
    "params": {
      "builderid": 3, "reason": "storeplane run_0123abcd", "owner": "storeplane",
      "storeplane_correlation_id": "run_0123abcd", "storeplane_store_id": "store-1",
      "storeplane_environment": "production", "storeplane_isolation_mode": "dedicated",
      "storeplane_kind": "deploy", "storeplane_release": "2026.12.04-1",
      "storeplane_callback_url": "https://plane.example/hooks/cicd/bb"
    }
  })"));
  EXPECT_EQ(requests[3].method, "POST");
  EXPECT_EQ(requests[3].target, kForce);
}

TEST_F(BuildbotProviderTest, ATokenIsSentAsBearer) {
  server_.On("GET", kForce, Reply::Json(200, SchedulerAnswer()));
  server_.On("GET", kBuilders, Reply::Json(200, BuildersAnswer()));
  server_.On("POST", kForce, Reply::Json(200, R"({"id": 1, "jsonrpc": "2.0", "result": [57, {"3": 91}]})"));
  auto provider = Make(server_, true);
  ASSERT_NE(provider, nullptr);
  ASSERT_TRUE(provider->Trigger(testing::SampleRequest()).ok());
  for (const auto& request : server_.requests()) EXPECT_EQ(request.Header("authorization"), "Bearer bb-SECRET-token");
}

TEST_F(BuildbotProviderTest, AJsonRpcErrorIsInvalid) {
  server_.On("GET", kForce, Reply::Json(200, SchedulerAnswer()));
  server_.On("GET", kBuilders, Reply::Json(200, BuildersAnswer()));
  server_.On("POST", kForce,
             Reply::Json(400, R"({"error": {"code": -32602, "message": {"storeplane_kind": )"
                              R"("'storeplane_kind' needs to be specified"}}, "id": 1, "jsonrpc": "2.0"})"));
  auto provider = Make(server_);
  ASSERT_NE(provider, nullptr);
  auto refused = provider->Trigger(testing::SampleRequest());
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(refused.error().message.find("needs to be specified"), std::string::npos) << refused.error().message;
}

TEST_F(BuildbotProviderTest, AMisconfiguredMasterIsRefusedBeforeAnythingIsForced) {
  const struct {
    const char* label;
    Reply scheduler;
    Reply builders;
    const char* expected_text;
  } cases[] = {
      {"no such scheduler",
       Reply::Json(404, R"({"error": "not found while getting from <ForceSchedulerEndpoint> with arguments"})"),
       Reply::Json(200, BuildersAnswer()), "force scheduler force-store: HTTP 404"},
      {"scheduler for another builder", Reply::Json(200, SchedulerAnswer("other")), Reply::Json(200, BuildersAnswer()),
       "does not start builder store-deploy"},
      {"a fact not declared", Reply::Json(200, SchedulerAnswer("store-deploy", "storeplane_release")),
       Reply::Json(200, BuildersAnswer()), "does not declare the parameter storeplane_release"},
      {"no such builder", Reply::Json(200, SchedulerAnswer()),
       Reply::Json(200, R"({"builders": [], "meta": {"total": 0}})"), "no builder named store-deploy"},
  };
  for (const auto& c : cases) {
    FakeHttpServer server;
    server.On("GET", kForce, c.scheduler);
    server.On("GET", kBuilders, c.builders);
    auto provider = Make(server);
    ASSERT_NE(provider, nullptr);
    auto refused = provider->Trigger(testing::SampleRequest());
    ASSERT_FALSE(refused.ok()) << c.label;
    EXPECT_EQ(refused.error().code, ErrorCode::kInvalidArgument) << c.label;
    EXPECT_NE(refused.error().message.find(c.expected_text), std::string::npos) << refused.error().message;
    for (const auto& request : server.requests()) EXPECT_EQ(request.method, "GET") << c.label;
  }
}

TEST_F(BuildbotProviderTest, FindFollowsTheBuildsetAndMapsResults) {
  using Builds_ = std::vector<std::tuple<long, long, bool, std::string>>;
  const struct {
    const char* label;
    bool request_complete;
    const char* request_results;
    Builds_ builds;
    ProviderRunStatus expected;
  } cases[] = {
      {"no build yet", false, "", {}, ProviderRunStatus::kQueued},
      {"building", false, "", {{201, 7, false, ""}}, ProviderRunStatus::kRunning},
      {"success", true, "0", {{201, 7, true, "0"}}, ProviderRunStatus::kSucceeded},
      {"warnings", true, "1", {{201, 7, true, "1"}}, ProviderRunStatus::kSucceeded},
      {"failure", true, "2", {{201, 7, true, "2"}}, ProviderRunStatus::kFailed},
      {"skipped", true, "3", {{201, 7, true, "3"}}, ProviderRunStatus::kFailed},
      {"exception", true, "4", {{201, 7, true, "4"}}, ProviderRunStatus::kFailed},
      {"cancelled", true, "6", {{201, 7, true, "6"}}, ProviderRunStatus::kCancelled},
      {"cancelled before a build", true, "6", {}, ProviderRunStatus::kCancelled},
      {"retry pending", false, "", {{201, 7, true, "5"}}, ProviderRunStatus::kQueued},
      {"retried and running", false, "", {{201, 7, true, "5"}, {202, 8, false, ""}}, ProviderRunStatus::kRunning},
      {"finished, request not yet marked", false, "", {{201, 7, true, "0"}}, ProviderRunStatus::kSucceeded},
  };
  for (const auto& c : cases) {
    FakeHttpServer server;
    server.On("GET", "/api/v2/buildrequests?buildsetid=57",
              Reply::Json(200, BuildRequest(91, c.request_complete, c.request_results)));
    server.On("GET", "/api/v2/builds?buildrequestid=91", Reply::Json(200, Builds(c.builds)));
    auto provider = Make(server);
    ASSERT_NE(provider, nullptr);
    auto found = provider->Find(kCorrelationId, "buildset:57");
    ASSERT_TRUE(found.ok()) << c.label << ": " << found.error().message;
    EXPECT_EQ(found->status, c.expected) << c.label;
    EXPECT_EQ(found->external_id, "buildset:57");
    if (c.builds.empty()) {
      EXPECT_EQ(found->external_url, server.url() + "/#/buildrequests/91") << c.label;
    } else {
      const long newest = std::get<1>(c.builds.back());
      EXPECT_EQ(found->external_url, server.url() + "/#/builders/3/builds/" + std::to_string(newest)) << c.label;
    }
  }
}

TEST_F(BuildbotProviderTest, FindWithoutAnIdMatchesTheBuildsetReason) {
  server_.On(
      "GET", "/api/v2/buildsets?order=-bsid&limit=30",
      Reply::Json(
          200,
          R"({"buildsets": [)"
          R"({"bsid": 58, "complete": false, "reason": "A build was forced by 'anonymous': storeplane run_0123abcdef", "results": null},)"
          R"({"bsid": 57, "complete": false, "reason": "A build was forced by 'anonymous': storeplane run_0123abcd", "results": null},)"
          R"({"bsid": 56, "complete": true, "reason": "The SingleBranchScheduler scheduler named 'x' triggered this build", "results": 0}],)"
          R"( "meta": {"total": 3}})"));
  server_.On("GET", "/api/v2/buildrequests?buildsetid=57", Reply::Json(200, BuildRequest(91, false, "")));
  server_.On("GET", "/api/v2/builds?buildrequestid=91", Reply::Json(200, Builds({{201, 7, false, ""}})));
  auto provider = Make(server_);
  ASSERT_NE(provider, nullptr);
  auto found = provider->Find(kCorrelationId, "");
  ASSERT_TRUE(found.ok()) << found.error().message;
  EXPECT_EQ(found->status, ProviderRunStatus::kRunning);
  EXPECT_EQ(found->external_id, "buildset:57");
  EXPECT_EQ(server_.requests().size(), 3u);
}

TEST_F(BuildbotProviderTest, FindWithoutAnyMatchingBuildsetIsNotFound) {
  server_.On("GET", "/api/v2/buildsets?order=-bsid&limit=30",
             Reply::Json(200, R"({"buildsets": [], "meta": {"total": 0}})"));
  server_.On("GET", "/api/v2/buildrequests?buildsetid=12", Reply::Json(200, R"({"buildrequests": [], "meta": {}})"));
  auto provider = Make(server_);
  ASSERT_NE(provider, nullptr);
  auto found = provider->Find(kCorrelationId, "buildset:12");
  ASSERT_TRUE(found.ok()) << found.error().message;
  EXPECT_EQ(found->status, ProviderRunStatus::kNotFound);
  auto odd = provider->Find(kCorrelationId, "build:12");
  ASSERT_FALSE(odd.ok());
  EXPECT_EQ(odd.error().code, ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace storeplane::cicd
