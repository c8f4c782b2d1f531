// EventHub: ids in publish order, reads from a position, a lost position after the ring
// wrapped, resuming only ids of this epoch still held, wake-ups, the stream limit, and
// the events of a committed write batch in effect order.
#include <gtest/gtest.h>

#include <boost/json.hpp>

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

}  // namespace
}  // namespace storeplane::server
