// Three storeplaned replicas on one PostgreSQL behind a load balancer (ADR 0012, issue 8):
// real shop-agents heartbeat and long-poll through the balancer while a fleet rollout
// deploys through a webhook CI, and the leader is killed with SIGKILL mid-rollout. Then:
// another replica leads within the lease, the rollout and every run finish, no store is
// triggered twice, no agent is ever reported lost (offline), and the audit chain (with its
// signed checkpoints) verifies across the failover.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <boost/json.hpp>
#include <chrono>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "client/http_client.h"
#include "core/audit.h"
#include "core/callback_signature.h"
#include "db/pg_handle.h"
#include "tests/integration/fake_ci.h"
#include "tests/support/agent_process.h"
#include "tests/support/postgres_database.h"
#include "tests/support/postgres_process.h"
#include "tests/support/server_process.h"
#include "tests/support/tcp_balancer.h"

namespace storeplane::testing {
namespace {

namespace json = boost::json;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr char kTriggerSecret[] = "failover-trigger-secret-0123456789";
constexpr char kCallbackSecret[] = "failover-callback-secret-9876543210";
constexpr int kLeaseMs = 3000;
constexpr int kRenewMs = 500;
constexpr int kMarginMs = 1000;
constexpr int kStores = 8;

std::int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string Text(const json::value& v, const char* key) {
  if (!v.is_object()) return "";
  const auto* x = v.as_object().if_contains(key);
  return x != nullptr && x->is_string() ? std::string(x->as_string()) : std::string();
}

json::value Parse(const std::string& body) {
  boost::system::error_code ec;
  auto v = json::parse(body, ec);
  return ec ? json::value() : v;
}

// The CI behind the fake webhook provider: each trigger's pipeline takes a moment, installs
// the release into the store's fake Magento (so its agent reports it and the health gate
// passes), then calls back `succeeded` at the trigger's callback URL (the balancer), retried
// while no replica takes it.
class Pipeline {
 public:
  explicit Pipeline(std::chrono::milliseconds work) : work_(work), worker_([this] { Work(); }) {}
  ~Pipeline() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    worker_.join();
  }
  void SetMagento(const std::string& store, const std::string& dir) {
    std::lock_guard lock(mu_);
    magento_[store] = dir;
  }
  void Handle(const FakeCi::Trigger& trigger) {
    auto body = Parse(trigger.body);
    std::lock_guard lock(mu_);
    jobs_.push_back(Job{Text(body, "correlation_id"), Text(body, "store_id"), Text(body, "kind"), Text(body, "release"),
                        Text(body, "callback_url")});
    cv_.notify_all();
  }
  std::vector<std::string> Errors() {
    std::lock_guard lock(mu_);
    return errors_;
  }

 private:
  struct Job {
    std::string run, store, kind, release, callback_url;
  };

  void Work() {
    client::HttpClient http;
    std::unique_lock lock(mu_);
    while (true) {
      cv_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
      if (stopping_) return;
      Job job = jobs_.front();
      jobs_.pop_front();
      const std::string dir = magento_.count(job.store) ? magento_[job.store] : "";
      lock.unlock();
      std::this_thread::sleep_for(work_);
      if (!dir.empty() && !job.release.empty() && (job.kind == "deploy" || job.kind == "rollback")) {
        { std::ofstream(dir + "/.storeplane-release.tmp", std::ios::trunc) << job.release << "\n"; }
        std::error_code ec;
        fs::rename(dir + "/.storeplane-release.tmp", dir + "/.storeplane-release", ec);
      }
      const std::string error = Deliver(http, job);
      lock.lock();
      if (!error.empty()) errors_.push_back(error);
    }
  }

