// The agent channel end to end: the real shop-agent binary against the real storeplaned,
// with a fake Magento directory whose `php` stand-in records its argv and its parent.
// Enrollment, heartbeats, every catalog operation, refusals (API, control plane, agent),
// cross-store isolation, loss and return of an agent, expiry, redelivery, and a PII canary.
#include <sqlite3.h>
#include <sys/stat.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <thread>

#include "tests/integration/backend_support.h"
#include "tests/integration/integration_fixture.h"
#include "tests/support/agent_process.h"
#include "tests/support/event_collector.h"

namespace storeplane::testing {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using namespace std::chrono_literals;

constexpr int kIntervalS = 1;

const std::vector<std::string> kAllOperations = {"health.probe",  "maintenance.enable", "maintenance.disable",
                                                 "cache.flush",   "indexer.status",     "db.status",
                                                 "release.report"};

// The PII planted in the fake store's files and command output.
const std::vector<std::string> kCanaries = {"canary.customer@example.com", "4111 1111 1111 1111", "4111111111111111",
                                            "CANARY-DB-PASSWORD-7f3a", "ORDER-CANARY-000123"};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Trimmed(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) text.pop_back();
  return text;
}

struct AgentSetup {
  std::string store_id;
  std::string root;     // per-store test directory
  std::string magento;  // the fake Magento copy
  std::vector<std::string> allowed = kAllOperations;
  std::map<std::string, int> timeouts;
  std::string config_path() const { return root + "/agent.yaml"; }
  std::string credential_path() const { return root + "/credential"; }
  std::string argv_log() const { return magento + "/var/argv.log"; }
};

class AgentChannelTest : public ServerTest {
 protected:
  void SetUp() override {
    dir_ = std::make_unique<TempDir>();
    token_file_ = dir_->path() + "/admin.token";
    policy_file_ = dir_->path() + "/policy.yaml";
    WritePolicy(AgentPolicy(""));
    server_env_ = {"STOREPLANE_AGENTS_HEARTBEAT_INTERVAL_S=" + std::to_string(kIntervalS)};
    StartServer();
    ASSERT_FALSE(token_.empty());
  }

  void TearDown() override {
    for (auto& [id, agent] : agents_) {
      if (agent && agent->running()) agent->Stop();
    }
    for (const auto& [id, setup] : setups_) KillProcessesUnder(setup.magento);
    ServerTest::TearDown();
  }

