// What replicas share through the repository (ADR 0012): the leader lease and its fencing
// token, the shared event log, and the audit chain appended from several connections.
#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "db_test_util.h"

namespace storeplane::db::testing {
namespace {

class ReplicaStorageTest : public BackendTest {};

TEST_P(ReplicaStorageTest, OneHolderAtATimeAndTheTokenGrowsOnEveryChangeOfHolder) {
  auto a = repo_->AcquireLeadership("replica-a", 60'000);
  ASSERT_TRUE(a.ok()) << a.error().message;
  ASSERT_TRUE(a->has_value());
  if (!postgres()) {
    EXPECT_EQ(**a, 1);  // one process: always the leader
    return;
  }
  auto b = repo_->AcquireLeadership("replica-b", 60'000);
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_FALSE(b->has_value()) << "a second holder while the first lease runs";
  auto renewed = repo_->AcquireLeadership("replica-a", 60'000);
  ASSERT_TRUE(renewed.ok() && renewed->has_value());
  EXPECT_EQ(**renewed, **a) << "a renewal keeps the token";

  ASSERT_TRUE(repo_->ReleaseLeadership("replica-a").ok());
  b = repo_->AcquireLeadership("replica-b", 60'000);
  ASSERT_TRUE(b.ok() && b->has_value());
  EXPECT_GT(**b, **a);
}

TEST_P(ReplicaStorageTest, AnExpiredLeaseIsTakenOverAndTheOldTokenIsFencedOut) {
  if (!postgres()) GTEST_SKIP() << "SQLite has one process: no fence";
  auto a = repo_->AcquireLeadership("replica-a", 200);
  ASSERT_TRUE(a.ok() && a->has_value());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto b = repo_->AcquireLeadership("replica-b", 60'000);
  ASSERT_TRUE(b.ok() && b->has_value()) << "the lease expired";
  EXPECT_GT(**b, **a);

  WriteBatch stale;
  stale.audit.push_back(TestAudit("run.dispatch", "run/x"));
  stale.fence = Fence{"replica-a", **a};
  auto refused = repo_->Apply(stale);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kPreconditionFailed);

  WriteBatch current = stale;
  current.fence = Fence{"replica-b", **b};
  auto applied = repo_->Apply(current);
  ASSERT_TRUE(applied.ok()) << applied.error().message;
  auto page = repo_->ListAudit(AuditQuery{});
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->items.size(), 1u) << "the refused batch left no audit record";
}

TEST_P(ReplicaStorageTest, ConcurrentAppendsFromManyConnectionsKeepOneLinearChain) {
  constexpr int kThreads = 6;
  constexpr int kEach = 40;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        EXPECT_TRUE(repo_->AppendAudit(TestAudit("store.read", "store/s" + std::to_string(t), i), i % 2 == 0).ok());
      }
    });
  }
  for (auto& thread : threads) thread.join();
  Reopen();  // drains the records not waited for
  std::vector<core::AuditRecord> records;
  AuditQuery query;
  query.limit = 1000;
  auto page = repo_->ListAudit(query);
  ASSERT_TRUE(page.ok()) << page.error().message;
  records = page->items;
  ASSERT_EQ(records.size(), static_cast<std::size_t>(kThreads * kEach));
  auto report = core::VerifyChain(records, {}, "");
  EXPECT_TRUE(report.ok) << report.problem;
}

TEST_P(ReplicaStorageTest, TheAuditTrailRefusesUpdateAndDelete) {
  ASSERT_TRUE(repo_->AppendAudit(TestAudit("store.read", "store/a"), true).ok());
  EXPECT_FALSE(ExecSql("UPDATE audit_log SET outcome = 'forged'"));
  EXPECT_FALSE(ExecSql("DELETE FROM audit_log"));
  EXPECT_EQ(QueryInt("SELECT COUNT(*) FROM audit_log WHERE outcome = 'ok'"), 1);
}

TEST_P(ReplicaStorageTest, EventsAreReadBackInOrderAfterASeq) {
  if (!postgres()) {
    EXPECT_FALSE(repo_->SharesEvents());
    return;
  }
  ASSERT_TRUE(repo_->SharesEvents());
  EXPECT_FALSE(repo_->EventEpoch().empty());
  std::vector<StoredEvent> events;
  for (int i = 0; i < 3; ++i) {
    StoredEvent e;
    e.type = "agent.status";
    e.store_id = "s" + std::to_string(i);
    e.read_action = "agent.read";
    e.at_ms = 1000 + i;
    e.data_json = "{\"n\":" + std::to_string(i) + "}";
    events.push_back(e);
  }
  ASSERT_TRUE(repo_->AppendEvents(events).ok());
  auto last = repo_->LastEventSeq();
  ASSERT_TRUE(last.ok());
  auto read = repo_->ReadEvents(*last - 2, 10);
  ASSERT_TRUE(read.ok()) << read.error().message;
  ASSERT_EQ(read->size(), 2u);
  EXPECT_EQ((*read)[0].store_id, "s1");
  EXPECT_EQ((*read)[1].data_json, "{\"n\":2}");
}

TEST_P(ReplicaStorageTest, PruningDeletesOnlyEventsOlderThanTheCutoff) {
  if (!postgres()) {
    auto none = repo_->PruneEvents(1'000'000);
    ASSERT_TRUE(none.ok());
    EXPECT_EQ(*none, 0);
    return;
  }
  std::vector<StoredEvent> events;
  for (int i = 0; i < 5; ++i) {
    StoredEvent e;
    e.type = "store.updated";
    e.at_ms = 1000 * (i + 1);
    events.push_back(e);
  }
  ASSERT_TRUE(repo_->AppendEvents(events).ok());
  auto pruned = repo_->PruneEvents(3000);  // 1000 and 2000 go
  ASSERT_TRUE(pruned.ok()) << pruned.error().message;
  EXPECT_EQ(*pruned, 2);
  auto left = repo_->ReadEvents(0, 10);
  ASSERT_TRUE(left.ok());
  ASSERT_EQ(left->size(), 3u);
  EXPECT_EQ(left->front().at_ms, 3000);
  EXPECT_EQ(*repo_->LastEventSeq(), left->back().seq) << "seqs continue after a prune";
}

TEST_P(ReplicaStorageTest, AnotherConnectionsEventWakesTheListener) {
  if (!postgres()) GTEST_SKIP() << "SQLite has one process";
  auto first = repo_->WaitForNotifications(100);  // connects: "catch up"
  ASSERT_TRUE(first.ok()) << first.error().message;
  auto other = OpenPostgresRepository(pg_options_);
  ASSERT_TRUE(other.ok());
  StoredEvent e;
  e.type = "store.updated";
  e.at_ms = 1;
  ASSERT_TRUE((*other)->AppendEvents({e}).ok());
  auto woken = repo_->WaitForNotifications(5000);
  ASSERT_TRUE(woken.ok()) << woken.error().message;
  ASSERT_FALSE(woken->empty());
  EXPECT_EQ(woken->front().kind, Notification::Kind::kEvents);
  EXPECT_EQ(woken->front().payload, std::to_string(*repo_->LastEventSeq()));
}

TEST_P(ReplicaStorageTest, AStoreWrittenThroughOneRepositoryIsReadThroughAnother) {
  if (!postgres()) GTEST_SKIP() << "SQLite has one process";
  auto other = OpenPostgresRepository(pg_options_);
  ASSERT_TRUE(other.ok()) << other.error().message;
  Insert(MakeStore("shop-a"));
  auto read = (*other)->GetStore("shop-a");
  ASSERT_TRUE(read.ok()) << read.error().message;
  EXPECT_EQ(read->name, "Store shop-a");
  auto again = InsertStoreAudited(**other, MakeStore("shop-a"));
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, ErrorCode::kAlreadyExists);
  auto updated = *read;
  updated.name = "Renamed";
  updated.version = 2;
  ASSERT_TRUE(UpdateStoreAudited(**other, updated, 1).ok());
  auto stale = UpdateStoreAudited(*repo_, updated, 1);
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.error().code, ErrorCode::kPreconditionFailed);
  EXPECT_EQ(QueryInt("SELECT COUNT(*) FROM audit_log"), 2) << "the refused writes left no audit record";
}

INSTANTIATE_BACKENDS(ReplicaStorageTest);

}  // namespace
}  // namespace storeplane::db::testing
