#include "db/write_queue.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <future>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "db_test_util.h"

namespace storeplane::db {
namespace {

using testing::InsertStoreAudited;
using testing::MakeStore;
using testing::QueryIntRaw;
using testing::RepositoryTest;
using testing::TempDir;

constexpr const char* kTestSchema =
    "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;"
    "CREATE TABLE items (id TEXT PRIMARY KEY NOT NULL);"
    "CREATE TABLE parents (id TEXT PRIMARY KEY NOT NULL);"
    "CREATE TABLE children (id TEXT PRIMARY KEY NOT NULL,"
    "  parent_id TEXT NOT NULL REFERENCES parents (id) DEFERRABLE INITIALLY DEFERRED);";

WriteQueue::Mutation InsertItem(std::string id) {
  return [id = std::move(id)](Connection& conn) -> Status {
    auto stmt = conn.Prepare("INSERT INTO items (id) VALUES (?1)", "insert item");
    if (!stmt.ok()) return stmt.error();
    stmt->Bind(1, std::string_view(id));
    return stmt->Run("insert item");
  };
}

// A mutation that holds the writer until released, so that the test can queue a whole
// batch behind it deterministically.
class Blocker {
 public:
  WriteQueue::Mutation mutation() {
    return [this](Connection&) -> Status {
      started_.set_value();
      release_.get_future().wait();
      return Status::Ok();
    };
  }
  void WaitUntilRunning() { started_.get_future().wait(); }
  void Release() { release_.set_value(); }

 private:
  std::promise<void> started_;
  std::promise<void> release_;
};

class WriteQueueTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    path_ = (dir_.path() / "queue.sqlite").string();
  }

  std::unique_ptr<WriteQueue> Start(WriteQueueOptions options) {
    auto conn = Connection::Open(path_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, 5000);
    EXPECT_TRUE(conn.ok());
    if (!conn.ok()) return nullptr;
    Status st = conn->Exec(kTestSchema, "create test schema");
    EXPECT_TRUE(st.ok()) << (st.ok() ? "" : st.error().message);
    return std::make_unique<WriteQueue>(std::move(*conn), options);
  }

  long long Count(const std::string& table) { return QueryIntRaw(path_, "SELECT COUNT(*) FROM " + table); }

  TempDir dir_;
  std::string path_;
};

TEST_F(WriteQueueTest, QueuedMutationsCommitAsOneBatch) {
  auto queue = Start({});
  ASSERT_NE(queue, nullptr);
  Blocker blocker;
  auto blocked = queue->Submit(blocker.mutation());
  blocker.WaitUntilRunning();
  std::vector<std::future<Status>> futures;
  for (int i = 0; i < 100; ++i) futures.push_back(queue->Submit(InsertItem("item-" + std::to_string(i))));
  blocker.Release();
  EXPECT_TRUE(blocked.get().ok());
  for (auto& future : futures) EXPECT_TRUE(future.get().ok());

  const WriteQueueStats stats = queue->stats();
  EXPECT_EQ(stats.batches, 2u);  // the blocker's, then all 100 at once
  EXPECT_EQ(stats.mutations, 101u);
  EXPECT_EQ(stats.largest_batch, 100u);
  EXPECT_EQ(Count("items"), 100);
}

TEST_F(WriteQueueTest, MaxBatchBoundsTheBatchSize) {
  auto queue = Start({.group_commit = true, .max_batch = 10});
  ASSERT_NE(queue, nullptr);
  Blocker blocker;
  auto blocked = queue->Submit(blocker.mutation());
  blocker.WaitUntilRunning();
  std::vector<std::future<Status>> futures;
  for (int i = 0; i < 35; ++i) futures.push_back(queue->Submit(InsertItem("item-" + std::to_string(i))));
  blocker.Release();
  for (auto& future : futures) EXPECT_TRUE(future.get().ok());
  const WriteQueueStats stats = queue->stats();
  EXPECT_EQ(stats.batches, 5u);  // 1 + 10 + 10 + 10 + 5
  EXPECT_EQ(stats.largest_batch, 10u);
}

TEST_F(WriteQueueTest, WithoutGroupCommitEachMutationCommitsAlone) {
  auto queue = Start({.group_commit = false, .max_batch = 512});
  ASSERT_NE(queue, nullptr);
  Blocker blocker;
  auto blocked = queue->Submit(blocker.mutation());
  blocker.WaitUntilRunning();
  std::vector<std::future<Status>> futures;
  for (int i = 0; i < 20; ++i) futures.push_back(queue->Submit(InsertItem("item-" + std::to_string(i))));
  blocker.Release();
  for (auto& future : futures) EXPECT_TRUE(future.get().ok());
  EXPECT_EQ(queue->stats().batches, 21u);
  EXPECT_EQ(queue->stats().largest_batch, 1u);
}

