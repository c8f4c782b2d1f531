// Fleet rollouts in storage (schema v6): rollouts with their targets and command inbox,
// optimistic updates that replace the changed targets and consume commands (all or nothing
// with the batch), listings with their filters and cursors, runs that know their rollout,
// 10,000 targets in one insert, persistence and the upgrade from v5. Every test but the SQLite
// upgrade runs against both back ends (SQLite and PostgreSQL).
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "db/migrations.h"
#include "db_test_util.h"

namespace storeplane::db {
namespace {

using testing::BackendTest;
using testing::ExecRaw;
using testing::MakeStore;
using testing::QueryIntRaw;
using testing::TestAudit;

constexpr std::int64_t kT0 = 1'700'000'000'000;

RolloutRecord MakeRollout(std::string id, std::string environment = "production", std::int64_t created_at_ms = kT0,
                          std::string state = "pending") {
  RolloutRecord rollout;
  rollout.id = std::move(id);
  rollout.environment = std::move(environment);
  rollout.release = "r2";
  rollout.spec_json = R"({"release":"r2","selector":{"environment":")" + rollout.environment + R"("}})";
  rollout.plan_json = R"([["shop-a"],["shop-b","shop-c"]])";
  rollout.state = std::move(state);
  rollout.created_by = "alice";
  rollout.request_id = "req-" + rollout.id;
  rollout.created_at_ms = created_at_ms;
  rollout.updated_at_ms = created_at_ms;
  return rollout;
}

RolloutTargetRecord MakeTarget(std::string store_id, int position, int wave) {
  RolloutTargetRecord target;
  target.store_id = std::move(store_id);
  target.position = position;
  target.wave = wave;
  target.updated_at_ms = kT0;
  return target;
}

// shop-a in the canary, shop-b and shop-c in wave 1, as MakeRollout's plan says.
std::vector<RolloutTargetRecord> ThreeTargets() {
  return {MakeTarget("shop-a", 0, 0), MakeTarget("shop-b", 1, 1), MakeTarget("shop-c", 2, 1)};
}

RolloutCommandRecord MakeCommand(std::string rollout_id, std::string kind, int wave = 0, bool rollback = false) {
  RolloutCommandRecord command;
  command.rollout_id = std::move(rollout_id);
  command.kind = std::move(kind);
  command.wave = wave;
  command.rollback = rollback;
  command.principal_id = "bob";
  command.request_id = "req-cmd";
  command.created_at_ms = kT0 + 5;
  return command;
}

// The next version of `rollout` (its progress moved by the caller).
UpdateRolloutEffect Next(const RolloutRecord& rollout, std::vector<RolloutTargetRecord> changed = {},
                         std::int64_t consumed_through = 0) {
  RolloutRecord updated = rollout;
  updated.version = rollout.version + 1;
  updated.updated_at_ms = rollout.updated_at_ms + 1000;
  return UpdateRolloutEffect{updated, rollout.version, std::move(changed), consumed_through};
}

void ExpectSameRollout(const RolloutRecord& got, const RolloutRecord& want) {
  EXPECT_EQ(got.id, want.id);
  EXPECT_EQ(got.environment, want.environment);
  EXPECT_EQ(got.release, want.release);
  EXPECT_EQ(got.spec_json, want.spec_json);
  EXPECT_EQ(got.plan_json, want.plan_json);
  EXPECT_EQ(got.state, want.state);
  EXPECT_EQ(got.paused_from, want.paused_from);
  EXPECT_EQ(got.current_wave, want.current_wave);
  EXPECT_EQ(got.resume_at_ms, want.resume_at_ms);
  EXPECT_EQ(got.ending, want.ending);
  EXPECT_EQ(got.rollback_on_abort, want.rollback_on_abort);
  EXPECT_EQ(got.failed_deploys, want.failed_deploys);
  EXPECT_EQ(got.counts_json, want.counts_json);
  EXPECT_EQ(got.created_by, want.created_by);
  EXPECT_EQ(got.request_id, want.request_id);
  EXPECT_EQ(got.created_at_ms, want.created_at_ms);
  EXPECT_EQ(got.updated_at_ms, want.updated_at_ms);
  EXPECT_EQ(got.finished_at_ms, want.finished_at_ms);
  EXPECT_EQ(got.version, want.version);
}

void ExpectSameTarget(const RolloutTargetRecord& got, const RolloutTargetRecord& want) {
  EXPECT_EQ(got.rollout_id, want.rollout_id);
  EXPECT_EQ(got.store_id, want.store_id);
  EXPECT_EQ(got.position, want.position);
  EXPECT_EQ(got.wave, want.wave);
  EXPECT_EQ(got.state, want.state);
  EXPECT_EQ(got.skip_reason, want.skip_reason);
  EXPECT_EQ(got.deploy_run_id, want.deploy_run_id);
  EXPECT_EQ(got.deploy_final_state, want.deploy_final_state);
  EXPECT_EQ(got.previous_release, want.previous_release);
  EXPECT_EQ(got.rollback_run_id, want.rollback_run_id);
  EXPECT_EQ(got.rollback_final_state, want.rollback_final_state);
  EXPECT_EQ(got.updated_at_ms, want.updated_at_ms);
}

std::vector<std::string> Ids(const std::vector<RolloutRecord>& rollouts) {
  std::vector<std::string> ids;
  for (const auto& rollout : rollouts) ids.push_back(rollout.id);
  return ids;
}

std::vector<std::string> Stores(const std::vector<RolloutTargetRecord>& targets) {
  std::vector<std::string> stores;
  for (const auto& target : targets) stores.push_back(target.store_id);
  return stores;
}

std::vector<std::int64_t> Seqs(const std::vector<RolloutCommandRecord>& commands) {
  std::vector<std::int64_t> seqs;
  for (const auto& command : commands) seqs.push_back(command.seq);
  return seqs;
}

ErrorCode CodeOf(const Result<WriteResult>& result) {
  EXPECT_FALSE(result.ok());
  return result.ok() ? ErrorCode::kInternal : result.error().code;
}

// The detail column of EXPLAIN QUERY PLAN for `sql`, one line per step.
std::string QueryPlan(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  std::string plan;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db, ("EXPLAIN QUERY PLAN " + sql).c_str(), -1, &stmt, nullptr) == SQLITE_OK) {
      while (sqlite3_step(stmt) == SQLITE_ROW) {
        plan += reinterpret_cast<const char*>(sqlite3_column_text(stmt, 3));
        plan += "\n";
      }
    }
    sqlite3_finalize(stmt);
  }
  sqlite3_close(db);
  return plan;
}

// PostgreSQL's plan for `sql` (EXPLAIN, one line per row) with sequential and bitmap scans priced out,
// as they would be at scale: what remains shows whether an index serves the filter and the
// order (a "Sort" node when none does).
std::string PostgresPlan(const std::string& conninfo, const std::string& sql) {
  auto conn = pg::PgConnection::Open(conninfo);
  if (!conn.ok() || !conn->Script("SET enable_seqscan = off; SET enable_bitmapscan = off", "test").ok())
    return "<no connection>";
  auto rows = conn->Exec(("EXPLAIN " + sql).c_str(), "test");
  if (!rows.ok()) return "<" + rows.error().message + ">";
  std::string plan;
  for (int r = 0; r < rows->size(); ++r) plan += rows->Text(r, 0) + "\n";
  return plan;
}

class RolloutsStorageTest : public BackendTest {
 protected:
  void SetUp() override {
    BackendTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    for (const char* id : {"shop-a", "shop-b", "shop-c", "shop-d"}) Insert(MakeStore(id));
  }

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

  // Inserts the rollout with its targets and returns it as stored.
  RolloutRecord Create(const RolloutRecord& rollout, std::vector<RolloutTargetRecord> targets = ThreeTargets()) {
    auto applied = ApplyAudited({InsertRolloutEffect{rollout, std::move(targets)}});
    EXPECT_TRUE(applied.ok()) << (applied.ok() ? "" : applied.error().message);
    if (!applied.ok() || applied->rollouts.size() != 1) return RolloutRecord{};
    return applied->rollouts[0];
  }

  // Applies the update and returns the rollout as stored.
  RolloutRecord Update(const UpdateRolloutEffect& effect) {
    auto applied = ApplyAudited({effect});
    EXPECT_TRUE(applied.ok()) << (applied.ok() ? "" : applied.error().message);
    if (!applied.ok() || applied->rollouts.size() != 1) return RolloutRecord{};
    return applied->rollouts[0];
  }

