// The pipeline-run part of SqliteRepository (schema v4; v6 adds the rollout of a run): runs,
// their outbox entries and the callback deliveries seen, their effects (run by Apply's effect
// visitor in sqlite_repository.cc) and their reads. The database holds the invariants: one
// active run per store (a partial unique index), `active` agreeing with the state, a kind and
// state from the known texts (CHECKs), a delivery id accepted once (primary key and an insert
// trigger). Kinds and states are stored as texts; this file does not interpret them.
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

#define STOREPLANE_RUN_COLUMNS                                                                                      \
  "id, store_id, kind, state, active, release, previous_release, target_isolation, provider, external_id, "         \
  "external_url, requested_by, request_id, reason, outcome_detail, created_at_ms, updated_at_ms, triggered_at_ms, " \
  "finished_at_ms, deadline_ms, gate_opened_at_ms, gate_streak, version, schema_changed, rollout_id"
// seq follows the last one: there is one writer, and runs are never deleted.
constexpr const char* kInsertRun =
    "INSERT INTO pipeline_runs (seq, " STOREPLANE_RUN_COLUMNS
    ") VALUES ((SELECT COALESCE(MAX(seq), 0) + 1 FROM pipeline_runs), ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, "
    "?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?26)";
// The id, store, kind and creation time never change (?16, created_at_ms, is not used; ?25 is
// the expected version).
constexpr const char* kUpdateRunIfVersion =
    "UPDATE pipeline_runs SET state = ?4, active = ?5, release = ?6, previous_release = ?7, target_isolation = ?8, "
    "provider = ?9, external_id = ?10, external_url = ?11, requested_by = ?12, request_id = ?13, reason = ?14, "
    "outcome_detail = ?15, updated_at_ms = ?17, triggered_at_ms = ?18, finished_at_ms = ?19, deadline_ms = ?20, "
    "gate_opened_at_ms = ?21, gate_streak = ?22, version = ?23, schema_changed = ?24, rollout_id = ?26 "
    "WHERE id = ?1 AND store_id = ?2 AND kind = ?3 AND version = ?25";
constexpr const char* kProbeRun = "SELECT store_id, kind, version FROM pipeline_runs WHERE id = ?1";
constexpr const char* kProbeRollout = "SELECT 1 FROM rollouts WHERE id = ?1";
constexpr const char* kSelectActiveRunOfStore = "SELECT id FROM pipeline_runs WHERE store_id = ?1 AND active = 1";
constexpr const char* kSelectRunById = "SELECT " STOREPLANE_RUN_COLUMNS " FROM pipeline_runs WHERE id = ?1";
constexpr const char* kSelectRunCursor = "SELECT seq, store_id, rollout_id FROM pipeline_runs WHERE id = ?1";
// ListRuns is composed from these fragments: the filters present, then the order.
constexpr const char* kListRunsBase = "SELECT " STOREPLANE_RUN_COLUMNS " FROM pipeline_runs WHERE seq < ?1";
constexpr const char* kListRunsAndStore = " AND store_id = ?2";
constexpr const char* kListRunsAndState = " AND state = ?3";
constexpr const char* kListRunsAndActive = " AND active = 1";
constexpr const char* kListRunsAndRollout = " AND rollout_id = ?5";
constexpr const char* kListRunsOrderLimit = " ORDER BY seq DESC LIMIT ?4";
constexpr const char* kListActiveRuns =
    "SELECT " STOREPLANE_RUN_COLUMNS " FROM pipeline_runs WHERE active = 1 ORDER BY seq";
#undef STOREPLANE_RUN_COLUMNS
// Each release once, at the position of the newest verified run that reached it. The unary
// + keeps the planner on the store's runs (pipeline_runs_by_store) rather than every
// verified run of every store (pipeline_runs_by_state).
constexpr const char* kListVerifiedReleases =
    "SELECT release FROM pipeline_runs WHERE store_id = ?1 AND kind IN ('deploy', 'rollback') "
    "AND +state = 'verified' AND release <> '' GROUP BY release ORDER BY MAX(seq) DESC LIMIT ?2";

#define STOREPLANE_OUTBOX_COLUMNS \
  "seq, run_id, provider, created_at_ms, next_attempt_at_ms, attempts, last_error, sent_at_ms, version"
