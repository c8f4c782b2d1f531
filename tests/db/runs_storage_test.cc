// Pipeline runs in storage (schema v4): runs with their outbox entries, one active run per
// store enforced by the database, optimistic updates, the due outbox, callback deliveries
// accepted once (also under concurrency), listings, persistence and the upgrade from v3.
// Every test but the upgrade runs on SQLite and on PostgreSQL (BackendTest).
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <cstdint>
#include <latch>
#include <string>
#include <thread>
#include <vector>

#include "db/migrations.h"
#include "db/storage_support.h"
#include "db_test_util.h"

namespace storeplane::db {
namespace {

using support::Quoted;
using testing::BackendTest;
using testing::ExecRaw;
using testing::MakeStore;
using testing::QueryIntRaw;
using testing::TestAudit;

constexpr std::int64_t kT0 = 1'700'000'000'000;

PipelineRunRecord MakeRun(std::string id, std::string store_id, std::string kind = "deploy",
                          std::int64_t created_at_ms = kT0) {
  PipelineRunRecord run;
  run.id = std::move(id);
  run.store_id = std::move(store_id);
  run.kind = std::move(kind);
  run.state = "pending";
  run.active = true;
  if (run.kind == "deploy" || run.kind == "rollback") run.release = "2024.06." + run.id;
  run.previous_release = "2024.05.1";
  run.provider = "github";
  run.requested_by = "alice";
  run.request_id = "req-" + run.id;
  run.reason = "test";
  run.created_at_ms = created_at_ms;
  run.updated_at_ms = created_at_ms;
  run.deadline_ms = created_at_ms + 3'600'000;
  return run;
}

OutboxEntry MakeOutbox(const PipelineRunRecord& run) {
  OutboxEntry entry;
  entry.run_id = run.id;
  entry.provider = run.provider;
  entry.created_at_ms = run.created_at_ms;
  entry.next_attempt_at_ms = run.created_at_ms;
  return entry;
}

InsertRunEffect InsertRun(const PipelineRunRecord& run) { return InsertRunEffect{run, MakeOutbox(run)}; }

// The next version of `run` in `state` (`active` as the caller says: the writer keeps it).
PipelineRunRecord Moved(PipelineRunRecord run, std::string state, bool active) {
  run.state = std::move(state);
  run.active = active;
  run.updated_at_ms += 1000;
  if (!active) run.finished_at_ms = run.updated_at_ms;
  ++run.version;
  return run;
}

UpdateRunEffect Move(const PipelineRunRecord& run, std::string state, bool active) {
  return UpdateRunEffect{Moved(run, std::move(state), active), run.version};
}

std::vector<std::string> Ids(const std::vector<PipelineRunRecord>& runs) {
  std::vector<std::string> ids;
  for (const auto& run : runs) ids.push_back(run.id);
  return ids;
}

std::vector<std::string> RunIds(const std::vector<OutboxEntry>& entries) {
  std::vector<std::string> ids;
  for (const auto& entry : entries) ids.push_back(entry.run_id);
  return ids;
}

void ExpectSameRun(const PipelineRunRecord& got, const PipelineRunRecord& want) {
  EXPECT_EQ(got.id, want.id);
  EXPECT_EQ(got.store_id, want.store_id);
  EXPECT_EQ(got.kind, want.kind);
  EXPECT_EQ(got.state, want.state);
  EXPECT_EQ(got.active, want.active);
  EXPECT_EQ(got.release, want.release);
  EXPECT_EQ(got.previous_release, want.previous_release);
  EXPECT_EQ(got.target_isolation, want.target_isolation);
  EXPECT_EQ(got.provider, want.provider);
  EXPECT_EQ(got.external_id, want.external_id);
  EXPECT_EQ(got.external_url, want.external_url);
  EXPECT_EQ(got.requested_by, want.requested_by);
  EXPECT_EQ(got.request_id, want.request_id);
  EXPECT_EQ(got.reason, want.reason);
  EXPECT_EQ(got.outcome_detail, want.outcome_detail);
  EXPECT_EQ(got.created_at_ms, want.created_at_ms);
  EXPECT_EQ(got.updated_at_ms, want.updated_at_ms);
  EXPECT_EQ(got.triggered_at_ms, want.triggered_at_ms);
  EXPECT_EQ(got.finished_at_ms, want.finished_at_ms);
  EXPECT_EQ(got.deadline_ms, want.deadline_ms);
  EXPECT_EQ(got.gate_opened_at_ms, want.gate_opened_at_ms);
  EXPECT_EQ(got.gate_streak, want.gate_streak);
  EXPECT_EQ(got.version, want.version);
  EXPECT_EQ(got.rollout_id, want.rollout_id);
}

class RunsStorageTest : public BackendTest {
 protected:
  void SetUp() override {
    BackendTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    Insert(MakeStore("shop-a"));
    Insert(MakeStore("shop-b"));
  }

  // One audited batch of `effects`.
  Result<WriteResult> ApplyAudited(std::vector<Effect> effects) {
    WriteBatch batch;
    batch.effects = std::move(effects);
    batch.audit.push_back(TestAudit("test.write", "test", ++audit_n_));
    return repo_->Apply(batch);
  }

  void MustApply(std::vector<Effect> effects) {
    auto applied = ApplyAudited(std::move(effects));
    ASSERT_TRUE(applied.ok()) << applied.error().message;
  }

  // Inserts the run with its outbox entry and returns it as stored.
  PipelineRunRecord Start(const PipelineRunRecord& run) {
    auto applied = ApplyAudited({InsertRun(run)});
    EXPECT_TRUE(applied.ok()) << (applied.ok() ? "" : applied.error().message);
    if (!applied.ok() || applied->runs.size() != 1) return PipelineRunRecord{};
    return applied->runs[0];
  }

  // Moves the stored run on and returns it as stored.
  PipelineRunRecord Advance(const PipelineRunRecord& run, std::string state, bool active) {
    auto applied = ApplyAudited({Move(run, std::move(state), active)});
    EXPECT_TRUE(applied.ok()) << (applied.ok() ? "" : applied.error().message);
    if (!applied.ok() || applied->runs.size() != 1) return PipelineRunRecord{};
    return applied->runs[0];
  }

  PipelineRunRecord Run(const std::string& id) {
    auto run = repo_->GetRun(id);
    EXPECT_TRUE(run.ok()) << id;
    return run.ok() ? *run : PipelineRunRecord{};
  }

  OutboxEntry Outbox(const std::string& run_id) {
    auto entry = repo_->GetOutbox(run_id);
    EXPECT_TRUE(entry.ok() && entry->has_value()) << run_id;
    return entry.ok() && entry->has_value() ? **entry : OutboxEntry{};
  }

  std::vector<std::string> List(const Repository::RunQuery& query) {
    auto runs = repo_->ListRuns(query);
    EXPECT_TRUE(runs.ok()) << (runs.ok() ? "" : runs.error().message);
    return runs.ok() ? Ids(*runs) : std::vector<std::string>{"<error>"};
  }

  std::vector<std::string> Due(std::int64_t now_ms, int limit = 100) {
    auto due = repo_->ListDueOutbox(now_ms, limit);
    EXPECT_TRUE(due.ok());
    return due.ok() ? RunIds(*due) : std::vector<std::string>{"<error>"};
  }

