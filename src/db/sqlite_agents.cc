// The agent and operation part of SqliteRepository: enrollment tokens, agents, operations
// and last successes (schema v3), their effects (run by Apply's effect visitor in
// sqlite_repository.cc), their reads, and WriteTelemetry, which goes through the same
// write queue as Apply (group-committed) but writes no audit record.
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "core/agent_health.h"
#include "core/operation.h"
#include "db/sqlite_repository_impl.h"

namespace storeplane::db {

namespace support {

bool IsSuccessKind(std::string_view kind) { return kind == "operation" || kind == "check" || kind == "pipeline"; }

Status CheckOperationRecord(const OperationRecord& op) {
  if (op.id.empty() || op.store_id.empty() || op.name.empty()) {
    return Error::Internal("an operation needs an id, a store and a name");
  }
  if (!core::ParseOperationState(op.state)) {
    return Error::Internal("operation " + Quoted(op.id) + " has an unknown state " + Quoted(op.state));
  }
  return Status::Ok();
}

Status CheckSuccess(const LastSuccess& success) {
  if (success.store_id.empty() || success.name.empty())
    return Error::Internal("a last success needs a store and a name");
  if (!IsSuccessKind(success.kind)) return Error::Internal("unknown kind of last success " + Quoted(success.kind));
  return Status::Ok();
}

Status CheckTelemetry(const Repository::TelemetryBatch& batch) {
  for (const auto& agent : batch.agents) {
    if (!core::ParseAvailability(agent.availability)) {
      return Error::Internal("unknown agent availability " + Quoted(agent.availability));
    }
    if (!core::ParseHealth(agent.health)) return Error::Internal("unknown agent health " + Quoted(agent.health));
  }
  for (const auto& success : batch.successes) SP_RETURN_IF_ERROR(CheckSuccess(success));
  return Status::Ok();
}

// Empty checks are stored as the empty JSON array, the shape readers expect.
std::string_view ChecksOrEmpty(const std::string& checks_json) {
  return checks_json.empty() ? std::string_view("[]") : std::string_view(checks_json);
}

}  // namespace support

using support::CheckOperationRecord;
using support::ChecksOrEmpty;
using support::CheckSuccess;
using support::CheckTelemetry;

using sqlite_detail::CheckLimit;
using sqlite_detail::DecodeStrings;
using sqlite_detail::EncodeStrings;
using sqlite_detail::Guarded;
using sqlite_detail::Quoted;
using sqlite_detail::Unreadable;

namespace {

// ---- SQL ----

#define STOREPLANE_ENROLLMENT_COLUMNS "id, token_hash, store_id, created_by, created_at_ms, expires_at_ms, used_at_ms"
constexpr const char* kInsertEnrollmentToken =
    "INSERT INTO enrollment_tokens (" STOREPLANE_ENROLLMENT_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
constexpr const char* kSelectEnrollmentTokenByHash =
    "SELECT " STOREPLANE_ENROLLMENT_COLUMNS " FROM enrollment_tokens WHERE token_hash = ?1";
#undef STOREPLANE_ENROLLMENT_COLUMNS
constexpr const char* kUseEnrollmentToken =
    "UPDATE enrollment_tokens SET used_at_ms = ?2 WHERE id = ?1 AND store_id = ?3 AND used_at_ms IS NULL";
constexpr const char* kProbeEnrollmentToken = "SELECT store_id, used_at_ms FROM enrollment_tokens WHERE id = ?1";

#define STOREPLANE_AGENT_COLUMNS                                                                               \
  "store_id, id, credential_hash, enrolled_at_ms, rotated_at_ms, revoked_at_ms, agent_version, last_seen_ms, " \
  "availability, health, release, reported_isolation, allowed_operations_json, checks_json"
// Enrolling inserts the store's agent or replaces every column of it: a new id and
// credential, and the telemetry of a never seen agent.
constexpr const char* kEnrollAgent =
    "INSERT INTO agents (" STOREPLANE_AGENT_COLUMNS
    ") VALUES (?1, ?2, ?3, ?4, NULL, NULL, ?5, NULL, 'never_seen', 'unknown', NULL, NULL, '[]', '[]') "
    "ON CONFLICT (store_id) DO UPDATE SET id = excluded.id, credential_hash = excluded.credential_hash, "
    "enrolled_at_ms = excluded.enrolled_at_ms, rotated_at_ms = NULL, revoked_at_ms = NULL, "
    "agent_version = excluded.agent_version, last_seen_ms = NULL, availability = 'never_seen', health = 'unknown', "
    "release = NULL, reported_isolation = NULL, allowed_operations_json = '[]', checks_json = '[]'";
constexpr const char* kSelectAgent = "SELECT " STOREPLANE_AGENT_COLUMNS " FROM agents WHERE store_id = ?1";
constexpr const char* kListAgents = "SELECT " STOREPLANE_AGENT_COLUMNS " FROM agents ORDER BY store_id";
#undef STOREPLANE_AGENT_COLUMNS
constexpr const char* kProbeAgent = "SELECT id, revoked_at_ms FROM agents WHERE store_id = ?1";
constexpr const char* kRotateAgentCredential =
    "UPDATE agents SET credential_hash = ?3, rotated_at_ms = ?4 "
    "WHERE store_id = ?1 AND id = ?2 AND revoked_at_ms IS NULL";
constexpr const char* kRevokeAgent =
    "UPDATE agents SET revoked_at_ms = ?2 WHERE store_id = ?1 AND revoked_at_ms IS NULL";
constexpr const char* kUpdateAgentTelemetry =
    "UPDATE agents SET agent_version = ?3, last_seen_ms = CASE WHEN last_seen_ms IS NULL AND ?4 IS NULL THEN NULL "
    "ELSE MAX(COALESCE(last_seen_ms, 0), COALESCE(?4, 0)) END, availability = ?5, health = ?6, release = ?7, "
    "reported_isolation = ?8, allowed_operations_json = ?9, checks_json = ?10 WHERE store_id = ?1 AND id = ?2";

#define STOREPLANE_OPERATION_COLUMNS                                                                     \
  "id, store_id, name, params_json, state, code, result_json, requested_by, request_id, created_at_ms, " \
  "expires_at_ms, timeout_s, delivered_at_ms, delivered_session, delivery_count, finished_at_ms, version"
constexpr const char* kInsertOperation =
    "INSERT INTO operations (" STOREPLANE_OPERATION_COLUMNS
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)";
// The id and store never change; every other column follows the update.
constexpr const char* kUpdateOperationIfVersion =
    "UPDATE operations SET name = ?3, params_json = ?4, state = ?5, code = ?6, result_json = ?7, requested_by = ?8, "
    "request_id = ?9, created_at_ms = ?10, expires_at_ms = ?11, timeout_s = ?12, delivered_at_ms = ?13, "
    "delivered_session = ?14, delivery_count = ?15, finished_at_ms = ?16, version = ?17 "
    "WHERE id = ?1 AND store_id = ?2 AND version = ?18";
constexpr const char* kProbeOperation = "SELECT store_id, version FROM operations WHERE id = ?1";
constexpr const char* kSelectOperationById = "SELECT " STOREPLANE_OPERATION_COLUMNS " FROM operations WHERE id = ?1";
constexpr const char* kSelectOperationSeq = "SELECT seq FROM operations WHERE id = ?1 AND store_id = ?2";
constexpr const char* kListOperations = "SELECT " STOREPLANE_OPERATION_COLUMNS
                                        " FROM operations WHERE store_id = ?1 AND seq < ?2 ORDER BY seq DESC LIMIT ?3";
constexpr const char* kListOpenOperations =
    "SELECT " STOREPLANE_OPERATION_COLUMNS " FROM operations WHERE state IN ('queued', 'delivered') ORDER BY seq";
#undef STOREPLANE_OPERATION_COLUMNS
constexpr const char* kDeliverOperation =
    "UPDATE operations SET state = 'delivered', delivered_at_ms = ?2, delivered_session = ?3, "
    "delivery_count = delivery_count + 1, version = version + 1 "
    "WHERE id = ?1 AND state IN ('queued', 'delivered')";

// A last success never moves back in time: an older one does not replace a newer one.
#define STOREPLANE_LAST_SUCCESS_ON_CONFLICT                                                       \
  " ON CONFLICT (store_id, kind, name) DO UPDATE SET at_ms = excluded.at_ms, ref = excluded.ref " \
  "WHERE excluded.at_ms >= last_successes.at_ms"
constexpr const char* kUpsertLastSuccess =
    "INSERT INTO last_successes (store_id, kind, name, at_ms, ref) VALUES (?1, ?2, ?3, ?4, "
    "?5)" STOREPLANE_LAST_SUCCESS_ON_CONFLICT;
// Telemetry skips successes of stores that do not exist instead of failing the batch.
constexpr const char* kUpsertLastSuccessOfKnownStore =
    "INSERT INTO last_successes (store_id, kind, name, at_ms, ref) "
    "SELECT ?1, ?2, ?3, ?4, ?5 WHERE EXISTS (SELECT 1 FROM stores WHERE id = ?1)" STOREPLANE_LAST_SUCCESS_ON_CONFLICT;
#undef STOREPLANE_LAST_SUCCESS_ON_CONFLICT
constexpr const char* kListLastSuccesses =
    "SELECT store_id, kind, name, at_ms, ref FROM last_successes WHERE store_id = ?1 ORDER BY kind, name";

// ---- helpers ----

bool IsForeignKeyViolation(int rc) { return rc == SQLITE_CONSTRAINT_FOREIGNKEY; }

Error StoreNotFound(std::string_view store_id) { return Error::NotFound("store " + Quoted(store_id) + " not found"); }

EnrollmentToken DecodeEnrollmentToken(const Statement& stmt) {
  EnrollmentToken token;
  token.id = stmt.ColumnText(0);
  token.token_hash = stmt.ColumnText(1);
  token.store_id = stmt.ColumnText(2);
  token.created_by = stmt.ColumnText(3);
  token.created_at_ms = stmt.ColumnInt64(4);
  token.expires_at_ms = stmt.ColumnInt64(5);
  token.used_at_ms = stmt.ColumnOptionalInt64(6);
  return token;
}

Result<AgentRecord> DecodeAgent(const Statement& stmt) {
  AgentRecord agent;
  agent.store_id = stmt.ColumnText(0);
  agent.id = stmt.ColumnText(1);
  agent.credential_hash = stmt.ColumnText(2);
  agent.enrolled_at_ms = stmt.ColumnInt64(3);
  agent.rotated_at_ms = stmt.ColumnOptionalInt64(4);
  agent.revoked_at_ms = stmt.ColumnOptionalInt64(5);
  agent.agent_version = stmt.ColumnText(6);
  agent.last_seen_ms = stmt.ColumnOptionalInt64(7);
  agent.availability = stmt.ColumnText(8);
  agent.health = stmt.ColumnText(9);
  agent.release = stmt.ColumnOptionalText(10);
  agent.reported_isolation = stmt.ColumnOptionalText(11);
  auto allowed = DecodeStrings(stmt.ColumnText(12));
  if (!allowed) return Unreadable("agent of store", agent.store_id);
  agent.allowed_operations = std::move(*allowed);
  agent.checks_json = stmt.ColumnText(13);
  return agent;
}

// Binds an operation's columns as ?1..?17 in STOREPLANE_OPERATION_COLUMNS order.
void BindOperation(Statement& stmt, const OperationRecord& op) {
  stmt.Bind(1, std::string_view(op.id))
      .Bind(2, std::string_view(op.store_id))
      .Bind(3, std::string_view(op.name))
      .Bind(4, std::string_view(op.params_json))
      .Bind(5, std::string_view(op.state))
      .Bind(6, std::string_view(op.code))
      .Bind(7, std::string_view(op.result_json))
      .Bind(8, std::string_view(op.requested_by))
      .Bind(9, std::string_view(op.request_id))
      .Bind(10, op.created_at_ms)
      .Bind(11, op.expires_at_ms)
      .Bind(12, static_cast<std::int64_t>(op.timeout_s))
      .Bind(13, op.delivered_at_ms)
      .Bind(14, std::string_view(op.delivered_session))
      .Bind(15, static_cast<std::int64_t>(op.delivery_count))
      .Bind(16, op.finished_at_ms)
      .Bind(17, op.version);
}

OperationRecord DecodeOperation(const Statement& stmt) {
  OperationRecord op;
  op.id = stmt.ColumnText(0);
  op.store_id = stmt.ColumnText(1);
  op.name = stmt.ColumnText(2);
  op.params_json = stmt.ColumnText(3);
  op.state = stmt.ColumnText(4);
  op.code = stmt.ColumnText(5);
  op.result_json = stmt.ColumnText(6);
  op.requested_by = stmt.ColumnText(7);
  op.request_id = stmt.ColumnText(8);
  op.created_at_ms = stmt.ColumnInt64(9);
  op.expires_at_ms = stmt.ColumnInt64(10);
  op.timeout_s = static_cast<int>(stmt.ColumnInt64(11));
  op.delivered_at_ms = stmt.ColumnOptionalInt64(12);
  op.delivered_session = stmt.ColumnText(13);
  op.delivery_count = static_cast<int>(stmt.ColumnInt64(14));
  op.finished_at_ms = stmt.ColumnOptionalInt64(15);
  op.version = stmt.ColumnInt64(16);
  return op;
}

// Every row of an already bound statement.
Result<std::vector<OperationRecord>> CollectOperations(Statement& select, std::string_view what) {
  std::vector<OperationRecord> ops;
  for (;;) {
    auto row = select.Step(what);
    if (!row.ok()) return row.error();
    if (!*row) break;
    ops.push_back(DecodeOperation(select));
  }
  return ops;
}

// The operation with this id as stored (on any connection).
Result<OperationRecord> ReadOperation(Connection& conn, std::string_view id, std::string_view what) {
  auto select = conn.Prepare(kSelectOperationById, what);
  if (!select.ok()) return select.error();
  select->Bind(1, id);
  auto row = select->Step(what);
  if (!row.ok()) return row.error();
  if (!*row) return Error::NotFound("operation " + Quoted(id) + " not found");
  return DecodeOperation(*select);
}

Status UpsertSuccess(Connection& conn, const char* sql, const LastSuccess& success, std::string_view what) {
  auto upsert = conn.Prepare(sql, what);
  if (!upsert.ok()) return upsert.error();
  upsert->Bind(1, std::string_view(success.store_id))
      .Bind(2, std::string_view(success.kind))
      .Bind(3, std::string_view(success.name))
      .Bind(4, success.at_ms)
      .Bind(5, std::string_view(success.ref));
  if (auto run = upsert->Run(what); !run.ok()) {
    if (IsForeignKeyViolation(upsert->last_rc())) return StoreNotFound(success.store_id);
    return run;
  }
  return Status::Ok();
}

// The telemetry batch, on the writer connection inside its savepoint.
Status WriteTelemetryRows(Connection& conn, const Repository::TelemetryBatch& batch) {
  if (!batch.agents.empty()) {
    auto update = conn.Prepare(kUpdateAgentTelemetry, "record agent telemetry");
    if (!update.ok()) return update.error();
    for (const auto& agent : batch.agents) {
      update->Bind(1, std::string_view(agent.store_id))
          .Bind(2, std::string_view(agent.agent_id))
          .Bind(3, std::string_view(agent.agent_version))
          .Bind(4, agent.last_seen_ms)
          .Bind(5, std::string_view(agent.availability))
          .Bind(6, std::string_view(agent.health))
          .Bind(7, agent.release)
          .Bind(8, agent.reported_isolation)
          .Bind(9, std::string_view(EncodeStrings(agent.allowed_operations)))
          .Bind(10, ChecksOrEmpty(agent.checks_json));
      SP_RETURN_IF_ERROR(update->Run("record agent telemetry"));  // no matching row: skipped
      update->Reset();
    }
  }
  for (const auto& success : batch.successes) {
    SP_RETURN_IF_ERROR(UpsertSuccess(conn, kUpsertLastSuccessOfKnownStore, success, "record last success"));
  }
  if (!batch.deliveries.empty()) {
    auto deliver = conn.Prepare(kDeliverOperation, "record delivery");
    if (!deliver.ok()) return deliver.error();
    for (const auto& delivery : batch.deliveries) {
      deliver->Bind(1, std::string_view(delivery.operation_id))
          .Bind(2, delivery.delivered_at_ms)
          .Bind(3, std::string_view(delivery.session));
      SP_RETURN_IF_ERROR(deliver->Run("record delivery"));  // unknown or final: left alone
      deliver->Reset();
    }
  }
  return Status::Ok();
}

}  // namespace

