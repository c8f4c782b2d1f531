// The /metrics aggregates of the repository, on both back ends where their area is ported:
// counts by closed values from an empty and a filled database, the audit head with and
// without a checkpoint, the writer's counters, and (SQLite) the query plans that keep a
// scrape of 100,000 stores cheap (covering index scans, no temporary sort).
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <string>
#include <vector>

#include "core/audit.h"
#include "db_test_util.h"

namespace storeplane::db {
namespace {

using testing::BackendTest;
using testing::MakeStore;
using testing::TestAudit;

// EXPLAIN QUERY PLAN of `sql`, its details joined by " | ".
std::string QueryPlan(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  std::string plan;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db, ("EXPLAIN QUERY PLAN " + sql).c_str(), -1, &stmt, nullptr) == SQLITE_OK) {
      while (sqlite3_step(stmt) == SQLITE_ROW) {
        plan += std::string(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 3))) + " | ";
      }
    }
    sqlite3_finalize(stmt);
  }
  sqlite3_close(db);
  return plan;
}

class MetricsStorageTest : public BackendTest {
 protected:
  void InsertRun(const std::string& id, const std::string& store, const std::string& kind) {
    PipelineRunRecord run;
    run.id = id;
    run.store_id = store;
    run.kind = kind;
    run.state = "pending";
    run.active = true;
    if (kind == "deploy") run.release = "2024.06.1";
    run.requested_by = "alice";
    run.created_at_ms = 1'700'000'000'000;
    run.updated_at_ms = run.created_at_ms;
    run.deadline_ms = run.created_at_ms + 3'600'000;
    OutboxEntry outbox;
    outbox.run_id = id;
    outbox.created_at_ms = run.created_at_ms;
    outbox.next_attempt_at_ms = run.created_at_ms;
    WriteBatch batch;
    batch.effects.push_back(InsertRunEffect{run, outbox});
    batch.audit.push_back(TestAudit("run.trigger", "run/" + id));
    auto applied = repo_->Apply(batch);
    ASSERT_TRUE(applied.ok()) << applied.error().message;
  }
};

TEST_P(MetricsStorageTest, AnEmptyDatabaseCountsNothing) {
  auto stores = repo_->CountStoresByGroup();
  ASSERT_TRUE(stores.ok()) << stores.error().message;
  EXPECT_TRUE(stores->empty());
  auto head = repo_->GetAuditHead();
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(head->last_seq, 0);
  EXPECT_FALSE(head->last_checkpoint_ms.has_value());
  EXPECT_EQ(repo_->GetWriterStats().pending, 0u);
  if (postgres()) GTEST_SKIP() << "runs, operations and the outbox: ported with the runs/agents areas";
  auto runs = repo_->CountRunsByKindState();
  ASSERT_TRUE(runs.ok());
  EXPECT_TRUE(runs->empty());
  auto ops = repo_->CountOpenOperationsByState();
  ASSERT_TRUE(ops.ok());
  EXPECT_TRUE(ops->empty());
  auto outbox = repo_->CountPendingOutbox();
  ASSERT_TRUE(outbox.ok());
  EXPECT_EQ(*outbox, 0);
}

TEST_P(MetricsStorageTest, CountsStoresByStateEnvironmentAndIsolation) {
  Insert(MakeStore("a", "production", core::IsolationMode::kDedicated));
  Insert(MakeStore("b", "production", core::IsolationMode::kDedicated));
  Insert(MakeStore("c", "staging"));
  Insert(MakeStore("d", "staging", core::IsolationMode::kShared, {}, core::StoreState::kActive));
  auto groups = repo_->CountStoresByGroup();
  ASSERT_TRUE(groups.ok()) << groups.error().message;
  std::vector<std::string> seen;
  for (const auto& g : *groups) {
    seen.push_back(g.state + "/" + g.environment + "/" + g.isolation_mode + "=" + std::to_string(g.count));
  }
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(seen, (std::vector<std::string>{"active/staging/shared=1", "registered/production/dedicated=2",
                                            "registered/staging/shared=1"}));
}

