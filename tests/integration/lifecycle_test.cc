// The store lifecycle through CI/CD against the real storeplaned: a fake CI server (the
// generic signed webhook provider) receives triggers, and the test plays the pipeline by
// sending signed callbacks. Provision, deploy with the health gate fed by the real
// shop-agent, automatic rollback after a failed gate, refused callbacks, and concurrent
// duplicate deliveries causing one transition.
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

#include "core/callback_signature.h"
#include "tests/integration/fake_ci.h"
#include "tests/integration/integration_fixture.h"
#include "tests/support/agent_process.h"

namespace storeplane::testing {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using namespace std::chrono_literals;

constexpr char kTriggerSecret[] = "trigger-secret-0123456789";
constexpr char kCallbackSecret[] = "callback-secret-9876543210";

class LifecycleTest : public ServerTest {
 protected:
  void SetUp() override {
    dir_ = std::make_unique<TempDir>();
    token_file_ = dir_->path() + "/admin.token";
    policy_file_ = dir_->path() + "/policy.yaml";
    WritePolicy(Policy(""));
    std::ofstream(dir_->path() + "/trigger.secret") << kTriggerSecret << "\n";
    std::ofstream(dir_->path() + "/callback.secret") << kCallbackSecret << "\n";
    std::ofstream(dir_->path() + "/config.yaml")
        << "cicd:\n"
        << "  run_timeout_s: 60\n"
        << "  poll_interval_s: 3600\n"
        << "  health_gate: {consecutive: 2, window_s: 4}\n"
        << "  providers:\n"
        << "    hook:\n"
        << "      type: webhook\n"
        << "      base_url: " << ci_.url() << "\n"
        << "      secret_file: " << dir_->path() << "/trigger.secret\n"
        << "      callback_secret_file: " << dir_->path() << "/callback.secret\n"
        << "  routes:\n"
        << "    - provider: hook\n";
    server_env_ = {"STOREPLANE_AGENTS_HEARTBEAT_INTERVAL_S=1"};
    StartServer({"--config", dir_->path() + "/config.yaml"});
    ASSERT_FALSE(token_.empty());
  }

  // The roles these tests need; `approvals` is appended as the approval rules.
  static std::string Policy(const std::string& approvals) {
    return R"(version: 1
roles:
  operator:
    allow:
      - actions: [store.*, deploy.request, rollback.request, isolation.migrate, run.read, operation.*, agent.*,
                  change.read, principal.whoami]
  approver:
    allow:
      - actions: [store.read, run.read, change.read, change.approve, change.reject]
  auditor:
    allow:
      - actions: [audit.read, audit.export]
  tokens:
    allow:
      - actions: [token.*]
principals:
  admin:
    kind: operator
    roles: [operator, auditor, tokens]
  bob:
    kind: operator
    roles: [approver]
  keeper:
    kind: operator
    roles: [tokens]
)" + approvals;
  }

  void TearDown() override {
    if (agent_ && agent_->running()) agent_->Stop();
    ServerTest::TearDown();
  }

  // Sends a signed callback as the pipeline would.
  client::HttpResponse Callback(const std::string& body, const std::string& delivery, std::int64_t timestamp_s = -1,
                                const std::string& secret = kCallbackSecret) {
    if (timestamp_s < 0) {
      timestamp_s =
          std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    }
    return Call("POST", "/hooks/cicd/hook", body,
                {{"Content-Type", "application/json"},
                 {"X-Storeplane-Timestamp", std::to_string(timestamp_s)},
                 {"X-Storeplane-Signature", core::SignPayload(secret, timestamp_s, body)},
                 {"X-Storeplane-Delivery", delivery}},
                false);
  }
  static std::string Outcome(const std::string& run, const std::string& status) {
    return R"({"correlation_id": ")" + run + R"(", "status": ")" + status + R"("})";
  }

  json::object Run(const std::string& id) { return Json(Call("GET", "/v1/runs/" + id)); }
  json::object Store(const std::string& id) { return Json(Call("GET", "/v1/stores/" + id)); }