  RolloutRecord Get(const std::string& id) {
    auto rollout = repo_->GetRollout(id);
    EXPECT_TRUE(rollout.ok()) << id;
    return rollout.ok() ? *rollout : RolloutRecord{};
  }

  std::vector<RolloutTargetRecord> Targets(const std::string& id, const Repository::RolloutTargetQuery& query = {}) {
    auto targets = repo_->ListRolloutTargets(id, query);
    EXPECT_TRUE(targets.ok()) << (targets.ok() ? "" : targets.error().message);
    return targets.ok() ? *targets : std::vector<RolloutTargetRecord>{};
  }

  std::vector<RolloutCommandRecord> Commands(const std::string& id) {
    auto commands = repo_->ListRolloutCommands(id);
    EXPECT_TRUE(commands.ok()) << (commands.ok() ? "" : commands.error().message);
    return commands.ok() ? *commands : std::vector<RolloutCommandRecord>{};
  }

  std::vector<std::string> List(const Repository::RolloutQuery& query) {
    auto rollouts = repo_->ListRollouts(query);
    EXPECT_TRUE(rollouts.ok()) << (rollouts.ok() ? "" : rollouts.error().message);
    return rollouts.ok() ? Ids(*rollouts) : std::vector<std::string>{"<error>"};
  }

  long long AuditRows() { return QueryInt("SELECT COUNT(*) FROM audit_log"); }

  // The statement, run behind the repository's back, is refused by a constraint or trigger
  // of the schema (SQLite: SQLITE_CONSTRAINT; PostgreSQL: an integrity constraint violation,
  // SQLSTATE class 23, which the triggers raise too).
  ::testing::AssertionResult Refused(const std::string& sql) {
    if (!postgres()) {
      const int rc = ExecRaw(options_.path, sql);
      if (rc == SQLITE_CONSTRAINT) return ::testing::AssertionSuccess();
      return ::testing::AssertionFailure() << "rc " << rc;
    }
    auto conn = pg::PgConnection::Open(pg_options_.conninfo);
    if (!conn.ok()) return ::testing::AssertionFailure() << conn.error().message;
    if (conn->Script(sql, "test").ok()) return ::testing::AssertionFailure() << "accepted";
    const std::string& sqlstate = conn->last_failure().sqlstate;
    if (sqlstate.starts_with("23")) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "SQLSTATE " << sqlstate;
  }

  // The runs area of the PostgreSQL back end is ported separately: until pipeline_runs
  // exists there, the tests of runs that know their rollout cannot run on it.
  bool NoPipelineRuns() { return postgres() && QueryInt("SELECT (to_regclass('pipeline_runs') IS NULL)::int") == 1; }

  int audit_n_ = 100;
};

// ---- schema ----

TEST_P(RolloutsStorageTest, SchemaVersionSixHasTheNewTablesIndexesAndColumn) {
  const std::vector<const char*> tables = {"rollouts", "rollout_targets", "rollout_commands"};
  const std::vector<const char*> indexes = {"rollouts_by_created_at",   "rollouts_by_environment",
                                            "rollouts_active",          "rollout_targets_by_wave",
                                            "rollout_targets_by_state", "rollout_commands_by_rollout"};
  if (postgres()) {
    // PostgreSQL's first schema version is SQLite's version 6.
    EXPECT_GE(PostgresTargetSchemaVersion(), 1);
    EXPECT_EQ(QueryInt("SELECT COUNT(*) FROM schema_migrations WHERE version = 1"), 1);
    for (const char* table : tables) {
      EXPECT_EQ(QueryInt(std::string("SELECT COUNT(*) FROM pg_tables WHERE schemaname = current_schema() AND "
                                     "tablename = '") +
                         table + "'"),
                1)
          << table;
    }
    for (const char* index : indexes) {
      EXPECT_EQ(QueryInt(std::string("SELECT COUNT(*) FROM pg_indexes WHERE schemaname = current_schema() AND "
                                     "indexname = '") +
                         index + "'"),
                1)
          << index;
    }
    // The commands' seq never goes back (a sequence), even after the newest command was consumed.
    EXPECT_EQ(QueryInt("SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = current_schema() AND "
                       "table_name = 'rollout_commands' AND column_name = 'seq' AND data_type = 'bigint' AND "
                       "column_default LIKE 'nextval(%'"),
              1);
    if (NoPipelineRuns()) {
      std::printf("[ note   ] no pipeline_runs on PostgreSQL yet (runs area): its rollout column not checked\n");
      return;
    }
    EXPECT_EQ(QueryInt("SELECT COUNT(*) FROM pg_indexes WHERE schemaname = current_schema() AND "
                       "indexname = 'pipeline_runs_by_rollout'"),
              1);
    EXPECT_EQ(QueryInt("SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = current_schema() AND "
                       "table_name = 'pipeline_runs' AND column_name = 'rollout_id' AND is_nullable = 'YES' AND "
                       "column_default IS NULL"),
              1);
    EXPECT_EQ(QueryInt("SELECT COUNT(*) FROM pg_constraint WHERE contype = 'f' AND "
                       "conrelid = 'pipeline_runs'::regclass AND confrelid = 'rollouts'::regclass"),
              1);
    return;
  }
  EXPECT_GE(LatestSchemaVersion(), 6);
  EXPECT_EQ(QueryInt("SELECT COUNT(*) FROM schema_migrations WHERE version = 6"), 1);
  for (const char* table : tables) {
    EXPECT_EQ(QueryInt(std::string("SELECT COUNT(*) FROM sqlite_master WHERE type='table' AND name='") + table + "'"),
              1)
        << table;
  }
  for (const char* index : indexes) {
    EXPECT_EQ(QueryInt(std::string("SELECT COUNT(*) FROM sqlite_master WHERE type='index' AND name='") + index + "'"),
              1)
        << index;
  }
  EXPECT_EQ(QueryInt("SELECT COUNT(*) FROM sqlite_master WHERE type='index' AND name='pipeline_runs_by_rollout'"), 1);
  EXPECT_EQ(QueryInt("SELECT COUNT(*) FROM pragma_table_info('pipeline_runs') WHERE "
                     "name = 'rollout_id' AND \"notnull\" = 0 AND dflt_value IS NULL"),
            1);
  // The commands' seq never goes back, even after the newest command was consumed.
  EXPECT_EQ(QueryInt("SELECT COUNT(*) FROM sqlite_master WHERE name = 'rollout_commands' AND sql LIKE "
                     "'%seq INTEGER PRIMARY KEY AUTOINCREMENT%'"),
            1);
}

TEST_P(RolloutsStorageTest, TheSchemaRefusesUnknownTextsAndChangesToThePlan) {
  Create(MakeRollout("rol_1"));
  Close();
  EXPECT_TRUE(Refused("UPDATE rollouts SET state = 'exploded'"));
  EXPECT_TRUE(Refused("UPDATE rollouts SET ending = 'boredom'"));
  EXPECT_TRUE(Refused("UPDATE rollouts SET paused_from = 'sleeping'"));
  EXPECT_TRUE(Refused("UPDATE rollouts SET plan_json = '[]'"));
  EXPECT_TRUE(Refused("UPDATE rollouts SET created_at_ms = 1"));
  EXPECT_TRUE(Refused("DELETE FROM rollouts"));
  EXPECT_TRUE(ExecSql("UPDATE rollouts SET state = 'paused', paused_from = 'running'"));
  EXPECT_TRUE(Refused("UPDATE rollout_targets SET state = 'exploded'"));
  EXPECT_TRUE(Refused("UPDATE rollout_targets SET skip_reason = 'tired'"));
  EXPECT_TRUE(Refused("UPDATE rollout_targets SET wave = 5 WHERE store_id = 'shop-a'"));
  EXPECT_TRUE(Refused("UPDATE rollout_targets SET position = 9 WHERE store_id = 'shop-a'"));
  EXPECT_TRUE(Refused("DELETE FROM rollout_targets"));
  EXPECT_TRUE(ExecSql("UPDATE rollout_targets SET state = 'skipped', skip_reason = 'window_closed'"));
  EXPECT_TRUE(
      Refused("INSERT INTO rollout_commands (rollout_id, kind, principal_id, created_at_ms) "
              "VALUES ('rol_1', 'explode', 'bob', 1)"));
  if (postgres()) {
    // TRUNCATE skips DELETE triggers: it has its own.
    EXPECT_TRUE(Refused("TRUNCATE rollout_targets"));
    EXPECT_TRUE(Refused("TRUNCATE rollouts CASCADE"));
  }
  EXPECT_EQ(QueryInt("SELECT COUNT(*) FROM rollout_targets WHERE state = 'skipped'"), 3);
  EXPECT_EQ(QueryInt("SELECT COUNT(*) FROM rollouts WHERE plan_json = '[]'"), 0);
}

