// PostgresRepository: stores, principals, tokens, change requests, idempotency keys, and the
// stores' /metrics aggregate. The same SQL shapes, orders and errors as the SQLite back end
// (sqlite_repository.cc, sqlite_metrics.cc): the same tests run against both.
//
// Ordering: the columns that lists are ordered or paged by are declared COLLATE "C", so that
// they compare byte by byte like SQLite's BINARY collation whatever the database's locale.
#include <algorithm>
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "db/pg_repository_impl.h"
#include "db/storage_support.h"

namespace storeplane::db {

namespace {

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
constexpr const char* kCountStores = "SELECT COUNT(*) FROM stores";
// ListStores is composed from the filters present ($2.. numbered in order), then the order.
constexpr const char* kListStoresBase = "SELECT " STOREPLANE_STORE_COLUMNS " FROM stores WHERE id > $1";
#undef STOREPLANE_STORE_COLUMNS

// In the order of stores_by_group (SQLite returns the groups in that index's order).
constexpr const char* kCountStoresByGroup =
    "SELECT state, environment, isolation_mode, COUNT(*) FROM stores GROUP BY state, environment, isolation_mode "
    "ORDER BY state, environment, isolation_mode";

constexpr const char* kCountPrincipals = "SELECT COUNT(*) FROM principals";
// Principals are upserted when a token is created for them: name and kind follow the
// latest token's creator; roles and the creation time stay as first written.
constexpr const char* kUpsertPrincipal =
    "INSERT INTO principals (id, name, kind, roles_json, created_at_ms) VALUES ($1, $2, $3, $4, $5) "
    "ON CONFLICT (id) DO UPDATE SET name = excluded.name, kind = excluded.kind";

#define STOREPLANE_TOKEN_COLUMNS \
  "id, token_hash, principal_id, description, created_at_ms, expires_at_ms, revoked_at_ms, created_by"
// A taken hash or id does nothing (no conflict target: every unique index of the table).
constexpr const char* kInsertToken = "INSERT INTO tokens (" STOREPLANE_TOKEN_COLUMNS
                                     ") VALUES ($1, $2, $3, $4, $5, $6, NULL, $7) ON CONFLICT DO NOTHING";
constexpr const char* kRevokeToken = "UPDATE tokens SET revoked_at_ms = $2 WHERE id = $1 AND revoked_at_ms IS NULL";
constexpr const char* kSelectTokenRevokedAt = "SELECT revoked_at_ms FROM tokens WHERE id = $1";
constexpr const char* kSelectTokenByHash = "SELECT " STOREPLANE_TOKEN_COLUMNS " FROM tokens WHERE token_hash = $1";
constexpr const char* kSelectTokenById = "SELECT " STOREPLANE_TOKEN_COLUMNS " FROM tokens WHERE id = $1";
constexpr const char* kSelectAllTokens = "SELECT " STOREPLANE_TOKEN_COLUMNS " FROM tokens ORDER BY created_at_ms, id";
constexpr const char* kSelectTokensOfPrincipal =
    "SELECT " STOREPLANE_TOKEN_COLUMNS " FROM tokens WHERE principal_id = $1 ORDER BY created_at_ms, id";
#undef STOREPLANE_TOKEN_COLUMNS

#define STOREPLANE_CHANGE_COLUMNS                                                                               \
  "id, action, target, environment, requester, request_body, approval_rule, approvals_needed, approvers_json, " \
  "status, outcome, created_at_ms, expires_at_ms, version"
constexpr const char* kInsertChange = "INSERT INTO change_requests (" STOREPLANE_CHANGE_COLUMNS
                                      ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) "
                                      "ON CONFLICT (id) DO NOTHING";
constexpr const char* kUpdateChangeIfVersion =
    "UPDATE change_requests SET action = $2, target = $3, environment = $4, requester = $5, request_body = $6, "
    "approval_rule = $7, approvals_needed = $8, approvers_json = $9, status = $10, outcome = $11, "
    "created_at_ms = $12, expires_at_ms = $13, version = $14 WHERE id = $1 AND version = $15";
constexpr const char* kSelectChangeVersion = "SELECT version FROM change_requests WHERE id = $1";
constexpr const char* kSelectChangeById = "SELECT " STOREPLANE_CHANGE_COLUMNS " FROM change_requests WHERE id = $1";
constexpr const char* kListChanges =
    "SELECT " STOREPLANE_CHANGE_COLUMNS " FROM change_requests ORDER BY created_at_ms DESC, id DESC LIMIT $1";
constexpr const char* kListChangesByStatus =
    "SELECT " STOREPLANE_CHANGE_COLUMNS
    " FROM change_requests WHERE status = $2 ORDER BY created_at_ms DESC, id DESC LIMIT $1";
#undef STOREPLANE_CHANGE_COLUMNS

constexpr const char* kInsertIdempotency =
    "INSERT INTO idempotency_keys (principal_id, key, request_hash, status, response_body, location, "
    "created_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (principal_id, key) DO NOTHING";
constexpr const char* kSelectIdempotency =
    "SELECT principal_id, key, request_hash, status, response_body, location, created_at_ms "
    "FROM idempotency_keys WHERE principal_id = $1 AND key = $2";

// Rows scanned per query while a label selector or a visibility predicate filters in C++
// (as in SQLite).
constexpr int kSelectorChunkRows = 256;

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

// Row `r` of a SELECT of STOREPLANE_STORE_COLUMNS, labels first so that a selector can
// reject it cheaply: nullopt (and no error) when `selector` does not match.
Result<std::optional<core::Store>> DecodeStoreIf(const pg::Rows& rows, int r, const core::LabelSelector* selector) {
  core::Store store;
  store.id = rows.Text(r, 0);
  auto labels = support::DecodeLabels(rows.Text(r, 4));
  if (!labels) return Unreadable("store", store.id);
  if (selector != nullptr && !selector->Matches(*labels)) return std::optional<core::Store>();
  store.labels = std::move(*labels);
  auto mode = core::ParseIsolationMode(rows.Text(r, 3));
  auto state = core::ParseStoreState(rows.Text(r, 5));
  if (!mode || !state) return Unreadable("store", store.id);
  store.isolation_mode = *mode;
  store.state = *state;
  store.name = rows.Text(r, 1);
  store.environment = rows.Text(r, 2);
  store.desired_release = rows.OptionalText(r, 6);
  store.current_release = rows.OptionalText(r, 7);
  store.last_known_good_release = rows.OptionalText(r, 8);
  store.version = rows.Int64(r, 9);
  store.created_at_ms = rows.Int64(r, 10);
  store.updated_at_ms = rows.Int64(r, 11);
  return std::optional<core::Store>(std::move(store));
}

// A read-only snapshot over several statements; rolled back on destruction unless
// committed (a read has nothing to lose, and the pool must not get a connection back
// inside a transaction).
class ReadSnapshot {
 public:
  explicit ReadSnapshot(pg::PgConnection& conn) : conn_(conn) {}
  ReadSnapshot(const ReadSnapshot&) = delete;
  ReadSnapshot& operator=(const ReadSnapshot&) = delete;
  ~ReadSnapshot() {
    if (conn_.in_transaction()) (void)conn_.Script("ROLLBACK", "end read");
  }
  Status Begin() { return conn_.Script("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", "begin read"); }
  Status Commit() { return conn_.Script("COMMIT", "end read"); }

