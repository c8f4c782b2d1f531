// PostgresRepository: enrollment tokens, agents, operations and last successes (the SQLite
// schema v3, src/db/sqlite_agents.cc), their effects (run by Apply's effect visitor in
// pg_repository.cc, inside the batch's transaction), their reads, WriteTelemetry (its own
// transaction, no audit record) and the open operations' metrics.
//
// Differences from SQLite, for replicas (ADR 0012): heartbeats from several replicas never
// move an agent's last_seen_ms backwards (GREATEST), and inserting an operation NOTIFYs
// storeplane_operations with the store id (a trigger), waking the replica that holds that
// store's agent long-poll.
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/agent_health.h"
#include "core/operation.h"
#include "db/pg_repository_impl.h"
#include "db/storage_support.h"

namespace storeplane::db {

using support::ChecksOrEmpty;
using support::CheckTelemetry;

namespace {

using pg_detail::WithConnection;
using support::Quoted;
using support::Unreadable;

constexpr std::string_view kForeignKeyViolation = "23503";

// ---- SQL ----

#define STOREPLANE_ENROLLMENT_COLUMNS "id, token_hash, store_id, created_by, created_at_ms, expires_at_ms, used_at_ms"
constexpr const char* kInsertEnrollmentToken =
    "INSERT INTO enrollment_tokens (" STOREPLANE_ENROLLMENT_COLUMNS ") VALUES ($1, $2, $3, $4, $5, $6, $7)";
constexpr const char* kSelectEnrollmentTokenByHash =
    "SELECT " STOREPLANE_ENROLLMENT_COLUMNS " FROM enrollment_tokens WHERE token_hash = $1";
#undef STOREPLANE_ENROLLMENT_COLUMNS
constexpr const char* kUseEnrollmentToken =
    "UPDATE enrollment_tokens SET used_at_ms = $2 WHERE id = $1 AND store_id = $3 AND used_at_ms IS NULL";
constexpr const char* kProbeEnrollmentToken = "SELECT store_id, used_at_ms FROM enrollment_tokens WHERE id = $1";

#define STOREPLANE_AGENT_COLUMNS                                                                               \
  "store_id, id, credential_hash, enrolled_at_ms, rotated_at_ms, revoked_at_ms, agent_version, last_seen_ms, " \
  "availability, health, release, reported_isolation, allowed_operations_json, checks_json"
// Enrolling inserts the store's agent or replaces every column of it: a new id and
// credential, and the telemetry of a never seen agent. An id taken by another store's agent
// still fails (agents_id_key).
constexpr const char* kEnrollAgent =
    "INSERT INTO agents (" STOREPLANE_AGENT_COLUMNS
    ") VALUES ($1, $2, $3, $4, NULL, NULL, $5, NULL, 'never_seen', 'unknown', NULL, NULL, '[]', '[]') "
    "ON CONFLICT (store_id) DO UPDATE SET id = excluded.id, credential_hash = excluded.credential_hash, "
    "enrolled_at_ms = excluded.enrolled_at_ms, rotated_at_ms = NULL, revoked_at_ms = NULL, "
    "agent_version = excluded.agent_version, last_seen_ms = NULL, availability = 'never_seen', health = 'unknown', "
    "release = NULL, reported_isolation = NULL, allowed_operations_json = '[]', checks_json = '[]'";
constexpr const char* kSelectAgent = "SELECT " STOREPLANE_AGENT_COLUMNS " FROM agents WHERE store_id = $1";
// Byte order, as SQLite's BINARY collation, whatever the database's collation.
constexpr const char* kListAgents = "SELECT " STOREPLANE_AGENT_COLUMNS " FROM agents ORDER BY store_id COLLATE \"C\"";
#undef STOREPLANE_AGENT_COLUMNS
constexpr const char* kProbeAgent = "SELECT id, revoked_at_ms FROM agents WHERE store_id = $1";
constexpr const char* kRotateAgentCredential =
    "UPDATE agents SET credential_hash = $3, rotated_at_ms = $4 "
    "WHERE store_id = $1 AND id = $2 AND revoked_at_ms IS NULL";
constexpr const char* kRevokeAgent =
    "UPDATE agents SET revoked_at_ms = $2 WHERE store_id = $1 AND revoked_at_ms IS NULL";
// Heartbeats arrive from several replicas, so last_seen_ms never moves backwards:
// GREATEST(COALESCE(old, 0), new), except that it stays NULL while both are absent
// (GREATEST skips NULLs: an absent new value keeps the old one). The rest is written as given.
constexpr const char* kUpdateAgentTelemetry =
    "UPDATE agents SET agent_version = $3, "
    "last_seen_ms = CASE WHEN agents.last_seen_ms IS NULL AND $4::bigint IS NULL THEN NULL "
    "ELSE GREATEST(COALESCE(agents.last_seen_ms, 0), $4::bigint) END, "
    "availability = $5, health = $6, release = $7, reported_isolation = $8, allowed_operations_json = $9, "
    "checks_json = $10 WHERE store_id = $1 AND id = $2";

#define STOREPLANE_OPERATION_COLUMNS                                                                     \
  "id, store_id, name, params_json, state, code, result_json, requested_by, request_id, created_at_ms, " \
  "expires_at_ms, timeout_s, delivered_at_ms, delivered_session, delivery_count, finished_at_ms, version"
// seq comes from its sequence (insertion order). The trigger operations_notify wakes the
// replicas at commit.
constexpr const char* kInsertOperation =
    "INSERT INTO operations (" STOREPLANE_OPERATION_COLUMNS
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) "
    "ON CONFLICT (id) DO NOTHING RETURNING " STOREPLANE_OPERATION_COLUMNS;
// The id and store never change; every other column follows the update.
constexpr const char* kUpdateOperationIfVersion =
    "UPDATE operations SET name = $3, params_json = $4, state = $5, code = $6, result_json = $7, requested_by = $8, "
    "request_id = $9, created_at_ms = $10, expires_at_ms = $11, timeout_s = $12, delivered_at_ms = $13, "
    "delivered_session = $14, delivery_count = $15, finished_at_ms = $16, version = $17 "
    "WHERE id = $1 AND store_id = $2 AND version = $18 RETURNING " STOREPLANE_OPERATION_COLUMNS;
constexpr const char* kProbeOperation = "SELECT store_id, version FROM operations WHERE id = $1";
constexpr const char* kSelectOperationById = "SELECT " STOREPLANE_OPERATION_COLUMNS " FROM operations WHERE id = $1";
constexpr const char* kSelectOperationSeq = "SELECT seq FROM operations WHERE id = $1 AND store_id = $2";
constexpr const char* kListOperations = "SELECT " STOREPLANE_OPERATION_COLUMNS
                                        " FROM operations WHERE store_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3";
constexpr const char* kListOpenOperations =
    "SELECT " STOREPLANE_OPERATION_COLUMNS " FROM operations WHERE state IN ('queued', 'delivered') ORDER BY seq";
#undef STOREPLANE_OPERATION_COLUMNS
constexpr const char* kDeliverOperation =
    "UPDATE operations SET state = 'delivered', delivered_at_ms = $2, delivered_session = $3, "
    "delivery_count = delivery_count + 1, version = version + 1 "
    "WHERE id = $1 AND state IN ('queued', 'delivered')";
constexpr const char* kCountOpenOperations =
    "SELECT state, COUNT(*) FROM operations WHERE state IN ('queued', 'delivered') GROUP BY state ORDER BY state";

// A last success never moves back in time: an older one does not replace a newer one.
#define STOREPLANE_LAST_SUCCESS_ON_CONFLICT                                                       \
  " ON CONFLICT (store_id, kind, name) DO UPDATE SET at_ms = excluded.at_ms, ref = excluded.ref " \
  "WHERE excluded.at_ms >= last_successes.at_ms"
constexpr const char* kUpsertLastSuccess =
    "INSERT INTO last_successes (store_id, kind, name, at_ms, ref) VALUES ($1, $2, $3, $4, "
    "$5)" STOREPLANE_LAST_SUCCESS_ON_CONFLICT;
// Telemetry skips successes of stores that do not exist instead of failing the batch
// (stores are never deleted, so the probe cannot go stale).
constexpr const char* kUpsertLastSuccessOfKnownStore =
    "INSERT INTO last_successes (store_id, kind, name, at_ms, ref) "
    "SELECT $1::text, $2::text, $3::text, $4::bigint, $5::text "
    "WHERE EXISTS (SELECT 1 FROM stores WHERE id = $1::text)" STOREPLANE_LAST_SUCCESS_ON_CONFLICT;
#undef STOREPLANE_LAST_SUCCESS_ON_CONFLICT
constexpr const char* kListLastSuccesses =
    "SELECT store_id, kind, name, at_ms, ref FROM last_successes WHERE store_id = $1 "
    "ORDER BY kind COLLATE \"C\", name COLLATE \"C\"";

// ---- helpers ----

bool IsForeignKeyViolation(const pg::PgConnection& conn) {
  return conn.last_failure().sqlstate == kForeignKeyViolation;
}
bool IsUniqueViolation(const pg::PgConnection& conn) { return conn.last_failure().sqlstate == pg::kUniqueViolation; }

Error StoreNotFound(std::string_view store_id) { return Error::NotFound("store " + Quoted(store_id) + " not found"); }

EnrollmentToken DecodeEnrollmentToken(const pg::Rows& rows, int r) {
  EnrollmentToken token;
  token.id = rows.Text(r, 0);
  token.token_hash = rows.Text(r, 1);
  token.store_id = rows.Text(r, 2);
  token.created_by = rows.Text(r, 3);
  token.created_at_ms = rows.Int64(r, 4);
  token.expires_at_ms = rows.Int64(r, 5);
  token.used_at_ms = rows.OptionalInt64(r, 6);
  return token;
}

Result<AgentRecord> DecodeAgent(const pg::Rows& rows, int r) {
  AgentRecord agent;
  agent.store_id = rows.Text(r, 0);
  agent.id = rows.Text(r, 1);
  agent.credential_hash = rows.Text(r, 2);
  agent.enrolled_at_ms = rows.Int64(r, 3);
  agent.rotated_at_ms = rows.OptionalInt64(r, 4);
  agent.revoked_at_ms = rows.OptionalInt64(r, 5);
  agent.agent_version = rows.Text(r, 6);
  agent.last_seen_ms = rows.OptionalInt64(r, 7);
  agent.availability = rows.Text(r, 8);
  agent.health = rows.Text(r, 9);
  agent.release = rows.OptionalText(r, 10);
  agent.reported_isolation = rows.OptionalText(r, 11);
  auto allowed = support::DecodeStrings(rows.Text(r, 12));
  if (!allowed) return Unreadable("agent of store", agent.store_id);
  agent.allowed_operations = std::move(*allowed);
  agent.checks_json = rows.Text(r, 13);
  return agent;
}

// An operation's columns as $1..$17 in STOREPLANE_OPERATION_COLUMNS order.
pg::Params OperationParams(const OperationRecord& op) {
  pg::Params params;
  params.Add(op.id)
      .Add(op.store_id)
      .Add(op.name)
      .Add(op.params_json)
      .Add(op.state)
      .Add(op.code)
      .Add(op.result_json)
      .Add(op.requested_by)
      .Add(op.request_id)
      .Add(op.created_at_ms)
      .Add(op.expires_at_ms)
      .Add(static_cast<std::int64_t>(op.timeout_s))
      .Add(op.delivered_at_ms)
      .Add(op.delivered_session)
      .Add(static_cast<std::int64_t>(op.delivery_count))
      .Add(op.finished_at_ms)
      .Add(op.version);
  return params;
}

OperationRecord DecodeOperation(const pg::Rows& rows, int r) {
  OperationRecord op;
  op.id = rows.Text(r, 0);
  op.store_id = rows.Text(r, 1);
  op.name = rows.Text(r, 2);
  op.params_json = rows.Text(r, 3);
  op.state = rows.Text(r, 4);
  op.code = rows.Text(r, 5);
  op.result_json = rows.Text(r, 6);
  op.requested_by = rows.Text(r, 7);
  op.request_id = rows.Text(r, 8);
  op.created_at_ms = rows.Int64(r, 9);
  op.expires_at_ms = rows.Int64(r, 10);
  op.timeout_s = static_cast<int>(rows.Int64(r, 11));
  op.delivered_at_ms = rows.OptionalInt64(r, 12);
  op.delivered_session = rows.Text(r, 13);
  op.delivery_count = static_cast<int>(rows.Int64(r, 14));
  op.finished_at_ms = rows.OptionalInt64(r, 15);
  op.version = rows.Int64(r, 16);
  return op;
}

std::vector<OperationRecord> DecodeOperations(const pg::Rows& rows) {
  std::vector<OperationRecord> ops;
  ops.reserve(static_cast<std::size_t>(rows.size()));
  for (int r = 0; r < rows.size(); ++r) ops.push_back(DecodeOperation(rows, r));
  return ops;
}

pg::Params SuccessParams(const LastSuccess& success) {
  pg::Params params;
  params.Add(success.store_id).Add(success.kind).Add(success.name).Add(success.at_ms).Add(success.ref);
  return params;
}

// The telemetry batch, inside its transaction.
Status WriteTelemetryRows(pg::PgConnection& conn, const Repository::TelemetryBatch& batch) {
  for (const auto& agent : batch.agents) {
    pg::Params params;
    params.Add(agent.store_id)
        .Add(agent.agent_id)
        .Add(agent.agent_version)
        .Add(agent.last_seen_ms)
        .Add(agent.availability)
        .Add(agent.health)
        .Add(agent.release)
        .Add(agent.reported_isolation)
        .Add(support::EncodeStrings(agent.allowed_operations))
        .Add(ChecksOrEmpty(agent.checks_json));
    // No matching row (another agent id, no agent): skipped.
    if (auto updated = conn.Exec(kUpdateAgentTelemetry, params, "record agent telemetry"); !updated.ok()) {
      return updated.error();
    }
  }
  for (const auto& success : batch.successes) {
    if (auto upserted = conn.Exec(kUpsertLastSuccessOfKnownStore, SuccessParams(success), "record last success");
        !upserted.ok()) {
      return upserted.error();
    }
  }
  for (const auto& delivery : batch.deliveries) {
    // Unknown or final: left alone.
    if (auto delivered =
            conn.Exec(kDeliverOperation,
                      pg::Params().Add(delivery.operation_id).Add(delivery.delivered_at_ms).Add(delivery.session),
                      "record delivery");
        !delivered.ok()) {
      return delivered.error();
    }
  }
  return Status::Ok();
}

}  // namespace