// ---- effects ----

namespace sqlite_detail {

Status CheckAgentEffect(const Effect& effect) {
  if (const auto* token = std::get_if<InsertEnrollmentTokenEffect>(&effect)) {
    if (token->token.id.empty() || token->token.token_hash.empty() || token->token.store_id.empty()) {
      return Error::Internal("an enrollment token needs an id, a hash and a store");
    }
  } else if (const auto* enroll = std::get_if<EnrollAgentEffect>(&effect)) {
    if (enroll->enrollment_token_id.empty() || enroll->agent.id.empty() || enroll->agent.store_id.empty() ||
        enroll->agent.credential_hash.empty()) {
      return Error::Internal("an enrollment needs a token, an agent id, a store and a credential");
    }
  } else if (const auto* rotate = std::get_if<RotateAgentCredentialEffect>(&effect)) {
    if (rotate->store_id.empty() || rotate->agent_id.empty() || rotate->credential_hash.empty()) {
      return Error::Internal("a credential rotation needs a store, an agent id and a credential");
    }
  } else if (const auto* insert = std::get_if<InsertOperationEffect>(&effect)) {
    return CheckOperationRecord(insert->operation);
  } else if (const auto* update = std::get_if<UpdateOperationEffect>(&effect)) {
    if (update->updated.version != update->expected_version + 1) {
      return Error::Internal("update of operation " + Quoted(update->updated.id) + " must advance its version by one");
    }
    return CheckOperationRecord(update->updated);
  } else if (const auto* success = std::get_if<UpsertLastSuccessEffect>(&effect)) {
    return CheckSuccess(success->success);
  }
  return Status::Ok();
}

Status InsertEnrollmentToken(Connection& conn, const InsertEnrollmentTokenEffect& effect) {
  const EnrollmentToken& token = effect.token;
  auto insert = conn.Prepare(kInsertEnrollmentToken, "insert enrollment token");
  if (!insert.ok()) return insert.error();
  insert->Bind(1, std::string_view(token.id))
      .Bind(2, std::string_view(token.token_hash))
      .Bind(3, std::string_view(token.store_id))
      .Bind(4, std::string_view(token.created_by))
      .Bind(5, token.created_at_ms)
      .Bind(6, token.expires_at_ms)
      .Bind(7, token.used_at_ms);
  if (auto run = insert->Run("insert enrollment token"); !run.ok()) {
    if (IsUniqueViolation(insert->last_rc())) {
      return Error{ErrorCode::kAlreadyExists, "enrollment token " + Quoted(token.id) + " is already registered", {}};
    }
    if (IsForeignKeyViolation(insert->last_rc())) return StoreNotFound(token.store_id);
    return run;
  }
  return Status::Ok();
}

Status EnrollAgent(Connection& conn, const EnrollAgentEffect& effect) {
  const AgentRecord& agent = effect.agent;
  constexpr std::string_view kWhat = "enroll agent";
  // The token first: one enrollment per token, and only for its own store.
  auto use = conn.Prepare(kUseEnrollmentToken, kWhat);
  if (!use.ok()) return use.error();
  use->Bind(1, std::string_view(effect.enrollment_token_id))
      .Bind(2, effect.used_at_ms)
      .Bind(3, std::string_view(agent.store_id));
  SP_RETURN_IF_ERROR(use->Run(kWhat));
  if (conn.changes() != 1) {
    auto probe = conn.Prepare(kProbeEnrollmentToken, kWhat);
    if (!probe.ok()) return probe.error();
    probe->Bind(1, std::string_view(effect.enrollment_token_id));
    auto row = probe->Step(kWhat);
    if (!row.ok()) return row.error();
    const std::string name = "enrollment token " + Quoted(effect.enrollment_token_id);
    if (!*row) return Error::NotFound(name + " not found");
    if (probe->ColumnText(0) != agent.store_id) {
      return Error::NotFound(name + " not found for store " + Quoted(agent.store_id));
    }
    return Error{ErrorCode::kConflict, name + " was already used", {}};
  }

  auto upsert = conn.Prepare(kEnrollAgent, kWhat);
  if (!upsert.ok()) return upsert.error();
  upsert->Bind(1, std::string_view(agent.store_id))
      .Bind(2, std::string_view(agent.id))
      .Bind(3, std::string_view(agent.credential_hash))
      .Bind(4, agent.enrolled_at_ms)
      .Bind(5, std::string_view(agent.agent_version));
  if (auto run = upsert->Run(kWhat); !run.ok()) {
    if (IsUniqueViolation(upsert->last_rc())) {
      return Error{ErrorCode::kAlreadyExists, "agent id " + Quoted(agent.id) + " is already taken", "id"};
    }
    if (IsForeignKeyViolation(upsert->last_rc())) return StoreNotFound(agent.store_id);
    return run;
  }
  return Status::Ok();
}

Status RotateAgentCredential(Connection& conn, const RotateAgentCredentialEffect& effect) {
  constexpr std::string_view kWhat = "rotate agent credential";
  auto rotate = conn.Prepare(kRotateAgentCredential, kWhat);
  if (!rotate.ok()) return rotate.error();
  rotate->Bind(1, std::string_view(effect.store_id))
      .Bind(2, std::string_view(effect.agent_id))
      .Bind(3, std::string_view(effect.credential_hash))
      .Bind(4, effect.rotated_at_ms);
  SP_RETURN_IF_ERROR(rotate->Run(kWhat));
  if (conn.changes() == 1) return Status::Ok();
  auto probe = conn.Prepare(kProbeAgent, kWhat);
  if (!probe.ok()) return probe.error();
  probe->Bind(1, std::string_view(effect.store_id));
  auto row = probe->Step(kWhat);
  if (!row.ok()) return row.error();
  const std::string name = "the agent of store " + Quoted(effect.store_id);
  if (!*row) return Error::NotFound(name + " not found");
  if (probe->ColumnText(0) != effect.agent_id) {
    return Error{ErrorCode::kPreconditionFailed, name + " is no longer " + Quoted(effect.agent_id), {}};
  }
  return Error{ErrorCode::kConflict, name + " is revoked", {}};
}

Status RevokeAgent(Connection& conn, const RevokeAgentEffect& effect) {
  constexpr std::string_view kWhat = "revoke agent";
  auto revoke = conn.Prepare(kRevokeAgent, kWhat);
  if (!revoke.ok()) return revoke.error();
  revoke->Bind(1, std::string_view(effect.store_id)).Bind(2, effect.revoked_at_ms);
  SP_RETURN_IF_ERROR(revoke->Run(kWhat));
  if (conn.changes() == 1) return Status::Ok();
  auto probe = conn.Prepare(kProbeAgent, kWhat);
  if (!probe.ok()) return probe.error();
  probe->Bind(1, std::string_view(effect.store_id));
  auto row = probe->Step(kWhat);
  if (!row.ok()) return row.error();
  const std::string name = "the agent of store " + Quoted(effect.store_id);
  if (!*row) return Error::NotFound(name + " not found");
  return Error{ErrorCode::kConflict, name + " is already revoked", {}};
}

Result<OperationRecord> InsertOperation(Connection& conn, const InsertOperationEffect& effect) {
  const OperationRecord& op = effect.operation;
  auto insert = conn.Prepare(kInsertOperation, "insert operation");
  if (!insert.ok()) return insert.error();
  BindOperation(*insert, op);
  if (auto run = insert->Run("insert operation"); !run.ok()) {
    if (IsUniqueViolation(insert->last_rc())) {
      return Error{ErrorCode::kAlreadyExists, "operation id " + Quoted(op.id) + " is already taken", "id"};
    }
    if (IsForeignKeyViolation(insert->last_rc())) return StoreNotFound(op.store_id);
    return run.error();
  }
  return ReadOperation(conn, op.id, "insert operation");
}

Result<OperationRecord> UpdateOperation(Connection& conn, const UpdateOperationEffect& effect) {
  const OperationRecord& op = effect.updated;
  constexpr std::string_view kWhat = "update operation";
  auto update = conn.Prepare(kUpdateOperationIfVersion, kWhat);
  if (!update.ok()) return update.error();
  BindOperation(*update, op);
  update->Bind(18, effect.expected_version);
  if (auto run = update->Run(kWhat); !run.ok()) return run.error();
  if (conn.changes() != 1) {
    auto probe = conn.Prepare(kProbeOperation, kWhat);
    if (!probe.ok()) return probe.error();
    probe->Bind(1, std::string_view(op.id));
    auto row = probe->Step(kWhat);
    if (!row.ok()) return row.error();
    const std::string name = "operation " + Quoted(op.id);
    if (!*row || probe->ColumnText(0) != op.store_id) return Error::NotFound(name + " not found");
    return Error{ErrorCode::kPreconditionFailed,
                 name + " has version " + std::to_string(probe->ColumnInt64(1)) + ", not " +
                     std::to_string(effect.expected_version),
                 {}};
  }
  return ReadOperation(conn, op.id, kWhat);
}

Status UpsertLastSuccess(Connection& conn, const UpsertLastSuccessEffect& effect) {
  return UpsertSuccess(conn, kUpsertLastSuccess, effect.success, "record last success");
}

}  // namespace sqlite_detail

