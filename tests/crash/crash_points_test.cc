// Crash points: a mixed workload against the real storeplaned (store registrations and label
// changes, operations run by a real shop-agent, pipeline runs through a stub CI/CD provider,
// production requests held for approval and approved by another principal), while the
// driver kills storeplaned with SIGKILL at random moments and restarts it on the same data
// directory and port. After each kill it checks, before the restart, that SQLite's
// integrity_check is clean, and after it:
//   - every acknowledged write (a 2xx the driver got) is present: stores, labels (the
//     acknowledged value or a later one sent), runs, changes and their approvals,
//     operations;
//   - the audit chain verifies (`storeplane audit verify` with the public key fetched once,
//     at the start);
//   - no run reached the stub provider twice, and no trigger names a run the database lost;
//   - every run, store and operation state seen through the API follows the previous one
//     by legal transitions of the core state machines, and every `run.transition` audit
//     record is legal and continues the run's previous one.
// At the end the workload stops and every run must end and every operation reach a final
// state while the server stays up.
//
// Environment: STOREPLANE_CRASH_SEED (the printed seed reproduces the workload's choices and
// the kill delays; thread timing is not reproducible), STOREPLANE_CRASH_POINTS (kill points,
// default 25), STOREPLANE_CRASH_AUDIT_EVERY (verify the audit chain every N points, default
// 1), STOREPLANE_CRASH_SUMMARY (a file to write the summary to, as JSON).
#include <signal.h>
#include <sqlite3.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <gtest/gtest.h>
#include <algorithm>
#include <atomic>
#include <boost/json.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "client/http_client.h"
#include "tests/crash/stub_ci.h"
#include "tests/crash/transitions.h"
#include "tests/support/agent_process.h"
#include "tests/support/server_process.h"

namespace storeplane::crash {
namespace {

namespace json = boost::json;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testing::AgentProcess;
using testing::ServerOptions;
using testing::ServerProcess;
using testing::TempDir;

constexpr char kTriggerSecret[] = "crash-trigger-secret-0123456789";
constexpr char kCallbackSecret[] = "crash-callback-secret-9876543210";
constexpr char kAgentStore[] = "agent-shop";
constexpr int kWorkers = 3;

long EnvLong(const char* name, long fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  return std::strtol(v, nullptr, 10);
}

// The storeplane CLI (STOREPLANE_CLI_BIN in the environment, else the one built with the driver).
std::string CliBinary() {
  const char* env = std::getenv("STOREPLANE_CLI_BIN");
  return env != nullptr && *env != '\0' ? std::string(env) : std::string(STOREPLANE_CLI_BIN);
}

std::optional<json::object> ParseObject(const std::string& text) {
  boost::system::error_code ec;
  auto v = json::parse(text, ec);
  if (ec || !v.is_object()) return std::nullopt;
  return v.as_object();
}

std::string Str(const json::object& o, const char* key) {
  auto it = o.find(key);
  return it != o.end() && it->value().is_string() ? std::string(it->value().as_string()) : std::string();
}

// ---- What the driver was told (acknowledged) and what it saw ------------------------------

struct StoreRec {
  std::string environment;
  int owner = 0;
  long label_sent = 0;   // the highest "gen" label value sent
  long label_acked = 0;  // the highest one answered 200
  std::string seen_state;
  std::int64_t seen_version = 0;
};
struct RunRec {
  std::string store;
  std::string kind;
};
struct ChangeRec {
  std::string store;
  int owner = 0;
  std::string acked_status;  // the status the approval was answered with, once answered
};
struct OpRec {
  std::string store;
};

struct Ledger {
  std::mutex mu;
  std::map<std::string, StoreRec> stores;
  std::map<std::string, RunRec> runs;
  std::map<std::string, ChangeRec> changes;
  std::map<std::string, OpRec> ops;
  std::int64_t acked_writes = 0;                // 2xx answers to writes
  std::map<std::string, std::int64_t> answers;  // "<action> <status>" -> count
};

struct Violations {
  std::mutex mu;
  std::vector<std::string> items;
  int point = 0;
  void Add(const std::string& what) {
    std::lock_guard lock(mu);
    const auto line = "[kill point " + std::to_string(point) + "] " + what;
    std::cerr << "VIOLATION " << line << std::endl;
    items.push_back(line);
  }
};

// ---- The driver ---------------------------------------------------------------------------

class CrashDriver {
 public:
  CrashDriver(std::uint64_t seed, int points, int audit_every)
      : seed_(seed),
        points_(points),
        audit_every_(audit_every),
        rng_(seed),
        ci_(kTriggerSecret, kCallbackSecret, seed) {}

  ~CrashDriver() {
    stop_ = true;
    for (auto& t : workers_) {
      if (t.joinable()) t.join();
    }
    if (agent_ && agent_->running()) agent_->Kill();
    if (server_ && server_->running()) server_->Kill();
    if (dir_) testing::KillProcessesUnder(dir_->path());
  }

  void Run();
  const Violations& violations() const { return violations_; }

 private:
  // Setup.
  void WriteFiles();
  bool StartServer();
  void Setup();
  void StartAgent();