// ---- reads and telemetry ----

Result<std::optional<EnrollmentToken>> PostgresRepository::FindEnrollmentTokenByHash(std::string_view token_hash) {
  return WithConnection(*pool_, [&](pg::PgConnection& conn) -> Result<std::optional<EnrollmentToken>> {
    auto rows = conn.Exec(kSelectEnrollmentTokenByHash, pg::Params().Add(token_hash), "look up enrollment token");
    if (!rows.ok()) return rows.error();
    if (rows->empty()) return std::optional<EnrollmentToken>();
    return std::optional<EnrollmentToken>(DecodeEnrollmentToken(*rows, 0));
  });
}

Result<std::optional<AgentRecord>> PostgresRepository::GetAgent(std::string_view store_id) {
  return WithConnection(*pool_, [&](pg::PgConnection& conn) -> Result<std::optional<AgentRecord>> {
    auto rows = conn.Exec(kSelectAgent, pg::Params().Add(store_id), "read agent");
    if (!rows.ok()) return rows.error();
    if (rows->empty()) return std::optional<AgentRecord>();
    auto agent = DecodeAgent(*rows, 0);
    if (!agent.ok()) return agent.error();
    return std::optional<AgentRecord>(std::move(*agent));
  });
}

Result<std::vector<AgentRecord>> PostgresRepository::ListAgents() {
  return WithConnection(*pool_, [&](pg::PgConnection& conn) -> Result<std::vector<AgentRecord>> {
    auto rows = conn.Exec(kListAgents, "list agents");
    if (!rows.ok()) return rows.error();
    std::vector<AgentRecord> agents;
    agents.reserve(static_cast<std::size_t>(rows->size()));
    for (int r = 0; r < rows->size(); ++r) {
      auto agent = DecodeAgent(*rows, r);
      if (!agent.ok()) return agent.error();
      agents.push_back(std::move(*agent));
    }
    return agents;
  });
}