constexpr const char* kInsertOutbox =
    "INSERT INTO outbox (run_id, provider, created_at_ms, next_attempt_at_ms, attempts, last_error, sent_at_ms, "
    "version) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
// seq, run_id and created_at_ms never change.
constexpr const char* kUpdateOutboxIfVersion =
    "UPDATE outbox SET provider = ?2, next_attempt_at_ms = ?3, attempts = ?4, last_error = ?5, sent_at_ms = ?6, "
    "version = ?7 WHERE run_id = ?1 AND version = ?8";
constexpr const char* kProbeOutbox = "SELECT version FROM outbox WHERE run_id = ?1";
constexpr const char* kSelectOutboxByRun = "SELECT " STOREPLANE_OUTBOX_COLUMNS " FROM outbox WHERE run_id = ?1";
// Oldest due first: by the time each became due, then by insertion.
constexpr const char* kListDueOutbox = "SELECT " STOREPLANE_OUTBOX_COLUMNS
                                       " FROM outbox WHERE sent_at_ms IS NULL AND next_attempt_at_ms <= ?1 "
                                       "ORDER BY next_attempt_at_ms, seq LIMIT ?2";
#undef STOREPLANE_OUTBOX_COLUMNS

constexpr const char* kInsertCallbackDelivery =
    "INSERT INTO callback_deliveries (provider, delivery_id, run_id, received_at_ms) VALUES (?1, ?2, ?3, ?4)";

// ---- helpers ----

bool IsForeignKeyViolation(int rc) { return rc == SQLITE_CONSTRAINT_FOREIGNKEY; }
bool IsCheckViolation(int rc) { return rc == SQLITE_CONSTRAINT_CHECK; }

Error RunNotFound(std::string_view id) { return Error::NotFound("run " + Quoted(id) + " not found"); }

Error RunBreaksSchema(const PipelineRunRecord& run) {
  return Error::Internal("run " + Quoted(run.id) + " has an unknown kind " + Quoted(run.kind) + " or state " +
                         Quoted(run.state) + ", or an active flag that disagrees with them");
}

// kConflict naming the store's active run (which the caller's write would have doubled).
Error SecondActiveRun(Connection& conn, const PipelineRunRecord& run, std::string_view what) {
  std::string message = "store " + Quoted(run.store_id) + " already has an active run";
  auto probe = conn.Prepare(kSelectActiveRunOfStore, what);
  if (probe.ok()) {
    probe->Bind(1, std::string_view(run.store_id));
    auto row = probe->Step(what);
    if (row.ok() && *row) message += " " + Quoted(probe->ColumnText(0));
  }
  return Error{ErrorCode::kConflict, message, {}};
}

// kNotFound for the parent row a run's insert or update found missing: its rollout when it
// names one that does not exist, else its store.
Error MissingParent(Connection& conn, const PipelineRunRecord& run, std::string_view what) {
  if (!run.rollout_id.empty()) {
    auto probe = conn.Prepare(kProbeRollout, what);
    if (probe.ok()) {
      probe->Bind(1, std::string_view(run.rollout_id));
      auto row = probe->Step(what);
      if (row.ok() && !*row) return Error::NotFound("rollout " + Quoted(run.rollout_id) + " not found");
    }
  }
  return Error::NotFound("store " + Quoted(run.store_id) + " not found");
}

// Binds a run's columns as ?1..?24 and ?26 (rollout_id) in STOREPLANE_RUN_COLUMNS order; ?25
// is left to the update's expected version. No rollout is stored as NULL (the column
// references rollouts).
void BindRun(Statement& stmt, const PipelineRunRecord& run) {
  stmt.Bind(1, std::string_view(run.id))
      .Bind(2, std::string_view(run.store_id))
      .Bind(3, std::string_view(run.kind))
      .Bind(4, std::string_view(run.state))
      .Bind(5, static_cast<std::int64_t>(run.active ? 1 : 0))
      .Bind(6, std::string_view(run.release))
      .Bind(7, std::string_view(run.previous_release))
      .Bind(8, std::string_view(run.target_isolation))
      .Bind(9, std::string_view(run.provider))
      .Bind(10, std::string_view(run.external_id))
      .Bind(11, std::string_view(run.external_url))
      .Bind(12, std::string_view(run.requested_by))
      .Bind(13, std::string_view(run.request_id))
      .Bind(14, std::string_view(run.reason))
      .Bind(15, std::string_view(run.outcome_detail))
      .Bind(16, run.created_at_ms)
      .Bind(17, run.updated_at_ms)
      .Bind(18, run.triggered_at_ms)
      .Bind(19, run.finished_at_ms)
      .Bind(20, run.deadline_ms)
      .Bind(21, run.gate_opened_at_ms)
      .Bind(22, static_cast<std::int64_t>(run.gate_streak))
      .Bind(23, run.version)
      .Bind(24, static_cast<std::int64_t>(run.schema_changed ? 1 : 0));
  if (run.rollout_id.empty()) {
    stmt.BindNull(26);
  } else {
    stmt.Bind(26, std::string_view(run.rollout_id));
  }
}