  // HTTP.
  std::optional<client::HttpResponse> Send(client::HttpClient& http, const std::string& token,
                                           const std::string& method, const std::string& path,
                                           const std::string& body = "",
                                           std::vector<std::pair<std::string, std::string>> headers = {},
                                           long timeout_ms = 30000);
  std::optional<client::HttpResponse> Admin(const std::string& method, const std::string& path,
                                            const std::string& body = "",
                                            std::vector<std::pair<std::string, std::string>> headers = {}) {
    auto resp = Send(http_, token_, method, path, body, headers);
    // The checker's reads survive a connection that cannot be opened (see FetchAll).
    for (int retry = 0; !resp && method == "GET" && retry < 10; ++retry) {
      ++transient_connect_failures_;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      resp = Send(http_, token_, method, path, body, headers);
    }
    // The final check reads thousands of changes back to back: past the per-principal burst
    // the server answers 429, and the checker waits as told instead of taking that for loss.
    for (int retry = 0; resp && resp->status == 429 && method == "GET" && retry < 60; ++retry) {
      ++rate_limited_;
      const long after_s = std::strtol(resp->Header("retry-after").c_str(), nullptr, 10);
      std::this_thread::sleep_for(std::chrono::milliseconds(std::clamp(after_s * 1000, 200L, 5000L)));
      resp = Send(http_, token_, method, path, body, headers);
    }
    return resp;
  }
  bool WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout);
  // The end of storeplaned's log, the stub CI's view and the runs, for a failure message.
  std::string LogTail() {
    std::string out;
    if (server_) {
      const auto logs = server_->Logs();
      out += "storeplaned log tail:\n" + logs.substr(logs.size() > 6000 ? logs.size() - 6000 : 0);
    }
    for (const auto& p : ci_.pipelines()) {
      out += "\nstub pipeline " + p.correlation_id + " " + p.store_id + " " + p.kind + " " + p.status +
             (p.silent ? " silent" : "");
    }
    if (auto runs = Admin("GET", "/v1/runs?limit=20")) out += "\nruns: " + runs->body;
    return out;
  }
  std::string url() {
    std::lock_guard lock(url_mu_);
    return url_;
  }

  // Workload.
  void Worker(int index);
  void Answered(const std::string& action, long status);

  // Checks.
  void CheckStillRunning();
  void IntegrityCheck();
  bool FetchAll(const std::string& base, const std::string& cursor_param, std::vector<json::object>& out);
  void CheckAcknowledged(bool final);
  void CheckAuditTransitions();
  void VerifyAuditChain();
  void Quiesce();
  void PrintSummary(double seconds);

  std::uint64_t seed_;
  int points_;
  int audit_every_;
  int pace_ms_ = static_cast<int>(std::max(1L, EnvLong("STOREPLANE_CRASH_PACE_MS", 25)));
  std::mt19937_64 rng_;
  StubCi ci_;
  std::unique_ptr<TempDir> dir_;
  std::string data_dir_;
  std::string config_path_, policy_path_, token_file_, key_path_;
  int port_ = 0;
  std::mutex url_mu_;
  std::string url_;
  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<AgentProcess> agent_;
  std::string magento_;
  std::string token_;      // admin: operator, auditor, tokens
  std::string bob_token_;  // approver
  client::HttpClient http_;

  std::atomic<bool> stop_{false};
  std::vector<std::thread> workers_;
  Ledger ledger_;
  Violations violations_;

  // Seen by the checker only (one observer, in order).
  std::map<std::string, std::pair<std::string, std::string>> run_seen_;  // id -> kind, state
  std::map<std::string, std::string> op_seen_;
  std::map<std::string, std::string> audit_last_to_;  // run -> "to" of its last transition record
  std::int64_t audit_after_ = 0;
  std::int64_t audit_records_ = 0;  // the chain length at the last verification
  std::set<std::string> duplicates_reported_;
  std::set<std::string> confirmed_changes_;
  std::string last_fetch_error_;
  std::int64_t transient_connect_failures_ = 0;
  std::int64_t rate_limited_ =
      0;  // 429 answers to the checker, waited out  // answered approvals seen as answered after a restart

  // Counters for the summary.
  int kills_ = 0;
  int restarts_ = 0;
  std::int64_t acked_checks_ = 0;
  std::int64_t audit_transitions_checked_ = 0;
  std::int64_t adopted_at_provider_ = 0;  // runs the ask-before-resend check found already sent
  int audit_verifies_ = 0;
  int integrity_checks_ = 0;
  double max_restart_ms_ = 0;
};

std::optional<client::HttpResponse> CrashDriver::Send(client::HttpClient& http, const std::string& token,
                                                      const std::string& method, const std::string& path,
                                                      const std::string& body,
                                                      std::vector<std::pair<std::string, std::string>> headers,
                                                      long timeout_ms) {
  client::HttpRequest req;
  req.method = method;
  req.url = url() + path;
  req.body = body;
  req.headers = std::move(headers);
  req.timeout_ms = timeout_ms;
  if (!token.empty()) req.headers.emplace_back("Authorization", "Bearer " + token);
  auto resp = http.Send(req);
  if (!resp.ok()) return std::nullopt;
  return resp.value();
}

bool CrashDriver::WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(50ms);
  }
  return condition();
}

void CrashDriver::WriteFiles() {
  dir_ = std::make_unique<TempDir>();
  data_dir_ = dir_->path() + "/data";
  config_path_ = dir_->path() + "/config.yaml";
  policy_path_ = dir_->path() + "/policy.yaml";
  token_file_ = dir_->path() + "/admin.token";
  key_path_ = dir_->path() + "/audit-public.pem";
  std::ofstream(dir_->path() + "/trigger.secret") << kTriggerSecret << "\n";
  std::ofstream(dir_->path() + "/callback.secret") << kCallbackSecret << "\n";
  std::ofstream(config_path_) << "cicd:\n"
                              << "  run_timeout_s: 20\n"
                              << "  poll_interval_s: 2\n"
                              << "  trigger_retry_max_s: 2\n"
                              << "  health_gate: {consecutive: 2, window_s: 4}\n"
                              << "  providers:\n"
                              << "    hook:\n"
                              << "      type: webhook\n"
                              << "      base_url: " << ci_.base_url() << "\n"
                              << "      secret_file: " << dir_->path() << "/trigger.secret\n"
                              << "      callback_secret_file: " << dir_->path() << "/callback.secret\n"
                              << "  routes:\n"
                              << "    - provider: hook\n";
  std::ofstream(policy_path_) << R"(version: 1
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
approvals:
  - actions: [store.provision, deploy.request]
    environments: [production]
    approvals: 1
    approver_role: approver
    expires_after: 1h
)";
}

