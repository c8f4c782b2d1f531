// The store lifecycle end to end with real peers: storeplaned triggers a real Buildbot 3.7
// (Debian's packages) through its force scheduler; the pipeline "deploys" by writing the
// release marker into a stand-in store and reports back through the signed callback; the
// real shop-agent reports what the store runs. Provision, a verified deploy, a failed
// release, and an unhealthy release whose failed health gate rolls the store back.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include "tests/integration/integration_fixture.h"
#include "tests/support/agent_process.h"
#include "tests/support/buildbot_process.h"

namespace storeplane::testing {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

class BuildbotLifecycleTest : public ServerTest {
 protected:
  void SetUp() override {
    if (!BuildbotInstalled()) {
      if (BuildbotRequired()) FAIL() << "buildbot is not installed, and STOREPLANE_REQUIRE_BUILDBOT is set";
      GTEST_SKIP() << "buildbot is not installed";
    }
    dir_ = std::make_unique<TempDir>();
    token_file_ = dir_->path() + "/admin.token";
    policy_file_ = dir_->path() + "/policy.yaml";
    magento_ = dir_->path() + "/magento";
    ASSERT_TRUE(AgentProcess::CopyFakeMagento(magento_));
    std::filesystem::remove(magento_ + "/.storeplane-release");  // nothing deployed yet
    std::ofstream(magento_ + "/var/.storeplane-cron") << "";
    std::ofstream(dir_->path() + "/callback.secret") << "bb-callback-secret-4242\n";

    BuildbotOptions options;
    options.dir = dir_->path() + "/buildbot";
    options.callback_secret_file = dir_->path() + "/callback.secret";
    options.pipeline_sleep_s = 0.3;
    options.site_root = magento_;
    buildbot_ = std::make_unique<BuildbotProcess>(options);
    ASSERT_TRUE(buildbot_->Start()) << buildbot_->error();

    WritePolicy(R"(version: 1
roles:
  operator:
    allow:
      - actions: [store.*, deploy.request, rollback.request, run.read, agent.*, operation.*, principal.whoami]
principals:
  admin:
    kind: operator
    roles: [operator]
)");
    std::ofstream(dir_->path() + "/config.yaml")
        << "cicd:\n"
        << "  run_timeout_s: 120\n"
        << "  poll_interval_s: 2\n"
        << "  health_gate: {consecutive: 2, window_s: 6}\n"
        << "  providers:\n"
        << "    bb:\n"
        << "      type: buildbot\n"
        << "      base_url: " << buildbot_->url() << "\n"
        << "      settings: {scheduler: storeplane-force, builder: store}\n"
        << "      callback_secret_file: " << dir_->path() << "/callback.secret\n"
        << "  routes:\n"
        << "    - provider: bb\n";
    server_env_ = {"STOREPLANE_AGENTS_HEARTBEAT_INTERVAL_S=1"};
    StartServer({"--config", dir_->path() + "/config.yaml"});
    ASSERT_FALSE(token_.empty());
  }

  void TearDown() override {
    if (agent_ && agent_->running()) agent_->Stop();
    ServerTest::TearDown();
    if (buildbot_) buildbot_->Stop();
  }

  bool WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (condition()) return true;
      std::this_thread::sleep_for(100ms);
    }
    return condition();
  }
  json::object Run(const std::string& id) { return Json(Call("GET", "/v1/runs/" + id)); }
  json::object Store() { return Json(Call("GET", "/v1/stores/shop-bb")); }
  std::string Request(const std::string& path, const std::string& body) {
    auto resp =
        Call("POST", "/v1/stores/shop-bb/" + path, body,
             body.empty() ? std::vector<std::pair<std::string, std::string>>{}
                          : std::vector<std::pair<std::string, std::string>>{{"Content-Type", "application/json"}});
    EXPECT_EQ(resp.status, 202) << path << ": " << resp.body;
    return resp.status == 202 ? std::string(Json(resp)["id"].as_string()) : std::string();
  }
  // Waits until the run is final; its state.
  std::string Final(const std::string& id, std::chrono::milliseconds timeout = 60s) {
    std::string state;
    WaitFor(
        [&] {
          auto run = Run(id);
          if (!run.contains("state")) return false;
          state = std::string(run["state"].as_string());
          return !run["active"].as_bool();
        },
        timeout);
    return state;
  }
  std::string Diagnostics() { return server_->Logs() + "\n--- buildbot ---\n" + buildbot_->Logs(); }

  std::string magento_;
  std::unique_ptr<BuildbotProcess> buildbot_;
  std::unique_ptr<AgentProcess> agent_;
};