// ---- insert and read back ----

TEST_P(RolloutsStorageTest, EveryFieldReadsBackWithOptionalsSetAndUnset) {
  RolloutRecord full = MakeRollout("rol_full", "staging", kT0 + 7, "paused");
  full.paused_from = "waiting_between_waves";
  full.current_wave = 3;
  full.resume_at_ms = kT0 + 60'000;
  full.ending = "abort";
  full.rollback_on_abort = true;
  full.failed_deploys = 2;
  full.counts_json = R"({"planned":3,"failed":2})";
  full.finished_at_ms = kT0 + 90'000;
  full.updated_at_ms = kT0 + 80'000;
  full.version = 4;  // inserted as given
  std::vector<RolloutTargetRecord> targets = ThreeTargets();
  targets[0].rollout_id = "rol_full";  // naming the rollout is allowed, leaving it empty too
  targets[0].state = "rolled_back";
  targets[0].deploy_run_id = "run_1";
  targets[0].deploy_final_state = "verified";
  targets[0].previous_release = "r1";
  targets[0].rollback_run_id = "run_2";
  targets[0].rollback_final_state = "verified";
  targets[0].updated_at_ms = kT0 + 11;
  targets[1].state = "skipped";
  targets[1].skip_reason = "agent_offline";

  auto applied = ApplyAudited({InsertRolloutEffect{full, targets}});
  ASSERT_TRUE(applied.ok()) << applied.error().message;
  ASSERT_EQ(applied->rollouts.size(), 1u);
  ExpectSameRollout(applied->rollouts[0], full);
  ExpectSameRollout(Get("rol_full"), full);

  auto stored = Targets("rol_full");
  ASSERT_EQ(stored.size(), 3u);
  for (auto& target : targets) target.rollout_id = "rol_full";
  for (std::size_t i = 0; i < 3; ++i) ExpectSameTarget(stored[i], targets[i]);

  // Every optional unset, every text at its default.
  RolloutRecord bare = MakeRollout("rol_bare");
  Create(bare, {MakeTarget("shop-d", 0, 0)});
  RolloutRecord got = Get("rol_bare");
  ExpectSameRollout(got, bare);
  EXPECT_FALSE(got.resume_at_ms.has_value());
  EXPECT_FALSE(got.finished_at_ms.has_value());
  EXPECT_EQ(got.paused_from, "");
  EXPECT_EQ(got.ending, "");
  EXPECT_EQ(got.counts_json, "{}");
  EXPECT_EQ(got.version, 1);
  auto bare_targets = Targets("rol_bare");
  ASSERT_EQ(bare_targets.size(), 1u);
  EXPECT_EQ(bare_targets[0].rollout_id, "rol_bare");
  EXPECT_EQ(bare_targets[0].state, "waiting");
  EXPECT_EQ(bare_targets[0].skip_reason, "");
  EXPECT_EQ(bare_targets[0].deploy_run_id, "");
  EXPECT_EQ(bare_targets[0].rollback_final_state, "");
  EXPECT_TRUE(Commands("rol_bare").empty());
}

TEST_P(RolloutsStorageTest, InsertErrorsWriteNothing) {
  Create(MakeRollout("rol_1"));
  const long long audit_before = AuditRows();

  // The id is taken: kAlreadyExists, and the first rollout's targets stay as they were.
  auto taken = ApplyAudited({InsertRolloutEffect{MakeRollout("rol_1", "staging"), {MakeTarget("shop-d", 0, 0)}}});
  EXPECT_EQ(CodeOf(taken), ErrorCode::kAlreadyExists);
  EXPECT_EQ(Get("rol_1").environment, "production");
  EXPECT_EQ(Stores(Targets("rol_1")), (std::vector<std::string>{"shop-a", "shop-b", "shop-c"}));

  // A target on a store that does not exist.
  EXPECT_EQ(CodeOf(ApplyAudited({InsertRolloutEffect{MakeRollout("rol_2"), {MakeTarget("shop-none", 0, 0)}}})),
            ErrorCode::kNotFound);
  // A store or a position listed twice, a target of another rollout, texts the schema refuses.
  EXPECT_EQ(CodeOf(ApplyAudited(
                {InsertRolloutEffect{MakeRollout("rol_2"), {MakeTarget("shop-a", 0, 0), MakeTarget("shop-a", 1, 0)}}})),
            ErrorCode::kInternal);
  EXPECT_EQ(CodeOf(ApplyAudited(
                {InsertRolloutEffect{MakeRollout("rol_2"), {MakeTarget("shop-a", 0, 0), MakeTarget("shop-b", 0, 0)}}})),
            ErrorCode::kInternal);
  RolloutTargetRecord foreign = MakeTarget("shop-a", 0, 0);
  foreign.rollout_id = "rol_1";
  EXPECT_EQ(CodeOf(ApplyAudited({InsertRolloutEffect{MakeRollout("rol_2"), {foreign}}})), ErrorCode::kInternal);
  RolloutTargetRecord odd = MakeTarget("shop-a", 0, 0);
  odd.state = "exploded";
  EXPECT_EQ(CodeOf(ApplyAudited({InsertRolloutEffect{MakeRollout("rol_2"), {odd}}})), ErrorCode::kInternal);
  EXPECT_EQ(CodeOf(ApplyAudited({InsertRolloutEffect{MakeRollout("rol_2", "production", kT0, "exploded"), {}}})),
            ErrorCode::kInternal);
  EXPECT_EQ(CodeOf(ApplyAudited({InsertRolloutEffect{MakeRollout(""), {}}})), ErrorCode::kInternal);

  // None of it was written, audit included.
  EXPECT_EQ(repo_->GetRollout("rol_2").error().code, ErrorCode::kNotFound);
  EXPECT_EQ(QueryInt("SELECT COUNT(*) FROM rollouts"), 1);
  EXPECT_EQ(QueryInt("SELECT COUNT(*) FROM rollout_targets"), 3);
  EXPECT_EQ(AuditRows(), audit_before);
}

TEST_P(RolloutsStorageTest, UnknownIdsAreNotFound) {
  EXPECT_EQ(repo_->GetRollout("rol_none").error().code, ErrorCode::kNotFound);
  auto targets = repo_->ListRolloutTargets("rol_none", {});
  ASSERT_FALSE(targets.ok());
  EXPECT_EQ(targets.error().code, ErrorCode::kNotFound);
  RolloutRecord ghost = MakeRollout("rol_none");
  EXPECT_EQ(CodeOf(ApplyAudited({Next(ghost)})), ErrorCode::kNotFound);
  EXPECT_EQ(CodeOf(ApplyAudited({InsertRolloutCommandEffect{MakeCommand("rol_none", "pause")}})), ErrorCode::kNotFound);
  // The inbox of a rollout that does not exist is empty (the interface does not call it an error).
  EXPECT_TRUE(Commands("rol_none").empty());
  EXPECT_EQ(QueryInt("SELECT COUNT(*) FROM rollout_commands"), 0);
}

// ---- update ----