bool CrashDriver::StartServer() {
  ServerOptions options;
  options.data_dir = data_dir_;
  options.extra_args = {"--admin-token-file", token_file_, "--policy", policy_path_, "--config", config_path_};
  if (port_ != 0) {
    options.extra_args.push_back("--listen");
    options.extra_args.push_back("127.0.0.1:" + std::to_string(port_));
  }
  options.env = {"STOREPLANE_AGENTS_HEARTBEAT_INTERVAL_S=1"};
  const auto started = Clock::now();
  for (int attempt = 0; attempt < 20; ++attempt) {
    server_ = std::make_unique<ServerProcess>(options);
    if (server_->Start()) {
      const double ms = std::chrono::duration<double, std::milli>(Clock::now() - started).count();
      max_restart_ms_ = std::max(max_restart_ms_, ms);
      if (!server_->token().empty()) token_ = server_->token();
      if (port_ == 0) {
        const auto& u = server_->url();
        port_ = std::stoi(u.substr(u.rfind(':') + 1));
      }
      std::lock_guard lock(url_mu_);
      url_ = server_->url();
      return true;
    }
    // The port may still be held for a moment after the kill.
    std::cerr << "crash: restart attempt " << attempt << " failed: " << server_->error().substr(0, 2000) << std::endl;
    std::this_thread::sleep_for(250ms);
  }
  return false;
}

void CrashDriver::Setup() {
  WriteFiles();
  ASSERT_TRUE(StartServer()) << "storeplaned did not start";
  ASSERT_FALSE(token_.empty());
  ci_.SetCallbackUrl(url() + "/hooks/cicd/hook");
  // Bob's token comes from someone other than the requester (separation of duties).
  auto keeper = Admin("POST", "/v1/tokens", R"({"principal":"keeper"})", {{"Content-Type", "application/json"}});
  ASSERT_TRUE(keeper && keeper->status == 201);
  const auto keeper_token = Str(*ParseObject(keeper->body), "token");
  auto bob =
      Send(http_, keeper_token, "POST", "/v1/tokens", R"({"principal":"bob"})", {{"Content-Type", "application/json"}});
  ASSERT_TRUE(bob && bob->status == 201);
  bob_token_ = Str(*ParseObject(bob->body), "token");
  // The audit signing key, held from the start: every verification is against it.
  auto key = Admin("GET", "/v1/audit/public-key");
  ASSERT_TRUE(key && key->status == 200);
  std::ofstream(key_path_) << Str(*ParseObject(key->body), "public_key_pem");

  // The store with a real agent: registered, provisioned through the stub CI, enrolled.
  auto reg = Admin("POST", "/v1/stores",
                   std::string(R"({"id":")") + kAgentStore +
                       R"(","environment":"staging","isolation_mode":"shared","labels":{"gen":"0"}})",
                   {{"Content-Type", "application/json"}});
  ASSERT_TRUE(reg && reg->status == 201) << (reg ? reg->body : "no answer");
  {
    std::lock_guard lock(ledger_.mu);
    ledger_.stores[kAgentStore] = StoreRec{"staging", 0, 0, 0, "", 0};
  }
  ASSERT_TRUE(WaitFor(
      [&] {
        auto s = Admin("GET", std::string("/v1/stores/") + kAgentStore);
        if (!s || s->status != 200) return false;
        const auto state = Str(*ParseObject(s->body), "state");
        if (state == "registered" || state == "provision_failed") {
          auto p = Admin("POST", std::string("/v1/stores/") + kAgentStore + "/provision");
          if (p && p->status == 202) {
            auto body = ParseObject(p->body);
            std::lock_guard lock(ledger_.mu);
            ledger_.runs[Str(*body, "id")] = RunRec{kAgentStore, "provision"};
          }
        }
        return state == "active";
      },
      60s))
      << "the agent's store was not provisioned: " << LogTail();
  StartAgent();
}

void CrashDriver::StartAgent() {
  magento_ = dir_->path() + "/magento";
  ASSERT_TRUE(AgentProcess::CopyFakeMagento(magento_));
  std::ofstream(magento_ + "/.storeplane-release") << "r0\n";
  std::ofstream(magento_ + "/var/.storeplane-cron") << "";
  ci_.OnSuccess([this](const StubCi::Pipeline& p) {
    // The pipeline "installs" the release on the store with the agent: its gate can pass.
    if (p.store_id == kAgentStore && (p.kind == "deploy" || p.kind == "rollback") && !p.release.empty()) {
      std::ofstream(magento_ + "/.storeplane-release", std::ios::trunc) << p.release << "\n";
    }
  });
  auto enroll = Admin("POST", std::string("/v1/stores/") + kAgentStore + "/enrollment-tokens", R"({"ttl_s": 600})",
                      {{"Content-Type", "application/json"}});
  ASSERT_TRUE(enroll && enroll->status == 201);
  const auto config = dir_->path() + "/agent.yaml";
  std::ofstream(config) << "control_plane_url: " << url() << "\nstore_id: " << kAgentStore
                        << "\ncredential_file: " << dir_->path() << "/agent.cred\nstate_dir: " << dir_->path()
                        << "/agent-state\nmagento_root: " << magento_ << "\nphp_binary: " << magento_
                        << "/php\nisolation_mode: shared\npoll_wait_ms: 5000\n"
                        << "allowed_operations: [health.probe]\nchecks:\n  storefront_url: \"\"\n";
  agent_ = std::make_unique<AgentProcess>(
      config, dir_->path() + "/agent.log",
      std::vector<std::string>{"SHOP_AGENT_ENROLLMENT_TOKEN=" + Str(*ParseObject(enroll->body), "token")});
  ASSERT_TRUE(agent_->Start());
  ASSERT_TRUE(WaitFor(
      [&] {
        auto h = Admin("GET", std::string("/v1/stores/") + kAgentStore + "/health");
        return h && h->status == 200 && Str(*ParseObject(h->body), "health") == "healthy";
      },
      30s))
      << "the agent did not report healthy: " << agent_->Logs() << "\n"
      << LogTail();
}

