// EventHub: ids in publish order, reads from a position, a lost position after the ring
// wrapped, resuming only ids of this epoch still held, wake-ups, the stream limit, and
// the events of a committed write batch in effect order. Events numbered by a shared log
// (PublishStored): the same frames and scopes as published drafts, seqs with gaps, a start
// position (StartAt), and resuming across gaps and a wrapped ring.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "../db/db_test_util.h"
#include "db/sqlite_repository.h"
#include "server/event_hub.h"

namespace storeplane::server {
namespace {

EventDraft Draft(std::string type, std::string store = "shop-a") {
  return EventDraft{std::move(type), std::move(store), "store.read", std::nullopt, 1'700'000'000'000, {}};
}

boost::json::object DataOf(const Event& e) {
  const auto start = e.frame.find("data: ") + 6;
  return boost::json::parse(e.frame.substr(start, e.frame.find('\n', start) - start)).as_object();
}

TEST(EventHub, AssignsIdsInOrderAndReadsFromAPosition) {
  EventHub hub({100, 4}, [] { return 0; });
  hub.Publish({Draft("store.created"), Draft("store.updated")});
  hub.Publish({Draft("store.updated", "shop-b")});
  auto all = hub.ReadAfter(0, 10);
  ASSERT_EQ(all.events.size(), 3U);
  EXPECT_FALSE(all.lost);
  EXPECT_EQ(all.events[0]->seq, 1);
  EXPECT_EQ(all.events[2]->store_id, "shop-b");
  const auto data = DataOf(*all.events[1]);
  EXPECT_EQ(data.at("id").as_string(), hub.epoch() + "-2");
  EXPECT_EQ(data.at("type").as_string(), "store.updated");
  EXPECT_EQ(data.at("at").as_string(), "2023-11-14T22:13:20.000Z");
  EXPECT_NE(all.events[1]->frame.find("id: " + hub.epoch() + "-2\nevent: store.updated\ndata: {"), std::string::npos);

  auto rest = hub.ReadAfter(1, 1);
  ASSERT_EQ(rest.events.size(), 1U);
  EXPECT_EQ(rest.events[0]->seq, 2);
}

TEST(EventHub, ANewEventWakesAWaitingReader) {
  EventHub hub({100, 4}, [] { return 0; });
  auto empty = hub.ReadAfter(hub.last_seq(), 10);
  ASSERT_TRUE(empty.events.empty());
  ASSERT_TRUE(empty.wait);
  EXPECT_FALSE(empty.wait->fired());
  hub.Publish({Draft("store.created")});
  EXPECT_TRUE(empty.wait->fired());
}

TEST(EventHub, ResumesOnlyIdsOfThisEpochStillHeld) {
  EventHub hub({3, 4}, [] { return 0; });
  for (int i = 0; i < 5; ++i) hub.Publish({Draft("store.updated")});  // ring holds 3, 4, 5
  EXPECT_EQ(hub.ResumeAfter(hub.epoch() + "-2"), 2);                  // 3 follows it, still held
  EXPECT_EQ(hub.ResumeAfter(hub.epoch() + "-5"), 5);                  // nothing missed
  EXPECT_EQ(hub.ResumeAfter(hub.epoch() + "-1"), std::nullopt);       // 2 was overwritten
  EXPECT_EQ(hub.ResumeAfter(hub.epoch() + "-9"), std::nullopt);       // never issued
  EXPECT_EQ(hub.ResumeAfter("000000000000-3"), std::nullopt);         // another process
  EXPECT_EQ(hub.ResumeAfter(hub.epoch() + "-x"), std::nullopt);
  EXPECT_EQ(hub.ResumeAfter(""), std::nullopt);

  auto behind = hub.ReadAfter(0, 10);  // a reader that fell behind is told so
  EXPECT_TRUE(behind.lost);
  ASSERT_EQ(behind.events.size(), 3U);
  EXPECT_EQ(behind.events[0]->seq, 3);
}

TEST(EventHub, LimitsOpenStreams) {
  EventHub hub({100, 2}, [] { return 0; });
  EXPECT_TRUE(hub.OpenStream());
  EXPECT_TRUE(hub.OpenStream());
  EXPECT_FALSE(hub.OpenStream());
  hub.CloseStream();
  EXPECT_TRUE(hub.OpenStream());
  EXPECT_EQ(hub.open_streams(), 2);
}

TEST(EventHub, TurnsACommittedBatchIntoEventsInEffectOrder) {
  core::Store store;
  store.id = "shop-a";
  store.environment = "staging";
  store.version = 2;
  db::PipelineRunRecord run;
  run.id = "run_1";
  run.store_id = "shop-a";
  run.kind = "deploy";
  run.state = "pending";
  db::WriteBatch batch;
  batch.effects.push_back(db::UpdateStoreEffect{store, 1});
  batch.effects.push_back(db::InsertRunEffect{run, {}});
  batch.effects.push_back(db::RevokeAgentEffect{"shop-a", 5});
  batch.effects.push_back(db::RevokeTokenEffect{"tok_1", 5});  // not an event
  core::AuditEntry entry;
  entry.action = "deploy.request";
  batch.audit.push_back(entry);
  db::WriteResult result;
  result.stores.push_back(store);
  result.runs.push_back(run);

  auto drafts = EventHub::DraftsOf(batch, result, 42);
  ASSERT_EQ(drafts.size(), 3U);
  EXPECT_EQ(drafts[0].type, "store.updated");
  EXPECT_EQ(drafts[0].read_action, "store.read");
  ASSERT_TRUE(drafts[0].target);
  EXPECT_EQ(drafts[0].target->environment, "staging");
  EXPECT_EQ(drafts[0].payload.at("store").as_object().at("version").as_int64(), 2);
  EXPECT_EQ(drafts[0].payload.at("action").as_string(), "deploy.request");
  EXPECT_EQ(drafts[1].type, "run.created");
  EXPECT_EQ(drafts[1].read_action, "run.read");
  EXPECT_EQ(drafts[1].payload.at("run").as_object().at("id").as_string(), "run_1");
  EXPECT_EQ(drafts[2].type, "agent.updated");
  EXPECT_EQ(drafts[2].read_action, "agent.read");
  EXPECT_EQ(drafts[2].payload.at("change").as_string(), "revoked");
  EXPECT_EQ(drafts[2].at_ms, 42);

  // A store event teaches the hub the store's scope, used for later events about it.
  EventHub hub({100, 4}, [] { return 0; });
  hub.Publish(std::move(drafts));
}

db::StoredEvent Stored(std::int64_t seq, std::string type = "store.updated", std::string store = "shop-a") {
  db::StoredEvent event = EventHub::Encode(Draft(std::move(type), std::move(store)));
  event.seq = seq;
  return event;
}

std::vector<std::int64_t> SeqsOf(const EventHub::Read& read) {
  std::vector<std::int64_t> seqs;
  for (const auto& e : read.events) seqs.push_back(e->seq);
  return seqs;
}

TEST(EventHub, TakesTheEpochItIsGiven) {
  EventHub::Options options;
  options.epoch = "log-7f3a";
  EventHub shared(options, [] { return 0; });
  EXPECT_EQ(shared.epoch(), "log-7f3a");
  shared.PublishStored({Stored(4)});
  EXPECT_EQ(DataOf(*shared.ReadAfter(0, 1).events.at(0)).at("id").as_string(), "log-7f3a-4");
  EXPECT_EQ(shared.ResumeAfter("log-7f3a-4"), 4) << "an epoch with a dash still parses";

  EventHub own({100, 4}, [] { return 0; });
  EXPECT_EQ(own.epoch().size(), 12U) << "no epoch given: a random one, as before";
}

// A replica reading the shared log must show exactly what a single process shows for the
// same batch: byte-identical frames, and the same facts for deciding who sees them.
TEST(EventHub, StoredEventsGiveTheSameFramesAndScopesAsPublishedDrafts) {
  core::Store store = db::testing::MakeStore("shop-a", "staging", core::IsolationMode::kShared,
                                             core::Labels{{"region", "eu"}, {"tier", "gold"}});
  store.version = 2;
  db::PipelineRunRecord run;
  run.id = "run_1";
  run.store_id = "shop-a";
  run.kind = "deploy";
  run.state = "pending";
  db::WriteBatch batch;
  batch.effects.push_back(db::UpdateStoreEffect{store, 1});
  batch.effects.push_back(db::InsertRunEffect{run, {}});
  batch.effects.push_back(db::RevokeAgentEffect{"shop-a", 5});
  core::AuditEntry entry;
  entry.action = "store.label";
  batch.audit.push_back(entry);
  db::WriteResult result;
  result.stores.push_back(store);
  result.runs.push_back(run);

  std::vector<EventDraft> drafts = EventHub::DraftsOf(batch, result, 1'700'000'000'123);
  boost::json::object rollout{{"id", "ro_1"}, {"ratio", 0.25}, {"done", nullptr}, {"stores", boost::json::array{1, 2}}};
  drafts.push_back(EventDraft{"rollout.created", "", "rollout.read", core::AuthzTarget{"", "production", {}},
                              1'700'000'000'124, boost::json::object{{"rollout", rollout}}});
  drafts.push_back(EventHub::AgentStatusDraft("shop-a", "agt_1", "lost", "unknown", 1'700'000'000'125));

  std::vector<db::StoredEvent> stored = EventHub::EncodeBatch(batch, result, 1'700'000'000'123);
  stored.push_back(EventHub::Encode(drafts[3]));
  stored.push_back(EventHub::Encode(drafts[4]));
  ASSERT_EQ(stored.size(), drafts.size());
  for (std::size_t i = 0; i < stored.size(); ++i) stored[i].seq = static_cast<std::int64_t>(i + 1);

  EventHub::Options options;
  options.epoch = "e1";
  EventHub local(options, [] { return 0; });
  EventHub replica(options, [] { return 0; });
  local.Publish(drafts);
  replica.PublishStored(stored);

  const auto a = local.ReadAfter(0, 100);
  const auto b = replica.ReadAfter(0, 100);
  ASSERT_EQ(a.events.size(), 5U);
  ASSERT_EQ(b.events.size(), 5U);
  for (std::size_t i = 0; i < a.events.size(); ++i) {
    SCOPED_TRACE(a.events[i]->type);
    EXPECT_EQ(a.events[i]->seq, b.events[i]->seq);
    EXPECT_EQ(a.events[i]->frame, b.events[i]->frame);
    EXPECT_EQ(a.events[i]->type, b.events[i]->type);
    EXPECT_EQ(a.events[i]->store_id, b.events[i]->store_id);
    EXPECT_EQ(a.events[i]->read_action, b.events[i]->read_action);
    EXPECT_EQ(a.events[i]->environment, b.events[i]->environment);
  }
  // The rollout is decided against its environment; store events against the store.
  EXPECT_EQ(b.events[3]->environment, "production");
  EXPECT_EQ(b.events[3]->store_id, "");
  EXPECT_EQ(b.events[0]->environment, "");

  // The store event taught both hubs the store's new scope (no repository lookup: the
  // repository here holds no store at all).
  db::testing::TempDir dir;
  auto repo = db::OpenSqliteRepository(db::SqliteOptions{(dir.path() / "db.sqlite").string()});
  ASSERT_TRUE(repo.ok()) << repo.error().message;
  const auto from_local = local.TargetOf("shop-a", **repo);
  const auto from_replica = replica.TargetOf("shop-a", **repo);
  ASSERT_TRUE(from_local && from_replica);
  EXPECT_EQ(from_replica->environment, "staging");
  EXPECT_EQ(from_replica->labels, from_local->labels);
  EXPECT_EQ(from_replica->labels.at("tier"), "gold");
  EXPECT_FALSE(replica.TargetOf("shop-b", **repo)) << "an unknown store is looked up, not invented";
}

TEST(EventHub, StoredSeqsMayHaveGapsAndOldOnesAreIgnored) {
  EventHub hub({100, 4, "e"}, [] { return 0; });
  hub.PublishStored({Stored(3), Stored(5), Stored(9)});
  EXPECT_EQ(hub.last_seq(), 9);
  EXPECT_EQ(SeqsOf(hub.ReadAfter(0, 10)), (std::vector<std::int64_t>{3, 5, 9}));
  EXPECT_EQ(SeqsOf(hub.ReadAfter(3, 10)), (std::vector<std::int64_t>{5, 9}));
  EXPECT_EQ(SeqsOf(hub.ReadAfter(4, 10)), (std::vector<std::int64_t>{5, 9})) << "after a gap";
  EXPECT_EQ(SeqsOf(hub.ReadAfter(5, 1)), (std::vector<std::int64_t>{9}));
  auto none = hub.ReadAfter(9, 10);
  EXPECT_TRUE(none.events.empty());
  ASSERT_TRUE(none.wait);

  hub.PublishStored({Stored(5), Stored(9), Stored(12, "store.created")});  // re-read: only 12 is new
  EXPECT_TRUE(none.wait->fired());
  const auto read = hub.ReadAfter(9, 10);
  ASSERT_EQ(SeqsOf(read), (std::vector<std::int64_t>{12}));
  EXPECT_EQ(read.events[0]->type, "store.created");
  EXPECT_EQ(DataOf(*read.events[0]).at("id").as_string(), "e-12");
  hub.PublishStored({Stored(11)});  // late and out of order: never shown
  EXPECT_EQ(hub.last_seq(), 12);
  EXPECT_EQ(SeqsOf(hub.ReadAfter(0, 10)), (std::vector<std::int64_t>{3, 5, 9, 12}));
}

TEST(EventHub, StartsAtTheLogsPositionAndResetsIdsBeforeIt) {
  EventHub hub({100, 4, "e"}, [] { return 0; });
  hub.StartAt(100);
  EXPECT_EQ(hub.last_seq(), 100);
  EXPECT_EQ(hub.ResumeAfter("e-100"), 100) << "the last event before a restart: nothing missed";
  EXPECT_EQ(hub.ResumeAfter("e-99"), std::nullopt) << "event 100 is not held";
  EXPECT_EQ(hub.ResumeAfter("e-101"), 101) << "another replica's, not yet read here";
  auto behind = hub.ReadAfter(50, 10);
  EXPECT_TRUE(behind.lost);
  EXPECT_TRUE(behind.events.empty());
  EXPECT_TRUE(behind.wait);

  hub.PublishStored({Stored(90), Stored(101), Stored(104)});  // 90: before the start, ignored
  EXPECT_EQ(SeqsOf(hub.ReadAfter(100, 10)), (std::vector<std::int64_t>{101, 104}));
  EXPECT_EQ(hub.ResumeAfter("e-101"), 101);
  EXPECT_EQ(hub.ResumeAfter("e-102"), 102) << "inside a gap: what follows is held";
  EXPECT_EQ(hub.ResumeAfter("e-104"), 104);
  EXPECT_EQ(hub.ResumeAfter("e-105"), 105) << "issued by a replica that is ahead: wait for it";
  EventHub own({100, 4}, [] { return 0; });
  EXPECT_EQ(own.ResumeAfter(own.epoch() + "-1"), std::nullopt) << "one process: never issued";

  hub.StartAt(104);  // not ahead: nothing changes
  hub.StartAt(3);
  EXPECT_EQ(SeqsOf(hub.ReadAfter(100, 10)), (std::vector<std::int64_t>{101, 104}));
  hub.StartAt(200);  // ahead (the feed was down, then the log was trimmed): start afresh
  EXPECT_EQ(hub.last_seq(), 200);
  EXPECT_TRUE(hub.ReadAfter(104, 10).lost);
  EXPECT_EQ(hub.ResumeAfter("e-104"), std::nullopt);
}

TEST(EventHub, AWrappedRingWithGapsResumesOnlyWhereNothingWasDropped) {
  EventHub hub({3, 4, "e"}, [] { return 0; });
  hub.PublishStored({Stored(2), Stored(4), Stored(6), Stored(8), Stored(10)});  // holds 6, 8, 10
  EXPECT_EQ(hub.ResumeAfter("e-4"), 4) << "6 follows 4 and is held";
  EXPECT_EQ(hub.ResumeAfter("e-5"), 5);
  EXPECT_EQ(hub.ResumeAfter("e-3"), std::nullopt) << "4 was dropped";
  EXPECT_EQ(hub.ResumeAfter("e-2"), std::nullopt);
  EXPECT_FALSE(hub.ReadAfter(4, 10).lost);
  auto behind = hub.ReadAfter(2, 10);
  EXPECT_TRUE(behind.lost);
  EXPECT_EQ(SeqsOf(behind), (std::vector<std::int64_t>{6, 8, 10}));
}

}  // namespace
}  // namespace storeplane::server