  bool WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (condition()) return true;
      std::this_thread::sleep_for(25ms);
    }
    return condition();
  }
  bool WaitRunState(const std::string& id, const std::string& state, std::chrono::milliseconds t = 10s) {
    return WaitFor([&] { return Run(id)["state"].as_string() == state; }, t);
  }

  // A provisioned store: registered, provisioned through the fake CI, active.
  std::string ProvisionedStore(const std::string& id, std::size_t trigger_no) {
    EXPECT_EQ(Register(id, "staging").status, 201);
    auto resp = Call("POST", "/v1/stores/" + id + "/provision", "", {});
    EXPECT_EQ(resp.status, 202) << resp.body;
    const std::string run(Json(resp)["id"].as_string());
    EXPECT_TRUE(ci_.WaitTrigger(trigger_no, 10s));
    EXPECT_TRUE(WaitRunState(run, "triggered"));
    EXPECT_EQ(Callback(Outcome(run, "succeeded"), "d-prov-" + id).status, 200);
    EXPECT_EQ(Store(id)["state"].as_string(), "active");
    return run;
  }

  // The real agent for `store`, with the fake Magento's release marker at `release`.
  void StartAgent(const std::string& store, const std::string& release) {
    magento_ = dir_->path() + "/magento-" + store;
    ASSERT_TRUE(AgentProcess::CopyFakeMagento(magento_));
    SetRelease(release);
    std::ofstream(magento_ + "/var/.storeplane-cron") << "";
    auto token = Call("POST", "/v1/stores/" + store + "/enrollment-tokens", "", {});
    ASSERT_EQ(token.status, 201) << token.body;
    const auto config = dir_->path() + "/agent-" + store + ".yaml";
    std::ofstream(config) << "control_plane_url: " << server_->url() << "\nstore_id: " << store
                          << "\ncredential_file: " << dir_->path() << "/cred-" << store
                          << "\nstate_dir: " << dir_->path() << "/state-" << store << "\nmagento_root: " << magento_
                          << "\nphp_binary: " << magento_ << "/php\nisolation_mode: shared\n"
                          << "allowed_operations: [health.probe]\n";
    agent_ = std::make_unique<AgentProcess>(
        config, dir_->path() + "/agent-" + store + ".log",
        std::vector<std::string>{"SHOP_AGENT_ENROLLMENT_TOKEN=" + std::string(Json(token)["token"].as_string())});
    ASSERT_TRUE(agent_->Start());
    ASSERT_TRUE(WaitFor(
        [&] { return Json(Call("GET", "/v1/stores/" + store + "/health"))["health"].as_string() == "healthy"; }, 10s))
        << agent_->Logs();
  }
  void SetRelease(const std::string& release) { std::ofstream(magento_ + "/.storeplane-release") << release << "\n"; }

  FakeCi ci_;
  std::unique_ptr<AgentProcess> agent_;
  std::string magento_;
};

TEST_F(LifecycleTest, ProvisionTriggersTheProviderWithTheRunsFactsAndActivatesTheStore) {
  ASSERT_EQ(Register("shop-a", "staging").status, 201);
  auto resp = Call("POST", "/v1/stores/shop-a/provision", "", {});
  ASSERT_EQ(resp.status, 202) << resp.body;
  auto run = Json(resp);
  const std::string id(run["id"].as_string());
  EXPECT_EQ(run["kind"].as_string(), "provision");
  EXPECT_EQ(Store("shop-a")["state"].as_string(), "provisioning");
  // One active run per store.
  EXPECT_EQ(Call("POST", "/v1/stores/shop-a/provision", "", {}).status, 409);

  auto trigger = ci_.WaitTrigger(1, 10s);
  ASSERT_TRUE(trigger);
  core::SignatureCheck check;
  check.secrets = {kTriggerSecret};
  check.timestamp_header = trigger->headers["x-storeplane-timestamp"];
  check.signature_header = trigger->headers["x-storeplane-signature"];
  check.body = trigger->body;
  check.now_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  EXPECT_TRUE(core::VerifySignature(check).ok()) << "the trigger is signed";
  auto facts = json::parse(trigger->body).as_object();
  EXPECT_EQ(facts["correlation_id"].as_string(), id);
  EXPECT_EQ(facts["store_id"].as_string(), "shop-a");
  EXPECT_EQ(facts["environment"].as_string(), "staging");
  EXPECT_EQ(facts["isolation_mode"].as_string(), "shared");
  EXPECT_EQ(facts["kind"].as_string(), "provision");
  EXPECT_EQ(facts["callback_url"].as_string(), server_->url() + "/hooks/cicd/hook");
  EXPECT_EQ(facts.size(), 7u) << "nothing else about the store leaves: " << trigger->body;

  ASSERT_TRUE(WaitRunState(id, "triggered"));
  EXPECT_EQ(Callback(Outcome(id, "running"), "d1").status, 200);
  EXPECT_EQ(Run(id)["state"].as_string(), "running");
  EXPECT_EQ(Callback(Outcome(id, "succeeded"), "d2").status, 200);
  EXPECT_EQ(Run(id)["state"].as_string(), "succeeded");
  EXPECT_EQ(Store("shop-a")["state"].as_string(), "active");
  EXPECT_EQ(ci_.count(), 1u) << "triggered exactly once";
}

TEST_F(LifecycleTest, RefusedCallbacksAreAuditedAndMoveNothing) {
  ASSERT_EQ(Register("shop-a", "staging").status, 201);
  const std::string id(Json(Call("POST", "/v1/stores/shop-a/provision", "", {}))["id"].as_string());
  ASSERT_TRUE(WaitRunState(id, "triggered"));
  const auto body = Outcome(id, "succeeded");
  const auto now_s =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  EXPECT_EQ(Callback(body, "bad-secret", -1, "not-the-secret").status, 401);
  EXPECT_EQ(Callback(body, "stale", now_s - 301).status, 401);
  EXPECT_EQ(Callback(body, "future", now_s + 301).status, 401);
  // Tampered body under a valid signature of another body.
  auto tampered = Call("POST", "/hooks/cicd/hook", body,
                       {{"Content-Type", "application/json"},
                        {"X-Storeplane-Timestamp", std::to_string(now_s)},
                        {"X-Storeplane-Signature", core::SignPayload(kCallbackSecret, now_s, Outcome(id, "failed"))},
                        {"X-Storeplane-Delivery", "tampered"}},
                       false);
  EXPECT_EQ(tampered.status, 401);
  EXPECT_EQ(Run(id)["state"].as_string(), "triggered");
  // Refusals are audited (queued, not awaited: poll for them).
  EXPECT_TRUE(WaitFor(
      [&] { return Json(Call("GET", "/v1/audit?action=callback.refused"))["items"].as_array().size() >= 4u; }, 5s));

  EXPECT_EQ(Callback(body, "once").status, 200);
  EXPECT_EQ(Callback(body, "once").status, 409) << "a replayed delivery is refused";
  EXPECT_EQ(Call("POST", "/hooks/cicd/nobody", body, {{"Content-Type", "application/json"}}, false).status, 404);
}