Result<OperationRecord> PostgresRepository::GetOperation(std::string_view id) {
  return WithConnection(*pool_, [&](pg::PgConnection& conn) -> Result<OperationRecord> {
    auto rows = conn.Exec(kSelectOperationById, pg::Params().Add(id), "read operation");
    if (!rows.ok()) return rows.error();
    if (rows->empty()) return Error::NotFound("operation " + Quoted(id) + " not found");
    return DecodeOperation(*rows, 0);
  });
}

Result<std::vector<OperationRecord>> PostgresRepository::ListOperations(std::string_view store_id,
                                                                        std::string_view before_id, int limit) {
  return WithConnection(*pool_, [&](pg::PgConnection& conn) -> Result<std::vector<OperationRecord>> {
    constexpr std::string_view kWhat = "list operations";
    SP_RETURN_IF_ERROR(support::CheckLimit(limit));
    // The cursor is the seq of `before_id` (a row's seq never changes, so no snapshot is
    // needed across the two statements).
    std::int64_t before_seq = std::numeric_limits<std::int64_t>::max();
    if (!before_id.empty()) {
      auto seq = conn.Exec(kSelectOperationSeq, pg::Params().Add(before_id).Add(store_id), kWhat);
      if (!seq.ok()) return seq.error();
      if (seq->empty()) {
        return Error::Invalid("cursor " + Quoted(before_id) + " is not an operation of this store", "cursor");
      }
      before_seq = seq->Int64(0, 0);
    }
    auto rows = conn.Exec(kListOperations, pg::Params().Add(store_id).Add(before_seq).Add(limit), kWhat);
    if (!rows.ok()) return rows.error();
    return DecodeOperations(*rows);
  });
}

