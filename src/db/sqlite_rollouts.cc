// The fleet-rollout part of SqliteRepository (schema v6): rollouts, their targets (one row per
// planned store) and their command inbox, the effects (run by Apply's effect visitor in
// sqlite_repository.cc) and the reads. A rollout's spec, plan, creator and creation time are
// written once, at insert; an update moves only its progress (and the targets' progress: a
// target's position and wave are fixed by the plan). States are stored as texts, checked by
// the schema; this file does not interpret them beyond "final" (succeeded, failed, aborted).
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "db/sqlite_repository_impl.h"

namespace storeplane::db {

using sqlite_detail::CheckLimit;
using sqlite_detail::Guarded;
using sqlite_detail::Quoted;

namespace {

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
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)";
// Only the progress moves: the spec, plan, creator and creation time stay as inserted.
constexpr const char* kUpdateRolloutIfVersion =
    "UPDATE rollouts SET state = ?2, paused_from = ?3, current_wave = ?4, resume_at_ms = ?5, ending = ?6, "
    "rollback_on_abort = ?7, failed_deploys = ?8, counts_json = ?9, updated_at_ms = ?10, finished_at_ms = ?11, "
    "version = ?12 WHERE id = ?1 AND version = ?13";
constexpr const char* kProbeRolloutVersion = "SELECT version FROM rollouts WHERE id = ?1";
constexpr const char* kSelectRolloutById = "SELECT " STOREPLANE_ROLLOUT_COLUMNS " FROM rollouts WHERE id = ?1";
constexpr const char* kSelectRolloutCursor = "SELECT created_at_ms, id FROM rollouts WHERE id = ?1";
// ListRollouts is composed from these fragments: the filters present, then the order. The
// cursor is a row value: rollouts created before (created_at_ms, id) of `before_id`.
constexpr const char* kListRolloutsBase =
    "SELECT " STOREPLANE_ROLLOUT_COLUMNS " FROM rollouts WHERE (created_at_ms, id) < (?1, ?2)";
constexpr const char* kListRolloutsAndEnvironment = " AND environment = ?3";
constexpr const char* kListRolloutsAndState = " AND state = ?4";
constexpr const char* kListRolloutsAndActive = " AND " STOREPLANE_ROLLOUT_ACTIVE;
constexpr const char* kListRolloutsOrderLimit = " ORDER BY created_at_ms DESC, id DESC LIMIT ?5";
constexpr const char* kListActiveRollouts =
    "SELECT " STOREPLANE_ROLLOUT_COLUMNS " FROM rollouts WHERE " STOREPLANE_ROLLOUT_ACTIVE
    " ORDER BY created_at_ms, id";
#undef STOREPLANE_ROLLOUT_ACTIVE
#undef STOREPLANE_ROLLOUT_COLUMNS

#define STOREPLANE_TARGET_COLUMNS                                                                 \
  "rollout_id, store_id, position, wave, state, skip_reason, deploy_run_id, deploy_final_state, " \
  "previous_release, rollback_run_id, rollback_final_state, updated_at_ms"
constexpr const char* kInsertTarget = "INSERT INTO rollout_targets (" STOREPLANE_TARGET_COLUMNS
                                      ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)";
// A target's rollout, store, position and wave never change (?3 and ?4 are not used).
constexpr const char* kUpdateTarget =
    "UPDATE rollout_targets SET state = ?5, skip_reason = ?6, deploy_run_id = ?7, deploy_final_state = ?8, "
    "previous_release = ?9, rollback_run_id = ?10, rollback_final_state = ?11, updated_at_ms = ?12 "
    "WHERE rollout_id = ?1 AND store_id = ?2";
// ListRolloutTargets, composed like ListRollouts; LIMIT -1 is every row.
constexpr const char* kListTargetsBase =
    "SELECT " STOREPLANE_TARGET_COLUMNS " FROM rollout_targets WHERE rollout_id = ?1 AND position > ?2";
