// The event feed on PostgreSQL: two repositories on one fresh database are two replicas,
// each with its own EventHub and EventFeed. An event written through either reaches both
// hubs with the same id, in the log's order, within a second; a missed NOTIFY only delays
// it (the feed polls); a queued operation's notification reaches the callback; a write
// batch's events, encoded in its transaction, reach the other replica; a hub starts at
// the log's position. Skips without a PostgreSQL server (fails when one is required).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <boost/json.hpp>

#include "../db/db_test_util.h"
#include "db/pg_handle.h"
#include "db/postgres_repository.h"
#include "server/event_feed.h"
#include "server/event_hub.h"
#include "tests/support/postgres_database.h"
#include "tests/support/postgres_process.h"

namespace storeplane::server {
namespace {

using Clock = std::chrono::steady_clock;

std::int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

db::StoredEvent Stored(const std::string& store, const std::string& source, int n) {
  return EventHub::Encode(EventDraft{"agent.status", store, "agent.read", std::nullopt, 1'700'000'000'000 + n,
                                     boost::json::object{{"source", source}, {"n", n}}});
}

boost::json::object DataOf(const Event& e) {
  const auto start = e.frame.find("data: ") + 6;
  return boost::json::parse(e.frame.substr(start, e.frame.find('\n', start) - start)).as_object();
}

template <typename Pred>
bool WaitFor(Pred pred, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (!pred()) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

// One replica: its repository, hub and feed, and the operations it was told of.
struct Replica {
  std::unique_ptr<db::Repository> repo;
  std::unique_ptr<EventHub> hub;
  std::unique_ptr<EventFeed> feed;
  std::mutex mu;
  std::vector<std::string> queued;

  std::vector<std::string> Queued() {
    std::lock_guard lock(mu);
    return queued;
  }
  std::vector<std::shared_ptr<const Event>> All() { return hub->ReadAfter(0, 100'000).events; }
};

class EventFeedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!storeplane::testing::PostgresAvailable()) {
      if (storeplane::testing::PostgresRequired()) FAIL() << "no PostgreSQL and STOREPLANE_REQUIRE_POSTGRES is set";
      GTEST_SKIP() << "no PostgreSQL server binaries and no STOREPLANE_TEST_POSTGRES";
    }
    std::string error;
    conninfo_ = storeplane::testing::FreshPostgresDatabase(&error);
    ASSERT_FALSE(conninfo_.empty()) << error;
    for (auto* r : {&a_, &b_}) {
      auto opened = db::OpenPostgresRepository(db::PostgresOptions{conninfo_});
      ASSERT_TRUE(opened.ok()) << opened.error().message;
      r->repo = std::move(*opened);
    }
  }

  void TearDown() override {
    for (auto* r : {&a_, &b_}) {
      if (r->feed) r->feed->Stop();
    }
  }

  // The hub and feed of a replica, started (the daemon's order: the hub, then the feed,
  // then the HTTP server).
  void Start(Replica& r) {
    EventHub::Options options;
    options.epoch = r.repo->EventEpoch();
    ASSERT_FALSE(options.epoch.empty());
    r.hub = std::make_unique<EventHub>(options, [] { return NowMs(); });
    r.feed = std::make_unique<EventFeed>(*r.repo, *r.hub, [&r](const std::string& store_id) {
      std::lock_guard lock(r.mu);
      r.queued.push_back(store_id);
    });
    r.feed->Start();
  }

  Result<db::pg::PgConnection> Raw() { return db::pg::PgConnection::Open(conninfo_); }

  std::string conninfo_;
  Replica a_, b_;
};

TEST_F(EventFeedTest, AnEventAppendedOnOneReplicaReachesBothHubsWithTheSameIdWithinASecond) {
  Start(a_);
  Start(b_);
  EXPECT_EQ(a_.hub->epoch(), b_.hub->epoch());
  // Let both feeds open their LISTEN connections, so that what follows is notified.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));

  const auto sent = Clock::now();
  ASSERT_TRUE(a_.repo->AppendEvents({Stored("shop-1", "a", 1), Stored("shop-2", "a", 2)}).ok());
  ASSERT_TRUE(WaitFor([&] { return b_.All().size() == 2 && a_.All().size() == 2; }, std::chrono::seconds(5)));
  EXPECT_LT(Clock::now() - sent, std::chrono::milliseconds(1000));

  const auto in_a = a_.All();
  const auto in_b = b_.All();
  for (std::size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(in_a[i]->frame, in_b[i]->frame);
    EXPECT_EQ(DataOf(*in_b[i]).at("id").as_string(), b_.hub->epoch() + "-" + std::to_string(in_b[i]->seq));
  }
  EXPECT_EQ(in_b[0]->store_id, "shop-1");
  EXPECT_EQ(in_b[1]->store_id, "shop-2");
  EXPECT_LT(in_b[0]->seq, in_b[1]->seq);
  // A client can resume on the other replica with the id it got from the first.
  const std::string first_id = a_.hub->epoch() + "-" + std::to_string(in_a[0]->seq);
  EXPECT_EQ(b_.hub->ResumeAfter(first_id), in_a[0]->seq);
}

TEST_F(EventFeedTest, AMissedNotificationOnlyDelaysTheEvent) {
  auto raw = Raw();
  ASSERT_TRUE(raw.ok()) << raw.error().message;
  ASSERT_TRUE(raw->Script("ALTER TABLE events DISABLE TRIGGER events_notify", "silence NOTIFY").ok());
  Start(b_);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const auto sent = Clock::now();
  ASSERT_TRUE(a_.repo->AppendEvents({Stored("shop-1", "a", 1)}).ok());
  ASSERT_TRUE(WaitFor([&] { return b_.All().size() == 1; }, std::chrono::seconds(5)));
  EXPECT_LT(Clock::now() - sent, std::chrono::milliseconds(2500)) << "read by the feed's poll";
}

TEST_F(EventFeedTest, AQueuedOperationsNotificationReachesTheCallbackOnEveryReplica) {
  Start(a_);
  Start(b_);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  auto raw = Raw();
  ASSERT_TRUE(raw.ok()) << raw.error().message;
  ASSERT_TRUE(raw->Script("SELECT pg_notify('storeplane_operations', 'shop-1')", "notify").ok());
  ASSERT_TRUE(WaitFor([&] { return !a_.Queued().empty() && !b_.Queued().empty(); }, std::chrono::seconds(2)));
  EXPECT_EQ(a_.Queued(), std::vector<std::string>{"shop-1"});
  EXPECT_EQ(b_.Queued(), std::vector<std::string>{"shop-1"});
  EXPECT_TRUE(b_.All().empty()) << "an operation's notification is not an event";

  // Cleared (the daemon, before its AgentHub goes): no longer called.
  b_.feed->SetOnOperationQueued(nullptr);
  ASSERT_TRUE(raw->Script("SELECT pg_notify('storeplane_operations', 'shop-2')", "notify").ok());
  ASSERT_TRUE(WaitFor([&] { return a_.Queued().size() == 2; }, std::chrono::seconds(2)));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(b_.Queued(), std::vector<std::string>{"shop-1"});
}

TEST_F(EventFeedTest, ABurstFromBothReplicasArrivesCompleteAndInOneOrderEverywhere) {
  Start(a_);
  Start(b_);
  constexpr int kEach = 500;
  auto append = [](db::Repository& repo, const std::string& source) {
    for (int i = 0; i < kEach; ++i) {
      // Mostly single events, some pairs: transactions of different sizes interleave.
      std::vector<db::StoredEvent> events{Stored("shop-1", source, i)};
      if (i % 10 == 9 && i + 1 < kEach) events.push_back(Stored("shop-1", source, ++i));
      ASSERT_TRUE(repo.AppendEvents(events).ok());
    }
  };
  std::thread from_a(append, std::ref(*a_.repo), "a");
  std::thread from_b(append, std::ref(*b_.repo), "b");
  from_a.join();
  from_b.join();

  ASSERT_TRUE(
      WaitFor([&] { return a_.All().size() >= 2 * kEach && b_.All().size() >= 2 * kEach; }, std::chrono::seconds(10)))
      << a_.All().size() << " and " << b_.All().size() << " of " << 2 * kEach;
  const auto in_a = a_.All();
  const auto in_b = b_.All();
  ASSERT_EQ(in_a.size(), 2U * kEach);
  ASSERT_EQ(in_b.size(), 2U * kEach);
  std::map<std::string, std::int64_t> next{{"a", 0}, {"b", 0}};
  for (std::size_t i = 0; i < in_a.size(); ++i) {
    ASSERT_EQ(in_a[i]->frame, in_b[i]->frame) << "at " << i;
    if (i > 0) {
      ASSERT_LT(in_a[i - 1]->seq, in_a[i]->seq);
    }
    const auto data = DataOf(*in_a[i]);
    const std::string source(data.at("source").as_string());
    ASSERT_EQ(data.at("n").as_int64(), next[source]++) << "each writer's events in its order";
  }
  EXPECT_EQ(a_.feed->last_seq(), in_a.back()->seq);
  EXPECT_EQ(b_.feed->last_seq(), in_b.back()->seq);
}

TEST_F(EventFeedTest, AWriteBatchsEventsAreEncodedInItsTransactionAndReachTheOtherReplica) {
  a_.repo->SetEventEncoder([](const db::WriteBatch& batch, const db::WriteResult& result) {
    return EventHub::EncodeBatch(batch, result, NowMs());
  });
  Start(a_);
  Start(b_);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  auto store =
      db::testing::MakeStore("shop-9", "staging", core::IsolationMode::kShared, core::Labels{{"tier", "gold"}});
  db::WriteBatch batch;
  batch.effects.push_back(db::InsertStoreEffect{store});
  batch.audit.push_back(db::testing::TestAudit("store.register", "store/shop-9"));
  auto applied = a_.repo->Apply(batch);
  ASSERT_TRUE(applied.ok()) << applied.error().message;

  ASSERT_TRUE(WaitFor([&] { return b_.All().size() == 1 && a_.All().size() == 1; }, std::chrono::seconds(2)));
  const auto event = b_.All().front();
  EXPECT_EQ(event->type, "store.created");
  EXPECT_EQ(event->store_id, "shop-9");
  EXPECT_EQ(event->read_action, "store.read");
  EXPECT_EQ(event->frame, a_.All().front()->frame);
  const auto data = DataOf(*event);
  EXPECT_EQ(data.at("action").as_string(), "store.register");
  EXPECT_EQ(data.at("store").as_object().at("environment").as_string(), "staging");
  // The replica learned the store's scope from the event itself.
  const auto target = b_.hub->TargetOf("shop-9", *b_.repo);
  ASSERT_TRUE(target);
  EXPECT_EQ(target->environment, "staging");
  EXPECT_EQ(target->labels, (core::Labels{{"tier", "gold"}}));

  // A batch that fails writes no event.
  auto again = a_.repo->Apply(batch);
  EXPECT_FALSE(again.ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  EXPECT_EQ(b_.All().size(), 1U);
}

TEST_F(EventFeedTest, AHubStartsAtTheLogsPositionAndResumesFromIt) {
  ASSERT_TRUE(a_.repo->AppendEvents({Stored("shop-1", "a", 1), Stored("shop-1", "a", 2)}).ok());
  auto last = a_.repo->LastEventSeq();
  ASSERT_TRUE(last.ok());
  Start(b_);  // a replica starting (or restarting) after these events
  EXPECT_EQ(b_.hub->last_seq(), *last) << "positioned before the feed's thread runs";
  const std::string epoch = b_.hub->epoch();
  EXPECT_EQ(b_.hub->ResumeAfter(epoch + "-" + std::to_string(*last)), *last) << "nothing was missed after it";
  EXPECT_EQ(b_.hub->ResumeAfter(epoch + "-" + std::to_string(*last - 1)), std::nullopt) << "not held: a reset";
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_TRUE(b_.All().empty()) << "old events are not replayed";

  ASSERT_TRUE(a_.repo->AppendEvents({Stored("shop-1", "a", 3)}).ok());
  ASSERT_TRUE(WaitFor([&] { return b_.All().size() == 1; }, std::chrono::seconds(2)));
  EXPECT_GT(b_.All().front()->seq, *last);
  EXPECT_EQ(DataOf(*b_.All().front()).at("n").as_int64(), 3);
}

TEST_F(EventFeedTest, KeepsGoingWhenItsConnectionsAreCutAndCatchesUp) {
  Start(a_);
  Start(b_);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ASSERT_TRUE(a_.repo->AppendEvents({Stored("shop-1", "a", 1)}).ok());
  ASSERT_TRUE(WaitFor([&] { return b_.All().size() == 1; }, std::chrono::seconds(2)));

  // Every connection of both replicas (their LISTEN connections and their pools) is cut,
  // as by a database restart.
  auto raw = Raw();
  ASSERT_TRUE(raw.ok()) << raw.error().message;
  ASSERT_TRUE(raw->Script("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
                          "AND pid <> pg_backend_pid()",
                          "cut the replicas' connections")
                  .ok());
  // A write may fail once on a cut pool connection; the caller would retry.
  ASSERT_TRUE(WaitFor([&] { return a_.repo->AppendEvents({Stored("shop-1", "a", 2)}).ok(); }, std::chrono::seconds(5)));
  ASSERT_TRUE(WaitFor([&] { return b_.All().size() == 2 && a_.All().size() == 2; }, std::chrono::seconds(8)))
      << "b holds " << b_.All().size() << ", a holds " << a_.All().size();
  EXPECT_EQ(DataOf(*b_.All().back()).at("n").as_int64(), 2);

  // And it listens again: the next event is notified, not only polled.
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  const auto sent = Clock::now();
  ASSERT_TRUE(a_.repo->AppendEvents({Stored("shop-1", "a", 3)}).ok());
  ASSERT_TRUE(WaitFor([&] { return b_.All().size() == 3; }, std::chrono::seconds(5)));
  EXPECT_LT(Clock::now() - sent, std::chrono::milliseconds(1000));
}

TEST_F(EventFeedTest, AppendedStatusEventsReachEveryReplicaInCallOrder) {
  Start(a_);
  Start(b_);
  constexpr int kCount = 50;
  for (int i = 0; i < kCount; ++i) {
    a_.feed->Append(EventHub::AgentStatusDraft("shop-" + std::to_string(i), "agt_" + std::to_string(i), "online",
                                               "healthy", 1'700'000'000'000 + i));
  }
  ASSERT_TRUE(WaitFor([&] { return a_.All().size() == kCount && b_.All().size() == kCount; }, std::chrono::seconds(3)));
  const auto in_b = b_.All();
  for (int i = 0; i < kCount; ++i) {
    EXPECT_EQ(in_b[static_cast<std::size_t>(i)]->store_id, "shop-" + std::to_string(i));
    EXPECT_EQ(in_b[static_cast<std::size_t>(i)]->type, "agent.status");
  }
  EXPECT_EQ(in_b.front()->frame, a_.All().front()->frame);

  // Queued just before Stop(): still appended.
  a_.feed->Append(EventHub::AgentStatusDraft("shop-last", "agt_x", "lost", "unknown", 1'700'000'000'999));
  a_.feed->Stop();
  ASSERT_TRUE(WaitFor([&] { return b_.All().size() == kCount + 1; }, std::chrono::seconds(3)));
  EXPECT_EQ(b_.All().back()->store_id, "shop-last");
}

TEST_F(EventFeedTest, StopsPromptly) {
  Start(a_);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const auto asked = Clock::now();
  a_.feed->Stop();
  EXPECT_LT(Clock::now() - asked, std::chrono::milliseconds(1500));
  a_.feed->Stop();  // again: nothing to do
}

}  // namespace
}  // namespace storeplane::server
