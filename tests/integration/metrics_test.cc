// GET /metrics against the real storeplaned: the values follow what the API did (stores
// registered, requests by route template and code, authorization decisions, the audit
// trail), a real shop-agent's heartbeats show in the agent and health gauges, no store id
// or label value ever appears, and the route is decided like any operator route (401
// without a token, 403 without metrics.read).
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include "tests/integration/integration_fixture.h"
#include "tests/integration/metrics_support.h"
#include "tests/support/agent_process.h"

namespace storeplane::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

class MetricsTest : public ServerTest {
 protected:
  void SetUp() override {
    dir_ = std::make_unique<TempDir>();
    token_file_ = dir_->path() + "/admin.token";
    policy_file_ = dir_->path() + "/policy.yaml";
    WritePolicy(MetricsPolicy());
    server_env_ = {"STOREPLANE_AGENTS_HEARTBEAT_INTERVAL_S=1"};
    StartServer();
    ASSERT_FALSE(token_.empty());
    scraper_ = CreateToken("prometheus");
    ASSERT_FALSE(scraper_.empty());
  }

  void TearDown() override {
    if (agent_ && agent_->running()) agent_->Stop();
    if (!magento_.empty()) KillProcessesUnder(magento_);
    ServerTest::TearDown();
  }

  // One scrape with the scraper's token; its body.
  std::string Scrape() {
    auto resp = CallAs(scraper_, "GET", "/metrics");
    EXPECT_EQ(resp.status, 200) << resp.body;
    EXPECT_EQ(resp.Header("content-type"), kContentType);
    return resp.body;
  }

  double Value(const std::string& text, const std::string& name, const std::map<std::string, std::string>& labels) {
    auto value = SampleValue(text, name, labels);
    EXPECT_TRUE(value.has_value()) << "no sample " << name << " with the given labels in:\n" << text;
    return value.value_or(-1);
  }

  bool WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (condition()) return true;
      std::this_thread::sleep_for(100ms);
    }
    return condition();
  }

  std::string scraper_;
  std::unique_ptr<AgentProcess> agent_;
  std::string magento_;
};

TEST_F(MetricsTest, ValuesFollowTheApi) {
  const std::string before = Scrape();
  EXPECT_EQ(Value(before, "storeplane_stores",
                  {{"state", "registered"}, {"environment", "staging"}, {"isolation_mode", "shared"}}),
            0);
  const double audit_before = Value(before, "storeplane_audit_records_total", {});

  ASSERT_EQ(Register("metrics-canary-a", "staging", "shared", R"({"team":"label-canary-value"})").status, 201);
  ASSERT_EQ(Register("metrics-canary-b", "staging", "shared").status, 201);
  ASSERT_EQ(Register("metrics-canary-c", "production", "dedicated").status, 201);
  EXPECT_EQ(Call("GET", "/v1/stores/metrics-canary-missing").status, 404);
  EXPECT_EQ(Call("GET", "/v1/stores/metrics-canary-a").status, 200);
  EXPECT_EQ(Call("GET", "/no/such/path-canary").status, 404);
  EXPECT_EQ(Call("BREW", "/v1/stores").status, 405);

  const std::string after = Scrape();
  EXPECT_EQ(Value(after, "storeplane_stores",
                  {{"state", "registered"}, {"environment", "staging"}, {"isolation_mode", "shared"}}),
            2);
  EXPECT_EQ(Value(after, "storeplane_stores",
                  {{"state", "registered"}, {"environment", "production"}, {"isolation_mode", "dedicated"}}),
            1);
  EXPECT_EQ(SampleSum(after, "storeplane_stores"), 3);
  // No agent yet: every store's health is what GET /v1/stores/{id}/health says without one.
  EXPECT_EQ(Value(after, "storeplane_stores_by_health", {{"health", "unknown"}}), 3);
  EXPECT_EQ(Value(after, "storeplane_stores_by_health", {{"health", "healthy"}}), 0);
  EXPECT_EQ(Value(after, "storeplane_agents", {{"availability", "online"}}), 0);

  // Requests by route template, never by raw path.
  EXPECT_EQ(
      Value(after, "storeplane_http_requests_total", {{"route", "/v1/stores"}, {"method", "POST"}, {"code", "201"}}),
      3);
  EXPECT_EQ(Value(after, "storeplane_http_requests_total",
                  {{"route", "/v1/stores/{id}"}, {"method", "GET"}, {"code", "404"}}),
            1);
  EXPECT_EQ(Value(after, "storeplane_http_requests_total",
                  {{"route", "/v1/stores/{id}"}, {"method", "GET"}, {"code", "200"}}),
            1);
  EXPECT_EQ(
      Value(after, "storeplane_http_requests_total", {{"route", "unmatched"}, {"method", "GET"}, {"code", "404"}}), 1);
  EXPECT_EQ(
      Value(after, "storeplane_http_requests_total", {{"route", "unmatched"}, {"method", "other"}, {"code", "405"}}),
      1);
  EXPECT_EQ(
      Value(after, "storeplane_http_request_duration_seconds_count", {{"route", "/v1/stores"}, {"method", "POST"}}), 3);
  // The first scrape was answered before the second one rendered.
  EXPECT_GE(Value(after, "storeplane_http_requests_total", {{"route", "/metrics"}, {"method", "GET"}, {"code", "200"}}),
            1);

  // Decisions by catalog action.
  EXPECT_EQ(Value(after, "storeplane_authz_decisions_total", {{"action", "store.register"}, {"decision", "allow"}}), 3);
  // The missing store was a 404 before any decision (nothing to decide against).
  EXPECT_EQ(Value(after, "storeplane_authz_decisions_total", {{"action", "store.read"}, {"decision", "allow"}}), 1);

  // Three registrations and the audited reads came after the first scrape.
  EXPECT_GE(Value(after, "storeplane_audit_records_total", {}), audit_before + 3);
  EXPECT_GE(Value(after, "storeplane_db_write_batches_total", {}), 1);
  EXPECT_EQ(Value(after, "storeplane_outbox_pending", {}), 0);
  EXPECT_EQ(Value(after, "storeplane_runs", {{"kind", "deploy"}, {"state", "running"}}), 0);
  EXPECT_EQ(Value(after, "storeplane_operations_open", {{"state", "queued"}}), 0);

  // Nothing about any one store: no id, no label value, no raw path.
  EXPECT_EQ(after.find("canary"), std::string::npos) << after;
  EXPECT_EQ(after.find("label-canary-value"), std::string::npos);
}