  std::string Deliver(client::HttpClient& http, const Job& job) {
    const std::string body = R"({"correlation_id": ")" + job.run + R"(", "status": "succeeded"})";
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    std::string last;
    for (int attempt = 1; std::chrono::steady_clock::now() < deadline; ++attempt) {
      const std::int64_t ts = NowMs() / 1000;
      auto resp = http.Send({"POST",
                             job.callback_url,
                             {{"Content-Type", "application/json"},
                              {"X-Storeplane-Timestamp", std::to_string(ts)},
                              {"X-Storeplane-Signature", core::SignPayload(kCallbackSecret, ts, body)},
                              {"X-Storeplane-Delivery", "pipe-" + job.run + "-" + std::to_string(attempt)}},
                             body,
                             5000});
      if (resp.ok() && resp->status == 200) return "";
      if (resp.ok() && resp->status < 500) return "callback for " + job.run + " refused: " + resp->body;
      last = resp.ok() ? std::to_string(resp->status) : resp.error().message;
      std::this_thread::sleep_for(200ms);
      std::lock_guard lock(mu_);
      if (stopping_) return "";
    }
    return "callback for " + job.run + " never delivered: " + last;
  }

  const std::chrono::milliseconds work_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::map<std::string, std::string> magento_;
  std::deque<Job> jobs_;
  std::vector<std::string> errors_;
  std::thread worker_;
};

class FailoverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!PostgresAvailable()) {
      if (PostgresRequired()) FAIL() << "no PostgreSQL and STOREPLANE_REQUIRE_POSTGRES is set";
      GTEST_SKIP() << "no PostgreSQL server binaries and no STOREPLANE_TEST_POSTGRES";
    }
    std::string error;
    conninfo_ = FreshPostgresDatabase(&error);
    ASSERT_FALSE(conninfo_.empty()) << error;
    dir_ = std::make_unique<TempDir>();
    ci_.OnTrigger([this](const FakeCi::Trigger& t) { pipeline_.Handle(t); });
    std::ofstream(dir_->path() + "/trigger.secret") << kTriggerSecret << "\n";
    std::ofstream(dir_->path() + "/callback.secret") << kCallbackSecret << "\n";
    std::ofstream(dir_->path() + "/policy.yaml") << R"(version: 1
roles:
  operator:
    allow:
      - actions: [store.*, deploy.request, rollback.request, run.read, operation.*, agent.*, change.read,
                  principal.whoami, window.read, rollout.*, audit.read, audit.export, event.watch]
