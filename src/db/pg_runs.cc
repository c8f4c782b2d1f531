// PLACEHOLDER (replaced by the area port): every call fails with kInternal.
#include "db/pg_repository_impl.h"

namespace storeplane::db {

namespace {
Error NotYet() { return Error::Internal("not implemented on PostgreSQL yet"); }
}  // namespace

Result<PipelineRunRecord> PostgresRepository::GetRun(std::string_view id) {
  (void)id;
  return NotYet();
}

Result<std::vector<PipelineRunRecord>> PostgresRepository::ListRuns(const RunQuery& query) {
  (void)query;
  return NotYet();
}

Result<std::vector<PipelineRunRecord>> PostgresRepository::ListActiveRuns() { return NotYet(); }

Result<std::vector<OutboxEntry>> PostgresRepository::ListDueOutbox(std::int64_t now_ms, int limit) {
  (void)now_ms;
  (void)limit;
  return NotYet();
}

Result<std::optional<OutboxEntry>> PostgresRepository::GetOutbox(std::string_view run_id) {
  (void)run_id;
  return NotYet();
}

Result<std::vector<std::string>> PostgresRepository::ListVerifiedReleases(std::string_view store_id, int limit) {
  (void)store_id;
  (void)limit;
  return NotYet();
}

Result<std::vector<Repository::RunGroupCount>> PostgresRepository::CountRunsByKindState() { return NotYet(); }

Result<std::int64_t> PostgresRepository::CountPendingOutbox() { return NotYet(); }

namespace pg_detail {

const char* const kRunsSchema = "";

Status InsertRun(pg::PgConnection& conn, const InsertRunEffect& effect, WriteResult& result) {
  (void)conn;
  (void)effect;
  (void)result;
  return NotYet();
}

Status UpdateRun(pg::PgConnection& conn, const UpdateRunEffect& effect, WriteResult& result) {
  (void)conn;
  (void)effect;
  (void)result;
  return NotYet();
}

Status UpdateOutbox(pg::PgConnection& conn, const UpdateOutboxEffect& effect) {
  (void)conn;
  (void)effect;
  return NotYet();
}

Status InsertCallbackDelivery(pg::PgConnection& conn, const InsertCallbackDeliveryEffect& effect) {
  (void)conn;
  (void)effect;
  return NotYet();
}

}  // namespace pg_detail

}  // namespace storeplane::db
