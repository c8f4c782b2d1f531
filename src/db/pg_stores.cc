// PLACEHOLDER (replaced by the area port): every call fails with kInternal.
#include "db/pg_repository_impl.h"

namespace storeplane::db {

namespace {
Error NotYet() { return Error::Internal("not implemented on PostgreSQL yet"); }
}  // namespace

Result<core::Store> PostgresRepository::GetStore(std::string_view id) {
  (void)id;
  return NotYet();
}

Result<StorePage> PostgresRepository::ListStores(const StoreQuery& query) {
  (void)query;
  return NotYet();
}

Result<std::int64_t> PostgresRepository::CountStores() { return NotYet(); }

Result<std::int64_t> PostgresRepository::CountPrincipals() { return NotYet(); }

Result<std::optional<IdempotencyRecord>> PostgresRepository::FindIdempotency(std::string_view principal_id,
                                                                             std::string_view key) {
  (void)principal_id;
  (void)key;
  return NotYet();
}

Result<std::optional<TokenRecord>> PostgresRepository::FindTokenByHash(std::string_view token_hash) {
  (void)token_hash;
  return NotYet();
}

Result<std::vector<TokenRecord>> PostgresRepository::ListTokens(const std::optional<std::string>& principal_id) {
  (void)principal_id;
  return NotYet();
}

Result<std::optional<TokenRecord>> PostgresRepository::GetToken(std::string_view token_id) {
  (void)token_id;
  return NotYet();
}

Result<ChangeRequest> PostgresRepository::GetChange(std::string_view id) {
  (void)id;
  return NotYet();
}

Result<std::vector<ChangeRequest>> PostgresRepository::ListChanges(const std::optional<std::string>& status,
                                                                   int limit) {
  (void)status;
  (void)limit;
  return NotYet();
}

Result<std::vector<Repository::StoreGroupCount>> PostgresRepository::CountStoresByGroup() { return NotYet(); }

namespace pg_detail {

const char* const kStoresSchema = "";

Status InsertStore(pg::PgConnection& conn, const InsertStoreEffect& effect, WriteResult& result) {
  (void)conn;
  (void)effect;
  (void)result;
  return NotYet();
}

Status UpdateStore(pg::PgConnection& conn, const UpdateStoreEffect& effect, WriteResult& result) {
  (void)conn;
  (void)effect;
  (void)result;
  return NotYet();
}

Status InsertToken(pg::PgConnection& conn, const InsertTokenEffect& effect) {
  (void)conn;
  (void)effect;
  return NotYet();
}

Status RevokeToken(pg::PgConnection& conn, const RevokeTokenEffect& effect) {
  (void)conn;
  (void)effect;
  return NotYet();
}

Status InsertChange(pg::PgConnection& conn, const InsertChangeEffect& effect, WriteResult& result) {
  (void)conn;
  (void)effect;
  (void)result;
  return NotYet();
}

Status UpdateChange(pg::PgConnection& conn, const UpdateChangeEffect& effect, WriteResult& result) {
  (void)conn;
  (void)effect;
  (void)result;
  return NotYet();
}

Status InsertIdempotency(pg::PgConnection& conn, const IdempotencyRecord& record) {
  (void)conn;
  (void)record;
  return NotYet();
}

}  // namespace pg_detail

}  // namespace storeplane::db
