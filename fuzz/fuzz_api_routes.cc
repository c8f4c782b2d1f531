// Every JSON-body route of the operator API, the agent channel and the CI/CD callback
// route, dispatched in process through server::App::Handle (no sockets, no HTTP server).
// One App is built lazily on a throw-away SQLite database (under /dev/shm when it exists)
// with a fixed policy, two operator tokens, a development and a production store, an
// enrolled agent, a delivered operation, a queued run and a pending change, so that each
// route's authentication and lookups pass and its body parser is reached. The world is
// rebuilt from scratch every kRebuildEvery inputs, which bounds the database's growth.
//
// Input: byte 0 picks the route, byte 1 holds flags (see Flags below; 0 = valid headers),
// then one line per header the flags ask to fuzz, then the body (the rest). In the body,
// "$RUN" is replaced by the queued run's id and "$STORE" by the development store's id.
// FUZZ_API_VERBOSE=1 in the environment prints each request's route and answer.
#include <openssl/crypto.h>
#include <unistd.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/callback_signature.h"
#include "db/sqlite_repository.h"
#include "fuzz_support.h"
#include "server/agent_hub.h"
#include "server/app.h"
#include "server/auth.h"
#include "server/config.h"
#include "server/handler_support.h"
#include "server/logging.h"
#include "server/policy_loader.h"
#include "server/run_coordinator.h"

using namespace storeplane;
namespace fs = std::filesystem;

namespace {

constexpr int kRebuildEvery = 20'000;
constexpr std::int64_t kStartMs = 1'760'000'000'000;

constexpr std::string_view kPolicy = R"(version: 1
roles:
  all:
    description: everything the catalog holds
    allow:
      - actions: [store.*, agent.*, operation.*, run.*, change.*, token.*, audit.*, authz.*, principal.*]
      - actions: [deploy.*, rollback.*, isolation.*, rollout.*]
principals:
  admin:
    kind: operator
    roles: [all]
  approver:
    kind: operator
    roles: [all]
approvals:
  - actions: [store.label, store.provision, store.decommission, deploy.request, rollback.request, isolation.migrate]
    environments: [production]
    approvals: 1
    approver_role: all
    expires_after: 24h
)";

// A deterministic clock: every reading is one millisecond later.
std::atomic<std::int64_t> g_now{kStartMs};
std::int64_t FakeNow() { return g_now.fetch_add(1); }

enum Flags : std::uint8_t {
  kFuzzContentType = 1 << 0,  // a line: the Content-Type value ("-" for none)
  kFuzzIfMatch = 1 << 1,      // a line: the If-Match value ("-" for none); else "*"
  kIdempotencyKey = 1 << 2,   // a line: an Idempotency-Key
  kFuzzSignature = 1 << 3,    // hooks: three lines: timestamp, signature, delivery id
  kProduction = 1 << 4,       // store-scoped routes: the production store
  kFuzzAgentAuth = 1 << 5,    // agent routes: a line: the Authorization value
};

enum class Who { kAdmin, kApprover, kAgent, kNone, kHook };

struct Route {
  const char* method;
  const char* path;  // {store}, {change}, {op} are filled in
  Who who;
  const char* content_type = "application/json";
};

const std::vector<Route>& Routes() {
  static const std::vector<Route> routes = {
      {"POST", "/v1/stores", Who::kAdmin},
      {"PATCH", "/v1/stores/{store}", Who::kAdmin, "application/merge-patch+json"},
      {"POST", "/v1/tokens", Who::kAdmin},
      {"POST", "/v1/changes/{change}/approve", Who::kApprover},
      {"POST", "/v1/changes/{change}/reject", Who::kApprover},
      {"POST", "/v1/authz/explain", Who::kAdmin},
      {"POST", "/v1/stores/{store}/operations", Who::kAdmin},
      {"POST", "/v1/stores/{store}/provision", Who::kAdmin},
      {"POST", "/v1/stores/{store}/decommission", Who::kAdmin},
      {"POST", "/v1/stores/{store}/deployments", Who::kAdmin},
      {"POST", "/v1/stores/{store}/rollbacks", Who::kAdmin},
      {"POST", "/v1/stores/{store}/isolation-migrations", Who::kAdmin},
      {"POST", "/v1/stores/{store}/enrollment-tokens", Who::kAdmin},
      {"POST", "/agent/v1/enroll", Who::kNone},
      {"POST", "/agent/v1/heartbeat", Who::kAgent},
      {"GET", "/agent/v1/operations", Who::kAgent},  // the body is the query string
      {"POST", "/agent/v1/operations/{op}/result", Who::kAgent},
      {"POST", "/agent/v1/credential/rotate", Who::kAgent},
      {"POST", "/hooks/cicd/hook", Who::kHook},
      {"POST", "/v1/rollouts", Who::kAdmin},
  };
  return routes;
}