  long long AuditRows() { return QueryInt("SELECT COUNT(*) FROM audit_log"); }
  long long Rows(const std::string& table) { return QueryInt("SELECT COUNT(*) FROM " + table); }

  // One statement behind the repository's back: "ok", "constraint" (SQLITE_CONSTRAINT; on
  // PostgreSQL an integrity constraint violation, SQLSTATE class 23, which the triggers
  // raise too), or the failure's code.
  std::string Raw(const std::string& sql) {
    if (!postgres()) {
      const int rc = ExecRaw(options_.path, sql);
      if (rc == SQLITE_OK) return "ok";
      return rc == SQLITE_CONSTRAINT ? "constraint" : "sqlite " + std::to_string(rc);
    }
    auto conn = pg::PgConnection::Open(pg_options_.conninfo);
    if (!conn.ok()) return "no connection";
    if (conn->Script(sql, "test").ok()) return "ok";
    const std::string& state = conn->last_failure().sqlstate;
    return state.rfind("23", 0) == 0 ? "constraint" : "sqlstate " + state;
  }

  int audit_n_ = 100;
};

ErrorCode CodeOf(const Result<WriteResult>& result) {
  EXPECT_FALSE(result.ok());
  return result.ok() ? ErrorCode::kInternal : result.error().code;
}

// ---- schema ----

TEST_P(RunsStorageTest, SchemaVersionFourHasTheNewTablesIndexesAndTriggers) {
  const std::vector<std::string> tables{"pipeline_runs", "outbox", "callback_deliveries"};
  const std::vector<std::string> indexes{"pipeline_runs_one_active_per_store", "pipeline_runs_by_store",
                                         "pipeline_runs_active", "outbox_due", "callback_deliveries_by_run"};
  if (postgres()) {
    // PostgreSQL's schema version 1 is SQLite's version 6 as a whole.
    EXPECT_EQ(QueryInt("SELECT MAX(version) FROM schema_migrations"), PostgresTargetSchemaVersion());
    for (const auto& table : tables) {
      EXPECT_EQ(QueryInt("SELECT COUNT(*) FROM pg_tables WHERE schemaname = current_schema() AND tablename = '" +
                         table + "'"),
                1)
          << table;
    }
    for (const auto& index : indexes) {
      EXPECT_EQ(QueryInt("SELECT COUNT(*) FROM pg_indexes WHERE schemaname = current_schema() AND indexname = '" +
                         index + "'"),
                1)
          << index;
    }
    EXPECT_EQ(QueryInt("SELECT COUNT(*) FROM pg_indexes WHERE indexname = 'pipeline_runs_one_active_per_store' AND "
                       "indexdef LIKE 'CREATE UNIQUE INDEX%(store_id) WHERE active'"),
              1);
    for (const char* trigger :
         {"pipeline_runs_no_delete", "pipeline_runs_fixed_columns", "callback_deliveries_no_update",
          "callback_deliveries_no_delete", "callback_deliveries_insert_once"}) {
      EXPECT_EQ(QueryInt(std::string("SELECT COUNT(*) FROM pg_trigger WHERE tgname = '") + trigger + "'"), 1)
          << trigger;
    }
    return;
  }
  EXPECT_GE(LatestSchemaVersion(), 4);
  EXPECT_EQ(QueryInt("SELECT COUNT(*) FROM schema_migrations WHERE version = 4"), 1);
  for (const auto& table : tables) {
    EXPECT_EQ(QueryInt("SELECT COUNT(*) FROM sqlite_master WHERE type='table' AND name='" + table + "'"), 1) << table;
  }
  for (const auto& index : indexes) {
    EXPECT_EQ(QueryInt("SELECT COUNT(*) FROM sqlite_master WHERE type='index' AND name='" + index + "'"), 1) << index;
  }
  EXPECT_EQ(QueryInt("SELECT COUNT(*) FROM sqlite_master WHERE type='index' AND "
                     "name='pipeline_runs_one_active_per_store' AND sql LIKE 'CREATE UNIQUE INDEX%WHERE active = 1'"),
            1);
}

// Booleans are written TRUE and FALSE, which both databases read (SQLite as 1 and 0).
TEST_P(RunsStorageTest, CheckConstraintsRefuseUnknownTextsAndAnActiveFlagThatDisagreesWithTheState) {
  Start(MakeRun("run_1", "shop-a"));
  Close();
  EXPECT_EQ(Raw("UPDATE pipeline_runs SET state = 'exploded'"), "constraint");
  // A final run cannot stay active, a running one cannot be inactive.
  EXPECT_EQ(Raw("UPDATE pipeline_runs SET state = 'failed'"), "constraint");
  EXPECT_EQ(Raw("UPDATE pipeline_runs SET state = 'running', active = FALSE"), "constraint");
  // Neither 0 nor 1: a CHECK in SQLite; PostgreSQL's boolean column refuses an integer
  // (datatype mismatch).
  EXPECT_EQ(Raw("UPDATE pipeline_runs SET active = 2"), postgres() ? "sqlstate 42804" : "constraint");
  // A deploy that succeeded waits for its gate: still active.
  EXPECT_EQ(Raw("UPDATE pipeline_runs SET state = 'succeeded', active = FALSE"), "constraint");
  EXPECT_EQ(Raw("UPDATE pipeline_runs SET state = 'succeeded', active = TRUE"), "ok");
  EXPECT_EQ(Raw("UPDATE pipeline_runs SET state = 'verified', active = FALSE"), "ok");
  // The store, kind, id, seq and creation time never change; runs are never deleted.
  EXPECT_EQ(Raw("UPDATE pipeline_runs SET store_id = 'shop-b'"), "constraint");
  EXPECT_EQ(Raw("UPDATE pipeline_runs SET kind = 'rollback'"), "constraint");
  EXPECT_EQ(Raw("UPDATE pipeline_runs SET id = 'run_9'"), "constraint");
  EXPECT_EQ(Raw("UPDATE pipeline_runs SET seq = 7"), "constraint");
  EXPECT_EQ(Raw("UPDATE pipeline_runs SET created_at_ms = 1"), "constraint");
  EXPECT_EQ(Raw("DELETE FROM pipeline_runs"), "constraint");
  if (postgres()) {
    EXPECT_EQ(Raw("TRUNCATE pipeline_runs CASCADE"), "constraint");
  }
  EXPECT_EQ(QueryInt("SELECT COUNT(*) FROM pipeline_runs WHERE state = 'verified'"), 1);
  // Gate states belong to kinds with a health gate.
  EXPECT_EQ(Raw("INSERT INTO pipeline_runs (id, seq, store_id, kind, state, active, requested_by, created_at_ms, "
                "updated_at_ms, deadline_ms, version) VALUES ('run_p', 9, 'shop-b', 'provision', 'verifying', TRUE, "
                "'alice', 1, 1, 2, 1)"),
            "constraint");
  EXPECT_EQ(Raw("INSERT INTO pipeline_runs (id, seq, store_id, kind, state, active, requested_by, created_at_ms, "
                "updated_at_ms, deadline_ms, version) VALUES ('run_p', 9, 'shop-b', 'upgrade', 'pending', TRUE, "
                "'alice', 1, 1, 2, 1)"),
            "constraint");
  // A provision that succeeded is final.
  EXPECT_EQ(Raw("INSERT INTO pipeline_runs (id, seq, store_id, kind, state, active, requested_by, created_at_ms, "
                "updated_at_ms, deadline_ms, version) VALUES ('run_p', 9, 'shop-b', 'provision', 'succeeded', TRUE, "
                "'alice', 1, 1, 2, 1)"),
            "constraint");
  EXPECT_EQ(Raw("INSERT INTO pipeline_runs (id, seq, store_id, kind, state, active, requested_by, created_at_ms, "
                "updated_at_ms, deadline_ms, version) VALUES ('run_p', 9, 'shop-b', 'provision', 'succeeded', FALSE, "
                "'alice', 1, 1, 2, 1)"),
            "ok");
  // A second active run of one store.
  EXPECT_EQ(Raw("INSERT INTO pipeline_runs (id, seq, store_id, kind, state, active, requested_by, created_at_ms, "
                "updated_at_ms, deadline_ms, version) VALUES ('run_q', 10, 'shop-b', 'deploy', 'pending', TRUE, "
                "'alice', 1, 1, 2, 1)"),
            "ok");
  EXPECT_EQ(Raw("INSERT INTO pipeline_runs (id, seq, store_id, kind, state, active, requested_by, created_at_ms, "
                "updated_at_ms, deadline_ms, version) VALUES ('run_r', 11, 'shop-b', 'provision', 'pending', TRUE, "
                "'alice', 1, 1, 2, 1)"),
            "constraint");
  EXPECT_EQ(Rows("pipeline_runs"), 3);
}

TEST_P(RunsStorageTest, CallbackDeliveriesAreAppendOnly) {
  Start(MakeRun("run_1", "shop-a"));
  MustApply({InsertCallbackDeliveryEffect{"github", "dlv-1", "run_1", kT0 + 10}});
  Close();
  EXPECT_EQ(Raw("UPDATE callback_deliveries SET received_at_ms = 0"), "constraint");
  EXPECT_EQ(Raw("DELETE FROM callback_deliveries"), "constraint");
  if (postgres()) {
    EXPECT_EQ(Raw("TRUNCATE callback_deliveries"), "constraint");
  } else {
    EXPECT_EQ(Raw("INSERT OR REPLACE INTO callback_deliveries VALUES ('github', 'dlv-1', 'run_1', 0)"), "constraint");
  }
  EXPECT_EQ(Raw("INSERT INTO callback_deliveries VALUES ('github', 'dlv-1', 'run_1', 0) "
                "ON CONFLICT (provider, delivery_id) DO UPDATE SET received_at_ms = 0"),
            "constraint");
  EXPECT_EQ(Raw("INSERT INTO callback_deliveries VALUES ('github', 'dlv-1', 'run_1', 0)"), "constraint");
  EXPECT_EQ(QueryInt("SELECT received_at_ms FROM callback_deliveries"), kT0 + 10);
}

// ---- insert ----

TEST_P(RunsStorageTest, InsertedRunAndOutboxReadBackWithEveryField) {
  PipelineRunRecord run = MakeRun("run_1", "shop-a", "isolation_migration");
  run.release = "";
  run.target_isolation = "dedicated";
  run.external_id = "ext-1";
  run.external_url = "https://ci.example/runs/1";
  run.outcome_detail = "none yet";
  run.triggered_at_ms = kT0 + 1;
  run.gate_opened_at_ms = kT0 + 2;
  run.gate_streak = 2;
  run.version = 1;
  OutboxEntry entry = MakeOutbox(run);
  entry.seq = 999;  // assigned by the database
  entry.next_attempt_at_ms = kT0 + 50;
  entry.attempts = 1;
  entry.last_error = "provider said 503";

  auto applied = ApplyAudited({InsertRunEffect{run, entry}});
  ASSERT_TRUE(applied.ok()) << applied.error().message;
  ASSERT_EQ(applied->runs.size(), 1u);
  ExpectSameRun(applied->runs[0], run);
  ExpectSameRun(Run("run_1"), run);

  OutboxEntry stored = Outbox("run_1");
  EXPECT_GT(stored.seq, 0);
  EXPECT_NE(stored.seq, 999);
  EXPECT_EQ(stored.run_id, "run_1");
  EXPECT_EQ(stored.provider, "github");
  EXPECT_EQ(stored.created_at_ms, kT0);
  EXPECT_EQ(stored.next_attempt_at_ms, kT0 + 50);
  EXPECT_EQ(stored.attempts, 1);
  EXPECT_EQ(stored.last_error, "provider said 503");
  EXPECT_FALSE(stored.sent_at_ms.has_value());
  EXPECT_EQ(stored.version, 1);

  auto missing = repo_->GetRun("run_none");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
  auto no_outbox = repo_->GetOutbox("run_none");
  ASSERT_TRUE(no_outbox.ok());
  EXPECT_FALSE(no_outbox->has_value());
}

TEST_P(RunsStorageTest, InsertErrors) {
  Start(MakeRun("run_1", "shop-a"));
  const long long audit_before = AuditRows();

  // The id is taken (even on another store).
  EXPECT_EQ(CodeOf(ApplyAudited({InsertRun(MakeRun("run_1", "shop-b"))})), ErrorCode::kAlreadyExists);
  // No such store.
  EXPECT_EQ(CodeOf(ApplyAudited({InsertRun(MakeRun("run_2", "shop-none"))})), ErrorCode::kNotFound);
  // The outbox entry must be the run's own.
  PipelineRunRecord run = MakeRun("run_3", "shop-b");
  OutboxEntry other = MakeOutbox(run);
  other.run_id = "run_1";
  EXPECT_EQ(CodeOf(ApplyAudited({InsertRunEffect{run, other}})), ErrorCode::kInternal);
  other.run_id = "";
  EXPECT_EQ(CodeOf(ApplyAudited({InsertRunEffect{run, other}})), ErrorCode::kInternal);
  // Texts and flags that break the schema are programming errors.
  PipelineRunRecord bad = MakeRun("run_4", "shop-b");
  bad.state = "exploded";
  EXPECT_EQ(CodeOf(ApplyAudited({InsertRun(bad)})), ErrorCode::kInternal);
  bad = MakeRun("run_4", "shop-b");
  bad.active = false;  // pending, so active
  EXPECT_EQ(CodeOf(ApplyAudited({InsertRun(bad)})), ErrorCode::kInternal);
  bad = MakeRun("run_4", "shop-b", "teleport");
  EXPECT_EQ(CodeOf(ApplyAudited({InsertRun(bad)})), ErrorCode::kInternal);
  bad = MakeRun("", "shop-b");
  EXPECT_EQ(CodeOf(ApplyAudited({InsertRun(bad)})), ErrorCode::kInternal);
  // Without an audit record nothing is written.
  WriteBatch unaudited;
  unaudited.effects.push_back(InsertRun(MakeRun("run_5", "shop-b")));
  auto refused = repo_->Apply(unaudited);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kInternal);