Result<std::vector<OperationRecord>> PostgresRepository::ListOpenOperations() {
  return WithConnection(*pool_, [&](pg::PgConnection& conn) -> Result<std::vector<OperationRecord>> {
    auto rows = conn.Exec(kListOpenOperations, "list open operations");
    if (!rows.ok()) return rows.error();
    return DecodeOperations(*rows);
  });
}

Result<std::vector<LastSuccess>> PostgresRepository::ListLastSuccesses(std::string_view store_id) {
  return WithConnection(*pool_, [&](pg::PgConnection& conn) -> Result<std::vector<LastSuccess>> {
    auto rows = conn.Exec(kListLastSuccesses, pg::Params().Add(store_id), "list last successes");
    if (!rows.ok()) return rows.error();
    std::vector<LastSuccess> successes;
    successes.reserve(static_cast<std::size_t>(rows->size()));
    for (int r = 0; r < rows->size(); ++r) {
      LastSuccess success;
      success.store_id = rows->Text(r, 0);
      success.kind = rows->Text(r, 1);
      success.name = rows->Text(r, 2);
      success.at_ms = rows->Int64(r, 3);
      success.ref = rows->Text(r, 4);
      successes.push_back(std::move(success));
    }
    return successes;
  });
}

Status PostgresRepository::WriteTelemetry(const TelemetryBatch& batch) {
  return pg_detail::Guarded([&]() -> Status {
    SP_RETURN_IF_ERROR(CheckTelemetry(batch));
    if (batch.agents.empty() && batch.successes.empty() && batch.deliveries.empty()) return Status::Ok();
    // Observations, not changes of authority: no audit record, no fence, and the chain is
    // not touched. One transaction (retried on serialization failures and deadlocks).
    Status st = pg::InTransaction(
        *pool_, [&batch](pg::PgConnection& conn) { return WriteTelemetryRows(conn, batch); }, "record telemetry");
    if (!st.ok()) {
      if (st.error().code == ErrorCode::kUnavailable) ++failed_batches_;
      return st;
    }
    ++batches_;
    mutations_ += batch.agents.size() + batch.successes.size() + batch.deliveries.size();
    return st;
  });
}

