// PostgresRepository: fleet rollouts, their targets (one row per planned store) and their
// command inbox; the same rows, errors, orders and cursors as sqlite_rollouts.cc (the same
// tests run against both). A rollout's spec, plan, creator and creation time are written
// once, at insert; an update moves only its progress (and its targets' progress: a target's
// position and wave are fixed by the plan).
//
// A rollout may have 10,000 targets: they are inserted (and a step's changed targets
// updated) by one statement over unnest() of arrays, not one round trip each. That
// statement runs under a savepoint: when it breaks a constraint (a programming error, or a
// store that does not exist), the targets are gone over again one at a time, in order, so
// that the error (and the target it names) is the one SQLite returns, which writes them one
// at a time.
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
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

#define STOREPLANE_ROLLOUT_COLUMNS                                                                           \
  "id, environment, release, spec_json, plan_json, state, paused_from, current_wave, resume_at_ms, ending, " \
  "rollback_on_abort, failed_deploys, counts_json, created_by, request_id, created_at_ms, updated_at_ms, "   \
  "finished_at_ms, version"
// A rollout is active while its state is not final. The same text as the partial index
// rollouts_active, so that the planner can use it.
#define STOREPLANE_ROLLOUT_ACTIVE "state NOT IN ('succeeded', 'failed', 'aborted')"

constexpr const char* kInsertRollout =
    "INSERT INTO rollouts (" STOREPLANE_ROLLOUT_COLUMNS
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19) "
    "ON CONFLICT (id) DO NOTHING";
// Only the progress moves: the spec, plan, creator and creation time stay as inserted.
constexpr const char* kUpdateRolloutIfVersion =
    "UPDATE rollouts SET state = $2, paused_from = $3, current_wave = $4, resume_at_ms = $5, ending = $6, "
    "rollback_on_abort = $7, failed_deploys = $8, counts_json = $9, updated_at_ms = $10, finished_at_ms = $11, "
    "version = $12 WHERE id = $1 AND version = $13";
constexpr const char* kProbeRolloutVersion = "SELECT version FROM rollouts WHERE id = $1";
constexpr const char* kSelectRolloutById = "SELECT " STOREPLANE_ROLLOUT_COLUMNS " FROM rollouts WHERE id = $1";
constexpr const char* kSelectRolloutCursor = "SELECT created_at_ms, id FROM rollouts WHERE id = $1";
// ListRollouts is composed from these fragments: the filters present (their parameters
// numbered as they are added), then the order. The cursor is a row value: rollouts created
// before (created_at_ms, id) of `before_id`.
constexpr const char* kListRolloutsBase =
    "SELECT " STOREPLANE_ROLLOUT_COLUMNS " FROM rollouts WHERE (created_at_ms, id) < ($1, $2)";
constexpr const char* kListRolloutsAndActive = " AND " STOREPLANE_ROLLOUT_ACTIVE;
constexpr const char* kListActiveRollouts =
    "SELECT " STOREPLANE_ROLLOUT_COLUMNS " FROM rollouts WHERE " STOREPLANE_ROLLOUT_ACTIVE
    " ORDER BY created_at_ms, id";
#undef STOREPLANE_ROLLOUT_ACTIVE
#undef STOREPLANE_ROLLOUT_COLUMNS

#define STOREPLANE_TARGET_COLUMNS                                                                 \
  "rollout_id, store_id, position, wave, state, skip_reason, deploy_run_id, deploy_final_state, " \
  "previous_release, rollback_run_id, rollback_final_state, updated_at_ms"
// Every target in one statement: $1 the rollout, $2..$12 one array per column.
constexpr const char* kInsertTargets =
    "INSERT INTO rollout_targets (" STOREPLANE_TARGET_COLUMNS
    ") SELECT $1, u.store_id, u.position, u.wave, u.state, u.skip_reason, u.deploy_run_id, u.deploy_final_state, "
    "u.previous_release, u.rollback_run_id, u.rollback_final_state, u.updated_at_ms "
    "FROM unnest($2::text[], $3::bigint[], $4::bigint[], $5::text[], $6::text[], $7::text[], $8::text[], "
    "$9::text[], $10::text[], $11::text[], $12::bigint[]) "
    "AS u(store_id, position, wave, state, skip_reason, deploy_run_id, deploy_final_state, previous_release, "
    "rollback_run_id, rollback_final_state, updated_at_ms)";
constexpr const char* kInsertTarget = "INSERT INTO rollout_targets (" STOREPLANE_TARGET_COLUMNS
                                      ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";
// The first of the given stores (in array order) that does not exist.
constexpr const char* kFirstMissingStore =
    "SELECT u.store_id FROM unnest($1::text[]) WITH ORDINALITY AS u(store_id, n) "
    "WHERE NOT EXISTS (SELECT 1 FROM stores WHERE stores.id = u.store_id) ORDER BY u.n LIMIT 1";