std::string LastSegment(const server::Response& resp) {
  for (const auto& [name, value] : resp.headers) {
    if (name == "Location") return value.substr(value.rfind('/') + 1);
  }
  return {};
}

std::string JsonField(const std::string& body, std::string_view key) {
  const std::string needle = "\"" + std::string(key) + "\":\"";
  const auto at = body.find(needle);
  if (at == std::string::npos) return {};
  const auto start = at + needle.size();
  return body.substr(start, body.find('"', start) - start);
}

class World {
 public:
  World() {
    const char* tmp = std::getenv("TMPDIR");
    std::string base = ::access("/dev/shm", W_OK) == 0 ? "/dev/shm" : (tmp != nullptr && *tmp ? tmp : "/tmp");
    // Directories of earlier runs that were killed (their atexit handler never ran).
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(base, ec)) {
      const auto name = entry.path().filename().string();
      if (!name.starts_with("storeplane-fuzz-api-")) continue;
      const auto pid = name.substr(std::string_view("storeplane-fuzz-api-").size());
      if (!fs::exists("/proc/" + pid)) fs::remove_all(entry.path(), ec);
    }
    dir_ = base + "/storeplane-fuzz-api-" + std::to_string(::getpid());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    WriteFile(dir_ + "/callback.secret", kCallbackSecret);
    WriteFile(dir_ + "/hook.secret", "trigger-secret-0123456789abcdef");

    config_.data_dir = dir_;
    config_.limits.principal_rps = 1e12;
    config_.limits.principal_burst = 1e12;
    config_.audit.record_reads = false;
    server::CicdProviderEntry hook;
    hook.provider.name = "hook";
    hook.provider.type = "webhook";
    hook.provider.base_url = "http://127.0.0.1:9/never";
    hook.provider.secret_file = dir_ + "/hook.secret";
    hook.callback_secret_file = dir_ + "/callback.secret";
    config_.cicd.providers.push_back(hook);
    config_.cicd.routes.push_back(server::CicdRoute{{}, {}, "hook"});
    config_.cicd.public_url = "http://127.0.0.1:9";

    db::SqliteOptions options;
    options.path = dir_ + "/storeplane.db";
    options.read_connections = 1;
    auto repo = db::OpenSqliteRepository(options);
    if (!repo.ok()) Die("open", repo.error().message);
    repo_ = std::move(*repo);

    auto policy = server::ParsePolicyText(kPolicy, "fuzz-policy.yaml", config_.environments);
    if (!policy.ok()) Die("policy", policy.error().message);
    policy_ = std::make_unique<server::PolicyHolder>(std::make_shared<const core::Policy>(std::move(*policy)));

    server::AgentHubOptions hub_options;
    hub_options.agent_rps = 1e12;
    hub_options.agent_burst = 1e12;
    hub_ = std::make_unique<server::AgentHub>(*repo_, hub_options, FakeNow);
    if (auto s = hub_->Load(); !s.ok()) Die("hub", s.error().message);
    auto providers = server::RunCoordinator::MakeProviders(config_.cicd);
    if (!providers.ok()) Die("providers", providers.error().message);
    runs_ = std::make_unique<server::RunCoordinator>(*repo_, config_.cicd, config_.cicd.public_url,
                                                     std::move(*providers), FakeNow);
    // Never Start()ed: no trigger leaves the process; runs stay queued.

    server::Services services{*repo_, config_, *policy_, "", FakeNow};
    services.agents = hub_.get();
    services.runs = runs_.get();
    app_ = std::make_unique<server::App>(services);

