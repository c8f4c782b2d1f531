#include "db/migrations.h"

#include <array>
#include <string>

namespace storeplane::db {

namespace {

constexpr const char* kCreateMigrationsTable =
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    "  version INTEGER PRIMARY KEY NOT NULL,"
    "  applied_at INTEGER NOT NULL"  // Unix milliseconds
    ")";

constexpr const char* kSelectSchemaVersion = "SELECT COALESCE(MAX(version), 0) FROM schema_migrations";

constexpr const char* kInsertSchemaVersion = "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)";

// v1: stores (a decommissioned store stays as a row forever, so ids are never reused),
// principals with their bearer tokens (hashes only), and remembered idempotent answers.
constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE stores (
  id TEXT PRIMARY KEY NOT NULL,
  name TEXT NOT NULL,
  environment TEXT NOT NULL,
  isolation_mode TEXT NOT NULL,
  labels_json TEXT NOT NULL DEFAULT '{}',
  state TEXT NOT NULL,
  desired_release TEXT,
  current_release TEXT,
  last_known_good_release TEXT,
  version INTEGER NOT NULL,
  created_at_ms INTEGER NOT NULL,
  updated_at_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX stores_by_environment ON stores (environment, id);
CREATE INDEX stores_by_state ON stores (state, id);
CREATE INDEX stores_by_isolation_mode ON stores (isolation_mode, id);

CREATE TABLE principals (
  id TEXT PRIMARY KEY NOT NULL,
  name TEXT NOT NULL,
  kind TEXT NOT NULL,
  roles_json TEXT NOT NULL DEFAULT '[]',
  created_at_ms INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE tokens (
  token_hash TEXT PRIMARY KEY NOT NULL,
  principal_id TEXT NOT NULL REFERENCES principals (id),
  description TEXT NOT NULL DEFAULT '',
  created_at_ms INTEGER NOT NULL,
  expires_at_ms INTEGER
) WITHOUT ROWID;
CREATE INDEX tokens_by_principal ON tokens (principal_id);

CREATE TABLE idempotency_keys (
  principal_id TEXT NOT NULL,
  key TEXT NOT NULL,
  request_hash TEXT NOT NULL,
  status INTEGER NOT NULL,
  response_body TEXT NOT NULL,
  location TEXT NOT NULL DEFAULT '',
  created_at_ms INTEGER NOT NULL,
  PRIMARY KEY (principal_id, key)
) WITHOUT ROWID;
CREATE INDEX idempotency_keys_by_created_at ON idempotency_keys (created_at_ms);
)sql";

// v2: authority and audit. The audit trail and its checkpoints are append-only: triggers
// refuse UPDATE and DELETE, and an INSERT whose seq does not follow the last one (which
// also stops INSERT OR REPLACE from overwriting a row). Tokens gain a public id (existing
// tokens get a random one) and a revocation time; change requests wait for approvals.
constexpr const char* kSchemaV2 = R"sql(
CREATE TABLE audit_log (
  seq INTEGER PRIMARY KEY NOT NULL,
  time_ms INTEGER NOT NULL,
  principal TEXT NOT NULL,
  source TEXT NOT NULL,
  action TEXT NOT NULL,
  target TEXT NOT NULL,
  request_id TEXT NOT NULL,
  decision TEXT NOT NULL,
  rule TEXT NOT NULL,
  outcome TEXT NOT NULL,
  params_json TEXT NOT NULL DEFAULT '{}',
  prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL
);
CREATE INDEX audit_log_by_principal ON audit_log (principal, seq);
CREATE INDEX audit_log_by_action ON audit_log (action, seq);
CREATE INDEX audit_log_by_target ON audit_log (target, seq);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_insert_in_order BEFORE INSERT ON audit_log
WHEN NEW.seq IS NOT (SELECT COALESCE(MAX(seq), 0) + 1 FROM audit_log)
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;

CREATE TABLE audit_checkpoints (
  seq INTEGER PRIMARY KEY NOT NULL,
  hash TEXT NOT NULL,
  time_ms INTEGER NOT NULL,
  key_id TEXT NOT NULL,
  signature TEXT NOT NULL
);
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only'); END;
CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only'); END;
CREATE TRIGGER audit_checkpoints_insert_in_order BEFORE INSERT ON audit_checkpoints
WHEN NEW.seq <= (SELECT COALESCE(MAX(seq), 0) FROM audit_checkpoints)
BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only'); END;

ALTER TABLE tokens ADD COLUMN id TEXT;
ALTER TABLE tokens ADD COLUMN revoked_at_ms INTEGER;
ALTER TABLE tokens ADD COLUMN created_by TEXT NOT NULL DEFAULT '';
UPDATE tokens SET id = 'tok_' || lower(hex(randomblob(16))) WHERE id IS NULL;
CREATE UNIQUE INDEX tokens_by_id ON tokens (id);

CREATE TABLE change_requests (
  id TEXT PRIMARY KEY NOT NULL,
  action TEXT NOT NULL,
  target TEXT NOT NULL,
  environment TEXT NOT NULL,
  requester TEXT NOT NULL,
  request_body TEXT NOT NULL,
  approval_rule TEXT NOT NULL,
  approvals_needed INTEGER NOT NULL,
  approvers_json TEXT NOT NULL DEFAULT '[]',
  status TEXT NOT NULL,
  outcome TEXT NOT NULL DEFAULT '',
  created_at_ms INTEGER NOT NULL,
  expires_at_ms INTEGER NOT NULL,
  version INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX change_requests_by_created_at ON change_requests (created_at_ms, id);
CREATE INDEX change_requests_by_status ON change_requests (status, created_at_ms, id);
)sql";

// v3: agents and operations. One enrollment token enrolls one agent (used_at_ms is set
// once); a store has at most one agent row, replaced at each enrollment. Operations are
// ordered by seq (insertion order), which is also the cursor of a store's listing; the
// partial index keeps the open (queued or delivered) ones cheap to find. last_successes
// keeps the latest success of each operation, check or pipeline per store.
constexpr const char* kSchemaV3 = R"sql(
CREATE TABLE enrollment_tokens (
  id TEXT PRIMARY KEY NOT NULL,
  token_hash TEXT NOT NULL UNIQUE,
  store_id TEXT NOT NULL REFERENCES stores (id),
  created_by TEXT NOT NULL,
  created_at_ms INTEGER NOT NULL,
  expires_at_ms INTEGER NOT NULL,
  used_at_ms INTEGER
) WITHOUT ROWID;
CREATE INDEX enrollment_tokens_by_store ON enrollment_tokens (store_id, created_at_ms);

CREATE TABLE agents (
  store_id TEXT PRIMARY KEY NOT NULL REFERENCES stores (id),
  id TEXT NOT NULL UNIQUE,
  credential_hash TEXT NOT NULL,
  enrolled_at_ms INTEGER NOT NULL,
  rotated_at_ms INTEGER,
  revoked_at_ms INTEGER,
  agent_version TEXT NOT NULL DEFAULT '',
  last_seen_ms INTEGER,
  availability TEXT NOT NULL DEFAULT 'never_seen'
    CHECK (availability IN ('online', 'stale', 'offline', 'never_seen')),
  health TEXT NOT NULL DEFAULT 'unknown' CHECK (health IN ('healthy', 'degraded', 'unhealthy', 'unknown')),
  release TEXT,
  reported_isolation TEXT,
  allowed_operations_json TEXT NOT NULL DEFAULT '[]',
  checks_json TEXT NOT NULL DEFAULT '[]'
) WITHOUT ROWID;

CREATE TABLE operations (
  seq INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  store_id TEXT NOT NULL REFERENCES stores (id),
  name TEXT NOT NULL,
  params_json TEXT NOT NULL DEFAULT '{}',
  state TEXT NOT NULL CHECK (state IN ('queued', 'delivered', 'succeeded', 'failed', 'expired')),
  code TEXT NOT NULL DEFAULT '',
  result_json TEXT NOT NULL DEFAULT '',
  requested_by TEXT NOT NULL,
  request_id TEXT NOT NULL DEFAULT '',
  created_at_ms INTEGER NOT NULL,
  expires_at_ms INTEGER NOT NULL,
  timeout_s INTEGER NOT NULL,
  delivered_at_ms INTEGER,
  delivered_session TEXT NOT NULL DEFAULT '',
  delivery_count INTEGER NOT NULL DEFAULT 0,
  finished_at_ms INTEGER,
  version INTEGER NOT NULL
);
CREATE INDEX operations_by_store ON operations (store_id, seq);
CREATE INDEX operations_open ON operations (state, seq) WHERE state IN ('queued', 'delivered');

CREATE TABLE last_successes (
  store_id TEXT NOT NULL REFERENCES stores (id),
  kind TEXT NOT NULL CHECK (kind IN ('operation', 'check', 'pipeline')),
  name TEXT NOT NULL,
  at_ms INTEGER NOT NULL,
  ref TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (store_id, kind, name)
) WITHOUT ROWID;
)sql";

// v4: CI/CD pipeline runs, their outbox and the callback deliveries seen. A run is history:
// never deleted, and its id, seq, store, kind and creation time never change (triggers).
// seq orders the runs (insertion order, the listing cursor). `active` is kept by the writer
// but must agree with the state (a CHECK: active exactly while not final; succeeded is final
// only for kinds without a health gate), and the partial unique index over the active rows is
// what allows at most one active run per store. The outbox holds one trigger per run, written
// with it; the partial index keeps the due unsent entries cheap to find. callback_deliveries
// is append-only like the audit trail (no UPDATE, no DELETE, and no INSERT over a seen
// (provider, delivery_id), which also stops INSERT OR REPLACE): a delivery seen stays seen.
constexpr const char* kSchemaV4 = R"sql(
CREATE TABLE pipeline_runs (
  id TEXT PRIMARY KEY NOT NULL,
  seq INTEGER NOT NULL UNIQUE,
  store_id TEXT NOT NULL REFERENCES stores (id),
  kind TEXT NOT NULL
    CHECK (kind IN ('provision', 'deploy', 'rollback', 'decommission', 'isolation_migration')),
  state TEXT NOT NULL
    CHECK (state IN ('pending', 'triggered', 'running', 'succeeded', 'failed', 'cancelled', 'timed_out',
                     'verifying', 'verified', 'verification_failed')),
  active INTEGER NOT NULL CHECK (active IN (0, 1)),
  release TEXT NOT NULL DEFAULT '',
  previous_release TEXT NOT NULL DEFAULT '',
  target_isolation TEXT NOT NULL DEFAULT '',
  provider TEXT NOT NULL DEFAULT '',
  external_id TEXT NOT NULL DEFAULT '',
  external_url TEXT NOT NULL DEFAULT '',
  requested_by TEXT NOT NULL,
  request_id TEXT NOT NULL DEFAULT '',
  reason TEXT NOT NULL DEFAULT '',
  outcome_detail TEXT NOT NULL DEFAULT '',
  created_at_ms INTEGER NOT NULL,
  updated_at_ms INTEGER NOT NULL,
  triggered_at_ms INTEGER,
  finished_at_ms INTEGER,
  deadline_ms INTEGER NOT NULL,
  gate_opened_at_ms INTEGER,
  gate_streak INTEGER NOT NULL DEFAULT 0 CHECK (gate_streak >= 0),
  schema_changed INTEGER NOT NULL DEFAULT 0 CHECK (schema_changed IN (0, 1)),
  version INTEGER NOT NULL CHECK (version >= 1),
  CHECK (kind IN ('deploy', 'rollback') OR state NOT IN ('verifying', 'verified', 'verification_failed')),
  CHECK (active = (state IN ('pending', 'triggered', 'running', 'verifying')
                   OR (state = 'succeeded' AND kind IN ('deploy', 'rollback'))))
) WITHOUT ROWID;
CREATE UNIQUE INDEX pipeline_runs_one_active_per_store ON pipeline_runs (store_id) WHERE active = 1;
CREATE INDEX pipeline_runs_by_store ON pipeline_runs (store_id, seq);
CREATE INDEX pipeline_runs_by_state ON pipeline_runs (state, seq);
CREATE INDEX pipeline_runs_active ON pipeline_runs (seq) WHERE active = 1;
CREATE TRIGGER pipeline_runs_no_delete BEFORE DELETE ON pipeline_runs
BEGIN SELECT RAISE(ABORT, 'pipeline runs are never deleted'); END;
CREATE TRIGGER pipeline_runs_fixed_columns BEFORE UPDATE OF id, seq, store_id, kind, created_at_ms ON pipeline_runs
WHEN NEW.id IS NOT OLD.id OR NEW.seq IS NOT OLD.seq OR NEW.store_id IS NOT OLD.store_id
  OR NEW.kind IS NOT OLD.kind OR NEW.created_at_ms IS NOT OLD.created_at_ms
BEGIN SELECT RAISE(ABORT, 'the id, seq, store, kind and creation time of a run never change'); END;

CREATE TABLE outbox (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  run_id TEXT NOT NULL UNIQUE REFERENCES pipeline_runs (id),
  provider TEXT NOT NULL DEFAULT '',
  created_at_ms INTEGER NOT NULL,
  next_attempt_at_ms INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  last_error TEXT NOT NULL DEFAULT '',
  sent_at_ms INTEGER,
  version INTEGER NOT NULL CHECK (version >= 1)
);
CREATE INDEX outbox_due ON outbox (next_attempt_at_ms, seq) WHERE sent_at_ms IS NULL;

CREATE TABLE callback_deliveries (
  provider TEXT NOT NULL,
  delivery_id TEXT NOT NULL,
  run_id TEXT NOT NULL REFERENCES pipeline_runs (id),
  received_at_ms INTEGER NOT NULL,
  PRIMARY KEY (provider, delivery_id)
) WITHOUT ROWID;
CREATE INDEX callback_deliveries_by_run ON callback_deliveries (run_id, received_at_ms);
CREATE TRIGGER callback_deliveries_no_update BEFORE UPDATE ON callback_deliveries
BEGIN SELECT RAISE(ABORT, 'callback_deliveries is append-only'); END;
CREATE TRIGGER callback_deliveries_no_delete BEFORE DELETE ON callback_deliveries
BEGIN SELECT RAISE(ABORT, 'callback_deliveries is append-only'); END;
CREATE TRIGGER callback_deliveries_insert_once BEFORE INSERT ON callback_deliveries
WHEN EXISTS (SELECT 1 FROM callback_deliveries WHERE provider = NEW.provider AND delivery_id = NEW.delivery_id)
BEGIN SELECT RAISE(ABORT, 'callback_deliveries is append-only'); END;
)sql";

// v5: covering indexes for the aggregates read at every /metrics scrape, so that counting
// 100,000 stores by (state, environment, isolation mode), or every run by (kind, state),
// reads a small index in order instead of the tables (and sorts nothing).
constexpr const char* kSchemaV5 = R"sql(
CREATE INDEX stores_by_group ON stores (state, environment, isolation_mode);
CREATE INDEX pipeline_runs_by_kind_state ON pipeline_runs (kind, state);
)sql";