Result<std::vector<std::pair<std::string, std::int64_t>>> PostgresRepository::CountOpenOperationsByState() {
  return WithConnection(*pool_,
                        [&](pg::PgConnection& conn) -> Result<std::vector<std::pair<std::string, std::int64_t>>> {
                          auto rows = conn.Exec(kCountOpenOperations, "count open operations by state");
                          if (!rows.ok()) return rows.error();
                          std::vector<std::pair<std::string, std::int64_t>> counts;
                          for (int r = 0; r < rows->size(); ++r)
                            counts.emplace_back(rows->Text(r, 0), rows->Int64(r, 1));
                          return counts;
                        });
}

namespace pg_detail {

// One enrollment token enrolls one agent (used_at_ms is set once); a store has at most one
// agent row, replaced at each enrollment. Operations are ordered by seq (insertion order, a
// bigserial so that a copy can insert explicit values and then setval), which is also the
// cursor of a store's listing; the partial index keeps the open (queued or delivered) ones
// cheap to find, and each insert NOTIFYs storeplane_operations with its store id.
// last_successes keeps the latest success of each operation, check or pipeline per store.
// Closed values are checked by the database.
const char* const kAgentsSchema = R"sql(
CREATE TABLE enrollment_tokens (
  id text PRIMARY KEY,
  token_hash text NOT NULL UNIQUE,
  store_id text NOT NULL REFERENCES stores (id),
  created_by text NOT NULL,
  created_at_ms bigint NOT NULL,
  expires_at_ms bigint NOT NULL,
  used_at_ms bigint
);
CREATE INDEX enrollment_tokens_by_store ON enrollment_tokens (store_id, created_at_ms);

CREATE TABLE agents (
  store_id text PRIMARY KEY REFERENCES stores (id),
  id text NOT NULL UNIQUE,
  credential_hash text NOT NULL,
  enrolled_at_ms bigint NOT NULL,
  rotated_at_ms bigint,
  revoked_at_ms bigint,
  agent_version text NOT NULL DEFAULT '',
  last_seen_ms bigint,
  availability text NOT NULL DEFAULT 'never_seen'
    CHECK (availability IN ('online', 'stale', 'offline', 'never_seen')),
  health text NOT NULL DEFAULT 'unknown' CHECK (health IN ('healthy', 'degraded', 'unhealthy', 'unknown')),
  release text,
  reported_isolation text,
  allowed_operations_json text NOT NULL DEFAULT '[]',
  checks_json text NOT NULL DEFAULT '[]'
);

CREATE TABLE operations (
  seq bigserial PRIMARY KEY,
  id text NOT NULL UNIQUE,
  store_id text NOT NULL REFERENCES stores (id),
  name text NOT NULL,
  params_json text NOT NULL DEFAULT '{}',
  state text NOT NULL CHECK (state IN ('queued', 'delivered', 'succeeded', 'failed', 'expired')),
  code text NOT NULL DEFAULT '',
  result_json text NOT NULL DEFAULT '',
  requested_by text NOT NULL,
  request_id text NOT NULL DEFAULT '',
  created_at_ms bigint NOT NULL,
  expires_at_ms bigint NOT NULL,
  timeout_s bigint NOT NULL,
  delivered_at_ms bigint,
  delivered_session text NOT NULL DEFAULT '',
  delivery_count bigint NOT NULL DEFAULT 0,
  finished_at_ms bigint,
  version bigint NOT NULL
);
CREATE INDEX operations_by_store ON operations (store_id, seq);
CREATE INDEX operations_open ON operations (state, seq) WHERE state IN ('queued', 'delivered');
CREATE FUNCTION operations_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('storeplane_operations', NEW.store_id);
  RETURN NULL;
END $$;
CREATE TRIGGER operations_notify AFTER INSERT ON operations
  FOR EACH ROW EXECUTE FUNCTION operations_notify();

CREATE TABLE last_successes (
  store_id text NOT NULL REFERENCES stores (id),
  kind text NOT NULL CHECK (kind IN ('operation', 'check', 'pipeline')),
  name text NOT NULL,
  at_ms bigint NOT NULL,
  ref text NOT NULL DEFAULT '',
  PRIMARY KEY (store_id, kind, name)
);
)sql";