  EXPECT_EQ(Rows("pipeline_runs"), 1);
  EXPECT_EQ(Rows("outbox"), 1);
  EXPECT_EQ(AuditRows(), audit_before);
}

// The same codes and messages on both back ends (SQLite's are the reference).
TEST_P(RunsStorageTest, ErrorsNameWhatFailedTheSameOnEveryBackEnd) {
  PipelineRunRecord run = Start(MakeRun("run_1", "shop-a"));
  const auto failure = [&](std::vector<Effect> effects) {
    auto applied = ApplyAudited(std::move(effects));
    EXPECT_FALSE(applied.ok());
    return applied.ok() ? std::string("ok")
                        : std::to_string(static_cast<int>(applied.error().code)) + " " + applied.error().message;
  };
  const auto code = [](ErrorCode c) { return std::to_string(static_cast<int>(c)) + " "; };

  // A taken id for a store that has an active run: the active run is reported.
  EXPECT_EQ(failure({InsertRun(MakeRun("run_1", "shop-a"))}),
            code(ErrorCode::kConflict) + "store 'shop-a' already has an active run 'run_1'");
  Start(MakeRun("run_b", "shop-b"));
  EXPECT_EQ(failure({InsertRun(MakeRun("run_1", "shop-b"))}),
            code(ErrorCode::kConflict) + "store 'shop-b' already has an active run 'run_b'");
  // An inactive run never conflicts with the active one.
  PipelineRunRecord inactive = MakeRun("run_1", "shop-a", "provision");
  inactive.state = "succeeded";
  inactive.active = false;
  EXPECT_EQ(failure({InsertRun(inactive)}), code(ErrorCode::kAlreadyExists) + "run id 'run_1' is already taken");
  EXPECT_EQ(failure({InsertRun(MakeRun("run_1", "shop-none"))}),
            code(ErrorCode::kAlreadyExists) + "run id 'run_1' is already taken");
  EXPECT_EQ(failure({InsertRun(MakeRun("run_2", "shop-a"))}),
            code(ErrorCode::kConflict) + "store 'shop-a' already has an active run 'run_1'");
  EXPECT_EQ(failure({InsertRun(MakeRun("run_2", "shop-none"))}),
            code(ErrorCode::kNotFound) + "store 'shop-none' not found");
  // A CHECK comes before the other constraints.
  PipelineRunRecord bad = MakeRun("run_1", "shop-a");
  bad.state = "exploded";
  EXPECT_EQ(failure({InsertRun(bad)}), code(ErrorCode::kInternal) +
                                           "run 'run_1' has an unknown kind 'deploy' or state 'exploded', or an active "
                                           "flag that disagrees with them");
  OutboxEntry negative = MakeOutbox(MakeRun("run_2", "shop-c"));
  negative.attempts = -1;
  Insert(MakeStore("shop-c"));
  EXPECT_EQ(failure({InsertRunEffect{MakeRun("run_2", "shop-c"), negative}}),
            code(ErrorCode::kInternal) + "the outbox entry of run 'run_2' has negative attempts or version");

  // Updates.
  EXPECT_EQ(failure({Move(Moved(run, "triggered", true), "running", true)}),
            code(ErrorCode::kPreconditionFailed) + "run 'run_1' has version 1, not 2");
  PipelineRunRecord unknown = run;
  unknown.id = "run_none";
  EXPECT_EQ(failure({Move(unknown, "triggered", true)}), code(ErrorCode::kNotFound) + "run 'run_none' not found");
  EXPECT_EQ(
      failure({Move(run, "failed", true)}),
      code(ErrorCode::kInternal) +
          "run 'run_1' has an unknown kind 'deploy' or state 'failed', or an active flag that disagrees with them");
  PipelineRunRecord ended = Advance(run, "cancelled", false);
  Start(MakeRun("run_2", "shop-a"));
  EXPECT_EQ(failure({Move(ended, "running", true)}),
            code(ErrorCode::kConflict) + "store 'shop-a' already has an active run 'run_2'");
  // A CHECK wins over the conflict too.
  EXPECT_EQ(
      failure({Move(ended, "failed", true)}),
      code(ErrorCode::kInternal) +
          "run 'run_1' has an unknown kind 'deploy' or state 'failed', or an active flag that disagrees with them");
  // A stale version wins over the conflict it would have made.
  EXPECT_EQ(failure({Move(run, "running", true)}),
            code(ErrorCode::kPreconditionFailed) + "run 'run_1' has version 2, not 1");

  // The outbox.
  OutboxEntry entry = Outbox("run_2");
  OutboxEntry stale = entry;
  stale.version = 3;
  EXPECT_EQ(failure({UpdateOutboxEffect{stale, 2}}),
            code(ErrorCode::kPreconditionFailed) + "the outbox entry of run 'run_2' has version 1, not 2");
  OutboxEntry missing = entry;
  missing.run_id = "run_none";
  missing.version = 2;
  EXPECT_EQ(failure({UpdateOutboxEffect{missing, 1}}),
            code(ErrorCode::kNotFound) + "the outbox entry of run 'run_none' not found");
  OutboxEntry negative_update = entry;
  negative_update.attempts = -1;
  negative_update.version = 2;
  EXPECT_EQ(failure({UpdateOutboxEffect{negative_update, 1}}),
            code(ErrorCode::kInternal) + "the outbox entry of run 'run_2' has negative attempts");

  // Callback deliveries.
  MustApply({InsertCallbackDeliveryEffect{"github", "dlv-1", "run_2", kT0}});
  EXPECT_EQ(failure({InsertCallbackDeliveryEffect{"github", "dlv-1", "run_2", kT0}}),
            code(ErrorCode::kAlreadyExists) + "callback delivery 'dlv-1' of provider 'github' was already received");
  EXPECT_EQ(failure({InsertCallbackDeliveryEffect{"github", "dlv-1", "run_none", kT0}}),
            code(ErrorCode::kAlreadyExists) + "callback delivery 'dlv-1' of provider 'github' was already received");
  EXPECT_EQ(failure({InsertCallbackDeliveryEffect{"github", "dlv-2", "run_none", kT0}}),
            code(ErrorCode::kNotFound) + "run 'run_none' not found");

  // Reads.
  EXPECT_EQ(repo_->GetRun("run_none").error().message, "run 'run_none' not found");
  Repository::RunQuery foreign;
  foreign.store_id = "shop-b";
  foreign.before_id = "run_1";
  auto refused = repo_->ListRuns(foreign);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(refused.error().message, "cursor 'run_1' is not a run of this listing");
}

// ---- one active run per store ----

TEST_P(RunsStorageTest, ASecondActiveRunForAStoreIsRefusedAndNothingOfItsBatchIsWritten) {
  Start(MakeRun("run_1", "shop-a"));
  const long long audit_before = AuditRows();

  // With another store's run in the same batch: all or nothing.
  auto refused = ApplyAudited({InsertRun(MakeRun("run_b", "shop-b")), InsertRun(MakeRun("run_2", "shop-a"))});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kConflict);
  EXPECT_NE(refused.error().message.find("run_1"), std::string::npos) << refused.error().message;
  EXPECT_EQ(Rows("pipeline_runs"), 1);
  EXPECT_EQ(Rows("outbox"), 1);
  EXPECT_EQ(AuditRows(), audit_before);
  EXPECT_EQ(repo_->GetRun("run_b").error().code, ErrorCode::kNotFound);
  EXPECT_EQ(repo_->GetRun("run_2").error().code, ErrorCode::kNotFound);