// v6: fleet rollouts. A rollout is one row (its spec and plan fixed at creation, its progress
// moved by the orchestrator); it is history, never deleted, and a rowid table because its plan
// can be large (one store id per target). Its targets are one row per planned store: the
// position (plan order) and wave are fixed at creation; the listing follows the position,
// within a wave or a state too. Commands wait in an inbox until a step consumes (deletes)
// them; AUTOINCREMENT keeps seq increasing even after the newest command was deleted. The
// texts are checked like the runs' (core/rollout.h). Pipeline runs gain the rollout that
// requested them (NULL for none, so that an added column can reference rollouts).
constexpr const char* kSchemaV6 = R"sql(
CREATE TABLE rollouts (
  id TEXT PRIMARY KEY NOT NULL,
  environment TEXT NOT NULL,
  release TEXT NOT NULL,
  state TEXT NOT NULL
    CHECK (state IN ('pending', 'running', 'waiting_between_waves', 'awaiting_approval', 'paused', 'halting',
                     'aborting', 'rolling_back', 'succeeded', 'failed', 'aborted')),
  paused_from TEXT NOT NULL DEFAULT ''
    CHECK (paused_from IN ('', 'pending', 'running', 'waiting_between_waves', 'awaiting_approval', 'paused',
                           'halting', 'aborting', 'rolling_back', 'succeeded', 'failed', 'aborted')),
  current_wave INTEGER NOT NULL DEFAULT 0 CHECK (current_wave >= 0),
  resume_at_ms INTEGER,
  ending TEXT NOT NULL DEFAULT '' CHECK (ending IN ('', 'failure_budget', 'abort')),
  rollback_on_abort INTEGER NOT NULL DEFAULT 0 CHECK (rollback_on_abort IN (0, 1)),
  failed_deploys INTEGER NOT NULL DEFAULT 0 CHECK (failed_deploys >= 0),
  counts_json TEXT NOT NULL DEFAULT '{}',
  created_by TEXT NOT NULL,
  request_id TEXT NOT NULL DEFAULT '',
  created_at_ms INTEGER NOT NULL,
  updated_at_ms INTEGER NOT NULL,
  finished_at_ms INTEGER,
  version INTEGER NOT NULL CHECK (version >= 1),
  spec_json TEXT NOT NULL,
  plan_json TEXT NOT NULL
);
CREATE INDEX rollouts_by_created_at ON rollouts (created_at_ms, id);
CREATE INDEX rollouts_by_environment ON rollouts (environment, created_at_ms, id);
CREATE INDEX rollouts_active ON rollouts (created_at_ms, id) WHERE state NOT IN ('succeeded', 'failed', 'aborted');
CREATE TRIGGER rollouts_no_delete BEFORE DELETE ON rollouts
BEGIN SELECT RAISE(ABORT, 'rollouts are never deleted'); END;
CREATE TRIGGER rollouts_fixed_columns
BEFORE UPDATE OF id, environment, release, spec_json, plan_json, created_by, request_id, created_at_ms ON rollouts
WHEN NEW.id IS NOT OLD.id OR NEW.environment IS NOT OLD.environment OR NEW.release IS NOT OLD.release
  OR NEW.spec_json IS NOT OLD.spec_json OR NEW.plan_json IS NOT OLD.plan_json OR NEW.created_by IS NOT OLD.created_by
  OR NEW.request_id IS NOT OLD.request_id OR NEW.created_at_ms IS NOT OLD.created_at_ms