  // The roles these tests need; `approvals` is appended as the policy's approval rules.
  static std::string AgentPolicy(const std::string& approvals) {
    std::string policy = R"(version: 1
roles:
  operator:
    allow:
      - actions: [store.read, store.register, store.label, principal.whoami, operation.run.*, operation.read,
                  agent.read, agent.enroll, agent.revoke, event.watch]
  auditor:
    allow:
      - actions: [audit.read, audit.export, principal.whoami]
  tokens:
    allow:
      - actions: [token.*]
  agent-admin:
    allow:
      - actions: [agent.read, agent.enroll, agent.revoke]
  approver:
    allow:
      - actions: [store.read, change.read, change.approve, change.reject]
principals:
  admin:
    kind: operator
    roles: [operator, auditor, tokens]
  keeper:
    kind: operator
    roles: [agent-admin]
APPROVALS)";
    policy.replace(policy.find("APPROVALS"), 9, approvals);
    return policy;
  }

  AgentSetup& NewStore(const std::string& id) {
    EXPECT_EQ(Register(id, "staging").status, 201);
    AgentSetup setup;
    setup.store_id = id;
    setup.root = dir_->path() + "/agents/" + id;
    setup.magento = setup.root + "/magento";
    EXPECT_TRUE(AgentProcess::CopyFakeMagento(setup.magento));
    setups_[id] = setup;
    return setups_[id];
  }

  void WriteAgentConfig(const AgentSetup& s) {
    std::ofstream out(s.config_path(), std::ios::trunc);
    out << "control_plane_url: " << server_->url() << "\n"
        << "store_id: " << s.store_id << "\n"
        << "credential_file: " << s.credential_path() << "\n"
        << "state_dir: " << s.root << "/state\n"
        << "magento_root: " << s.magento << "\n"
        << "php_binary: " << s.magento << "/php\n"
        << "isolation_mode: shared\n"
        << "poll_wait_ms: 20000\n"
        << "allowed_operations: [";
    for (std::size_t i = 0; i < s.allowed.size(); ++i) out << (i ? ", " : "") << s.allowed[i];
    out << "]\n";
    if (!s.timeouts.empty()) {
      out << "operation_timeouts_s:\n";
      for (const auto& [name, t] : s.timeouts) out << "  " << name << ": " << t << "\n";
    }
    out << "checks:\n  storefront_url: \"\"\n";
  }

  std::string EnrollmentToken(const std::string& store) {
    auto resp = Call("POST", "/v1/stores/" + store + "/enrollment-tokens", R"({"ttl_s": 600})",
                     {{"Content-Type", "application/json"}});
    EXPECT_EQ(resp.status, 201) << resp.body;
    return std::string(Json(resp)["token"].as_string());
  }

  // Writes the config and starts the agent, enrolling it first when it has no credential.
  AgentProcess& StartAgent(const AgentSetup& s) {
    WriteAgentConfig(s);
    std::vector<std::string> env;
    if (!fs::exists(s.credential_path())) env.push_back("SHOP_AGENT_ENROLLMENT_TOKEN=" + EnrollmentToken(s.store_id));
    auto& slot = agents_[s.store_id];
    if (slot && slot->running()) slot->Stop();
    slot = std::make_unique<AgentProcess>(s.config_path(), s.root + "/agent.log", env);
    EXPECT_TRUE(slot->Start());
    return *slot;
  }

  json::object Agent(const std::string& store) {
    auto resp = Call("GET", "/v1/stores/" + store + "/agent");
    if (resp.status != 200) return {};
    return Json(resp);
  }

  json::object Health(const std::string& store) {
    auto resp = Call("GET", "/v1/stores/" + store + "/health");
    EXPECT_EQ(resp.status, 200) << resp.body;
    return Json(resp);
  }

  bool WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (condition()) return true;
      std::this_thread::sleep_for(25ms);
    }
    return condition();
  }

  bool WaitAvailability(const std::string& store, const std::string& availability, std::chrono::milliseconds t) {
    return WaitFor(
        [&] {
          auto a = Agent(store);
          return a.contains("availability") && a["availability"].as_string() == availability;
        },
        t);
  }

  // Queues an operation; the response.
  client::HttpResponse RunOp(const std::string& store, const std::string& name, const std::string& params = "{}",
                             const std::string& extra = "") {
    return Call("POST", "/v1/stores/" + store + "/operations",
                R"({"name": ")" + name + R"(", "params": )" + params + extra + "}",
                {{"Content-Type", "application/json"}});
  }

  // Waits for the operation to reach a final state; its last representation.
  json::object WaitFinal(const std::string& store, const std::string& id, std::chrono::milliseconds t = 20s) {
    json::object last;
    WaitFor(
        [&] {
          auto resp = Call("GET", "/v1/stores/" + store + "/operations/" + id);
          if (resp.status != 200) return false;
          last = Json(resp);
          const std::string state(last["state"].as_string());
          return state == "succeeded" || state == "failed" || state == "expired";
        },
        t);
    return last;
  }

  json::object RunAndWait(const std::string& store, const std::string& name, const std::string& params = "{}") {
    auto resp = RunOp(store, name, params);
    EXPECT_EQ(resp.status, 202) << name << ": " << resp.body;
    if (resp.status != 202) return {};
    return WaitFinal(store, std::string(Json(resp)["id"].as_string()));
  }

  // Enrolls and starts an agent for a new store and waits until it is online.
  AgentSetup& OnlineStore(const std::string& id) {
    auto& s = NewStore(id);
    StartAgent(s);
    EXPECT_TRUE(WaitAvailability(id, "online", 10s)) << agents_[id]->Logs();
    return s;
  }

  // The argv.log lines, split into (parent comm, argv) pairs.
  static std::vector<std::pair<std::string, std::vector<std::string>>> Invocations(const AgentSetup& s) {
    std::vector<std::pair<std::string, std::vector<std::string>>> out;
    for (const auto& line : ReadLines(s.argv_log())) {
      const auto bar = line.find("|argv=");
      if (line.rfind("ppid_comm=", 0) != 0 || bar == std::string::npos) {
        ADD_FAILURE() << "unexpected argv.log line: " << line;
        continue;
      }
      std::string comm = line.substr(10, bar - 10);
      std::vector<std::string> argv;
      std::string rest = line.substr(bar + 6);
      std::size_t start = 0;
      for (;;) {
        const auto sep = rest.find('\x1f', start);
        argv.push_back(rest.substr(start, sep == std::string::npos ? std::string::npos : sep - start));
        if (sep == std::string::npos) break;
        start = sep + 1;
      }
      out.emplace_back(std::move(comm), std::move(argv));
    }
    return out;
  }

  std::map<std::string, std::unique_ptr<AgentProcess>> agents_;
  std::map<std::string, AgentSetup> setups_;
};

