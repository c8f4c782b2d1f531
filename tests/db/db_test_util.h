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
#include "db/sqlite_repository.h"
#include "db/sqlite_repository_impl.h"

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

}  // namespace storeplane::db::testing
