// PostgresRepository: pipeline runs, their outbox entries and the callback deliveries seen
// (SQLite schema v4, v5's covering index, v6's rollout of a run), their effects and reads.
// As in SQLite the database holds the invariants: one active run per store (a partial
// unique index), `active` agreeing with the state and kinds and states from the known texts
// (CHECKs), runs never deleted and their identity fixed (triggers), a delivery id accepted
// once (primary key and an insert trigger).
//
// A failed statement aborts the transaction, so nothing here probes after a failure: the
// run's insert uses ON CONFLICT DO NOTHING and probes after the (successful) statement that
// changed nothing; the statements that may still fail are the last of their effect (and an
// effect's error fails the whole batch), so their errors are told apart by SQLSTATE and
// constraint name, with what a message names read before them.
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "db/pg_repository_impl.h"
#include "db/storage_support.h"

namespace storeplane::db {

namespace {

using pg_detail::WithConnection;
using support::CheckLimit;
using support::Quoted;

// ---- SQL ----

#define STOREPLANE_RUN_COLUMNS                                                                                      \
  "id, store_id, kind, state, active, release, previous_release, target_isolation, provider, external_id, "         \
  "external_url, requested_by, request_id, reason, outcome_detail, created_at_ms, updated_at_ms, triggered_at_ms, " \
  "finished_at_ms, deadline_ms, gate_opened_at_ms, gate_streak, version, schema_changed, rollout_id"
// seq comes from its sequence. A conflict on the id or on the store's active run inserts
// nothing (and fails nothing): InsertRun tells the two apart afterwards.
constexpr const char* kInsertRun =
    "INSERT INTO pipeline_runs (" STOREPLANE_RUN_COLUMNS
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, "
    "$23, $24, $25) ON CONFLICT DO NOTHING RETURNING " STOREPLANE_RUN_COLUMNS;
// The id, store, kind and creation time never change ($25 is the expected version).
constexpr const char* kUpdateRunIfVersion =
    "UPDATE pipeline_runs SET state = $4, active = $5, release = $6, previous_release = $7, target_isolation = $8, "
    "provider = $9, external_id = $10, external_url = $11, requested_by = $12, request_id = $13, reason = $14, "
    "outcome_detail = $15, updated_at_ms = $16, triggered_at_ms = $17, finished_at_ms = $18, deadline_ms = $19, "
    "gate_opened_at_ms = $20, gate_streak = $21, version = $22, schema_changed = $23, rollout_id = $24 "
    "WHERE id = $1 AND store_id = $2 AND kind = $3 AND version = $25 RETURNING " STOREPLANE_RUN_COLUMNS;
constexpr const char* kProbeRunId = "SELECT 1 FROM pipeline_runs WHERE id = $1";
constexpr const char* kProbeRun = "SELECT store_id, kind, version FROM pipeline_runs WHERE id = $1";
constexpr const char* kProbeRollout = "SELECT 1 FROM rollouts WHERE id = $1";
constexpr const char* kSelectActiveRunOfStore = "SELECT id FROM pipeline_runs WHERE store_id = $1 AND active";
constexpr const char* kSelectOtherActiveRunOfStore =
    "SELECT id FROM pipeline_runs WHERE store_id = $1 AND active AND id <> $2";
constexpr const char* kSelectRunById = "SELECT " STOREPLANE_RUN_COLUMNS " FROM pipeline_runs WHERE id = $1";
constexpr const char* kSelectRunCursor = "SELECT seq, store_id, rollout_id FROM pipeline_runs WHERE id = $1";
// ListRuns is composed from these: the filters present (numbered in order), then the order.
constexpr const char* kListRunsBase = "SELECT " STOREPLANE_RUN_COLUMNS " FROM pipeline_runs WHERE seq < $1";
constexpr const char* kListActiveRuns =
    "SELECT " STOREPLANE_RUN_COLUMNS " FROM pipeline_runs WHERE active ORDER BY seq";
#undef STOREPLANE_RUN_COLUMNS
// Each release once, at the position of the newest verified run that reached it.
constexpr const char* kListVerifiedReleases =
    "SELECT release FROM pipeline_runs WHERE store_id = $1 AND kind IN ('deploy', 'rollback') "
    "AND state = 'verified' AND release <> '' GROUP BY release ORDER BY MAX(seq) DESC LIMIT $2";

#define STOREPLANE_OUTBOX_COLUMNS \
  "seq, run_id, provider, created_at_ms, next_attempt_at_ms, attempts, last_error, sent_at_ms, version"
constexpr const char* kInsertOutbox =
    "INSERT INTO outbox (run_id, provider, created_at_ms, next_attempt_at_ms, attempts, last_error, sent_at_ms, "
    "version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
// seq, run_id and created_at_ms never change.
constexpr const char* kUpdateOutboxIfVersion =
    "UPDATE outbox SET provider = $2, next_attempt_at_ms = $3, attempts = $4, last_error = $5, sent_at_ms = $6, "
    "version = $7 WHERE run_id = $1 AND version = $8";
constexpr const char* kProbeOutbox = "SELECT version FROM outbox WHERE run_id = $1";
constexpr const char* kSelectOutboxByRun = "SELECT " STOREPLANE_OUTBOX_COLUMNS " FROM outbox WHERE run_id = $1";
// Oldest due first: by the time each became due, then by insertion.
constexpr const char* kListDueOutbox = "SELECT " STOREPLANE_OUTBOX_COLUMNS
                                       " FROM outbox WHERE sent_at_ms IS NULL AND next_attempt_at_ms <= $1 "
                                       "ORDER BY next_attempt_at_ms, seq LIMIT $2";
#undef STOREPLANE_OUTBOX_COLUMNS

constexpr const char* kInsertCallbackDelivery =
    "INSERT INTO callback_deliveries (provider, delivery_id, run_id, received_at_ms) VALUES ($1, $2, $3, $4)";

// The texts compare bytewise, as in SQLite.
constexpr const char* kCountRunsByKindState =
    "SELECT kind, state, COUNT(*) FROM pipeline_runs GROUP BY kind, state ORDER BY kind COLLATE \"C\", state "
    "COLLATE \"C\"";
constexpr const char* kCountPendingOutbox = "SELECT COUNT(*) FROM outbox WHERE sent_at_ms IS NULL";

// Constraint names the effects decide on (kRunsSchema).
constexpr std::string_view kOneActivePerStore = "pipeline_runs_one_active_per_store";
constexpr std::string_view kRunRolloutForeignKey = "pipeline_runs_rollout_id_fkey";

// SQLSTATEs beyond pg_handle.h's.
constexpr std::string_view kCheckViolation = "23514";
constexpr std::string_view kForeignKeyViolation = "23503";
constexpr std::string_view kRestrictViolation = "23001";

// ---- helpers ----

Error RunNotFound(std::string_view id) { return Error::NotFound("run " + Quoted(id) + " not found"); }

Error RunBreaksSchema(const PipelineRunRecord& run) {
  return Error::Internal("run " + Quoted(run.id) + " has an unknown kind " + Quoted(run.kind) + " or state " +
                         Quoted(run.state) + ", or an active flag that disagrees with them");
}

// kConflict naming the store's active run (which the caller's write would have doubled),
// when it is known.
Error SecondActiveRun(const PipelineRunRecord& run, const std::optional<std::string>& active_run) {
  std::string message = "store " + Quoted(run.store_id) + " already has an active run";
  if (active_run) message += " " + Quoted(*active_run);
  return Error{ErrorCode::kConflict, message, {}};
}

// kNotFound for the parent row a run's insert or update found missing: its rollout when it
// names one that does not exist, else its store.
Error MissingParent(const PipelineRunRecord& run, bool rollout_missing) {
  if (rollout_missing) return Error::NotFound("rollout " + Quoted(run.rollout_id) + " not found");
  return Error::NotFound("store " + Quoted(run.store_id) + " not found");
}

// No rollout is stored as NULL (the column references rollouts).
std::optional<std::string> RolloutParam(const PipelineRunRecord& run) {
  if (run.rollout_id.empty()) return std::nullopt;
  return run.rollout_id;
}

// A run's columns as $1..$25 in STOREPLANE_RUN_COLUMNS order.
pg::Params InsertParams(const PipelineRunRecord& run) {
  pg::Params params;
  params.Add(run.id)
      .Add(run.store_id)
      .Add(run.kind)
      .Add(run.state)
      .Add(run.active)
      .Add(run.release)
      .Add(run.previous_release)
      .Add(run.target_isolation)
      .Add(run.provider)
      .Add(run.external_id)
      .Add(run.external_url)
      .Add(run.requested_by)
      .Add(run.request_id)
      .Add(run.reason)
      .Add(run.outcome_detail)
      .Add(run.created_at_ms)
      .Add(run.updated_at_ms)
      .Add(run.triggered_at_ms)
      .Add(run.finished_at_ms)
      .Add(run.deadline_ms)
      .Add(run.gate_opened_at_ms)
      .Add(run.gate_streak)
      .Add(run.version)
      .Add(run.schema_changed)
      .Add(RolloutParam(run));
  return params;
}

// kUpdateRunIfVersion's parameters: the columns without created_at_ms, then the expected version.
pg::Params UpdateParams(const PipelineRunRecord& run, std::int64_t expected_version) {
  pg::Params params;
  params.Add(run.id)
      .Add(run.store_id)
      .Add(run.kind)
      .Add(run.state)
      .Add(run.active)
      .Add(run.release)
      .Add(run.previous_release)
      .Add(run.target_isolation)
      .Add(run.provider)
      .Add(run.external_id)
      .Add(run.external_url)
      .Add(run.requested_by)
      .Add(run.request_id)
      .Add(run.reason)
      .Add(run.outcome_detail)
      .Add(run.updated_at_ms)
      .Add(run.triggered_at_ms)
      .Add(run.finished_at_ms)
      .Add(run.deadline_ms)
      .Add(run.gate_opened_at_ms)
      .Add(run.gate_streak)
      .Add(run.version)
      .Add(run.schema_changed)
      .Add(RolloutParam(run))
      .Add(expected_version);
  return params;
}

// Row `r` of a SELECT (or RETURNING) of STOREPLANE_RUN_COLUMNS.
PipelineRunRecord DecodeRun(const pg::Rows& rows, int r) {
  PipelineRunRecord run;
  run.id = rows.Text(r, 0);
  run.store_id = rows.Text(r, 1);
  run.kind = rows.Text(r, 2);
  run.state = rows.Text(r, 3);
  run.active = rows.Bool(r, 4);
  run.release = rows.Text(r, 5);
  run.previous_release = rows.Text(r, 6);
  run.target_isolation = rows.Text(r, 7);
  run.provider = rows.Text(r, 8);
  run.external_id = rows.Text(r, 9);
  run.external_url = rows.Text(r, 10);
  run.requested_by = rows.Text(r, 11);
  run.request_id = rows.Text(r, 12);
  run.reason = rows.Text(r, 13);
  run.outcome_detail = rows.Text(r, 14);
  run.created_at_ms = rows.Int64(r, 15);
  run.updated_at_ms = rows.Int64(r, 16);
  run.triggered_at_ms = rows.OptionalInt64(r, 17);
  run.finished_at_ms = rows.OptionalInt64(r, 18);
  run.deadline_ms = rows.Int64(r, 19);
  run.gate_opened_at_ms = rows.OptionalInt64(r, 20);
  run.gate_streak = static_cast<int>(rows.Int64(r, 21));
  run.version = rows.Int64(r, 22);
  run.schema_changed = rows.Bool(r, 23);
  run.rollout_id = rows.OptionalText(r, 24).value_or("");  // NULL reads as ""
  return run;
}

std::vector<PipelineRunRecord> DecodeRuns(const pg::Rows& rows) {
  std::vector<PipelineRunRecord> runs;
  runs.reserve(static_cast<std::size_t>(rows.size()));
  for (int r = 0; r < rows.size(); ++r) runs.push_back(DecodeRun(rows, r));
  return runs;
}

OutboxEntry DecodeOutbox(const pg::Rows& rows, int r) {
  OutboxEntry entry;
  entry.seq = rows.Int64(r, 0);
  entry.run_id = rows.Text(r, 1);
  entry.provider = rows.Text(r, 2);
  entry.created_at_ms = rows.Int64(r, 3);
  entry.next_attempt_at_ms = rows.Int64(r, 4);
  entry.attempts = static_cast<int>(rows.Int64(r, 5));
  entry.last_error = rows.Text(r, 6);
  entry.sent_at_ms = rows.OptionalInt64(r, 7);
  entry.version = rows.Int64(r, 8);
  return entry;
}

// The first column of the first row, when there is one.
Result<std::optional<std::string>> FirstText(pg::PgConnection& conn, const char* sql, const pg::Params& params,
                                             std::string_view what) {
  auto rows = conn.Exec(sql, params, what);
  if (!rows.ok()) return rows.error();
  if (rows->empty()) return std::optional<std::string>();
  return std::optional<std::string>(rows->Text(0, 0));
}

// True when `sql` ($1 = id) finds a row.
Result<bool> Exists(pg::PgConnection& conn, const char* sql, std::string_view id, std::string_view what) {
  auto rows = conn.Exec(sql, pg::Params().Add(id), what);
  if (!rows.ok()) return rows.error();
  return !rows->empty();
}

}  // namespace

// ---- reads ----

Result<PipelineRunRecord> PostgresRepository::GetRun(std::string_view id) {
  return WithConnection(*pool_, [&](pg::PgConnection& conn) -> Result<PipelineRunRecord> {
    auto rows = conn.Exec(kSelectRunById, pg::Params().Add(id), "read run");
    if (!rows.ok()) return rows.error();
    if (rows->empty()) return RunNotFound(id);
    return DecodeRun(*rows, 0);
  });
}

Result<std::vector<PipelineRunRecord>> PostgresRepository::ListRuns(const RunQuery& query) {
  return WithConnection(*pool_, [&](pg::PgConnection& conn) -> Result<std::vector<PipelineRunRecord>> {
    constexpr std::string_view kWhat = "list runs";
    SP_RETURN_IF_ERROR(CheckLimit(query.limit));
    // The cursor is the seq of `before_id` (a run's seq never changes, so no snapshot is
    // needed across the two queries).
    std::int64_t before_seq = std::numeric_limits<std::int64_t>::max();
    if (!query.before_id.empty()) {
      auto cursor = conn.Exec(kSelectRunCursor, pg::Params().Add(query.before_id), kWhat);
      if (!cursor.ok()) return cursor.error();
      if (cursor->empty() || (query.store_id && cursor->Text(0, 1) != *query.store_id) ||
          (query.rollout_id && cursor->OptionalText(0, 2).value_or("") != *query.rollout_id)) {
        return Error::Invalid("cursor " + Quoted(query.before_id) + " is not a run of this listing", "cursor");
      }
      before_seq = cursor->Int64(0, 0);
    }
    std::string sql = kListRunsBase;
    pg::Params params;
    params.Add(before_seq);
    const auto next = [&params] { return "$" + std::to_string(params.size() + 1); };
    if (query.store_id) {
      sql += " AND store_id = " + next();
      params.Add(*query.store_id);
    }
    if (query.state) {
      sql += " AND state = " + next();
      params.Add(*query.state);
    }
    if (query.active_only) sql += " AND active";
    if (query.rollout_id) {
      sql += " AND rollout_id = " + next();
      params.Add(*query.rollout_id);
    }
    sql += " ORDER BY seq DESC LIMIT " + next();
    params.Add(query.limit);
    auto rows = conn.Exec(sql.c_str(), params, kWhat);
    if (!rows.ok()) return rows.error();
    return DecodeRuns(*rows);
  });
}

Result<std::vector<PipelineRunRecord>> PostgresRepository::ListActiveRuns() {
  return WithConnection(*pool_, [&](pg::PgConnection& conn) -> Result<std::vector<PipelineRunRecord>> {
    auto rows = conn.Exec(kListActiveRuns, "list active runs");
    if (!rows.ok()) return rows.error();
    return DecodeRuns(*rows);
  });
}

Result<std::vector<OutboxEntry>> PostgresRepository::ListDueOutbox(std::int64_t now_ms, int limit) {
  return WithConnection(*pool_, [&](pg::PgConnection& conn) -> Result<std::vector<OutboxEntry>> {
    SP_RETURN_IF_ERROR(CheckLimit(limit));
    auto rows = conn.Exec(kListDueOutbox, pg::Params().Add(now_ms).Add(limit), "list due outbox entries");
    if (!rows.ok()) return rows.error();
    std::vector<OutboxEntry> entries;
    entries.reserve(static_cast<std::size_t>(rows->size()));
    for (int r = 0; r < rows->size(); ++r) entries.push_back(DecodeOutbox(*rows, r));
    return entries;
  });
}

Result<std::optional<OutboxEntry>> PostgresRepository::GetOutbox(std::string_view run_id) {
  return WithConnection(*pool_, [&](pg::PgConnection& conn) -> Result<std::optional<OutboxEntry>> {
    auto rows = conn.Exec(kSelectOutboxByRun, pg::Params().Add(run_id), "read outbox entry");
    if (!rows.ok()) return rows.error();
    if (rows->empty()) return std::optional<OutboxEntry>();
    return std::optional<OutboxEntry>(DecodeOutbox(*rows, 0));
  });
}

Result<std::vector<std::string>> PostgresRepository::ListVerifiedReleases(std::string_view store_id, int limit) {
  return WithConnection(*pool_, [&](pg::PgConnection& conn) -> Result<std::vector<std::string>> {
    SP_RETURN_IF_ERROR(CheckLimit(limit));
    auto rows = conn.Exec(kListVerifiedReleases, pg::Params().Add(store_id).Add(limit), "list verified releases");
    if (!rows.ok()) return rows.error();
    std::vector<std::string> releases;
    releases.reserve(static_cast<std::size_t>(rows->size()));
    for (int r = 0; r < rows->size(); ++r) releases.push_back(rows->Text(r, 0));
    return releases;
  });
}

Result<std::vector<Repository::RunGroupCount>> PostgresRepository::CountRunsByKindState() {
  return WithConnection(*pool_, [&](pg::PgConnection& conn) -> Result<std::vector<RunGroupCount>> {
    auto rows = conn.Exec(kCountRunsByKindState, "count runs by kind and state");
    if (!rows.ok()) return rows.error();
    std::vector<RunGroupCount> groups;
    groups.reserve(static_cast<std::size_t>(rows->size()));
    for (int r = 0; r < rows->size(); ++r) groups.push_back({rows->Text(r, 0), rows->Text(r, 1), rows->Int64(r, 2)});
    return groups;
  });
}

Result<std::int64_t> PostgresRepository::CountPendingOutbox() {
  return WithConnection(*pool_, [&](pg::PgConnection& conn) -> Result<std::int64_t> {
    auto rows = conn.Exec(kCountPendingOutbox, "count pending outbox entries");
    if (!rows.ok()) return rows.error();
    return rows->Int64(0, 0);
  });
}

namespace pg_detail {

// A run is history: never deleted (nor truncated), and its id, seq, store, kind and creation
// time never change (triggers). seq orders the runs (insertion order, the listing cursor).
// `active` is kept by the writer but must agree with the state (a CHECK: active exactly
// while not final; succeeded is final only for kinds without a health gate), and the partial
// unique index over the active rows allows at most one active run per store. rollout_id is
// NULL for none; the rollouts table is created after this one, so the reference is a
// trigger (checked at the end of the statement, like a foreign key, and failing as one:
// SQLSTATE 23503, constraint pipeline_runs_rollout_id_fkey). The outbox holds one trigger
// per run, written with it; the partial index keeps the due unsent entries cheap to find.
// callback_deliveries is append-only (no UPDATE, no DELETE, and no INSERT over a seen
// (provider, delivery_id), which also stops INSERT ... ON CONFLICT DO UPDATE): a delivery
// seen stays seen.
const char* const kRunsSchema = R"sql(
CREATE TABLE pipeline_runs (
  id text PRIMARY KEY,
  seq bigserial NOT NULL UNIQUE,
  store_id text NOT NULL CONSTRAINT pipeline_runs_store_id_fkey REFERENCES stores (id),
  kind text NOT NULL
    CHECK (kind IN ('provision', 'deploy', 'rollback', 'decommission', 'isolation_migration')),
  state text NOT NULL
    CHECK (state IN ('pending', 'triggered', 'running', 'succeeded', 'failed', 'cancelled', 'timed_out',
                     'verifying', 'verified', 'verification_failed')),
  active boolean NOT NULL,
  release text NOT NULL DEFAULT '',
  previous_release text NOT NULL DEFAULT '',
  target_isolation text NOT NULL DEFAULT '',
  provider text NOT NULL DEFAULT '',
  external_id text NOT NULL DEFAULT '',
  external_url text NOT NULL DEFAULT '',
  requested_by text NOT NULL,
  request_id text NOT NULL DEFAULT '',
  reason text NOT NULL DEFAULT '',
  outcome_detail text NOT NULL DEFAULT '',
  created_at_ms bigint NOT NULL,
  updated_at_ms bigint NOT NULL,
  triggered_at_ms bigint,
  finished_at_ms bigint,
  deadline_ms bigint NOT NULL,
  gate_opened_at_ms bigint,
  gate_streak bigint NOT NULL DEFAULT 0 CHECK (gate_streak >= 0),
  schema_changed boolean NOT NULL DEFAULT false,
  version bigint NOT NULL CHECK (version >= 1),
  rollout_id text,
  CHECK (kind IN ('deploy', 'rollback') OR state NOT IN ('verifying', 'verified', 'verification_failed')),
  CHECK (active = (state IN ('pending', 'triggered', 'running', 'verifying')
                   OR (state = 'succeeded' AND kind IN ('deploy', 'rollback'))))
);
CREATE UNIQUE INDEX pipeline_runs_one_active_per_store ON pipeline_runs (store_id) WHERE active;
CREATE INDEX pipeline_runs_by_store ON pipeline_runs (store_id, seq);
CREATE INDEX pipeline_runs_by_state ON pipeline_runs (state, seq);
CREATE INDEX pipeline_runs_active ON pipeline_runs (seq) WHERE active;
CREATE INDEX pipeline_runs_by_kind_state ON pipeline_runs (kind, state);
CREATE INDEX pipeline_runs_by_rollout ON pipeline_runs (rollout_id, seq) WHERE rollout_id IS NOT NULL;
CREATE TRIGGER pipeline_runs_no_delete BEFORE DELETE ON pipeline_runs
  FOR EACH ROW EXECUTE FUNCTION storeplane_append_only();
CREATE TRIGGER pipeline_runs_no_truncate BEFORE TRUNCATE ON pipeline_runs
  FOR EACH STATEMENT EXECUTE FUNCTION storeplane_append_only();
CREATE FUNCTION pipeline_runs_fixed_columns() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'the id, seq, store, kind and creation time of a run never change'
    USING ERRCODE = 'restrict_violation';
END $$;
CREATE TRIGGER pipeline_runs_fixed_columns BEFORE UPDATE OF id, seq, store_id, kind, created_at_ms ON pipeline_runs
  FOR EACH ROW
  WHEN (NEW.id IS DISTINCT FROM OLD.id OR NEW.seq IS DISTINCT FROM OLD.seq OR NEW.store_id IS DISTINCT FROM OLD.store_id
        OR NEW.kind IS DISTINCT FROM OLD.kind OR NEW.created_at_ms IS DISTINCT FROM OLD.created_at_ms)
  EXECUTE FUNCTION pipeline_runs_fixed_columns();
-- pipeline_runs.rollout_id references rollouts: the foreign key is added with the rollouts
-- table (kRolloutsSchema), which is created after this one.

CREATE TABLE outbox (
  seq bigserial PRIMARY KEY,
  run_id text NOT NULL UNIQUE REFERENCES pipeline_runs (id),
  provider text NOT NULL DEFAULT '',
  created_at_ms bigint NOT NULL,
  next_attempt_at_ms bigint NOT NULL,
  attempts bigint NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  last_error text NOT NULL DEFAULT '',
  sent_at_ms bigint,
  version bigint NOT NULL CHECK (version >= 1)
);
CREATE INDEX outbox_due ON outbox (next_attempt_at_ms, seq) WHERE sent_at_ms IS NULL;

CREATE TABLE callback_deliveries (
  provider text NOT NULL,
  delivery_id text NOT NULL,
  run_id text NOT NULL REFERENCES pipeline_runs (id),
  received_at_ms bigint NOT NULL,
  PRIMARY KEY (provider, delivery_id)
);
CREATE INDEX callback_deliveries_by_run ON callback_deliveries (run_id, received_at_ms);
CREATE TRIGGER callback_deliveries_no_update BEFORE UPDATE ON callback_deliveries
  FOR EACH ROW EXECUTE FUNCTION storeplane_append_only();
CREATE TRIGGER callback_deliveries_no_delete BEFORE DELETE ON callback_deliveries
  FOR EACH ROW EXECUTE FUNCTION storeplane_append_only();
CREATE TRIGGER callback_deliveries_no_truncate BEFORE TRUNCATE ON callback_deliveries
  FOR EACH STATEMENT EXECUTE FUNCTION storeplane_append_only();
CREATE FUNCTION callback_deliveries_insert_once() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM callback_deliveries WHERE provider = NEW.provider AND delivery_id = NEW.delivery_id) THEN
    RAISE EXCEPTION 'callback_deliveries is append-only' USING ERRCODE = 'restrict_violation';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER callback_deliveries_insert_once BEFORE INSERT ON callback_deliveries
  FOR EACH ROW EXECUTE FUNCTION callback_deliveries_insert_once();
)sql";

