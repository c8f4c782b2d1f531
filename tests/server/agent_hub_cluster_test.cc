// The AgentHub with several replicas on one database (ADR 0012, issue 8): two hubs in
// shared-storage mode, A the leader and B not, on a fake clock. On PostgreSQL they run on
// two connections to one fresh database (two replicas); on SQLite they share one
// repository, and B still learns only through the database. The PostgreSQL cases skip
// while the agents/operations storage of the PostgreSQL back end is not there yet.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "server/agent_hub.h"
#include "server/auth.h"
#include "tests/db/db_test_util.h"

namespace storeplane::server {
namespace {

using db::testing::Backend;

constexpr std::int64_t kT0 = 1'700'000'000'000;
constexpr std::int64_t kInterval = 10'000;
constexpr char kStore[] = "shop-1";
constexpr char kCredential[] = "agent-credential-1";

struct Published {
  std::string store_id;
  core::Availability availability;
  core::Health health;
  std::int64_t at_ms;
};

class AgentHubClusterTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    if (postgres()) {
      if (!storeplane::testing::PostgresAvailable()) {
        if (storeplane::testing::PostgresRequired()) FAIL() << "no PostgreSQL and STOREPLANE_REQUIRE_POSTGRES is set";
        GTEST_SKIP() << "no PostgreSQL server binaries and no STOREPLANE_TEST_POSTGRES";
      }
      std::string error;
      db::PostgresOptions options;
      options.conninfo = storeplane::testing::FreshPostgresDatabase(&error);
      ASSERT_FALSE(options.conninfo.empty()) << error;
      auto a = db::OpenPostgresRepository(options);
      ASSERT_TRUE(a.ok()) << a.error().message;
      auto b = db::OpenPostgresRepository(options);
      ASSERT_TRUE(b.ok()) << b.error().message;
      repo_a_ = std::move(*a);
      repo_b_ = std::move(*b);
    } else {
      ASSERT_FALSE(dir_.path().empty());
      db::SqliteOptions options;
      options.path = (dir_.path() / "db.sqlite").string();
      auto opened = db::OpenSqliteRepository(options);
      ASSERT_TRUE(opened.ok()) << opened.error().message;
      repo_a_ = std::move(*opened);
    }
    // The agents and operations storage may not be ported to PostgreSQL yet.
    if (auto probe = repo_a_->ListAgents(); !probe.ok()) {
      if (probe.error().message.find("not implemented") != std::string::npos) {
        GTEST_SKIP() << "agents storage: " << probe.error().message;
      }
      FAIL() << probe.error().message;
    }
    auto store = db::testing::InsertStoreAudited(*repo_a_, db::testing::MakeStore(kStore));
    ASSERT_TRUE(store.ok()) << store.error().message;
    store_ = *store;

    a_ = MakeHub(*repo_a_, "A", [this] { return a_leads_.load(); });
    b_ = MakeHub(repo_b(), "B", [this] { return b_leads_.load(); });
  }

  bool postgres() const { return GetParam() == Backend::kPostgres; }
  db::Repository& repo_b() { return repo_b_ ? *repo_b_ : *repo_a_; }

  std::unique_ptr<AgentHub> MakeHub(db::Repository& repo, const std::string& name, std::function<bool()> leads) {
    AgentHubOptions options;
    options.heartbeat_interval_ms = kInterval;
    options.flush_interval_ms = 5'000;
    options.seen_write_ms = kInterval;
    options.shared_storage = true;
    options.refresh_interval_ms = 1'000;
    auto hub = std::make_unique<AgentHub>(repo, options, [this] { return now_.load(); });
    hub->SetLeaderHooks({std::move(leads), nullptr, [] {}});  // leader-only writes unfenced
    hub->SetStatusListener([this, name](const std::string& store, const std::string&, core::Availability availability,
                                        core::Health health) {
      std::lock_guard lock(mu_);
      statuses_[name].push_back({store, availability, health, now_.load()});
    });
    auto loaded = hub->Load();
    EXPECT_TRUE(loaded.ok()) << loaded.error().message;
    return hub;
  }