constexpr const char* kListTargetsAndWave = " AND wave = ?3";
constexpr const char* kListTargetsAndState = " AND state = ?4";
constexpr const char* kListTargetsOrderLimit = " ORDER BY position LIMIT ?5";
#undef STOREPLANE_TARGET_COLUMNS
constexpr const char* kProbeRollout = "SELECT 1 FROM rollouts WHERE id = ?1";

constexpr const char* kInsertCommand =
    "INSERT INTO rollout_commands (rollout_id, kind, wave, rollback, principal_id, request_id, created_at_ms) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
constexpr const char* kDeleteConsumedCommands = "DELETE FROM rollout_commands WHERE rollout_id = ?1 AND seq <= ?2";
constexpr const char* kListCommands =
    "SELECT seq, rollout_id, kind, wave, rollback, principal_id, request_id, created_at_ms FROM rollout_commands "
    "WHERE rollout_id = ?1 ORDER BY seq";

// ---- helpers ----

bool IsForeignKeyViolation(int rc) { return rc == SQLITE_CONSTRAINT_FOREIGNKEY; }
bool IsCheckViolation(int rc) { return rc == SQLITE_CONSTRAINT_CHECK; }

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

std::int64_t Flag(bool value) { return value ? 1 : 0; }

// Binds every column of a rollout as ?1..?19 in STOREPLANE_ROLLOUT_COLUMNS order.
void BindRollout(Statement& stmt, const RolloutRecord& rollout) {
  stmt.Bind(1, std::string_view(rollout.id))
      .Bind(2, std::string_view(rollout.environment))
      .Bind(3, std::string_view(rollout.release))
      .Bind(4, std::string_view(rollout.spec_json))
      .Bind(5, std::string_view(rollout.plan_json))
      .Bind(6, std::string_view(rollout.state))
      .Bind(7, std::string_view(rollout.paused_from))
      .Bind(8, static_cast<std::int64_t>(rollout.current_wave))
      .Bind(9, rollout.resume_at_ms)
      .Bind(10, std::string_view(rollout.ending))
      .Bind(11, Flag(rollout.rollback_on_abort))
      .Bind(12, static_cast<std::int64_t>(rollout.failed_deploys))
      .Bind(13, std::string_view(rollout.counts_json))
      .Bind(14, std::string_view(rollout.created_by))
      .Bind(15, std::string_view(rollout.request_id))
      .Bind(16, rollout.created_at_ms)
      .Bind(17, rollout.updated_at_ms)
      .Bind(18, rollout.finished_at_ms)
      .Bind(19, rollout.version);
}

RolloutRecord DecodeRollout(const Statement& stmt) {
  RolloutRecord rollout;
  rollout.id = stmt.ColumnText(0);
  rollout.environment = stmt.ColumnText(1);
  rollout.release = stmt.ColumnText(2);
  rollout.spec_json = stmt.ColumnText(3);
  rollout.plan_json = stmt.ColumnText(4);
  rollout.state = stmt.ColumnText(5);
  rollout.paused_from = stmt.ColumnText(6);
  rollout.current_wave = static_cast<int>(stmt.ColumnInt64(7));
  rollout.resume_at_ms = stmt.ColumnOptionalInt64(8);
  rollout.ending = stmt.ColumnText(9);
  rollout.rollback_on_abort = stmt.ColumnInt64(10) != 0;
  rollout.failed_deploys = static_cast<int>(stmt.ColumnInt64(11));
  rollout.counts_json = stmt.ColumnText(12);
  rollout.created_by = stmt.ColumnText(13);
  rollout.request_id = stmt.ColumnText(14);
  rollout.created_at_ms = stmt.ColumnInt64(15);
  rollout.updated_at_ms = stmt.ColumnInt64(16);
  rollout.finished_at_ms = stmt.ColumnOptionalInt64(17);
  rollout.version = stmt.ColumnInt64(18);
  return rollout;
}