Status InsertEnrollmentToken(pg::PgConnection& conn, const InsertEnrollmentTokenEffect& effect) {
  const EnrollmentToken& token = effect.token;
  pg::Params params;
  params.Add(token.id)
      .Add(token.token_hash)
      .Add(token.store_id)
      .Add(token.created_by)
      .Add(token.created_at_ms)
      .Add(token.expires_at_ms)
      .Add(token.used_at_ms);
  // A failure aborts the transaction, and so the batch: no probe is needed after it.
  auto inserted = conn.Exec(kInsertEnrollmentToken, params, "insert enrollment token");
  if (!inserted.ok()) {
    if (IsUniqueViolation(conn)) {  // the id or the hash
      return Error{ErrorCode::kAlreadyExists, "enrollment token " + Quoted(token.id) + " is already registered", {}};
    }
    if (IsForeignKeyViolation(conn)) return StoreNotFound(token.store_id);
    return inserted.error();
  }
  return Status::Ok();
}

Status EnrollAgent(pg::PgConnection& conn, const EnrollAgentEffect& effect) {
  const AgentRecord& agent = effect.agent;
  constexpr std::string_view kWhat = "enroll agent";
  // The token first: one enrollment per token, and only for its own store. The row lock
  // taken by the UPDATE makes a concurrent second use wait, then find it used.
  auto used = conn.Exec(kUseEnrollmentToken,
                        pg::Params().Add(effect.enrollment_token_id).Add(effect.used_at_ms).Add(agent.store_id), kWhat);
  if (!used.ok()) return used.error();
  if (used->affected() != 1) {
    auto probe = conn.Exec(kProbeEnrollmentToken, pg::Params().Add(effect.enrollment_token_id), kWhat);
    if (!probe.ok()) return probe.error();
    const std::string name = "enrollment token " + Quoted(effect.enrollment_token_id);
    if (probe->empty()) return Error::NotFound(name + " not found");
    if (probe->Text(0, 0) != agent.store_id) {
      return Error::NotFound(name + " not found for store " + Quoted(agent.store_id));
    }
    return Error{ErrorCode::kConflict, name + " was already used", {}};
  }

  pg::Params params;
  params.Add(agent.store_id)
      .Add(agent.id)
      .Add(agent.credential_hash)
      .Add(agent.enrolled_at_ms)
      .Add(agent.agent_version);
  auto upserted = conn.Exec(kEnrollAgent, params, kWhat);
  if (!upserted.ok()) {
    if (IsUniqueViolation(conn)) {
      return Error{ErrorCode::kAlreadyExists, "agent id " + Quoted(agent.id) + " is already taken", "id"};
    }
    if (IsForeignKeyViolation(conn)) return StoreNotFound(agent.store_id);
    return upserted.error();
  }
  return Status::Ok();
}