void CrashDriver::Answered(const std::string& action, long status) {
  std::lock_guard lock(ledger_.mu);
  ++ledger_.answers[action + " " + std::to_string(status)];
  if (status >= 200 && status < 300) ++ledger_.acked_writes;
}

// One workload thread: it owns the stores it registered (only it changes their labels, so
// the order of its label writes is the order they were sent in).
void CrashDriver::Worker(int index) {
  std::mt19937_64 rng(seed_ * 7919 + static_cast<std::uint64_t>(index));
  auto pct = [&] { return static_cast<int>(rng() % 100); };
  client::HttpClient http;
  std::vector<std::string> own;
  if (index == 0) own.push_back(kAgentStore);
  int next_store = 0;
  int next_release = 0;
  const std::vector<std::pair<std::string, std::string>> json_type = {{"Content-Type", "application/json"}};

  auto record_request = [&](const std::string& store, const std::string& action,
                            const std::optional<client::HttpResponse>& resp) {
    if (!resp) return;
    Answered(action, resp->status);
    if (resp->status != 202) return;
    auto body = ParseObject(resp->body);
    if (!body) return;
    const auto id = Str(*body, "id");
    std::lock_guard lock(ledger_.mu);
    if (id.rfind("chg_", 0) == 0) {
      ledger_.changes[id] = ChangeRec{store, index, ""};
    } else {
      ledger_.runs[id] = RunRec{store, Str(*body, "kind")};
    }
  };

  while (!stop_) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2 + rng() % static_cast<std::uint64_t>(pace_ms_)));
    if (own.size() < 2 || (own.size() < 25 && pct() < 20) || pct() < 3) {
      const auto id = "s" + std::to_string(index) + "-" + std::to_string(next_store++);
      const std::string env = pct() < 25 ? "production" : "staging";
      auto resp =
          Send(http, token_, "POST", "/v1/stores",
               R"({"id":")" + id + R"(","environment":")" + env +
                   R"(","isolation_mode":"shared","labels":{"gen":"0","team":"t)" + std::to_string(index) + R"("}})",
               json_type);
      if (resp) Answered("register", resp->status);
      if (resp && resp->status == 201) {
        std::lock_guard lock(ledger_.mu);
        ledger_.stores[id] = StoreRec{env, index, 0, 0, "", 0};
        own.push_back(id);
      }
      continue;
    }
    const std::string store = own[rng() % own.size()];
    const int r = pct();
    if (r < 25) {
      long gen = 0;
      {
        std::lock_guard lock(ledger_.mu);
        gen = ++ledger_.stores[store].label_sent;
      }
      auto resp =
          Send(http, token_, "PATCH", "/v1/stores/" + store, R"({"labels":{"gen":")" + std::to_string(gen) + R"("}})",
               {{"Content-Type", "application/merge-patch+json"}, {"If-Match", "*"}});
      if (resp) Answered("label", resp->status);
      if (resp && resp->status == 200) {
        std::lock_guard lock(ledger_.mu);
        auto& rec = ledger_.stores[store];
        rec.label_acked = std::max(rec.label_acked, gen);
      }
      continue;
    }
    if (r < 35) {
      // Approve one of this worker's pending changes, as bob.
      std::string change;
      {
        std::lock_guard lock(ledger_.mu);
        std::vector<std::string> pending;
        for (const auto& [id, c] : ledger_.changes) {
          if (c.owner == index && c.acked_status.empty()) pending.push_back(id);
        }
        if (!pending.empty()) change = pending[rng() % pending.size()];
      }
      if (change.empty()) continue;
      auto resp = Send(http, bob_token_, "POST", "/v1/changes/" + change + "/approve", "{}", json_type);
      if (!resp) continue;
      Answered("approve", resp->status);
      std::lock_guard lock(ledger_.mu);
      if (resp->status == 200) {
        auto body = ParseObject(resp->body);
        ledger_.changes[change].acked_status = body ? Str(*body, "status") : "?";
      } else if (resp->status == 409) {
        ledger_.changes[change].acked_status = "-";  // not pending any more (an unanswered approval took it)
      }
      continue;
    }
    if (index == 0 && r < 45) {
      auto resp = Send(http, token_, "POST", std::string("/v1/stores/") + kAgentStore + "/operations",
                       R"({"name":"health.probe","params":{},"expires_in_s":60})", json_type);
      if (resp) Answered("operation", resp->status);
      if (resp && (resp->status == 202 || resp->status == 201)) {
        auto body = ParseObject(resp->body);
        if (body) {
          std::lock_guard lock(ledger_.mu);
          ledger_.ops[Str(*body, "id")] = OpRec{kAgentStore};
        }
      }
      continue;
    }
    auto got = Send(http, token_, "GET", "/v1/stores/" + store);
    if (!got || got->status != 200) continue;
    const auto state = Str(*ParseObject(got->body), "state");
    if (state == "registered" || state == "provision_failed") {
      record_request(store, "provision", Send(http, token_, "POST", "/v1/stores/" + store + "/provision"));
    } else if (state == "active") {
      const int a = pct();
      if (a < 80) {
        const auto release = "r" + std::to_string(index) + "-" + std::to_string(++next_release);
        record_request(store, "deploy",
                       Send(http, token_, "POST", "/v1/stores/" + store + "/deployments",
                            R"({"release":")" + release + R"("})", json_type));
      } else if (a < 92) {
        record_request(store, "rollback", Send(http, token_, "POST", "/v1/stores/" + store + "/rollbacks"));
      } else if (store != kAgentStore) {
        record_request(store, "decommission", Send(http, token_, "POST", "/v1/stores/" + store + "/decommission"));
      }
    } else if (state == "decommission_failed") {
      record_request(store, "decommission", Send(http, token_, "POST", "/v1/stores/" + store + "/decommission"));
    }
  }
}