principals:
  admin:
    kind: operator
    roles: [operator]
)";
  }

  void TearDown() override {
    for (auto& agent : agents_) {
      if (agent && agent->running()) agent->Stop();
    }
    balancer_.reset();
    for (auto& replica : replicas_) {
      if (replica && replica->running()) replica->Stop();
    }
    for (const auto& e : pipeline_.Errors()) ADD_FAILURE() << "pipeline: " << e;
  }

  // Replica `i` (0-based) on the shared database, listening on `port` (fixed, so that the
  // balancer can be set up before the replicas start and a restart keeps the address).
  std::unique_ptr<ServerProcess> MakeReplica(int i) {
    const std::string data = dir_->path() + "/replica-" + std::to_string(i);
    fs::create_directories(data);
    std::ofstream(data + "/config.yaml") << "cicd:\n"
                                         << "  public_url: " << balancer_->url() << "\n"
                                         << "  run_timeout_s: 120\n"
                                         << "  poll_interval_s: 3600\n"
                                         << "  health_gate: {consecutive: 2, window_s: 10}\n"
                                         << "  providers:\n"
                                         << "    hook:\n"
                                         << "      type: webhook\n"
                                         << "      base_url: " << ci_.url() << "\n"
                                         << "      secret_file: " << dir_->path() << "/trigger.secret\n"
                                         << "      callback_secret_file: " << dir_->path() << "/callback.secret\n"
                                         << "  routes:\n"
                                         << "    - provider: hook\n"
                                         << "replica:\n"
                                         << "  name: replica-" << i << "\n"
                                         << "  lease_ms: " << kLeaseMs << "\n"
                                         << "  renew_ms: " << kRenewMs << "\n"
                                         << "  margin_ms: " << kMarginMs << "\n";
    ServerOptions options;
    options.data_dir = data;
    options.extra_args = {"--config",
                          data + "/config.yaml",
                          "--listen",
                          "127.0.0.1:" + std::to_string(ports_[static_cast<std::size_t>(i)]),
                          "--admin-token-file",
                          dir_->path() + "/admin.token",
                          "--audit-signing-key",
                          dir_->path() + "/audit-signing.key",
                          "--policy",
                          dir_->path() + "/policy.yaml"};
    options.env = {"STOREPLANE_STORAGE_DRIVER=postgres", "STOREPLANE_POSTGRES_CONNINFO=" + conninfo_,
                   "STOREPLANE_AGENTS_HEARTBEAT_INTERVAL_S=2"};
    return std::make_unique<ServerProcess>(options);
  }

  // Free loopback ports for the replicas, then the balancer over them.
  void StartCluster() {
    for (int i = 0; i < 3; ++i) {
      TcpBalancer probe({});  // binds port 0: a free port, released when it goes
      ports_.push_back(std::stoi(probe.url().substr(probe.url().rfind(':') + 1)));
    }
    std::vector<std::string> backends;
    for (int port : ports_) backends.push_back("127.0.0.1:" + std::to_string(port));
    balancer_ = std::make_unique<TcpBalancer>(backends);
    ASSERT_TRUE(balancer_->ok());
    for (int i = 0; i < 3; ++i) {
      replicas_.push_back(MakeReplica(i));
      ASSERT_TRUE(replicas_.back()->Start()) << replicas_.back()->error() << replicas_.back()->Logs();
      if (i == 0) token_ = replicas_[0]->token();  // the first start creates the admin token
    }
    ASSERT_FALSE(token_.empty());
  }

  client::HttpResponse CallAt(const std::string& base, const std::string& method, const std::string& path,
                              const std::string& body = "") {
    std::vector<std::pair<std::string, std::string>> headers = {{"Authorization", "Bearer " + token_}};
    if (!body.empty()) headers.emplace_back("Content-Type", "application/json");
    auto resp = http_.Send({method, base + path, headers, body, 10000});
    if (!resp.ok()) return client::HttpResponse{0, {}, resp.error().message};
    return *resp;
  }
  client::HttpResponse Call(const std::string& method, const std::string& path, const std::string& body = "") {
    return CallAt(balancer_->url(), method, path, body);
  }

  // The index of the replica that says it leads, or -1.
  int Leader() {
    for (std::size_t i = 0; i < replicas_.size(); ++i) {
      if (!replicas_[i]->running()) continue;
      auto resp = CallAt(replicas_[i]->url(), "GET", "/readyz");
      if (resp.status == 200 && Text(Parse(resp.body), "role") == "leader") return static_cast<int>(i);
    }
    return -1;
  }
  int Leaders() {
    int n = 0;
    for (auto& replica : replicas_) {
      if (!replica->running()) continue;
      auto resp = CallAt(replica->url(), "GET", "/readyz");
      if (resp.status == 200 && Text(Parse(resp.body), "role") == "leader") ++n;
    }
    return n;
  }

  bool WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (condition()) return true;
      std::this_thread::sleep_for(100ms);
    }
    return condition();
  }

  std::string StoreState(const std::string& id) { return Text(Parse(Call("GET", "/v1/stores/" + id).body), "state"); }

  // Stores shop-1..shop-n, provisioned and active, each with a real agent (through the
  // balancer) on a fake Magento at r1, healthy.
  void Fleet() {
    for (int i = 1; i <= kStores; ++i) {
      const std::string id = "shop-" + std::to_string(i);
      ids_.push_back(id);
      auto reg =
          Call("POST", "/v1/stores",
               R"({"id": ")" + id + R"(", "name": "Shop", "environment": "staging", "isolation_mode": "shared"})");
      ASSERT_EQ(reg.status, 201) << reg.body;
      auto prov = Call("POST", "/v1/stores/" + id + "/provision");
      ASSERT_EQ(prov.status, 202) << prov.body;
    }
    ASSERT_TRUE(WaitFor(
        [&] {
          for (const auto& id : ids_)
            if (StoreState(id) != "active") return false;
          return true;
        },
        30s));
    for (const auto& id : ids_) {
      const auto magento = dir_->path() + "/magento-" + id;
      ASSERT_TRUE(AgentProcess::CopyFakeMagento(magento));
      std::ofstream(magento + "/.storeplane-release") << "r1\n";
      std::ofstream(magento + "/var/.storeplane-cron") << "";
      pipeline_.SetMagento(id, magento);
      auto token = Call("POST", "/v1/stores/" + id + "/enrollment-tokens");
      ASSERT_EQ(token.status, 201) << token.body;
      const auto config = dir_->path() + "/agent-" + id + ".yaml";
      std::ofstream(config) << "control_plane_url: " << balancer_->url() << "\nstore_id: " << id
                            << "\ncredential_file: " << dir_->path() << "/cred-" << id
                            << "\nstate_dir: " << dir_->path() << "/state-" << id << "\nmagento_root: " << magento
                            << "\nphp_binary: " << magento << "/php\nisolation_mode: shared\n"
                            << "allowed_operations: [health.probe]\n";
      auto agent = std::make_unique<AgentProcess>(
          config, dir_->path() + "/agent-" + id + ".log",
          std::vector<std::string>{"SHOP_AGENT_ENROLLMENT_TOKEN=" + Text(Parse(token.body), "token")});
      ASSERT_TRUE(agent->Start());
      agents_.push_back(std::move(agent));
    }
    ASSERT_TRUE(WaitFor(
        [&] {
          for (const auto& id : ids_) {
            auto health = Parse(Call("GET", "/v1/stores/" + id + "/health").body);
            if (Text(health, "health") != "healthy" || Text(health, "release") != "r1") return false;
          }
          return true;
        },
        30s));
  }

  std::string conninfo_;
  std::unique_ptr<TempDir> dir_;
  FakeCi ci_;
  Pipeline pipeline_{1500ms};
  std::vector<int> ports_;
  std::unique_ptr<TcpBalancer> balancer_;
  std::vector<std::unique_ptr<ServerProcess>> replicas_;
  std::vector<std::unique_ptr<AgentProcess>> agents_;
  std::vector<std::string> ids_;
  std::string token_;
  client::HttpClient http_;
};

