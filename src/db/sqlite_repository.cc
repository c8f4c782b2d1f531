#include "db/sqlite_repository.h"

#include <algorithm>
#include <chrono>
#include <exception>
#include <string>
#include <utility>
#include <vector>

#include <boost/json.hpp>

#include "db/migrations.h"
#include "db/sqlite_repository_impl.h"

namespace storeplane::db {

namespace {

// ---- SQL ----

#define STOREPLANE_STORE_COLUMNS                                                                  \
  "id, name, environment, isolation_mode, labels_json, state, desired_release, current_release, " \
  "last_known_good_release, version, created_at_ms, updated_at_ms"

constexpr const char* kPragmaJournalModeWal = "PRAGMA journal_mode=WAL";
constexpr const char* kPragmaWriterSettings = "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON";
constexpr const char* kPragmaReaderSettings = "PRAGMA foreign_keys=ON; PRAGMA query_only=ON";

constexpr const char* kInsertStore =
    "INSERT INTO stores (" STOREPLANE_STORE_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)";
constexpr const char* kSelectStoreById = "SELECT " STOREPLANE_STORE_COLUMNS " FROM stores WHERE id = ?1";
constexpr const char* kUpdateStoreIfVersion =
    "UPDATE stores SET name = ?2, environment = ?3, isolation_mode = ?4, labels_json = ?5, state = ?6, "
    "desired_release = ?7, current_release = ?8, last_known_good_release = ?9, version = ?10, "
    "created_at_ms = ?11, updated_at_ms = ?12 WHERE id = ?1 AND version = ?13";
constexpr const char* kSelectStoreVersion = "SELECT version FROM stores WHERE id = ?1";
constexpr const char* kCountStores = "SELECT COUNT(*) FROM stores";

// ListStores is composed from these fragments: the filters present, then the order.
constexpr const char* kListStoresBase = "SELECT " STOREPLANE_STORE_COLUMNS " FROM stores WHERE id > ?1";
constexpr const char* kListAndEnvironment = " AND environment = ?2";
constexpr const char* kListAndIsolationMode = " AND isolation_mode = ?3";
constexpr const char* kListAndState = " AND state = ?4";
constexpr const char* kListOrderByIdLimit = " ORDER BY id LIMIT ?5";

constexpr const char* kInsertIdempotency =
    "INSERT INTO idempotency_keys (principal_id, key, request_hash, status, response_body, location, "
    "created_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
constexpr const char* kSelectIdempotency =
    "SELECT principal_id, key, request_hash, status, response_body, location, created_at_ms "
    "FROM idempotency_keys WHERE principal_id = ?1 AND key = ?2";

constexpr const char* kInsertPrincipal =
    "INSERT INTO principals (id, name, kind, roles_json, created_at_ms) VALUES (?1, ?2, ?3, ?4, ?5)";
constexpr const char* kInsertToken =
    "INSERT INTO tokens (token_hash, principal_id, description, created_at_ms, expires_at_ms) "
    "VALUES (?1, ?2, ?3, ?4, ?5)";
constexpr const char* kSelectPrincipalByUnexpiredToken =
    "SELECT p.id, p.name, p.kind, p.roles_json, p.created_at_ms FROM tokens t "
    "JOIN principals p ON p.id = t.principal_id "
    "WHERE t.token_hash = ?1 AND (t.expires_at_ms IS NULL OR t.expires_at_ms > ?2)";
constexpr const char* kCountPrincipals = "SELECT COUNT(*) FROM principals";

constexpr const char* kPing = "SELECT COUNT(*) FROM schema_migrations";

#undef STOREPLANE_STORE_COLUMNS

// Column positions of STOREPLANE_STORE_COLUMNS.
enum StoreColumn {
  kColId,
  kColName,
  kColEnvironment,
  kColIsolationMode,
  kColLabelsJson,
  kColState,
  kColDesiredRelease,
  kColCurrentRelease,
  kColLastKnownGoodRelease,
  kColVersion,
  kColCreatedAt,
  kColUpdatedAt,
};

// Rows scanned per query while a label selector filters in C++.
constexpr int kSelectorChunkRows = 256;

// ---- helpers ----

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

std::string Quoted(std::string_view text) {
  std::string out = "'";
  out += text;
  out += "'";
  return out;
}

Error Unreadable(std::string_view what, std::string_view id) {
  return Error::Internal("stored " + std::string(what) + " " + Quoted(id) + " is unreadable");
}

std::string EncodeLabels(const core::Labels& labels) {
  boost::json::object object;
  for (const auto& [key, value] : labels) object[key] = value;
  return boost::json::serialize(object);
}

std::optional<core::Labels> DecodeLabels(const std::string& json) {
  boost::system::error_code ec;
  boost::json::value value = boost::json::parse(json, ec);
  if (ec || !value.is_object()) return std::nullopt;
  core::Labels labels;
  for (const auto& [key, v] : value.get_object()) {
    if (!v.is_string()) return std::nullopt;
    labels.emplace(std::string(key), std::string(v.get_string()));
  }
  return labels;
}

std::string EncodeRoles(const std::vector<std::string>& roles) {
  boost::json::array array;
  for (const auto& role : roles) array.emplace_back(role);
  return boost::json::serialize(array);
}

std::optional<std::vector<std::string>> DecodeRoles(const std::string& json) {
  boost::system::error_code ec;
  boost::json::value value = boost::json::parse(json, ec);
  if (ec || !value.is_array()) return std::nullopt;
  std::vector<std::string> roles;
  for (const auto& v : value.get_array()) {
    if (!v.is_string()) return std::nullopt;
    roles.emplace_back(v.get_string());
  }
  return roles;
}

// Binds every column of a store as ?1..?12 in STOREPLANE_STORE_COLUMNS order.
void BindStore(Statement& stmt, const core::Store& store) {
  stmt.Bind(1, std::string_view(store.id))
      .Bind(2, std::string_view(store.name))
      .Bind(3, std::string_view(store.environment))
      .Bind(4, core::ToString(store.isolation_mode))
      .Bind(5, std::string_view(EncodeLabels(store.labels)))
      .Bind(6, core::ToString(store.state))
      .Bind(7, store.desired_release)
      .Bind(8, store.current_release)
      .Bind(9, store.last_known_good_release)
      .Bind(10, store.version)
      .Bind(11, store.created_at_ms)
      .Bind(12, store.updated_at_ms);
}

// Decodes the current row, labels first so that a selector can reject it cheaply.
// Returns nullopt (and no error) when the selector does not match.
Result<std::optional<core::Store>> DecodeStoreIf(const Statement& stmt, const core::LabelSelector* selector) {
  core::Store store;
  store.id = stmt.ColumnText(kColId);
  auto labels = DecodeLabels(stmt.ColumnText(kColLabelsJson));
  if (!labels) return Unreadable("store", store.id);
  if (selector != nullptr && !selector->Matches(*labels)) return std::optional<core::Store>();
  store.labels = std::move(*labels);
  auto mode = core::ParseIsolationMode(stmt.ColumnText(kColIsolationMode));
  auto state = core::ParseStoreState(stmt.ColumnText(kColState));
  if (!mode || !state) return Unreadable("store", store.id);
  store.isolation_mode = *mode;
  store.state = *state;
  store.name = stmt.ColumnText(kColName);
  store.environment = stmt.ColumnText(kColEnvironment);
  store.desired_release = stmt.ColumnOptionalText(kColDesiredRelease);
  store.current_release = stmt.ColumnOptionalText(kColCurrentRelease);
  store.last_known_good_release = stmt.ColumnOptionalText(kColLastKnownGoodRelease);
  store.version = stmt.ColumnInt64(kColVersion);
  store.created_at_ms = stmt.ColumnInt64(kColCreatedAt);
  store.updated_at_ms = stmt.ColumnInt64(kColUpdatedAt);
  return std::optional<core::Store>(std::move(store));
}

Result<core::Store> DecodeStore(const Statement& stmt) {
  auto decoded = DecodeStoreIf(stmt, nullptr);
  if (!decoded.ok()) return decoded.error();
  return std::move(**decoded);
}

// A read transaction on a reader connection, so that a multi-query read sees one snapshot.
// Rolled back on destruction unless committed (a read-only transaction has nothing to lose).
class ReadTransaction {
 public:
  explicit ReadTransaction(Connection& conn) : conn_(conn) {}
  ReadTransaction(const ReadTransaction&) = delete;
  ReadTransaction& operator=(const ReadTransaction&) = delete;
  ~ReadTransaction() {
    if (!conn_.autocommit()) (void)conn_.Exec(kSqlRollback, "end read");
  }
  Status Begin() { return conn_.Exec(kSqlBegin, "begin read"); }
  Status Commit() { return conn_.Exec(kSqlCommit, "end read"); }