TEST_F(AgentChannelTest, EnrollsStoresItsCredential0600AndHeartbeats) {
  auto& s = NewStore("shop-a");
  // Before enrollment the store has no agent, and health is unknown.
  EXPECT_EQ(Call("GET", "/v1/stores/shop-a/agent").status, 404);
  EXPECT_EQ(Health("shop-a")["health"].as_string(), "unknown");
  auto& agent = StartAgent(s);
  ASSERT_TRUE(WaitAvailability("shop-a", "online", 10s)) << agent.Logs();

  struct stat st {};
  ASSERT_EQ(::stat(s.credential_path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  const auto credential = Trimmed(ReadFile(s.credential_path()));
  EXPECT_EQ(credential.rfind("spa_", 0), 0u);

  auto a = Agent("shop-a");
  EXPECT_EQ(a["reported_isolation"].as_string(), "shared");
  EXPECT_EQ(a["release"].as_string(), "r2026.12.04-1");
  EXPECT_EQ(a["allowed_operations"].as_array().size(), kAllOperations.size());
  auto h = Health("shop-a");
  EXPECT_EQ(h["availability"].as_string(), "online");
  EXPECT_NE(h["health"].as_string(), "unknown") << json::serialize(h);
  EXPECT_FALSE(h["checks"].as_array().empty());

  // The enrollment token was one-time: it was used, and the audit trail says by whom.
  auto audit = Call("GET", "/v1/audit?action=agent.enrolled");
  ASSERT_EQ(audit.status, 200);
  auto items = Json(audit)["items"].as_array();
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].as_object().at("principal").as_string(), "agent:shop-a");

  // A clean stop is exit 0; the credential is never in the agent's or the server's logs.
  EXPECT_EQ(agent.Stop(), 0);
  EXPECT_EQ(agent.Logs().find(credential), std::string::npos);
  EXPECT_EQ(server_->Logs().find(credential), std::string::npos);
}

TEST_F(AgentChannelTest, TheEventStreamShowsAnAgentComingOnlineAndGoingAway) {
  EventCollector stream(server_->url() + "/v1/events?store=shop-e", token_);
  ASSERT_EQ(stream.WaitStatus(10s), 200);
  auto is_status = [](std::string_view availability) {
    return [availability](const CollectedEvent& e) {
      return e.type == "agent.status" && e.data.at("availability").as_string() == availability;
    };
  };
  OnlineStore("shop-e");
  auto enrolled = stream.WaitFor(
      [](const auto& e) { return e.type == "agent.updated" && e.data.at("change").as_string() == "enrolled"; }, 10s);
  EXPECT_EQ(enrolled.type, "agent.updated");
  auto online = stream.WaitFor(is_status("online"), 10s);
  ASSERT_EQ(online.type, "agent.status");
  EXPECT_TRUE(online.data.at("agent_id").as_string().starts_with("agt_"));
  EXPECT_EQ(online.data.at("store_id").as_string(), "shop-e");

  agents_["shop-e"]->Kill();  // gone without a word: only the missing heartbeats tell
  auto offline = stream.WaitFor(is_status("offline"), 15s);
  ASSERT_EQ(offline.type, "agent.status");
  EXPECT_EQ(offline.data.at("health").as_string(), "unknown");
  // Stale came first, between online and offline.
  bool stale_before = false;
  for (const auto& e : stream.events()) {
    if (e.id == offline.id) break;
    stale_before = stale_before || is_status("stale")(e);
  }
  EXPECT_TRUE(stale_before);
}