TEST_F(LifecycleTest, ConcurrentDuplicateCallbacksCauseOneTransition) {
  ASSERT_EQ(Register("shop-a", "staging").status, 201);
  const std::string id(Json(Call("POST", "/v1/stores/shop-a/provision", "", {}))["id"].as_string());
  ASSERT_TRUE(WaitRunState(id, "triggered"));
  const auto body = Outcome(id, "succeeded");
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  // 1,000 deliveries of the same callback from 8 connections at once.
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      client::HttpClient http;
      for (int i = 0; i < 125; ++i) {
        const auto ts =
            std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
                .count();
        auto resp = http.Send({"POST",
                               server_->url() + "/hooks/cicd/hook",
                               {{"Content-Type", "application/json"},
                                {"X-Storeplane-Timestamp", std::to_string(ts)},
                                {"X-Storeplane-Signature", core::SignPayload(kCallbackSecret, ts, body)},
                                {"X-Storeplane-Delivery", "same-delivery"}},
                               body,
                               10000});
        if (resp.ok() && resp->status == 200) ++ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 1);
  auto audit = Json(Call("GET", "/v1/audit?action=run.transition&limit=1000"));
  int to_succeeded = 0;
  for (const auto& item : audit["items"].as_array()) {
    const auto& params = item.as_object().at("params").as_object();
    if (params.contains("to") && params.at("to").as_string() == "succeeded") ++to_succeeded;
  }
  EXPECT_EQ(to_succeeded, 1);
  EXPECT_EQ(Store("shop-a")["state"].as_string(), "active");
}

TEST_F(LifecycleTest, RequestsThatDoNotFitTheStoreAreRefusedAndTriggerNothing) {
  ASSERT_EQ(Register("shop-a", "staging").status, 201);
  const std::vector<std::pair<std::string, std::string>> json_body = {{"Content-Type", "application/json"}};
  // Not active yet: nothing to deploy to, roll back or decommission... except provisioning.
  EXPECT_EQ(Call("POST", "/v1/stores/shop-a/deployments", R"({"release": "r1"})", json_body).status, 409);
  EXPECT_EQ(Call("POST", "/v1/stores/shop-a/rollbacks", "", {}).status, 409);
  // Malformed requests are 422 whatever the store.
  EXPECT_EQ(Call("POST", "/v1/stores/shop-a/deployments", R"({"release": "bad release!"})", json_body).status, 422);
  EXPECT_EQ(Call("POST", "/v1/stores/shop-a/deployments", R"({})", json_body).status, 422);
  EXPECT_EQ(
      Call("POST", "/v1/stores/shop-a/deployments", R"({"release": "r1", "script": "rm -rf /"})", json_body).status,
      422);
  EXPECT_EQ(Call("POST", "/v1/stores/nope/provision", "", {}).status, 404);
  ProvisionedStore("shop-b", 1);
  // Isolation only tightens; a rollback needs a release that was verified before.
  EXPECT_EQ(Call("POST", "/v1/stores/shop-b/isolation-migrations", R"({"isolation_mode": "shared"})", json_body).status,
            422);
  EXPECT_EQ(Call("POST", "/v1/stores/shop-b/rollbacks", "", {}).status, 409);
  EXPECT_EQ(Call("POST", "/v1/stores/shop-b/rollbacks", R"({"release": "r9"})", json_body).status, 409)
      << "a rollback goes back to a release verified before";
  EXPECT_EQ(ci_.count(), 1u) << "only the provisioning was triggered";
  EXPECT_TRUE(Json(Call("GET", "/v1/runs?active=true"))["items"].as_array().empty());
}