BEGIN SELECT RAISE(ABORT, 'the spec, plan, creator and creation time of a rollout never change'); END;

CREATE TABLE rollout_targets (
  rollout_id TEXT NOT NULL REFERENCES rollouts (id),
  store_id TEXT NOT NULL REFERENCES stores (id),
  position INTEGER NOT NULL CHECK (position >= 0),
  wave INTEGER NOT NULL CHECK (wave >= 0),
  state TEXT NOT NULL
    CHECK (state IN ('waiting', 'deploying', 'succeeded', 'failed', 'skipped', 'rollback_waiting', 'rolling_back',
                     'rolled_back', 'rollback_failed', 'not_rolled_back', 'not_started')),
  skip_reason TEXT NOT NULL DEFAULT ''
    CHECK (skip_reason IN ('', 'agent_offline', 'unhealthy', 'active_run', 'not_active', 'window_closed',
                           'already_at_release')),
  deploy_run_id TEXT NOT NULL DEFAULT '',
  deploy_final_state TEXT NOT NULL DEFAULT '',
  previous_release TEXT NOT NULL DEFAULT '',
  rollback_run_id TEXT NOT NULL DEFAULT '',
  rollback_final_state TEXT NOT NULL DEFAULT '',
  updated_at_ms INTEGER NOT NULL,
  PRIMARY KEY (rollout_id, store_id),
  UNIQUE (rollout_id, position)
) WITHOUT ROWID;
CREATE INDEX rollout_targets_by_wave ON rollout_targets (rollout_id, wave, position);
CREATE INDEX rollout_targets_by_state ON rollout_targets (rollout_id, state, position);
CREATE TRIGGER rollout_targets_no_delete BEFORE DELETE ON rollout_targets
BEGIN SELECT RAISE(ABORT, 'rollout targets are never deleted'); END;
CREATE TRIGGER rollout_targets_fixed_columns BEFORE UPDATE OF rollout_id, store_id, position, wave ON rollout_targets
WHEN NEW.rollout_id IS NOT OLD.rollout_id OR NEW.store_id IS NOT OLD.store_id OR NEW.position IS NOT OLD.position
  OR NEW.wave IS NOT OLD.wave
