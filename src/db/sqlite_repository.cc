#include "db/sqlite_repository.h"

#include <algorithm>
#include <chrono>
#include <exception>
#include <future>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include <boost/json.hpp>

#include "db/migrations.h"
#include "db/sqlite_repository_impl.h"
#include "db/storage_support.h"

namespace storeplane::db {

namespace support {

std::string Quoted(std::string_view text) {
  std::string out = "'";
  out += text;
  out += "'";
  return out;
}

Error Unreadable(std::string_view what, std::string_view id) {
  return Error::Internal("stored " + std::string(what) + " " + Quoted(id) + " is unreadable");
}

Status CheckLimit(int limit) {
  if (limit < 1 || limit > 1000) return Error::Invalid("limit must be between 1 and 1000", "limit");
  return Status::Ok();
}

std::string EncodeStrings(const std::vector<std::string>& strings) {
  boost::json::array array;
  for (const auto& text : strings) array.emplace_back(text);
  return boost::json::serialize(array);
}

std::optional<std::vector<std::string>> DecodeStrings(const std::string& json) {
  boost::system::error_code ec;
  boost::json::value value = boost::json::parse(json, ec);
  if (ec || !value.is_array()) return std::nullopt;
  std::vector<std::string> strings;
  for (const auto& v : value.get_array()) {
    if (!v.is_string()) return std::nullopt;
    strings.emplace_back(v.get_string());
  }
  return strings;
}

Status CheckBatch(const WriteBatch& batch) {
  if (batch.audit.empty()) {
    return Error::Internal("a write without an audit record is refused (no audit, no change)");
  }
  for (const Effect& effect : batch.effects) {
    if (const auto* update = std::get_if<UpdateStoreEffect>(&effect)) {
      if (update->updated.version != update->expected_version + 1) {
        return Error::Internal("update of store " + Quoted(update->updated.id) + " must advance its version by one");
      }
    } else if (const auto* change = std::get_if<UpdateChangeEffect>(&effect)) {
      if (change->updated.version != change->expected_version + 1) {
        return Error::Internal("update of change request " + Quoted(change->updated.id) +
                               " must advance its version by one");
      }
    } else if (const auto* token = std::get_if<InsertTokenEffect>(&effect)) {
      if (token->token.id.empty() || token->principal.id.empty()) {
        return Error::Internal("a token needs an id and a principal");
      }
      if (!token->token.principal_id.empty() && token->token.principal_id != token->principal.id) {
        return Error::Internal("a token must belong to the principal inserted with it");
      }
    } else {
      SP_RETURN_IF_ERROR(sqlite_detail::CheckAgentEffect(effect));
      SP_RETURN_IF_ERROR(sqlite_detail::CheckRunEffect(effect));
      SP_RETURN_IF_ERROR(sqlite_detail::CheckRolloutEffect(effect));
    }
  }
  return Status::Ok();
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

}  // namespace support

using sqlite_detail::CheckLimit;
using sqlite_detail::DecodeStrings;
using sqlite_detail::EncodeStrings;
using sqlite_detail::Guarded;
using sqlite_detail::Quoted;
using sqlite_detail::Unreadable;
using support::DecodeLabels;
using support::EncodeLabels;

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

// Principals are upserted when a token is created for them: name and kind follow the
// latest token's creator; roles and the creation time stay as first written.
constexpr const char* kUpsertPrincipal =
    "INSERT INTO principals (id, name, kind, roles_json, created_at_ms) VALUES (?1, ?2, ?3, ?4, ?5) "
    "ON CONFLICT (id) DO UPDATE SET name = excluded.name, kind = excluded.kind";

#define STOREPLANE_TOKEN_COLUMNS \
  "id, token_hash, principal_id, description, created_at_ms, expires_at_ms, revoked_at_ms, created_by"
constexpr const char* kInsertToken =
    "INSERT INTO tokens (" STOREPLANE_TOKEN_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL, ?7)";
constexpr const char* kRevokeToken = "UPDATE tokens SET revoked_at_ms = ?2 WHERE id = ?1 AND revoked_at_ms IS NULL";
constexpr const char* kSelectTokenRevokedAt = "SELECT revoked_at_ms FROM tokens WHERE id = ?1";
constexpr const char* kSelectTokenByHash = "SELECT " STOREPLANE_TOKEN_COLUMNS " FROM tokens WHERE token_hash = ?1";
constexpr const char* kSelectTokenById = "SELECT " STOREPLANE_TOKEN_COLUMNS " FROM tokens WHERE id = ?1";
constexpr const char* kSelectAllTokens = "SELECT " STOREPLANE_TOKEN_COLUMNS " FROM tokens ORDER BY created_at_ms, id";
constexpr const char* kSelectTokensOfPrincipal =
    "SELECT " STOREPLANE_TOKEN_COLUMNS " FROM tokens WHERE principal_id = ?1 ORDER BY created_at_ms, id";
#undef STOREPLANE_TOKEN_COLUMNS

#define STOREPLANE_CHANGE_COLUMNS                                                                               \
  "id, action, target, environment, requester, request_body, approval_rule, approvals_needed, approvers_json, " \
  "status, outcome, created_at_ms, expires_at_ms, version"
constexpr const char* kInsertChange = "INSERT INTO change_requests (" STOREPLANE_CHANGE_COLUMNS
                                      ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)";