 private:
  pg::PgConnection& conn_;
};

// A token's columns as $1..$7 in STOREPLANE_TOKEN_COLUMNS order (revoked_at_ms apart).
pg::Params TokenParams(const TokenRecord& token) {
  pg::Params params;
  params.Add(token.id)
      .Add(token.token_hash)
      .Add(token.principal_id)
      .Add(token.description)
      .Add(token.created_at_ms)
      .Add(token.expires_at_ms)
      .Add(token.created_by);
  return params;
}

TokenRecord DecodeToken(const pg::Rows& rows, int r) {
  TokenRecord token;
  token.id = rows.Text(r, 0);
  token.token_hash = rows.Text(r, 1);
  token.principal_id = rows.Text(r, 2);
  token.description = rows.Text(r, 3);
  token.created_at_ms = rows.Int64(r, 4);
  token.expires_at_ms = rows.OptionalInt64(r, 5);
  token.revoked_at_ms = rows.OptionalInt64(r, 6);
  token.created_by = rows.Text(r, 7);
  return token;
}

// A change request's columns as $1..$14 in STOREPLANE_CHANGE_COLUMNS order.
pg::Params ChangeParams(const ChangeRequest& change) {
  pg::Params params;
  params.Add(change.id)
      .Add(change.action)
      .Add(change.target)
      .Add(change.environment)
      .Add(change.requester)
      .Add(change.request_body)
      .Add(change.approval_rule)
      .Add(change.approvals_needed)
      .Add(support::EncodeStrings(change.approvers))
      .Add(change.status)
      .Add(change.outcome)
      .Add(change.created_at_ms)
      .Add(change.expires_at_ms)
      .Add(change.version);
  return params;
}

Result<ChangeRequest> DecodeChange(const pg::Rows& rows, int r) {
  ChangeRequest change;
  change.id = rows.Text(r, 0);
  change.action = rows.Text(r, 1);
  change.target = rows.Text(r, 2);
  change.environment = rows.Text(r, 3);
  change.requester = rows.Text(r, 4);
  change.request_body = rows.Text(r, 5);
  change.approval_rule = rows.Text(r, 6);
  change.approvals_needed = static_cast<int>(rows.Int64(r, 7));
  auto approvers = support::DecodeStrings(rows.Text(r, 8));
  if (!approvers) return Unreadable("change request", change.id);
  change.approvers = std::move(*approvers);
  change.status = rows.Text(r, 9);
  change.outcome = rows.Text(r, 10);
  change.created_at_ms = rows.Int64(r, 11);
  change.expires_at_ms = rows.Int64(r, 12);
  change.version = rows.Int64(r, 13);
  return change;
}

Result<std::int64_t> Count(pg::PgPool& pool, const char* sql, std::string_view what) {
  return WithConnection(pool, [&](pg::PgConnection& conn) -> Result<std::int64_t> {
    auto rows = conn.Exec(sql, what);
    if (!rows.ok()) return rows.error();
    if (rows->empty()) return Error::Internal(std::string(what) + ": no result");
    return rows->Int64(0, 0);
  });
}

Result<std::optional<TokenRecord>> FindToken(pg::PgPool& pool, const char* sql, std::string_view key,
                                             std::string_view what) {
  return WithConnection(pool, [&](pg::PgConnection& conn) -> Result<std::optional<TokenRecord>> {
    auto rows = conn.Exec(sql, pg::Params().Add(key), what);
    if (!rows.ok()) return rows.error();
    if (rows->empty()) return std::optional<TokenRecord>();
    return std::optional<TokenRecord>(DecodeToken(*rows, 0));
  });
}

}  // namespace