TEST_P(RolloutsStorageTest, UpdateMovesTheProgressAndReplacesTheChangedTargets) {
  RolloutRecord rollout = Create(MakeRollout("rol_1"));
  Create(MakeRollout("rol_other", "production", kT0 + 1));

  UpdateRolloutEffect step = Next(rollout);
  step.updated.state = "running";
  step.updated.current_wave = 1;
  step.updated.resume_at_ms = kT0 + 5;
  step.updated.failed_deploys = 1;
  step.updated.counts_json = R"({"planned":3,"in_flight":1})";
  RolloutTargetRecord deploying = MakeTarget("shop-b", 1, 1);
  deploying.state = "deploying";
  deploying.deploy_run_id = "run_7";
  deploying.previous_release = "r1";
  deploying.updated_at_ms = kT0 + 1000;
  RolloutTargetRecord failed = MakeTarget("shop-a", 0, 0);
  failed.state = "failed";
  failed.deploy_run_id = "run_6";
  failed.deploy_final_state = "verification_failed";
  failed.updated_at_ms = kT0 + 1000;
  step.changed_targets = {deploying, failed};

  RolloutRecord stored = Update(step);
  ExpectSameRollout(stored, step.updated);
  ExpectSameRollout(Get("rol_1"), step.updated);

  auto targets = Targets("rol_1");
  ASSERT_EQ(targets.size(), 3u);
  failed.rollout_id = deploying.rollout_id = "rol_1";
  ExpectSameTarget(targets[0], failed);
  ExpectSameTarget(targets[1], deploying);
  RolloutTargetRecord untouched = MakeTarget("shop-c", 2, 1);
  untouched.rollout_id = "rol_1";
  ExpectSameTarget(targets[2], untouched);
  // The same store in another rollout is another target.
  for (const auto& target : Targets("rol_other")) EXPECT_EQ(target.state, "waiting") << target.store_id;

  // Replacing again: optional texts can go back to "", and updated_at moves.
  UpdateRolloutEffect again = Next(stored);
  again.updated.resume_at_ms.reset();
  again.updated.state = "succeeded";
  again.updated.finished_at_ms = kT0 + 9000;
  RolloutTargetRecord cleared = MakeTarget("shop-b", 1, 1);
  cleared.state = "succeeded";
  cleared.updated_at_ms = kT0 + 2000;
  again.changed_targets = {cleared};
  ExpectSameRollout(Update(again), again.updated);
  auto after = Targets("rol_1");
  ASSERT_EQ(after.size(), 3u);
  EXPECT_EQ(after[1].state, "succeeded");
  EXPECT_EQ(after[1].deploy_run_id, "");
  EXPECT_EQ(after[1].previous_release, "");
  EXPECT_EQ(after[1].updated_at_ms, kT0 + 2000);
  EXPECT_EQ(after[0].state, "failed");
  EXPECT_FALSE(Get("rol_1").resume_at_ms.has_value());
  EXPECT_EQ(Get("rol_1").version, 3);
}

TEST_P(RolloutsStorageTest, TheSpecPlanAndATargetsPlaceNeverChange) {
  RolloutRecord rollout = Create(MakeRollout("rol_1"));
  UpdateRolloutEffect step = Next(rollout);
  step.updated.state = "running";
  step.updated.spec_json = "{}";
  step.updated.plan_json = "[]";
  step.updated.environment = "staging";
  step.updated.created_at_ms = 1;
  RolloutTargetRecord moved = MakeTarget("shop-c", 0, 0);  // planned at position 2, wave 1
  moved.state = "deploying";
  step.changed_targets = {moved};

  RolloutRecord stored = Update(step);
  // The progress moved; the fixed fields are as created, also in WriteResult.
  EXPECT_EQ(stored.state, "running");
  EXPECT_EQ(stored.version, 2);
  EXPECT_EQ(stored.spec_json, rollout.spec_json);
  EXPECT_EQ(stored.plan_json, rollout.plan_json);
  EXPECT_EQ(stored.environment, "production");
  EXPECT_EQ(stored.created_at_ms, kT0);
  ExpectSameRollout(Get("rol_1"), stored);
  auto targets = Targets("rol_1");
  ASSERT_EQ(targets.size(), 3u);
  EXPECT_EQ(targets[2].store_id, "shop-c");
  EXPECT_EQ(targets[2].position, 2);
  EXPECT_EQ(targets[2].wave, 1);
  EXPECT_EQ(targets[2].state, "deploying");
}

TEST_P(RolloutsStorageTest, AStaleVersionFailsTheWholeBatchAndWritesNothing) {
  RolloutRecord rollout = Create(MakeRollout("rol_1"));
  MustApply({InsertRolloutCommandEffect{MakeCommand("rol_1", "pause")}});
  const std::vector<RolloutCommandRecord> commands = Commands("rol_1");
  ASSERT_EQ(commands.size(), 1u);
  RolloutRecord current = Update(Next(rollout));  // version 2
  const long long audit_before = AuditRows();

  // Built from version 1: stale. Its targets, its consumption and the command queued before
  // it in the same batch are all refused with it.
  UpdateRolloutEffect stale = Next(rollout);
  stale.updated.state = "running";
  RolloutTargetRecord changed = MakeTarget("shop-a", 0, 0);
  changed.state = "deploying";
  stale.changed_targets = {changed};
  stale.consumed_commands_through = commands[0].seq;
  auto refused = ApplyAudited({InsertRolloutCommandEffect{MakeCommand("rol_1", "abort")}, stale});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kPreconditionFailed);
  EXPECT_NE(refused.error().message.find("version 2"), std::string::npos) << refused.error().message;

  ExpectSameRollout(Get("rol_1"), current);
  for (const auto& target : Targets("rol_1")) EXPECT_EQ(target.state, "waiting") << target.store_id;
  EXPECT_EQ(Seqs(Commands("rol_1")), Seqs(commands));
  EXPECT_EQ(Commands("rol_1")[0].kind, "pause");
  EXPECT_EQ(AuditRows(), audit_before);

  // An update that does not advance the version by one is a programming error.
  UpdateRolloutEffect skip = Next(current);
  skip.updated.version = current.version + 2;
  EXPECT_EQ(CodeOf(ApplyAudited({skip})), ErrorCode::kInternal);
  UpdateRolloutEffect same = Next(current);
  same.updated.version = current.version;
  EXPECT_EQ(CodeOf(ApplyAudited({same})), ErrorCode::kInternal);
  EXPECT_EQ(Get("rol_1").version, current.version);
  EXPECT_EQ(AuditRows(), audit_before);
}

TEST_P(RolloutsStorageTest, AChangedTargetOutsideTheRolloutFailsTheWholeUpdate) {
  RolloutRecord rollout = Create(MakeRollout("rol_1"));
  Create(MakeRollout("rol_2", "production", kT0 + 1), {MakeTarget("shop-d", 0, 0)});
  const long long audit_before = AuditRows();

  UpdateRolloutEffect step = Next(rollout);
  step.updated.state = "running";
  RolloutTargetRecord ok = MakeTarget("shop-a", 0, 0);
  ok.state = "deploying";
  RolloutTargetRecord outside = MakeTarget("shop-d", 3, 1);  // a target of rol_2, not of rol_1
  outside.state = "deploying";
  step.changed_targets = {ok, outside};
  auto refused = ApplyAudited({step});
  EXPECT_EQ(CodeOf(refused), ErrorCode::kNotFound);
  EXPECT_NE(refused.error().message.find("shop-d"), std::string::npos) << refused.error().message;

  EXPECT_EQ(Get("rol_1").version, 1);
  EXPECT_EQ(Get("rol_1").state, "pending");
  EXPECT_EQ(Targets("rol_1")[0].state, "waiting");
  EXPECT_EQ(Targets("rol_2")[0].state, "waiting");
  EXPECT_EQ(AuditRows(), audit_before);

  // A target naming another rollout is refused before it reaches the database.
  RolloutTargetRecord named = MakeTarget("shop-a", 0, 0);
  named.rollout_id = "rol_2";
  step.changed_targets = {named};
  EXPECT_EQ(CodeOf(ApplyAudited({step})), ErrorCode::kInternal);
  // A state the schema refuses.
  RolloutTargetRecord odd = MakeTarget("shop-a", 0, 0);
  odd.state = "exploded";
  step.changed_targets = {odd};
  EXPECT_EQ(CodeOf(ApplyAudited({step})), ErrorCode::kInternal);
  step.changed_targets.clear();
  step.updated.state = "exploded";
  EXPECT_EQ(CodeOf(ApplyAudited({step})), ErrorCode::kInternal);
  EXPECT_EQ(Get("rol_1").version, 1);
}