constexpr const char* kUpdateChangeIfVersion =
    "UPDATE change_requests SET action = ?2, target = ?3, environment = ?4, requester = ?5, request_body = ?6, "
    "approval_rule = ?7, approvals_needed = ?8, approvers_json = ?9, status = ?10, outcome = ?11, "
    "created_at_ms = ?12, expires_at_ms = ?13, version = ?14 WHERE id = ?1 AND version = ?15";
constexpr const char* kSelectChangeVersion = "SELECT version FROM change_requests WHERE id = ?1";
constexpr const char* kSelectChangeById = "SELECT " STOREPLANE_CHANGE_COLUMNS " FROM change_requests WHERE id = ?1";
constexpr const char* kListChanges =
    "SELECT " STOREPLANE_CHANGE_COLUMNS " FROM change_requests ORDER BY created_at_ms DESC, id DESC LIMIT ?1";
constexpr const char* kListChangesByStatus =
    "SELECT " STOREPLANE_CHANGE_COLUMNS
    " FROM change_requests WHERE status = ?2 ORDER BY created_at_ms DESC, id DESC LIMIT ?1";
#undef STOREPLANE_CHANGE_COLUMNS

// ListAudit is composed like ListStores: the filters present, then the order.
constexpr const char* kListAuditBase =
    "SELECT seq, time_ms, principal, source, action, target, request_id, decision, rule, outcome, params_json, "
    "prev_hash, hash FROM audit_log WHERE seq > ?1";
constexpr const char* kListAuditAndPrincipal = " AND principal = ?2";
constexpr const char* kListAuditAndAction = " AND action = ?3";
constexpr const char* kListAuditAndTarget = " AND target = ?4";
constexpr const char* kListAuditOrderBySeqLimit = " ORDER BY seq LIMIT ?5";
constexpr const char* kListCheckpoints =
    "SELECT seq, hash, time_ms, key_id, signature FROM audit_checkpoints WHERE seq > ?1 ORDER BY seq LIMIT ?2";

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

// Binds a token's columns as ?1..?7 in STOREPLANE_TOKEN_COLUMNS order (revoked_at_ms apart).
void BindToken(Statement& stmt, const TokenRecord& token) {
  stmt.Bind(1, std::string_view(token.id))
      .Bind(2, std::string_view(token.token_hash))
      .Bind(3, std::string_view(token.principal_id))
      .Bind(4, std::string_view(token.description))
      .Bind(5, token.created_at_ms)
      .Bind(6, token.expires_at_ms)
      .Bind(7, std::string_view(token.created_by));
}

TokenRecord DecodeToken(const Statement& stmt) {
  TokenRecord token;
  token.id = stmt.ColumnText(0);
  token.token_hash = stmt.ColumnText(1);
  token.principal_id = stmt.ColumnText(2);
  token.description = stmt.ColumnText(3);
  token.created_at_ms = stmt.ColumnInt64(4);
  token.expires_at_ms = stmt.ColumnOptionalInt64(5);
  token.revoked_at_ms = stmt.ColumnOptionalInt64(6);
  token.created_by = stmt.ColumnText(7);
  return token;
}