 private:
  Connection& conn_;
};

std::int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Error OpenFailure(const Error& cause) {
  return Error{ErrorCode::kUnavailable, "cannot open the database: " + cause.message, {}};
}

}  // namespace

// ---- SqliteRepository ----

SqliteRepository::SqliteRepository(std::unique_ptr<WriteQueue> writer, std::unique_ptr<ReadPool> readers)
    : writer_(std::move(writer)), readers_(std::move(readers)) {}

Result<core::Store> SqliteRepository::InsertStore(const core::Store& store,
                                                  const std::optional<IdempotencyRecord>& idempotency) {
  return Guarded([&]() -> Result<core::Store> {
    Status st = writer_->Run([&](Connection& conn) -> Status {
      auto insert = conn.Prepare(kInsertStore, "insert store");
      if (!insert.ok()) return insert.error();
      BindStore(*insert, store);
      if (auto run = insert->Run("insert store"); !run.ok()) {
        if (IsUniqueViolation(insert->last_rc())) {
          return Error{ErrorCode::kAlreadyExists, "store id " + Quoted(store.id) + " is already taken", "id"};
        }
        return run;
      }
      if (!idempotency) return Status::Ok();
      auto remember = conn.Prepare(kInsertIdempotency, "record idempotency key");
      if (!remember.ok()) return remember.error();
      remember->Bind(1, std::string_view(idempotency->principal_id))
          .Bind(2, std::string_view(idempotency->key))
          .Bind(3, std::string_view(idempotency->request_hash))
          .Bind(4, static_cast<std::int64_t>(idempotency->status))
          .Bind(5, std::string_view(idempotency->response_body))
          .Bind(6, std::string_view(idempotency->location))
          .Bind(7, idempotency->created_at_ms);
      if (auto run = remember->Run("record idempotency key"); !run.ok()) {
        if (IsUniqueViolation(remember->last_rc())) {
          return Error{ErrorCode::kConflict, "idempotency key " + Quoted(idempotency->key) + " was already used", {}};
        }
        return run;
      }
      return Status::Ok();
    });
    if (!st.ok()) return st.error();
    return store;
  });
}