// A target's rollout, store, position and wave never change: $1 the rollout, $2..$9 arrays.
constexpr const char* kUpdateTargets =
    "UPDATE rollout_targets AS t SET state = u.state, skip_reason = u.skip_reason, deploy_run_id = u.deploy_run_id, "
    "deploy_final_state = u.deploy_final_state, previous_release = u.previous_release, "
    "rollback_run_id = u.rollback_run_id, rollback_final_state = u.rollback_final_state, "
    "updated_at_ms = u.updated_at_ms "
    "FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], "
    "$10::bigint[]) AS u(store_id, state, skip_reason, deploy_run_id, deploy_final_state, previous_release, "
    "rollback_run_id, rollback_final_state, updated_at_ms) "
    "WHERE t.rollout_id = $1 AND t.store_id = u.store_id RETURNING t.store_id";
constexpr const char* kUpdateTarget =
    "UPDATE rollout_targets SET state = $3, skip_reason = $4, deploy_run_id = $5, deploy_final_state = $6, "
    "previous_release = $7, rollback_run_id = $8, rollback_final_state = $9, updated_at_ms = $10 "
    "WHERE rollout_id = $1 AND store_id = $2";
// ListRolloutTargets, composed like ListRollouts; LIMIT NULL is every row.
constexpr const char* kListTargetsBase =
    "SELECT " STOREPLANE_TARGET_COLUMNS " FROM rollout_targets WHERE rollout_id = $1 AND position > $2";
#undef STOREPLANE_TARGET_COLUMNS
constexpr const char* kProbeRollout = "SELECT 1 FROM rollouts WHERE id = $1";

// Command inserts of one rollout take turns on its row (a lock that conflicts with itself and
// with a step's update, not with foreign-key checks), so that their seqs (taken after it)
// follow their commit order: whoever lists a command has seen every earlier one, and a step
// that consumes through a seq cannot delete a command it never saw (SQLite's one writer
// gives the same).
constexpr const char* kLockRolloutForCommand = "SELECT 1 FROM rollouts WHERE id = $1 FOR NO KEY UPDATE";
constexpr const char* kInsertCommand =
    "INSERT INTO rollout_commands (rollout_id, kind, wave, rollback, principal_id, request_id, created_at_ms) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7)";
constexpr const char* kDeleteConsumedCommands = "DELETE FROM rollout_commands WHERE rollout_id = $1 AND seq <= $2";
constexpr const char* kListCommands =
    "SELECT seq, rollout_id, kind, wave, rollback, principal_id, request_id, created_at_ms FROM rollout_commands "
    "WHERE rollout_id = $1 ORDER BY seq";

constexpr const char* kTargetsSavepoint = "SAVEPOINT rollout_targets";
constexpr const char* kReleaseTargetsSavepoint = "RELEASE SAVEPOINT rollout_targets";
constexpr const char* kRollbackToTargetsSavepoint = "ROLLBACK TO SAVEPOINT rollout_targets";

// ---- helpers ----

constexpr std::string_view kCheckViolation = "23514";
constexpr std::string_view kForeignKeyViolation = "23503";

bool Failed(const pg::PgConnection& conn, std::string_view sqlstate) {
  return conn.last_failure().sqlstate == sqlstate;
}
// A constraint of the schema refused the statement (class 23: integrity constraint violation).
bool ConstraintViolation(const pg::PgConnection& conn) { return conn.last_failure().sqlstate.starts_with("23"); }

Error RolloutNotFound(std::string_view id) { return Error::NotFound("rollout " + Quoted(id) + " not found"); }

Error RolloutBreaksSchema(const RolloutRecord& rollout) {
  return Error::Internal("rollout " + Quoted(rollout.id) + " has an unknown state " + Quoted(rollout.state) +
                         ", paused_from " + Quoted(rollout.paused_from) + " or ending " + Quoted(rollout.ending) +
                         ", or a negative count or version");
}

Error TargetBreaksSchema(std::string_view rollout_id, const RolloutTargetRecord& target) {
  return Error::Internal("target " + Quoted(target.store_id) + " of rollout " + Quoted(rollout_id) +
                         " has an unknown state " + Quoted(target.state) + " or skip reason " +
                         Quoted(target.skip_reason) + ", or a negative position or wave");
}

Error StoreNotFound(std::string_view store_id) { return Error::NotFound("store " + Quoted(store_id) + " not found"); }

Error NotATarget(std::string_view rollout_id, std::string_view store_id) {
  return Error::NotFound("store " + Quoted(store_id) + " is not a target of rollout " + Quoted(rollout_id));
}