// storeplaned must be alive when the driver kills it: an exit of its own (a crash, an abort,
// a signal from elsewhere) is a violation, with its status and the end of its log.
void CrashDriver::CheckStillRunning() {
  int status = 0;
  if (!server_ || !server_->Exited(&status)) return;
  std::string how = WIFSIGNALED(status) ? "killed by signal " + std::to_string(WTERMSIG(status)) +
                                              (WCOREDUMP(status) ? " (core dumped)" : "")
                    : WIFEXITED(status) ? "exited with status " + std::to_string(WEXITSTATUS(status))
                                        : "ended (status " + std::to_string(status) + ")";
  const auto logs = server_->Logs();
  violations_.Add("storeplaned " + how + " before the driver killed it; log tail:\n" +
                  logs.substr(logs.size() > 3000 ? logs.size() - 3000 : 0));
}

void CrashDriver::IntegrityCheck() {
  ++integrity_checks_;
  const auto path = data_dir_ + "/storeplane.db";
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    violations_.Add("cannot open the database for integrity_check: " + std::string(sqlite3_errmsg(db)));
    sqlite3_close(db);
    return;
  }
  sqlite3_busy_timeout(db, 5000);
  sqlite3_stmt* stmt = nullptr;
  std::vector<std::string> rows;
  if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &stmt, nullptr) == SQLITE_OK) {
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
      rows.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)));
    }
    if (rc != SQLITE_DONE) rows.push_back(std::string("step failed: ") + sqlite3_errmsg(db));
  } else {
    rows.push_back(std::string("prepare failed: ") + sqlite3_errmsg(db));
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  if (rows.size() != 1 || rows[0] != "ok") {
    std::string all;
    for (const auto& r : rows) all += r + "; ";
    violations_.Add("PRAGMA integrity_check: " + all);
  }
}

bool CrashDriver::FetchAll(const std::string& base, const std::string& cursor_param, std::vector<json::object>& out) {
  std::string cursor;
  int limited = 0;
  for (int page = 0; page < 100000; ++page) {
    const auto sep = base.find('?') == std::string::npos ? "?" : "&";
    client::HttpRequest req;
    req.url = url() + base + (cursor.empty() ? "" : sep + cursor_param + "=" + cursor);
    req.headers = {{"Authorization", "Bearer " + token_}};
    auto sent = http_.Send(req);
    // A connection that cannot even be opened (a loaded machine's ephemeral ports, another
    // suite's connection flood) is retried and counted, not taken for a lost write.
    for (int retry = 0; !sent.ok() && retry < 10; ++retry) {
      ++transient_connect_failures_;
      std::this_thread::sleep_for(200ms);
      sent = http_.Send(req);
    }
    if (!sent.ok()) {
      last_fetch_error_ = "GET " + req.url + ": " + sent.error().message;
      return false;
    }
    std::optional<client::HttpResponse> resp = sent.value();
    if (resp->status == 429 && ++limited <= 120) {
      ++rate_limited_;
      std::this_thread::sleep_for(1s);
      --page;  // the same page again
      continue;
    }
    if (resp->status != 200) {
      last_fetch_error_ = "GET " + req.url + ": " + std::to_string(resp->status) + " " + resp->body.substr(0, 500);
      return false;
    }
    auto body = ParseObject(resp->body);
    if (!body) return false;
    for (const auto& item : body->at("items").as_array()) out.push_back(item.as_object());
    const auto& next = body->at("next_cursor");
    if (next.is_null()) return true;
    cursor = std::string(next.as_string());
  }
  return false;
}