TEST_F(MetricsTest, NeedsATokenHoldingMetricsRead) {
  auto anonymous = Call("GET", "/metrics", "", {}, false);
  ExpectProblem(anonymous, 401, "unauthenticated");
  EXPECT_FALSE(anonymous.Header("www-authenticate").empty());

  const std::string auditor = CreateToken("auditor-1");
  auto refused = CallAs(auditor, "GET", "/metrics");
  ExpectProblem(refused, 403, "forbidden");
  EXPECT_NE(refused.body.find("metrics.read"), std::string::npos) << refused.body;

  const std::string text = Scrape();
  EXPECT_EQ(Value(text, "storeplane_authz_decisions_total", {{"action", "metrics.read"}, {"decision", "deny"}}), 1);
  EXPECT_EQ(Value(text, "storeplane_http_requests_total", {{"route", "/metrics"}, {"method", "GET"}, {"code", "403"}}),
            1);
  EXPECT_EQ(Value(text, "storeplane_http_requests_total", {{"route", "/metrics"}, {"method", "GET"}, {"code", "401"}}),
            1);
}

// A real shop-agent heartbeats once a second: the heartbeat counter grows, its agent is
// online, and its store's health in the metrics is the one the API reports.
TEST_F(MetricsTest, HeartbeatsOfARealAgent) {
  const std::string store = "metrics-agent-store";
  ASSERT_EQ(Register(store, "staging").status, 201);
  ASSERT_EQ(Register("metrics-no-agent", "staging").status, 201);
  const std::string root = dir_->path() + "/agent";
  magento_ = root + "/magento";
  ASSERT_TRUE(AgentProcess::CopyFakeMagento(magento_));
  auto enroll = Call("POST", "/v1/stores/" + store + "/enrollment-tokens", R"({"ttl_s": 600})",
                     {{"Content-Type", "application/json"}});
  ASSERT_EQ(enroll.status, 201) << enroll.body;
  {
    std::ofstream out(root + "/agent.yaml", std::ios::trunc);
    out << "control_plane_url: " << server_->url() << "\n"
        << "store_id: " << store << "\n"
        << "credential_file: " << root << "/credential\n"
        << "state_dir: " << root << "/state\n"
        << "magento_root: " << magento_ << "\n"
        << "php_binary: " << magento_ << "/php\n"
        << "isolation_mode: shared\n"
        << "poll_wait_ms: 20000\n"
        << "allowed_operations: [health.probe]\n"
        << "checks:\n  storefront_url: \"\"\n";
  }
  agent_ = std::make_unique<AgentProcess>(
      root + "/agent.yaml", root + "/agent.log",
      std::vector<std::string>{"SHOP_AGENT_ENROLLMENT_TOKEN=" + std::string(Json(enroll)["token"].as_string())});
  ASSERT_TRUE(agent_->Start());

  std::string text;
  ASSERT_TRUE(WaitFor(
      [&] {
        text = Scrape();
        return SampleValue(text, "storeplane_agent_heartbeats_total").value_or(0) >= 2 &&
               SampleValue(text, "storeplane_agents", {{"availability", "online"}}).value_or(0) == 1;
      },
      20s))
      << text << "\nagent log:\n"
      << agent_->Logs();
  EXPECT_GE(Value(text, "storeplane_http_requests_total",
                  {{"route", "/agent/v1/heartbeat"}, {"method", "POST"}, {"code", "200"}}),
            2);
  EXPECT_EQ(SampleSum(text, "storeplane_agents"), 1);

  // The metrics' health of the two stores is what the API reports for each.
  ASSERT_TRUE(WaitFor(
      [&] {
        auto health = Json(Call("GET", "/v1/stores/" + store + "/health"));
        text = Scrape();
        const std::string h(health["health"].as_string());
        const double expected_unknown = h == "unknown" ? 2 : 1;
        return SampleValue(text, "storeplane_stores_by_health", {{"health", h}}).value_or(-1) ==
                   (h == "unknown" ? 2 : 1) &&
               SampleValue(text, "storeplane_stores_by_health", {{"health", "unknown"}}).value_or(-1) ==
                   expected_unknown;
      },
      10s))
      << text;
  EXPECT_EQ(SampleSum(text, "storeplane_stores_by_health"), 2);
  EXPECT_EQ(text.find(store), std::string::npos);
}

}  // namespace
}  // namespace storeplane::testing
