// Moving a populated SQLite installation to PostgreSQL (`storeplaned migrate --from-sqlite`,
// docs/OPERATIONS.md): a data directory filled by bench_populate (stores, enrolled agents,
// thousands of audit records with signed checkpoints) and then used through the API (runs
// through a webhook CI, a rollout, tokens, idempotent requests) is copied; the server then
// started on PostgreSQL shows the same registry, runs and rollouts, its audit trail verifies
// with the same key (`storeplane audit verify`), and it keeps working. A second copy into
// the now populated database is refused and changes nothing.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <boost/json.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "client/http_client.h"
#include "core/callback_signature.h"
#include "tests/integration/fake_ci.h"
#include "tests/support/postgres_database.h"
#include "tests/support/postgres_process.h"
#include "tests/support/server_process.h"

namespace storeplane::testing {
namespace {

namespace json = boost::json;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr char kTriggerSecret[] = "migrate-trigger-secret-0123456789";
constexpr char kCallbackSecret[] = "migrate-callback-secret-9876543210";

struct CommandRun {
  int exit_code = -1;
  std::string output;
};

CommandRun Shell(const std::string& command, const std::string& out_path) {
  CommandRun run;
  const int status = std::system((command + " >" + out_path + " 2>&1").c_str());
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream in(out_path);
  std::stringstream ss;
  ss << in.rdbuf();
  run.output = ss.str();
  return run;
}

json::value Parse(const std::string& body) {
  boost::system::error_code ec;
  auto v = json::parse(body, ec);
  return ec ? json::value() : v;
}

std::string Text(const json::value& v, const char* key) {
  if (!v.is_object()) return "";
  const auto* x = v.as_object().if_contains(key);
  return x != nullptr && x->is_string() ? std::string(x->as_string()) : std::string();
}

class MigrateTest : public ::testing::Test {
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
    data_ = dir_->path() + "/data";
    // The webhook CI calls back at once: provisions and deploys succeed.
    ci_.OnTrigger([this](const FakeCi::Trigger& t) {
      auto body = Parse(t.body);
      std::thread([url = Text(body, "callback_url"), run = Text(body, "correlation_id")] {
        client::HttpClient http;
        const std::string payload = R"({"correlation_id": ")" + run + R"(", "status": "succeeded"})";
        const std::int64_t ts =
            std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
                .count();
        (void)http.Send({"POST",
                         url,
                         {{"Content-Type", "application/json"},
                          {"X-Storeplane-Timestamp", std::to_string(ts)},
                          {"X-Storeplane-Signature", core::SignPayload(kCallbackSecret, ts, payload)},
                          {"X-Storeplane-Delivery", "d-" + run}},
                         payload,
                         5000});
      }).detach();
    });
    std::ofstream(dir_->path() + "/policy.yaml") << R"(version: 1
roles:
  operator:
    allow:
      - actions: [store.*, deploy.request, rollback.request, run.read, operation.*, agent.*, change.read,
                  principal.whoami, window.read, rollout.*, audit.read, audit.export, token.*]
principals:
  admin:
    kind: operator
    roles: [operator]
  alice:
    kind: operator
    roles: [operator]
)";
    std::ofstream(dir_->path() + "/trigger.secret") << kTriggerSecret << "\n";
    std::ofstream(dir_->path() + "/callback.secret") << kCallbackSecret << "\n";
    std::ofstream(dir_->path() + "/config.yaml")
        << "cicd:\n"
        << "  run_timeout_s: 60\n"
        << "  providers:\n"
        << "    hook:\n"
        << "      type: webhook\n"
        << "      base_url: " << ci_.url() << "\n"
        << "      secret_file: " << dir_->path() << "/trigger.secret\n"
        << "      callback_secret_file: " << dir_->path() << "/callback.secret\n"
        << "  routes:\n"
        << "    - provider: hook\n";
  }

  void TearDown() override {
    if (server_ && server_->running()) server_->Stop();
  }

  void Start(bool postgres) {
    ServerOptions options;
    options.data_dir = data_;
    options.extra_args = {"--config", dir_->path() + "/config.yaml", "--policy", dir_->path() + "/policy.yaml"};
    if (postgres) {
      options.env = {"STOREPLANE_STORAGE_DRIVER=postgres", "STOREPLANE_POSTGRES_CONNINFO=" + conninfo_};
    } else {
      options.env = {"STOREPLANE_STORAGE_DRIVER=sqlite"};
    }
    server_ = std::make_unique<ServerProcess>(options);
    ASSERT_TRUE(server_->Start()) << server_->error() << server_->Logs();
  }

