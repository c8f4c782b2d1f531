// SqliteRepository: the concrete SQLite Repository behind OpenSqliteRepository(). Private
// to src/db and its tests (which reach it for write_queue_stats()); everyone else uses
// the Repository interface. Thread-safe: writes go to the WriteQueue, reads to the ReadPool.
#pragma once

#include <memory>

#include "db/audit_chain.h"
#include "db/repository.h"
#include "db/sqlite_handle.h"
#include "db/sqlite_repository.h"
#include "db/write_queue.h"

namespace storeplane::db {

class SqliteRepository final : public Repository {
 public:
  SqliteRepository(std::shared_ptr<AuditChain> chain, std::unique_ptr<WriteQueue> writer,
                   std::unique_ptr<ReadPool> readers);

  Result<core::Store> GetStore(std::string_view id) override;
  Result<StorePage> ListStores(const StoreQuery& query) override;
  Result<std::int64_t> CountStores() override;
  Result<std::int64_t> CountPrincipals() override;
  Result<std::optional<IdempotencyRecord>> FindIdempotency(std::string_view principal_id,
                                                           std::string_view key) override;

  Result<WriteResult> Apply(const WriteBatch& batch) override;
  Status AppendAudit(const core::AuditEntry& entry, bool wait) override;
  Result<AuditPage> ListAudit(const AuditQuery& query) override;
  Result<std::vector<core::AuditCheckpoint>> ListCheckpoints(std::int64_t after_seq, int limit) override;

  Result<std::optional<TokenRecord>> FindTokenByHash(std::string_view token_hash) override;
  Result<std::vector<TokenRecord>> ListTokens(const std::optional<std::string>& principal_id) override;
  Result<std::optional<TokenRecord>> GetToken(std::string_view token_id) override;

  Result<ChangeRequest> GetChange(std::string_view id) override;
  Result<std::vector<ChangeRequest>> ListChanges(const std::optional<std::string>& status, int limit) override;

  Status Ping() override;

  // Group-commit counters of the writer thread (for tests and benchmarks).
  WriteQueueStats write_queue_stats() const { return writer_->stats(); }

 private:
  Result<std::int64_t> Count(const char* sql, std::string_view what);
  Result<std::optional<TokenRecord>> FindToken(const char* sql, std::string_view key, std::string_view what);

  // The chain is shared with the writer (its observer) and touched only on the writer
  // thread. Declared so that readers close before the writer, which writes the final
  // checkpoint and checkpoints the WAL last.
  std::shared_ptr<AuditChain> chain_;
  std::unique_ptr<WriteQueue> writer_;
  std::unique_ptr<ReadPool> readers_;
};

}  // namespace storeplane::db
