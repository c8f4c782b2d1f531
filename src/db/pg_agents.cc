// PLACEHOLDER (replaced by the area port): every call fails with kInternal.
#include "db/pg_repository_impl.h"

namespace storeplane::db {

namespace {
Error NotYet() { return Error::Internal("not implemented on PostgreSQL yet"); }
}  // namespace

Result<std::optional<EnrollmentToken>> PostgresRepository::FindEnrollmentTokenByHash(std::string_view token_hash) {
  (void)token_hash;
  return NotYet();
}

Result<std::optional<AgentRecord>> PostgresRepository::GetAgent(std::string_view store_id) {
  (void)store_id;
  return NotYet();
}

Result<std::vector<AgentRecord>> PostgresRepository::ListAgents() { return NotYet(); }

Result<OperationRecord> PostgresRepository::GetOperation(std::string_view id) {
  (void)id;
  return NotYet();
}

Result<std::vector<OperationRecord>> PostgresRepository::ListOperations(std::string_view store_id,
                                                                        std::string_view before_id, int limit) {
  (void)store_id;
  (void)before_id;
  (void)limit;
  return NotYet();
}

Result<std::vector<OperationRecord>> PostgresRepository::ListOpenOperations() { return NotYet(); }

Result<std::vector<LastSuccess>> PostgresRepository::ListLastSuccesses(std::string_view store_id) {
  (void)store_id;
  return NotYet();
}

Status PostgresRepository::WriteTelemetry(const TelemetryBatch& batch) {
  (void)batch;
  return NotYet();
}

Result<std::vector<std::pair<std::string, std::int64_t>>> PostgresRepository::CountOpenOperationsByState() {
  return NotYet();
}

namespace pg_detail {

const char* const kAgentsSchema = "";

Status InsertEnrollmentToken(pg::PgConnection& conn, const InsertEnrollmentTokenEffect& effect) {
  (void)conn;
  (void)effect;
  return NotYet();
}

Status EnrollAgent(pg::PgConnection& conn, const EnrollAgentEffect& effect) {
  (void)conn;
  (void)effect;
  return NotYet();
}

Status RotateAgentCredential(pg::PgConnection& conn, const RotateAgentCredentialEffect& effect) {
  (void)conn;
  (void)effect;
  return NotYet();
}

Status RevokeAgent(pg::PgConnection& conn, const RevokeAgentEffect& effect) {
  (void)conn;
  (void)effect;
  return NotYet();
}

Status InsertOperation(pg::PgConnection& conn, const InsertOperationEffect& effect, WriteResult& result) {
  (void)conn;
  (void)effect;
  (void)result;
  return NotYet();
}

Status UpdateOperation(pg::PgConnection& conn, const UpdateOperationEffect& effect, WriteResult& result) {
  (void)conn;
  (void)effect;
  (void)result;
  return NotYet();
}

Status UpsertLastSuccess(pg::PgConnection& conn, const UpsertLastSuccessEffect& effect) {
  (void)conn;
  (void)effect;
  return NotYet();
}

}  // namespace pg_detail

}  // namespace storeplane::db
