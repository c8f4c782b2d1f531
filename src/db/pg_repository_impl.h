// PostgresRepository: the concrete PostgreSQL Repository behind OpenPostgresRepository().
// Private to src/db and its tests. Thread-safe: every call leases a connection from the
// pool; a WriteBatch is one transaction (pg::InTransaction, retried on serialization
// failures and deadlocks).
//
// The code is split by area, like the SQLite back end:
//   pg_repository.cc  open, Apply (effects -> fence -> idempotency -> audit chain -> events),
//                     the audit chain and checkpoints, AppendAudit, leadership, events and
//                     notifications, Ping, writer stats;
//   pg_stores.cc      stores, principals, tokens, change requests, idempotency keys;
//   pg_agents.cc      enrollment tokens, agents, operations, last successes, telemetry;
//   pg_runs.cc        pipeline runs, the outbox, callback deliveries;
//   pg_rollouts.cc    rollouts, their targets and command inbox;
//   pg_migrations.cc  the schema (each area's DDL below, in this order) and its runner.
// Timestamps are bigint Unix milliseconds and JSON is text, as in SQLite, so rows move
// between the back ends unchanged (storeplaned migrate --from-sqlite).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "db/pg_handle.h"
#include "db/postgres_repository.h"
#include "db/repository.h"

namespace storeplane::db {

class PostgresRepository final : public Repository {
 public:
  PostgresRepository(PostgresOptions options, std::unique_ptr<pg::PgPool> pool);
  ~PostgresRepository() override;

  // Stores, principals, tokens, changes, idempotency: pg_stores.cc.
  Result<core::Store> GetStore(std::string_view id) override;
  Result<StorePage> ListStores(const StoreQuery& query) override;
  Result<std::int64_t> CountStores() override;
  Result<std::int64_t> CountPrincipals() override;
  Result<std::optional<IdempotencyRecord>> FindIdempotency(std::string_view principal_id,
                                                           std::string_view key) override;
  Result<std::optional<TokenRecord>> FindTokenByHash(std::string_view token_hash) override;
  Result<std::vector<TokenRecord>> ListTokens(const std::optional<std::string>& principal_id) override;
  Result<std::optional<TokenRecord>> GetToken(std::string_view token_id) override;
  Result<ChangeRequest> GetChange(std::string_view id) override;
  Result<std::vector<ChangeRequest>> ListChanges(const std::optional<std::string>& status, int limit) override;
  Result<std::vector<StoreGroupCount>> CountStoresByGroup() override;

  // Writes, the audit trail, replicas: pg_repository.cc.
  Result<WriteResult> Apply(const WriteBatch& batch) override;
  Status AppendAudit(const core::AuditEntry& entry, bool wait) override;
  Result<AuditPage> ListAudit(const AuditQuery& query) override;
  Result<std::vector<core::AuditCheckpoint>> ListCheckpoints(std::int64_t after_seq, int limit) override;
  Result<AuditHead> GetAuditHead() override;
  Result<std::optional<std::int64_t>> AcquireLeadership(std::string_view holder, std::int64_t lease_ms) override;
  Status ReleaseLeadership(std::string_view holder) override;
  bool SharesEvents() const override { return true; }
  std::string EventEpoch() override;
  Status AppendEvents(const std::vector<StoredEvent>& events) override;
  Result<std::vector<StoredEvent>> ReadEvents(std::int64_t after_seq, int limit) override;
  Result<std::int64_t> LastEventSeq() override;
  Result<std::int64_t> PruneEvents(std::int64_t before_ms) override;
  Result<std::vector<Notification>> WaitForNotifications(int timeout_ms) override;
  Status Ping() override;
  WriterStats GetWriterStats() override;

