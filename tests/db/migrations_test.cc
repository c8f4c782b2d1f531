#include "db/migrations.h"

#include <gtest/gtest.h>

#include "db_test_util.h"

namespace storeplane::db {
namespace {

using testing::ExecRaw;
using testing::QueryIntRaw;
using testing::RepositoryTest;

using MigrationsTest = RepositoryTest;

TEST_F(MigrationsTest, FreshDatabaseIsMigratedToTheLatestVersion) {
  EXPECT_EQ(QueryIntRaw(options_.path, "SELECT MAX(version) FROM schema_migrations"), LatestSchemaVersion());
  EXPECT_EQ(QueryIntRaw(options_.path, "SELECT COUNT(*) FROM schema_migrations"),
            static_cast<long long>(AllMigrations().size()));
  EXPECT_GT(QueryIntRaw(options_.path, "SELECT MIN(applied_at) FROM schema_migrations"), 1'600'000'000'000LL);
  for (const char* table : {"stores", "principals", "tokens", "idempotency_keys", "audit_log", "audit_checkpoints",
                            "change_requests", "rollouts", "rollout_targets", "rollout_commands"}) {
    EXPECT_EQ(
        QueryIntRaw(options_.path,
                    std::string("SELECT COUNT(*) FROM sqlite_master WHERE type='table' AND name='") + table + "'"),
        1)
        << table;
  }
  for (const char* index : {"stores_by_environment", "stores_by_state", "stores_by_isolation_mode", "tokens_by_id",
                            "audit_log_by_principal", "audit_log_by_action", "audit_log_by_target", "rollouts_active",
                            "rollout_targets_by_wave", "pipeline_runs_by_rollout"}) {
    EXPECT_EQ(
        QueryIntRaw(options_.path,
                    std::string("SELECT COUNT(*) FROM sqlite_master WHERE type='index' AND name='") + index + "'"),
        1)
        << index;
  }
}

TEST_F(MigrationsTest, AuditTablesAreGuardedByTriggers) {
  for (const char* trigger :
       {"audit_log_no_update", "audit_log_no_delete", "audit_log_insert_in_order", "audit_checkpoints_no_update",
        "audit_checkpoints_no_delete", "audit_checkpoints_insert_in_order"}) {
    EXPECT_EQ(
        QueryIntRaw(options_.path,
                    std::string("SELECT COUNT(*) FROM sqlite_master WHERE type='trigger' AND name='") + trigger + "'"),
        1)
        << trigger;
  }
}

TEST(MigrationsUpgradeTest, VersionOneTokensGetAnIdAndStayUsable) {
  testing::TempDir dir;
  const std::string path = (dir.path() / "v1.sqlite").string();
  {
    auto conn = Connection::Open(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, 5000);
    ASSERT_TRUE(conn.ok());
    const std::string v1 = std::string(
                               "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY NOT NULL, "
                               "applied_at INTEGER NOT NULL);") +
                           AllMigrations()[0].sql +
                           "INSERT INTO schema_migrations VALUES (1, 0);"
                           "INSERT INTO principals VALUES ('admin', 'Admin', 'operator', '[\"admin\"]', 1);"
                           "INSERT INTO tokens VALUES ('hash-1', 'admin', 'bootstrap', 1, NULL);"
                           "INSERT INTO tokens VALUES ('hash-2', 'admin', 'second', 2, NULL);";
    ASSERT_TRUE(conn->Exec(v1.c_str(), "create a version 1 database").ok());
  }
  SqliteOptions options;
  options.path = path;
  auto opened = OpenSqliteRepository(options);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  auto tokens = (*opened)->ListTokens(std::nullopt);
  ASSERT_TRUE(tokens.ok());
  ASSERT_EQ(tokens->size(), 2u);
  EXPECT_EQ((*tokens)[0].token_hash, "hash-1");
  EXPECT_EQ((*tokens)[0].id.rfind("tok_", 0), 0u);
  EXPECT_EQ((*tokens)[0].id.size(), 36u);
  EXPECT_NE((*tokens)[0].id, (*tokens)[1].id);
  EXPECT_FALSE((*tokens)[0].revoked_at_ms.has_value());
  auto found = (*opened)->FindTokenByHash("hash-2");
  ASSERT_TRUE(found.ok());
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->principal_id, "admin");
}

TEST_F(MigrationsTest, DatabaseIsInWalMode) {
  Close();
  EXPECT_EQ(QueryIntRaw(options_.path, "SELECT journal_mode = 'wal' FROM pragma_journal_mode"), 1);
}

TEST_F(MigrationsTest, ReopeningAppliesNothingTwice) {
  Insert(testing::MakeStore("kept"));
  Reopen();
  Reopen();
  EXPECT_EQ(QueryIntRaw(options_.path, "SELECT COUNT(*) FROM schema_migrations"),
            static_cast<long long>(AllMigrations().size()));
  EXPECT_TRUE(repo_->GetStore("kept").ok());
}

TEST_F(MigrationsTest, TheLatestVersionIsSixFleetRollouts) {
  EXPECT_EQ(LatestSchemaVersion(), 6);
  EXPECT_EQ(QueryIntRaw(options_.path, "SELECT COUNT(*) FROM schema_migrations WHERE version = 6"), 1);
}

TEST_F(MigrationsTest, MigrationsAreInAscendingOrder) {
  int previous = 0;
  for (const Migration& migration : AllMigrations()) {
    EXPECT_EQ(migration.version, previous + 1);
    previous = migration.version;
  }
}

// ---- errors ----

TEST_F(MigrationsTest, DatabaseFromANewerBuildIsRefused) {
  Close();
  const int future = LatestSchemaVersion() + 1;
  ASSERT_EQ(ExecRaw(options_.path,
                    "INSERT INTO schema_migrations (version, applied_at) VALUES (" + std::to_string(future) + ", 0)"),
            SQLITE_OK);
  auto opened = OpenSqliteRepository(options_);
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(opened.error().message.find("schema version " + std::to_string(future)), std::string::npos)
      << opened.error().message;
  EXPECT_NE(opened.error().message.find("newer"), std::string::npos);
  // Refused, not touched: the future version is still the newest one recorded.
  EXPECT_EQ(QueryIntRaw(options_.path, "SELECT MAX(version) FROM schema_migrations"), future);
}

TEST(MigrationsOpenTest, UnopenablePathIsUnavailable) {
  SqliteOptions options;
  options.path = "/nonexistent-dir-storeplane/sub/db.sqlite";
  auto opened = OpenSqliteRepository(options);
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.error().code, ErrorCode::kUnavailable);
}

TEST(MigrationsOpenTest, FileThatIsNotADatabaseIsUnavailable) {
  testing::TempDir dir;
  const std::string path = (dir.path() / "garbage.sqlite").string();
  {
    FILE* f = std::fopen(path.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs("this is certainly not an SQLite database, just some text that is long enough\n", f);
    for (int i = 0; i < 100; ++i) std::fputs("0123456789abcdef0123456789abcdef0123456789abcdef\n", f);
    std::fclose(f);
  }
  SqliteOptions options;
  options.path = path;
  auto opened = OpenSqliteRepository(options);
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.error().code, ErrorCode::kUnavailable);
}

}  // namespace
}  // namespace storeplane::db