// Several targets go to the database at once (PostgreSQL: one statement); when several are
// wrong, the error is still about the first wrong one in the given order, as when they are
// written one at a time, and nothing is written.
TEST_P(RolloutsStorageTest, TheFirstRefusedTargetInOrderDecidesTheError) {
  RolloutRecord rollout = Create(MakeRollout("rol_1"));
  const long long audit_before = AuditRows();
  auto insert = [&](std::vector<RolloutTargetRecord> targets) {
    return ApplyAudited({InsertRolloutEffect{MakeRollout("rol_2"), std::move(targets)}});
  };
  RolloutTargetRecord odd = MakeTarget("shop-b", 1, 0);
  odd.state = "exploded";

  // The first missing store, in plan order (not in name order).
  auto missing = insert({MakeTarget("shop-a", 0, 0), MakeTarget("ghost-2", 1, 0), MakeTarget("ghost-1", 2, 0)});
  EXPECT_EQ(CodeOf(missing), ErrorCode::kNotFound);
  EXPECT_NE(missing.error().message.find("'ghost-2'"), std::string::npos) << missing.error().message;
  EXPECT_EQ(missing.error().message.find("ghost-1"), std::string::npos) << missing.error().message;
  // A missing store before a store listed twice, or before a refused text: kNotFound.
  auto missing_first =
      insert({MakeTarget("shop-a", 0, 0), MakeTarget("ghost-1", 1, 0), MakeTarget("shop-a", 2, 0), odd});
  EXPECT_EQ(CodeOf(missing_first), ErrorCode::kNotFound);
  EXPECT_NE(missing_first.error().message.find("'ghost-1'"), std::string::npos) << missing_first.error().message;
  odd.position = 2;
  EXPECT_EQ(CodeOf(insert({MakeTarget("shop-a", 0, 0), MakeTarget("ghost-1", 1, 0), odd})), ErrorCode::kNotFound);
  // After them: kInternal, naming the target.
  odd.position = 1;
  auto odd_first = insert({MakeTarget("shop-a", 0, 0), odd, MakeTarget("ghost-1", 2, 0)});
  EXPECT_EQ(CodeOf(odd_first), ErrorCode::kInternal);
  EXPECT_NE(odd_first.error().message.find("'shop-b'"), std::string::npos) << odd_first.error().message;
  auto twice_first = insert({MakeTarget("shop-a", 0, 0), MakeTarget("shop-c", 0, 0), MakeTarget("ghost-1", 2, 0)});
  EXPECT_EQ(CodeOf(twice_first), ErrorCode::kInternal);
  EXPECT_NE(twice_first.error().message.find("'shop-c'"), std::string::npos) << twice_first.error().message;
  EXPECT_EQ(repo_->GetRollout("rol_2").error().code, ErrorCode::kNotFound);

  // The same for the changed targets of an update.
  auto changed = [](std::string store_id, int position, int wave, std::string state) {
    RolloutTargetRecord target = MakeTarget(std::move(store_id), position, wave);
    target.state = std::move(state);
    return target;
  };
  auto update = [&](std::vector<RolloutTargetRecord> targets) {
    return ApplyAudited({Next(rollout, std::move(targets))});
  };
  auto outside_first = update({changed("shop-a", 0, 0, "deploying"), changed("shop-d", 3, 1, "deploying"),
                               changed("shop-b", 1, 1, "exploded"), changed("shop-c", 2, 1, "deploying")});
  EXPECT_EQ(CodeOf(outside_first), ErrorCode::kNotFound);
  EXPECT_NE(outside_first.error().message.find("'shop-d'"), std::string::npos) << outside_first.error().message;
  auto exploded_first = update({changed("shop-a", 0, 0, "deploying"), changed("shop-b", 1, 1, "exploded"),
                                changed("shop-d", 3, 1, "deploying")});
  EXPECT_EQ(CodeOf(exploded_first), ErrorCode::kInternal);
  EXPECT_NE(exploded_first.error().message.find("'shop-b'"), std::string::npos) << exploded_first.error().message;
  auto outside_only = update({changed("shop-a", 0, 0, "deploying"), changed("ghost-1", 5, 1, "deploying"),
                              changed("shop-d", 3, 1, "deploying")});
  EXPECT_EQ(CodeOf(outside_only), ErrorCode::kNotFound);
  EXPECT_NE(outside_only.error().message.find("'ghost-1'"), std::string::npos) << outside_only.error().message;

  // None of it was written.
  EXPECT_EQ(Get("rol_1").version, 1);
  for (const auto& target : Targets("rol_1")) EXPECT_EQ(target.state, "waiting") << target.store_id;
  EXPECT_EQ(QueryInt("SELECT COUNT(*) FROM rollouts"), 1);
  EXPECT_EQ(QueryInt("SELECT COUNT(*) FROM rollout_targets"), 3);
  EXPECT_EQ(AuditRows(), audit_before);

  // A store named twice among the changed targets is replaced twice: the last one stays.
  RolloutRecord stored = Update(Next(rollout, {changed("shop-a", 0, 0, "deploying"), changed("shop-b", 1, 1, "failed"),
                                               changed("shop-a", 0, 0, "succeeded")}));
  EXPECT_EQ(stored.version, 2);
  auto targets = Targets("rol_1");
  ASSERT_EQ(targets.size(), 3u);
  EXPECT_EQ(targets[0].state, "succeeded");
  EXPECT_EQ(targets[1].state, "failed");
  EXPECT_EQ(targets[2].state, "waiting");
}