TEST_F(AgentChannelTest, EveryCatalogOperationRunsItsFixedArgvWithoutAShell) {
  auto& s = OnlineStore("shop-a");
  const std::string php = s.magento + "/php";

  auto probe = RunAndWait("shop-a", "health.probe");
  EXPECT_EQ(probe["state"].as_string(), "succeeded") << json::serialize(probe);
  EXPECT_FALSE(probe["result"].as_object().at("checks").as_array().empty());
  // The request's audit record names the operation's own action, not the route's family.
  auto requested = Json(Call("GET", "/v1/audit?action=operation.run.health.probe"));
  ASSERT_EQ(requested["items"].as_array().size(), 1U) << json::serialize(requested);
  EXPECT_EQ(requested["items"].as_array()[0].as_object().at("target").as_string(), "store/shop-a");
  EXPECT_TRUE(Json(Call("GET", "/v1/audit?action=operation.run.*"))["items"].as_array().empty());

  auto enable = RunAndWait("shop-a", "maintenance.enable");
  EXPECT_EQ(enable["state"].as_string(), "succeeded") << json::serialize(enable);
  EXPECT_EQ(enable["result"].as_object().at("maintenance"), json::value(true));
  EXPECT_TRUE(fs::exists(s.magento + "/var/.maintenance.flag"));

  auto disable = RunAndWait("shop-a", "maintenance.disable");
  EXPECT_EQ(disable["state"].as_string(), "succeeded") << json::serialize(disable);
  EXPECT_EQ(disable["result"].as_object().at("maintenance"), json::value(false));
  EXPECT_FALSE(fs::exists(s.magento + "/var/.maintenance.flag"));

  auto flush = RunAndWait("shop-a", "cache.flush", R"({"types": ["config", "full_page"]})");
  EXPECT_EQ(flush["state"].as_string(), "succeeded") << json::serialize(flush);
  EXPECT_EQ(json::serialize(flush["result"].as_object().at("flushed")), R"(["config","full_page"])");

  auto indexers = RunAndWait("shop-a", "indexer.status");
  EXPECT_EQ(indexers["state"].as_string(), "succeeded") << json::serialize(indexers);
  const auto& rows = indexers["result"].as_object().at("indexers").as_array();
  EXPECT_GE(rows.size(), 5u);
  for (const auto& row : rows) {
    EXPECT_EQ(row.as_object().size(), 2u) << json::serialize(row);  // id and status, nothing else
  }

  auto db = RunAndWait("shop-a", "db.status");
  EXPECT_EQ(db["state"].as_string(), "succeeded") << json::serialize(db);
  EXPECT_EQ(db["result"].as_object().at("schema_up_to_date"), json::value(true));
  std::ofstream(s.magento + "/var/fake-db-outdated") << "1";
  auto outdated = RunAndWait("shop-a", "db.status");
  EXPECT_EQ(outdated["result"].as_object().at("schema_up_to_date"), json::value(false));

  auto release = RunAndWait("shop-a", "release.report");
  EXPECT_EQ(release["state"].as_string(), "succeeded") << json::serialize(release);
  EXPECT_EQ(release["result"].as_object().at("release").as_string(), "r2026.12.04-1");
  EXPECT_EQ(release["result"].as_object().at("magento_version").as_string(), "2.4.6-p3");

  // The exact argv of every command, each run directly by shop-agent (not by a shell).
  const std::vector<std::vector<std::string>> expected = {
      {"bin/magento", "maintenance:enable"},
      {"bin/magento", "maintenance:disable"},
      {"bin/magento", "cache:flush", "config", "full_page"},
      {"bin/magento", "indexer:status"},
      {"bin/magento", "setup:db:status"},
      {"bin/magento", "setup:db:status"},
      {"bin/magento", "--version"},
  };
  const auto seen = Invocations(s);
  ASSERT_EQ(seen.size(), expected.size()) << ReadFile(s.argv_log());
  for (std::size_t i = 0; i < seen.size(); ++i) {
    EXPECT_EQ(seen[i].first, "shop-agent") << "command " << i << " was not started by the agent itself";
    EXPECT_EQ(seen[i].second, expected[i]) << "command " << i;
  }

  // The last success of each operation is recorded for the store.
  auto h = Health("shop-a");
  std::set<std::string> succeeded;
  for (const auto& item : h["last_successes"].as_array()) {
    if (item.as_object().at("kind").as_string() == "operation") {
      succeeded.insert(std::string(item.as_object().at("name").as_string()));
    }
  }
  EXPECT_EQ(succeeded, std::set<std::string>(kAllOperations.begin(), kAllOperations.end()));
}

TEST_F(AgentChannelTest, UnknownOperationsAndBadParamsAreUnrepresentable) {
  OnlineStore("shop-a");
  const auto before = Call("GET", "/v1/stores/shop-a/operations");
  for (const auto& [name, params] : std::vector<std::pair<std::string, std::string>>{
           {"shell.exec", "{}"},
           {"cache.flush", R"({"types": ["everything"]})"},
           {"cache.flush", R"({"types": "config"})"},
           {"cache.flush", R"({"command": "rm -rf /"})"},
           {"health.probe", R"({"argv": ["sh"]})"},
       }) {
    auto resp = RunOp("shop-a", name, params);
    EXPECT_EQ(resp.status, 422) << name << " " << params << ": " << resp.body;
  }
  auto extra = Call("POST", "/v1/stores/shop-a/operations", R"({"name": "health.probe", "command": "id"})",
                    {{"Content-Type", "application/json"}});
  EXPECT_EQ(extra.status, 422) << extra.body;
  EXPECT_EQ(Call("GET", "/v1/stores/shop-a/operations").body, before.body) << "nothing was queued";
}