TEST_F(LifecycleTest, AProductionProvisionWaitsForApprovalAndThenRunsOnce) {
  WritePolicy(Policy(R"(approvals:
  - actions: [store.provision, deploy.request, rollback.request, store.decommission]
    environments: [production]
    approvals: 1
    approver_role: approver
    expires_after: 1h
)"));
  server_->SendSignal(SIGHUP);
  ASSERT_TRUE(WaitFor([&] { return server_->Logs().find("policy reloaded") != std::string::npos; }, 5s))
      << server_->Logs();
  ASSERT_EQ(Register("shop-p", "production").status, 201);
  auto held = Call("POST", "/v1/stores/shop-p/provision", "", {});
  ASSERT_EQ(held.status, 202) << held.body;
  const std::string change(Json(held)["id"].as_string());
  ASSERT_EQ(change.rfind("chg_", 0), 0u) << held.body;
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(ci_.count(), 0u) << "nothing is triggered before the approval";
  EXPECT_EQ(Store("shop-p")["state"].as_string(), "registered");

  // Bob's token comes from someone other than the requester (separation of duties).
  const auto keeper = CreateToken("keeper");
  auto minted = CallAs(keeper, "POST", "/v1/tokens", R"({"principal": "bob"})", {{"Content-Type", "application/json"}});
  ASSERT_EQ(minted.status, 201) << minted.body;
  const std::string bob(Json(minted)["token"].as_string());
  auto approved =
      CallAs(bob, "POST", "/v1/changes/" + change + "/approve", "{}", {{"Content-Type", "application/json"}});
  ASSERT_EQ(approved.status, 200) << approved.body;
  EXPECT_EQ(Json(approved)["status"].as_string(), "executed");
  auto trigger = ci_.WaitTrigger(1, 10s);
  ASSERT_TRUE(trigger);
  EXPECT_EQ(json::parse(trigger->body).as_object().at("kind").as_string(), "provision");
  EXPECT_EQ(Store("shop-p")["state"].as_string(), "provisioning");
  auto runs = Json(CallAs(bob, "GET", "/v1/runs?store=shop-p"));
  ASSERT_EQ(runs["items"].as_array().size(), 1u);
  EXPECT_EQ(runs["items"].as_array()[0].as_object().at("requested_by").as_string(), "admin");
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(ci_.count(), 1u);
}

// SIGKILL at random moments of deploy requests and their triggering: after each restart
// every run reaches a final state, and no run was ever triggered twice.
TEST_F(LifecycleTest, KilledAtAnyMomentTheRunsEndAndNoneIsTriggeredTwice) {
  ProvisionedStore("shop-a", 1);
  const auto url = server_->url();
  const std::vector<std::string> listen = {"--config", dir_->path() + "/config.yaml", "--listen",
                                           url.substr(url.find("//") + 2)};
  std::srand(42);
  for (int i = 0; i < 15; ++i) {
    std::thread request([&] {
      client::HttpClient http;
      (void)http.Send({"POST",
                       server_->url() + "/v1/stores/shop-a/deployments",
                       {{"Authorization", "Bearer " + token_}, {"Content-Type", "application/json"}},
                       R"({"release": "r)" + std::to_string(i) + R"("})",
                       2000});
    });
    std::this_thread::sleep_for(std::chrono::microseconds(std::rand() % 30000));
    server_->Kill();
    request.join();
    StartServer(listen);
    // Whatever was recorded is triggered (once) and then ended by its pipeline.
    ASSERT_TRUE(WaitFor(
        [&] {
          auto runs = Json(Call("GET", "/v1/runs?store=shop-a&active=true"));
          for (const auto& item : runs["items"].as_array()) {
            const auto& run = item.as_object();
            const std::string id(run.at("id").as_string());
            if (run.at("state").as_string() != "pending") {
              (void)Callback(Outcome(id, "failed"), "end-" + id);
            }
          }
          return runs["items"].as_array().empty();
        },
        20s))
        << "iteration " << i << ": " << server_->Logs();
  }
  std::map<std::string, int> triggered;
  for (const auto& t : ci_.all())
    ++triggered[std::string(json::parse(t.body).as_object().at("correlation_id").as_string())];
  for (const auto& [id, n] : triggered) EXPECT_EQ(n, 1) << id << " was triggered " << n << " times";
  auto runs = Json(Call("GET", "/v1/runs?store=shop-a&limit=100"));
  for (const auto& item : runs["items"].as_array()) {
    const auto& run = item.as_object();
    EXPECT_FALSE(run.at("active").as_bool()) << json::serialize(run);
    if (run.at("kind").as_string() == "deploy") {
      EXPECT_TRUE(triggered.contains(std::string(run.at("id").as_string()))) << "a recorded run was never triggered";
    }
  }
}

TEST_F(LifecycleTest, ADeployThatChangedTheSchemaIsNeverRolledBackAutomatically) {
  ProvisionedStore("shop-a", 1);
  auto deploy =
      Call("POST", "/v1/stores/shop-a/deployments", R"({"release": "r5"})", {{"Content-Type", "application/json"}});
  ASSERT_EQ(deploy.status, 202) << deploy.body;
  const std::string id(Json(deploy)["id"].as_string());
  ASSERT_TRUE(ci_.WaitTrigger(2, 10s));
  ASSERT_EQ(
      Callback(R"({"correlation_id": ")" + id + R"(", "status": "succeeded", "schema_changed": true})", "d5").status,
      200);
  EXPECT_TRUE(Run(id)["schema_changed"].as_bool());
  // No agent shows r5: the gate fails when its window ends, and nothing is rolled back.
  ASSERT_TRUE(WaitRunState(id, "verification_failed", 15s));
  std::this_thread::sleep_for(1500ms);
  EXPECT_EQ(ci_.count(), 2u) << "no rollback was triggered";
  EXPECT_TRUE(Json(Call("GET", "/v1/runs?store=shop-a&active=true"))["items"].as_array().empty());
  const auto flags = json::serialize(Json(Call("GET", "/v1/stores/shop-a/health"))["flags"]);
  EXPECT_NE(flags.find("rollback_held_schema_changed:" + id), std::string::npos) << flags;
  EXPECT_TRUE(WaitFor(
      [&] {
        const auto audit = Json(Call("GET", "/v1/audit?action=rollback.automatic"));
        const auto& items = audit.at("items").as_array();
        return items.size() == 1 && items[0].as_object().at("outcome").as_string() == "error:held";
      },
      5s));
}

TEST_F(LifecycleTest, DecommissionEndsInATombstoneAndAFailedOneCanBeRetried) {
  ProvisionedStore("shop-a", 1);
  const std::string failed(Json(Call("POST", "/v1/stores/shop-a/decommission", "", {}))["id"].as_string());
  EXPECT_EQ(Store("shop-a")["state"].as_string(), "decommissioning");
  ASSERT_TRUE(WaitRunState(failed, "triggered"));
  ASSERT_EQ(Callback(Outcome(failed, "failed"), "dec-1").status, 200);
  EXPECT_EQ(Store("shop-a")["state"].as_string(), "decommission_failed");

  auto again = Call("POST", "/v1/stores/shop-a/decommission", "", {});
  ASSERT_EQ(again.status, 202) << again.body;
  const std::string second(Json(again)["id"].as_string());
  ASSERT_TRUE(WaitRunState(second, "triggered"));
  ASSERT_EQ(Callback(Outcome(second, "succeeded"), "dec-2").status, 200);
  EXPECT_EQ(Store("shop-a")["state"].as_string(), "decommissioned");
  // The tombstone is kept, and nothing more happens to it.
  EXPECT_EQ(Call("POST", "/v1/stores/shop-a/provision", "", {}).status, 409);
  EXPECT_EQ(Call("POST", "/v1/stores/shop-a/decommission", "", {}).status, 409);
}

TEST_F(LifecycleTest, IsolationTightensOnlyThroughASuccessfulMigrationRun) {
  ProvisionedStore("shop-a", 1);
  auto resp = Call("POST", "/v1/stores/shop-a/isolation-migrations", R"({"isolation_mode": "dedicated"})",
                   {{"Content-Type", "application/json"}});
  ASSERT_EQ(resp.status, 202) << resp.body;
  const std::string id(Json(resp)["id"].as_string());
  auto trigger = ci_.WaitTrigger(2, 10s);
  ASSERT_TRUE(trigger);
  auto facts = json::parse(trigger->body).as_object();
  EXPECT_EQ(facts["kind"].as_string(), "isolation_migration");
  EXPECT_EQ(facts["isolation_mode"].as_string(), "dedicated") << "the pipeline builds the target mode";
  EXPECT_EQ(Store("shop-a")["isolation_mode"].as_string(), "shared") << "not before the run succeeds";
  ASSERT_TRUE(WaitRunState(id, "triggered"));
  ASSERT_EQ(Callback(Outcome(id, "succeeded"), "iso-1").status, 200);
  EXPECT_EQ(Store("shop-a")["isolation_mode"].as_string(), "dedicated");
}

TEST_F(LifecycleTest, ARunWithoutAnOutcomeTimesOut) {
  // run_timeout_s is 60 in this fixture; restart with the minimum, 10 s.
  std::ofstream(dir_->path() + "/config.yaml", std::ios::app) << "";
  {
    std::ifstream in(dir_->path() + "/config.yaml");
    std::stringstream text;
    text << in.rdbuf();
    auto config = text.str();
    config.replace(config.find("run_timeout_s: 60"), 17, "run_timeout_s: 10");
    std::ofstream(dir_->path() + "/config.yaml", std::ios::trunc) << config;
  }
  StartServer({"--config", dir_->path() + "/config.yaml"});
  ASSERT_EQ(Register("shop-a", "staging").status, 201);
  const std::string id(Json(Call("POST", "/v1/stores/shop-a/provision", "", {}))["id"].as_string());
  ASSERT_TRUE(WaitRunState(id, "triggered"));
  ASSERT_TRUE(WaitRunState(id, "timed_out", 15s)) << json::serialize(Run(id));
  EXPECT_EQ(Store("shop-a")["state"].as_string(), "provision_failed");
  // A late outcome changes nothing.
  EXPECT_EQ(Callback(Outcome(id, "succeeded"), "late").status, 200);
  EXPECT_EQ(Run(id)["state"].as_string(), "timed_out");
  EXPECT_EQ(Store("shop-a")["state"].as_string(), "provision_failed");
}

TEST_F(LifecycleTest, ADeployIsVerifiedByTheAgentAndAFailedGateRollsBackOnce) {
  ProvisionedStore("shop-a", 1);
  StartAgent("shop-a", "r1");

  // r1 goes out, the pipeline "installs" it, the agent reports it healthy: verified.
  auto deploy =
      Call("POST", "/v1/stores/shop-a/deployments", R"({"release": "r1"})", {{"Content-Type", "application/json"}});
  ASSERT_EQ(deploy.status, 202) << deploy.body << json::serialize(Json(Call("GET", "/v1/runs?store=shop-a")));
  const std::string first(Json(deploy)["id"].as_string());
  ASSERT_TRUE(ci_.WaitTrigger(2, 10s));
  ASSERT_EQ(Callback(Outcome(first, "succeeded"), "d-first").status, 200);
  ASSERT_TRUE(WaitRunState(first, "verified", 10s)) << json::serialize(Run(first));
  EXPECT_EQ(Store("shop-a")["current_release"].as_string(), "r1");
  EXPECT_EQ(Store("shop-a")["last_known_good_release"].as_string(), "r1");

  // r2's pipeline "succeeds" but the store never shows r2: the gate fails after its window
  // and one automatic rollback to r1 is triggered.
  auto bad =
      Call("POST", "/v1/stores/shop-a/deployments", R"({"release": "r2"})", {{"Content-Type", "application/json"}});
  ASSERT_EQ(bad.status, 202) << bad.body;
  const std::string second(Json(bad)["id"].as_string());
  ASSERT_TRUE(ci_.WaitTrigger(3, 10s));
  ASSERT_EQ(Callback(Outcome(second, "succeeded"), "d-second").status, 200);
  EXPECT_EQ(Run(second)["state"].as_string(), "verifying");
  ASSERT_TRUE(WaitRunState(second, "verification_failed", 15s)) << json::serialize(Run(second));
  auto rollback_trigger = ci_.WaitTrigger(4, 10s);
  ASSERT_TRUE(rollback_trigger);
  auto facts = json::parse(rollback_trigger->body).as_object();
  EXPECT_EQ(facts["kind"].as_string(), "rollback");
  EXPECT_EQ(facts["release"].as_string(), "r1");
  auto runs = Json(Call("GET", "/v1/runs?store=shop-a&active=true"));
  ASSERT_EQ(runs["items"].as_array().size(), 1u);
  const auto& rollback = runs["items"].as_array()[0].as_object();
  EXPECT_EQ(rollback.at("requested_by").as_string(), "system");
  EXPECT_NE(std::string(rollback.at("reason").as_string()).find(second), std::string::npos);
  auto automatic = Json(Call("GET", "/v1/audit?action=rollback.automatic"));
  EXPECT_EQ(automatic["items"].as_array().size(), 1u);

  // The rollback's pipeline fails: automation stops, and the store is flagged for an operator.
  const std::string rollback_id(rollback.at("id").as_string());
  ASSERT_TRUE(WaitRunState(rollback_id, "triggered"));
  ASSERT_EQ(Callback(Outcome(rollback_id, "failed"), "d-rollback").status, 200);
  auto health = Json(Call("GET", "/v1/stores/shop-a/health"));
  const auto flags = json::serialize(health["flags"]);
  EXPECT_NE(flags.find("automatic_rollback_failed:" + rollback_id), std::string::npos) << flags;
  std::this_thread::sleep_for(1500ms);
  EXPECT_TRUE(Json(Call("GET", "/v1/runs?store=shop-a&active=true"))["items"].as_array().empty())
      << "no second automatic rollback";
}

// ---- Deploy windows and break-glass ------------------------------------------------------
// The server's clock cannot be set, so the windows are written relative to now: "* * * * *"
// for one minute is always active; an allow window at (now + 12h) is not active now.

class DeployWindowTest : public LifecycleTest {
 protected:
  // The lifecycle roles, `extra` appended (approvals, windows), and window.read for admin.
  static std::string WindowPolicy(const std::string& extra) {
    std::string policy = Policy(extra);
    const std::string from = "change.read, principal.whoami]";
    policy.replace(policy.find(from), from.size(), "change.read, principal.whoami, window.read]");
    return policy;
  }
  void Reload(const std::string& policy) {
    const auto before = Count(server_->Logs(), "policy reloaded");
    WritePolicy(policy);
    server_->SendSignal(SIGHUP);
    ASSERT_TRUE(WaitFor([&] { return Count(server_->Logs(), "policy reloaded") > before; }, 5s)) << server_->Logs();
  }
  static std::size_t Count(const std::string& text, const std::string& what) {
    std::size_t n = 0;
    for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
  }
  // An active store in `env`, provisioned through the fake CI (provisions are not windowed).
  void ActiveStore(const std::string& id, const std::string& env, std::size_t trigger_no) {
    ASSERT_EQ(Register(id, env).status, 201);
    auto resp = Call("POST", "/v1/stores/" + id + "/provision", "", {});
    ASSERT_EQ(resp.status, 202) << resp.body;
    const std::string run(Json(resp)["id"].as_string());
    ASSERT_TRUE(ci_.WaitTrigger(trigger_no, 10s));
    ASSERT_TRUE(WaitRunState(run, "triggered"));
    ASSERT_EQ(Callback(Outcome(run, "succeeded"), "d-prov-" + id).status, 200);
    ASSERT_EQ(Store(id)["state"].as_string(), "active");
  }
  client::HttpResponse Deploy(const std::string& id, const std::string& release, const std::string& reason = "") {
    std::string body = R"({"release": ")" + release + "\"";
    if (!reason.empty()) body += R"(, "break_glass": {"reason": ")" + reason + "\"}";
    body += "}";
    return Call("POST", "/v1/stores/" + id + "/deployments", body, {{"Content-Type", "application/json"}});
  }
  // A token for bob (approver) minted by keeper, not by the requester.
  std::string BobToken() {
    const auto keeper = CreateToken("keeper");
    auto minted =
        CallAs(keeper, "POST", "/v1/tokens", R"({"principal": "bob"})", {{"Content-Type", "application/json"}});
    EXPECT_EQ(minted.status, 201) << minted.body;
    return std::string(Json(minted)["token"].as_string());
  }
  std::size_t RunsOf(const std::string& store) {
    return Json(Call("GET", "/v1/runs?store=" + store))["items"].as_array().size();
  }
  // The UTC hour twelve hours from now, and the next time it starts.
  static int FarHour() {
    const auto now = std::chrono::system_clock::now();
    const auto hours = std::chrono::duration_cast<std::chrono::hours>(now.time_since_epoch()).count();
    return static_cast<int>((hours + 12) % 24);
  }
  static std::string NextStartOfFarHour() {
    const auto now = std::chrono::system_clock::now();
    const auto hours = std::chrono::duration_cast<std::chrono::hours>(now.time_since_epoch()).count();
    const std::time_t t = static_cast<std::time_t>((hours + 12) * 3600);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
    return buf;
  }
  static constexpr char kFreeze[] = R"(  - kind: deny
    schedule: "* * * * *"
    duration: 1m
    description: test freeze
)";
};