// Texts are stored as given, whatever they contain (PostgreSQL sends the targets as arrays).
TEST_P(RolloutsStorageTest, TargetTextsWithQuotesBackslashesAndBracesReadBackAsGiven) {
  const std::vector<std::string> odd_texts = {R"(r"1)", R"(r\1)", "r,1", "{r1}", "NULL", "", " r 1 ", "r\u00e9"};
  Insert(MakeStore(R"(sh"op\,{e})"));
  std::vector<RolloutTargetRecord> targets;
  for (std::size_t i = 0; i < odd_texts.size(); ++i) {
    RolloutTargetRecord target =
        MakeTarget(i == 0 ? R"(sh"op\,{e})" : "shop-" + std::string(1, 'a' + i % 4), static_cast<int>(i), 0);
    target.previous_release = odd_texts[i];
    target.deploy_run_id = odd_texts[(i + 1) % odd_texts.size()];
    targets.push_back(target);
  }
  targets.resize(5);  // shop-a..shop-d once each, and the odd store
  Create(MakeRollout("rol_1"), targets);
  auto stored = Targets("rol_1");
  ASSERT_EQ(stored.size(), targets.size());
  for (std::size_t i = 0; i < targets.size(); ++i) {
    targets[i].rollout_id = "rol_1";
    ExpectSameTarget(stored[i], targets[i]);
  }

  // And through an update of several at once.
  UpdateRolloutEffect step = Next(Get("rol_1"));
  for (std::size_t i = 0; i < targets.size(); ++i) {
    RolloutTargetRecord target = targets[i];
    target.state = "deploying";
    target.deploy_final_state = odd_texts[(i + 3) % odd_texts.size()];
    target.rollback_run_id = odd_texts[(i + 5) % odd_texts.size()];
    step.changed_targets.push_back(target);
  }
  Update(step);
  stored = Targets("rol_1");
  ASSERT_EQ(stored.size(), targets.size());
  for (std::size_t i = 0; i < targets.size(); ++i) ExpectSameTarget(stored[i], step.changed_targets[i]);
}

// ---- commands ----

TEST_P(RolloutsStorageTest, CommandsWaitInSeqOrderUntilConsumed) {
  RolloutRecord r1 = Create(MakeRollout("rol_1"));
  Create(MakeRollout("rol_2", "production", kT0 + 1), {MakeTarget("shop-d", 0, 0)});

  RolloutCommandRecord approve = MakeCommand("rol_1", "approve_wave", 2);
  approve.seq = 999;  // assigned by the database
  MustApply({InsertRolloutCommandEffect{MakeCommand("rol_1", "pause")}});
  MustApply({InsertRolloutCommandEffect{MakeCommand("rol_2", "resume")}});
  MustApply({InsertRolloutCommandEffect{approve}, InsertRolloutCommandEffect{MakeCommand("rol_1", "abort", 0, true)}});

  auto inbox = Commands("rol_1");
  ASSERT_EQ(inbox.size(), 3u);
  EXPECT_EQ(inbox[0].kind, "pause");
  EXPECT_EQ(inbox[1].kind, "approve_wave");
  EXPECT_EQ(inbox[2].kind, "abort");
  EXPECT_LT(inbox[0].seq, inbox[1].seq);
  EXPECT_LT(inbox[1].seq, inbox[2].seq);
  EXPECT_NE(inbox[1].seq, 999);
  // Every field.
  EXPECT_EQ(inbox[1].rollout_id, "rol_1");
  EXPECT_EQ(inbox[1].wave, 2);
  EXPECT_FALSE(inbox[1].rollback);
  EXPECT_TRUE(inbox[2].rollback);
  EXPECT_EQ(inbox[1].principal_id, "bob");
  EXPECT_EQ(inbox[1].request_id, "req-cmd");
  EXPECT_EQ(inbox[1].created_at_ms, kT0 + 5);
  auto other = Commands("rol_2");
  ASSERT_EQ(other.size(), 1u);
  EXPECT_EQ(other[0].kind, "resume");
  EXPECT_GT(other[0].seq, inbox[0].seq);
  EXPECT_LT(other[0].seq, inbox[1].seq);

  // A step consumes the first two of rol_1 (through a seq above rol_2's command, which stays).
  RolloutRecord r1_v2 = Update(Next(r1, {}, inbox[1].seq));
  EXPECT_EQ(r1_v2.version, 2);
  EXPECT_EQ(Seqs(Commands("rol_1")), (std::vector<std::int64_t>{inbox[2].seq}));
  EXPECT_EQ(Seqs(Commands("rol_2")), (std::vector<std::int64_t>{other[0].seq}));

  // 0 consumes nothing.
  RolloutRecord r1_v3 = Update(Next(r1_v2, {}, 0));
  EXPECT_EQ(Commands("rol_1").size(), 1u);
  // The last one, then a new command: its seq is still higher than every earlier one.
  Update(Next(r1_v3, {}, inbox[2].seq));
  EXPECT_TRUE(Commands("rol_1").empty());
  MustApply({InsertRolloutCommandEffect{MakeCommand("rol_1", "resume")}});
  auto later = Commands("rol_1");
  ASSERT_EQ(later.size(), 1u);
  EXPECT_GT(later[0].seq, inbox[2].seq);

  // A command needs a rollout and a kind the schema knows.
  EXPECT_EQ(CodeOf(ApplyAudited({InsertRolloutCommandEffect{MakeCommand("", "pause")}})), ErrorCode::kInternal);
  EXPECT_EQ(CodeOf(ApplyAudited({InsertRolloutCommandEffect{MakeCommand("rol_1", "explode")}})), ErrorCode::kInternal);
  EXPECT_EQ(Commands("rol_1").size(), 1u);
}

// PostgreSQL: seqs come from a sequence, taken by concurrent transactions. Command inserts of
// one rollout take turns, so that seq order is commit order: a listing that shows a command
// shows every one with a lower seq, and consuming through a seq never deletes an unseen one.
TEST_P(RolloutsStorageTest, ACommandCommittedLaterNeverHasALowerSeqThanOneAlreadyListed) {
  if (!postgres()) GTEST_SKIP() << "SQLite has one writer: commands are written one batch at a time";
  Create(MakeRollout("rol_1"));
  Create(MakeRollout("rol_2", "production", kT0 + 1), {MakeTarget("shop-d", 0, 0)});

  // Another replica's transaction has inserted a command and not committed yet.
  auto other = pg::PgConnection::Open(pg_options_.conninfo);
  ASSERT_TRUE(other.ok()) << other.error().message;
  ASSERT_TRUE(other->Script("BEGIN", "test").ok());
  ASSERT_TRUE(pg_detail::InsertRolloutCommand(*other, InsertRolloutCommandEffect{MakeCommand("rol_1", "pause")}).ok());

  // A command to another rollout does not wait; one to the same rollout waits for it.
  MustApply({InsertRolloutCommandEffect{MakeCommand("rol_2", "pause")}});
  std::atomic<bool> done{false};
  std::thread second([&] {
    auto applied = ApplyAudited({InsertRolloutCommandEffect{MakeCommand("rol_1", "resume")}});
    EXPECT_TRUE(applied.ok()) << (applied.ok() ? "" : applied.error().message);
    done = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_FALSE(done.load()) << "the second command did not wait for the first";
  EXPECT_TRUE(Commands("rol_1").empty()) << "a command listed before an earlier one committed";

  ASSERT_TRUE(other->Script("COMMIT", "test").ok());
  second.join();
  auto inbox = Commands("rol_1");
  ASSERT_EQ(inbox.size(), 2u);
  EXPECT_EQ(inbox[0].kind, "pause");
  EXPECT_EQ(inbox[1].kind, "resume");
  EXPECT_LT(inbox[0].seq, inbox[1].seq);
}

// ---- listings ----

TEST_P(RolloutsStorageTest, ListRolloutsIsNewestFirstWithFiltersAndCursor) {
  // Creation times: rol_a and rol_b share one (the id breaks the tie).
  Create(MakeRollout("rol_1", "production", kT0 + 1, "succeeded"));
  Create(MakeRollout("rol_2", "staging", kT0 + 2, "running"));
  Create(MakeRollout("rol_b", "production", kT0 + 3, "paused"));
  Create(MakeRollout("rol_a", "production", kT0 + 3, "aborted"));
  Create(MakeRollout("rol_5", "staging", kT0 + 5, "failed"));
  Create(MakeRollout("rol_6", "production", kT0 + 6, "pending"));

  Repository::RolloutQuery all;
  EXPECT_EQ(List(all), (std::vector<std::string>{"rol_6", "rol_5", "rol_b", "rol_a", "rol_2", "rol_1"}));
  Repository::RolloutQuery production;
  production.environment = "production";
  EXPECT_EQ(List(production), (std::vector<std::string>{"rol_6", "rol_b", "rol_a", "rol_1"}));
  Repository::RolloutQuery paused;
  paused.state = "paused";
  EXPECT_EQ(List(paused), (std::vector<std::string>{"rol_b"}));
  Repository::RolloutQuery active;
  active.active_only = true;
  EXPECT_EQ(List(active), (std::vector<std::string>{"rol_6", "rol_b", "rol_2"}));
  active.environment = "staging";
  EXPECT_EQ(List(active), (std::vector<std::string>{"rol_2"}));
  Repository::RolloutQuery none;
  none.environment = "production";
  none.state = "failed";
  EXPECT_TRUE(List(none).empty());

  // Pages by cursor, across the tie.
  Repository::RolloutQuery page;
  page.limit = 2;
  EXPECT_EQ(List(page), (std::vector<std::string>{"rol_6", "rol_5"}));
  page.before_id = "rol_5";
  EXPECT_EQ(List(page), (std::vector<std::string>{"rol_b", "rol_a"}));
  page.before_id = "rol_b";
  EXPECT_EQ(List(page), (std::vector<std::string>{"rol_a", "rol_2"}));
  page.before_id = "rol_a";
  EXPECT_EQ(List(page), (std::vector<std::string>{"rol_2", "rol_1"}));
  page.before_id = "rol_1";
  EXPECT_TRUE(List(page).empty());
  production.before_id = "rol_6";
  production.limit = 2;
  EXPECT_EQ(List(production), (std::vector<std::string>{"rol_b", "rol_a"}));
  active.environment.reset();
  active.before_id = "rol_b";
  EXPECT_EQ(List(active), (std::vector<std::string>{"rol_2"}));

  // Bad cursors and limits.
  Repository::RolloutQuery bad;
  bad.before_id = "rol_none";
  auto unknown = repo_->ListRollouts(bad);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(unknown.error().field, "cursor");
  for (int limit : {0, 1001}) {
    Repository::RolloutQuery out_of_range;
    out_of_range.limit = limit;
    auto refused = repo_->ListRollouts(out_of_range);
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().code, ErrorCode::kInvalidArgument);
  }

  // The orchestrator's work list: every rollout not final, oldest first.
  auto work = repo_->ListActiveRollouts();
  ASSERT_TRUE(work.ok());
  EXPECT_EQ(Ids(*work), (std::vector<std::string>{"rol_2", "rol_b", "rol_6"}));
  // It follows updates: once rol_6 succeeds it is no longer active.
  RolloutRecord six = Get("rol_6");
  UpdateRolloutEffect finish = Next(six);
  finish.updated.state = "succeeded";
  Update(finish);
  work = repo_->ListActiveRollouts();
  ASSERT_TRUE(work.ok());
  EXPECT_EQ(Ids(*work), (std::vector<std::string>{"rol_2", "rol_b"}));
  Repository::RolloutQuery succeeded;
  succeeded.state = "succeeded";
  EXPECT_EQ(List(succeeded), (std::vector<std::string>{"rol_6", "rol_1"}));
}

TEST_P(RolloutsStorageTest, ListRolloutTargetsFiltersByWaveAndStateInPositionOrder) {
  // Positions deliberately not in insert order.
  std::vector<RolloutTargetRecord> targets = {MakeTarget("shop-c", 2, 1), MakeTarget("shop-a", 0, 0),
                                              MakeTarget("shop-d", 3, 1), MakeTarget("shop-b", 1, 1)};
  targets[0].state = "succeeded";
  targets[1].state = "succeeded";
  targets[2].state = "skipped";
  targets[2].skip_reason = "unhealthy";
  Create(MakeRollout("rol_1"), targets);

  using Q = Repository::RolloutTargetQuery;
  EXPECT_EQ(Stores(Targets("rol_1")), (std::vector<std::string>{"shop-a", "shop-b", "shop-c", "shop-d"}));
  Q wave1;
  wave1.wave = 1;
  EXPECT_EQ(Stores(Targets("rol_1", wave1)), (std::vector<std::string>{"shop-b", "shop-c", "shop-d"}));
  Q succeeded;
  succeeded.state = "succeeded";
  EXPECT_EQ(Stores(Targets("rol_1", succeeded)), (std::vector<std::string>{"shop-a", "shop-c"}));
  Q both;
  both.wave = 1;
  both.state = "succeeded";
  EXPECT_EQ(Stores(Targets("rol_1", both)), (std::vector<std::string>{"shop-c"}));
  Q wave5;
  wave5.wave = 5;
  EXPECT_TRUE(Targets("rol_1", wave5).empty());  // a known rollout: no match is not an error

  // Pages by position.
  Q page;
  page.limit = 2;
  auto first = Targets("rol_1", page);
  EXPECT_EQ(Stores(first), (std::vector<std::string>{"shop-a", "shop-b"}));
  page.after_position = first.back().position;
  EXPECT_EQ(Stores(Targets("rol_1", page)), (std::vector<std::string>{"shop-c", "shop-d"}));
  page.after_position = 3;
  EXPECT_TRUE(Targets("rol_1", page).empty());
  Q wave1_page;
  wave1_page.wave = 1;
  wave1_page.after_position = 1;
  wave1_page.limit = 1;
  EXPECT_EQ(Stores(Targets("rol_1", wave1_page)), (std::vector<std::string>{"shop-c"}));

  // Limits: 0 is every match, else 1..1000.
  for (int limit : {-1, 1001}) {
    Q bad;
    bad.limit = limit;
    auto refused = repo_->ListRolloutTargets("rol_1", bad);
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().code, ErrorCode::kInvalidArgument);
  }

  // Each filter is served by an index in position order: nothing is sorted.
  for (const char* filter : {"", " AND wave = 1", " AND state = 'succeeded'"}) {
    const std::string sql = std::string("SELECT * FROM rollout_targets WHERE rollout_id = 'rol_1' AND position > -1") +
                            filter + " ORDER BY position LIMIT 100";
    if (postgres()) {
      const std::string plan = PostgresPlan(pg_options_.conninfo, sql);
      EXPECT_NE(plan.find("Index Scan"), std::string::npos) << filter << "\n" << plan;
      EXPECT_EQ(plan.find("Sort"), std::string::npos) << filter << "\n" << plan;
    } else {
      const std::string plan = QueryPlan(options_.path, sql);
      EXPECT_NE(plan.find("USING INDEX"), std::string::npos) << filter << "\n" << plan;
      EXPECT_EQ(plan.find("TEMP B-TREE"), std::string::npos) << filter << "\n" << plan;
    }
  }
  const std::string active_sql =
      "SELECT id FROM rollouts WHERE state NOT IN ('succeeded', 'failed', 'aborted') ORDER BY created_at_ms, id";
  const std::string active_plan =
      postgres() ? PostgresPlan(pg_options_.conninfo, active_sql) : QueryPlan(options_.path, active_sql);
  EXPECT_NE(active_plan.find("rollouts_active"), std::string::npos) << active_plan;
  if (postgres()) {
    EXPECT_EQ(active_plan.find("Sort"), std::string::npos) << active_plan;
  }
}

// ---- runs know their rollout ----

PipelineRunRecord MakeRun(std::string id, std::string store_id, std::string rollout_id, std::int64_t at_ms) {
  PipelineRunRecord run;
  run.id = std::move(id);
  run.store_id = std::move(store_id);
  run.kind = "deploy";
  run.state = "pending";
  run.release = "r2";
  run.requested_by = "system";
  run.created_at_ms = at_ms;
  run.updated_at_ms = at_ms;
  run.deadline_ms = at_ms + 3'600'000;
  run.rollout_id = std::move(rollout_id);
  return run;
}

InsertRunEffect InsertRun(const PipelineRunRecord& run) {
  OutboxEntry entry;
  entry.run_id = run.id;
  entry.created_at_ms = run.created_at_ms;
  entry.next_attempt_at_ms = run.created_at_ms;
  return InsertRunEffect{run, entry};
}

TEST_P(RolloutsStorageTest, RunsKeepTheirRolloutAndCanBeListedByIt) {
  if (NoPipelineRuns()) GTEST_SKIP() << "no pipeline_runs on PostgreSQL yet: the runs area is ported separately";
  Create(MakeRollout("rol_1"));
  Create(MakeRollout("rol_2", "production", kT0 + 1), {MakeTarget("shop-d", 0, 0)});
  MustApply({InsertRun(MakeRun("run_1", "shop-a", "rol_1", kT0 + 10))});
  MustApply({InsertRun(MakeRun("run_2", "shop-b", "", kT0 + 11))});
  MustApply({InsertRun(MakeRun("run_3", "shop-d", "rol_2", kT0 + 12))});
  auto applied = ApplyAudited({InsertRun(MakeRun("run_4", "shop-c", "rol_1", kT0 + 13))});
  ASSERT_TRUE(applied.ok()) << applied.error().message;
  ASSERT_EQ(applied->runs.size(), 1u);
  EXPECT_EQ(applied->runs[0].rollout_id, "rol_1");

  auto run1 = repo_->GetRun("run_1");
  ASSERT_TRUE(run1.ok());
  EXPECT_EQ(run1->rollout_id, "rol_1");
  auto run2 = repo_->GetRun("run_2");
  ASSERT_TRUE(run2.ok());
  EXPECT_EQ(run2->rollout_id, "");
  // No rollout is NULL in the table (the column references rollouts).
  EXPECT_EQ(QueryInt("SELECT COUNT(*) FROM pipeline_runs WHERE rollout_id IS NULL"), 1);

  // An update keeps it (and writes what it is given).
  PipelineRunRecord moved = *run1;
  moved.state = "triggered";
  moved.version = 2;
  auto updated = ApplyAudited({UpdateRunEffect{moved, 1}});
  ASSERT_TRUE(updated.ok()) << updated.error().message;
  EXPECT_EQ(updated->runs.at(0).rollout_id, "rol_1");
  EXPECT_EQ(repo_->GetRun("run_1")->rollout_id, "rol_1");

  // Filter and cursor.
  auto list = [&](const Repository::RunQuery& query) {
    auto runs = repo_->ListRuns(query);
    EXPECT_TRUE(runs.ok()) << (runs.ok() ? "" : runs.error().message);
    std::vector<std::string> ids;
    if (runs.ok()) {
      for (const auto& run : *runs) ids.push_back(run.id);
    }
    return ids;
  };
  Repository::RunQuery by_rollout;
  by_rollout.rollout_id = "rol_1";
  EXPECT_EQ(list(by_rollout), (std::vector<std::string>{"run_4", "run_1"}));
  by_rollout.rollout_id = "rol_2";
  EXPECT_EQ(list(by_rollout), (std::vector<std::string>{"run_3"}));
  by_rollout.rollout_id = "rol_none";
  EXPECT_TRUE(list(by_rollout).empty());
  Repository::RunQuery paged;
  paged.rollout_id = "rol_1";
  paged.limit = 1;
  EXPECT_EQ(list(paged), (std::vector<std::string>{"run_4"}));
  paged.before_id = "run_4";
  EXPECT_EQ(list(paged), (std::vector<std::string>{"run_1"}));
  paged.before_id = "run_3";  // a run of another rollout is not a cursor of this listing
  auto foreign = repo_->ListRuns(paged);
  ASSERT_FALSE(foreign.ok());
  EXPECT_EQ(foreign.error().field, "cursor");
  Repository::RunQuery combined;
  combined.rollout_id = "rol_1";
  combined.state = "triggered";
  combined.store_id = "shop-a";
  EXPECT_EQ(list(combined), (std::vector<std::string>{"run_1"}));
  Repository::RunQuery all;
  EXPECT_EQ(list(all).size(), 4u);

  // A run of a rollout that does not exist: kNotFound naming the rollout.
  Insert(MakeStore("shop-e"));  // without an active run
  auto ghost = ApplyAudited({InsertRun(MakeRun("run_5", "shop-e", "rol_none", kT0 + 20))});
  EXPECT_EQ(CodeOf(ghost), ErrorCode::kNotFound);
  EXPECT_NE(ghost.error().message.find("rol_none"), std::string::npos) << ghost.error().message;
  auto no_store = ApplyAudited({InsertRun(MakeRun("run_5", "shop-none", "rol_1", kT0 + 20))});
  EXPECT_EQ(CodeOf(no_store), ErrorCode::kNotFound);
  EXPECT_NE(no_store.error().message.find("shop-none"), std::string::npos) << no_store.error().message;
  EXPECT_EQ(repo_->GetRun("run_5").error().code, ErrorCode::kNotFound);

  const std::string plan_sql =
      "SELECT id FROM pipeline_runs WHERE seq < 100 AND rollout_id = 'rol_1' ORDER BY seq DESC LIMIT 50";
  const std::string plan =
      postgres() ? PostgresPlan(pg_options_.conninfo, plan_sql) : QueryPlan(options_.path, plan_sql);
  EXPECT_NE(plan.find("pipeline_runs_by_rollout"), std::string::npos) << plan;
}

// ---- scale ----

TEST_P(RolloutsStorageTest, TenThousandTargetsInsertInOneBatchAndReadBack) {
  constexpr int kStores = 10'000;
  {
    WriteBatch stores;
    for (int i = 0; i < kStores; ++i) {
      char id[16];
      std::snprintf(id, sizeof id, "big-%05d", i);
      stores.effects.push_back(InsertStoreEffect{MakeStore(id)});
    }
    stores.audit.push_back(TestAudit("store.register", "store/*", 1));
    auto applied = repo_->Apply(stores);
    ASSERT_TRUE(applied.ok()) << applied.error().message;
  }
  // Waves of 1, 99, 900 and 9,000; positions in plan order.
  std::vector<RolloutTargetRecord> targets;
  targets.reserve(kStores);
  for (int i = 0; i < kStores; ++i) {
    char id[16];
    std::snprintf(id, sizeof id, "big-%05d", i);
    const int wave = i < 1 ? 0 : i < 100 ? 1 : i < 1000 ? 2 : 3;
    targets.push_back(MakeTarget(id, i, wave));
  }
  RolloutRecord rollout = MakeRollout("rol_big");
  rollout.plan_json = std::string(kStores * 12, 'x');  // about the size of a real plan

  const auto start = std::chrono::steady_clock::now();
  auto applied = ApplyAudited({InsertRolloutEffect{rollout, targets}});
  const auto inserted = std::chrono::steady_clock::now();
  ASSERT_TRUE(applied.ok()) << applied.error().message;
  auto all = repo_->ListRolloutTargets("rol_big", {});
  const auto read = std::chrono::steady_clock::now();
  ASSERT_TRUE(all.ok()) << all.error().message;

  const auto ms = [](auto d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); };
  std::printf("[ timing ] insert rollout with %d targets: %lld ms; read them back: %lld ms\n", kStores,
              static_cast<long long>(ms(inserted - start)), static_cast<long long>(ms(read - inserted)));
  EXPECT_LT(ms(inserted - start), 5000) << "far slower than expected (aim: well under 1 s)";

  ASSERT_EQ(all->size(), static_cast<std::size_t>(kStores));
  for (int i = 0; i < kStores; ++i) {
    ASSERT_EQ((*all)[i].position, i);
    ASSERT_EQ((*all)[i].store_id, targets[i].store_id);
    ASSERT_EQ((*all)[i].wave, targets[i].wave);
  }
  Repository::RolloutTargetQuery wave3;
  wave3.wave = 3;
  auto last_wave = repo_->ListRolloutTargets("rol_big", wave3);
  ASSERT_TRUE(last_wave.ok());
  EXPECT_EQ(last_wave->size(), 9000u);
  EXPECT_EQ(last_wave->front().position, 1000);
  Repository::RolloutTargetQuery page;
  page.after_position = 4999;
  page.limit = 1000;
  auto middle = repo_->ListRolloutTargets("rol_big", page);
  ASSERT_TRUE(middle.ok());
  ASSERT_EQ(middle->size(), 1000u);
  EXPECT_EQ(middle->front().position, 5000);
  EXPECT_EQ(middle->back().position, 5999);
  EXPECT_EQ(Get("rol_big").plan_json.size(), static_cast<std::size_t>(kStores * 12));

  // An abort stops the last wave's 9,000 targets in one step.
  UpdateRolloutEffect abort = Next(Get("rol_big"));
  abort.updated.state = "aborted";
  for (RolloutTargetRecord target : *last_wave) {
    target.state = "not_started";
    target.updated_at_ms = kT0 + 1000;
    abort.changed_targets.push_back(std::move(target));
  }
  const auto update_start = std::chrono::steady_clock::now();
  auto aborted = ApplyAudited({abort});
  const auto updated = std::chrono::steady_clock::now();
  ASSERT_TRUE(aborted.ok()) << aborted.error().message;
  std::printf("[ timing ] update 9000 targets in one step: %lld ms\n",
              static_cast<long long>(ms(updated - update_start)));
  EXPECT_LT(ms(updated - update_start), 5000) << "far slower than expected (aim: well under 1 s)";
  Repository::RolloutTargetQuery not_started;
  not_started.state = "not_started";
  auto stopped = repo_->ListRolloutTargets("rol_big", not_started);
  ASSERT_TRUE(stopped.ok());
  EXPECT_EQ(stopped->size(), 9000u);
  EXPECT_EQ(stopped->front().position, 1000);
  EXPECT_EQ(Get("rol_big").state, "aborted");
}

