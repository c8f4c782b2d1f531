// PLACEHOLDER (replaced by the area port): every call fails with kInternal.
#include "db/pg_repository_impl.h"

namespace storeplane::db {

namespace {
Error NotYet() { return Error::Internal("not implemented on PostgreSQL yet"); }
}  // namespace

Result<RolloutRecord> PostgresRepository::GetRollout(std::string_view id) {
  (void)id;
  return NotYet();
}

Result<std::vector<RolloutRecord>> PostgresRepository::ListRollouts(const RolloutQuery& query) {
  (void)query;
  return NotYet();
}

Result<std::vector<RolloutRecord>> PostgresRepository::ListActiveRollouts() { return NotYet(); }

Result<std::vector<RolloutTargetRecord>> PostgresRepository::ListRolloutTargets(std::string_view rollout_id,
                                                                                const RolloutTargetQuery& query) {
  (void)rollout_id;
  (void)query;
  return NotYet();
}

Result<std::vector<RolloutCommandRecord>> PostgresRepository::ListRolloutCommands(std::string_view rollout_id) {
  (void)rollout_id;
  return NotYet();
}

namespace pg_detail {

const char* const kRolloutsSchema = "";

Status InsertRollout(pg::PgConnection& conn, const InsertRolloutEffect& effect, WriteResult& result) {
  (void)conn;
  (void)effect;
  (void)result;
  return NotYet();
}

Status UpdateRollout(pg::PgConnection& conn, const UpdateRolloutEffect& effect, WriteResult& result) {
  (void)conn;
  (void)effect;
  (void)result;
  return NotYet();
}

Status InsertRolloutCommand(pg::PgConnection& conn, const InsertRolloutCommandEffect& effect) {
  (void)conn;
  (void)effect;
  return NotYet();
}

}  // namespace pg_detail

}  // namespace storeplane::db