// Binds a target's columns as ?1..?12 in STOREPLANE_TARGET_COLUMNS order, as a target of
// `rollout_id` (a target names its rollout, or leaves it empty).
void BindTarget(Statement& stmt, std::string_view rollout_id, const RolloutTargetRecord& target) {
  stmt.Bind(1, rollout_id)
      .Bind(2, std::string_view(target.store_id))
      .Bind(3, static_cast<std::int64_t>(target.position))
      .Bind(4, static_cast<std::int64_t>(target.wave))
      .Bind(5, std::string_view(target.state))
      .Bind(6, std::string_view(target.skip_reason))
      .Bind(7, std::string_view(target.deploy_run_id))
      .Bind(8, std::string_view(target.deploy_final_state))
      .Bind(9, std::string_view(target.previous_release))
      .Bind(10, std::string_view(target.rollback_run_id))
      .Bind(11, std::string_view(target.rollback_final_state))
      .Bind(12, target.updated_at_ms);
}

RolloutTargetRecord DecodeTarget(const Statement& stmt) {
  RolloutTargetRecord target;
  target.rollout_id = stmt.ColumnText(0);
  target.store_id = stmt.ColumnText(1);
  target.position = static_cast<int>(stmt.ColumnInt64(2));
  target.wave = static_cast<int>(stmt.ColumnInt64(3));
  target.state = stmt.ColumnText(4);
  target.skip_reason = stmt.ColumnText(5);
  target.deploy_run_id = stmt.ColumnText(6);
  target.deploy_final_state = stmt.ColumnText(7);
  target.previous_release = stmt.ColumnText(8);
  target.rollback_run_id = stmt.ColumnText(9);
  target.rollback_final_state = stmt.ColumnText(10);
  target.updated_at_ms = stmt.ColumnInt64(11);
  return target;
}

RolloutCommandRecord DecodeCommand(const Statement& stmt) {
  RolloutCommandRecord command;
  command.seq = stmt.ColumnInt64(0);
  command.rollout_id = stmt.ColumnText(1);
  command.kind = stmt.ColumnText(2);
  command.wave = static_cast<int>(stmt.ColumnInt64(3));
  command.rollback = stmt.ColumnInt64(4) != 0;
  command.principal_id = stmt.ColumnText(5);
  command.request_id = stmt.ColumnText(6);
  command.created_at_ms = stmt.ColumnInt64(7);
  return command;
}

// Every row of an already bound statement.
Result<std::vector<RolloutRecord>> CollectRollouts(Statement& select, std::string_view what) {
  std::vector<RolloutRecord> rollouts;
  for (;;) {
    auto row = select.Step(what);
    if (!row.ok()) return row.error();
    if (!*row) break;
    rollouts.push_back(DecodeRollout(select));
  }
  return rollouts;
}

// The rollout with this id as stored (on any connection).
Result<RolloutRecord> ReadRollout(Connection& conn, std::string_view id, std::string_view what) {
  auto select = conn.Prepare(kSelectRolloutById, what);
  if (!select.ok()) return select.error();
  select->Bind(1, id);
  auto row = select->Step(what);
  if (!row.ok()) return row.error();
  if (!*row) return RolloutNotFound(id);
  return DecodeRollout(*select);
}

Result<bool> RolloutExists(Connection& conn, std::string_view id, std::string_view what) {
  auto probe = conn.Prepare(kProbeRollout, what);
  if (!probe.ok()) return probe.error();
  probe->Bind(1, id);
  return probe->Step(what);
}

Status CheckRolloutIds(const RolloutRecord& rollout) {
  if (rollout.id.empty() || rollout.environment.empty() || rollout.state.empty()) {
    return Error::Internal("a rollout needs an id, an environment and a state");
  }
  return Status::Ok();
}

Status CheckTargets(const RolloutRecord& rollout, const std::vector<RolloutTargetRecord>& targets) {
  for (const RolloutTargetRecord& target : targets) {
    if (target.store_id.empty()) {
      return Error::Internal("a target of rollout " + Quoted(rollout.id) + " has no store");
    }
    if (!target.rollout_id.empty() && target.rollout_id != rollout.id) {
      return Error::Internal("target " + Quoted(target.store_id) + " of rollout " + Quoted(rollout.id) +
                             " names rollout " + Quoted(target.rollout_id));
    }
  }
  return Status::Ok();
}

}  // namespace

// ---- effects ----