TEST_F(AgentChannelTest, TheControlPlaneRefusesWhatTheAgentsAllowListLacks) {
  auto& s = NewStore("shop-a");
  s.allowed = {"health.probe", "indexer.status"};
  StartAgent(s);
  ASSERT_TRUE(WaitAvailability("shop-a", "online", 10s));
  auto resp = RunOp("shop-a", "cache.flush");
  EXPECT_EQ(resp.status, 409) << resp.body;
  const std::string detail(Json(resp)["detail"].as_string());
  EXPECT_NE(detail.find("does not allow cache.flush"), std::string::npos) << detail;
  EXPECT_NE(detail.find("health.probe, indexer.status"), std::string::npos) << detail;
  EXPECT_TRUE(ReadLines(s.argv_log()).empty());
}

TEST_F(AgentChannelTest, TheAgentRefusesAnOperationOutsideItsLocalAllowList) {
  auto& s = OnlineStore("shop-a");
  // The agent stops; the control plane still holds its last advertised allow-list and
  // queues the operation; the agent comes back with a narrower local allow-list.
  agents_["shop-a"]->Stop();
  auto queued = RunOp("shop-a", "cache.flush");
  ASSERT_EQ(queued.status, 202) << queued.body;
  const std::string id(Json(queued)["id"].as_string());
  s.allowed = {"health.probe"};
  StartAgent(s);
  auto op = WaitFinal("shop-a", id);
  EXPECT_EQ(op["state"].as_string(), "failed") << json::serialize(op);
  EXPECT_EQ(op["code"].as_string(), "refused_not_allowed");
  EXPECT_TRUE(ReadLines(s.argv_log()).empty()) << "nothing ran";
}

TEST_F(AgentChannelTest, OneStoresAgentCannotSeeOrAnswerAnothersOperations) {
  auto& a = OnlineStore("shop-a");
  auto& b = OnlineStore("shop-b");
  const auto cred_a = Trimmed(ReadFile(a.credential_path()));
  const auto cred_b = Trimmed(ReadFile(b.credential_path()));
  ASSERT_NE(cred_a, cred_b);

  // Agent A is stopped so that the operation stays queued for it.
  agents_["shop-a"]->Stop();
  auto queued = RunOp("shop-a", "db.status");
  ASSERT_EQ(queued.status, 202);
  const std::string id(Json(queued)["id"].as_string());

  // B's credential: no delivery of A's operation, no report on it.
  const std::string session = "00112233445566778899aabbccddeeff";
  auto poll = CallAs(cred_b, "GET", "/agent/v1/operations?session=" + session + "&wait_ms=0");
  EXPECT_EQ(poll.status, 204) << poll.body;
  auto report = CallAs(cred_b, "POST", "/agent/v1/operations/" + id + "/result",
                       R"({"outcome": "succeeded", "result": {"schema_up_to_date": true}, "duration_ms": 1})",
                       {{"Content-Type", "application/json"}});
  EXPECT_EQ(report.status, 404) << report.body;
  EXPECT_EQ(Json(Call("GET", "/v1/stores/shop-a/operations/" + id))["state"].as_string(), "queued");

  // Operator tokens do not open the agent channel, and agent credentials not the API.
  EXPECT_EQ(CallAs(token_, "GET", "/agent/v1/operations?session=" + session + "&wait_ms=0").status, 401);
  EXPECT_EQ(CallAs(token_, "POST", "/agent/v1/heartbeat", "{}", {{"Content-Type", "application/json"}}).status, 401);
  EXPECT_EQ(CallAs(cred_b, "GET", "/v1/stores").status, 401);
  EXPECT_EQ(CallAs(cred_b, "GET", "/v1/stores/shop-b/operations").status, 401);

  // A comes back and runs its own operation.
  StartAgent(a);
  EXPECT_EQ(WaitFinal("shop-a", id)["state"].as_string(), "succeeded");
  EXPECT_TRUE(ReadLines(b.argv_log()).empty());
}

TEST_F(AgentChannelTest, AKilledAgentIsOfflineWithinThreeIntervalsAndBackAtItsFirstHeartbeat) {
  auto& s = OnlineStore("shop-a");
  agents_["shop-a"]->Kill();
  const auto killed = std::chrono::steady_clock::now();
  ASSERT_TRUE(WaitAvailability("shop-a", "offline", 3 * std::chrono::seconds(kIntervalS) + 500ms))
      << json::serialize(Agent("shop-a"));
  const auto detected = std::chrono::steady_clock::now() - killed;
  EXPECT_LT(detected, 3 * std::chrono::seconds(kIntervalS));
  auto h = Health("shop-a");
  EXPECT_EQ(h["health"].as_string(), "unknown");
  EXPECT_EQ(h["reasons"].as_array().at(0).as_string(), "agent_offline");

  StartAgent(s);
  ASSERT_TRUE(WaitAvailability("shop-a", "online", 5s));
  EXPECT_NE(Health("shop-a")["health"].as_string(), "unknown");
}