void CrashDriver::CheckAcknowledged(bool final) {
  // What was acknowledged before this point (later writes are checked next time).
  std::map<std::string, StoreRec> stores;
  std::map<std::string, RunRec> runs;
  std::map<std::string, ChangeRec> changes;
  std::map<std::string, OpRec> ops;
  {
    std::lock_guard lock(ledger_.mu);
    stores = ledger_.stores;
    runs = ledger_.runs;
    changes = ledger_.changes;
    ops = ledger_.ops;
  }
  // Stores, and their labels.
  std::vector<json::object> listed;
  if (!FetchAll("/v1/stores?limit=1000", "cursor", listed)) {
    violations_.Add("cannot list the stores after the restart: " + last_fetch_error_);
    CheckStillRunning();
    return;
  }
  std::map<std::string, json::object> by_id;
  for (auto& s : listed) by_id[Str(s, "id")] = s;
  for (const auto& [id, rec] : stores) {
    ++acked_checks_;
    auto it = by_id.find(id);
    if (it == by_id.end()) {
      violations_.Add("acknowledged store " + id + " is missing");
      continue;
    }
    const auto& s = it->second;
    if (Str(s, "environment") != rec.environment) violations_.Add("store " + id + " changed environment");
    const auto& labels = s.at("labels").as_object();
    const long gen = labels.contains("gen") ? std::strtol(Str(labels, "gen").c_str(), nullptr, 10) : -1;
    // At least what was acknowledged before the listing; at most what was sent before the
    // check (read now: a write sent during the listing may already show).
    long sent = 0;
    {
      std::lock_guard lock(ledger_.mu);
      sent = ledger_.stores[id].label_sent;
    }
    if (gen < rec.label_acked || gen > sent) {
      violations_.Add("store " + id + " label gen=" + std::to_string(gen) + " but acknowledged " +
                      std::to_string(rec.label_acked) + " and sent at most " + std::to_string(sent));
    }
    const auto state = Str(s, "state");
    const auto version = s.at("version").to_number<std::int64_t>();
    const auto before = rec.seen_state.empty() ? std::string("registered") : rec.seen_state;
    if (!StoreReachable(before, state)) {
      violations_.Add("store " + id + " went " + before + " -> " + state + ", not a legal lifecycle path");
    }
    if (version < rec.seen_version) {
      violations_.Add("store " + id + " version went back from " + std::to_string(rec.seen_version) + " to " +
                      std::to_string(version));
    }
    std::lock_guard lock(ledger_.mu);
    ledger_.stores[id].seen_state = state;
    ledger_.stores[id].seen_version = version;
  }
  // Stores nobody acknowledged are checked for legal states too (registrations whose answer was lost).
  for (const auto& [id, s] : by_id) {
    if (!StoreReachable("registered", Str(s, "state"))) violations_.Add("store " + id + " is in an unknown state");
  }

  // Runs: every acknowledged one present; every run's state reachable from the last one seen.
  // The provider's counts are read first: a run it was sent is committed before the listing.
  const auto triggers = ci_.trigger_counts();
  std::vector<json::object> run_list;
  if (!FetchAll("/v1/runs?limit=1000", "cursor", run_list)) {
    violations_.Add("cannot list the runs after the restart: " + last_fetch_error_);
    return;
  }
  std::map<std::string, json::object> runs_by_id;
  std::set<std::pair<std::string, std::string>> run_kinds_by_store;
  for (auto& r : run_list) {
    runs_by_id[Str(r, "id")] = r;
    run_kinds_by_store.insert({Str(r, "store_id"), Str(r, "kind")});
  }
  for (const auto& [id, rec] : runs) {
    ++acked_checks_;
    auto it = runs_by_id.find(id);
    if (it == runs_by_id.end()) {
      violations_.Add("acknowledged run " + id + " (" + rec.kind + " of " + rec.store + ") is missing");
      continue;
    }
    if (Str(it->second, "store_id") != rec.store || Str(it->second, "kind") != rec.kind) {
      violations_.Add("run " + id + " changed store or kind");
    }
  }
  for (const auto& [id, r] : runs_by_id) {
    const auto kind = Str(r, "kind");
    const auto state = Str(r, "state");
    auto& seen = run_seen_[id];
    const auto before = seen.second.empty() ? std::string("pending") : seen.second;
    if (!RunReachable(kind, before, state)) {
      violations_.Add("run " + id + " (" + kind + ") went " + before + " -> " + state + ", not a legal path");
    }
    if (final && !by_id.contains(Str(r, "store_id"))) violations_.Add("run " + id + " names a missing store");
    seen = {kind, state};
    const bool active = r.at("active").as_bool();
    if (active != RunActive(kind, state)) {
      violations_.Add("run " + id + " is " + state + " with active=" + (active ? "true" : "false"));
    }
    if (final) {
      if (active) violations_.Add("run " + id + " (" + kind + ") is still " + state + " after the workload stopped");
      const bool must_have_reached =
          state != "pending" && state != "failed" && state != "timed_out" && state != "cancelled";
      auto t = triggers.find(id);
      if (must_have_reached && t == triggers.end()) {
        violations_.Add("run " + id + " is " + state + " but its trigger never reached the provider");
      }
    }
  }
  // At most one active run per store (ADR 0008: the partial unique index).
  std::map<std::string, int> active_per_store;
  for (const auto& [id, r] : runs_by_id) {
    if (r.at("active").as_bool() && ++active_per_store[Str(r, "store_id")] == 2) {
      violations_.Add("store " + Str(r, "store_id") + " has more than one active run");
    }
  }
  for (const auto& [id, n] : triggers) {
    if (n > 1 && duplicates_reported_.insert(id).second) {
      violations_.Add("run " + id + " was triggered " + std::to_string(n) + " times");
    }
    if (!runs_by_id.contains(id))
      violations_.Add("the provider got a trigger for run " + id + ", which the database lost");
  }

  // Changes (held requests) and their approvals: each one until its answered status was seen
  // after a restart, then a sample of 20 a round (all of them at the end).
  std::vector<std::string> confirmed;
  for (const auto& [id, rec] : changes) {
    if (confirmed_changes_.contains(id)) confirmed.push_back(id);
  }
  std::set<std::string> sample;
  for (int i = 0; i < 20 && !confirmed.empty(); ++i) sample.insert(confirmed[rng_() % confirmed.size()]);
  for (const auto& [id, rec] : changes) {
    if (!final && confirmed_changes_.contains(id) && !sample.contains(id)) continue;
    ++acked_checks_;
    auto resp = Admin("GET", "/v1/changes/" + id);
    if (!resp) {
      violations_.Add("no answer for change " + id);
      continue;
    }
    if (resp->status != 200) {
      violations_.Add("acknowledged change " + id + " answers " + std::to_string(resp->status));
      continue;
    }
    const auto change = *ParseObject(resp->body);
    const auto status = Str(change, "status");
    // An approval answered `executed` made its run in the same transaction: the run is there
    // too (only approvals answered before the listing: a later one's run may be newer).
    if (rec.acked_status == "executed") {
      const auto action = Str(change, "action");
      const std::string kind = action == "store.provision" ? "provision" : action == "deploy.request" ? "deploy" : "";
      if (!kind.empty() && !run_kinds_by_store.contains({rec.store, kind})) {
        violations_.Add("change " + id + " (" + action + " on " + rec.store + ") is executed but the store has no " +
                        kind + " run");
      }
    }
    if (!rec.acked_status.empty() && rec.acked_status != "-" && status != rec.acked_status) {
      violations_.Add("change " + id + " was answered " + rec.acked_status + " to its approval, now " + status);
    }
    if (!rec.acked_status.empty()) confirmed_changes_.insert(id);
  }

  // Operations of the agent's store.
  std::vector<json::object> op_list;
  if (!FetchAll(std::string("/v1/stores/") + kAgentStore + "/operations?limit=1000", "cursor", op_list)) {
    violations_.Add("cannot list the operations after the restart: " + last_fetch_error_);
    return;
  }
  std::map<std::string, std::string> op_state;
  for (auto& o : op_list) op_state[Str(o, "id")] = Str(o, "state");
  for (const auto& [id, rec] : ops) {
    ++acked_checks_;
    if (!op_state.contains(id)) violations_.Add("acknowledged operation " + id + " is missing");
  }
  for (const auto& [id, state] : op_state) {
    auto& seen = op_seen_[id];
    const auto before = seen.empty() ? std::string("queued") : seen;
    if (!OperationReachable(before, state)) {
      violations_.Add("operation " + id + " went " + before + " -> " + state + ", not a legal path");
    }
    seen = state;
    if (final && !OperationFinal(state)) violations_.Add("operation " + id + " is still " + state + " at the end");
  }
  CheckAuditTransitions();
  if (final) {
    // Every run's audit trail of transitions ends where the run is.
    for (const auto& [id, r] : runs_by_id) {
      auto it = audit_last_to_.find(id);
      const auto state = Str(r, "state");
      if (state == "pending" && it == audit_last_to_.end()) continue;
      if (it == audit_last_to_.end() || it->second != state) {
        violations_.Add("run " + id + " is " + state + " but its last run.transition record says " +
                        (it == audit_last_to_.end() ? std::string("nothing") : it->second));
      }
    }
  }
}