// Row `r` of a SELECT of STOREPLANE_STORE_COLUMNS. Public to src/db's PostgreSQL files.
Result<core::Store> pg_detail::DecodeStore(const pg::Rows& rows, int r) {
  auto decoded = DecodeStoreIf(rows, r, nullptr);
  if (!decoded.ok()) return decoded.error();
  return std::move(**decoded);
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
  return WithConnection(*pool_, [&](pg::PgConnection& conn) -> Result<StorePage> {
    if (query.limit < 1 || query.limit > 1000) return Error::Invalid("limit must be between 1 and 1000", "limit");
    std::string sql = kListStoresBase;
    int n = 1;
    if (query.environment) sql += " AND environment = $" + std::to_string(++n);
    if (query.isolation_mode) sql += " AND isolation_mode = $" + std::to_string(++n);
    if (query.state) sql += " AND state = $" + std::to_string(++n);
    sql += " ORDER BY id LIMIT $" + std::to_string(++n);

    const auto limit = static_cast<std::size_t>(query.limit);
    // Without a selector or a visibility predicate every row matches, so one more than a
    // page is all we need (one statement); with them, rows are scanned in chunks and
    // filtered here, in one snapshot.
    const bool filters_in_cpp = !query.selector.empty() || static_cast<bool>(query.visible);
    const int chunk = filters_in_cpp ? std::max(query.limit + 1, kSelectorChunkRows) : query.limit + 1;
    const core::LabelSelector* selector = query.selector.empty() ? nullptr : &query.selector;

    ReadSnapshot snapshot(conn);
    if (filters_in_cpp) {
      if (auto st = snapshot.Begin(); !st.ok()) return st.error();
    }
    StorePage page;
    std::string cursor = query.after_id;
    for (;;) {
      pg::Params params;
      params.Add(cursor);
      if (query.environment) params.Add(*query.environment);
      if (query.isolation_mode) params.Add(std::string(core::ToString(*query.isolation_mode)));
      if (query.state) params.Add(std::string(core::ToString(*query.state)));
      params.Add(chunk);
      auto rows = conn.Exec(sql.c_str(), params, "list stores");
      if (!rows.ok()) return rows.error();
      for (int r = 0; r < rows->size(); ++r) {
        auto decoded = DecodeStoreIf(*rows, r, selector);
        if (!decoded.ok()) return decoded.error();
        cursor = rows->Text(r, 0);
        if (!*decoded) continue;
        if (query.visible && !query.visible(**decoded)) continue;
        if (page.items.size() == limit) {  // a further match exists: there is a next page
          page.next_after_id = page.items.back().id;
          return page;
        }
        page.items.push_back(std::move(**decoded));
      }
      if (rows->size() < chunk) break;  // the table is exhausted
    }
    if (filters_in_cpp) {
      if (auto st = snapshot.Commit(); !st.ok()) return st.error();
    }
    return page;
  });
}