Result<core::Store> SqliteRepository::GetStore(std::string_view id) {
  return Guarded([&]() -> Result<core::Store> {
    auto conn = readers_->Acquire();
    auto select = conn->Prepare(kSelectStoreById, "read store");
    if (!select.ok()) return select.error();
    select->Bind(1, id);
    auto row = select->Step("read store");
    if (!row.ok()) return row.error();
    if (!*row) return Error::NotFound("store " + Quoted(id) + " not found");
    return DecodeStore(*select);
  });
}

Result<StorePage> SqliteRepository::ListStores(const StoreQuery& query) {
  return Guarded([&]() -> Result<StorePage> {
    if (query.limit < 1 || query.limit > 1000) return Error::Invalid("limit must be between 1 and 1000", "limit");
    std::string sql = kListStoresBase;
    if (query.environment) sql += kListAndEnvironment;
    if (query.isolation_mode) sql += kListAndIsolationMode;
    if (query.state) sql += kListAndState;
    sql += kListOrderByIdLimit;

    const auto limit = static_cast<std::size_t>(query.limit);
    // Without a selector every row matches, so one more than a page is all we need.
    const int chunk = query.selector.empty() ? query.limit + 1 : std::max(query.limit + 1, kSelectorChunkRows);
    const core::LabelSelector* selector = query.selector.empty() ? nullptr : &query.selector;

    auto conn = readers_->Acquire();
    ReadTransaction txn(*conn);
    if (auto st = txn.Begin(); !st.ok()) return st.error();
    auto select = conn->Prepare(sql.c_str(), "list stores");
    if (!select.ok()) return select.error();

    StorePage page;
    std::string cursor = query.after_id;
    for (;;) {
      select->Bind(1, std::string_view(cursor));
      if (query.environment) select->Bind(2, std::string_view(*query.environment));
      if (query.isolation_mode) select->Bind(3, core::ToString(*query.isolation_mode));
      if (query.state) select->Bind(4, core::ToString(*query.state));
      select->Bind(5, static_cast<std::int64_t>(chunk));
      int rows = 0;
      for (;;) {
        auto row = select->Step("list stores");
        if (!row.ok()) return row.error();
        if (!*row) break;
        ++rows;
        auto decoded = DecodeStoreIf(*select, selector);
        if (!decoded.ok()) return decoded.error();
        cursor = select->ColumnText(kColId);
        if (!*decoded) continue;
        if (page.items.size() == limit) {  // a further match exists: there is a next page
          page.next_after_id = page.items.back().id;
          return page;
        }
        page.items.push_back(std::move(**decoded));
      }
      if (rows < chunk) break;  // the table is exhausted
      select->Reset();
    }
    if (auto st = txn.Commit(); !st.ok()) return st.error();
    return page;
  });
}