  std::vector<Published> Statuses(const std::string& hub) {
    std::lock_guard lock(mu_);
    return statuses_[hub];
  }

  // One audited batch through `repo`.
  Result<db::WriteResult> Apply(db::Repository& repo, std::vector<db::Effect> effects) {
    db::WriteBatch batch;
    batch.effects = std::move(effects);
    batch.audit.push_back(db::testing::TestAudit("test.write", "store/" + std::string(kStore), ++audit_n_));
    return repo.Apply(batch);
  }

  // Enrolls the store's agent through `repo` and tells `hub`, as the enroll handler does.
  db::AgentRecord Enroll(db::Repository& repo, AgentHub& hub, const std::string& agent_id,
                         const std::string& credential) {
    db::EnrollmentToken token;
    token.id = "enr_" + agent_id;
    token.token_hash = "hash-" + agent_id;
    token.store_id = kStore;
    token.created_by = "alice";
    token.created_at_ms = now_;
    token.expires_at_ms = now_ + 3'600'000;
    EXPECT_TRUE(Apply(repo, {db::InsertEnrollmentTokenEffect{token}}).ok());
    db::AgentRecord agent;
    agent.store_id = kStore;
    agent.id = agent_id;
    agent.credential_hash = Sha256Hex(credential);
    agent.enrolled_at_ms = now_;
    agent.agent_version = "1.0.0";
    auto enrolled = Apply(repo, {db::EnrollAgentEffect{token.id, now_, agent}});
    EXPECT_TRUE(enrolled.ok()) << enrolled.error().message;
    hub.OnEnrolled(agent, store_);
    return agent;
  }

  protocol::HeartbeatAck Beat(AgentHub& hub, const std::string& release = "r1") {
    protocol::Heartbeat heartbeat;
    heartbeat.agent_version = "1.0.0";
    heartbeat.session = "session-1";
    heartbeat.release = release;
    return hub.RecordHeartbeat(identity_, heartbeat);
  }

  db::OperationRecord Queue(db::Repository& repo, AgentHub& hub, const std::string& id, std::int64_t expires_in_ms) {
    db::OperationRecord op;
    op.id = id;
    op.store_id = kStore;
    op.name = "cache.flush";
    op.params_json = R"({"types":["config"]})";
    op.requested_by = "alice";
    op.request_id = "req-" + id;
    op.created_at_ms = now_;
    op.expires_at_ms = now_ + expires_in_ms;
    op.timeout_s = 60;
    auto queued = Apply(repo, {db::InsertOperationEffect{op}});
    EXPECT_TRUE(queued.ok()) << queued.error().message;
    hub.OnOperationQueued(op);
    return op;
  }

  std::string StoredAvailability() {
    auto agent = repo_a_->GetAgent(kStore);
    if (!agent.ok() || !*agent) return "?";
    return (*agent)->availability;
  }

  core::Availability ViewAvailability(AgentHub& hub) {
    auto view = hub.View(kStore);
    return view ? view->availability : core::Availability::kNeverSeen;
  }

  db::testing::TempDir dir_;
  std::unique_ptr<db::Repository> repo_a_;
  std::unique_ptr<db::Repository> repo_b_;  // null on SQLite: both hubs share repo_a_
  core::Store store_;
  std::atomic<std::int64_t> now_{kT0};
  std::atomic<bool> a_leads_{true};
  std::atomic<bool> b_leads_{false};
  AgentIdentity identity_{kStore, "agt_1"};
  int audit_n_ = 0;
  std::mutex mu_;
  std::map<std::string, std::vector<Published>> statuses_;
  // Last: the hubs' final sweeps (in their destructors) still publish into the above.
  std::unique_ptr<AgentHub> a_;
  std::unique_ptr<AgentHub> b_;
};