  client::HttpResponse Call(const std::string& method, const std::string& path, const std::string& body = "",
                            std::vector<std::pair<std::string, std::string>> extra = {}) {
    std::vector<std::pair<std::string, std::string>> headers = {{"Authorization", "Bearer " + token_}};
    if (!body.empty()) headers.emplace_back("Content-Type", "application/json");
    for (auto& h : extra) headers.push_back(std::move(h));
    auto resp = http_.Send({method, server_->url() + path, headers, body, 10000});
    if (!resp.ok()) return client::HttpResponse{0, {}, resp.error().message};
    return *resp;
  }

  bool WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (condition()) return true;
      std::this_thread::sleep_for(100ms);
    }
    return condition();
  }

  // Every page of a cursor-paged listing, concatenated (items only).
  std::string All(const std::string& path) {
    std::string out;
    std::string cursor;
    for (int page = 0; page < 1000; ++page) {
      const std::string sep = path.find('?') == std::string::npos ? "?" : "&";
      auto resp = Call("GET", path + sep + "limit=1000" + (cursor.empty() ? "" : "&cursor=" + cursor));
      EXPECT_EQ(resp.status, 200) << path << ": " << resp.body;
      auto v = Parse(resp.body);
      if (!v.is_object()) break;
      out += json::serialize(v.as_object()["items"]);
      cursor = Text(v, "next_cursor");
      if (cursor.empty()) break;
    }
    return out;
  }

  CommandRun Migrate() {
    return Shell("STOREPLANE_STORAGE_DRIVER=postgres STOREPLANE_POSTGRES_CONNINFO='" + conninfo_ + "' " +
                     ServerProcess::BinaryPath() + " migrate --data-dir " + data_ + " --from-sqlite " + data_ +
                     "/storeplane.db",
                 dir_->path() + "/migrate.out");
  }

  std::string conninfo_;
  std::unique_ptr<TempDir> dir_;
  std::string data_;
  FakeCi ci_;
  std::unique_ptr<ServerProcess> server_;
  std::string token_;
  client::HttpClient http_;
};