// A heartbeat never waits for the disk, but the change of availability it causes is written
// within moments (the sweeper is woken for it), not left for the next periodic flush.
TEST_F(AgentChannelTest, AChangeOfAvailabilityReachesTheDatabaseWithinMoments) {
  OnlineStore("shop-a");
  const auto data_dir = dir_->path() + "/data";
  const auto db_path = data_dir + "/storeplane.db";
  constexpr const char* kQuery = "SELECT availability FROM agents WHERE store_id = 'shop-a'";
  std::string stored;
  const bool written = WaitFor(
      [&] {
        if (TestBackendIsPostgres()) {
          auto run = RunPostgresSql(PostgresConninfoFor(data_dir), kQuery);
          if (run.ok && !run.rows.empty()) stored = run.rows[0][0];
          return stored == "online";
        }
        sqlite3* db = nullptr;
        if (sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
          sqlite3_close(db);
          return false;
        }
        sqlite3_stmt* stmt = nullptr;
        if (sqlite3_prepare_v2(db, kQuery, -1, &stmt, nullptr) == SQLITE_OK && sqlite3_step(stmt) == SQLITE_ROW) {
          stored = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
        }
        sqlite3_finalize(stmt);
        sqlite3_close(db);
        return stored == "online";
      },
      2s);
  EXPECT_TRUE(written) << "stored availability: '" << stored << "'";
}

TEST_F(AgentChannelTest, AHungOperationEndsOnItsOwnAndOtherStoresAreNotSlowed) {
  auto& hung = NewStore("shop-hung");
  hung.timeouts = {{"cache.flush", 2}};
  StartAgent(hung);
  ASSERT_TRUE(WaitAvailability("shop-hung", "online", 10s));
  OnlineStore("shop-b");

  // A baseline: how long an operation takes on shop-b with nothing hung.
  auto timed = [&] {
    const auto start = std::chrono::steady_clock::now();
    auto op = RunAndWait("shop-b", "db.status");
    EXPECT_EQ(op["state"].as_string(), "succeeded");
    return std::chrono::steady_clock::now() - start;
  };
  const auto baseline = timed();

  std::ofstream(hung.magento + "/var/fake-hang") << "1";
  auto queued = RunOp("shop-hung", "cache.flush");
  ASSERT_EQ(queued.status, 202);
  const std::string id(Json(queued)["id"].as_string());
  ASSERT_TRUE(WaitFor([&] { return !ReadLines(hung.argv_log()).empty(); }, 10s)) << "the command started";

  const auto during = timed();
  EXPECT_LT(during, baseline + 1s) << "shop-b was slowed by shop-hung";

  auto op = WaitFinal("shop-hung", id, 15s);
  EXPECT_EQ(op["state"].as_string(), "failed") << json::serialize(op);
  EXPECT_EQ(op["code"].as_string(), "timeout");
  // The process group was killed: nothing is left running in the store's directory.
  std::this_thread::sleep_for(200ms);
  bool leftovers = false;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    std::error_code ec;
    const auto cwd = fs::read_symlink(entry.path() / "cwd", ec).string();
    if (!ec && cwd.rfind(hung.magento, 0) == 0) leftovers = true;
  }
  EXPECT_FALSE(leftovers);
}

TEST_F(AgentChannelTest, AnOperationNobodyTakesExpires) {
  OnlineStore("shop-a");
  agents_["shop-a"]->Stop();
  auto queued = RunOp("shop-a", "indexer.status", "{}", R"(, "expires_in_s": 10)");
  ASSERT_EQ(queued.status, 202) << queued.body;
  auto op = WaitFinal("shop-a", std::string(Json(queued)["id"].as_string()), 20s);
  EXPECT_EQ(op["state"].as_string(), "expired") << json::serialize(op);
  EXPECT_EQ(op["code"].as_string(), "expired");
  auto audit = Json(Call("GET", "/v1/audit?action=operation.expire"));
  EXPECT_EQ(audit["items"].as_array().size(), 1u);
}