// Heartbeats alternate between the replicas for a minute: neither judges the agent stale
// or offline, and only the leader publishes or writes availability. Then the agent stops:
// the leader judges it stale and offline at the usual ages (1.5 and 2.5 intervals).
TEST_P(AgentHubClusterTest, HeartbeatsMovingBetweenReplicasAreNeverLost) {
  Enroll(*repo_a_, *a_, "agt_1", kCredential);
  std::int64_t last_beat = 0;
  for (int second = 0; second <= 60; ++second) {
    now_ = kT0 + second * 1000;
    if (second % 10 == 0) {
      Beat(second % 20 == 0 ? *a_ : *b_);
      last_beat = now_;
    }
    a_->SweepOnce(second % 5 == 0);
    b_->SweepOnce(second % 5 == 0);
    ASSERT_EQ(ViewAvailability(*a_), core::Availability::kOnline) << "A at second " << second;
    ASSERT_EQ(ViewAvailability(*b_), core::Availability::kOnline) << "B at second " << second;
    ASSERT_EQ(StoredAvailability(), "online") << "at second " << second;
  }
  EXPECT_TRUE(Statuses("B").empty());
  auto published = Statuses("A");
  ASSERT_EQ(published.size(), 1u);
  EXPECT_EQ(published[0].availability, core::Availability::kOnline);

  // The agent stops (its last heartbeat went to A at 60 s).
  std::optional<std::int64_t> stale_at, offline_at;
  for (int second = 61; second <= 120; ++second) {
    now_ = kT0 + second * 1000;
    b_->SweepOnce(false);
    a_->SweepOnce(false);
    for (const auto& status : Statuses("A")) {
      if (status.availability == core::Availability::kStale && !stale_at) stale_at = status.at_ms;
      if (status.availability == core::Availability::kOffline && !offline_at) offline_at = status.at_ms;
    }
  }
  ASSERT_TRUE(stale_at && offline_at);
  EXPECT_GT(*stale_at - last_beat, kInterval * 3 / 2);
  EXPECT_LE(*stale_at - last_beat, kInterval * 3 / 2 + 1000);
  EXPECT_GT(*offline_at - last_beat, kInterval * 5 / 2);
  EXPECT_LE(*offline_at - last_beat, kInterval * 5 / 2 + 1000);
  EXPECT_EQ(StoredAvailability(), "offline");
  EXPECT_EQ(ViewAvailability(*b_), core::Availability::kOffline);
  EXPECT_TRUE(Statuses("B").empty());
}

// The agent moves to B for good: A (the leader) follows its heartbeats through the
// database, and B writes them but never the availability columns.
TEST_P(AgentHubClusterTest, OnlyTheLeaderPublishesAndWritesAvailability) {
  Enroll(*repo_a_, *a_, "agt_1", kCredential);
  ASSERT_TRUE(b_->Refresh().ok());
  Beat(*b_);
  b_->SweepOnce(true);
  EXPECT_EQ(ViewAvailability(*b_), core::Availability::kOnline);
  EXPECT_EQ(StoredAvailability(), "never_seen");  // B wrote the heartbeat, not the judgement
  EXPECT_TRUE(Statuses("B").empty());
  a_->SweepOnce(false);
  EXPECT_EQ(StoredAvailability(), "online");
  ASSERT_EQ(Statuses("A").size(), 1u);
  for (int second = 1; second <= 100; ++second) {
    now_ = kT0 + second * 1000;
    if (second % 10 == 0) Beat(*b_);
    b_->SweepOnce(false);
    a_->SweepOnce(false);
    ASSERT_EQ(ViewAvailability(*a_), core::Availability::kOnline) << "at second " << second;
  }
  EXPECT_EQ(Statuses("A").size(), 1u);
  EXPECT_TRUE(Statuses("B").empty());

  // Leadership moves to B: it publishes what differs from the stored columns, once.
  a_leads_ = false;
  b_leads_ = true;
  for (int second = 101; second <= 140; ++second) {
    now_ = kT0 + second * 1000;
    a_->SweepOnce(false);
    b_->SweepOnce(false);
  }
  EXPECT_EQ(Statuses("A").size(), 1u);
  auto b_published = Statuses("B");
  ASSERT_EQ(b_published.size(), 2u);
  EXPECT_EQ(b_published[0].availability, core::Availability::kStale);
  EXPECT_EQ(b_published[1].availability, core::Availability::kOffline);
  EXPECT_EQ(StoredAvailability(), "offline");
}