TEST_F(MigrateTest, APopulatedSqliteInstallationMovesToPostgresWhole) {
  // 1. Bulk: 300 stores with enrolled agents and 4,000 audit records, checkpoints signed.
  auto populate =
      Shell(std::string(STOREPLANE_POPULATE_BIN) + " --data-dir " + data_ + " --stores 300 --audit 4000 --batch 500",
            dir_->path() + "/populate.out");
  ASSERT_EQ(populate.exit_code, 0) << populate.output;
  {
    std::ifstream in(data_ + "/admin.token");
    std::getline(in, token_);
  }
  ASSERT_FALSE(token_.empty());

  // 2. Use: runs through the CI, a rollout, a token, an idempotent request, label changes.
  Start(false);
  for (const char* id : {"mig-a", "mig-b", "mig-c"}) {
    auto reg =
        Call("POST", "/v1/stores",
             std::string(R"({"id": ")") + id +
                 R"(", "name": "M", "environment": "staging", "isolation_mode": "shared", "labels": {"t": "x"}})",
             {{"Idempotency-Key", std::string("reg-") + id}});
    ASSERT_EQ(reg.status, 201) << reg.body;
    ASSERT_EQ(Call("POST", std::string("/v1/stores/") + id + "/provision").status, 202);
  }
  ASSERT_TRUE(WaitFor(
      [&] {
        for (const char* id : {"mig-a", "mig-b", "mig-c"})
          if (Text(Parse(Call("GET", std::string("/v1/stores/") + id).body), "state") != "active") return false;
        return true;
      },
      30s));
  auto rollout = Call("POST", "/v1/rollouts",
                      R"({"release": "r9", "selector": {"environment": "staging", "labels": "t=x"},
                          "waves": {"canary_size": 1, "growth_factor": 2}, "max_concurrent": 2})");
  ASSERT_EQ(rollout.status, 201) << rollout.body;
  const std::string rollout_id = Text(Parse(rollout.body), "id");
  ASSERT_TRUE(WaitFor(
      [&] {
        const auto state = Text(Parse(Call("GET", "/v1/rollouts/" + rollout_id).body), "state");
        return state == "succeeded" || state == "failed";
      },
      60s));
  ASSERT_EQ(Call("POST", "/v1/tokens", R"({"principal": "alice", "description": "moved"})").status, 201);
  auto patched = Call("PATCH", "/v1/stores/bench-7", R"({"labels": {"moved": "yes"}})", {{"If-Match", "\"1\""}});
  ASSERT_EQ(patched.status, 200) << patched.body;

  const std::string stores_before = All("/v1/stores");
  const std::string runs_before = All("/v1/runs");
  const std::string rollouts_before = All("/v1/rollouts");
  const std::string tokens_before = Call("GET", "/v1/tokens").body;
  ASSERT_EQ(server_->Stop(), 0);

  // 3. The copy.
  const auto started = std::chrono::steady_clock::now();
  auto migrated = Migrate();
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count();
  ASSERT_EQ(migrated.exit_code, 0) << migrated.output;
  std::printf("[ info     ] migrate --from-sqlite took %lld ms:\n%s", static_cast<long long>(ms),
              migrated.output.c_str());
  EXPECT_NE(migrated.output.find("copied stores: 303"), std::string::npos) << migrated.output;
  EXPECT_NE(migrated.output.find("audit chain verified"), std::string::npos) << migrated.output;
  EXPECT_EQ(migrated.output.find("signatures not checked"), std::string::npos) << migrated.output;

  // 4. The same installation on PostgreSQL: the same registry, runs, rollouts and tokens.
  Start(true);
  EXPECT_TRUE(server_->token().empty()) << "the admin token was copied, not created again";
  EXPECT_EQ(All("/v1/stores"), stores_before);
  EXPECT_EQ(All("/v1/runs"), runs_before);
  EXPECT_EQ(All("/v1/rollouts"), rollouts_before);
  EXPECT_EQ(Call("GET", "/v1/tokens").body, tokens_before);
  // An idempotent replay answers from the copied record.
  auto replay = Call(
      "POST", "/v1/stores",
      R"({"id": "mig-a", "name": "M", "environment": "staging", "isolation_mode": "shared", "labels": {"t": "x"}})",
      {{"Idempotency-Key", "reg-mig-a"}});
  EXPECT_EQ(replay.status, 201) << replay.body;
  // It keeps working: a new store, a new version of an old one.
  EXPECT_EQ(Call("POST", "/v1/stores",
                 R"({"id": "after-move", "name": "A", "environment": "staging", "isolation_mode": "shared"})")
                .status,
            201);
  auto again = Call("PATCH", "/v1/stores/bench-7", R"({"labels": {"moved": "twice"}})", {{"If-Match", "\"2\""}});
  EXPECT_EQ(again.status, 200) << again.body;

  // The audit trail, copied and then extended, verifies with the same key.
  const auto pub = dir_->path() + "/audit-public.pem";
  auto key = Shell("openssl pkey -in " + data_ + "/audit-signing.key -pubout -out " + pub, dir_->path() + "/key.out");
  ASSERT_EQ(key.exit_code, 0) << key.output;
  std::ofstream(dir_->path() + "/token") << token_ << "\n";
  auto verify = Shell(std::string(STOREPLANE_CLI_BIN) + " audit verify --server " + server_->url() + " --token-file " +
                          dir_->path() + "/token --public-key " + pub,
                      dir_->path() + "/verify.out");
  EXPECT_EQ(verify.exit_code, 0) << verify.output;
  EXPECT_NE(verify.output.find("OK"), std::string::npos) << verify.output;
  const std::string stores_after = All("/v1/stores");
  ASSERT_EQ(server_->Stop(), 0);

  // 5. A second copy into the populated database is refused and changes nothing.
  auto twice = Migrate();
  EXPECT_NE(twice.exit_code, 0) << twice.output;
  EXPECT_NE(twice.output.find("already holds"), std::string::npos) << twice.output;
  Start(true);
  EXPECT_EQ(All("/v1/stores"), stores_after);
}

}  // namespace
}  // namespace storeplane::testing