namespace sqlite_detail {

Status CheckRolloutEffect(const Effect& effect) {
  if (const auto* insert = std::get_if<InsertRolloutEffect>(&effect)) {
    SP_RETURN_IF_ERROR(CheckRolloutIds(insert->rollout));
    SP_RETURN_IF_ERROR(CheckTargets(insert->rollout, insert->targets));
  } else if (const auto* update = std::get_if<UpdateRolloutEffect>(&effect)) {
    SP_RETURN_IF_ERROR(CheckRolloutIds(update->updated));
    if (update->updated.version != update->expected_version + 1) {
      return Error::Internal("update of rollout " + Quoted(update->updated.id) + " must advance its version by one");
    }
    SP_RETURN_IF_ERROR(CheckTargets(update->updated, update->changed_targets));
  } else if (const auto* command = std::get_if<InsertRolloutCommandEffect>(&effect)) {
    if (command->command.rollout_id.empty() || command->command.kind.empty()) {
      return Error::Internal("a rollout command needs a rollout and a kind");
    }
  }
  return Status::Ok();
}

Result<RolloutRecord> InsertRollout(Connection& conn, const InsertRolloutEffect& effect) {
  const RolloutRecord& rollout = effect.rollout;
  constexpr std::string_view kWhat = "insert rollout";
  {
    auto insert = conn.Prepare(kInsertRollout, kWhat);
    if (!insert.ok()) return insert.error();
    BindRollout(*insert, rollout);
    if (auto st = insert->Run(kWhat); !st.ok()) {
      const int rc = insert->last_rc();
      if (IsUniqueViolation(rc)) {
        return Error{ErrorCode::kAlreadyExists, "rollout id " + Quoted(rollout.id) + " is already taken", "id"};
      }
      if (IsCheckViolation(rc)) return RolloutBreaksSchema(rollout);
      return st.error();
    }
  }

  // One statement for every target, reset between rows: a rollout may have 10,000 of them.
  constexpr std::string_view kWhatTarget = "insert rollout target";
  auto insert = conn.Prepare(kInsertTarget, kWhatTarget);
  if (!insert.ok()) return insert.error();
  for (const RolloutTargetRecord& target : effect.targets) {
    insert->Reset();
    BindTarget(*insert, rollout.id, target);
    if (auto st = insert->Run(kWhatTarget); !st.ok()) {
      const int rc = insert->last_rc();
      if (IsUniqueViolation(rc)) {
        return Error::Internal("rollout " + Quoted(rollout.id) + " lists store " + Quoted(target.store_id) +
                               " or position " + std::to_string(target.position) + " twice");
      }
      if (IsForeignKeyViolation(rc)) return Error::NotFound("store " + Quoted(target.store_id) + " not found");
      if (IsCheckViolation(rc)) return TargetBreaksSchema(rollout.id, target);
      return st.error();
    }
  }
  return rollout;  // every column as given
}

Result<RolloutRecord> UpdateRollout(Connection& conn, const UpdateRolloutEffect& effect) {
  const RolloutRecord& rollout = effect.updated;
  constexpr std::string_view kWhat = "update rollout";
  {
    auto update = conn.Prepare(kUpdateRolloutIfVersion, kWhat);
    if (!update.ok()) return update.error();
    update->Bind(1, std::string_view(rollout.id))
        .Bind(2, std::string_view(rollout.state))
        .Bind(3, std::string_view(rollout.paused_from))
        .Bind(4, static_cast<std::int64_t>(rollout.current_wave))
        .Bind(5, rollout.resume_at_ms)
        .Bind(6, std::string_view(rollout.ending))
        .Bind(7, Flag(rollout.rollback_on_abort))
        .Bind(8, static_cast<std::int64_t>(rollout.failed_deploys))
        .Bind(9, std::string_view(rollout.counts_json))
        .Bind(10, rollout.updated_at_ms)
        .Bind(11, rollout.finished_at_ms)
        .Bind(12, rollout.version)
        .Bind(13, effect.expected_version);
    if (auto st = update->Run(kWhat); !st.ok()) {
      if (IsCheckViolation(update->last_rc())) return RolloutBreaksSchema(rollout);
      return st.error();
    }
    if (conn.changes() != 1) {
      auto probe = conn.Prepare(kProbeRolloutVersion, kWhat);
      if (!probe.ok()) return probe.error();
      probe->Bind(1, std::string_view(rollout.id));
      auto row = probe->Step(kWhat);
      if (!row.ok()) return row.error();
      if (!*row) return RolloutNotFound(rollout.id);
      return Error{ErrorCode::kPreconditionFailed,
                   "rollout " + Quoted(rollout.id) + " has version " + std::to_string(probe->ColumnInt64(0)) +
                       ", not " + std::to_string(effect.expected_version),
                   {}};
    }
  }

  if (!effect.changed_targets.empty()) {
    constexpr std::string_view kWhatTarget = "update rollout target";
    auto update = conn.Prepare(kUpdateTarget, kWhatTarget);
    if (!update.ok()) return update.error();
    for (const RolloutTargetRecord& target : effect.changed_targets) {
      update->Reset();
      BindTarget(*update, rollout.id, target);
      if (auto st = update->Run(kWhatTarget); !st.ok()) {
        if (IsCheckViolation(update->last_rc())) return TargetBreaksSchema(rollout.id, target);
        return st.error();
      }
      if (conn.changes() != 1) {
        return Error::NotFound("store " + Quoted(target.store_id) + " is not a target of rollout " +
                               Quoted(rollout.id));
      }
    }
  }

  if (effect.consumed_commands_through > 0) {
    constexpr std::string_view kWhatCommands = "consume rollout commands";
    auto consume = conn.Prepare(kDeleteConsumedCommands, kWhatCommands);
    if (!consume.ok()) return consume.error();
    consume->Bind(1, std::string_view(rollout.id)).Bind(2, effect.consumed_commands_through);
    SP_RETURN_IF_ERROR(consume->Run(kWhatCommands));
  }
  return ReadRollout(conn, rollout.id, kWhat);
}

Status InsertRolloutCommand(Connection& conn, const InsertRolloutCommandEffect& effect) {
  const RolloutCommandRecord& command = effect.command;
  constexpr std::string_view kWhat = "insert rollout command";
  auto insert = conn.Prepare(kInsertCommand, kWhat);
  if (!insert.ok()) return insert.error();
  insert->Bind(1, std::string_view(command.rollout_id))
      .Bind(2, std::string_view(command.kind))
      .Bind(3, static_cast<std::int64_t>(command.wave))
      .Bind(4, Flag(command.rollback))
      .Bind(5, std::string_view(command.principal_id))
      .Bind(6, std::string_view(command.request_id))
      .Bind(7, command.created_at_ms);
  if (auto st = insert->Run(kWhat); !st.ok()) {
    const int rc = insert->last_rc();
    if (IsForeignKeyViolation(rc)) return RolloutNotFound(command.rollout_id);
    if (IsCheckViolation(rc)) {
      return Error::Internal("command to rollout " + Quoted(command.rollout_id) + " has an unknown kind " +
                             Quoted(command.kind) + " or a negative wave");
    }
    return st;
  }
  return Status::Ok();
}

}  // namespace sqlite_detail