PipelineRunRecord DecodeRun(const Statement& stmt) {
  PipelineRunRecord run;
  run.id = stmt.ColumnText(0);
  run.store_id = stmt.ColumnText(1);
  run.kind = stmt.ColumnText(2);
  run.state = stmt.ColumnText(3);
  run.active = stmt.ColumnInt64(4) != 0;
  run.release = stmt.ColumnText(5);
  run.previous_release = stmt.ColumnText(6);
  run.target_isolation = stmt.ColumnText(7);
  run.provider = stmt.ColumnText(8);
  run.external_id = stmt.ColumnText(9);
  run.external_url = stmt.ColumnText(10);
  run.requested_by = stmt.ColumnText(11);
  run.request_id = stmt.ColumnText(12);
  run.reason = stmt.ColumnText(13);
  run.outcome_detail = stmt.ColumnText(14);
  run.created_at_ms = stmt.ColumnInt64(15);
  run.updated_at_ms = stmt.ColumnInt64(16);
  run.triggered_at_ms = stmt.ColumnOptionalInt64(17);
  run.finished_at_ms = stmt.ColumnOptionalInt64(18);
  run.deadline_ms = stmt.ColumnInt64(19);
  run.gate_opened_at_ms = stmt.ColumnOptionalInt64(20);
  run.gate_streak = static_cast<int>(stmt.ColumnInt64(21));
  run.version = stmt.ColumnInt64(22);
  run.schema_changed = stmt.ColumnInt64(23) != 0;
  run.rollout_id = stmt.ColumnText(24);  // NULL reads as ""
  return run;
}

OutboxEntry DecodeOutbox(const Statement& stmt) {
  OutboxEntry entry;
  entry.seq = stmt.ColumnInt64(0);
  entry.run_id = stmt.ColumnText(1);
  entry.provider = stmt.ColumnText(2);
  entry.created_at_ms = stmt.ColumnInt64(3);
  entry.next_attempt_at_ms = stmt.ColumnInt64(4);
  entry.attempts = static_cast<int>(stmt.ColumnInt64(5));
  entry.last_error = stmt.ColumnText(6);
  entry.sent_at_ms = stmt.ColumnOptionalInt64(7);
  entry.version = stmt.ColumnInt64(8);
  return entry;
}

// Every row of an already bound statement.
Result<std::vector<PipelineRunRecord>> CollectRuns(Statement& select, std::string_view what) {
  std::vector<PipelineRunRecord> runs;
  for (;;) {
    auto row = select.Step(what);
    if (!row.ok()) return row.error();
    if (!*row) break;
    runs.push_back(DecodeRun(select));
  }
  return runs;
}

// The run with this id as stored (on any connection).
Result<PipelineRunRecord> ReadRun(Connection& conn, std::string_view id, std::string_view what) {
  auto select = conn.Prepare(kSelectRunById, what);
  if (!select.ok()) return select.error();
  select->Bind(1, id);
  auto row = select->Step(what);
  if (!row.ok()) return row.error();
  if (!*row) return RunNotFound(id);
  return DecodeRun(*select);
}

Status CheckRunIds(const PipelineRunRecord& run) {
  if (run.id.empty() || run.store_id.empty() || run.kind.empty() || run.state.empty()) {
    return Error::Internal("a run needs an id, a store, a kind and a state");
  }
  return Status::Ok();
}

}  // namespace

// ---- effects ----