  // Another store is free; any kind counts as the store's active run.
  Start(MakeRun("run_b", "shop-b", "provision"));
  EXPECT_EQ(CodeOf(ApplyAudited({InsertRun(MakeRun("run_3", "shop-b", "decommission"))})), ErrorCode::kConflict);
  EXPECT_EQ(Rows("pipeline_runs"), 2);
}

TEST_P(RunsStorageTest, AfterTheActiveRunEndsANewOneIsAllowed) {
  PipelineRunRecord first = Start(MakeRun("run_1", "shop-a"));
  first = Advance(first, "triggered", true);
  first = Advance(first, "succeeded", true);  // a deploy waits for its gate: still active
  EXPECT_EQ(CodeOf(ApplyAudited({InsertRun(MakeRun("run_2", "shop-a"))})), ErrorCode::kConflict);
  first = Advance(first, "verifying", true);
  first = Advance(first, "verified", false);
  EXPECT_FALSE(first.active);

  PipelineRunRecord second = Start(MakeRun("run_2", "shop-a", "rollback"));
  EXPECT_TRUE(second.active);
  // Ending a run and starting the next in one batch works too (effects run in order).
  PipelineRunRecord third = MakeRun("run_3", "shop-a");
  auto applied = ApplyAudited({Move(second, "failed", false), InsertRun(third)});
  ASSERT_TRUE(applied.ok()) << applied.error().message;
  ASSERT_EQ(applied->runs.size(), 2u);  // in effect order
  EXPECT_EQ(applied->runs[0].id, "run_2");
  EXPECT_EQ(applied->runs[0].state, "failed");
  EXPECT_EQ(applied->runs[1].id, "run_3");
  auto active = repo_->ListActiveRuns();
  ASSERT_TRUE(active.ok());
  EXPECT_EQ(Ids(*active), (std::vector<std::string>{"run_3"}));
}