// ---- SqliteRepository: reads ----

Result<RolloutRecord> SqliteRepository::GetRollout(std::string_view id) {
  return Guarded([&]() -> Result<RolloutRecord> {
    auto conn = readers_->Acquire();
    return ReadRollout(*conn, id, "read rollout");
  });
}

Result<std::vector<RolloutRecord>> SqliteRepository::ListRollouts(const RolloutQuery& query) {
  return Guarded([&]() -> Result<std::vector<RolloutRecord>> {
    constexpr std::string_view kWhat = "list rollouts";
    SP_RETURN_IF_ERROR(CheckLimit(query.limit));
    auto conn = readers_->Acquire();
    // The cursor is (created_at_ms, id) of `before_id`, which never change.
    std::int64_t before_created_at_ms = std::numeric_limits<std::int64_t>::max();
    std::string before_id;
    if (!query.before_id.empty()) {
      auto cursor = conn->Prepare(kSelectRolloutCursor, kWhat);
      if (!cursor.ok()) return cursor.error();
      cursor->Bind(1, std::string_view(query.before_id));
      auto row = cursor->Step(kWhat);
      if (!row.ok()) return row.error();
      if (!*row) return Error::Invalid("cursor " + Quoted(query.before_id) + " is not a rollout", "cursor");
      before_created_at_ms = cursor->ColumnInt64(0);
      before_id = cursor->ColumnText(1);
    }
    std::string sql = kListRolloutsBase;
    if (query.environment) sql += kListRolloutsAndEnvironment;
    if (query.state) sql += kListRolloutsAndState;
    if (query.active_only) sql += kListRolloutsAndActive;
    sql += kListRolloutsOrderLimit;
    auto select = conn->Prepare(sql.c_str(), kWhat);
    if (!select.ok()) return select.error();
    // Without a cursor: every rollout created before the end of time, (max, '').
    select->Bind(1, before_created_at_ms).Bind(2, std::string_view(before_id));
    if (query.environment) select->Bind(3, std::string_view(*query.environment));
    if (query.state) select->Bind(4, std::string_view(*query.state));
    select->Bind(5, static_cast<std::int64_t>(query.limit));
    return CollectRollouts(*select, kWhat);
  });
}