// Binds a change request's columns as ?1..?14 in STOREPLANE_CHANGE_COLUMNS order.
void BindChange(Statement& stmt, const ChangeRequest& change) {
  stmt.Bind(1, std::string_view(change.id))
      .Bind(2, std::string_view(change.action))
      .Bind(3, std::string_view(change.target))
      .Bind(4, std::string_view(change.environment))
      .Bind(5, std::string_view(change.requester))
      .Bind(6, std::string_view(change.request_body))
      .Bind(7, std::string_view(change.approval_rule))
      .Bind(8, static_cast<std::int64_t>(change.approvals_needed))
      .Bind(9, std::string_view(EncodeStrings(change.approvers)))
      .Bind(10, std::string_view(change.status))
      .Bind(11, std::string_view(change.outcome))
      .Bind(12, change.created_at_ms)
      .Bind(13, change.expires_at_ms)
      .Bind(14, change.version);
}

Result<ChangeRequest> DecodeChange(const Statement& stmt) {
  ChangeRequest change;
  change.id = stmt.ColumnText(0);
  change.action = stmt.ColumnText(1);
  change.target = stmt.ColumnText(2);
  change.environment = stmt.ColumnText(3);
  change.requester = stmt.ColumnText(4);
  change.request_body = stmt.ColumnText(5);
  change.approval_rule = stmt.ColumnText(6);
  change.approvals_needed = static_cast<int>(stmt.ColumnInt64(7));
  auto approvers = DecodeStrings(stmt.ColumnText(8));
  if (!approvers) return Unreadable("change request", change.id);
  change.approvers = std::move(*approvers);
  change.status = stmt.ColumnText(9);
  change.outcome = stmt.ColumnText(10);
  change.created_at_ms = stmt.ColumnInt64(11);
  change.expires_at_ms = stmt.ColumnInt64(12);
  change.version = stmt.ColumnInt64(13);
  return change;
}

Result<core::AuditRecord> DecodeAuditRecord(const Statement& stmt) {
  core::AuditRecord record;
  record.seq = stmt.ColumnInt64(0);
  record.entry.time_ms = stmt.ColumnInt64(1);
  record.entry.principal = stmt.ColumnText(2);
  record.entry.source = stmt.ColumnText(3);
  record.entry.action = stmt.ColumnText(4);
  record.entry.target = stmt.ColumnText(5);
  record.entry.request_id = stmt.ColumnText(6);
  record.entry.decision = stmt.ColumnText(7);
  record.entry.rule = stmt.ColumnText(8);
  record.entry.outcome = stmt.ColumnText(9);
  auto params = DecodeAuditParams(stmt.ColumnText(10));
  if (!params) return Unreadable("audit record", std::to_string(record.seq));
  record.entry.params = std::move(*params);
  record.prev_hash = stmt.ColumnText(11);
  record.hash = stmt.ColumnText(12);
  return record;
}

// ---- effects: each runs on the writer connection, inside the batch's savepoint ----

Status InsertIdempotency(Connection& conn, const IdempotencyRecord& idempotency) {
  auto remember = conn.Prepare(kInsertIdempotency, "record idempotency key");
  if (!remember.ok()) return remember.error();
  remember->Bind(1, std::string_view(idempotency.principal_id))
      .Bind(2, std::string_view(idempotency.key))
      .Bind(3, std::string_view(idempotency.request_hash))
      .Bind(4, static_cast<std::int64_t>(idempotency.status))
      .Bind(5, std::string_view(idempotency.response_body))
      .Bind(6, std::string_view(idempotency.location))
      .Bind(7, idempotency.created_at_ms);
  if (auto run = remember->Run("record idempotency key"); !run.ok()) {
    if (IsUniqueViolation(remember->last_rc())) {
      return Error{ErrorCode::kConflict, "idempotency key " + Quoted(idempotency.key) + " was already used", {}};
    }
    return run;
  }
  return Status::Ok();
}