Result<std::int64_t> PostgresRepository::CountStores() { return Count(*pool_, kCountStores, "count stores"); }

Result<std::int64_t> PostgresRepository::CountPrincipals() {
  return Count(*pool_, kCountPrincipals, "count principals");
}

Result<std::optional<IdempotencyRecord>> PostgresRepository::FindIdempotency(std::string_view principal_id,
                                                                             std::string_view key) {
  return WithConnection(*pool_, [&](pg::PgConnection& conn) -> Result<std::optional<IdempotencyRecord>> {
    auto rows = conn.Exec(kSelectIdempotency, pg::Params().Add(principal_id).Add(key), "look up idempotency key");
    if (!rows.ok()) return rows.error();
    if (rows->empty()) return std::optional<IdempotencyRecord>();
    IdempotencyRecord record;
    record.principal_id = rows->Text(0, 0);
    record.key = rows->Text(0, 1);
    record.request_hash = rows->Text(0, 2);
    record.status = static_cast<int>(rows->Int64(0, 3));
    record.response_body = rows->Text(0, 4);
    record.location = rows->Text(0, 5);
    record.created_at_ms = rows->Int64(0, 6);
    return std::optional<IdempotencyRecord>(std::move(record));
  });
}

Result<std::optional<TokenRecord>> PostgresRepository::FindTokenByHash(std::string_view token_hash) {
  return FindToken(*pool_, kSelectTokenByHash, token_hash, "look up token");
}

Result<std::vector<TokenRecord>> PostgresRepository::ListTokens(const std::optional<std::string>& principal_id) {
  return WithConnection(*pool_, [&](pg::PgConnection& conn) -> Result<std::vector<TokenRecord>> {
    pg::Params params;
    if (principal_id) params.Add(*principal_id);
    auto rows = conn.Exec(principal_id ? kSelectTokensOfPrincipal : kSelectAllTokens, params, "list tokens");
    if (!rows.ok()) return rows.error();
    std::vector<TokenRecord> tokens;
    tokens.reserve(static_cast<std::size_t>(rows->size()));
    for (int r = 0; r < rows->size(); ++r) tokens.push_back(DecodeToken(*rows, r));
    return tokens;
  });
}

Result<std::optional<TokenRecord>> PostgresRepository::GetToken(std::string_view token_id) {
  return FindToken(*pool_, kSelectTokenById, token_id, "read token");
}