Result<core::Store> SqliteRepository::UpdateStore(const core::Store& updated, std::int64_t expected_version) {
  return Guarded([&]() -> Result<core::Store> {
    if (updated.version != expected_version + 1) {
      return Error::Internal("update of store " + Quoted(updated.id) + " must advance its version by one");
    }
    Status st = writer_->Run([&](Connection& conn) -> Status {
      auto update = conn.Prepare(kUpdateStoreIfVersion, "update store");
      if (!update.ok()) return update.error();
      BindStore(*update, updated);
      update->Bind(13, expected_version);
      if (auto run = update->Run("update store"); !run.ok()) return run;
      if (conn.changes() == 1) return Status::Ok();
      // Nothing changed: tell a missing store from a stale version.
      auto probe = conn.Prepare(kSelectStoreVersion, "update store");
      if (!probe.ok()) return probe.error();
      probe->Bind(1, std::string_view(updated.id));
      auto row = probe->Step("update store");
      if (!row.ok()) return row.error();
      if (!*row) return Error::NotFound("store " + Quoted(updated.id) + " not found");
      return Error{ErrorCode::kPreconditionFailed,
                   "store " + Quoted(updated.id) + " has version " + std::to_string(probe->ColumnInt64(0)) + ", not " +
                       std::to_string(expected_version),
                   {}};
    });
    if (!st.ok()) return st.error();
    return updated;
  });
}

Result<std::int64_t> SqliteRepository::Count(const char* sql, std::string_view what) {
  return Guarded([&]() -> Result<std::int64_t> {
    auto conn = readers_->Acquire();
    auto select = conn->Prepare(sql, what);
    if (!select.ok()) return select.error();
    auto row = select->Step(what);
    if (!row.ok()) return row.error();
    if (!*row) return Error::Internal(std::string(what) + ": no result");
    return select->ColumnInt64(0);
  });
}

Result<std::int64_t> SqliteRepository::CountStores() { return Count(kCountStores, "count stores"); }

Result<std::int64_t> SqliteRepository::CountPrincipals() { return Count(kCountPrincipals, "count principals"); }

Status SqliteRepository::InsertPrincipalWithToken(const Principal& principal, const TokenRecord& token) {
  return Guarded([&]() -> Status {
    if (!token.principal_id.empty() && token.principal_id != principal.id) {
      return Error::Internal("token must belong to the principal inserted with it");
    }
    return writer_->Run([&](Connection& conn) -> Status {
      auto insert = conn.Prepare(kInsertPrincipal, "insert principal");
      if (!insert.ok()) return insert.error();
      insert->Bind(1, std::string_view(principal.id))
          .Bind(2, std::string_view(principal.name))
          .Bind(3, std::string_view(principal.kind))
          .Bind(4, std::string_view(EncodeRoles(principal.roles)))
          .Bind(5, principal.created_at_ms);
      if (auto run = insert->Run("insert principal"); !run.ok()) {
        if (IsUniqueViolation(insert->last_rc())) {
          return Error{ErrorCode::kAlreadyExists, "principal " + Quoted(principal.id) + " already exists", "id"};
        }
        return run;
      }
      auto insert_token = conn.Prepare(kInsertToken, "insert token");
      if (!insert_token.ok()) return insert_token.error();
      insert_token->Bind(1, std::string_view(token.token_hash))
          .Bind(2, std::string_view(principal.id))
          .Bind(3, std::string_view(token.description))
          .Bind(4, token.created_at_ms)
          .Bind(5, token.expires_at_ms);
      if (auto run = insert_token->Run("insert token"); !run.ok()) {
        if (IsUniqueViolation(insert_token->last_rc())) {
          return Error{ErrorCode::kAlreadyExists, "this token is already registered", {}};
        }
        return run;
      }
      return Status::Ok();
    });
  });
}