TEST_P(RunsStorageTest, ATransitionThatWouldReactivateASecondRunIsRefused) {
  PipelineRunRecord first = Start(MakeRun("run_1", "shop-a"));
  first = Advance(first, "cancelled", false);
  Start(MakeRun("run_2", "shop-a"));
  const long long audit_before = AuditRows();

  auto refused = ApplyAudited({Move(first, "running", true)});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kConflict);
  EXPECT_NE(refused.error().message.find("run_2"), std::string::npos) << refused.error().message;
  PipelineRunRecord stored = Run("run_1");
  EXPECT_EQ(stored.state, "cancelled");
  EXPECT_FALSE(stored.active);
  EXPECT_EQ(stored.version, first.version);
  EXPECT_EQ(AuditRows(), audit_before);
}

// ---- updates ----

TEST_P(RunsStorageTest, UpdateRunIsOptimisticAndKeepsItsIdentity) {
  PipelineRunRecord run = Start(MakeRun("run_1", "shop-a"));

  PipelineRunRecord next = Moved(run, "triggered", true);
  next.external_id = "gh-42";
  next.external_url = "https://ci.example/42";
  next.triggered_at_ms = kT0 + 500;
  next.outcome_detail = "queued";
  next.gate_streak = 1;
  next.created_at_ms = kT0 - 1;  // the creation time stays as inserted
  auto applied = ApplyAudited({UpdateRunEffect{next, 1}});
  ASSERT_TRUE(applied.ok()) << applied.error().message;
  ASSERT_EQ(applied->runs.size(), 1u);
  next.created_at_ms = kT0;
  ExpectSameRun(applied->runs[0], next);
  ExpectSameRun(Run("run_1"), next);

  // Stale: the stored version is 2 now.
  EXPECT_EQ(CodeOf(ApplyAudited({Move(run, "running", true)})), ErrorCode::kPreconditionFailed);
  // Not advancing by exactly one is a programming error.
  PipelineRunRecord skip = Moved(next, "running", true);
  skip.version = 4;
  EXPECT_EQ(CodeOf(ApplyAudited({UpdateRunEffect{skip, 2}})), ErrorCode::kInternal);
  EXPECT_EQ(CodeOf(ApplyAudited({UpdateRunEffect{Moved(next, "running", true), 1}})), ErrorCode::kInternal);
  // Unknown id, another store or another kind: not the run the caller means.
  PipelineRunRecord unknown = Moved(next, "running", true);
  unknown.id = "run_none";
  EXPECT_EQ(CodeOf(ApplyAudited({UpdateRunEffect{unknown, 2}})), ErrorCode::kNotFound);
  PipelineRunRecord moved_store = Moved(next, "running", true);
  moved_store.store_id = "shop-b";
  EXPECT_EQ(CodeOf(ApplyAudited({UpdateRunEffect{moved_store, 2}})), ErrorCode::kNotFound);
  PipelineRunRecord other_kind = Moved(next, "running", true);
  other_kind.kind = "rollback";
  EXPECT_EQ(CodeOf(ApplyAudited({UpdateRunEffect{other_kind, 2}})), ErrorCode::kNotFound);
  // A state the schema refuses.
  PipelineRunRecord inconsistent = Moved(next, "failed", true);
  EXPECT_EQ(CodeOf(ApplyAudited({UpdateRunEffect{inconsistent, 2}})), ErrorCode::kInternal);
  ExpectSameRun(Run("run_1"), next);

  // Two updates of one run in one batch chain their versions.
  auto chained = ApplyAudited({Move(next, "running", true), Move(Moved(next, "running", true), "succeeded", true)});
  ASSERT_TRUE(chained.ok()) << chained.error().message;
  ASSERT_EQ(chained->runs.size(), 2u);
  EXPECT_EQ(chained->runs[0].version, 3);
  EXPECT_EQ(chained->runs[1].version, 4);
  EXPECT_EQ(Run("run_1").state, "succeeded");
}

// ---- outbox ----

