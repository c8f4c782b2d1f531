// SqliteRepository: the concrete SQLite Repository behind OpenSqliteRepository(). Private
// to src/db and its tests (which reach it for write_queue_stats()); everyone else uses
// the Repository interface. Thread-safe: writes go to the WriteQueue, reads to the ReadPool.
#pragma once

#include <memory>

#include "db/repository.h"
#include "db/sqlite_handle.h"
#include "db/sqlite_repository.h"
#include "db/write_queue.h"

namespace storeplane::db {

class SqliteRepository final : public Repository {
 public:
  SqliteRepository(std::unique_ptr<WriteQueue> writer, std::unique_ptr<ReadPool> readers);

  Result<core::Store> InsertStore(const core::Store& store,
                                  const std::optional<IdempotencyRecord>& idempotency) override;
  Result<core::Store> GetStore(std::string_view id) override;
  Result<StorePage> ListStores(const StoreQuery& query) override;
  Result<core::Store> UpdateStore(const core::Store& updated, std::int64_t expected_version) override;
  Result<std::int64_t> CountStores() override;

  Status InsertPrincipalWithToken(const Principal& principal, const TokenRecord& token) override;
  Result<std::optional<Principal>> FindPrincipalByTokenHash(std::string_view token_hash, std::int64_t now_ms) override;
  Result<std::int64_t> CountPrincipals() override;

  Result<std::optional<IdempotencyRecord>> FindIdempotency(std::string_view principal_id,
                                                           std::string_view key) override;

  Status Ping() override;

  // Group-commit counters of the writer thread (for tests and benchmarks).
  WriteQueueStats write_queue_stats() const { return writer_->stats(); }

 private:
  Result<std::int64_t> Count(const char* sql, std::string_view what);

  // Declared so that readers close before the writer (which checkpoints the WAL last).
  std::unique_ptr<WriteQueue> writer_;
  std::unique_ptr<ReadPool> readers_;
};

}  // namespace storeplane::db