  // Agents and operations: pg_agents.cc.
  Result<std::optional<EnrollmentToken>> FindEnrollmentTokenByHash(std::string_view token_hash) override;
  Result<std::optional<AgentRecord>> GetAgent(std::string_view store_id) override;
  Result<std::vector<AgentRecord>> ListAgents() override;
  Result<OperationRecord> GetOperation(std::string_view id) override;
  Result<std::vector<OperationRecord>> ListOperations(std::string_view store_id, std::string_view before_id,
                                                      int limit) override;
  Result<std::vector<OperationRecord>> ListOpenOperations() override;
  Result<std::vector<LastSuccess>> ListLastSuccesses(std::string_view store_id) override;
  Status WriteTelemetry(const TelemetryBatch& batch) override;
  Result<std::vector<std::pair<std::string, std::int64_t>>> CountOpenOperationsByState() override;

  // Pipeline runs and the outbox: pg_runs.cc.
  Result<PipelineRunRecord> GetRun(std::string_view id) override;
  Result<std::vector<PipelineRunRecord>> ListRuns(const RunQuery& query) override;
  Result<std::vector<PipelineRunRecord>> ListActiveRuns() override;
  Result<std::vector<OutboxEntry>> ListDueOutbox(std::int64_t now_ms, int limit) override;
  Result<std::optional<OutboxEntry>> GetOutbox(std::string_view run_id) override;
  Result<std::vector<std::string>> ListVerifiedReleases(std::string_view store_id, int limit) override;
  Result<std::vector<RunGroupCount>> CountRunsByKindState() override;
  Result<std::int64_t> CountPendingOutbox() override;

  // Fleet rollouts: pg_rollouts.cc.
  Result<RolloutRecord> GetRollout(std::string_view id) override;
  Result<std::vector<RolloutRecord>> ListRollouts(const RolloutQuery& query) override;
  Result<std::vector<RolloutRecord>> ListActiveRollouts() override;
  Result<std::vector<RolloutTargetRecord>> ListRolloutTargets(std::string_view rollout_id,
                                                              const RolloutTargetQuery& query) override;
  Result<std::vector<RolloutCommandRecord>> ListRolloutCommands(std::string_view rollout_id) override;

  pg::PgPool& pool() { return *pool_; }

 private:
  // Seals `entries` after the chain head (taken FOR UPDATE) and inserts them; writes a
  // signed checkpoint when one is due. Inside the caller's transaction.
  Result<std::vector<std::int64_t>> AppendToChain(pg::PgConnection& conn, const std::vector<core::AuditEntry>& entries);
  Status InsertEvents(pg::PgConnection& conn, const std::vector<StoredEvent>& events);
  void AuditFlusherMain();

  const PostgresOptions options_;
  std::string private_pem_;  // the checkpoint signing key, in memory only
  std::string key_id_;
  std::unique_ptr<pg::PgPool> pool_;

  // Audit records that need not be waited for, written in batches by the flusher thread.
  std::mutex audit_mu_;
  std::condition_variable audit_cv_;
  std::deque<core::AuditEntry> audit_queue_;  // guarded by audit_mu_
  bool stopping_ = false;                     // guarded by audit_mu_

  // LISTEN connection (WaitForNotifications, one caller at a time).
  std::mutex listen_mu_;
  std::unique_ptr<pg::PgConnection> listener_;

  std::string epoch_;  // guarded by listen_mu_ once read
  std::atomic<std::uint64_t> batches_{0};
  std::atomic<std::uint64_t> mutations_{0};
  std::atomic<std::uint64_t> failed_batches_{0};
  std::atomic<std::uint64_t> pending_{0};