namespace sqlite_detail {

Status CheckRunEffect(const Effect& effect) {
  if (const auto* insert = std::get_if<InsertRunEffect>(&effect)) {
    SP_RETURN_IF_ERROR(CheckRunIds(insert->run));
    if (insert->outbox.run_id != insert->run.id) {
      return Error::Internal("the outbox entry of run " + Quoted(insert->run.id) + " names run " +
                             Quoted(insert->outbox.run_id));
    }
  } else if (const auto* update = std::get_if<UpdateRunEffect>(&effect)) {
    SP_RETURN_IF_ERROR(CheckRunIds(update->updated));
    if (update->updated.version != update->expected_version + 1) {
      return Error::Internal("update of run " + Quoted(update->updated.id) + " must advance its version by one");
    }
  } else if (const auto* outbox = std::get_if<UpdateOutboxEffect>(&effect)) {
    if (outbox->updated.run_id.empty()) return Error::Internal("an outbox entry needs a run id");
    if (outbox->updated.version != outbox->expected_version + 1) {
      return Error::Internal("update of the outbox entry of run " + Quoted(outbox->updated.run_id) +
                             " must advance its version by one");
    }
  } else if (const auto* delivery = std::get_if<InsertCallbackDeliveryEffect>(&effect)) {
    if (delivery->provider.empty() || delivery->delivery_id.empty() || delivery->run_id.empty()) {
      return Error::Internal("a callback delivery needs a provider, a delivery id and a run");
    }
  }
  return Status::Ok();
}

Result<PipelineRunRecord> InsertRun(Connection& conn, const InsertRunEffect& effect) {
  const PipelineRunRecord& run = effect.run;
  constexpr std::string_view kWhat = "insert run";
  auto insert = conn.Prepare(kInsertRun, kWhat);
  if (!insert.ok()) return insert.error();
  BindRun(*insert, run);
  if (auto st = insert->Run(kWhat); !st.ok()) {
    const int rc = insert->last_rc();
    if (rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
      return Error{ErrorCode::kAlreadyExists, "run id " + Quoted(run.id) + " is already taken", "id"};
    }
    if (rc == SQLITE_CONSTRAINT_UNIQUE) return SecondActiveRun(conn, run, kWhat);
    if (IsForeignKeyViolation(rc)) return MissingParent(conn, run, kWhat);
    if (IsCheckViolation(rc)) return RunBreaksSchema(run);
    return st.error();
  }

  const OutboxEntry& entry = effect.outbox;
  auto outbox = conn.Prepare(kInsertOutbox, kWhat);
  if (!outbox.ok()) return outbox.error();
  outbox->Bind(1, std::string_view(run.id))
      .Bind(2, std::string_view(entry.provider))
      .Bind(3, entry.created_at_ms)
      .Bind(4, entry.next_attempt_at_ms)
      .Bind(5, static_cast<std::int64_t>(entry.attempts))
      .Bind(6, std::string_view(entry.last_error))
      .Bind(7, entry.sent_at_ms)
      .Bind(8, entry.version);
  if (auto st = outbox->Run(kWhat); !st.ok()) {
    if (IsCheckViolation(outbox->last_rc())) {
      return Error::Internal("the outbox entry of run " + Quoted(run.id) + " has negative attempts or version");
    }
    return st.error();
  }
  return ReadRun(conn, run.id, kWhat);
}

Result<PipelineRunRecord> UpdateRun(Connection& conn, const UpdateRunEffect& effect) {
  const PipelineRunRecord& run = effect.updated;
  constexpr std::string_view kWhat = "update run";
  auto update = conn.Prepare(kUpdateRunIfVersion, kWhat);
  if (!update.ok()) return update.error();
  BindRun(*update, run);
  update->Bind(25, effect.expected_version);
  if (auto st = update->Run(kWhat); !st.ok()) {
    const int rc = update->last_rc();
    if (rc == SQLITE_CONSTRAINT_UNIQUE) return SecondActiveRun(conn, run, kWhat);
    if (IsForeignKeyViolation(rc)) return MissingParent(conn, run, kWhat);
    if (IsCheckViolation(rc)) return RunBreaksSchema(run);
    return st.error();
  }
  if (conn.changes() != 1) {
    auto probe = conn.Prepare(kProbeRun, kWhat);
    if (!probe.ok()) return probe.error();
    probe->Bind(1, std::string_view(run.id));
    auto row = probe->Step(kWhat);
    if (!row.ok()) return row.error();
    // A run of another store or kind is not the run the caller means.
    if (!*row || probe->ColumnText(0) != run.store_id || probe->ColumnText(1) != run.kind) {
      return RunNotFound(run.id);
    }
    return Error{ErrorCode::kPreconditionFailed,
                 "run " + Quoted(run.id) + " has version " + std::to_string(probe->ColumnInt64(2)) + ", not " +
                     std::to_string(effect.expected_version),
                 {}};
  }
  return ReadRun(conn, run.id, kWhat);
}

Status UpdateOutbox(Connection& conn, const UpdateOutboxEffect& effect) {
  const OutboxEntry& entry = effect.updated;
  constexpr std::string_view kWhat = "update outbox entry";
  auto update = conn.Prepare(kUpdateOutboxIfVersion, kWhat);
  if (!update.ok()) return update.error();
  update->Bind(1, std::string_view(entry.run_id))
      .Bind(2, std::string_view(entry.provider))
      .Bind(3, entry.next_attempt_at_ms)
      .Bind(4, static_cast<std::int64_t>(entry.attempts))
      .Bind(5, std::string_view(entry.last_error))
      .Bind(6, entry.sent_at_ms)
      .Bind(7, entry.version)
      .Bind(8, effect.expected_version);
  if (auto st = update->Run(kWhat); !st.ok()) {
    if (IsCheckViolation(update->last_rc())) {
      return Error::Internal("the outbox entry of run " + Quoted(entry.run_id) + " has negative attempts");
    }
    return st;
  }
  if (conn.changes() == 1) return Status::Ok();
  auto probe = conn.Prepare(kProbeOutbox, kWhat);
  if (!probe.ok()) return probe.error();
  probe->Bind(1, std::string_view(entry.run_id));
  auto row = probe->Step(kWhat);
  if (!row.ok()) return row.error();
  const std::string name = "the outbox entry of run " + Quoted(entry.run_id);
  if (!*row) return Error::NotFound(name + " not found");
  return Error{ErrorCode::kPreconditionFailed,
               name + " has version " + std::to_string(probe->ColumnInt64(0)) + ", not " +
                   std::to_string(effect.expected_version),
               {}};
}

Status InsertCallbackDelivery(Connection& conn, const InsertCallbackDeliveryEffect& effect) {
  constexpr std::string_view kWhat = "record callback delivery";
  auto insert = conn.Prepare(kInsertCallbackDelivery, kWhat);
  if (!insert.ok()) return insert.error();
  insert->Bind(1, std::string_view(effect.provider))
      .Bind(2, std::string_view(effect.delivery_id))
      .Bind(3, std::string_view(effect.run_id))
      .Bind(4, effect.received_at_ms);
  if (auto st = insert->Run(kWhat); !st.ok()) {
    const int rc = insert->last_rc();
    if (IsForeignKeyViolation(rc)) return RunNotFound(effect.run_id);
    // The primary key, or the trigger that refuses an insert over a seen delivery.
    if (IsUniqueViolation(rc) || rc == SQLITE_CONSTRAINT_TRIGGER) {
      return Error{ErrorCode::kAlreadyExists,
                   "callback delivery " + Quoted(effect.delivery_id) + " of provider " + Quoted(effect.provider) +
                       " was already received",
                   {}};
    }
    return st;
  }
  return Status::Ok();
}

}  // namespace sqlite_detail