// Runs a version-checked UPDATE (already bound); when it changed nothing, tells a missing
// row from a stale version with `probe_sql`.
Status CheckVersionedUpdate(Connection& conn, Statement& update, const char* probe_sql, std::string_view kind,
                            std::string_view id, std::int64_t expected_version, std::string_view what) {
  if (auto run = update.Run(what); !run.ok()) return run;
  if (conn.changes() == 1) return Status::Ok();
  auto probe = conn.Prepare(probe_sql, what);
  if (!probe.ok()) return probe.error();
  probe->Bind(1, id);
  auto row = probe->Step(what);
  if (!row.ok()) return row.error();
  const std::string name = std::string(kind) + " " + Quoted(id);
  if (!*row) return Error::NotFound(name + " not found");
  return Error{
      ErrorCode::kPreconditionFailed,
      name + " has version " + std::to_string(probe->ColumnInt64(0)) + ", not " + std::to_string(expected_version),
      {}};
}

struct EffectRunner {
  Connection& conn;
  WriteResult& result;

  Status operator()(const InsertStoreEffect& effect) {
    const core::Store& store = effect.store;
    auto insert = conn.Prepare(kInsertStore, "insert store");
    if (!insert.ok()) return insert.error();
    BindStore(*insert, store);
    if (auto run = insert->Run("insert store"); !run.ok()) {
      if (IsUniqueViolation(insert->last_rc())) {
        return Error{ErrorCode::kAlreadyExists, "store id " + Quoted(store.id) + " is already taken", "id"};
      }
      return run;
    }
    result.stores.push_back(store);
    return Status::Ok();
  }

  Status operator()(const UpdateStoreEffect& effect) {
    const core::Store& updated = effect.updated;
    auto update = conn.Prepare(kUpdateStoreIfVersion, "update store");
    if (!update.ok()) return update.error();
    BindStore(*update, updated);
    update->Bind(13, effect.expected_version);
    SP_RETURN_IF_ERROR(CheckVersionedUpdate(conn, *update, kSelectStoreVersion, "store", updated.id,
                                            effect.expected_version, "update store"));
    result.stores.push_back(updated);
    return Status::Ok();
  }

  Status operator()(const InsertTokenEffect& effect) {
    const Principal& principal = effect.principal;
    auto upsert = conn.Prepare(kUpsertPrincipal, "record principal");
    if (!upsert.ok()) return upsert.error();
    upsert->Bind(1, std::string_view(principal.id))
        .Bind(2, std::string_view(principal.name))
        .Bind(3, std::string_view(principal.kind))
        .Bind(4, std::string_view(EncodeStrings(principal.roles)))
        .Bind(5, principal.created_at_ms);
    SP_RETURN_IF_ERROR(upsert->Run("record principal"));

    TokenRecord token = effect.token;
    token.principal_id = principal.id;
    auto insert = conn.Prepare(kInsertToken, "insert token");
    if (!insert.ok()) return insert.error();
    BindToken(*insert, token);
    if (auto run = insert->Run("insert token"); !run.ok()) {
      if (IsUniqueViolation(insert->last_rc())) {
        return Error{ErrorCode::kAlreadyExists, "this token is already registered", {}};
      }
      return run;
    }
    return Status::Ok();
  }

  Status operator()(const RevokeTokenEffect& effect) {
    auto revoke = conn.Prepare(kRevokeToken, "revoke token");
    if (!revoke.ok()) return revoke.error();
    revoke->Bind(1, std::string_view(effect.token_id)).Bind(2, effect.revoked_at_ms);
    SP_RETURN_IF_ERROR(revoke->Run("revoke token"));
    if (conn.changes() == 1) return Status::Ok();
    auto probe = conn.Prepare(kSelectTokenRevokedAt, "revoke token");
    if (!probe.ok()) return probe.error();
    probe->Bind(1, std::string_view(effect.token_id));
    auto row = probe->Step("revoke token");
    if (!row.ok()) return row.error();
    if (!*row) return Error::NotFound("token " + Quoted(effect.token_id) + " not found");
    return Error{ErrorCode::kConflict, "token " + Quoted(effect.token_id) + " is already revoked", {}};
  }

  Status operator()(const InsertChangeEffect& effect) {
    auto insert = conn.Prepare(kInsertChange, "insert change request");
    if (!insert.ok()) return insert.error();
    BindChange(*insert, effect.change);
    if (auto run = insert->Run("insert change request"); !run.ok()) {
      if (IsUniqueViolation(insert->last_rc())) {
        return Error{ErrorCode::kAlreadyExists, "change request id " + Quoted(effect.change.id) + " is already taken",
                     "id"};
      }
      return run;
    }
    result.changes.push_back(effect.change);
    return Status::Ok();
  }