    AddToken("admin", admin_token_);
    AddToken("approver", approver_token_);
    Expect(Call("POST", "/v1/stores", admin_token_,
                R"({"id":"fuzz-dev","environment":"development","isolation_mode":"shared","labels":{"tier":"gold"}})"),
           201, "register dev");
    // Production registration does not need approval in this policy.
    Expect(Call("POST", "/v1/stores", admin_token_,
                R"({"id":"fuzz-prod","environment":"production","isolation_mode":"dedicated"})"),
           201, "register prod");
    auto enroll = Call("POST", "/v1/stores/fuzz-dev/enrollment-tokens", admin_token_, "{}");
    Expect(enroll, 201, "enrollment token");
    auto enrolled = Call("POST", "/agent/v1/enroll", "",
                         R"({"store_id":"fuzz-dev","enrollment_token":")" + JsonField(enroll.body, "token") +
                             R"(","agent_version":"0.1.0"})");
    Expect(enrolled, 201, "enroll");
    agent_credential_ = JsonField(enrolled.body, "credential");
    Expect(Call("POST", "/agent/v1/heartbeat", agent_credential_,
                R"({"agent_version":"0.1.0","session":"0123456789abcdef","release":"r1","isolation_mode":"shared",)"
                R"("allowed_operations":["health.probe","cache.flush","maintenance.enable"],"checks":[]})"),
           200, "heartbeat");
    auto run = Call("POST", "/v1/stores/fuzz-dev/provision", admin_token_, "{}");
    if (run.status / 100 == 2) run_id_ = LastSegment(run);
    RefreshOperation();
    RefreshChange();
  }

  ~World() {
    app_.reset();
    runs_.reset();
    hub_.reset();
    repo_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  const std::string& dir() const { return dir_; }

  void Run(fuzz::Reader& in, const Route& route) {
    const auto flags = in.Byte();
    server::Request req;
    req.method = route.method;
    req.remote = "127.0.0.1:4242";
    std::string path = route.path;
    const std::string store = (flags & kProduction) ? "fuzz-prod" : "fuzz-dev";
    Replace(path, "{store}", store);
    if (path.find("{change}") != std::string::npos) {
      if (change_id_.empty()) RefreshChange();
      Replace(path, "{change}", change_id_.empty() ? "chg_none" : change_id_);
    }
    if (path.find("{op}") != std::string::npos) {
      if (op_id_.empty()) RefreshOperation();
      Replace(path, "{op}", op_id_.empty() ? "op_none" : op_id_);
    }
    req.path = path;
    if (flags & kFuzzContentType) {
      const auto ct = in.Line();
      if (ct != "-") req.headers["content-type"] = std::string(ct);
    } else {
      req.headers["content-type"] = route.content_type;
    }
    if (flags & kFuzzIfMatch) {
      const auto value = in.Line();
      if (value != "-") req.headers["if-match"] = std::string(value);
    } else {
      req.headers["if-match"] = "*";
    }
    if (flags & kIdempotencyKey) req.headers["idempotency-key"] = std::string(in.Line());
    std::string timestamp, signature, delivery;
    if (route.who == Who::kHook && (flags & kFuzzSignature)) {
      timestamp = in.Line();
      signature = in.Line();
      delivery = in.Line();
    }
    std::string authorization;
    if (route.who == Who::kAgent && (flags & kFuzzAgentAuth)) {
      authorization = in.Line();
    } else if (route.who == Who::kAdmin) {
      authorization = "Bearer " + admin_token_;
    } else if (route.who == Who::kApprover) {
      authorization = "Bearer " + approver_token_;
    } else if (route.who == Who::kAgent) {
      authorization = "Bearer " + agent_credential_;
    }
    if (!authorization.empty()) req.headers["authorization"] = authorization;

    std::string body(in.Rest());
    Replace(body, "$RUN", run_id_.empty() ? "run_none" : run_id_);
    Replace(body, "$STORE", "fuzz-dev");
    if (req.method == "GET") {
      req.query = std::move(body);
    } else {
      req.body = std::move(body);
    }
    if (route.who == Who::kHook && !(flags & kFuzzSignature)) {
      const std::int64_t now_s = g_now.load() / 1000;
      timestamp = std::to_string(now_s);
      signature = core::SignPayload(kCallbackSecret, now_s, req.body);
      delivery = "dlv-" + std::to_string(++deliveries_);
    }
    if (route.who == Who::kHook) {
      req.headers["x-storeplane-timestamp"] = timestamp;
      req.headers["x-storeplane-signature"] = signature;
      req.headers["x-storeplane-delivery"] = delivery;
    }

    auto resp = app_->Handle(req);
    static const bool verbose = std::getenv("FUZZ_API_VERBOSE") != nullptr;
    if (verbose) {
      std::fprintf(stderr, "%s %s -> %d %.200s\n", req.method.c_str(), req.path.c_str(), resp.status,
                   resp.body.c_str());
    }
    if (resp.status >= 500 && resp.status != 503) {
      std::fprintf(stderr, "fuzz_api_routes: %s %s answered %d: %s\n", req.method.c_str(), req.path.c_str(),
                   resp.status, resp.body.c_str());
      __builtin_trap();  // a body must never make the server fail internally
    }
    // Keep the fixtures usable: a consumed change or operation is replaced; a rotated
    // credential is followed.
    const std::string_view p(route.path);
    if (resp.status / 100 == 2) {
      if (p.find("{change}") != std::string_view::npos) change_id_.clear();
      if (p.find("{op}") != std::string_view::npos) op_id_.clear();
      if (p == "/agent/v1/credential/rotate") {
        const auto credential = JsonField(resp.body, "credential");
        if (!credential.empty()) agent_credential_ = credential;
      }
    }
  }

 private:
  static constexpr const char* kCallbackSecret = "callback-secret-0123456789abcdef";

  [[noreturn]] static void Die(const char* what, const std::string& detail) {
    std::fprintf(stderr, "fuzz_api_routes setup: %s: %s\n", what, detail.c_str());
    std::abort();
  }
  static void Expect(const server::Response& resp, int status, const char* what) {
    if (resp.status != status) Die(what, std::to_string(resp.status) + " " + resp.body);
  }
  static void WriteFile(const std::string& path, std::string_view text) {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (f == nullptr) Die("write", path);
    std::fwrite(text.data(), 1, text.size(), f);
    std::fclose(f);
  }
  static void Replace(std::string& text, std::string_view from, std::string_view to) {
    for (auto at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
      text.replace(at, from.size(), to);
    }
  }

  void AddToken(const std::string& principal, std::string& token) {
    token = server::GenerateToken();
    db::TokenRecord record;
    record.id = "tok_" + principal;
    record.token_hash = server::Sha256Hex(token);
    record.principal_id = principal;
    record.description = "fuzz";
    record.created_at_ms = kStartMs;
    record.created_by = "system";
    db::WriteBatch batch;
    batch.effects.emplace_back(
        db::InsertTokenEffect{db::Principal{principal, principal, "operator", {}, kStartMs}, record});
    batch.audit.push_back(server::SystemAuditEntry(kStartMs, "token.create", "token/" + record.id, "ok", {}));
    auto written = repo_->Apply(batch);
    if (!written.ok()) Die("token", written.error().message);
  }

  server::Response Call(const std::string& method, const std::string& target, const std::string& token,
                        std::string body) {
    server::Request req;
    req.method = method;
    const auto q = target.find('?');
    req.path = target.substr(0, q);
    if (q != std::string::npos) req.query = target.substr(q + 1);
    req.remote = "127.0.0.1:4242";
    req.headers["content-type"] = method == "PATCH" ? "application/merge-patch+json" : "application/json";
    req.headers["if-match"] = "*";
    if (!token.empty()) req.headers["authorization"] = "Bearer " + token;
    req.body = std::move(body);
    return app_->Handle(req);
  }

  // A delivered health.probe for the agent's result route.
  void RefreshOperation() {
    auto queued = Call("POST", "/v1/stores/fuzz-dev/operations", admin_token_, R"({"name":"health.probe"})");
    if (queued.status != 202) return;
    auto polled = Call("GET", "/agent/v1/operations?session=0123456789abcdef&wait_ms=0", agent_credential_, "");
    if (polled.status == 200) op_id_ = JsonField(polled.body, "id");
  }

  // A pending change (a production label change waits for the approver).
  void RefreshChange() {
    auto patched = Call("PATCH", "/v1/stores/fuzz-prod", admin_token_,
                        R"({"labels":{"round":")" + std::to_string(++changes_) + R"("}})");
    if (patched.status == 202) change_id_ = LastSegment(patched);
  }

  std::string dir_;
  server::Config config_;
  std::unique_ptr<db::Repository> repo_;
  std::unique_ptr<server::PolicyHolder> policy_;
  std::unique_ptr<server::AgentHub> hub_;
  std::unique_ptr<server::RunCoordinator> runs_;
  std::unique_ptr<server::App> app_;
  std::string admin_token_, approver_token_, agent_credential_;
  std::string run_id_, op_id_, change_id_;
  int changes_ = 0;
  int deliveries_ = 0;
};

// Never destroyed at exit: the world's destructors (the agent hub's final sweep) use
// function-local statics of the core that exit() may already have destroyed. Its directory
// is removed at exit; the process's end stops its threads.
World* g_world = nullptr;
std::string g_world_dir;
int g_inputs = 0;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // The world's writer thread still runs when the process exits (above): OpenSSL must not
  // tear itself down at exit under it (an audit record being sealed then crashed in
  // EVP_Digest after a merge run). This is the first OpenSSL call, so the flag holds.
  OPENSSL_init_crypto(OPENSSL_INIT_NO_ATEXIT, nullptr);
  server::log::Init("off");
  std::atexit([] {
    std::error_code ec;
    if (!g_world_dir.empty()) fs::remove_all(g_world_dir, ec);
  });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (g_world == nullptr || ++g_inputs % kRebuildEvery == 0) {
    delete g_world;
    g_world = new World();
    g_world_dir = g_world->dir();
  }
  fuzz::Reader in(data, size);
  const auto& routes = Routes();
  const auto& route = routes[in.Byte() % routes.size()];
  g_world->Run(in, route);
  return 0;
}