// ---- SqliteRepository: reads ----

Result<PipelineRunRecord> SqliteRepository::GetRun(std::string_view id) {
  return Guarded([&]() -> Result<PipelineRunRecord> {
    auto conn = readers_->Acquire();
    return ReadRun(*conn, id, "read run");
  });
}

Result<std::vector<PipelineRunRecord>> SqliteRepository::ListRuns(const RunQuery& query) {
  return Guarded([&]() -> Result<std::vector<PipelineRunRecord>> {
    constexpr std::string_view kWhat = "list runs";
    SP_RETURN_IF_ERROR(CheckLimit(query.limit));
    auto conn = readers_->Acquire();
    // The cursor is the seq of `before_id` (a run's seq never changes, so no snapshot is
    // needed across the two queries).
    std::int64_t before_seq = std::numeric_limits<std::int64_t>::max();
    if (!query.before_id.empty()) {
      auto cursor = conn->Prepare(kSelectRunCursor, kWhat);
      if (!cursor.ok()) return cursor.error();
      cursor->Bind(1, std::string_view(query.before_id));
      auto row = cursor->Step(kWhat);
      if (!row.ok()) return row.error();
      if (!*row || (query.store_id && cursor->ColumnText(1) != *query.store_id) ||
          (query.rollout_id && cursor->ColumnText(2) != *query.rollout_id)) {
        return Error::Invalid("cursor " + Quoted(query.before_id) + " is not a run of this listing", "cursor");
      }
      before_seq = cursor->ColumnInt64(0);
    }
    std::string sql = kListRunsBase;
    if (query.store_id) sql += kListRunsAndStore;
    if (query.state) sql += kListRunsAndState;
    if (query.active_only) sql += kListRunsAndActive;
    if (query.rollout_id) sql += kListRunsAndRollout;
    sql += kListRunsOrderLimit;
    auto select = conn->Prepare(sql.c_str(), kWhat);
    if (!select.ok()) return select.error();
    select->Bind(1, before_seq);
    if (query.store_id) select->Bind(2, std::string_view(*query.store_id));
    if (query.state) select->Bind(3, std::string_view(*query.state));
    select->Bind(4, static_cast<std::int64_t>(query.limit));
    if (query.rollout_id) select->Bind(5, std::string_view(*query.rollout_id));
    return CollectRuns(*select, kWhat);
  });
}