Result<std::optional<Principal>> SqliteRepository::FindPrincipalByTokenHash(std::string_view token_hash,
                                                                            std::int64_t now_ms) {
  return Guarded([&]() -> Result<std::optional<Principal>> {
    auto conn = readers_->Acquire();
    auto select = conn->Prepare(kSelectPrincipalByUnexpiredToken, "look up token");
    if (!select.ok()) return select.error();
    select->Bind(1, token_hash).Bind(2, now_ms);
    auto row = select->Step("look up token");
    if (!row.ok()) return row.error();
    if (!*row) return std::optional<Principal>();
    Principal principal;
    principal.id = select->ColumnText(0);
    principal.name = select->ColumnText(1);
    principal.kind = select->ColumnText(2);
    auto roles = DecodeRoles(select->ColumnText(3));
    if (!roles) return Unreadable("principal", principal.id);
    principal.roles = std::move(*roles);
    principal.created_at_ms = select->ColumnInt64(4);
    return std::optional<Principal>(std::move(principal));
  });
}

Result<std::optional<IdempotencyRecord>> SqliteRepository::FindIdempotency(std::string_view principal_id,
                                                                           std::string_view key) {
  return Guarded([&]() -> Result<std::optional<IdempotencyRecord>> {
    auto conn = readers_->Acquire();
    auto select = conn->Prepare(kSelectIdempotency, "look up idempotency key");
    if (!select.ok()) return select.error();
    select->Bind(1, principal_id).Bind(2, key);
    auto row = select->Step("look up idempotency key");
    if (!row.ok()) return row.error();
    if (!*row) return std::optional<IdempotencyRecord>();
    IdempotencyRecord record;
    record.principal_id = select->ColumnText(0);
    record.key = select->ColumnText(1);
    record.request_hash = select->ColumnText(2);
    record.status = static_cast<int>(select->ColumnInt64(3));
    record.response_body = select->ColumnText(4);
    record.location = select->ColumnText(5);
    record.created_at_ms = select->ColumnInt64(6);
    return std::optional<IdempotencyRecord>(std::move(record));
  });
}

Status SqliteRepository::Ping() {
  return Guarded([&]() -> Status {
    auto count = Count(kPing, "ping database");
    if (!count.ok()) return count.error();
    return Status::Ok();
  });
}

// ---- Open ----

Result<std::unique_ptr<Repository>> OpenSqliteRepository(const SqliteOptions& options) {
  return Guarded([&]() -> Result<std::unique_ptr<Repository>> {
    if (options.path.empty()) return Error::Invalid("the database path is empty", "path");
    if (options.max_batch < 1) return Error::Invalid("max_batch must be at least 1", "max_batch");
    if (options.read_connections < 1) {
      return Error::Invalid("read_connections must be at least 1", "read_connections");
    }
    if (sqlite3_threadsafe() == 0) {
      return Error{ErrorCode::kUnavailable, "cannot open the database: SQLite was built without threads", {}};
    }

    auto writer = Connection::Open(options.path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, options.busy_timeout_ms);
    if (!writer.ok()) return OpenFailure(writer.error());
    auto mode = writer->QueryText(kPragmaJournalModeWal, "enable WAL");
    if (!mode.ok()) return OpenFailure(mode.error());
    if (*mode != "wal") {
      return Error{ErrorCode::kUnavailable, "cannot open the database: WAL journal mode is not available", {}};
    }
    if (auto st = writer->Exec(kPragmaWriterSettings, "configure database"); !st.ok()) {
      return OpenFailure(st.error());
    }
    if (auto st = ApplyMigrations(*writer, NowMs()); !st.ok()) {
      Error error = st.error();
      error.code = ErrorCode::kUnavailable;
      return error;
    }

    std::vector<Connection> readers;
    for (int i = 0; i < options.read_connections; ++i) {
      auto reader = Connection::Open(options.path, SQLITE_OPEN_READONLY, options.busy_timeout_ms);
      if (!reader.ok()) return OpenFailure(reader.error());
      if (auto st = reader->Exec(kPragmaReaderSettings, "configure reader"); !st.ok()) {
        return OpenFailure(st.error());
      }
      readers.push_back(std::move(*reader));
    }

    auto queue =
        std::make_unique<WriteQueue>(std::move(*writer), WriteQueueOptions{options.group_commit, options.max_batch});
    auto pool = std::make_unique<ReadPool>(std::move(readers));
    return std::unique_ptr<Repository>(std::make_unique<SqliteRepository>(std::move(queue), std::move(pool)));
  });
}

}  // namespace storeplane::db