Result<std::vector<RolloutRecord>> SqliteRepository::ListActiveRollouts() {
  return Guarded([&]() -> Result<std::vector<RolloutRecord>> {
    constexpr std::string_view kWhat = "list active rollouts";
    auto conn = readers_->Acquire();
    auto select = conn->Prepare(kListActiveRollouts, kWhat);
    if (!select.ok()) return select.error();
    return CollectRollouts(*select, kWhat);
  });
}

Result<std::vector<RolloutTargetRecord>> SqliteRepository::ListRolloutTargets(std::string_view rollout_id,
                                                                              const RolloutTargetQuery& query) {
  return Guarded([&]() -> Result<std::vector<RolloutTargetRecord>> {
    constexpr std::string_view kWhat = "list rollout targets";
    if (query.limit != 0) SP_RETURN_IF_ERROR(CheckLimit(query.limit));
    std::string sql = kListTargetsBase;
    if (query.wave) sql += kListTargetsAndWave;
    if (query.state) sql += kListTargetsAndState;
    sql += kListTargetsOrderLimit;
    auto conn = readers_->Acquire();
    auto select = conn->Prepare(sql.c_str(), kWhat);
    if (!select.ok()) return select.error();
    select->Bind(1, rollout_id).Bind(2, static_cast<std::int64_t>(query.after_position));
    if (query.wave) select->Bind(3, static_cast<std::int64_t>(*query.wave));
    if (query.state) select->Bind(4, std::string_view(*query.state));
    select->Bind(5, static_cast<std::int64_t>(query.limit == 0 ? -1 : query.limit));
    std::vector<RolloutTargetRecord> targets;
    for (;;) {
      auto row = select->Step(kWhat);
      if (!row.ok()) return row.error();
      if (!*row) break;
      targets.push_back(DecodeTarget(*select));
    }
    // No match: an unknown rollout, or none of its targets (rollouts are never deleted, so
    // the answer cannot change between the two queries).
    if (targets.empty()) {
      auto exists = RolloutExists(*conn, rollout_id, kWhat);
      if (!exists.ok()) return exists.error();
      if (!*exists) return RolloutNotFound(rollout_id);
    }
    return targets;
  });
}

Result<std::vector<RolloutCommandRecord>> SqliteRepository::ListRolloutCommands(std::string_view rollout_id) {
  return Guarded([&]() -> Result<std::vector<RolloutCommandRecord>> {
    constexpr std::string_view kWhat = "list rollout commands";
    auto conn = readers_->Acquire();
    auto select = conn->Prepare(kListCommands, kWhat);
    if (!select.ok()) return select.error();
    select->Bind(1, rollout_id);
    std::vector<RolloutCommandRecord> commands;
    for (;;) {
      auto row = select->Step(kWhat);
      if (!row.ok()) return row.error();
      if (!*row) break;
      commands.push_back(DecodeCommand(*select));
    }
    return commands;
  });
}

}  // namespace storeplane::db