Result<std::vector<PipelineRunRecord>> SqliteRepository::ListActiveRuns() {
  return Guarded([&]() -> Result<std::vector<PipelineRunRecord>> {
    constexpr std::string_view kWhat = "list active runs";
    auto conn = readers_->Acquire();
    auto select = conn->Prepare(kListActiveRuns, kWhat);
    if (!select.ok()) return select.error();
    return CollectRuns(*select, kWhat);
  });
}

Result<std::vector<OutboxEntry>> SqliteRepository::ListDueOutbox(std::int64_t now_ms, int limit) {
  return Guarded([&]() -> Result<std::vector<OutboxEntry>> {
    constexpr std::string_view kWhat = "list due outbox entries";
    SP_RETURN_IF_ERROR(CheckLimit(limit));
    auto conn = readers_->Acquire();
    auto select = conn->Prepare(kListDueOutbox, kWhat);
    if (!select.ok()) return select.error();
    select->Bind(1, now_ms).Bind(2, static_cast<std::int64_t>(limit));
    std::vector<OutboxEntry> entries;
    for (;;) {
      auto row = select->Step(kWhat);
      if (!row.ok()) return row.error();
      if (!*row) break;
      entries.push_back(DecodeOutbox(*select));
    }
    return entries;
  });
}

Result<std::optional<OutboxEntry>> SqliteRepository::GetOutbox(std::string_view run_id) {
  return Guarded([&]() -> Result<std::optional<OutboxEntry>> {
    constexpr std::string_view kWhat = "read outbox entry";
    auto conn = readers_->Acquire();
    auto select = conn->Prepare(kSelectOutboxByRun, kWhat);
    if (!select.ok()) return select.error();
    select->Bind(1, run_id);
    auto row = select->Step(kWhat);
    if (!row.ok()) return row.error();
    if (!*row) return std::optional<OutboxEntry>();
    return std::optional<OutboxEntry>(DecodeOutbox(*select));
  });
}

Result<std::vector<std::string>> SqliteRepository::ListVerifiedReleases(std::string_view store_id, int limit) {
  return Guarded([&]() -> Result<std::vector<std::string>> {
    constexpr std::string_view kWhat = "list verified releases";
    SP_RETURN_IF_ERROR(CheckLimit(limit));
    auto conn = readers_->Acquire();
    auto select = conn->Prepare(kListVerifiedReleases, kWhat);
    if (!select.ok()) return select.error();
    select->Bind(1, store_id).Bind(2, static_cast<std::int64_t>(limit));
    std::vector<std::string> releases;
    for (;;) {
      auto row = select->Step(kWhat);
      if (!row.ok()) return row.error();
      if (!*row) break;
      releases.push_back(select->ColumnText(0));
    }
    return releases;
  });
}

}  // namespace storeplane::db