Status RotateAgentCredential(pg::PgConnection& conn, const RotateAgentCredentialEffect& effect) {
  constexpr std::string_view kWhat = "rotate agent credential";
  auto rotated = conn.Exec(
      kRotateAgentCredential,
      pg::Params().Add(effect.store_id).Add(effect.agent_id).Add(effect.credential_hash).Add(effect.rotated_at_ms),
      kWhat);
  if (!rotated.ok()) return rotated.error();
  if (rotated->affected() == 1) return Status::Ok();
  auto probe = conn.Exec(kProbeAgent, pg::Params().Add(effect.store_id), kWhat);
  if (!probe.ok()) return probe.error();
  const std::string name = "the agent of store " + Quoted(effect.store_id);
  if (probe->empty()) return Error::NotFound(name + " not found");
  if (probe->Text(0, 0) != effect.agent_id) {
    return Error{ErrorCode::kPreconditionFailed, name + " is no longer " + Quoted(effect.agent_id), {}};
  }
  return Error{ErrorCode::kConflict, name + " is revoked", {}};
}

Status RevokeAgent(pg::PgConnection& conn, const RevokeAgentEffect& effect) {
  constexpr std::string_view kWhat = "revoke agent";
  auto revoked = conn.Exec(kRevokeAgent, pg::Params().Add(effect.store_id).Add(effect.revoked_at_ms), kWhat);
  if (!revoked.ok()) return revoked.error();
  if (revoked->affected() == 1) return Status::Ok();
  auto probe = conn.Exec(kProbeAgent, pg::Params().Add(effect.store_id), kWhat);
  if (!probe.ok()) return probe.error();
  const std::string name = "the agent of store " + Quoted(effect.store_id);
  if (probe->empty()) return Error::NotFound(name + " not found");
  return Error{ErrorCode::kConflict, name + " is already revoked", {}};
}

