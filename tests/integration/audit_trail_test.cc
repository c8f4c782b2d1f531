// The audit trail against the real binary and the real database: the database refuses an
// UPDATE or DELETE of a record; tampering with it by hand as its owner would (the SQLite
// file's triggers dropped; on PostgreSQL, the triggers dropped by a superuser), by an edit, a
// deletion, a reordering or a truncation, is caught by `storeplane audit verify`, which
// names the record; a failing audit write refuses the change; and no token, Authorization
// header or secret value is left in the database, the logs or a response. On both back ends
// (support/server_process.h).
#include <spawn.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/integration/backend_support.h"
#include "tests/integration/integration_fixture.h"

extern char** environ;  // NOLINT

namespace storeplane::testing {
namespace {

namespace fs = std::filesystem;

struct CommandRun {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

// Runs a command line through /bin/sh (test-controlled strings only), capturing output.
CommandRun Shell(const std::string& command) {
  CommandRun run;
  const auto out_path = fs::temp_directory_path() / ("storeplane-shell-" + std::to_string(::getpid()) + ".out");
  const auto full = command + " >" + out_path.string() + " 2>&1";
  const int status = std::system(full.c_str());
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream in(out_path);
  std::stringstream ss;
  ss << in.rdbuf();
  run.output = ss.str();
  fs::remove(out_path);
  return run;
}

class AuditTrail : public ServerTest {
 protected:
  void SetUp() override {
    ServerTest::SetUp();
    config_ = dir_->path() + "/config.yaml";
    std::ofstream(config_) << "audit:\n  checkpoint_every_records: 5\n";
    StartServer({"--config", config_});
  }

  std::string DataDir() const { return dir_->path() + "/data"; }
  std::string Db() const { return DataDir() + "/storeplane.db"; }

  // Runs SQL on the database behind the server, as its owner (SQLite: the file; PostgreSQL:
  // the database's owner, a superuser on the test server).
  SqlRun Sql(const std::string& sql) {
    return TestBackendIsPostgres() ? RunPostgresSql(PostgresConninfoFor(DataDir()), sql) : RunSqliteSql(Db(), sql);
  }

  void Workload() {
    for (int i = 0; i < 8; ++i) ASSERT_EQ(Register("shop-" + std::to_string(i)).status, 201);
    ASSERT_EQ(Patch("shop-1", R"({"labels":{"tier":"gold"}})", "\"1\"").status, 200);
    ASSERT_EQ(Call("GET", "/v1/stores").status, 200);
  }

  // Runs SQL against the stopped server's database after dropping the append-only
  // triggers, as an attacker with the file (SQLite) or a superuser's role (PostgreSQL) would.
  void TamperWith(const std::string& sql) {
    ASSERT_FALSE(server_->running());
    if (TestBackendIsPostgres()) {
      auto drop =
          Sql("DROP TRIGGER audit_log_no_update ON audit_log; DROP TRIGGER audit_log_no_truncate ON audit_log; "
              "DROP TRIGGER audit_log_insert_in_order ON audit_log;");
      ASSERT_TRUE(drop.ok) << drop.output;
    } else {
      auto drop =
          Shell("sqlite3 " + Db() +
                " \"SELECT 'DROP TRIGGER ' || name || ';' FROM sqlite_master WHERE type='trigger'\" | sqlite3 " + Db());
      ASSERT_EQ(drop.exit_code, 0) << drop.output;
    }
    auto edit = Sql(sql);
    ASSERT_TRUE(edit.ok) << edit.output;
  }

  std::string PublicKeyFile() {
    const auto pub = dir_->path() + "/audit-public.pem";
    auto r = Shell("openssl pkey -in " + dir_->path() + "/data/audit-signing.key -pubout -out " + pub);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return pub;
  }

  CommandRun Verify(const std::string& public_key) {
    return Shell(std::string(STOREPLANE_CLI_BIN) + " audit verify --server " + server_->url() + " --token-file " +
                 token_file_ + " --public-key " + public_key);
  }