Status InsertRun(pg::PgConnection& conn, const InsertRunEffect& effect, WriteResult& result) {
  const PipelineRunRecord& run = effect.run;
  constexpr std::string_view kWhat = "insert run";
  // Which parent a failed reference means, decided before the statement that may fail:
  // the rollout when it does not exist (as SQLite reports it), else the store.
  bool rollout_missing = false;
  if (!run.rollout_id.empty()) {
    auto exists = Exists(conn, kProbeRollout, run.rollout_id, kWhat);
    if (!exists.ok()) return exists.error();
    rollout_missing = !*exists;
  }
  // Fails on a CHECK (first, as in SQLite) or on a missing parent (last); a taken id or a
  // second active run inserts nothing.
  auto inserted = conn.Exec(kInsertRun, InsertParams(run), kWhat);
  if (!inserted.ok()) {
    const pg::PgFailure& failure = conn.last_failure();
    if (failure.sqlstate == kCheckViolation) return RunBreaksSchema(run);
    if (failure.sqlstate == kForeignKeyViolation) {
      return MissingParent(run, rollout_missing || failure.constraint == kRunRolloutForeignKey);
    }
    return inserted.error();
  }
  if (inserted->empty()) {
    // A conflict. As in SQLite, the store's active run is reported before a taken id (its
    // unique index is checked before the primary key). Both are committed rows (a
    // concurrent insert was waited for), visible to these statements.
    if (run.active) {
      auto active = FirstText(conn, kSelectActiveRunOfStore, pg::Params().Add(run.store_id), kWhat);
      if (!active.ok()) return active.error();
      if (*active) return SecondActiveRun(run, *active);
    }
    auto taken = Exists(conn, kProbeRunId, run.id, kWhat);
    if (!taken.ok()) return taken.error();
    if (*taken) return Error{ErrorCode::kAlreadyExists, "run id " + Quoted(run.id) + " is already taken", "id"};
    // The store's active run ended since it stopped this insert.
    return SecondActiveRun(run, std::nullopt);
  }

  const OutboxEntry& entry = effect.outbox;
  pg::Params outbox;
  outbox.Add(run.id)
      .Add(entry.provider)
      .Add(entry.created_at_ms)
      .Add(entry.next_attempt_at_ms)
      .Add(entry.attempts)
      .Add(entry.last_error)
      .Add(entry.sent_at_ms)
      .Add(entry.version);
  if (auto written = conn.Exec(kInsertOutbox, outbox, kWhat); !written.ok()) {
    if (conn.last_failure().sqlstate == kCheckViolation) {
      return Error::Internal("the outbox entry of run " + Quoted(run.id) + " has negative attempts or version");
    }
    return written.error();
  }
  result.runs.push_back(DecodeRun(*inserted, 0));
  return Status::Ok();
}