  Status operator()(const UpdateChangeEffect& effect) {
    const ChangeRequest& updated = effect.updated;
    auto update = conn.Prepare(kUpdateChangeIfVersion, "update change request");
    if (!update.ok()) return update.error();
    BindChange(*update, updated);
    update->Bind(15, effect.expected_version);
    SP_RETURN_IF_ERROR(CheckVersionedUpdate(conn, *update, kSelectChangeVersion, "change request", updated.id,
                                            effect.expected_version, "update change request"));
    result.changes.push_back(updated);
    return Status::Ok();
  }

  // Agents and operations (sqlite_agents.cc).
  Status operator()(const InsertEnrollmentTokenEffect& effect) {
    return sqlite_detail::InsertEnrollmentToken(conn, effect);
  }
  Status operator()(const EnrollAgentEffect& effect) { return sqlite_detail::EnrollAgent(conn, effect); }
  Status operator()(const RotateAgentCredentialEffect& effect) {
    return sqlite_detail::RotateAgentCredential(conn, effect);
  }
  Status operator()(const RevokeAgentEffect& effect) { return sqlite_detail::RevokeAgent(conn, effect); }
  Status operator()(const InsertOperationEffect& effect) {
    auto stored = sqlite_detail::InsertOperation(conn, effect);
    if (!stored.ok()) return stored.error();
    result.operations.push_back(std::move(*stored));
    return Status::Ok();
  }
  Status operator()(const UpdateOperationEffect& effect) {
    auto stored = sqlite_detail::UpdateOperation(conn, effect);
    if (!stored.ok()) return stored.error();
    result.operations.push_back(std::move(*stored));
    return Status::Ok();
  }
  Status operator()(const UpsertLastSuccessEffect& effect) { return sqlite_detail::UpsertLastSuccess(conn, effect); }

  // Pipeline runs, the outbox and callback deliveries (sqlite_runs.cc).
  Status operator()(const InsertRunEffect& effect) {
    auto stored = sqlite_detail::InsertRun(conn, effect);
    if (!stored.ok()) return stored.error();
    result.runs.push_back(std::move(*stored));
    return Status::Ok();
  }
  Status operator()(const UpdateRunEffect& effect) {
    auto stored = sqlite_detail::UpdateRun(conn, effect);
    if (!stored.ok()) return stored.error();
    result.runs.push_back(std::move(*stored));
    return Status::Ok();
  }
  Status operator()(const UpdateOutboxEffect& effect) { return sqlite_detail::UpdateOutbox(conn, effect); }
  Status operator()(const InsertCallbackDeliveryEffect& effect) {
    return sqlite_detail::InsertCallbackDelivery(conn, effect);
  }

