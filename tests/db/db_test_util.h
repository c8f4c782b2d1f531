// Helpers shared by the storage tests: a temporary directory per test (mkdtemp, removed
// afterwards), stores built with intent-named arguments, and opening a repository.
#pragma once

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "core/store.h"
#include "db/pg_repository_impl.h"
#include "db/postgres_repository.h"
#include "db/sqlite_repository.h"
#include "db/sqlite_repository_impl.h"
#include "tests/support/postgres_database.h"
#include "tests/support/postgres_process.h"

namespace storeplane::db::testing {

class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "storeplane-db-XXXXXX").string();
    if (mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

inline core::Store MakeStore(std::string id, std::string environment = "production",
                             core::IsolationMode mode = core::IsolationMode::kShared, core::Labels labels = {},
                             core::StoreState state = core::StoreState::kRegistered) {
  core::Store store;
  store.id = std::move(id);
  store.name = "Store " + store.id;
  store.environment = std::move(environment);
  store.isolation_mode = mode;
  store.labels = std::move(labels);
  store.state = state;
  store.version = 1;
  store.created_at_ms = 1'700'000'000'000;
  store.updated_at_ms = store.created_at_ms;
  return store;
}

// An audit entry for a test write; `n` varies the request id.
inline core::AuditEntry TestAudit(std::string action, std::string target, int n = 0) {
  core::AuditEntry entry;
  entry.time_ms = 1'700'000'000'000 + n;
  entry.principal = "alice";
  entry.source = "127.0.0.1";
  entry.action = std::move(action);
  entry.target = std::move(target);
  entry.request_id = "req-" + std::to_string(n);
  entry.decision = "allow";
  entry.rule = "test";
  entry.outcome = "ok";
  return entry;
}

// Registers a store the only way there is: one audited batch.
inline Result<core::Store> InsertStoreAudited(Repository& repo, const core::Store& store,
                                              std::optional<IdempotencyRecord> idempotency = std::nullopt) {
  WriteBatch batch;
  batch.effects.push_back(InsertStoreEffect{store});
  batch.audit.push_back(TestAudit("store.register", "store/" + store.id));
  batch.idempotency = std::move(idempotency);
  auto applied = repo.Apply(batch);
  if (!applied.ok()) return applied.error();
  return applied->stores.at(0);
}

inline Result<core::Store> UpdateStoreAudited(Repository& repo, const core::Store& updated,
                                              std::int64_t expected_version) {
  WriteBatch batch;
  batch.effects.push_back(UpdateStoreEffect{updated, expected_version});
  batch.audit.push_back(TestAudit("store.label", "store/" + updated.id));
  auto applied = repo.Apply(batch);
  if (!applied.ok()) return applied.error();
  return applied->stores.at(0);
}

// A repository on db.sqlite in a fresh temporary directory.
class RepositoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty()) << "mkdtemp failed";
    options_.path = (dir_.path() / "db.sqlite").string();
    Reopen();
  }

  void Reopen() {
    repo_.reset();
    auto opened = OpenSqliteRepository(options_);
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    repo_ = std::move(*opened);
  }

  void Close() { repo_.reset(); }

  WriteQueueStats Stats() const { return dynamic_cast<const SqliteRepository&>(*repo_).write_queue_stats(); }

  void Insert(const core::Store& store) {
    auto inserted = InsertStoreAudited(*repo_, store);
    ASSERT_TRUE(inserted.ok()) << inserted.error().message;
  }

  TempDir dir_;
  SqliteOptions options_;
  std::unique_ptr<Repository> repo_;
};

// The back ends every backend-neutral storage test runs against.
enum class Backend { kSqlite, kPostgres };

inline std::string BackendName(const ::testing::TestParamInfo<Backend>& info) {
  return info.param == Backend::kSqlite ? "Sqlite" : "Postgres";
}

// Use with TEST_P and INSTANTIATE_BACKENDS(Fixture): a repository on SQLite (db.sqlite in a
// fresh temporary directory) or on PostgreSQL (a fresh database on the run's shared server,
// tests/support/postgres_database.h). PostgreSQL cases skip without a server, or fail when
// STOREPLANE_REQUIRE_POSTGRES is set.
class BackendTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    if (postgres()) {
      if (!storeplane::testing::PostgresAvailable()) {
        if (storeplane::testing::PostgresRequired()) FAIL() << "no PostgreSQL and STOREPLANE_REQUIRE_POSTGRES is set";
        GTEST_SKIP() << "no PostgreSQL server binaries and no STOREPLANE_TEST_POSTGRES";
      }
      std::string error;
      pg_options_.conninfo = storeplane::testing::FreshPostgresDatabase(&error);
      ASSERT_FALSE(pg_options_.conninfo.empty()) << error;
    } else {
      ASSERT_FALSE(dir_.path().empty()) << "mkdtemp failed";
      options_.path = (dir_.path() / "db.sqlite").string();
    }
    Reopen();
  }

  bool postgres() const { return GetParam() == Backend::kPostgres; }

  void Reopen() {
    repo_.reset();
    auto opened = postgres() ? OpenPostgresRepository(pg_options_) : OpenSqliteRepository(options_);
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    repo_ = std::move(*opened);
  }

  void Close() { repo_.reset(); }

  void Insert(const core::Store& store) {
    auto inserted = InsertStoreAudited(*repo_, store);
    ASSERT_TRUE(inserted.ok()) << inserted.error().message;
  }

  // One SQL statement behind the repository's back (on its own connection); true on success.
  bool ExecSql(const std::string& sql);
  // The first column of the first row of `sql` as an integer, or -1 on any failure.
  long long QueryInt(const std::string& sql);

  TempDir dir_;
  SqliteOptions options_;
  PostgresOptions pg_options_;
  std::unique_ptr<Repository> repo_;
};

#define INSTANTIATE_BACKENDS(Fixture)                                                                                \
  INSTANTIATE_TEST_SUITE_P(                                                                                          \
      Backends, Fixture,                                                                                             \
      ::testing::Values(::storeplane::db::testing::Backend::kSqlite, ::storeplane::db::testing::Backend::kPostgres), \
      ::storeplane::db::testing::BackendName)

// Runs one SQL statement on the database file directly, behind the repository's back.
inline int ExecRaw(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open(path.c_str(), &db);
  if (rc == SQLITE_OK) rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr);
  sqlite3_close(db);
  return rc;
}

// The first column of the first row of `sql` as an integer, or -1 on any failure.
inline long long QueryIntRaw(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  long long value = -1;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK && sqlite3_step(stmt) == SQLITE_ROW) {
      value = sqlite3_column_int64(stmt, 0);
    }
    sqlite3_finalize(stmt);
  }
  sqlite3_close(db);
  return value;
}

inline bool BackendTest::ExecSql(const std::string& sql) {
  if (!postgres()) return ExecRaw(options_.path, sql) == SQLITE_OK;
  auto conn = pg::PgConnection::Open(pg_options_.conninfo);
  return conn.ok() && conn->Script(sql, "test").ok();
}

inline long long BackendTest::QueryInt(const std::string& sql) {
  if (!postgres()) return QueryIntRaw(options_.path, sql);
  auto conn = pg::PgConnection::Open(pg_options_.conninfo);
  if (!conn.ok()) return -1;
  auto rows = conn->Exec(sql.c_str(), "test");
  if (!rows.ok() || rows->empty() || rows->IsNull(0, 0)) return -1;
  return rows->Int64(0, 0);
}

}  // namespace storeplane::db::testing