// A PostgreSQL array literal of texts ({"a","b"}), every element quoted.
std::string TextArray(const std::vector<const std::string*>& texts) {
  std::string out = "{";
  for (std::size_t i = 0; i < texts.size(); ++i) {
    if (i > 0) out += ',';
    out += '"';
    for (char c : *texts[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  out += '}';
  return out;
}

std::string IntArray(const std::vector<std::int64_t>& values) {
  std::string out = "{";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ',';
    out += std::to_string(values[i]);
  }
  out += '}';
  return out;
}

// One array of `targets`' values of a text member.
std::string TextColumn(const std::vector<RolloutTargetRecord>& targets, std::string RolloutTargetRecord::*member) {
  std::vector<const std::string*> texts;
  texts.reserve(targets.size());
  for (const RolloutTargetRecord& target : targets) texts.push_back(&(target.*member));
  return TextArray(texts);
}

template <typename T>
std::string IntColumn(const std::vector<RolloutTargetRecord>& targets, T RolloutTargetRecord::*member) {
  std::vector<std::int64_t> values;
  values.reserve(targets.size());
  for (const RolloutTargetRecord& target : targets) values.push_back(static_cast<std::int64_t>(target.*member));
  return IntArray(values);
}

// Every column of a rollout as $1..$19 in STOREPLANE_ROLLOUT_COLUMNS order.
pg::Params RolloutParams(const RolloutRecord& rollout) {
  pg::Params params;
  params.Add(rollout.id)
      .Add(rollout.environment)
      .Add(rollout.release)
      .Add(rollout.spec_json)
      .Add(rollout.plan_json)
      .Add(rollout.state)
      .Add(rollout.paused_from)
      .Add(rollout.current_wave)
      .Add(rollout.resume_at_ms)
      .Add(rollout.ending)
      .Add(rollout.rollback_on_abort)
      .Add(rollout.failed_deploys)
      .Add(rollout.counts_json)
      .Add(rollout.created_by)
      .Add(rollout.request_id)
      .Add(rollout.created_at_ms)
      .Add(rollout.updated_at_ms)
      .Add(rollout.finished_at_ms)
      .Add(rollout.version);
  return params;
}

RolloutRecord DecodeRollout(const pg::Rows& rows, int r) {
  RolloutRecord rollout;
  rollout.id = rows.Text(r, 0);
  rollout.environment = rows.Text(r, 1);
  rollout.release = rows.Text(r, 2);
  rollout.spec_json = rows.Text(r, 3);
  rollout.plan_json = rows.Text(r, 4);
  rollout.state = rows.Text(r, 5);
  rollout.paused_from = rows.Text(r, 6);
  rollout.current_wave = static_cast<int>(rows.Int64(r, 7));
  rollout.resume_at_ms = rows.OptionalInt64(r, 8);
  rollout.ending = rows.Text(r, 9);
  rollout.rollback_on_abort = rows.Bool(r, 10);
  rollout.failed_deploys = static_cast<int>(rows.Int64(r, 11));
  rollout.counts_json = rows.Text(r, 12);
  rollout.created_by = rows.Text(r, 13);
  rollout.request_id = rows.Text(r, 14);
  rollout.created_at_ms = rows.Int64(r, 15);
  rollout.updated_at_ms = rows.Int64(r, 16);
  rollout.finished_at_ms = rows.OptionalInt64(r, 17);
  rollout.version = rows.Int64(r, 18);
  return rollout;
}

RolloutTargetRecord DecodeTarget(const pg::Rows& rows, int r) {
  RolloutTargetRecord target;
  target.rollout_id = rows.Text(r, 0);
  target.store_id = rows.Text(r, 1);
  target.position = static_cast<int>(rows.Int64(r, 2));
  target.wave = static_cast<int>(rows.Int64(r, 3));
  target.state = rows.Text(r, 4);
  target.skip_reason = rows.Text(r, 5);
  target.deploy_run_id = rows.Text(r, 6);
  target.deploy_final_state = rows.Text(r, 7);
  target.previous_release = rows.Text(r, 8);
  target.rollback_run_id = rows.Text(r, 9);
  target.rollback_final_state = rows.Text(r, 10);
  target.updated_at_ms = rows.Int64(r, 11);
  return target;
}

RolloutCommandRecord DecodeCommand(const pg::Rows& rows, int r) {
  RolloutCommandRecord command;
  command.seq = rows.Int64(r, 0);
  command.rollout_id = rows.Text(r, 1);
  command.kind = rows.Text(r, 2);
  command.wave = static_cast<int>(rows.Int64(r, 3));
  command.rollback = rows.Bool(r, 4);
  command.principal_id = rows.Text(r, 5);
  command.request_id = rows.Text(r, 6);
  command.created_at_ms = rows.Int64(r, 7);
  return command;
}

// The rollout with this id as stored.
Result<RolloutRecord> ReadRollout(pg::PgConnection& conn, std::string_view id, std::string_view what) {
  auto rows = conn.Exec(kSelectRolloutById, pg::Params().Add(id), what);
  if (!rows.ok()) return rows.error();
  if (rows->empty()) return RolloutNotFound(id);
  return DecodeRollout(*rows, 0);
}

Result<std::vector<RolloutRecord>> SelectRollouts(pg::PgConnection& conn, const char* sql, const pg::Params& params,
                                                  std::string_view what) {
  auto rows = conn.Exec(sql, params, what);
  if (!rows.ok()) return rows.error();
  std::vector<RolloutRecord> rollouts;
  rollouts.reserve(static_cast<std::size_t>(rows->size()));
  for (int r = 0; r < rows->size(); ++r) rollouts.push_back(DecodeRollout(*rows, r));
  return rollouts;
}

// ---- targets, one at a time (SQLite's order of errors) ----

// Inserts the targets in order, one statement each; the first refused one decides the error,
// exactly as SQLite's insert loop does (per row: CHECK, then the unique keys, then the
// foreign keys). Ok when every one was inserted.
Status InsertTargetsOneByOne(pg::PgConnection& conn, std::string_view rollout_id,
                             const std::vector<RolloutTargetRecord>& targets) {
  constexpr std::string_view kWhat = "insert rollout target";
  for (const RolloutTargetRecord& target : targets) {
    pg::Params params;
    params.Add(rollout_id)
        .Add(target.store_id)
        .Add(target.position)
        .Add(target.wave)
        .Add(target.state)
        .Add(target.skip_reason)
        .Add(target.deploy_run_id)
        .Add(target.deploy_final_state)
        .Add(target.previous_release)
        .Add(target.rollback_run_id)
        .Add(target.rollback_final_state)
        .Add(target.updated_at_ms);
    auto inserted = conn.Exec(kInsertTarget, params, kWhat);
    if (inserted.ok()) continue;
    if (Failed(conn, pg::kUniqueViolation)) {
      return Error::Internal("rollout " + Quoted(rollout_id) + " lists store " + Quoted(target.store_id) +
                             " or position " + std::to_string(target.position) + " twice");
    }
    if (Failed(conn, kForeignKeyViolation)) return StoreNotFound(target.store_id);
    if (Failed(conn, kCheckViolation)) return TargetBreaksSchema(rollout_id, target);
    return inserted.error();
  }
  return Status::Ok();
}

Status UpdateTargetsOneByOne(pg::PgConnection& conn, std::string_view rollout_id,
                             const std::vector<RolloutTargetRecord>& targets) {
  constexpr std::string_view kWhat = "update rollout target";
  for (const RolloutTargetRecord& target : targets) {
    pg::Params params;
    params.Add(rollout_id)
        .Add(target.store_id)
        .Add(target.state)
        .Add(target.skip_reason)
        .Add(target.deploy_run_id)
        .Add(target.deploy_final_state)
        .Add(target.previous_release)
        .Add(target.rollback_run_id)
        .Add(target.rollback_final_state)
        .Add(target.updated_at_ms);
    auto updated = conn.Exec(kUpdateTarget, params, kWhat);
    if (!updated.ok()) {
      if (Failed(conn, kCheckViolation)) return TargetBreaksSchema(rollout_id, target);
      return updated.error();
    }
    if (updated->affected() != 1) return NotATarget(rollout_id, target.store_id);
  }
  return Status::Ok();
}

// ---- targets, all at once ----

Status InsertTargets(pg::PgConnection& conn, std::string_view rollout_id,
                     const std::vector<RolloutTargetRecord>& targets) {
  constexpr std::string_view kWhat = "insert rollout targets";
  if (targets.empty()) return Status::Ok();
  pg::Params params;
  params.Add(rollout_id)
      .Add(TextColumn(targets, &RolloutTargetRecord::store_id))
      .Add(IntColumn(targets, &RolloutTargetRecord::position))
      .Add(IntColumn(targets, &RolloutTargetRecord::wave))
      .Add(TextColumn(targets, &RolloutTargetRecord::state))
      .Add(TextColumn(targets, &RolloutTargetRecord::skip_reason))
      .Add(TextColumn(targets, &RolloutTargetRecord::deploy_run_id))
      .Add(TextColumn(targets, &RolloutTargetRecord::deploy_final_state))
      .Add(TextColumn(targets, &RolloutTargetRecord::previous_release))
      .Add(TextColumn(targets, &RolloutTargetRecord::rollback_run_id))
      .Add(TextColumn(targets, &RolloutTargetRecord::rollback_final_state))
      .Add(IntColumn(targets, &RolloutTargetRecord::updated_at_ms));
  SP_RETURN_IF_ERROR(conn.Script(kTargetsSavepoint, kWhat));
  auto inserted = conn.Exec(kInsertTargets, params, kWhat);
  if (inserted.ok()) return conn.Script(kReleaseTargetsSavepoint, kWhat);
  if (!ConstraintViolation(conn)) return inserted.error();
  // Foreign keys are checked at the end of the statement, after every row passed its CHECKs
  // and unique keys: a missing store is then the first problem in plan order too.
  const bool store_missing = Failed(conn, kForeignKeyViolation);
  SP_RETURN_IF_ERROR(conn.Script(kRollbackToTargetsSavepoint, kWhat));
  if (store_missing) {
    auto missing =
        conn.Exec(kFirstMissingStore, pg::Params().Add(TextColumn(targets, &RolloutTargetRecord::store_id)), kWhat);
    if (!missing.ok()) return missing.error();
    if (!missing->empty()) return StoreNotFound(missing->Text(0, 0));
    // Else the rollout itself (inserted just before, so not expected): one at a time says.
  }
  SP_RETURN_IF_ERROR(InsertTargetsOneByOne(conn, rollout_id, targets));
  return inserted.error();  // refused at once but not one at a time: say what PostgreSQL said
}

bool HasDuplicateStores(const std::vector<RolloutTargetRecord>& targets) {
  std::unordered_set<std::string_view> seen;
  for (const RolloutTargetRecord& target : targets) {
    if (!seen.insert(target.store_id).second) return true;
  }
  return false;
}

Status UpdateTargets(pg::PgConnection& conn, std::string_view rollout_id,
                     const std::vector<RolloutTargetRecord>& targets) {
  constexpr std::string_view kWhat = "update rollout targets";
  // One store named twice is updated twice, the last one winning: one at a time does that.
  if (targets.size() < 2 || HasDuplicateStores(targets)) return UpdateTargetsOneByOne(conn, rollout_id, targets);
  pg::Params params;
  params.Add(rollout_id)
      .Add(TextColumn(targets, &RolloutTargetRecord::store_id))
      .Add(TextColumn(targets, &RolloutTargetRecord::state))
      .Add(TextColumn(targets, &RolloutTargetRecord::skip_reason))
      .Add(TextColumn(targets, &RolloutTargetRecord::deploy_run_id))
      .Add(TextColumn(targets, &RolloutTargetRecord::deploy_final_state))
      .Add(TextColumn(targets, &RolloutTargetRecord::previous_release))
      .Add(TextColumn(targets, &RolloutTargetRecord::rollback_run_id))
      .Add(TextColumn(targets, &RolloutTargetRecord::rollback_final_state))
      .Add(IntColumn(targets, &RolloutTargetRecord::updated_at_ms));
  SP_RETURN_IF_ERROR(conn.Script(kTargetsSavepoint, kWhat));
  auto updated = conn.Exec(kUpdateTargets, params, kWhat);
  if (updated.ok()) {
    if (updated->size() != static_cast<int>(targets.size())) {
      // Every row passed its CHECKs: the first target (in the given order) not updated is
      // the first problem, as one at a time would find it.
      std::unordered_set<std::string> found;
      for (int r = 0; r < updated->size(); ++r) found.insert(updated->Text(r, 0));
      for (const RolloutTargetRecord& target : targets) {
        if (!found.contains(target.store_id)) return NotATarget(rollout_id, target.store_id);
      }
    }
    return conn.Script(kReleaseTargetsSavepoint, kWhat);
  }
  if (!ConstraintViolation(conn)) return updated.error();
  SP_RETURN_IF_ERROR(conn.Script(kRollbackToTargetsSavepoint, kWhat));
  SP_RETURN_IF_ERROR(UpdateTargetsOneByOne(conn, rollout_id, targets));
  return updated.error();
}

}  // namespace

// ---- reads ----

Result<RolloutRecord> PostgresRepository::GetRollout(std::string_view id) {
  return WithConnection(
      *pool_, [&](pg::PgConnection& conn) -> Result<RolloutRecord> { return ReadRollout(conn, id, "read rollout"); });
}

Result<std::vector<RolloutRecord>> PostgresRepository::ListRollouts(const RolloutQuery& query) {
  return WithConnection(*pool_, [&](pg::PgConnection& conn) -> Result<std::vector<RolloutRecord>> {
    constexpr std::string_view kWhat = "list rollouts";
    SP_RETURN_IF_ERROR(CheckLimit(query.limit));
    // The cursor is (created_at_ms, id) of `before_id`, which never change: reading it in
    // its own statement is safe.
    std::int64_t before_created_at_ms = std::numeric_limits<std::int64_t>::max();
    std::string before_id;
    if (!query.before_id.empty()) {
      auto cursor = conn.Exec(kSelectRolloutCursor, pg::Params().Add(query.before_id), kWhat);
      if (!cursor.ok()) return cursor.error();
      if (cursor->empty()) return Error::Invalid("cursor " + Quoted(query.before_id) + " is not a rollout", "cursor");
      before_created_at_ms = cursor->Int64(0, 0);
      before_id = cursor->Text(0, 1);
    }
    // Without a cursor: every rollout created before the end of time, (max, '').
    pg::Params params;
    params.Add(before_created_at_ms).Add(before_id);
    std::string sql = kListRolloutsBase;
    if (query.environment) {
      params.Add(*query.environment);
      sql += " AND environment = $" + std::to_string(params.size());
    }
    if (query.state) {
      params.Add(*query.state);
      sql += " AND state = $" + std::to_string(params.size());
    }
    if (query.active_only) sql += kListRolloutsAndActive;
    params.Add(query.limit);
    sql += " ORDER BY created_at_ms DESC, id DESC LIMIT $" + std::to_string(params.size());
    return SelectRollouts(conn, sql.c_str(), params, kWhat);
  });
}

Result<std::vector<RolloutRecord>> PostgresRepository::ListActiveRollouts() {
  return WithConnection(*pool_, [&](pg::PgConnection& conn) -> Result<std::vector<RolloutRecord>> {
    return SelectRollouts(conn, kListActiveRollouts, pg::Params(), "list active rollouts");
  });
}

Result<std::vector<RolloutTargetRecord>> PostgresRepository::ListRolloutTargets(std::string_view rollout_id,
                                                                                const RolloutTargetQuery& query) {
  return WithConnection(*pool_, [&](pg::PgConnection& conn) -> Result<std::vector<RolloutTargetRecord>> {
    constexpr std::string_view kWhat = "list rollout targets";
    if (query.limit != 0) SP_RETURN_IF_ERROR(CheckLimit(query.limit));
    pg::Params params;
    params.Add(rollout_id).Add(query.after_position);
    std::string sql = kListTargetsBase;
    if (query.wave) {
      params.Add(*query.wave);
      sql += " AND wave = $" + std::to_string(params.size());
    }
    if (query.state) {
      params.Add(*query.state);
      sql += " AND state = $" + std::to_string(params.size());
    }
    // LIMIT NULL: every row.
    if (query.limit == 0) {
      params.AddNull();
    } else {
      params.Add(query.limit);
    }
    sql += " ORDER BY position LIMIT $" + std::to_string(params.size()) + "::bigint";
    auto rows = conn.Exec(sql.c_str(), params, kWhat);
    if (!rows.ok()) return rows.error();
    std::vector<RolloutTargetRecord> targets;
    targets.reserve(static_cast<std::size_t>(rows->size()));
    for (int r = 0; r < rows->size(); ++r) targets.push_back(DecodeTarget(*rows, r));
    // No match: an unknown rollout, or none of its targets (rollouts are never deleted, so
    // the answer cannot change between the two statements).
    if (targets.empty()) {
      auto exists = conn.Exec(kProbeRollout, pg::Params().Add(rollout_id), kWhat);
      if (!exists.ok()) return exists.error();
      if (exists->empty()) return RolloutNotFound(rollout_id);
    }
    return targets;
  });
}

Result<std::vector<RolloutCommandRecord>> PostgresRepository::ListRolloutCommands(std::string_view rollout_id) {
  return WithConnection(*pool_, [&](pg::PgConnection& conn) -> Result<std::vector<RolloutCommandRecord>> {
    auto rows = conn.Exec(kListCommands, pg::Params().Add(rollout_id), "list rollout commands");
    if (!rows.ok()) return rows.error();
    std::vector<RolloutCommandRecord> commands;
    commands.reserve(static_cast<std::size_t>(rows->size()));
    for (int r = 0; r < rows->size(); ++r) commands.push_back(DecodeCommand(*rows, r));
    return commands;
  });
}

namespace pg_detail {

// Rollouts are history: never deleted (nor truncated). The spec, plan, creator and creation
// time of a rollout, and the rollout, store, position and wave of a target, never change.
// Commands wait in an inbox until a step consumes (deletes) them; seq comes from a sequence,
// so it keeps increasing after the newest command was deleted. Texts are checked like
// SQLite's (core/rollout.h); ids sort bytewise (COLLATE "C") as in SQLite, whatever the
// database's locale. Runs (created before this area) gain the reference to their rollout
// and its index here, when the runs area created pipeline_runs.
const char* const kRolloutsSchema = R"sql(
CREATE TABLE rollouts (
  id text COLLATE "C" PRIMARY KEY,
  environment text NOT NULL,
  release text NOT NULL,
  state text NOT NULL
    CHECK (state IN ('pending', 'running', 'waiting_between_waves', 'awaiting_approval', 'paused', 'halting',
                     'aborting', 'rolling_back', 'succeeded', 'failed', 'aborted')),
  paused_from text NOT NULL DEFAULT ''
    CHECK (paused_from IN ('', 'pending', 'running', 'waiting_between_waves', 'awaiting_approval', 'paused',
                           'halting', 'aborting', 'rolling_back', 'succeeded', 'failed', 'aborted')),
  current_wave bigint NOT NULL DEFAULT 0 CHECK (current_wave >= 0),
  resume_at_ms bigint,
  ending text NOT NULL DEFAULT '' CHECK (ending IN ('', 'failure_budget', 'abort')),
  rollback_on_abort boolean NOT NULL DEFAULT false,
  failed_deploys bigint NOT NULL DEFAULT 0 CHECK (failed_deploys >= 0),
  counts_json text NOT NULL DEFAULT '{}',
  created_by text NOT NULL,
  request_id text NOT NULL DEFAULT '',
  created_at_ms bigint NOT NULL,
  updated_at_ms bigint NOT NULL,
  finished_at_ms bigint,
  version bigint NOT NULL CHECK (version >= 1),
  spec_json text NOT NULL,
  plan_json text NOT NULL
);
CREATE INDEX rollouts_by_created_at ON rollouts (created_at_ms, id);
CREATE INDEX rollouts_by_environment ON rollouts (environment, created_at_ms, id);
CREATE INDEX rollouts_active ON rollouts (created_at_ms, id) WHERE state NOT IN ('succeeded', 'failed', 'aborted');
CREATE TRIGGER rollouts_no_delete BEFORE DELETE ON rollouts
  FOR EACH ROW EXECUTE FUNCTION storeplane_append_only();
CREATE TRIGGER rollouts_no_truncate BEFORE TRUNCATE ON rollouts
  FOR EACH STATEMENT EXECUTE FUNCTION storeplane_append_only();
CREATE FUNCTION rollouts_fixed_columns() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'the spec, plan, creator and creation time of a rollout never change'
    USING ERRCODE = 'restrict_violation';
END $$;
CREATE TRIGGER rollouts_fixed_columns
  BEFORE UPDATE OF id, environment, release, spec_json, plan_json, created_by, request_id, created_at_ms ON rollouts
  FOR EACH ROW
  WHEN (NEW.id IS DISTINCT FROM OLD.id OR NEW.environment IS DISTINCT FROM OLD.environment
        OR NEW.release IS DISTINCT FROM OLD.release OR NEW.spec_json IS DISTINCT FROM OLD.spec_json
        OR NEW.plan_json IS DISTINCT FROM OLD.plan_json OR NEW.created_by IS DISTINCT FROM OLD.created_by
        OR NEW.request_id IS DISTINCT FROM OLD.request_id OR NEW.created_at_ms IS DISTINCT FROM OLD.created_at_ms)
  EXECUTE FUNCTION rollouts_fixed_columns();

CREATE TABLE rollout_targets (
  rollout_id text COLLATE "C" NOT NULL CONSTRAINT rollout_targets_rollout_id_fkey REFERENCES rollouts (id),
  store_id text NOT NULL CONSTRAINT rollout_targets_store_id_fkey REFERENCES stores (id),
  position bigint NOT NULL CHECK (position >= 0),
  wave bigint NOT NULL CHECK (wave >= 0),
  state text NOT NULL
    CHECK (state IN ('waiting', 'deploying', 'succeeded', 'failed', 'skipped', 'rollback_waiting', 'rolling_back',
                     'rolled_back', 'rollback_failed', 'not_rolled_back', 'not_started')),
  skip_reason text NOT NULL DEFAULT ''
    CHECK (skip_reason IN ('', 'agent_offline', 'unhealthy', 'active_run', 'not_active', 'window_closed',
                           'already_at_release')),
  deploy_run_id text NOT NULL DEFAULT '',
  deploy_final_state text NOT NULL DEFAULT '',
  previous_release text NOT NULL DEFAULT '',
  rollback_run_id text NOT NULL DEFAULT '',
  rollback_final_state text NOT NULL DEFAULT '',
  updated_at_ms bigint NOT NULL,
  CONSTRAINT rollout_targets_pkey PRIMARY KEY (rollout_id, store_id),
  CONSTRAINT rollout_targets_position_key UNIQUE (rollout_id, position)
);
CREATE INDEX rollout_targets_by_wave ON rollout_targets (rollout_id, wave, position);
CREATE INDEX rollout_targets_by_state ON rollout_targets (rollout_id, state, position);
CREATE TRIGGER rollout_targets_no_delete BEFORE DELETE ON rollout_targets
  FOR EACH ROW EXECUTE FUNCTION storeplane_append_only();
CREATE TRIGGER rollout_targets_no_truncate BEFORE TRUNCATE ON rollout_targets
  FOR EACH STATEMENT EXECUTE FUNCTION storeplane_append_only();
CREATE FUNCTION rollout_targets_fixed_columns() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'the rollout, store, position and wave of a target never change'
    USING ERRCODE = 'restrict_violation';
END $$;
CREATE TRIGGER rollout_targets_fixed_columns
  BEFORE UPDATE OF rollout_id, store_id, position, wave ON rollout_targets
  FOR EACH ROW
  WHEN (NEW.rollout_id IS DISTINCT FROM OLD.rollout_id OR NEW.store_id IS DISTINCT FROM OLD.store_id
        OR NEW.position IS DISTINCT FROM OLD.position OR NEW.wave IS DISTINCT FROM OLD.wave)
  EXECUTE FUNCTION rollout_targets_fixed_columns();

CREATE TABLE rollout_commands (
  seq bigserial PRIMARY KEY,
  rollout_id text COLLATE "C" NOT NULL CONSTRAINT rollout_commands_rollout_id_fkey REFERENCES rollouts (id),
  kind text NOT NULL CHECK (kind IN ('pause', 'resume', 'abort', 'approve_wave')),
  wave bigint NOT NULL DEFAULT 0 CHECK (wave >= 0),
  rollback boolean NOT NULL DEFAULT false,
  principal_id text NOT NULL,
  request_id text NOT NULL DEFAULT '',
  created_at_ms bigint NOT NULL
);
CREATE INDEX rollout_commands_by_rollout ON rollout_commands (rollout_id, seq);

DO $$
BEGIN
  IF to_regclass('pipeline_runs') IS NOT NULL THEN
    -- pipeline_runs.rollout_id (NULL for none) references rollouts, created only now.
    IF NOT EXISTS (SELECT 1 FROM pg_constraint
                   WHERE conrelid = 'pipeline_runs'::regclass AND confrelid = 'rollouts'::regclass) THEN
      ALTER TABLE pipeline_runs ADD CONSTRAINT pipeline_runs_rollout_id_fkey
        FOREIGN KEY (rollout_id) REFERENCES rollouts (id);
    END IF;
    CREATE INDEX IF NOT EXISTS pipeline_runs_by_rollout ON pipeline_runs (rollout_id, seq)
      WHERE rollout_id IS NOT NULL;
  END IF;
END $$;
)sql";

Status InsertRollout(pg::PgConnection& conn, const InsertRolloutEffect& effect, WriteResult& result) {
  const RolloutRecord& rollout = effect.rollout;
  constexpr std::string_view kWhat = "insert rollout";
  auto inserted = conn.Exec(kInsertRollout, RolloutParams(rollout), kWhat);
  if (!inserted.ok()) {
    if (Failed(conn, kCheckViolation)) return RolloutBreaksSchema(rollout);
    return inserted.error();
  }
  if (inserted->affected() != 1) {
    return Error{ErrorCode::kAlreadyExists, "rollout id " + Quoted(rollout.id) + " is already taken", "id"};
  }
  SP_RETURN_IF_ERROR(InsertTargets(conn, rollout.id, effect.targets));
  result.rollouts.push_back(rollout);  // every column as given
  return Status::Ok();
}

Status UpdateRollout(pg::PgConnection& conn, const UpdateRolloutEffect& effect, WriteResult& result) {
  const RolloutRecord& rollout = effect.updated;
  constexpr std::string_view kWhat = "update rollout";
  pg::Params params;
  params.Add(rollout.id)
      .Add(rollout.state)
      .Add(rollout.paused_from)
      .Add(rollout.current_wave)
      .Add(rollout.resume_at_ms)
      .Add(rollout.ending)
      .Add(rollout.rollback_on_abort)
      .Add(rollout.failed_deploys)
      .Add(rollout.counts_json)
      .Add(rollout.updated_at_ms)
      .Add(rollout.finished_at_ms)
      .Add(rollout.version)
      .Add(effect.expected_version);
  auto updated = conn.Exec(kUpdateRolloutIfVersion, params, kWhat);
  if (!updated.ok()) {
    if (Failed(conn, kCheckViolation)) return RolloutBreaksSchema(rollout);
    return updated.error();
  }
  if (updated->affected() != 1) {
    return VersionMismatch(conn, kProbeRolloutVersion, "rollout", rollout.id, effect.expected_version, kWhat);
  }
  SP_RETURN_IF_ERROR(UpdateTargets(conn, rollout.id, effect.changed_targets));
  if (effect.consumed_commands_through > 0) {
    auto consumed =
        conn.Exec(kDeleteConsumedCommands, pg::Params().Add(rollout.id).Add(effect.consumed_commands_through),
                  "consume rollout commands");
    if (!consumed.ok()) return consumed.error();
  }
  auto stored = ReadRollout(conn, rollout.id, kWhat);
  if (!stored.ok()) return stored.error();
  result.rollouts.push_back(std::move(*stored));
  return Status::Ok();
}

Status InsertRolloutCommand(pg::PgConnection& conn, const InsertRolloutCommandEffect& effect) {
  const RolloutCommandRecord& command = effect.command;
  constexpr std::string_view kWhat = "insert rollout command";
  pg::Params params;
  params.Add(command.rollout_id)
      .Add(command.kind)
      .Add(command.wave)
      .Add(command.rollback)
      .Add(command.principal_id)
      .Add(command.request_id)
      .Add(command.created_at_ms);
  // Without the rollout the insert below says so: the row's CHECKs come before its foreign
  // key, as in SQLite.
  if (auto locked = conn.Exec(kLockRolloutForCommand, pg::Params().Add(command.rollout_id), kWhat); !locked.ok()) {
    return locked.error();
  }
  auto inserted = conn.Exec(kInsertCommand, params, kWhat);
  if (inserted.ok()) return Status::Ok();
  if (Failed(conn, kForeignKeyViolation)) return RolloutNotFound(command.rollout_id);
  if (Failed(conn, kCheckViolation)) {
    return Error::Internal("command to rollout " + Quoted(command.rollout_id) + " has an unknown kind " +
                           Quoted(command.kind) + " or a negative wave");
  }
  return inserted.error();
}

}  // namespace pg_detail

}  // namespace storeplane::db
