// SqliteRepository: the concrete SQLite Repository behind OpenSqliteRepository(). Private
// to src/db and its tests (which reach it for write_queue_stats()); everyone else uses
// the Repository interface. Thread-safe: writes go to the WriteQueue, reads to the ReadPool.
#pragma once

#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "db/audit_chain.h"
#include "db/repository.h"
#include "db/sqlite_handle.h"
#include "db/sqlite_repository.h"
#include "db/storage_support.h"
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

  // Agents and operations: defined in sqlite_agents.cc.
  Result<std::optional<EnrollmentToken>> FindEnrollmentTokenByHash(std::string_view token_hash) override;
  Result<std::optional<AgentRecord>> GetAgent(std::string_view store_id) override;
  Result<std::vector<AgentRecord>> ListAgents() override;
  Result<OperationRecord> GetOperation(std::string_view id) override;
  Result<std::vector<OperationRecord>> ListOperations(std::string_view store_id, std::string_view before_id,
                                                      int limit) override;
  Result<std::vector<OperationRecord>> ListOpenOperations() override;
  Result<std::vector<LastSuccess>> ListLastSuccesses(std::string_view store_id) override;
  Status WriteTelemetry(const TelemetryBatch& batch) override;

  // Pipeline runs and the outbox: defined in sqlite_runs.cc.
  Result<PipelineRunRecord> GetRun(std::string_view id) override;
  Result<std::vector<PipelineRunRecord>> ListRuns(const RunQuery& query) override;
  Result<std::vector<PipelineRunRecord>> ListActiveRuns() override;
  Result<std::vector<OutboxEntry>> ListDueOutbox(std::int64_t now_ms, int limit) override;
  Result<std::optional<OutboxEntry>> GetOutbox(std::string_view run_id) override;
  Result<std::vector<std::string>> ListVerifiedReleases(std::string_view store_id, int limit) override;

  // Fleet rollouts: defined in sqlite_rollouts.cc.
  Result<RolloutRecord> GetRollout(std::string_view id) override;
  Result<std::vector<RolloutRecord>> ListRollouts(const RolloutQuery& query) override;
  Result<std::vector<RolloutRecord>> ListActiveRollouts() override;
  Result<std::vector<RolloutTargetRecord>> ListRolloutTargets(std::string_view rollout_id,
                                                              const RolloutTargetQuery& query) override;
  Result<std::vector<RolloutCommandRecord>> ListRolloutCommands(std::string_view rollout_id) override;

  Status Ping() override;

  // Aggregates for /metrics: defined in sqlite_metrics.cc.
  Result<std::vector<StoreGroupCount>> CountStoresByGroup() override;
  Result<std::vector<RunGroupCount>> CountRunsByKindState() override;
  Result<std::vector<std::pair<std::string, std::int64_t>>> CountOpenOperationsByState() override;
  Result<std::int64_t> CountPendingOutbox() override;
  Result<AuditHead> GetAuditHead() override;
  WriterStats GetWriterStats() override;

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

namespace sqlite_detail {

// Runs fn, turning any escaping exception into kInternal: nothing crosses the interface.
template <typename F>
auto Guarded(F&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const std::exception&) {
    return Error::Internal("storage failed unexpectedly");
  } catch (...) {
    return Error::Internal("storage failed unexpectedly");
  }
}

using support::CheckLimit;
using support::DecodeStrings;
using support::EncodeStrings;
using support::Quoted;
using support::Unreadable;

// ---- Agent and operation effects (sqlite_agents.cc) ----------------------------------
// Each runs on the writer connection inside the batch's savepoint; errors as documented
// on the effects in repository.h. A store that does not exist is kNotFound.

// Programming errors in one of these effects (kInternal), checked before the batch is
// queued; Ok for every other kind of effect.
Status CheckAgentEffect(const Effect& effect);

Status InsertEnrollmentToken(Connection& conn, const InsertEnrollmentTokenEffect& effect);
Status EnrollAgent(Connection& conn, const EnrollAgentEffect& effect);
Status RotateAgentCredential(Connection& conn, const RotateAgentCredentialEffect& effect);
Status RevokeAgent(Connection& conn, const RevokeAgentEffect& effect);
// These two return the row as stored.
Result<OperationRecord> InsertOperation(Connection& conn, const InsertOperationEffect& effect);
Result<OperationRecord> UpdateOperation(Connection& conn, const UpdateOperationEffect& effect);
Status UpsertLastSuccess(Connection& conn, const UpsertLastSuccessEffect& effect);

// ---- Pipeline run, outbox and callback delivery effects (sqlite_runs.cc) ---------------
// Like the agent effects: on the writer connection inside the batch's savepoint, errors as
// documented on the effects in repository.h. A store or run that does not exist is
// kNotFound; a row that breaks the schema's CHECKs (an unknown kind or state, a kind
// without a health gate in a gate state, `active` disagreeing with the state) is kInternal.

// Programming errors in one of these effects (kInternal): an outbox entry for another run,
// an update that does not advance the version by one, missing ids. Ok for other effects.
Status CheckRunEffect(const Effect& effect);

// These two return the run as stored.
Result<PipelineRunRecord> InsertRun(Connection& conn, const InsertRunEffect& effect);
Result<PipelineRunRecord> UpdateRun(Connection& conn, const UpdateRunEffect& effect);
Status UpdateOutbox(Connection& conn, const UpdateOutboxEffect& effect);
Status InsertCallbackDelivery(Connection& conn, const InsertCallbackDeliveryEffect& effect);

// ---- Rollout effects (sqlite_rollouts.cc) -----------------------------------------------
// Like the run effects: on the writer connection inside the batch's savepoint, errors as
// documented on the effects in repository.h. A row that breaks the schema's CHECKs (an
// unknown state text, a negative wave) or a target listed twice is kInternal; a target's
// store that does not exist is kNotFound.

// Programming errors in one of these effects (kInternal): missing ids, a target of another
// rollout, an update that does not advance the version by one. Ok for other effects.
Status CheckRolloutEffect(const Effect& effect);

// These two return the rollout as stored.
Result<RolloutRecord> InsertRollout(Connection& conn, const InsertRolloutEffect& effect);
Result<RolloutRecord> UpdateRollout(Connection& conn, const UpdateRolloutEffect& effect);
Status InsertRolloutCommand(Connection& conn, const InsertRolloutCommandEffect& effect);

}  // namespace sqlite_detail

}  // namespace storeplane::db