TEST_F(DeployWindowTest, OutsideAnAllowWindowADeployIsRefusedAndNothingIsRecordedOrTriggered) {
  Reload(WindowPolicy("windows:\n  - kind: allow\n    environments: [staging]\n    schedule: \"0 " +
                      std::to_string(FarHour()) + " * * *\"\n    duration: 1h\n    description: night shift\n"));
  ActiveStore("shop-w", "staging", 1);
  const auto runs_before = RunsOf("shop-w");
  auto refused = Deploy("shop-w", "r-2");
  ExpectProblem(refused, 409, "conflict");
  const auto problem = Json(refused);
  const std::string detail(problem.at("detail").as_string());
  EXPECT_NE(detail.find("outside every allow window: window/1 (night shift)"), std::string::npos) << detail;
  ASSERT_TRUE(problem.contains("next_open_at")) << refused.body;
  EXPECT_EQ(problem.at("next_open_at").as_string(), NextStartOfFarHour());
  EXPECT_NE(detail.find(NextStartOfFarHour()), std::string::npos) << detail;
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(RunsOf("shop-w"), runs_before) << "no run recorded";
  EXPECT_EQ(ci_.count(), 1u) << "no trigger sent";
  EXPECT_EQ(Json(Call("GET", "/v1/changes"))["items"].as_array().size(), 0u) << "no change recorded";
  // The refusal is audited with the window.
  auto audit = Json(Call("GET", "/v1/audit?action=deploy.request"));
  ASSERT_FALSE(audit["items"].as_array().empty());
  const auto& last = audit["items"].as_array().back().as_object();
  EXPECT_EQ(last.at("outcome").as_string(), "error:409");
  EXPECT_EQ(last.at("params").as_object().at("window").as_string(), "window/1");

  // The read API says the same; production has no window.
  auto windows = Call("GET", "/v1/deploy-windows");
  ASSERT_EQ(windows.status, 200) << windows.body;
  const auto body = Json(windows);
  EXPECT_EQ(body.at("action").as_string(), "deploy.request");
  ASSERT_EQ(body.at("windows").as_array().size(), 1u);
  EXPECT_EQ(body.at("windows").as_array()[0].as_object().at("duration").as_string(), "1h");
  for (const auto& e : body.at("environments").as_array()) {
    const auto& env = e.as_object();
    if (env.at("environment").as_string() == "staging") {
      EXPECT_FALSE(env.at("open").as_bool());
      EXPECT_EQ(env.at("next_open_at").as_string(), NextStartOfFarHour());
    } else {
      EXPECT_TRUE(env.at("open").as_bool()) << env.at("environment").as_string();
      EXPECT_TRUE(env.at("next_open_at").is_null());
    }
  }
  auto one = Json(Call("GET", "/v1/deploy-windows?environment=production&action=rollback.request"));
  EXPECT_EQ(one.at("environments").as_array().size(), 1u);
  EXPECT_TRUE(one.at("windows").as_array().empty()) << "the staging window is not production's";
  ExpectProblem(Call("GET", "/v1/deploy-windows?environment=prod"), 422, "validation-failed");
  ExpectProblem(Call("GET", "/v1/deploy-windows?action=store.read"), 422, "validation-failed");
  // bob (approver) lacks window.read in this test policy.
  ExpectProblem(CallAs(BobToken(), "GET", "/v1/deploy-windows"), 403, "forbidden");
}