Result<ChangeRequest> PostgresRepository::GetChange(std::string_view id) {
  return WithConnection(*pool_, [&](pg::PgConnection& conn) -> Result<ChangeRequest> {
    auto rows = conn.Exec(kSelectChangeById, pg::Params().Add(id), "read change request");
    if (!rows.ok()) return rows.error();
    if (rows->empty()) return Error::NotFound("change request " + Quoted(id) + " not found");
    return DecodeChange(*rows, 0);
  });
}

Result<std::vector<ChangeRequest>> PostgresRepository::ListChanges(const std::optional<std::string>& status,
                                                                   int limit) {
  return WithConnection(*pool_, [&](pg::PgConnection& conn) -> Result<std::vector<ChangeRequest>> {
    SP_RETURN_IF_ERROR(support::CheckLimit(limit));
    pg::Params params;
    params.Add(limit);
    if (status) params.Add(*status);
    auto rows = conn.Exec(status ? kListChangesByStatus : kListChanges, params, "list change requests");
    if (!rows.ok()) return rows.error();
    std::vector<ChangeRequest> changes;
    changes.reserve(static_cast<std::size_t>(rows->size()));
    for (int r = 0; r < rows->size(); ++r) {
      auto change = DecodeChange(*rows, r);
      if (!change.ok()) return change.error();
      changes.push_back(std::move(*change));
    }
    return changes;
  });
}

Result<std::vector<Repository::StoreGroupCount>> PostgresRepository::CountStoresByGroup() {
  return WithConnection(*pool_, [&](pg::PgConnection& conn) -> Result<std::vector<StoreGroupCount>> {
    auto rows = conn.Exec(kCountStoresByGroup, "count stores by group");
    if (!rows.ok()) return rows.error();
    std::vector<StoreGroupCount> groups;
    groups.reserve(static_cast<std::size_t>(rows->size()));
    for (int r = 0; r < rows->size(); ++r) {
      groups.push_back({rows->Text(r, 0), rows->Text(r, 1), rows->Text(r, 2), rows->Int64(r, 3)});
    }
    return groups;
  });
}