// Every new run.transition record: a legal step for the run's kind, from where the run's
// previous record left it (a run starts pending).
void CrashDriver::CheckAuditTransitions() {
  for (;;) {
    auto resp = Admin("GET", "/v1/audit?action=run.transition&limit=1000&after=" + std::to_string(audit_after_));
    if (!resp || resp->status != 200) {
      violations_.Add("cannot read the audit trail");
      return;
    }
    auto body = ParseObject(resp->body);
    const auto& items = body->at("items").as_array();
    for (const auto& item : items) {
      const auto& rec = item.as_object();
      audit_after_ = std::max(audit_after_, rec.at("seq").to_number<std::int64_t>());
      const auto& params = rec.at("params").as_object();
      if (!params.contains("from") || !params.contains("to")) continue;  // "no change" records
      ++audit_transitions_checked_;
      if (Str(params, "detail") == "found_at_provider") ++adopted_at_provider_;
      const auto run = Str(params, "run");
      const auto kind = Str(params, "kind");
      const auto from = Str(params, "from");
      const auto to = Str(params, "to");
      // from == to is legal: the outbox records an accepted trigger on a run its pipeline's
      // callback already moved (the external id and the outbox row change, the state does not).
      if (!RunReachable(kind, from, to)) {
        violations_.Add("audit seq " + std::to_string(rec.at("seq").to_number<std::int64_t>()) + ": run " + run + " (" +
                        kind + ") " + from + " -> " + to + " is not a legal transition");
      }
      auto it = audit_last_to_.find(run);
      const auto expected_from = it == audit_last_to_.end() ? std::string("pending") : it->second;
      if (from != expected_from) {
        violations_.Add("audit seq " + std::to_string(rec.at("seq").to_number<std::int64_t>()) + ": run " + run +
                        " moves from " + from + " but its previous record left it " + expected_from);
      }
      audit_last_to_[run] = to;
    }
    if (items.size() < 1000) return;
  }
}

void CrashDriver::VerifyAuditChain() {
  ++audit_verifies_;
  const std::string cmd = "STOREPLANE_ADDR='" + url() + "' STOREPLANE_TOKEN='" + token_ + "' '" + CliBinary() +
                          "' -o json audit verify --public-key '" + key_path_ + "' 2>&1";
  std::string output;
  int status = 0;
  for (int attempt = 0; attempt < 5; ++attempt) {
    FILE* pipe = ::popen(cmd.c_str(), "r");
    if (pipe == nullptr) {
      violations_.Add("cannot run storeplane audit verify");
      return;
    }
    output.clear();
    char buf[4096];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) output.append(buf, n);
    status = ::pclose(pipe);
    // The CLI could not connect at all: a transient failure of the machine, not of the chain.
    if (output.find("Couldn't connect to server") == std::string::npos) break;
    ++transient_connect_failures_;
    std::this_thread::sleep_for(200ms);
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    violations_.Add("storeplane audit verify failed (status " + std::to_string(status) +
                    "): " + output.substr(0, 2000));
    return;
  }
  const auto brace = output.find('{');
  auto summary = brace == std::string::npos ? std::nullopt
                                            : ParseObject(output.substr(brace, output.find('}', brace) - brace + 1));
  if (!summary || !summary->contains("records")) {
    violations_.Add("storeplane audit verify printed no summary: " + output.substr(0, 2000));
    return;
  }
  const auto records = summary->at("records").to_number<std::int64_t>();
  if (records < audit_records_) {
    violations_.Add("the audit chain shrank from " + std::to_string(audit_records_) + " to " + std::to_string(records) +
                    " records");
  }
  audit_records_ = records;
}

// The workload has stopped: the server stays up until every run has ended and every
// operation is final (timeouts, polling and the gate included), or two minutes pass.
void CrashDriver::Quiesce() {
  WaitFor(
      [&] {
        auto runs = Admin("GET", "/v1/runs?active=true&limit=1000");
        if (!runs || runs->status != 200) return false;
        if (!ParseObject(runs->body)->at("items").as_array().empty()) return false;
        std::vector<json::object> ops;
        if (!FetchAll(std::string("/v1/stores/") + kAgentStore + "/operations?limit=1000", "cursor", ops)) return false;
        for (const auto& o : ops) {
          if (!OperationFinal(Str(o, "state"))) return false;
        }
        return true;
      },
      120s);
}