TEST_F(AgentChannelTest, ARedeliveredOperationRunsOnce) {
  auto& s = OnlineStore("shop-a");
  std::ofstream(s.magento + "/var/fake-hang") << "1";
  auto queued = RunOp("shop-a", "cache.flush");
  ASSERT_EQ(queued.status, 202);
  const std::string id(Json(queued)["id"].as_string());
  ASSERT_TRUE(WaitFor([&] { return !ReadLines(s.argv_log()).empty(); }, 10s));
  // The agent dies before it can report; the command it started is cleaned up.
  agents_["shop-a"]->Kill();
  KillProcessesUnder(s.magento);
  fs::remove(s.magento + "/var/fake-hang");
  EXPECT_EQ(Json(Call("GET", "/v1/stores/shop-a/operations/" + id))["state"].as_string(), "delivered");

  // The new agent session gets the operation again, and does not run it again.
  StartAgent(s);
  auto op = WaitFinal("shop-a", id);
  EXPECT_EQ(op["state"].as_string(), "failed") << json::serialize(op);
  EXPECT_EQ(op["code"].as_string(), "interrupted");
  EXPECT_GE(op["delivery_count"].as_int64(), 2);
  EXPECT_EQ(ReadLines(s.argv_log()).size(), 1u) << ReadFile(s.argv_log());
}

TEST_F(AgentChannelTest, NoCanaryReachesTheControlPlane) {
  auto& s = OnlineStore("shop-a");
  for (const auto& name : kAllOperations) RunAndWait("shop-a", name);
  std::ofstream(s.magento + "/var/fake-fail") << "1";
  RunAndWait("shop-a", "indexer.status");  // fails after printing a canary
  fs::remove(s.magento + "/var/fake-fail");

  // Everything the control plane can show or holds.
  std::string seen;
  for (const auto& path : {"/v1/stores/shop-a/operations?limit=100", "/v1/stores/shop-a/health",
                           "/v1/stores/shop-a/agent", "/v1/agents", "/v1/audit/export", "/v1/stores"}) {
    auto resp = Call("GET", path);
    EXPECT_EQ(resp.status, 200) << path;
    seen += resp.body;
  }
  server_->Stop();
  seen += server_->Logs();
  seen += EverythingAtRest(dir_->path() + "/data");  // the files, and on PostgreSQL the database's rows
  // The canaries are there to be found, where the store keeps them.
  ASSERT_NE(ReadFile(s.magento + "/app/etc/env.php").find("CANARY-DB-PASSWORD-7f3a"), std::string::npos);
  for (const auto& canary : kCanaries) {
    EXPECT_EQ(seen.find(canary), std::string::npos) << "canary leaked: " << canary;
  }
  EXPECT_FALSE(seen.empty());
}