BEGIN SELECT RAISE(ABORT, 'the rollout, store, position and wave of a target never change'); END;

CREATE TABLE rollout_commands (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  rollout_id TEXT NOT NULL REFERENCES rollouts (id),
  kind TEXT NOT NULL CHECK (kind IN ('pause', 'resume', 'abort', 'approve_wave')),
  wave INTEGER NOT NULL DEFAULT 0 CHECK (wave >= 0),
  rollback INTEGER NOT NULL DEFAULT 0 CHECK (rollback IN (0, 1)),
  principal_id TEXT NOT NULL,
  request_id TEXT NOT NULL DEFAULT '',
  created_at_ms INTEGER NOT NULL
);
CREATE INDEX rollout_commands_by_rollout ON rollout_commands (rollout_id, seq);

ALTER TABLE pipeline_runs ADD COLUMN rollout_id TEXT REFERENCES rollouts (id);
CREATE INDEX pipeline_runs_by_rollout ON pipeline_runs (rollout_id, seq) WHERE rollout_id IS NOT NULL;
)sql";

constexpr std::array kMigrations = {
    Migration{1, "stores, principals, tokens, idempotency keys", kSchemaV1},
    Migration{2, "append-only audit trail and checkpoints, token ids and revocation, change requests", kSchemaV2},
    Migration{3, "enrollment tokens, agents, operations, last successes", kSchemaV3},
    Migration{4, "pipeline runs (one active per store), their outbox, callback deliveries", kSchemaV4},
    Migration{5, "covering indexes for the /metrics aggregates", kSchemaV5},
    Migration{6, "fleet rollouts, their targets and command inbox; runs know their rollout", kSchemaV6},
};

