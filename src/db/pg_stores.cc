// PostgresRepository: stores, principals, tokens, change requests, idempotency keys.
// PARTLY A PLACEHOLDER: the calls that still say NotYet() are being ported.
#include "db/pg_repository_impl.h"
#include "db/storage_support.h"

namespace storeplane::db {

namespace {
Error NotYet() { return Error::Internal("not implemented on PostgreSQL yet"); }

using pg_detail::WithConnection;
using support::Quoted;
using support::Unreadable;

#define STOREPLANE_STORE_COLUMNS                                                                  \
  "id, name, environment, isolation_mode, labels_json, state, desired_release, current_release, " \
  "last_known_good_release, version, created_at_ms, updated_at_ms"

constexpr const char* kInsertStore = "INSERT INTO stores (" STOREPLANE_STORE_COLUMNS
                                     ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) "
                                     "ON CONFLICT (id) DO NOTHING";
constexpr const char* kSelectStoreById = "SELECT " STOREPLANE_STORE_COLUMNS " FROM stores WHERE id = $1";
constexpr const char* kUpdateStoreIfVersion =
    "UPDATE stores SET name = $2, environment = $3, isolation_mode = $4, labels_json = $5, state = $6, "
    "desired_release = $7, current_release = $8, last_known_good_release = $9, version = $10, "
    "created_at_ms = $11, updated_at_ms = $12 WHERE id = $1 AND version = $13";
constexpr const char* kSelectStoreVersion = "SELECT version FROM stores WHERE id = $1";

// Every column of a store as $1..$12 in STOREPLANE_STORE_COLUMNS order.
pg::Params StoreParams(const core::Store& store) {
  pg::Params params;
  params.Add(store.id)
      .Add(store.name)
      .Add(store.environment)
      .Add(std::string(core::ToString(store.isolation_mode)))
      .Add(support::EncodeLabels(store.labels))
      .Add(std::string(core::ToString(store.state)))
      .Add(store.desired_release)
      .Add(store.current_release)
      .Add(store.last_known_good_release)
      .Add(store.version)
      .Add(store.created_at_ms)
      .Add(store.updated_at_ms);
  return params;
}

}  // namespace

// Row `r` of a SELECT of STOREPLANE_STORE_COLUMNS. Public to src/db's PostgreSQL files.
Result<core::Store> pg_detail::DecodeStore(const pg::Rows& rows, int r) {
  core::Store store;
  store.id = rows.Text(r, 0);
  store.name = rows.Text(r, 1);
  store.environment = rows.Text(r, 2);
  auto mode = core::ParseIsolationMode(rows.Text(r, 3));
  auto labels = support::DecodeLabels(rows.Text(r, 4));
  auto state = core::ParseStoreState(rows.Text(r, 5));
  if (!mode || !labels || !state) return Unreadable("store", store.id);
  store.isolation_mode = *mode;
  store.labels = std::move(*labels);
  store.state = *state;
  store.desired_release = rows.OptionalText(r, 6);
  store.current_release = rows.OptionalText(r, 7);
  store.last_known_good_release = rows.OptionalText(r, 8);
  store.version = rows.Int64(r, 9);
  store.created_at_ms = rows.Int64(r, 10);
  store.updated_at_ms = rows.Int64(r, 11);
  return store;
}

Result<core::Store> PostgresRepository::GetStore(std::string_view id) {
  return WithConnection(*pool_, [&](pg::PgConnection& conn) -> Result<core::Store> {
    auto rows = conn.Exec(kSelectStoreById, pg::Params().Add(id), "read store");
    if (!rows.ok()) return rows.error();
    if (rows->empty()) return Error::NotFound("store " + Quoted(id) + " not found");
    return pg_detail::DecodeStore(*rows, 0);
  });
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

// A decommissioned store stays as a row forever, so ids are never reused. Closed values
// are checked by the database.
const char* const kStoresSchema = R"sql(
CREATE TABLE stores (
  id text PRIMARY KEY,
  name text NOT NULL,
  environment text NOT NULL,
  isolation_mode text NOT NULL CHECK (isolation_mode IN ('shared', 'dedicated', 'isolated')),
  labels_json text NOT NULL DEFAULT '{}',
  state text NOT NULL,
  desired_release text,
  current_release text,
  last_known_good_release text,
  version bigint NOT NULL CHECK (version >= 1),
  created_at_ms bigint NOT NULL,
  updated_at_ms bigint NOT NULL
);
CREATE INDEX stores_by_environment ON stores (environment, id);
CREATE INDEX stores_by_state ON stores (state, id);
CREATE INDEX stores_by_isolation_mode ON stores (isolation_mode, id);
CREATE INDEX stores_by_group ON stores (state, environment, isolation_mode);
CREATE TRIGGER stores_no_delete BEFORE DELETE ON stores FOR EACH ROW EXECUTE FUNCTION storeplane_append_only();
)sql";

Status InsertStore(pg::PgConnection& conn, const InsertStoreEffect& effect, WriteResult& result) {
  auto inserted = conn.Exec(kInsertStore, StoreParams(effect.store), "insert store");
  if (!inserted.ok()) return inserted.error();
  if (inserted->affected() != 1) {
    return Error{ErrorCode::kAlreadyExists, "store id " + Quoted(effect.store.id) + " is already taken", "id"};
  }
  result.stores.push_back(effect.store);
  return Status::Ok();
}

Status UpdateStore(pg::PgConnection& conn, const UpdateStoreEffect& effect, WriteResult& result) {
  auto params = StoreParams(effect.updated);
  params.Add(effect.expected_version);
  auto updated = conn.Exec(kUpdateStoreIfVersion, params, "update store");
  if (!updated.ok()) return updated.error();
  if (updated->affected() != 1) {
    return VersionMismatch(conn, kSelectStoreVersion, "store", effect.updated.id, effect.expected_version,
                           "update store");
  }
  result.stores.push_back(effect.updated);
  return Status::Ok();
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