  // Fleet rollouts, their targets and command inbox (sqlite_rollouts.cc).
  Status operator()(const InsertRolloutEffect& effect) {
    auto stored = sqlite_detail::InsertRollout(conn, effect);
    if (!stored.ok()) return stored.error();
    result.rollouts.push_back(std::move(*stored));
    return Status::Ok();
  }
  Status operator()(const UpdateRolloutEffect& effect) {
    auto stored = sqlite_detail::UpdateRollout(conn, effect);
    if (!stored.ok()) return stored.error();
    result.rollouts.push_back(std::move(*stored));
    return Status::Ok();
  }
  Status operator()(const InsertRolloutCommandEffect& effect) {
    return sqlite_detail::InsertRolloutCommand(conn, effect);
  }
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

SqliteRepository::SqliteRepository(std::shared_ptr<AuditChain> chain, std::unique_ptr<WriteQueue> writer,
                                   std::unique_ptr<ReadPool> readers)
    : chain_(std::move(chain)), writer_(std::move(writer)), readers_(std::move(readers)) {}

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
    // Without a selector or a visibility predicate every row matches, so one more than a
    // page is all we need; with them, rows are scanned in chunks and filtered here.
    const bool filters_in_cpp = !query.selector.empty() || static_cast<bool>(query.visible);
    const int chunk = filters_in_cpp ? std::max(query.limit + 1, kSelectorChunkRows) : query.limit + 1;
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
        if (query.visible && !query.visible(**decoded)) continue;
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

Result<WriteResult> SqliteRepository::Apply(const WriteBatch& batch) {
  return Guarded([&]() -> Result<WriteResult> {
    SP_RETURN_IF_ERROR(support::CheckBatch(batch));
    WriteResult result;
    // Effects, then the idempotency record, then the audit records (last, so that nothing
    // after the chain head moved can fail); any error rolls the whole mutation back.
    std::function<void()> on_committed;
    if (const auto& listener = commit_listener()) on_committed = [&] { listener(batch, result); };
    Status st = writer_
                    ->Submit(
                        [&](Connection& conn) -> Status {
                          result = WriteResult{};
                          EffectRunner runner{conn, result};
                          for (const Effect& effect : batch.effects) SP_RETURN_IF_ERROR(std::visit(runner, effect));
                          if (batch.idempotency) SP_RETURN_IF_ERROR(InsertIdempotency(conn, *batch.idempotency));
                          auto seqs = chain_->Append(conn, batch.audit);
                          if (!seqs.ok()) return seqs.error();
                          result.audit_seqs = std::move(*seqs);
                          return Status::Ok();
                        },
                        std::move(on_committed))
                    .get();
    if (!st.ok()) return st.error();
    return result;
  });
}

Status SqliteRepository::AppendAudit(const core::AuditEntry& entry, bool wait) {
  return Guarded([&]() -> Status {
    auto done = writer_->Submit([chain = chain_, entries = std::vector<core::AuditEntry>{entry}](Connection& conn) {
      auto seqs = chain->Append(conn, entries);
      return seqs.ok() ? Status::Ok() : Status(seqs.error());
    });
    if (wait) return done.get();
    // Not waiting: report only what is known at once (the queue is shutting down).
    if (done.wait_for(std::chrono::seconds(0)) == std::future_status::ready) return done.get();
    return Status::Ok();
  });
}

Result<AuditPage> SqliteRepository::ListAudit(const AuditQuery& query) {
  return Guarded([&]() -> Result<AuditPage> {
    SP_RETURN_IF_ERROR(CheckLimit(query.limit));
    std::string sql = kListAuditBase;
    if (query.principal) sql += kListAuditAndPrincipal;
    if (query.action) sql += kListAuditAndAction;
    if (query.target) sql += kListAuditAndTarget;
    sql += kListAuditOrderBySeqLimit;

    auto conn = readers_->Acquire();
    auto select = conn->Prepare(sql.c_str(), "list audit records");
    if (!select.ok()) return select.error();
    select->Bind(1, query.after_seq);
    if (query.principal) select->Bind(2, std::string_view(*query.principal));
    if (query.action) select->Bind(3, std::string_view(*query.action));
    if (query.target) select->Bind(4, std::string_view(*query.target));
    select->Bind(5, static_cast<std::int64_t>(query.limit) + 1);  // one more tells whether a next page exists
    AuditPage page;
    for (;;) {
      auto row = select->Step("list audit records");
      if (!row.ok()) return row.error();
      if (!*row) break;
      if (page.items.size() == static_cast<std::size_t>(query.limit)) {
        page.next_after_seq = page.items.back().seq;
        break;
      }
      auto record = DecodeAuditRecord(*select);
      if (!record.ok()) return record.error();
      page.items.push_back(std::move(*record));
    }
    return page;
  });
}

Result<std::vector<core::AuditCheckpoint>> SqliteRepository::ListCheckpoints(std::int64_t after_seq, int limit) {
  return Guarded([&]() -> Result<std::vector<core::AuditCheckpoint>> {
    SP_RETURN_IF_ERROR(CheckLimit(limit));
    auto conn = readers_->Acquire();
    auto select = conn->Prepare(kListCheckpoints, "list audit checkpoints");
    if (!select.ok()) return select.error();
    select->Bind(1, after_seq).Bind(2, static_cast<std::int64_t>(limit));
    std::vector<core::AuditCheckpoint> checkpoints;
    for (;;) {
      auto row = select->Step("list audit checkpoints");
      if (!row.ok()) return row.error();
      if (!*row) break;
      core::AuditCheckpoint checkpoint;
      checkpoint.seq = select->ColumnInt64(0);
      checkpoint.hash = select->ColumnText(1);
      checkpoint.time_ms = select->ColumnInt64(2);
      checkpoint.key_id = select->ColumnText(3);
      checkpoint.signature = select->ColumnText(4);
      checkpoints.push_back(std::move(checkpoint));
    }
    return checkpoints;
  });
}

Result<std::optional<TokenRecord>> SqliteRepository::FindToken(const char* sql, std::string_view key,
                                                               std::string_view what) {
  return Guarded([&]() -> Result<std::optional<TokenRecord>> {
    auto conn = readers_->Acquire();
    auto select = conn->Prepare(sql, what);
    if (!select.ok()) return select.error();
    select->Bind(1, key);
    auto row = select->Step(what);
    if (!row.ok()) return row.error();
    if (!*row) return std::optional<TokenRecord>();
    return std::optional<TokenRecord>(DecodeToken(*select));
  });
}

Result<std::optional<TokenRecord>> SqliteRepository::FindTokenByHash(std::string_view token_hash) {
  return FindToken(kSelectTokenByHash, token_hash, "look up token");
}

Result<std::optional<TokenRecord>> SqliteRepository::GetToken(std::string_view token_id) {
  return FindToken(kSelectTokenById, token_id, "read token");
}

Result<std::vector<TokenRecord>> SqliteRepository::ListTokens(const std::optional<std::string>& principal_id) {
  return Guarded([&]() -> Result<std::vector<TokenRecord>> {
    auto conn = readers_->Acquire();
    auto select = conn->Prepare(principal_id ? kSelectTokensOfPrincipal : kSelectAllTokens, "list tokens");
    if (!select.ok()) return select.error();
    if (principal_id) select->Bind(1, std::string_view(*principal_id));
    std::vector<TokenRecord> tokens;
    for (;;) {
      auto row = select->Step("list tokens");
      if (!row.ok()) return row.error();
      if (!*row) break;
      tokens.push_back(DecodeToken(*select));
    }
    return tokens;
  });
}

Result<ChangeRequest> SqliteRepository::GetChange(std::string_view id) {
  return Guarded([&]() -> Result<ChangeRequest> {
    auto conn = readers_->Acquire();
    auto select = conn->Prepare(kSelectChangeById, "read change request");
    if (!select.ok()) return select.error();
    select->Bind(1, id);
    auto row = select->Step("read change request");
    if (!row.ok()) return row.error();
    if (!*row) return Error::NotFound("change request " + Quoted(id) + " not found");
    return DecodeChange(*select);
  });
}

Result<std::vector<ChangeRequest>> SqliteRepository::ListChanges(const std::optional<std::string>& status, int limit) {
  return Guarded([&]() -> Result<std::vector<ChangeRequest>> {
    SP_RETURN_IF_ERROR(CheckLimit(limit));
    auto conn = readers_->Acquire();
    auto select = conn->Prepare(status ? kListChangesByStatus : kListChanges, "list change requests");
    if (!select.ok()) return select.error();
    select->Bind(1, static_cast<std::int64_t>(limit));
    if (status) select->Bind(2, std::string_view(*status));
    std::vector<ChangeRequest> changes;
    for (;;) {
      auto row = select->Step("list change requests");
      if (!row.ok()) return row.error();
      if (!*row) break;
      auto change = DecodeChange(*select);
      if (!change.ok()) return change.error();
      changes.push_back(std::move(*change));
    }
    return changes;
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

    AuditChainOptions chain_options{options.signing_key_pem, options.checkpoint_every_records,
                                    options.checkpoint_every_ms, NowMs};
    auto chain = AuditChain::Load(*writer, std::move(chain_options));
    if (!chain.ok()) {
      if (chain.error().code == ErrorCode::kInvalidArgument) return chain.error();
      return OpenFailure(chain.error());
    }

    WriteQueueOptions queue_options{options.group_commit, options.max_batch, std::chrono::milliseconds(0)};
    if ((*chain)->signs()) {
      // Wake while idle often enough that a time-based checkpoint is at most ~1 s late.
      queue_options.idle_tick = std::chrono::milliseconds(std::clamp(options.checkpoint_every_ms / 4, 10, 1000));
    }
    auto queue = std::make_unique<WriteQueue>(std::move(*writer), queue_options, *chain);
    auto pool = std::make_unique<ReadPool>(std::move(readers));
    return std::unique_ptr<Repository>(
        std::make_unique<SqliteRepository>(std::move(*chain), std::move(queue), std::move(pool)));
  });
}

}  // namespace storeplane::db