Status UpdateRun(pg::PgConnection& conn, const UpdateRunEffect& effect, WriteResult& result) {
  const PipelineRunRecord& run = effect.updated;
  constexpr std::string_view kWhat = "update run";
  // The run an active update would double, named in the conflict (read first: the update
  // that fails on the unique index aborts the transaction).
  std::optional<std::string> other_active;
  if (run.active) {
    auto other = FirstText(conn, kSelectOtherActiveRunOfStore, pg::Params().Add(run.store_id).Add(run.id), kWhat);
    if (!other.ok()) return other.error();
    other_active = std::move(*other);
  }
  auto updated = conn.Exec(kUpdateRunIfVersion, UpdateParams(run, effect.expected_version), kWhat);
  if (!updated.ok()) {
    const pg::PgFailure& failure = conn.last_failure();
    if (failure.sqlstate == kCheckViolation) return RunBreaksSchema(run);
    if (failure.sqlstate == pg::kUniqueViolation && failure.constraint == kOneActivePerStore) {
      return SecondActiveRun(run, other_active);
    }
    // The store never changes here, so a missing parent is the rollout.
    if (failure.sqlstate == kForeignKeyViolation) {
      return MissingParent(run, failure.constraint == kRunRolloutForeignKey);
    }
    return updated.error();
  }
  if (updated->empty()) {
    auto probe = conn.Exec(kProbeRun, pg::Params().Add(run.id), kWhat);
    if (!probe.ok()) return probe.error();
    // A run of another store or kind is not the run the caller means.
    if (probe->empty() || probe->Text(0, 0) != run.store_id || probe->Text(0, 1) != run.kind) {
      return RunNotFound(run.id);
    }
    return Error{ErrorCode::kPreconditionFailed,
                 "run " + Quoted(run.id) + " has version " + std::to_string(probe->Int64(0, 2)) + ", not " +
                     std::to_string(effect.expected_version),
                 {}};
  }
  result.runs.push_back(DecodeRun(*updated, 0));
  return Status::Ok();
}