TEST_F(FailoverTest, TheLeaderKilledMidRolloutIsReplacedWithinTheLeaseAndNothingIsLostOrDoneTwice) {
  StartCluster();
  ASSERT_FALSE(HasFailure());
  ASSERT_TRUE(WaitFor([&] { return Leader() >= 0; }, 10s));
  EXPECT_EQ(Leaders(), 1);
  Fleet();
  ASSERT_FALSE(HasFailure());
  // Every replica has seen every agent (each refreshes from the database once a second)
  // before the sampling starts: from then on, no replica may judge one lost.
  ASSERT_TRUE(WaitFor(
      [&] {
        for (const auto& replica : replicas_) {
          for (const auto& id : ids_) {
            auto view = Parse(CallAt(replica->url(), "GET", "/v1/stores/" + id + "/agent").body);
            if (Text(view, "availability") != "online") return false;
          }
        }
        return true;
      },
      30s));
  const std::int64_t fleet_ready_ms = NowMs();
  const std::size_t triggers_before = ci_.count();

  // Every agent's availability, sampled all along through the balancer: never anything but online.
  std::atomic<bool> sampling{true};
  std::mutex seen_mu;
  std::set<std::string> seen_availability;
  std::atomic<int> samples{0};
  std::thread sampler([&] {
    client::HttpClient http;
    while (sampling) {
      for (const auto& id : ids_) {
        auto resp = http.Send({"GET",
                               balancer_->url() + "/v1/stores/" + id + "/agent",
                               {{"Authorization", "Bearer " + token_}},
                               "",
                               5000});
        if (!resp.ok() || resp->status != 200) continue;  // a connection to the killed replica
        const auto availability = Text(Parse(resp->body), "availability");
        std::lock_guard lock(seen_mu);
        seen_availability.insert(id + ":" + availability);
        ++samples;
      }
      std::this_thread::sleep_for(100ms);
    }
  });

  // A rollout of r2: a canary, then waves, two runs at a time.
  auto created = Call("POST", "/v1/rollouts",
                      R"({"release": "r2", "selector": {"environment": "staging"},
                          "waves": {"canary_size": 1, "growth_factor": 2}, "max_concurrent": 2})");
  ASSERT_EQ(created.status, 201) << created.body;
  const std::string rollout = Text(Parse(created.body), "id");

  // Kill the leader once two stores are verified on r2 and the rollout is still going.
  auto verified_r2 = [&] {
    int n = 0;
    for (const auto& id : ids_) {
      auto health = Parse(Call("GET", "/v1/stores/" + id + "/health").body);
      if (Text(health, "release") == "r2") ++n;
    }
    return n;
  };
  ASSERT_TRUE(WaitFor([&] { return verified_r2() >= 2; }, 60s));
  const int old_leader = Leader();
  ASSERT_GE(old_leader, 0);
  ASSERT_EQ(Text(Parse(Call("GET", "/v1/rollouts/" + rollout).body), "state"), "running")
      << "the rollout ended before the failover";
  const auto killed_at = std::chrono::steady_clock::now();
  replicas_[static_cast<std::size_t>(old_leader)]->Kill();
  int new_leader = -1;
  ASSERT_TRUE(WaitFor(
      [&] {
        new_leader = Leader();
        return new_leader >= 0;
      },
      20s));
  const auto takeover_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - killed_at).count();
  RecordProperty("takeover_ms", std::to_string(takeover_ms));
  std::printf("[ info     ] replica-%d led; killed; replica-%d leads %lld ms later (lease %d ms)\n", old_leader,
              new_leader, static_cast<long long>(takeover_ms), kLeaseMs);
  EXPECT_NE(new_leader, old_leader);
  // Within the lease (counted from the last renewal before the kill), plus one renewal
  // period to notice, plus the sampling above.
  EXPECT_LE(takeover_ms, kLeaseMs + kRenewMs + 700);
  EXPECT_EQ(Leaders(), 1);

  // The rollout finishes on the new leader; every store is on r2.
  ASSERT_TRUE(
      WaitFor([&] { return Text(Parse(Call("GET", "/v1/rollouts/" + rollout).body), "state") == "succeeded"; }, 120s))
      << Call("GET", "/v1/rollouts/" + rollout).body;
  EXPECT_EQ(verified_r2(), kStores);
  sampling = false;
  sampler.join();

  // Every run finished.
  auto active = Parse(Call("GET", "/v1/runs?active=true&limit=100").body);
  ASSERT_TRUE(active.is_object()) << "runs list";
  EXPECT_TRUE(active.as_object()["items"].as_array().empty()) << json::serialize(active);

  // No pipeline triggered twice: one deploy trigger of r2 per store.
  std::map<std::string, int> deploys;
  const auto all = ci_.all();
  for (std::size_t i = triggers_before; i < all.size(); ++i) {
    auto body = Parse(all[i].body);
    if (Text(body, "kind") == "deploy" && Text(body, "release") == "r2") ++deploys[Text(body, "store_id")];
  }
  for (const auto& id : ids_) EXPECT_EQ(deploys[id], 1) << id << " was triggered " << deploys[id] << " times";

  // No agent was ever reported lost: every sample said online, and no status event since
  // the fleet was ready says otherwise.
  // An agent whose connection went to the killed replica is late by its retry (it may read
  // `stale` for a moment, which is true); it is never judged lost (`offline`).
  EXPECT_GT(samples.load(), 100);
  int stale = 0;
  for (const auto& seen : seen_availability) {
    EXPECT_FALSE(seen.ends_with(":offline")) << seen;
    EXPECT_FALSE(seen.ends_with(":never_seen")) << seen;
    if (seen.ends_with(":stale")) ++stale;
  }
  std::printf("[ info     ] %d availability samples; %d of the agents were seen stale for a moment\n", samples.load(),
              stale);
  auto conn = db::pg::PgConnection::Open(conninfo_);
  ASSERT_TRUE(conn.ok()) << conn.error().message;
  auto lost = conn->Exec(
      "SELECT count(*) FROM events WHERE type = 'agent.status' AND at_ms > $1 AND data_json LIKE "
      "'%\"availability\":\"offline\"%'",
      db::pg::Params().Add(fleet_ready_ms), "count status events");
  ASSERT_TRUE(lost.ok()) << lost.error().message;
  EXPECT_EQ(lost->Int64(0, 0), 0) << "status events reported an agent lost";

  // The audit chain verifies across the failover, checkpoints signed by every leader included.
  auto key = Parse(Call("GET", "/v1/audit/public-key").body);
  const std::string public_pem = Text(key, "public_key_pem");
  ASSERT_FALSE(public_pem.empty()) << json::serialize(key);
  std::size_t listed = 0;  // every record, as the API lists them page by page
  std::string cursor;
  for (;;) {
    auto page = Parse(Call("GET", "/v1/audit?limit=1000" + (cursor.empty() ? "" : "&after=" + cursor)).body);
    ASSERT_TRUE(page.is_object());
    listed += page.as_object()["items"].as_array().size();
    cursor = Text(page, "next_cursor");
    if (cursor.empty()) break;
  }
  ASSERT_GT(listed, 0u);
  // The chain itself, as the database holds it.
  auto rows = conn->Exec(
      "SELECT seq, time_ms, principal, source, action, target, request_id, decision, rule, outcome, params_json, "
      "prev_hash, hash FROM audit_log ORDER BY seq",
      "read the audit trail");
  ASSERT_TRUE(rows.ok());
  // Reads are audited too (queued), so the trail grows as it is listed: the API listed at
  // least what the database held before.
  ASSERT_LE(static_cast<std::size_t>(rows->size()), listed + 5) << "the API lists every record";
  ASSERT_GE(static_cast<std::size_t>(rows->size()), listed);
  std::vector<core::AuditRecord> chain;
  for (int r = 0; r < rows->size(); ++r) {
    core::AuditRecord rec;
    rec.seq = rows->Int64(r, 0);
    rec.entry.time_ms = rows->Int64(r, 1);
    rec.entry.principal = rows->Text(r, 2);
    rec.entry.source = rows->Text(r, 3);
    rec.entry.action = rows->Text(r, 4);
    rec.entry.target = rows->Text(r, 5);
    rec.entry.request_id = rows->Text(r, 6);
    rec.entry.decision = rows->Text(r, 7);
    rec.entry.rule = rows->Text(r, 8);
    rec.entry.outcome = rows->Text(r, 9);
    auto params = Parse(rows->Text(r, 10));
    for (const auto& [k, v] : params.as_object()) rec.entry.params[std::string(k)] = std::string(v.as_string());
    rec.prev_hash = rows->Text(r, 11);
    rec.hash = rows->Text(r, 12);
    chain.push_back(std::move(rec));
  }
  std::vector<core::AuditCheckpoint> checkpoints;
  auto cps = conn->Exec("SELECT seq, hash, time_ms, key_id, signature FROM audit_checkpoints ORDER BY seq",
                        "read the audit checkpoints");
  ASSERT_TRUE(cps.ok());
  for (int r = 0; r < cps->size(); ++r) {
    checkpoints.push_back(
        core::AuditCheckpoint{cps->Int64(r, 0), cps->Text(r, 1), cps->Int64(r, 2), cps->Text(r, 3), cps->Text(r, 4)});
  }
  auto report = core::VerifyChain(chain, checkpoints, public_pem);
  EXPECT_TRUE(report.ok) << report.problem;
  std::printf("[ info     ] audit chain: %lld records, %lld signed checkpoints verified\n",
              static_cast<long long>(report.records), static_cast<long long>(report.checkpoints_verified));

  // The killed replica comes back as a follower.
  auto restarted = MakeReplica(old_leader);
  ASSERT_TRUE(restarted->Start()) << restarted->error();
  replicas_[static_cast<std::size_t>(old_leader)] = std::move(restarted);
  std::this_thread::sleep_for(std::chrono::milliseconds(2 * kRenewMs));
  EXPECT_EQ(Leader(), new_leader);
  EXPECT_EQ(Leaders(), 1);
}

}  // namespace
}  // namespace storeplane::testing