// ---- SqliteRepository: reads and telemetry ----

Result<std::optional<EnrollmentToken>> SqliteRepository::FindEnrollmentTokenByHash(std::string_view token_hash) {
  return Guarded([&]() -> Result<std::optional<EnrollmentToken>> {
    constexpr std::string_view kWhat = "look up enrollment token";
    auto conn = readers_->Acquire();
    auto select = conn->Prepare(kSelectEnrollmentTokenByHash, kWhat);
    if (!select.ok()) return select.error();
    select->Bind(1, token_hash);
    auto row = select->Step(kWhat);
    if (!row.ok()) return row.error();
    if (!*row) return std::optional<EnrollmentToken>();
    return std::optional<EnrollmentToken>(DecodeEnrollmentToken(*select));
  });
}

Result<std::optional<AgentRecord>> SqliteRepository::GetAgent(std::string_view store_id) {
  return Guarded([&]() -> Result<std::optional<AgentRecord>> {
    constexpr std::string_view kWhat = "read agent";
    auto conn = readers_->Acquire();
    auto select = conn->Prepare(kSelectAgent, kWhat);
    if (!select.ok()) return select.error();
    select->Bind(1, store_id);
    auto row = select->Step(kWhat);
    if (!row.ok()) return row.error();
    if (!*row) return std::optional<AgentRecord>();
    auto agent = DecodeAgent(*select);
    if (!agent.ok()) return agent.error();
    return std::optional<AgentRecord>(std::move(*agent));
  });
}