Status UpdateOutbox(pg::PgConnection& conn, const UpdateOutboxEffect& effect) {
  const OutboxEntry& entry = effect.updated;
  constexpr std::string_view kWhat = "update outbox entry";
  pg::Params params;
  params.Add(entry.run_id)
      .Add(entry.provider)
      .Add(entry.next_attempt_at_ms)
      .Add(entry.attempts)
      .Add(entry.last_error)
      .Add(entry.sent_at_ms)
      .Add(entry.version)
      .Add(effect.expected_version);
  auto updated = conn.Exec(kUpdateOutboxIfVersion, params, kWhat);
  if (!updated.ok()) {
    if (conn.last_failure().sqlstate == kCheckViolation) {
      return Error::Internal("the outbox entry of run " + Quoted(entry.run_id) + " has negative attempts");
    }
    return updated.error();
  }
  if (updated->affected() == 1) return Status::Ok();
  return VersionMismatch(conn, kProbeOutbox, "the outbox entry of run", entry.run_id, effect.expected_version, kWhat);
}

Status InsertCallbackDelivery(pg::PgConnection& conn, const InsertCallbackDeliveryEffect& effect) {
  constexpr std::string_view kWhat = "record callback delivery";
  auto inserted = conn.Exec(
      kInsertCallbackDelivery,
      pg::Params().Add(effect.provider).Add(effect.delivery_id).Add(effect.run_id).Add(effect.received_at_ms), kWhat);
  if (inserted.ok()) return Status::Ok();
  const pg::PgFailure& failure = conn.last_failure();
  if (failure.sqlstate == kForeignKeyViolation) return RunNotFound(effect.run_id);
  // The trigger that refuses an insert over a seen delivery, or the primary key (a
  // concurrent duplicate, waited for until it committed).
  if (failure.sqlstate == pg::kUniqueViolation || failure.sqlstate == kRestrictViolation) {
    return Error{ErrorCode::kAlreadyExists,
                 "callback delivery " + Quoted(effect.delivery_id) + " of provider " + Quoted(effect.provider) +
                     " was already received",
                 {}};
  }
  return inserted.error();
}

}  // namespace pg_detail

}  // namespace storeplane::db