TEST_F(AgentChannelTest, AgentRightsDoNotNeedRegistryReadsAndApprovalRulesFailClosed) {
  auto& s = OnlineStore("shop-a");
  // A principal that may manage agents but not read the registry can still do its job.
  const auto keeper = CreateToken("keeper");
  auto listed = CallAs(keeper, "GET", "/v1/agents");
  ASSERT_EQ(listed.status, 200) << listed.body;
  EXPECT_EQ(Json(listed)["items"].as_array().size(), 1u);
  EXPECT_EQ(CallAs(keeper, "GET", "/v1/stores/shop-a").status, 404) << "no registry reads";
  EXPECT_EQ(CallAs(keeper, "POST", "/v1/stores/shop-a/operations", R"({"name": "health.probe"})",
                   {{"Content-Type", "application/json"}})
                .status,
            404)
      << "no operations either";
  auto revoked = CallAs(keeper, "DELETE", "/v1/stores/shop-a/agent");
  ASSERT_EQ(revoked.status, 200) << revoked.body;
  EXPECT_FALSE(Json(revoked)["revoked_at"].is_null());
  // The revoked credential no longer opens the channel.
  const auto credential = Trimmed(ReadFile(s.credential_path()));
  EXPECT_EQ(CallAs(credential, "POST", "/agent/v1/heartbeat", "{}", {{"Content-Type", "application/json"}}).status,
            401);
  EXPECT_EQ(RunOp("shop-a", "health.probe").status, 409);

  // An approval rule on agent enrollment: nothing can wait for approval there yet, so the
  // request is refused rather than granted.
  WritePolicy(AgentPolicy(R"(approvals:
  - actions: [agent.enroll]
    environments: [staging]
    approvals: 1
    approver_role: approver
    expires_after: 1h
)"));
  server_->SendSignal(SIGHUP);
  ASSERT_TRUE(WaitFor([&] { return server_->Logs().find("policy reloaded") != std::string::npos; }, 5s))
      << server_->Logs();
  auto refused = Call("POST", "/v1/stores/shop-a/enrollment-tokens", "", {});
  EXPECT_EQ(refused.status, 409) << refused.body;
  EXPECT_NE(std::string(Json(refused)["detail"].as_string()).find("needs approval"), std::string::npos);
}

TEST_F(AgentChannelTest, SigtermEndsWaitingLongPollsAndTheServerExitsPromptly) {
  OnlineStore("shop-a");
  OnlineStore("shop-b");
  std::this_thread::sleep_for(200ms);  // both agents are inside a long-poll now
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(server_->Stop(), 0) << server_->Logs();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  EXPECT_NE(server_->Logs().find("\"abandoned_requests\":0"), std::string::npos) << server_->Logs();
  // The agents carry on (fail static) and come back when the server does, on its address.
  const auto url = server_->url();
  StartServer({"--listen", url.substr(url.find("//") + 2)});
  ASSERT_EQ(server_->url(), url);
  std::this_thread::sleep_for(3 * std::chrono::seconds(kIntervalS));  // past the offline threshold
  EXPECT_TRUE(WaitAvailability("shop-a", "online", 5s)) << agents_["shop-a"]->Logs();
  EXPECT_TRUE(WaitAvailability("shop-b", "online", 5s));
  EXPECT_TRUE(agents_["shop-a"]->running());
}

// The agent trusts exactly the CA file it is given: with it, it enrolls and heartbeats over
// TLS; without it, it never connects (and keeps trying, acting on nothing).
TEST(AgentChannelTls, TheAgentTrustsOnlyItsConfiguredCa) {
  TempDir dir;
  const auto cert = dir.path() + "/tls.crt";
  const auto key = dir.path() + "/tls.key";
  ASSERT_TRUE(MakeTestCertificate(cert, key)) << "openssl could not make a test certificate";
  ServerOptions options;
  options.dev = true;
  options.extra_args = {"--tls-cert", cert, "--tls-key", key};
  options.env = {"STOREPLANE_AGENTS_HEARTBEAT_INTERVAL_S=1"};
  ServerProcess server(options);
  ASSERT_TRUE(server.Start()) << server.error() << server.Logs();
  client::HttpClient http(client::ClientOptions{cert, false});
  const std::vector<std::pair<std::string, std::string>> auth = {{"Authorization", "Bearer " + server.token()},
                                                                 {"Content-Type", "application/json"}};
  auto token = [&] {
    auto resp = http.Send({"POST", server.url() + "/v1/stores/demo/enrollment-tokens", auth, "{}", 5000});
    EXPECT_TRUE(resp.ok() && resp->status == 201);
    return std::string(boost::json::parse(resp->body).as_object().at("token").as_string());
  };
  auto agent_state = [&] {
    auto resp = http.Send({"GET", server.url() + "/v1/stores/demo/agent", auth, "", 5000});
    if (!resp.ok() || resp->status != 200) return std::string("none");
    return std::string(boost::json::parse(resp->body).as_object().at("availability").as_string());
  };
  auto run_agent = [&](const std::string& name, bool with_ca) {
    const auto root = dir.path() + "/" + name;
    EXPECT_TRUE(AgentProcess::CopyFakeMagento(root + "/magento"));
    std::ofstream(root + "/agent.yaml") << "control_plane_url: " << server.url() << "\n"
                                        << (with_ca ? "ca_file: " + cert + "\n" : "") << "store_id: demo\n"
                                        << "credential_file: " << root << "/credential\n"
                                        << "state_dir: " << root << "/state\n"
                                        << "magento_root: " << root << "/magento\n"
                                        << "php_binary: " << root << "/magento/php\n"
                                        << "allowed_operations: [health.probe]\n";
    auto agent = std::make_unique<AgentProcess>(root + "/agent.yaml", root + "/agent.log",
                                                std::vector<std::string>{"SHOP_AGENT_ENROLLMENT_TOKEN=" + token()});
    EXPECT_TRUE(agent->Start());
    return agent;
  };

  auto untrusting = run_agent("untrusting", false);
  std::this_thread::sleep_for(2s);
  EXPECT_TRUE(untrusting->running());
  EXPECT_EQ(agent_state(), "none") << untrusting->Logs();
  untrusting->Stop();

  auto trusting = run_agent("trusting", true);
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (agent_state() != "online" && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(50ms);
  EXPECT_EQ(agent_state(), "online") << trusting->Logs();
  EXPECT_EQ(trusting->Stop(), 0);
  EXPECT_EQ(server.Stop(), 0);
}

}  // namespace
}  // namespace storeplane::testing