Status InsertOperation(pg::PgConnection& conn, const InsertOperationEffect& effect, WriteResult& result) {
  const OperationRecord& op = effect.operation;
  auto inserted = conn.Exec(kInsertOperation, OperationParams(op), "insert operation");
  if (!inserted.ok()) {
    if (IsForeignKeyViolation(conn)) return StoreNotFound(op.store_id);
    return inserted.error();
  }
  if (inserted->empty()) {
    return Error{ErrorCode::kAlreadyExists, "operation id " + Quoted(op.id) + " is already taken", "id"};
  }
  result.operations.push_back(DecodeOperation(*inserted, 0));
  return Status::Ok();
}

Status UpdateOperation(pg::PgConnection& conn, const UpdateOperationEffect& effect, WriteResult& result) {
  const OperationRecord& op = effect.updated;
  constexpr std::string_view kWhat = "update operation";
  auto params = OperationParams(op);
  params.Add(effect.expected_version);
  auto updated = conn.Exec(kUpdateOperationIfVersion, params, kWhat);
  if (!updated.ok()) return updated.error();
  if (updated->empty()) {
    // A successful UPDATE of no row leaves the transaction usable for the probe.
    auto probe = conn.Exec(kProbeOperation, pg::Params().Add(op.id), kWhat);
    if (!probe.ok()) return probe.error();
    const std::string name = "operation " + Quoted(op.id);
    if (probe->empty() || probe->Text(0, 0) != op.store_id) return Error::NotFound(name + " not found");
    return Error{ErrorCode::kPreconditionFailed,
                 name + " has version " + std::to_string(probe->Int64(0, 1)) + ", not " +
                     std::to_string(effect.expected_version),
                 {}};
  }
  result.operations.push_back(DecodeOperation(*updated, 0));
  return Status::Ok();
}

Status UpsertLastSuccess(pg::PgConnection& conn, const UpsertLastSuccessEffect& effect) {
  auto upserted = conn.Exec(kUpsertLastSuccess, SuccessParams(effect.success), "record last success");
  if (!upserted.ok()) {
    if (IsForeignKeyViolation(conn)) return StoreNotFound(effect.success.store_id);
    return upserted.error();
  }
  return Status::Ok();
}

}  // namespace pg_detail

}  // namespace storeplane::db