TEST_P(AgentHubClusterTest, EnrollmentRotationAndRevocationReachTheOtherReplica) {
  EXPECT_FALSE(b_->Authenticate(kCredential));
  Enroll(*repo_a_, *a_, "agt_1", kCredential);
  EXPECT_TRUE(a_->Authenticate(kCredential));
  ASSERT_TRUE(b_->Refresh().ok());
  auto who = b_->Authenticate(kCredential);
  ASSERT_TRUE(who);
  EXPECT_EQ(who->agent_id, "agt_1");

  // Rotated through A.
  ASSERT_TRUE(Apply(*repo_a_, {db::RotateAgentCredentialEffect{kStore, "agt_1", Sha256Hex("rotated"), now_}}).ok());
  a_->OnRotated(kStore, Sha256Hex("rotated"), now_);
  ASSERT_TRUE(b_->Refresh().ok());
  EXPECT_FALSE(b_->Authenticate(kCredential));
  EXPECT_TRUE(b_->Authenticate("rotated"));

  // Revoked through A: B refuses it after one refresh.
  ASSERT_TRUE(Apply(*repo_a_, {db::RevokeAgentEffect{kStore, now_}}).ok());
  a_->OnRevoked(kStore, now_);
  EXPECT_FALSE(a_->Authenticate("rotated"));
  EXPECT_TRUE(b_->Authenticate("rotated"));  // until its next refresh
  ASSERT_TRUE(b_->Refresh().ok());
  EXPECT_FALSE(b_->Authenticate("rotated"));

  // Enrolled again through B: A learns the new agent.
  now_ += 1000;
  Enroll(repo_b(), *b_, "agt_2", "second");
  ASSERT_TRUE(a_->Refresh().ok());
  auto again = a_->Authenticate("second");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->agent_id, "agt_2");
}

// With the sweepers running: a revocation through A reaches B within one refresh interval
// (1 s here; the test allows for a loaded machine).
TEST_P(AgentHubClusterTest, TheSweeperRefreshesWithinTheRefreshInterval) {
  Enroll(*repo_a_, *a_, "agt_1", kCredential);
  a_->Start();
  b_->Start();
  const auto wait_for = [](const std::function<bool()>& condition) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!condition() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return condition();
  };
  ASSERT_TRUE(wait_for([this] { return b_->Authenticate(kCredential).has_value(); }));
  ASSERT_TRUE(Apply(*repo_a_, {db::RevokeAgentEffect{kStore, now_}}).ok());
  a_->OnRevoked(kStore, now_);
  const auto revoked = std::chrono::steady_clock::now();
  ASSERT_TRUE(wait_for([this] { return !b_->Authenticate(kCredential).has_value(); }));
  EXPECT_LT(std::chrono::steady_clock::now() - revoked, std::chrono::seconds(5));
  a_->Stop();
  b_->Stop();
}

// A refresh whose rows predate a local change does not undo it.
TEST_P(AgentHubClusterTest, SweepsOnBothReplicasKeepTheLocalRotation) {
  Enroll(*repo_a_, *a_, "agt_1", kCredential);
  ASSERT_TRUE(b_->Refresh().ok());
  ASSERT_TRUE(Apply(repo_b(), {db::RotateAgentCredentialEffect{kStore, "agt_1", Sha256Hex("rotated"), now_}}).ok());
  b_->OnRotated(kStore, Sha256Hex("rotated"), now_);
  ASSERT_TRUE(b_->Refresh().ok());
  ASSERT_TRUE(a_->Refresh().ok());
  EXPECT_TRUE(a_->Authenticate("rotated"));
  EXPECT_TRUE(b_->Authenticate("rotated"));
  EXPECT_FALSE(a_->Authenticate(kCredential));
}