TEST_P(RunsStorageTest, DueOutboxListsUnsentEntriesByTimeAndUpdatesAreOptimistic) {
  Start(MakeRun("run_a", "shop-a", "deploy", kT0));
  Start(MakeRun("run_b", "shop-b", "deploy", kT0 + 10));
  EXPECT_TRUE(Due(kT0 - 1).empty());
  EXPECT_EQ(Due(kT0), (std::vector<std::string>{"run_a"}));
  EXPECT_EQ(Due(kT0 + 10), (std::vector<std::string>{"run_a", "run_b"}));
  EXPECT_EQ(Due(kT0 + 10, 1), (std::vector<std::string>{"run_a"}));

  // A failed attempt backs run_a off behind run_b.
  OutboxEntry a = Outbox("run_a");
  OutboxEntry retry = a;
  retry.attempts = 1;
  retry.last_error = "provider unavailable";
  retry.next_attempt_at_ms = kT0 + 100;
  retry.version = 2;
  MustApply({UpdateOutboxEffect{retry, 1}});
  EXPECT_EQ(Due(kT0 + 50), (std::vector<std::string>{"run_b"}));
  EXPECT_EQ(Due(kT0 + 100), (std::vector<std::string>{"run_b", "run_a"}));
  OutboxEntry stored = Outbox("run_a");
  EXPECT_EQ(stored.seq, a.seq);
  EXPECT_EQ(stored.attempts, 1);
  EXPECT_EQ(stored.last_error, "provider unavailable");
  EXPECT_EQ(stored.next_attempt_at_ms, kT0 + 100);
  EXPECT_EQ(stored.created_at_ms, a.created_at_ms);
  EXPECT_EQ(stored.version, 2);

  // Sent entries are due no more.
  OutboxEntry sent = Outbox("run_b");
  sent.sent_at_ms = kT0 + 60;
  sent.attempts = 1;
  sent.version = 2;
  MustApply({UpdateOutboxEffect{sent, 1}});
  EXPECT_EQ(Due(kT0 + 1'000'000), (std::vector<std::string>{"run_a"}));
  EXPECT_EQ(Outbox("run_b").sent_at_ms, std::optional<std::int64_t>(kT0 + 60));

  // Stale, skipped and unknown versions.
  EXPECT_EQ(CodeOf(ApplyAudited({UpdateOutboxEffect{sent, 1}})), ErrorCode::kPreconditionFailed);
  OutboxEntry skip = Outbox("run_a");
  skip.version = 5;
  EXPECT_EQ(CodeOf(ApplyAudited({UpdateOutboxEffect{skip, 2}})), ErrorCode::kInternal);
  OutboxEntry unknown = Outbox("run_a");
  unknown.run_id = "run_none";
  unknown.version = 3;
  EXPECT_EQ(CodeOf(ApplyAudited({UpdateOutboxEffect{unknown, 2}})), ErrorCode::kNotFound);

  auto bad_limit = repo_->ListDueOutbox(kT0, 0);
  ASSERT_FALSE(bad_limit.ok());
  EXPECT_EQ(bad_limit.error().code, ErrorCode::kInvalidArgument);
}

TEST_P(RunsStorageTest, TheTriggerCommitsWithTheRunTransition) {
  PipelineRunRecord run = Start(MakeRun("run_1", "shop-a"));
  OutboxEntry sent = Outbox("run_1");
  sent.sent_at_ms = kT0 + 5;
  sent.attempts = 1;
  sent.version = 2;
  PipelineRunRecord triggered = Moved(run, "triggered", true);
  triggered.external_id = "ext-1";
  // A stale run version fails the outbox update of the same batch too.
  PipelineRunRecord stale = triggered;
  stale.version = 3;
  EXPECT_EQ(CodeOf(ApplyAudited({UpdateOutboxEffect{sent, 1}, UpdateRunEffect{stale, 2}})),
            ErrorCode::kPreconditionFailed);
  EXPECT_EQ(Outbox("run_1").version, 1);
  EXPECT_FALSE(Outbox("run_1").sent_at_ms.has_value());

  MustApply({UpdateOutboxEffect{sent, 1}, UpdateRunEffect{triggered, 1}});
  EXPECT_EQ(Run("run_1").state, "triggered");
  EXPECT_EQ(Outbox("run_1").sent_at_ms, std::optional<std::int64_t>(kT0 + 5));
}

// ---- callback deliveries ----

TEST_P(RunsStorageTest, ADuplicateCallbackDeliveryFailsItsWholeBatch) {
  PipelineRunRecord run = Start(MakeRun("run_1", "shop-a"));
  run = Advance(run, "triggered", true);
  MustApply({InsertCallbackDeliveryEffect{"github", "dlv-1", "run_1", kT0 + 10}, Move(run, "running", true)});
  run = Run("run_1");
  EXPECT_EQ(run.state, "running");
  const long long audit_before = AuditRows();

  // Replayed: the transition it carries is not applied.
  auto replay =
      ApplyAudited({InsertCallbackDeliveryEffect{"github", "dlv-1", "run_1", kT0 + 20}, Move(run, "succeeded", true)});
  ASSERT_FALSE(replay.ok());
  EXPECT_EQ(replay.error().code, ErrorCode::kAlreadyExists);
  EXPECT_EQ(Run("run_1").state, "running");
  EXPECT_EQ(Run("run_1").version, run.version);
  EXPECT_EQ(AuditRows(), audit_before);
  EXPECT_EQ(QueryInt("SELECT received_at_ms FROM callback_deliveries"), kT0 + 10);

  // The same delivery id from another provider is another delivery.
  MustApply({InsertCallbackDeliveryEffect{"gitlab", "dlv-1", "run_1", kT0 + 30}, Move(run, "succeeded", true)});
  EXPECT_EQ(Run("run_1").state, "succeeded");
  EXPECT_EQ(Rows("callback_deliveries"), 2);

  // A delivery for a run that does not exist.
  EXPECT_EQ(CodeOf(ApplyAudited({InsertCallbackDeliveryEffect{"github", "dlv-2", "run_none", kT0}})),
            ErrorCode::kNotFound);
  EXPECT_EQ(CodeOf(ApplyAudited({InsertCallbackDeliveryEffect{"github", "", "run_1", kT0}})), ErrorCode::kInternal);
}

