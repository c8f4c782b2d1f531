// The metrics against Debian's real Prometheus: promtool checks (and lints) the real
// /metrics output of a server that has done some work, and a real Prometheus server
// scrapes storeplaned with a bearer token from a credentials file and answers a query with
// a value the test knows. Without the prometheus package these tests skip, or fail when
// STOREPLANE_REQUIRE_PROMETHEUS is set (scripts/test.sh sets it).
#include <chrono>
#include <fstream>
#include <thread>

#include "tests/integration/integration_fixture.h"
#include "tests/integration/metrics_support.h"
#include "tests/support/prometheus_process.h"

namespace storeplane::testing {
namespace {

using namespace std::chrono_literals;

class PrometheusTest : public ServerTest {
 protected:
  void SetUp() override {
    if (!PrometheusInstalled()) {
      if (PrometheusRequired()) {
        FAIL() << "prometheus/promtool are not installed (Debian: apt-get install prometheus), and "
                  "STOREPLANE_REQUIRE_PROMETHEUS is set";
      }
      GTEST_SKIP() << "prometheus/promtool are not installed; set STOREPLANE_REQUIRE_PROMETHEUS=1 to make this a "
                      "failure";
    }
    dir_ = std::make_unique<TempDir>();
    token_file_ = dir_->path() + "/admin.token";
    policy_file_ = dir_->path() + "/policy.yaml";
    WritePolicy(MetricsPolicy());
    StartServer();
    ASSERT_FALSE(token_.empty());
    scraper_ = CreateToken("prometheus");
    ASSERT_FALSE(scraper_.empty());
  }

  void TearDown() override {
    if (prometheus_) prometheus_->Stop();  // also on failure: never left running
    ServerTest::TearDown();
  }

  std::string Scrape() {
    auto resp = CallAs(scraper_, "GET", "/metrics");
    EXPECT_EQ(resp.status, 200) << resp.body;
    return resp.body;
  }

  // Some of everything: stores in several groups, reads, a 404, an unmatched path, denials.
  void DoSomeWork() {
    ASSERT_EQ(Register("prom-a", "staging", "shared").status, 201);
    ASSERT_EQ(Register("prom-b", "staging", "dedicated", R"({"tier":"gold"})").status, 201);
    ASSERT_EQ(Register("prom-c", "production", "isolated").status, 201);
    EXPECT_EQ(Call("GET", "/v1/stores").status, 200);
    EXPECT_EQ(Call("GET", "/v1/stores/prom-z").status, 404);
    EXPECT_EQ(Call("GET", "/nothing/here").status, 404);
    EXPECT_EQ(CallAs(CreateToken("auditor-1"), "GET", "/metrics").status, 403);
  }

  std::string scraper_;
  std::unique_ptr<PrometheusProcess> prometheus_;
};

TEST_F(PrometheusTest, PromtoolChecksTheRealOutput) {
  DoSomeWork();
  const std::string text = Scrape();
  ASSERT_NE(text.find("storeplane_http_request_duration_seconds_bucket"), std::string::npos) << text;
  const std::string path = dir_->path() + "/metrics.txt";
  std::ofstream(path, std::ios::trunc) << text;
  const auto run = PromtoolCheckMetrics(path);
  EXPECT_EQ(run.exit_status, 0) << run.output << "\n" << text;
  EXPECT_EQ(run.output, "") << "promtool reported problems:\n" << run.output;
}

TEST_F(PrometheusTest, ARealPrometheusScrapesAndAnswersAQuery) {
  DoSomeWork();
  const std::string credentials = dir_->path() + "/scrape.token";
  std::ofstream(credentials, std::ios::trunc) << scraper_ << "\n";
  const std::string target = server_->url().substr(server_->url().find("://") + 3);
  const std::string config = dir_->path() + "/prometheus.yml";
  {
    std::ofstream out(config, std::ios::trunc);
    out << "global:\n"
        << "  scrape_interval: 1s\n"
        << "  scrape_timeout: 1s\n"
        << "scrape_configs:\n"
        << "  - job_name: storeplane\n"
        << "    metrics_path: /metrics\n"
        << "    authorization:\n"
        << "      type: Bearer\n"
        << "      credentials_file: " << credentials << "\n"
        << "    static_configs:\n"
        << "      - targets: ['" << target << "']\n";
  }
  prometheus_ = std::make_unique<PrometheusProcess>(dir_->path(), config);
  ASSERT_TRUE(prometheus_->Start()) << prometheus_->error();

  // Waits until Prometheus answers `query` with one sample of value `want`.
  client::HttpClient http;
  auto query = [&](const std::string& promql) -> std::optional<double> {
    client::HttpRequest req;
    req.method = "POST";
    req.url = prometheus_->url() + "/api/v1/query";
    req.headers = {{"Content-Type", "application/x-www-form-urlencoded"}};
    std::string encoded;
    for (char c : promql) {
      if (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-') {
        encoded += c;
      } else {
        char hex[4];
        std::snprintf(hex, sizeof hex, "%%%02X", static_cast<unsigned char>(c));
        encoded += hex;
      }
    }
    req.body = "query=" + encoded;
    auto resp = http.Send(req);
    if (!resp.ok() || resp->status != 200) return std::nullopt;
    auto body = Json(*resp);
    if (!body.contains("data")) return std::nullopt;
    const auto& result = body["data"].as_object().at("result").as_array();
    if (result.size() != 1) return std::nullopt;
    // An instant vector sample: [time, "value"].
    return std::stod(std::string(result[0].as_object().at("value").as_array()[1].as_string()));
  };
  auto wait_for = [&](const std::string& promql, double want) {
    std::optional<double> got;
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (std::chrono::steady_clock::now() < deadline) {
      got = query(promql);
      if (got && *got == want) return got;
      std::this_thread::sleep_for(250ms);
    }
    return got;
  };

  const auto up = wait_for(R"(up{job="storeplane"})", 1);
  ASSERT_EQ(up.value_or(-1), 1) << "the target never came up; prometheus log:\n" << prometheus_->Logs();
  // Three stores registered by the test, two of them in staging.
  EXPECT_EQ(wait_for(R"(sum(storeplane_stores{job="storeplane"}))", 3).value_or(-1), 3);
  EXPECT_EQ(wait_for(R"(sum(storeplane_stores{environment="staging"}))", 2).value_or(-1), 2);
  EXPECT_EQ(wait_for(R"(storeplane_stores{state="registered",environment="production",isolation_mode="isolated"})", 1)
                .value_or(-1),
            1);
  // Prometheus's own token reached the server: its scrapes are counted as allowed.
  const auto scrapes = query(R"(storeplane_authz_decisions_total{action="metrics.read",decision="allow"})");
  EXPECT_GE(scrapes.value_or(0), 1);
}

}  // namespace
}  // namespace storeplane::testing