Result<int> ReadVersion(Connection& conn) {
  auto stmt = conn.Prepare(kSelectSchemaVersion, "read schema version");
  if (!stmt.ok()) return stmt.error();
  auto row = stmt->Step("read schema version");
  if (!row.ok()) return row.error();
  return static_cast<int>(stmt->ColumnInt64(0));
}

Error TooNew(int found) {
  return Error{ErrorCode::kUnavailable,
               "database schema version " + std::to_string(found) +
                   " is newer than this build of storeplane supports (" + std::to_string(LatestSchemaVersion()) +
                   "); upgrade storeplane or use another database",
               {}};
}

// Applies one migration inside its own transaction, unless another process already did.
Status ApplyOne(Connection& conn, const Migration& migration, std::int64_t applied_at_ms) {
  const std::string what = "apply schema migration " + std::to_string(migration.version);
  if (auto st = conn.Exec(kSqlBeginImmediate, what); !st.ok()) return st;
  auto fail = [&](const Error& error) -> Status {
    if (!conn.autocommit()) (void)conn.Exec(kSqlRollback, "roll back schema migration");
    Error out = error;
    out.code = ErrorCode::kUnavailable;  // a database that cannot be migrated cannot be served
    return out;
  };
  auto current = ReadVersion(conn);
  if (!current.ok()) return fail(current.error());
  if (*current > LatestSchemaVersion()) {
    (void)conn.Exec(kSqlRollback, "roll back schema migration");
    return TooNew(*current);
  }
  if (*current >= migration.version) return conn.Exec(kSqlCommit, what);  // applied meanwhile
  if (auto st = conn.Exec(migration.sql, what); !st.ok()) return fail(st.error());
  auto insert = conn.Prepare(kInsertSchemaVersion, what);
  if (!insert.ok()) return fail(insert.error());
  insert->Bind(1, static_cast<std::int64_t>(migration.version)).Bind(2, applied_at_ms);
  if (auto st = insert->Run(what); !st.ok()) return fail(st.error());
  if (auto st = conn.Exec(kSqlCommit, what); !st.ok()) return fail(st.error());
  return Status::Ok();
}

}  // namespace

std::span<const Migration> AllMigrations() { return kMigrations; }

int LatestSchemaVersion() { return kMigrations.back().version; }

Result<int> CurrentSchemaVersion(Connection& conn) { return ReadVersion(conn); }

Status ApplyMigrations(Connection& conn, std::int64_t applied_at_ms) {
  if (auto st = conn.Exec(kCreateMigrationsTable, "create schema_migrations"); !st.ok()) return st;
  auto current = ReadVersion(conn);
  if (!current.ok()) return current.error();
  if (*current > LatestSchemaVersion()) return TooNew(*current);
  for (const Migration& migration : kMigrations) {
    if (migration.version <= *current) continue;
    if (auto st = ApplyOne(conn, migration, applied_at_ms); !st.ok()) return st;
  }
  return Status::Ok();
}

}  // namespace storeplane::db