namespace pg_detail {

// stores: a decommissioned store stays as a row forever, so ids are never reused. Closed
// values are checked by the database.
// principals and tokens: tokens are kept as hashes only, with a public id (unique) and a
// revocation time. idempotency_keys: remembered answers, per principal and key.
// change_requests: waiting for approvals, updated with a version check.
const char* const kStoresSchema = R"sql(
CREATE TABLE stores (
  id text COLLATE "C" PRIMARY KEY,
  name text NOT NULL,
  environment text COLLATE "C" NOT NULL,
  isolation_mode text COLLATE "C" NOT NULL CHECK (isolation_mode IN ('shared', 'dedicated', 'isolated')),
  labels_json text NOT NULL DEFAULT '{}',
  state text COLLATE "C" NOT NULL,
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

CREATE TABLE principals (
  id text PRIMARY KEY,
  name text NOT NULL,
  kind text NOT NULL CHECK (kind IN ('operator', 'service')),
  roles_json text NOT NULL DEFAULT '[]',
  created_at_ms bigint NOT NULL
);

CREATE TABLE tokens (
  token_hash text PRIMARY KEY,
  principal_id text NOT NULL REFERENCES principals (id),
  description text NOT NULL DEFAULT '',
  created_at_ms bigint NOT NULL,
  expires_at_ms bigint,
  id text COLLATE "C" NOT NULL,
  revoked_at_ms bigint,
  created_by text NOT NULL DEFAULT ''
);
CREATE INDEX tokens_by_principal ON tokens (principal_id);
CREATE UNIQUE INDEX tokens_by_id ON tokens (id);

CREATE TABLE idempotency_keys (
  principal_id text NOT NULL,
  key text NOT NULL,
  request_hash text NOT NULL,
  status bigint NOT NULL,
  response_body text NOT NULL,
  location text NOT NULL DEFAULT '',
  created_at_ms bigint NOT NULL,
  PRIMARY KEY (principal_id, key)
);
CREATE INDEX idempotency_keys_by_created_at ON idempotency_keys (created_at_ms);

CREATE TABLE change_requests (
  id text COLLATE "C" PRIMARY KEY,
  action text NOT NULL,
  target text NOT NULL,
  environment text NOT NULL,
  requester text NOT NULL,
  request_body text NOT NULL,
  approval_rule text NOT NULL,
  approvals_needed bigint NOT NULL,
  approvers_json text NOT NULL DEFAULT '[]',
  status text NOT NULL CHECK (status IN ('pending', 'executed', 'rejected', 'expired', 'failed')),
  outcome text NOT NULL DEFAULT '',
  created_at_ms bigint NOT NULL,
  expires_at_ms bigint NOT NULL,
  version bigint NOT NULL CHECK (version >= 1)
);
CREATE INDEX change_requests_by_created_at ON change_requests (created_at_ms, id);
CREATE INDEX change_requests_by_status ON change_requests (status, created_at_ms, id);
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
  const Principal& principal = effect.principal;
  auto upserted = conn.Exec(kUpsertPrincipal,
                            pg::Params()
                                .Add(principal.id)
                                .Add(principal.name)
                                .Add(principal.kind)
                                .Add(support::EncodeStrings(principal.roles))
                                .Add(principal.created_at_ms),
                            "record principal");
  if (!upserted.ok()) return upserted.error();

  TokenRecord token = effect.token;
  token.principal_id = principal.id;
  auto inserted = conn.Exec(kInsertToken, TokenParams(token), "insert token");
  if (!inserted.ok()) return inserted.error();
  if (inserted->affected() != 1) return Error{ErrorCode::kAlreadyExists, "this token is already registered", {}};
  return Status::Ok();
}

Status RevokeToken(pg::PgConnection& conn, const RevokeTokenEffect& effect) {
  auto revoked = conn.Exec(kRevokeToken, pg::Params().Add(effect.token_id).Add(effect.revoked_at_ms), "revoke token");
  if (!revoked.ok()) return revoked.error();
  if (revoked->affected() == 1) return Status::Ok();
  auto probe = conn.Exec(kSelectTokenRevokedAt, pg::Params().Add(effect.token_id), "revoke token");
  if (!probe.ok()) return probe.error();
  if (probe->empty()) return Error::NotFound("token " + Quoted(effect.token_id) + " not found");
  return Error{ErrorCode::kConflict, "token " + Quoted(effect.token_id) + " is already revoked", {}};
}

Status InsertChange(pg::PgConnection& conn, const InsertChangeEffect& effect, WriteResult& result) {
  auto inserted = conn.Exec(kInsertChange, ChangeParams(effect.change), "insert change request");
  if (!inserted.ok()) return inserted.error();
  if (inserted->affected() != 1) {
    return Error{ErrorCode::kAlreadyExists, "change request id " + Quoted(effect.change.id) + " is already taken",
                 "id"};
  }
  result.changes.push_back(effect.change);
  return Status::Ok();
}

Status UpdateChange(pg::PgConnection& conn, const UpdateChangeEffect& effect, WriteResult& result) {
  auto params = ChangeParams(effect.updated);
  params.Add(effect.expected_version);
  auto updated = conn.Exec(kUpdateChangeIfVersion, params, "update change request");
  if (!updated.ok()) return updated.error();
  if (updated->affected() != 1) {
    return VersionMismatch(conn, kSelectChangeVersion, "change request", effect.updated.id, effect.expected_version,
                           "update change request");
  }
  result.changes.push_back(effect.updated);
  return Status::Ok();
}

Status InsertIdempotency(pg::PgConnection& conn, const IdempotencyRecord& record) {
  auto inserted = conn.Exec(kInsertIdempotency,
                            pg::Params()
                                .Add(record.principal_id)
                                .Add(record.key)
                                .Add(record.request_hash)
                                .Add(record.status)
                                .Add(record.response_body)
                                .Add(record.location)
                                .Add(record.created_at_ms),
                            "record idempotency key");
  if (!inserted.ok()) return inserted.error();
  if (inserted->affected() != 1) {
    return Error{ErrorCode::kConflict, "idempotency key " + Quoted(record.key) + " was already used", {}};
  }
  return Status::Ok();
}

}  // namespace pg_detail

}  // namespace storeplane::db