TEST_P(AgentHubClusterTest, OperationQueuedOnOneReplicaWakesTheLongPollOnTheOther) {
  Enroll(*repo_a_, *a_, "agt_1", kCredential);
  ASSERT_TRUE(b_->Refresh().ok());
  auto wakeup = b_->Subscribe(kStore);
  auto op = Queue(*repo_a_, *a_, "op_1", 600'000);
  EXPECT_FALSE(wakeup->fired());
  b_->OnOperationQueuedElsewhere(kStore);  // the LISTEN feed
  EXPECT_TRUE(wakeup->fired());
  auto taken = b_->TakeDeliverable(identity_, "session-1");
  ASSERT_TRUE(taken.ok()) << taken.error().message;
  ASSERT_EQ(taken->size(), 1u);
  EXPECT_EQ(taken->at(0).id, "op_1");

  // A learns of the delivery from its refresh: no second delivery to the same session.
  ASSERT_TRUE(a_->Refresh().ok());
  auto on_a = a_->OpenOperation("op_1");
  ASSERT_TRUE(on_a);
  EXPECT_EQ(on_a->state, "delivered");
  auto again = a_->TakeDeliverable(identity_, "session-1");
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->empty());

  // Finished through B (the agent reported there): A drops it at its refresh.
  db::OperationRecord done = b_->OpenOperation("op_1").value();
  done.state = "succeeded";
  done.finished_at_ms = now_;
  done.version += 1;
  ASSERT_TRUE(Apply(repo_b(), {db::UpdateOperationEffect{done, done.version - 1}}).ok());
  b_->OnOperationFinished(done);
  ASSERT_TRUE(a_->Refresh().ok());
  EXPECT_FALSE(a_->OpenOperation("op_1"));
}

// A notification missed: the refresh still wakes the long-poll.
TEST_P(AgentHubClusterTest, RefreshPicksUpAnOperationWhoseNotificationWasMissed) {
  Enroll(*repo_a_, *a_, "agt_1", kCredential);
  auto wakeup = b_->Subscribe(kStore);
  Queue(*repo_a_, *a_, "op_1", 600'000);
  ASSERT_TRUE(b_->Refresh().ok());
  EXPECT_TRUE(wakeup->fired());
  EXPECT_TRUE(b_->OpenOperation("op_1"));
}

TEST_P(AgentHubClusterTest, OnlyTheLeaderExpiresOperations) {
  Enroll(*repo_a_, *a_, "agt_1", kCredential);
  Queue(*repo_a_, *a_, "op_1", 5'000);
  ASSERT_TRUE(b_->Refresh().ok());
  ASSERT_TRUE(b_->OpenOperation("op_1"));
  now_ += 6'000;
  b_->SweepOnce(true);
  EXPECT_EQ(repo_a_->GetOperation("op_1")->state, "queued");
  a_->SweepOnce(true);
  EXPECT_EQ(repo_a_->GetOperation("op_1")->state, "expired");
  EXPECT_FALSE(a_->OpenOperation("op_1"));
  b_->SweepOnce(false);
  EXPECT_FALSE(b_->OpenOperation("op_1"));
}

// The leader's health gate hears of heartbeats that reached another replica.
TEST_P(AgentHubClusterTest, TheLeadersObserverHearsHeartbeatsOfOtherReplicas) {
  std::vector<std::string> releases;
  a_->SetHeartbeatObserver([&](const std::string&, const std::optional<std::string>& release,
                               core::Health) { releases.push_back(release.value_or("-")); },
                           [](const std::string& store) { return store == kStore; });
  Enroll(*repo_a_, *a_, "agt_1", kCredential);
  ASSERT_TRUE(b_->Refresh().ok());
  now_ += 1000;
  Beat(*b_, "r2");
  b_->SweepOnce(false);
  ASSERT_TRUE(a_->Refresh().ok());
  ASSERT_EQ(releases.size(), 1u);
  EXPECT_EQ(releases[0], "r2");
  EXPECT_EQ(a_->View(kStore)->record.release, "r2");
  ASSERT_TRUE(a_->Refresh().ok());  // nothing new
  EXPECT_EQ(releases.size(), 1u);
}

INSTANTIATE_TEST_SUITE_P(Backends, AgentHubClusterTest, ::testing::Values(Backend::kSqlite, Backend::kPostgres),
                         db::testing::BackendName);

}  // namespace
}  // namespace storeplane::server