  std::thread audit_flusher_;  // last: started after everything above
};

namespace pg_detail {

// ---- Shared helpers (pg_repository.cc) -------------------------------------------------
// Runs fn, turning any escaping exception into kInternal: nothing crosses the interface.
template <typename F>
auto Guarded(F&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (...) {
    return Error::Internal("storage failed unexpectedly");
  }
}
// A read on a pooled connection (not in an explicit transaction).
template <typename F>
auto WithConnection(pg::PgPool& pool, F&& fn) -> decltype(fn(std::declval<pg::PgConnection&>())) {
  return Guarded([&]() -> decltype(fn(std::declval<pg::PgConnection&>())) {
    auto lease = pool.Acquire();
    if (!lease.ok()) return lease.error();
    return fn(**lease);
  });
}
// Tells a missing row from a stale version after a version-checked UPDATE changed nothing:
// `probe_sql` selects the row's version by id ($1).
Status VersionMismatch(pg::PgConnection& conn, const char* probe_sql, std::string_view kind, std::string_view id,
                       std::int64_t expected_version, std::string_view what);

// Shared with SQLite (defined in sqlite_repository.cc and the sqlite_*.cc files): pure checks.
// Quoted(), Unreadable(), CheckLimit(), EncodeStrings(), DecodeStrings() and
// CheckBatch() are used from sqlite_detail / db (see db/batch_checks.h).

// Row `r` of a SELECT of the stores table's columns in schema order (pg_stores.cc).
Result<core::Store> DecodeStore(const pg::Rows& rows, int r);

// ---- Effects: each runs inside the batch's transaction; errors exactly as documented on
// the effects in repository.h (and as the SQLite back end returns them: the same tests run
// against both). Those that yield a row append it to `result`.
// pg_stores.cc
Status InsertStore(pg::PgConnection& conn, const InsertStoreEffect& effect, WriteResult& result);
Status UpdateStore(pg::PgConnection& conn, const UpdateStoreEffect& effect, WriteResult& result);
Status InsertToken(pg::PgConnection& conn, const InsertTokenEffect& effect);
Status RevokeToken(pg::PgConnection& conn, const RevokeTokenEffect& effect);
Status InsertChange(pg::PgConnection& conn, const InsertChangeEffect& effect, WriteResult& result);
Status UpdateChange(pg::PgConnection& conn, const UpdateChangeEffect& effect, WriteResult& result);
Status InsertIdempotency(pg::PgConnection& conn, const IdempotencyRecord& record);
// pg_agents.cc
Status InsertEnrollmentToken(pg::PgConnection& conn, const InsertEnrollmentTokenEffect& effect);
Status EnrollAgent(pg::PgConnection& conn, const EnrollAgentEffect& effect);
Status RotateAgentCredential(pg::PgConnection& conn, const RotateAgentCredentialEffect& effect);
Status RevokeAgent(pg::PgConnection& conn, const RevokeAgentEffect& effect);
Status InsertOperation(pg::PgConnection& conn, const InsertOperationEffect& effect, WriteResult& result);
Status UpdateOperation(pg::PgConnection& conn, const UpdateOperationEffect& effect, WriteResult& result);
Status UpsertLastSuccess(pg::PgConnection& conn, const UpsertLastSuccessEffect& effect);
// pg_runs.cc
Status InsertRun(pg::PgConnection& conn, const InsertRunEffect& effect, WriteResult& result);
Status UpdateRun(pg::PgConnection& conn, const UpdateRunEffect& effect, WriteResult& result);
Status UpdateOutbox(pg::PgConnection& conn, const UpdateOutboxEffect& effect);
Status InsertCallbackDelivery(pg::PgConnection& conn, const InsertCallbackDeliveryEffect& effect);
// pg_rollouts.cc
Status InsertRollout(pg::PgConnection& conn, const InsertRolloutEffect& effect, WriteResult& result);
Status UpdateRollout(pg::PgConnection& conn, const UpdateRolloutEffect& effect, WriteResult& result);
Status InsertRolloutCommand(pg::PgConnection& conn, const InsertRolloutCommandEffect& effect);

// ---- Schema, per area (pg_migrations.cc applies them as version 1, in this order) --------
// Each is one or more SQL statements (tables, indexes, CHECKs, triggers), PostgreSQL 15.
extern const char* const kCoreSchema;      // pg_repository.cc: audit, checkpoints, leadership, events, meta
extern const char* const kStoresSchema;    // pg_stores.cc: stores, principals, tokens, changes, idempotency
extern const char* const kAgentsSchema;    // pg_agents.cc: enrollment tokens, agents, operations, last successes
extern const char* const kRunsSchema;      // pg_runs.cc: pipeline_runs, outbox, callback deliveries
extern const char* const kRolloutsSchema;  // pg_rollouts.cc: rollouts, rollout_targets, rollout_commands

}  // namespace pg_detail

}  // namespace storeplane::db