  std::string config_;
};

TEST_F(AuditTrail, AnUntouchedTrailVerifies) {
  Workload();
  const auto key = PublicKeyFile();
  auto run = Verify(key);
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("OK"), std::string::npos) << run.output;
  // The same holds offline on an export.
  const auto file = dir_->path() + "/export.ndjson";
  auto exported = Shell(std::string(STOREPLANE_CLI_BIN) + " audit export --server " + server_->url() +
                        " --token-file " + token_file_ + " -f " + file);
  ASSERT_EQ(exported.exit_code, 0) << exported.output;
  auto offline = Shell(std::string(STOREPLANE_CLI_BIN) + " audit verify --file " + file + " --public-key " + key);
  EXPECT_EQ(offline.exit_code, 0) << offline.output;
}

TEST_F(AuditTrail, TheDatabaseRefusesUpdateAndDelete) {
  Workload();
  server_->Stop();
  auto update = Sql("UPDATE audit_log SET principal='mallory' WHERE seq=2");
  EXPECT_FALSE(update.ok) << update.output;
  auto del = Sql("DELETE FROM audit_log WHERE seq=2");
  EXPECT_FALSE(del.ok) << del.output;
  EXPECT_NE(update.output.find("append-only"), std::string::npos) << update.output;
  EXPECT_NE(del.output.find("append-only"), std::string::npos) << del.output;
  if (TestBackendIsPostgres()) {  // there, a TRUNCATE too (SQLite has none)
    auto truncate = Sql("TRUNCATE audit_log");
    EXPECT_FALSE(truncate.ok) << truncate.output;
    EXPECT_NE(truncate.output.find("append-only"), std::string::npos) << truncate.output;
  }
  // Nothing was changed: the trail still verifies.
  StartServer({"--config", config_});
  auto run = Verify(PublicKeyFile());
  EXPECT_EQ(run.exit_code, 0) << run.output;
}

struct TamperCase {
  const char* name;
  const char* sql;
  std::vector<std::string> named;  // any of these must appear in the verifier's message
};

class AuditTamper : public AuditTrail, public ::testing::WithParamInterface<TamperCase> {};

TEST_P(AuditTamper, VerifyFailsAndNamesTheRecord) {
  Workload();
  const auto key = PublicKeyFile();
  ASSERT_EQ(server_->Stop(), 0);
  TamperWith(GetParam().sql);
  StartServer({"--config", config_});
  auto run = Verify(key);
  EXPECT_EQ(run.exit_code, 8) << run.output;
  bool named = false;
  for (const auto& n : GetParam().named) named = named || run.output.find(n) != std::string::npos;
  EXPECT_TRUE(named) << GetParam().name << ": " << run.output;
}

INSTANTIATE_TEST_SUITE_P(
    EveryKindOfTampering, AuditTamper,
    ::testing::Values(
        TamperCase{"edit", "UPDATE audit_log SET principal='mallory' WHERE seq=3", {"record 3"}},
        TamperCase{"delete", "DELETE FROM audit_log WHERE seq=4", {"record 4", "record 5"}},
        // (Through a free seq: PostgreSQL's audit_log checks seq >= 1.)
        TamperCase{"reorder",
                   "UPDATE audit_log SET seq=1000003 WHERE seq=3; UPDATE audit_log SET seq=3 WHERE seq=4; "
                   "UPDATE audit_log SET seq=4 WHERE seq=1000003;",
                   {"record 3"}},
        TamperCase{"truncate", "DELETE FROM audit_log WHERE seq > 6", {"record 7", "record 10", "record 6"}}),
    [](const auto& info) { return std::string(info.param.name); });

TEST_F(AuditTrail, WhenTheAuditWriteFailsTheChangeIsRefusedAndNothingChanges) {
  ASSERT_EQ(Register("before").status, 201);
  ASSERT_EQ(server_->Stop(), 0);
  auto add = Sql(TestBackendIsPostgres()
                     ? "CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION "
                       "'no'; END $$; CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE "
                       "FUNCTION refuse_audit();"
                     : "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'no'); END;");
  ASSERT_TRUE(add.ok) << add.output;
  StartServer({"--config", config_});
  auto resp = Register("during");
  EXPECT_EQ(resp.status, 500) << resp.body;  // refused: no audit record, no change
  EXPECT_NE(resp.body.find("nothing was changed"), std::string::npos) << resp.body;
  EXPECT_EQ(resp.Header("content-type"), "application/problem+json");
  ASSERT_EQ(server_->Stop(), 0);
  auto drop = Sql(TestBackendIsPostgres() ? "DROP TRIGGER refuse_audit ON audit_log" : "DROP TRIGGER refuse_audit");
  ASSERT_TRUE(drop.ok) << drop.output;
  StartServer({"--config", config_});
  ExpectProblem(Call("GET", "/v1/stores/during"), 404, "not-found");
  EXPECT_EQ(Call("GET", "/v1/stores/before").status, 200);
  EXPECT_EQ(Verify(PublicKeyFile()).exit_code, 0);
}

TEST_F(AuditTrail, NoTokenOrSecretIsLeftInTheDatabaseLogsOrResponses) {
  std::vector<std::string> secrets{token_};
  std::string responses;
  auto keep = [&](const client::HttpResponse& r) {
    responses += std::to_string(r.status) + "\n";
    for (const auto& [k, v] : r.headers) responses += k + ": " + v + "\n";
    responses += r.body + "\n";
  };
  // Tokens for other principals (the creation answer is the one place a token appears).
  for (const auto* who : {"admin", "admin"}) secrets.push_back(CreateToken(who));
  const std::string aws_like = "AKIAIOSFODNN7EXAMPLE";
  keep(Register("leak-a", "staging", "shared", R"({"team":"web"})"));
  keep(Register("leak-b", "staging", "shared", R"({"note":")" + aws_like + R"("})"));
  keep(Register("leak-c", "staging", "shared", R"({"db_password":"hunter2hunter2"})"));
  keep(Patch("leak-a", R"({"labels":{"api_key":"x"}})", "\"1\""));
  keep(Call("GET", "/v1/stores"));
  keep(Call("GET", "/v1/whoami"));
  keep(Call("GET", "/v1/tokens"));
  keep(Call("GET", "/v1/audit?limit=1000"));
  keep(Call("GET", "/v1/audit/export"));
  keep(Call("GET", "/v1/stores", "", {{"Authorization", "Bearer " + secrets[1] + "x"}}, false));
  keep(CallAs(secrets[2], "GET", "/v1/stores/leak-a"));
  ASSERT_EQ(server_->Stop(), 0);

  // The data directory's files and, on PostgreSQL, every row of the database. The signing
  // key is a secret by design and lives in its own 0600 file, outside the database.
  const std::string files = EverythingAtRest(DataDir(), {"audit-signing.key", "storeplaned.stderr.log"});
  ASSERT_NE(files.find("leak-a"), std::string::npos) << "the stores are not in what was searched";
  const auto logs = server_->Logs();
  for (const auto& secret : secrets) {
    ASSERT_FALSE(secret.empty());
    EXPECT_EQ(files.find(secret), std::string::npos) << "token in the data directory";
    EXPECT_EQ(logs.find(secret), std::string::npos) << "token in the logs";
    EXPECT_EQ(responses.find(secret), std::string::npos) << "token in a response";
  }
  for (const std::string& needle : {aws_like, std::string("hunter2hunter2"), std::string("Bearer ")}) {
    EXPECT_EQ(files.find(needle), std::string::npos) << needle << " in the data directory";
    EXPECT_EQ(logs.find(needle), std::string::npos) << needle << " in the logs";
  }
  EXPECT_EQ(logs.find("uthorization"), std::string::npos);
  EXPECT_EQ(files.find("uthorization"), std::string::npos);
}

}  // namespace
}  // namespace storeplane::testing