TEST_F(WriteQueueTest, FailingMutationDoesNotFailTheRestOfItsBatch) {
  auto queue = Start({});
  ASSERT_NE(queue, nullptr);
  ASSERT_TRUE(queue->Run(InsertItem("dup")).ok());

  Blocker blocker;
  auto blocked = queue->Submit(blocker.mutation());
  blocker.WaitUntilRunning();
  auto before = queue->Submit(InsertItem("a"));
  auto duplicate = queue->Submit(InsertItem("dup"));
  auto thrower = queue->Submit([](Connection& conn) -> Status {
    (void)InsertItem("written-then-thrown")(conn);
    throw std::runtime_error("boom");
  });
  auto failed_after_write = queue->Submit([](Connection& conn) -> Status {
    Status st = InsertItem("rolled-back")(conn);
    if (!st.ok()) return st;
    return Error{ErrorCode::kConflict, "changed my mind", {}};
  });
  auto after = queue->Submit(InsertItem("b"));
  const auto batches_before = queue->stats().batches;
  blocker.Release();

  EXPECT_TRUE(before.get().ok());
  Status dup = duplicate.get();
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error().code, ErrorCode::kAlreadyExists);
  Status thrown = thrower.get();
  ASSERT_FALSE(thrown.ok());
  EXPECT_EQ(thrown.error().code, ErrorCode::kInternal);
  Status changed = failed_after_write.get();
  ASSERT_FALSE(changed.ok());
  EXPECT_EQ(changed.error().code, ErrorCode::kConflict);
  EXPECT_TRUE(after.get().ok());

  EXPECT_EQ(queue->stats().batches, batches_before + 2);  // blocker's batch + one batch of five
  EXPECT_EQ(queue->stats().largest_batch, 5u);
  EXPECT_EQ(Count("items"), 3);  // dup, a, b
  EXPECT_EQ(QueryIntRaw(path_, "SELECT COUNT(*) FROM items WHERE id IN ('rolled-back','written-then-thrown')"), 0);
}

TEST_F(WriteQueueTest, FailedCommitFailsTheWholeBatchAsUnavailable) {
  auto queue = Start({});
  ASSERT_NE(queue, nullptr);
  Blocker blocker;
  auto blocked = queue->Submit(blocker.mutation());
  blocker.WaitUntilRunning();
  auto innocent = queue->Submit(InsertItem("innocent"));
  // A deferred foreign key is only checked at COMMIT, which therefore fails.
  auto orphan = queue->Submit([](Connection& conn) -> Status {
    return conn.Exec("INSERT INTO children (id, parent_id) VALUES ('c', 'missing')", "insert orphan");
  });
  blocker.Release();
  Status innocent_status = innocent.get();
  Status orphan_status = orphan.get();
  ASSERT_FALSE(innocent_status.ok());
  ASSERT_FALSE(orphan_status.ok());
  EXPECT_EQ(innocent_status.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(orphan_status.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(queue->stats().failed_batches, 1u);
  EXPECT_EQ(Count("items"), 0);

  // The writer recovers: the next batch commits.
  EXPECT_TRUE(queue->Run(InsertItem("later")).ok());
  EXPECT_EQ(Count("items"), 1);
}

TEST_F(WriteQueueTest, DestructorDrainsEverythingQueued) {
  std::vector<std::future<Status>> futures;
  {
    auto queue = Start({.group_commit = true, .max_batch = 16});
    ASSERT_NE(queue, nullptr);
    for (int i = 0; i < 200; ++i) futures.push_back(queue->Submit(InsertItem("item-" + std::to_string(i))));
  }
  for (auto& future : futures) {
    ASSERT_EQ(future.wait_for(std::chrono::seconds(0)), std::future_status::ready);
    EXPECT_TRUE(future.get().ok());
  }
  EXPECT_EQ(Count("items"), 200);
}

// ---- group commit through the repository ----

using GroupCommitTest = RepositoryTest;

// Inserts threads x per_thread stores concurrently; returns the ids.
std::vector<std::string> InsertConcurrently(Repository& repo, int threads, int per_thread) {
  std::vector<std::string> ids;
  for (int t = 0; t < threads; ++t) {
    for (int i = 0; i < per_thread; ++i) {
      char id[32];
      std::snprintf(id, sizeof id, "t%02d-s%03d", t, i);
      ids.push_back(id);
    }
  }
  std::atomic<int> failures{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i) {
        auto inserted = InsertStoreAudited(repo, MakeStore(ids[static_cast<std::size_t>(t * per_thread + i)]));
        if (!inserted.ok()) ++failures;
      }
    });
  }
  for (auto& worker : workers) worker.join();
  EXPECT_EQ(failures.load(), 0);
  return ids;
}