TEST_P(RunsStorageTest, ConcurrentDuplicateCallbacksMakeExactlyOneTransition) {
  PipelineRunRecord run = Start(MakeRun("run_1", "shop-a"));
  run = Advance(run, "triggered", true);
  const long long audit_before = AuditRows();
  constexpr int kThreads = 16;
  std::atomic<int> ok{0};
  std::atomic<int> duplicates{0};
  std::atomic<int> others{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      WriteBatch batch;
      batch.effects.push_back(InsertCallbackDeliveryEffect{"github", "dlv-same", "run_1", kT0 + t});
      batch.effects.push_back(Move(run, "running", true));
      batch.audit.push_back(TestAudit("run.callback", "run/run_1", 1000 + t));
      auto applied = repo_->Apply(batch);
      if (applied.ok()) {
        ++ok;
      } else if (applied.error().code == ErrorCode::kAlreadyExists) {
        ++duplicates;
      } else {
        ++others;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(ok.load(), 1);
  EXPECT_EQ(duplicates.load(), kThreads - 1);
  EXPECT_EQ(others.load(), 0);
  PipelineRunRecord stored = Run("run_1");
  EXPECT_EQ(stored.state, "running");
  EXPECT_EQ(stored.version, run.version + 1);
  EXPECT_EQ(Rows("callback_deliveries"), 1);
  EXPECT_EQ(AuditRows(), audit_before + 1);
}

TEST_P(RunsStorageTest, ConcurrentRequestsForOneStoreStartExactlyOneRun) {
  constexpr int kThreads = 12;
  std::atomic<int> ok{0};
  std::atomic<int> conflicts{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      WriteBatch batch;
      batch.effects.push_back(InsertRun(MakeRun("run_" + std::to_string(t), "shop-a")));
      batch.audit.push_back(TestAudit("run.deploy", "store/shop-a", 2000 + t));
      auto applied = repo_->Apply(batch);
      if (applied.ok()) ++ok;
      if (!applied.ok() && applied.error().code == ErrorCode::kConflict) ++conflicts;
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(ok.load(), 1);
  EXPECT_EQ(conflicts.load(), kThreads - 1);
  EXPECT_EQ(Rows("pipeline_runs"), 1);
  EXPECT_EQ(Rows("outbox"), 1);
}

// Two requests for one store at the same moment, through one repository (on PostgreSQL two
// transactions on two connections, the second waiting on the first's index entry): exactly
// one run starts, the other request is told which run the store already has.
TEST_P(RunsStorageTest, TwoSimultaneousRunsForOneStoreStartExactlyOne) {
  constexpr int kRounds = 10;
  for (int round = 0; round < kRounds; ++round) {
    const std::string store = "race-" + std::to_string(round);
    Insert(MakeStore(store));
    const long long audit_before = AuditRows();
    std::latch start(2);
    Result<WriteResult> outcome[2] = {Error::Internal("not run"), Error::Internal("not run")};
    std::vector<std::thread> threads;
    for (int t = 0; t < 2; ++t) {
      threads.emplace_back([&, t] {
        WriteBatch batch;
        batch.effects.push_back(InsertRun(MakeRun(store + "-run_" + std::to_string(t), store)));
        batch.audit.push_back(TestAudit("run.deploy", "store/" + store, 3000 + 2 * round + t));
        start.arrive_and_wait();
        outcome[t] = repo_->Apply(batch);
      });
    }
    for (auto& thread : threads) thread.join();
    ASSERT_NE(outcome[0].ok(), outcome[1].ok()) << "round " << round << ": exactly one must succeed";
    const int winner = outcome[0].ok() ? 0 : 1;
    const Error& lost = outcome[1 - winner].error();
    EXPECT_EQ(lost.code, ErrorCode::kConflict) << lost.message;
    const std::string winner_id = store + "-run_" + std::to_string(winner);
    EXPECT_NE(lost.message.find(Quoted(winner_id)), std::string::npos) << lost.message;
    ASSERT_EQ(outcome[winner]->runs.size(), 1u);
    EXPECT_EQ(outcome[winner]->runs[0].id, winner_id);
    Repository::RunQuery of_store;
    of_store.store_id = store;
    EXPECT_EQ(List(of_store), (std::vector<std::string>{winner_id}));
    EXPECT_TRUE(Outbox(winner_id).run_id == winner_id);
    auto loser_outbox = repo_->GetOutbox(store + "-run_" + std::to_string(1 - winner));
    ASSERT_TRUE(loser_outbox.ok());
    EXPECT_FALSE(loser_outbox->has_value());
    EXPECT_EQ(AuditRows(), audit_before + 1);
  }
  EXPECT_EQ(Rows("pipeline_runs"), kRounds);
  EXPECT_EQ(Rows("outbox"), kRounds);
}

// ---- metrics ----

TEST_P(RunsStorageTest, RunsAreCountedByKindAndStateAndUnsentTriggersArePending) {
  auto empty = repo_->CountRunsByKindState();
  ASSERT_TRUE(empty.ok()) << empty.error().message;
  EXPECT_TRUE(empty->empty());
  auto none_pending = repo_->CountPendingOutbox();
  ASSERT_TRUE(none_pending.ok()) << none_pending.error().message;
  EXPECT_EQ(*none_pending, 0);

  PipelineRunRecord r1 = Start(MakeRun("run_1", "shop-a"));
  Advance(r1, "failed", false);
  PipelineRunRecord r2 = Start(MakeRun("run_2", "shop-a"));
  Advance(r2, "failed", false);
  Start(MakeRun("run_3", "shop-a"));
  PipelineRunRecord r4 = Start(MakeRun("run_4", "shop-b", "provision"));
  Advance(r4, "triggered", true);
  OutboxEntry sent = Outbox("run_4");
  sent.sent_at_ms = kT0 + 1;
  sent.version = 2;
  MustApply({UpdateOutboxEffect{sent, 1}});

  auto groups = repo_->CountRunsByKindState();
  ASSERT_TRUE(groups.ok()) << groups.error().message;
  std::vector<std::string> seen;
  for (const auto& group : *groups) seen.push_back(group.kind + "/" + group.state + "=" + std::to_string(group.count));
  EXPECT_EQ(seen, (std::vector<std::string>{"deploy/failed=2", "deploy/pending=1", "provision/triggered=1"}));
  auto pending = repo_->CountPendingOutbox();
  ASSERT_TRUE(pending.ok()) << pending.error().message;
  EXPECT_EQ(*pending, 3);
}

// ---- listings ----

TEST_P(RunsStorageTest, ListRunsFiltersPagesNewestFirst) {
  PipelineRunRecord r1 = Start(MakeRun("run_1", "shop-a"));
  Advance(r1, "failed", false);
  PipelineRunRecord r2 = Start(MakeRun("run_2", "shop-b", "provision"));
  Advance(r2, "succeeded", false);
  PipelineRunRecord r3 = Start(MakeRun("run_3", "shop-a", "rollback"));
  Advance(r3, "cancelled", false);
  Start(MakeRun("run_4", "shop-a"));
  Start(MakeRun("run_5", "shop-b"));

  Repository::RunQuery all;
  EXPECT_EQ(List(all), (std::vector<std::string>{"run_5", "run_4", "run_3", "run_2", "run_1"}));
  Repository::RunQuery store_a;
  store_a.store_id = "shop-a";
  EXPECT_EQ(List(store_a), (std::vector<std::string>{"run_4", "run_3", "run_1"}));
  Repository::RunQuery failed;
  failed.state = "failed";
  EXPECT_EQ(List(failed), (std::vector<std::string>{"run_1"}));
  Repository::RunQuery active;
  active.active_only = true;
  EXPECT_EQ(List(active), (std::vector<std::string>{"run_5", "run_4"}));
  active.store_id = "shop-b";
  EXPECT_EQ(List(active), (std::vector<std::string>{"run_5"}));
  Repository::RunQuery pending_a;
  pending_a.store_id = "shop-a";
  pending_a.state = "pending";
  EXPECT_EQ(List(pending_a), (std::vector<std::string>{"run_4"}));

  // Pages by cursor.
  Repository::RunQuery page;
  page.limit = 2;
  EXPECT_EQ(List(page), (std::vector<std::string>{"run_5", "run_4"}));
  page.before_id = "run_4";
  EXPECT_EQ(List(page), (std::vector<std::string>{"run_3", "run_2"}));
  page.before_id = "run_2";
  EXPECT_EQ(List(page), (std::vector<std::string>{"run_1"}));
  page.before_id = "run_1";
  EXPECT_TRUE(List(page).empty());
  store_a.before_id = "run_4";
  store_a.limit = 1;
  EXPECT_EQ(List(store_a), (std::vector<std::string>{"run_3"}));

  // Bad cursors and limits.
  Repository::RunQuery bad;
  bad.before_id = "run_none";
  auto unknown = repo_->ListRuns(bad);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(unknown.error().field, "cursor");
  bad.before_id = "run_5";  // a run of shop-b
  bad.store_id = "shop-a";
  auto foreign = repo_->ListRuns(bad);
  ASSERT_FALSE(foreign.ok());
  EXPECT_EQ(foreign.error().field, "cursor");
  for (int limit : {0, 1001}) {
    Repository::RunQuery out_of_range;
    out_of_range.limit = limit;
    auto refused = repo_->ListRuns(out_of_range);
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().code, ErrorCode::kInvalidArgument);
  }

  // The reconcilers' work list: active runs, oldest first.
  auto active_runs = repo_->ListActiveRuns();
  ASSERT_TRUE(active_runs.ok());
  EXPECT_EQ(Ids(*active_runs), (std::vector<std::string>{"run_4", "run_5"}));
}

TEST_P(RunsStorageTest, VerifiedReleasesAreDistinctNewestFirst) {
  // Verified deploys and rollbacks of shop-a: r1, r2, r1 again (a rollback), then r3.
  auto verify = [&](const std::string& id, const std::string& kind, const std::string& release) {
    PipelineRunRecord run = MakeRun(id, "shop-a", kind);
    run.release = release;
    run = Start(run);
    run = Advance(run, "succeeded", true);
    run = Advance(run, "verifying", true);
    Advance(run, "verified", false);
  };
  verify("run_1", "deploy", "r1");
  verify("run_2", "deploy", "r2");
  verify("run_3", "rollback", "r1");
  // A deploy whose gate failed and a provision do not count.
  PipelineRunRecord gate_failed = MakeRun("run_4", "shop-a");
  gate_failed.release = "r-bad";
  gate_failed = Start(gate_failed);
  gate_failed = Advance(gate_failed, "succeeded", true);
  gate_failed = Advance(gate_failed, "verifying", true);
  Advance(gate_failed, "verification_failed", false);
  verify("run_5", "deploy", "r3");
  PipelineRunRecord other_store = MakeRun("run_6", "shop-b");
  other_store.release = "r-b";
  other_store = Start(other_store);
  other_store = Advance(other_store, "succeeded", true);
  other_store = Advance(other_store, "verifying", true);
  Advance(other_store, "verified", false);
  Start(MakeRun("run_7", "shop-a", "provision"));  // active, pending

  auto releases = repo_->ListVerifiedReleases("shop-a", 10);
  ASSERT_TRUE(releases.ok());
  EXPECT_EQ(*releases, (std::vector<std::string>{"r3", "r1", "r2"}));
  auto two = repo_->ListVerifiedReleases("shop-a", 2);
  ASSERT_TRUE(two.ok());
  EXPECT_EQ(*two, (std::vector<std::string>{"r3", "r1"}));
  auto b = repo_->ListVerifiedReleases("shop-b", 10);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(*b, (std::vector<std::string>{"r-b"}));
  auto none = repo_->ListVerifiedReleases("shop-none", 10);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  EXPECT_EQ(repo_->ListVerifiedReleases("shop-a", 0).error().code, ErrorCode::kInvalidArgument);
}

// ---- persistence and upgrade ----

TEST_P(RunsStorageTest, EverythingSurvivesCloseAndReopen) {
  PipelineRunRecord run = Start(MakeRun("run_1", "shop-a"));
  run = Advance(run, "triggered", true);
  MustApply({InsertCallbackDeliveryEffect{"github", "dlv-1", "run_1", kT0 + 10}});
  OutboxEntry sent = Outbox("run_1");
  sent.sent_at_ms = kT0 + 3;
  sent.version = 2;
  MustApply({UpdateOutboxEffect{sent, 1}});

  Reopen();

  ExpectSameRun(Run("run_1"), run);
  EXPECT_EQ(Outbox("run_1").sent_at_ms, std::optional<std::int64_t>(kT0 + 3));
  // The delivery is still remembered, and the store still has its active run.
  EXPECT_EQ(CodeOf(ApplyAudited({InsertCallbackDeliveryEffect{"github", "dlv-1", "run_1", kT0 + 20}})),
            ErrorCode::kAlreadyExists);
  EXPECT_EQ(CodeOf(ApplyAudited({InsertRun(MakeRun("run_2", "shop-a"))})), ErrorCode::kConflict);

  // Ordering continues after the reopen.
  Start(MakeRun("run_2", "shop-b"));
  Repository::RunQuery all;
  EXPECT_EQ(List(all), (std::vector<std::string>{"run_2", "run_1"}));
  EXPECT_GT(Outbox("run_2").seq, Outbox("run_1").seq);
}

TEST(RunsStorageUpgradeTest, AVersionThreeDatabaseIsMigratedAndKeepsItsData) {
  testing::TempDir dir;
  const std::string path = (dir.path() / "v3.sqlite").string();
  {
    auto conn = Connection::Open(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, 5000);
    ASSERT_TRUE(conn.ok());
    const std::string v3 = std::string(
                               "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY NOT NULL, "
                               "applied_at INTEGER NOT NULL);") +
                           AllMigrations()[0].sql + AllMigrations()[1].sql + AllMigrations()[2].sql +
                           "INSERT INTO schema_migrations VALUES (1, 0);"
                           "INSERT INTO schema_migrations VALUES (2, 0);"
                           "INSERT INTO schema_migrations VALUES (3, 0);"
                           "INSERT INTO stores VALUES ('old-shop', 'Old Shop', 'production', 'shared', '{}', "
                           "'active', NULL, 'r1', 'r1', 3, 1, 2);"
                           "INSERT INTO agents (store_id, id, credential_hash, enrolled_at_ms) VALUES "
                           "('old-shop', 'agt_1', 'cred-1', 5);"
                           "INSERT INTO operations (id, store_id, name, state, requested_by, created_at_ms, "
                           "expires_at_ms, timeout_s, version) VALUES ('op_1', 'old-shop', 'cache.flush', "
                           "'queued', 'alice', 6, 7, 60, 1);";
    ASSERT_TRUE(conn->Exec(v3.c_str(), "create a version 3 database").ok());
  }
  SqliteOptions options;
  options.path = path;
  auto opened = OpenSqliteRepository(options);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  Repository& repo = **opened;
  EXPECT_EQ(QueryIntRaw(path, "SELECT MAX(version) FROM schema_migrations"), LatestSchemaVersion());

  auto store = repo.GetStore("old-shop");
  ASSERT_TRUE(store.ok()) << store.error().message;
  EXPECT_EQ(store->version, 3);
  auto agent = repo.GetAgent("old-shop");
  ASSERT_TRUE(agent.ok() && agent->has_value());
  EXPECT_EQ((*agent)->id, "agt_1");
  auto op = repo.GetOperation("op_1");
  ASSERT_TRUE(op.ok());
  EXPECT_EQ(op->state, "queued");

  // The new tables work against the old rows.
  auto none = repo.ListActiveRuns();
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  WriteBatch batch;
  PipelineRunRecord run = MakeRun("run_1", "old-shop");
  batch.effects.push_back(InsertRun(run));
  batch.audit.push_back(TestAudit("run.deploy", "store/old-shop"));
  auto applied = repo.Apply(batch);
  ASSERT_TRUE(applied.ok()) << applied.error().message;
  auto active = repo.ListActiveRuns();
  ASSERT_TRUE(active.ok());
  EXPECT_EQ(Ids(*active), (std::vector<std::string>{"run_1"}));
  auto due = repo.ListDueOutbox(kT0, 10);
  ASSERT_TRUE(due.ok());
  EXPECT_EQ(RunIds(*due), (std::vector<std::string>{"run_1"}));
}

INSTANTIATE_BACKENDS(RunsStorageTest);

}  // namespace
}  // namespace storeplane::db