Result<std::vector<AgentRecord>> SqliteRepository::ListAgents() {
  return Guarded([&]() -> Result<std::vector<AgentRecord>> {
    constexpr std::string_view kWhat = "list agents";
    auto conn = readers_->Acquire();
    auto select = conn->Prepare(kListAgents, kWhat);
    if (!select.ok()) return select.error();
    std::vector<AgentRecord> agents;
    for (;;) {
      auto row = select->Step(kWhat);
      if (!row.ok()) return row.error();
      if (!*row) break;
      auto agent = DecodeAgent(*select);
      if (!agent.ok()) return agent.error();
      agents.push_back(std::move(*agent));
    }
    return agents;
  });
}

Result<OperationRecord> SqliteRepository::GetOperation(std::string_view id) {
  return Guarded([&]() -> Result<OperationRecord> {
    auto conn = readers_->Acquire();
    return ReadOperation(*conn, id, "read operation");
  });
}

Result<std::vector<OperationRecord>> SqliteRepository::ListOperations(std::string_view store_id,
                                                                      std::string_view before_id, int limit) {
  return Guarded([&]() -> Result<std::vector<OperationRecord>> {
    constexpr std::string_view kWhat = "list operations";
    SP_RETURN_IF_ERROR(CheckLimit(limit));
    auto conn = readers_->Acquire();
    // The cursor is the seq of `before_id` (a row's seq never changes, so no snapshot is
    // needed across the two queries).
    std::int64_t before_seq = std::numeric_limits<std::int64_t>::max();
    if (!before_id.empty()) {
      auto seq = conn->Prepare(kSelectOperationSeq, kWhat);
      if (!seq.ok()) return seq.error();
      seq->Bind(1, before_id).Bind(2, store_id);
      auto row = seq->Step(kWhat);
      if (!row.ok()) return row.error();
      if (!*row) return Error::Invalid("cursor " + Quoted(before_id) + " is not an operation of this store", "cursor");
      before_seq = seq->ColumnInt64(0);
    }
    auto select = conn->Prepare(kListOperations, kWhat);
    if (!select.ok()) return select.error();
    select->Bind(1, store_id).Bind(2, before_seq).Bind(3, static_cast<std::int64_t>(limit));
    return CollectOperations(*select, kWhat);
  });
}