// ---- persistence and upgrade ----

TEST_P(RolloutsStorageTest, EverythingSurvivesCloseAndReopen) {
  RolloutRecord rollout = Create(MakeRollout("rol_1"));
  UpdateRolloutEffect step = Next(rollout);
  step.updated.state = "awaiting_approval";
  RolloutTargetRecord done = MakeTarget("shop-a", 0, 0);
  done.state = "succeeded";
  step.changed_targets = {done};
  rollout = Update(step);
  MustApply({InsertRolloutCommandEffect{MakeCommand("rol_1", "approve_wave", 1)}});
  const auto commands = Commands("rol_1");

  Reopen();

  ExpectSameRollout(Get("rol_1"), rollout);
  EXPECT_EQ(Targets("rol_1")[0].state, "succeeded");
  EXPECT_EQ(Seqs(Commands("rol_1")), Seqs(commands));
  auto work = repo_->ListActiveRollouts();
  ASSERT_TRUE(work.ok());
  EXPECT_EQ(Ids(*work), (std::vector<std::string>{"rol_1"}));
}

INSTANTIATE_BACKENDS(RolloutsStorageTest);

// SQLite only: PostgreSQL starts at the schema of SQLite's version 6.
TEST(RolloutsStorageUpgradeTest, AVersionFiveDatabaseIsMigratedAndItsRunsHaveNoRollout) {
  testing::TempDir dir;
  const std::string path = (dir.path() / "v5.sqlite").string();
  {
    auto conn = Connection::Open(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, 5000);
    ASSERT_TRUE(conn.ok());
    std::string v5 =
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY NOT NULL, applied_at INTEGER NOT NULL);";
    for (const Migration& migration : AllMigrations()) {
      if (migration.version > 5) break;
      v5 += migration.sql;
      v5 += "INSERT INTO schema_migrations VALUES (" + std::to_string(migration.version) + ", 0);";
    }
    v5 +=
        "INSERT INTO stores VALUES ('old-shop', 'Old Shop', 'production', 'shared', '{}', 'active', NULL, 'r1', "
        "'r1', 3, 1, 2);"
        "INSERT INTO pipeline_runs (id, seq, store_id, kind, state, active, requested_by, created_at_ms, "
        "updated_at_ms, deadline_ms, version) VALUES ('run_old', 1, 'old-shop', 'deploy', 'pending', 1, 'alice', 1, "
        "1, 2, 1);";
    ASSERT_TRUE(conn->Exec(v5.c_str(), "create a version 5 database").ok());
  }
  SqliteOptions options;
  options.path = path;
  auto opened = OpenSqliteRepository(options);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  Repository& repo = **opened;
  EXPECT_EQ(QueryIntRaw(path, "SELECT MAX(version) FROM schema_migrations"), LatestSchemaVersion());

  auto old = repo.GetRun("run_old");
  ASSERT_TRUE(old.ok()) << old.error().message;
  EXPECT_EQ(old->rollout_id, "");
  Repository::RunQuery by_rollout;
  by_rollout.rollout_id = "rol_1";
  auto none = repo.ListRuns(by_rollout);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());

  // The new tables work against the old rows.
  WriteBatch batch;
  batch.effects.push_back(InsertRolloutEffect{MakeRollout("rol_1"), {MakeTarget("old-shop", 0, 0)}});
  batch.audit.push_back(TestAudit("rollout.create", "rollout/rol_1"));
  auto applied = repo.Apply(batch);
  ASSERT_TRUE(applied.ok()) << applied.error().message;
  auto targets = repo.ListRolloutTargets("rol_1", {});
  ASSERT_TRUE(targets.ok());
  ASSERT_EQ(targets->size(), 1u);
  EXPECT_EQ((*targets)[0].store_id, "old-shop");
}

}  // namespace
}  // namespace storeplane::db