TEST_P(MetricsStorageTest, CountsRunsAndUnsentTriggers) {
  if (postgres()) GTEST_SKIP() << "pipeline runs and the outbox: ported with the runs/agents areas";
  Insert(MakeStore("a"));
  Insert(MakeStore("b"));
  Insert(MakeStore("c"));
  InsertRun("run_1", "a", "deploy");
  InsertRun("run_2", "b", "deploy");
  InsertRun("run_3", "c", "provision");
  auto runs = repo_->CountRunsByKindState();
  ASSERT_TRUE(runs.ok()) << runs.error().message;
  std::vector<std::string> seen;
  for (const auto& g : *runs) seen.push_back(g.kind + "/" + g.state + "=" + std::to_string(g.count));
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(seen, (std::vector<std::string>{"deploy/pending=2", "provision/pending=1"}));
  auto outbox = repo_->CountPendingOutbox();
  ASSERT_TRUE(outbox.ok());
  EXPECT_EQ(*outbox, 3);
}

TEST_P(MetricsStorageTest, AuditHeadIsTheNewestRecordAndCheckpoint) {
  Insert(MakeStore("a"));
  Insert(MakeStore("b"));
  auto head = repo_->GetAuditHead();
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(head->last_seq, 2);
  EXPECT_FALSE(head->last_checkpoint_ms.has_value());  // no signing key: no checkpoints
  EXPECT_GE(repo_->GetWriterStats().batches, 2u);
  EXPECT_GE(repo_->GetWriterStats().mutations, 2u);

  auto key = core::GenerateSigningKey();
  ASSERT_TRUE(key.ok());
  options_.signing_key_pem = pg_options_.signing_key_pem = key->private_pem;
  options_.checkpoint_every_records = pg_options_.checkpoint_every_records = 1;
  Reopen();
  Insert(MakeStore("c"));
  head = repo_->GetAuditHead();
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(head->last_seq, 3);
  ASSERT_TRUE(head->last_checkpoint_ms.has_value());
  EXPECT_GT(*head->last_checkpoint_ms, 0);
}

// The aggregates read indexes only: at 100,000 stores a table scan with a sort took about
// ten times as long as the covering index scan.
TEST_P(MetricsStorageTest, AggregatesReadCoveringIndexesWithoutSorting) {
  if (postgres()) GTEST_SKIP() << "SQLite query plans (EXPLAIN QUERY PLAN on the file)";
  const std::string stores = QueryPlan(
      options_.path,
      "SELECT state, environment, isolation_mode, COUNT(*) FROM stores GROUP BY state, environment, isolation_mode");
  EXPECT_NE(stores.find("COVERING INDEX stores_by_group"), std::string::npos) << stores;
  EXPECT_EQ(stores.find("TEMP B-TREE"), std::string::npos) << stores;
  const std::string runs =
      QueryPlan(options_.path, "SELECT kind, state, COUNT(*) FROM pipeline_runs GROUP BY kind, state");
  EXPECT_NE(runs.find("COVERING INDEX pipeline_runs_by_kind_state"), std::string::npos) << runs;
  EXPECT_EQ(runs.find("TEMP B-TREE"), std::string::npos) << runs;
  const std::string ops = QueryPlan(
      options_.path, "SELECT state, COUNT(*) FROM operations WHERE state IN ('queued', 'delivered') GROUP BY state");
  EXPECT_NE(ops.find("operations_open"), std::string::npos) << ops;
  const std::string outbox = QueryPlan(options_.path, "SELECT COUNT(*) FROM outbox WHERE sent_at_ms IS NULL");
  EXPECT_NE(outbox.find("outbox_due"), std::string::npos) << outbox;
}

INSTANTIATE_BACKENDS(MetricsStorageTest);

}  // namespace
}  // namespace storeplane::db