TEST_F(BuildbotLifecycleTest, ProvisionDeployFailAndRollBackThroughARealBuildbot) {
  ASSERT_EQ(Register("shop-bb", "staging").status, 201);

  // Provision: Buildbot runs the pipeline, which calls back; the store becomes active.
  const auto provision = Request("provision", "");
  ASSERT_EQ(Final(provision), "succeeded") << json::serialize(Run(provision)) << Diagnostics();
  EXPECT_EQ(Store()["state"].as_string(), "active");
  const auto provisioned = Run(provision);
  ASSERT_TRUE(provisioned.at("external_id").is_string()) << json::serialize(provisioned);
  EXPECT_EQ(std::string(provisioned.at("external_id").as_string()).rfind("buildset:", 0), 0u);

  // The agent joins.
  auto token = Call("POST", "/v1/stores/shop-bb/enrollment-tokens", "", {});
  ASSERT_EQ(token.status, 201);
  std::ofstream(dir_->path() + "/agent.yaml")
      << "control_plane_url: " << server_->url() << "\nstore_id: shop-bb\ncredential_file: " << dir_->path()
      << "/credential\nstate_dir: " << dir_->path() << "/agent-state\nmagento_root: " << magento_
      << "\nphp_binary: " << magento_ << "/php\nisolation_mode: shared\nallowed_operations: [health.probe]\n";
  agent_ = std::make_unique<AgentProcess>(
      dir_->path() + "/agent.yaml", dir_->path() + "/agent.log",
      std::vector<std::string>{"SHOP_AGENT_ENROLLMENT_TOKEN=" + std::string(Json(token)["token"].as_string())});
  ASSERT_TRUE(agent_->Start());
  ASSERT_TRUE(WaitFor(
      [&] {
        auto agent = Json(Call("GET", "/v1/stores/shop-bb/agent"));
        return agent.contains("availability") && agent["availability"].as_string() == "online";
      },
      10s))
      << agent_->Logs();

  // A deploy that Buildbot carries out and the agent then shows healthy: verified.
  const auto first = Request("deployments", R"({"release": "r1"})");
  ASSERT_EQ(Final(first), "verified") << Diagnostics() << agent_->Logs();
  EXPECT_EQ(Store()["current_release"].as_string(), "r1");
  EXPECT_EQ(Store()["last_known_good_release"].as_string(), "r1");

  // A release whose pipeline fails: the run fails, the store keeps r1.
  const auto failed = Request("deployments", R"({"release": "bad-r2"})");
  EXPECT_EQ(Final(failed), "failed") << Diagnostics();
  EXPECT_EQ(Store()["current_release"].as_string(), "r1");

  // A release that deploys but leaves the store unhealthy: the gate fails, and one
  // automatic rollback through Buildbot brings r1 back, verified by the agent.
  const auto unhealthy = Request("deployments", R"({"release": "unhealthy-r3"})");
  ASSERT_EQ(Final(unhealthy), "verification_failed") << Diagnostics();
  std::string rollback;
  ASSERT_TRUE(WaitFor(
      [&] {
        const auto runs = Json(Call("GET", "/v1/runs?store=shop-bb"));
        for (const auto& item : runs.at("items").as_array()) {
          const auto& run = item.as_object();
          if (run.at("kind").as_string() == "rollback") rollback = std::string(run.at("id").as_string());
        }
        return !rollback.empty();
      },
      10s));
  EXPECT_EQ(Run(rollback)["requested_by"].as_string(), "system");
  EXPECT_EQ(Run(rollback)["release"].as_string(), "r1");
  ASSERT_EQ(Final(rollback), "verified") << Diagnostics() << agent_->Logs();
  EXPECT_EQ(Store()["current_release"].as_string(), "r1");
  auto health = Json(Call("GET", "/v1/stores/shop-bb/health"));
  EXPECT_EQ(health["release"].as_string(), "r1");
  EXPECT_EQ(health["health"].as_string(), "healthy");
}

}  // namespace
}  // namespace storeplane::testing