void CrashDriver::PrintSummary(double seconds) {
  const auto c = ci_.counts();
  std::int64_t acked = 0;
  std::map<std::string, std::int64_t> answers;
  std::size_t stores = 0, runs = 0, changes = 0, ops = 0;
  {
    std::lock_guard lock(ledger_.mu);
    acked = ledger_.acked_writes;
    answers = ledger_.answers;
    stores = ledger_.stores.size();
    runs = ledger_.runs.size();
    changes = ledger_.changes.size();
    ops = ledger_.ops.size();
  }
  json::object summary{{"seed", std::to_string(seed_)},
                       {"kill_points", kills_},
                       {"restarts", restarts_},
                       {"integrity_checks", integrity_checks_},
                       {"acknowledged_writes", acked},
                       {"acknowledged_checks", acked_checks_},
                       {"stores", stores},
                       {"runs", runs},
                       {"changes", changes},
                       {"operations", ops},
                       {"triggers", c.triggers},
                       {"runs_triggered", c.runs},
                       {"duplicates", c.duplicates},
                       {"finds", c.finds},
                       {"callbacks_ok", c.callbacks_ok},
                       {"callbacks_already_received", c.callbacks_dup},
                       {"audit_verifications", audit_verifies_},
                       {"audit_records", audit_records_},
                       {"audit_transitions_checked", audit_transitions_checked_},
                       {"adopted_at_provider", adopted_at_provider_},
                       {"transient_connect_failures", transient_connect_failures_},
                       {"rate_limited", rate_limited_},
                       {"max_restart_ms", max_restart_ms_},
                       {"violations", violations_.items.size()},
                       {"duration_s", seconds}};
  json::object answer_counts;
  for (const auto& [k, v] : answers) answer_counts[k] = v;
  summary["answers"] = answer_counts;
  std::cout << "CRASH SUMMARY " << json::serialize(summary) << std::endl;
  if (const char* path = std::getenv("STOREPLANE_CRASH_SUMMARY"); path != nullptr && *path != '\0') {
    std::ofstream(path) << json::serialize(summary) << "\n";
  }
}

void CrashDriver::Run() {
  const auto started = Clock::now();
  Setup();
  if (::testing::Test::HasFatalFailure()) return;
  for (int i = 0; i < kWorkers; ++i) workers_.emplace_back([this, i] { Worker(i); });

  const char* stop_file = std::getenv("STOREPLANE_CRASH_STOP_FILE");
  for (int point = 1; point <= points_; ++point) {
    // A long run can be cut short (touch the file): the final checks and the summary still run.
    if (stop_file != nullptr && *stop_file != '\0' && fs::exists(stop_file)) break;
    violations_.point = point;
    // Kill delays: many short (the moments right after a restart), some long.
    const int bucket = static_cast<int>(rng_() % 100);
    const int delay_ms = bucket < 15   ? 0
                         : bucket < 50 ? static_cast<int>(rng_() % 150)
                         : bucket < 85 ? 150 + static_cast<int>(rng_() % 650)
                                       : 800 + static_cast<int>(rng_() % 1200);
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    CheckStillRunning();
    server_->Kill();
    ++kills_;
    IntegrityCheck();
    if (!StartServer()) {
      violations_.Add("storeplaned did not restart on its data directory: " + server_->error().substr(0, 4000));
      break;
    }
    ++restarts_;
    if (point % 50 == 0) {
      const auto c = ci_.counts();
      std::cout << "crash: " << point << "/" << points_ << " kill points, " << c.triggers << " triggers, "
                << violations_.items.size() << " violations, "
                << std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - started).count() << " s"
                << std::endl;
    }
    // Some kill points fall during the recovery itself: no checks before the next kill.
    if (delay_ms == 0 && rng_() % 2 == 0) continue;
    CheckAcknowledged(false);
    if (audit_every_ > 0 && point % audit_every_ == 0) VerifyAuditChain();
  }
  violations_.point = points_ + 1;
  stop_ = true;
  for (auto& t : workers_) t.join();
  workers_.clear();
  Quiesce();
  CheckStillRunning();
  // The agent lives through every restart of the control plane.
  if (agent_) {
    (void)agent_->WaitExit(0);
    if (!agent_->running()) {
      const auto logs = agent_->Logs();
      violations_.Add("shop-agent ended during the run; log tail:\n" +
                      logs.substr(logs.size() > 3000 ? logs.size() - 3000 : 0));
    }
  }
  CheckAcknowledged(true);
  VerifyAuditChain();
  for (const auto& p : ci_.problems()) violations_.Add(p);
  PrintSummary(std::chrono::duration<double>(Clock::now() - started).count());
  if (!violations_.items.empty() && server_) {
    const auto logs = server_->Logs();
    std::cerr << "storeplaned log tail:\n" << logs.substr(logs.size() > 8000 ? logs.size() - 8000 : 0) << std::endl;
  }
}

TEST(CrashPoints, KilledAtRandomMomentsTheControlPlaneKeepsItsInvariants) {
  const char* seed_env = std::getenv("STOREPLANE_CRASH_SEED");
  const std::uint64_t seed = (seed_env != nullptr && *seed_env != '\0')
                                 ? std::strtoull(seed_env, nullptr, 10)
                                 : std::random_device{}() ^ static_cast<std::uint64_t>(std::time(nullptr));
  const int points = static_cast<int>(EnvLong("STOREPLANE_CRASH_POINTS", 25));
  const int audit_every = static_cast<int>(EnvLong("STOREPLANE_CRASH_AUDIT_EVERY", 1));
  std::cout << "crash: seed " << seed << " (STOREPLANE_CRASH_SEED=" << seed << " STOREPLANE_CRASH_POINTS=" << points
            << " to reproduce the workload)" << std::endl;
  ::testing::Test::RecordProperty("seed", std::to_string(seed));
  // A storeplaned that dies by itself leaves a core file (kernel.core_pattern permitting) in
  // the working directory, for the post-mortem.
  rlimit core{RLIM_INFINITY, RLIM_INFINITY};
  (void)::setrlimit(RLIMIT_CORE, &core);
  CrashDriver driver(seed, points, audit_every);
  driver.Run();
  const auto& v = driver.violations().items;
  EXPECT_TRUE(v.empty()) << v.size() << " violations (seed " << seed
                         << "), the first: " << (v.empty() ? "" : v.front());
}

}  // namespace
}  // namespace storeplane::crash