Result<std::vector<OperationRecord>> SqliteRepository::ListOpenOperations() {
  return Guarded([&]() -> Result<std::vector<OperationRecord>> {
    constexpr std::string_view kWhat = "list open operations";
    auto conn = readers_->Acquire();
    auto select = conn->Prepare(kListOpenOperations, kWhat);
    if (!select.ok()) return select.error();
    return CollectOperations(*select, kWhat);
  });
}

Result<std::vector<LastSuccess>> SqliteRepository::ListLastSuccesses(std::string_view store_id) {
  return Guarded([&]() -> Result<std::vector<LastSuccess>> {
    constexpr std::string_view kWhat = "list last successes";
    auto conn = readers_->Acquire();
    auto select = conn->Prepare(kListLastSuccesses, kWhat);
    if (!select.ok()) return select.error();
    select->Bind(1, store_id);
    std::vector<LastSuccess> successes;
    for (;;) {
      auto row = select->Step(kWhat);
      if (!row.ok()) return row.error();
      if (!*row) break;
      LastSuccess success;
      success.store_id = select->ColumnText(0);
      success.kind = select->ColumnText(1);
      success.name = select->ColumnText(2);
      success.at_ms = select->ColumnInt64(3);
      success.ref = select->ColumnText(4);
      successes.push_back(std::move(success));
    }
    return successes;
  });
}

Status SqliteRepository::WriteTelemetry(const TelemetryBatch& batch) {
  return Guarded([&]() -> Status {
    SP_RETURN_IF_ERROR(CheckTelemetry(batch));
    if (batch.agents.empty() && batch.successes.empty() && batch.deliveries.empty()) return Status::Ok();
    // Observations, not changes of authority: no audit record, and the chain is not touched.
    return writer_->Run([&batch](Connection& conn) { return WriteTelemetryRows(conn, batch); });
  });
}

}  // namespace storeplane::db