TEST_F(GroupCommitTest, ConcurrentWritersShareCommitsAndEveryInsertIsDurable) {
  constexpr int kThreads = 32;
  constexpr int kPerThread = 50;
  const auto ids = InsertConcurrently(*repo_, kThreads, kPerThread);
  const WriteQueueStats stats = Stats();
  std::printf("[ group commit ] %llu mutations in %llu batches (largest %llu)\n",
              static_cast<unsigned long long>(stats.mutations), static_cast<unsigned long long>(stats.batches),
              static_cast<unsigned long long>(stats.largest_batch));
  EXPECT_EQ(stats.mutations, static_cast<std::uint64_t>(kThreads * kPerThread));
  EXPECT_LT(stats.batches, stats.mutations);  // batching happened
  EXPECT_GT(stats.largest_batch, 1u);

  // Every acknowledged insert is readable at once, and after reopening.
  for (const auto& id : ids) ASSERT_TRUE(repo_->GetStore(id).ok()) << id;
  Reopen();
  auto count = repo_->CountStores();
  ASSERT_TRUE(count.ok());
  EXPECT_EQ(*count, kThreads * kPerThread);
  for (const auto& id : ids) ASSERT_TRUE(repo_->GetStore(id).ok()) << id;
}

TEST_F(GroupCommitTest, WithoutGroupCommitEveryInsertIsItsOwnTransaction) {
  options_.group_commit = false;
  Reopen();
  constexpr int kThreads = 8;
  constexpr int kPerThread = 20;
  const auto ids = InsertConcurrently(*repo_, kThreads, kPerThread);
  const WriteQueueStats stats = Stats();
  std::printf("[ no group commit ] %llu mutations in %llu batches\n", static_cast<unsigned long long>(stats.mutations),
              static_cast<unsigned long long>(stats.batches));
  EXPECT_EQ(stats.mutations, static_cast<std::uint64_t>(kThreads * kPerThread));
  EXPECT_EQ(stats.batches, stats.mutations);
  Reopen();
  for (const auto& id : ids) ASSERT_TRUE(repo_->GetStore(id).ok()) << id;
}

TEST_F(GroupCommitTest, ConcurrentDuplicatesFailAloneAndExactlyOneWins) {
  constexpr int kIds = 100;
  constexpr int kThreads = 4;  // every thread tries every id
  std::atomic<int> won{0};
  std::atomic<int> already_exists{0};
  std::atomic<int> other{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < kThreads; ++t) {
    workers.emplace_back([&] {
      for (int i = 0; i < kIds; ++i) {
        auto inserted = InsertStoreAudited(*repo_, MakeStore("dup-" + std::to_string(i)));
        if (inserted.ok()) {
          ++won;
        } else if (inserted.error().code == ErrorCode::kAlreadyExists) {
          ++already_exists;
        } else {
          ++other;
        }
      }
    });
  }
  for (auto& worker : workers) worker.join();
  EXPECT_EQ(won.load(), kIds);
  EXPECT_EQ(already_exists.load(), kIds * (kThreads - 1));
  EXPECT_EQ(other.load(), 0);
  auto count = repo_->CountStores();
  ASSERT_TRUE(count.ok());
  EXPECT_EQ(*count, kIds);
}

TEST_F(GroupCommitTest, ReadsRunConcurrentlyWithWrites) {
  options_.read_connections = 2;
  Reopen();
  std::atomic<bool> done{false};
  std::atomic<int> read_failures{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 6; ++r) {  // more readers than connections: the pool blocks, never fails
    readers.emplace_back([&] {
      while (!done.load()) {
        auto page = repo_->ListStores({});
        if (!page.ok()) ++read_failures;
        if (!repo_->Ping().ok()) ++read_failures;
      }
    });
  }
  InsertConcurrently(*repo_, 8, 25);
  done = true;
  for (auto& reader : readers) reader.join();
  EXPECT_EQ(read_failures.load(), 0);
}

}  // namespace
}  // namespace storeplane::db