TEST_F(DeployWindowTest, InsideAWindowADeployRunsAndAFreezeAddedBySighupBeatsTheAllow) {
  const std::string allow = "windows:\n  - kind: allow\n    schedule: \"* * * * *\"\n    duration: 1m\n";
  Reload(WindowPolicy(allow));
  ActiveStore("shop-a", "staging", 1);
  ActiveStore("shop-b", "staging", 2);
  // Inside the window; a break_glass reason is not needed and is ignored.
  auto deployed = Deploy("shop-a", "r-2", "not needed but harmless");
  ASSERT_EQ(deployed.status, 202) << deployed.body;
  EXPECT_EQ(std::string(Json(deployed)["id"].as_string()).rfind("run_", 0), 0u) << deployed.body;
  ASSERT_TRUE(ci_.WaitTrigger(3, 10s));

  // A freeze added by a reload, without a restart: deny beats the active allow.
  Reload(WindowPolicy(allow + kFreeze));
  auto refused = Deploy("shop-b", "r-2");
  ExpectProblem(refused, 409, "conflict");
  const auto problem = Json(refused);
  EXPECT_NE(problem.at("detail").as_string().find("closed by deny window window/2 (test freeze)"), std::string::npos)
      << refused.body;
  EXPECT_FALSE(problem.contains("next_open_at")) << "an every-minute freeze never ends";
  EXPECT_NE(problem.at("detail").as_string().find("does not open within 366 days"), std::string::npos);
  // Rollbacks are not held: the freeze names only deploy.request.
  auto rollback = Json(Call("GET", "/v1/deploy-windows?environment=staging&action=rollback.request"));
  EXPECT_TRUE(rollback.at("environments").as_array()[0].as_object().at("open").as_bool());
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(ci_.count(), 3u);
}

TEST_F(DeployWindowTest, BreakGlassNeedsAnotherPrincipalsApprovalThenRunsOnceIgnoringTheFreeze) {
  // Production deploys need approval too: one break-glass change covers both.
  Reload(WindowPolicy(std::string("approvals:\n  - actions: [deploy.request]\n    environments: [production]\n"
                                  "    approver_role: approver\nwindows:\n") +
                      kFreeze));
  ActiveStore("shop-p", "production", 1);
  ExpectProblem(Deploy("shop-p", "r-2", "too short"), 422, "validation-failed");
  ExpectProblem(Deploy("shop-p", "r-2", "key ghp_abcdefghijklmnopqrstuvwxyz0123456789 leaked"), 422,
                "validation-failed");
  auto held = Deploy("shop-p", "r-2", "INC-4711 checkout broken, hotfix");
  ASSERT_EQ(held.status, 202) << held.body;
  const auto change = Json(held);
  const std::string id(change.at("id").as_string());
  EXPECT_EQ(change.at("approval_rule").as_string(), "break-glass");
  EXPECT_EQ(change.at("status").as_string(), "pending");
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(ci_.count(), 1u) << "nothing triggered before the approval";

  // The requester cannot approve its own break-glass change.
  auto self = Call("POST", "/v1/changes/" + id + "/approve", "{}", {{"Content-Type", "application/json"}});
  ExpectProblem(self, 403, "forbidden");

  auto approved =
      CallAs(BobToken(), "POST", "/v1/changes/" + id + "/approve", "{}", {{"Content-Type", "application/json"}});
  ASSERT_EQ(approved.status, 200) << approved.body;
  EXPECT_EQ(Json(approved)["status"].as_string(), "executed") << approved.body;
  auto trigger = ci_.WaitTrigger(2, 10s);
  ASSERT_TRUE(trigger);
  EXPECT_EQ(json::parse(trigger->body).as_object().at("kind").as_string(), "deploy");
  auto runs = Json(Call("GET", "/v1/runs?store=shop-p"))["items"].as_array();
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[0].as_object().at("requested_by").as_string(), "admin");
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(ci_.count(), 2u) << "triggered once";

  // Every step is audited with break_glass and the reason.
  int marked = 0;
  const auto audit = Json(Call("GET", "/v1/audit?limit=1000"));
  for (const auto& item : audit.at("items").as_array()) {
    const auto& params = item.as_object().at("params").as_object();
    if (params.contains("break_glass") && params.at("break_glass").as_string() == "true") {
      EXPECT_EQ(params.at("break_glass_reason").as_string(), "INC-4711 checkout broken, hotfix");
      ++marked;
    }
  }
  EXPECT_GE(marked, 3) << "request, approval and execution (and the refused self-approval)";
}

TEST_F(DeployWindowTest, AnApprovedChangeThatExecutesAfterItsWindowClosedIsRefused) {
  const std::string approvals =
      "approvals:\n  - actions: [deploy.request]\n    environments: [production]\n    approver_role: approver\n";
  Reload(WindowPolicy(approvals));
  ActiveStore("shop-q", "production", 1);
  auto held = Deploy("shop-q", "r-2");
  ASSERT_EQ(held.status, 202) << held.body;
  const std::string id(Json(held).at("id").as_string());
  // The window closes before the approval lands.
  Reload(WindowPolicy(approvals + "windows:\n" + kFreeze));
  auto approved =
      CallAs(BobToken(), "POST", "/v1/changes/" + id + "/approve", "{}", {{"Content-Type", "application/json"}});
  ASSERT_EQ(approved.status, 200) << approved.body;
  const auto change = Json(approved);
  EXPECT_EQ(change.at("status").as_string(), "failed") << approved.body;
  EXPECT_NE(change.at("outcome").as_string().find("outside its deploy window"), std::string::npos) << approved.body;
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(ci_.count(), 1u) << "no deploy triggered";
  EXPECT_EQ(RunsOf("shop-q"), 1u);
}

}  // namespace
}  // namespace storeplane::testing
