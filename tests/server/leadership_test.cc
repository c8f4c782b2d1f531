// Leadership (ADR 0012). On PostgreSQL, two replicas' repositories on one fresh database:
// the lease is gained, renewed and lost to another holder once it expired; two real
// Leadership objects never lead at once, and the other takes over within lease + renew when
// the leader stops or is cut off; a write fenced with the old leader's token is refused and
// leaves nothing behind. On SQLite the one process always leads, with token 1. And the run
// coordinator's leader work (the outbox's triggers) runs only while leading.
#include "server/leadership.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <thread>

#include "../db/db_test_util.h"
#include "server/handler_support.h"
#include "server/run_coordinator.h"
#include "server/run_requests.h"

namespace storeplane::server {
namespace {

using namespace std::chrono_literals;

std::int64_t SteadyMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// A lease granted on demand, with token 1 (SQLite ignores fences), or never.
struct SwitchableLease {
  std::atomic<bool> granted{false};
  Leadership::Lease lease() {
    return {[this](std::string_view, std::int64_t) -> Result<std::optional<std::int64_t>> {
              return granted ? std::optional<std::int64_t>(1) : std::nullopt;
            },
            [](std::string_view) { return Status::Ok(); }};
  }
};

// The transitions a Leadership reported to its listener.
struct Transitions {
  std::mutex mu;
  std::vector<bool> seen;
  void operator()(bool leader) {
    std::lock_guard lock(mu);
    seen.push_back(leader);
  }
  std::vector<bool> Get() {
    std::lock_guard lock(mu);
    return seen;
  }
};

db::WriteBatch StoreInsert(const std::string& id, std::optional<db::Fence> fence) {
  db::WriteBatch batch;
  batch.effects.push_back(db::InsertStoreEffect{db::testing::MakeStore(id)});
  batch.audit.push_back(db::testing::TestAudit("store.register", "store/" + id));
  batch.fence = std::move(fence);
  return batch;
}

// ---------------------------------------------------------------------------------------
// PostgreSQL: two replicas on one database.

class PostgresLeadershipTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!storeplane::testing::PostgresAvailable()) {
      if (storeplane::testing::PostgresRequired()) FAIL() << "no PostgreSQL and STOREPLANE_REQUIRE_POSTGRES is set";
      GTEST_SKIP() << "no PostgreSQL server binaries and no STOREPLANE_TEST_POSTGRES";
    }
    std::string error;
    options_.conninfo = storeplane::testing::FreshPostgresDatabase(&error);
    ASSERT_FALSE(options_.conninfo.empty()) << error;
    auto a = db::OpenPostgresRepository(options_);
    ASSERT_TRUE(a.ok()) << a.error().message;
    a_ = std::move(*a);
    auto b = db::OpenPostgresRepository(options_);
    ASSERT_TRUE(b.ok()) << b.error().message;
    b_ = std::move(*b);
  }

  std::size_t AuditCount() {
    db::AuditQuery query;
    query.limit = 1000;
    auto page = a_->ListAudit(query);
    EXPECT_TRUE(page.ok()) << page.error().message;
    return page.ok() ? page->items.size() : 0;
  }

  db::PostgresOptions options_;
  std::unique_ptr<db::Repository> a_;
  std::unique_ptr<db::Repository> b_;
};

TEST_F(PostgresLeadershipTest, GainsRenewsAndLosesToAnotherHolderOnceTheLeaseExpired) {
  std::atomic<std::int64_t> clock{1'000};
  Leadership lead(*a_, Leadership::Options{"replica-a", 400, 100'000, 100}, [&] { return clock.load(); });
  Transitions transitions;
  lead.AddListener(std::ref(transitions));

  lead.RenewOnce();
  auto fence = lead.fence();
  ASSERT_TRUE(fence.has_value()) << "a free lease is taken";
  EXPECT_EQ(fence->holder, "replica-a");
  EXPECT_EQ(lead.terms(), 1u);
  EXPECT_EQ(transitions.Get(), std::vector<bool>{true});

  // A renewal keeps the token and moves the local deadline (sent + lease - margin).
  clock = 1'200;
  lead.RenewOnce();
  clock = 1'450;  // past the first deadline (1'300), before the renewed one (1'500)
  ASSERT_TRUE(lead.fence().has_value());
  EXPECT_EQ(lead.fence()->token, fence->token);
  EXPECT_EQ(lead.terms(), 1u);
  EXPECT_EQ(transitions.Get(), std::vector<bool>{true});

  // Without renewal, the replica stops leading on its own clock, before the database's lease ends.
  clock = 1'500;
  EXPECT_FALSE(lead.fence().has_value());
  EXPECT_FALSE(b_->AcquireLeadership("replica-b", 60'000)->has_value()) << "the database's lease still runs";

  std::this_thread::sleep_for(600ms);  // the database's lease (400 ms) expires
  auto taken = b_->AcquireLeadership("replica-b", 60'000);
  ASSERT_TRUE(taken.ok()) << taken.error().message;
  ASSERT_TRUE(taken->has_value()) << "an expired lease is taken over";
  EXPECT_GT(**taken, fence->token) << "the token grows with the change of holder";

  lead.RenewOnce();
  EXPECT_FALSE(lead.is_leader());
  EXPECT_EQ(transitions.Get(), (std::vector<bool>{true, false}));

  // The old leader's fenced write is refused as a whole; the new leader's commits.
  auto refused = a_->Apply(StoreInsert("shop-stale", fence));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kPreconditionFailed);
  EXPECT_TRUE(IsFenceRefusal(refused.error())) << refused.error().message;
  EXPECT_EQ(a_->GetStore("shop-stale").error().code, ErrorCode::kNotFound);
  EXPECT_EQ(AuditCount(), 0u) << "nothing of the refused batch was written";

  auto applied = b_->Apply(StoreInsert("shop-new", db::Fence{"replica-b", **taken}));
  ASSERT_TRUE(applied.ok()) << applied.error().message;
  EXPECT_TRUE(a_->GetStore("shop-new").ok());
  EXPECT_EQ(AuditCount(), 1u);
}

// Samples both replicas every few milliseconds until `until` returns true or `limit` passes;
// returns the number of samples at which both led (must be 0) and when `until` became true.
struct Sampling {
  int both = 0;
  int a = 0;
  int b = 0;
  int samples = 0;
  std::optional<std::int64_t> done_at_ms;
};
Sampling Sample(const Leadership& a, const Leadership& b, std::chrono::milliseconds limit,
                const std::function<bool()>& until = {}) {
  Sampling s;
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    const bool la = a.is_leader();
    const bool lb = b.is_leader();
    ++s.samples;
    s.both += la && lb ? 1 : 0;
    s.a += la ? 1 : 0;
    s.b += lb ? 1 : 0;
    if (until && until()) {
      s.done_at_ms = SteadyMs();
      break;
    }
    std::this_thread::sleep_for(2ms);
  }
  return s;
}

const Leadership::Options kShort{"", 600, 150, 200};

Leadership::Options Named(std::string name) {
  auto options = kShort;
  options.holder = std::move(name);
  return options;
}

TEST_F(PostgresLeadershipTest, TwoReplicasNeverLeadAtOnceAndTheOtherTakesOverWhenTheLeaderStops) {
  Leadership a(*a_, Named("replica-a"), SteadyMs);
  Leadership b(*b_, Named("replica-b"), SteadyMs);
  a.Start();
  b.Start();
  auto s = Sample(a, b, 3s);
  EXPECT_EQ(s.both, 0) << "both led at " << s.both << " of " << s.samples << " samples";
  EXPECT_GT(s.a, s.samples * 9 / 10) << "the first replica keeps its lease by renewing it";
  EXPECT_EQ(s.b, 0);

  const auto old_fence = a.fence();
  ASSERT_TRUE(old_fence.has_value());
  const auto stopped_at = SteadyMs();
  a.Stop();  // gives the lease up
  auto handover = Sample(a, b, 3s, [&] { return b.is_leader(); });
  ASSERT_TRUE(handover.done_at_ms.has_value()) << "the other replica never took over";
  EXPECT_LE(*handover.done_at_ms - stopped_at, kShort.lease_ms + kShort.renew_ms);
  EXPECT_EQ(handover.both, 0);
  EXPECT_EQ(b.terms(), 1u);

  auto refused = a_->Apply(StoreInsert("shop-stale", old_fence));
  ASSERT_FALSE(refused.ok());
  EXPECT_TRUE(IsFenceRefusal(refused.error())) << refused.error().message;
  EXPECT_EQ(b_->GetStore("shop-stale").error().code, ErrorCode::kNotFound);
  EXPECT_TRUE(b_->Apply(StoreInsert("shop-new", b.fence())).ok());
  b.Stop();
}

TEST_F(PostgresLeadershipTest, ALeaderCutOffFromTheDatabaseStopsLeadingBeforeTheOtherStarts) {
  // Replica a's renewals stop reaching the database (a partition, a stalled process): it
  // keeps its term until its local deadline, and replica b may lead only after the database's
  // lease expired, which is later. Sampled all along: never both.
  std::atomic<bool> cut_off{false};
  db::Repository& repo_a = *a_;
  Leadership::Lease lease{[&](std::string_view holder, std::int64_t lease_ms) -> Result<std::optional<std::int64_t>> {
                            if (cut_off) return Error{ErrorCode::kUnavailable, "cut off", {}};
                            return repo_a.AcquireLeadership(holder, lease_ms);
                          },
                          [&](std::string_view holder) {
                            if (cut_off) return Status(Error{ErrorCode::kUnavailable, "cut off", {}});
                            return repo_a.ReleaseLeadership(holder);
                          }};
  Leadership a(std::move(lease), Named("replica-a"), SteadyMs);
  Leadership b(*b_, Named("replica-b"), SteadyMs);
  Transitions seen_by_a;
  a.AddListener(std::ref(seen_by_a));
  a.Start();
  b.Start();
  auto s = Sample(a, b, 1s);
  EXPECT_EQ(s.both, 0);
  const auto old_fence = a.fence();
  ASSERT_TRUE(old_fence.has_value());

  const auto cut_at = SteadyMs();
  cut_off = true;
  auto handover = Sample(a, b, 3s, [&] { return b.is_leader(); });
  ASSERT_TRUE(handover.done_at_ms.has_value()) << "the other replica never took over";
  EXPECT_EQ(handover.both, 0) << "both led at " << handover.both << " of " << handover.samples << " samples";
  EXPECT_LE(*handover.done_at_ms - cut_at, kShort.lease_ms + kShort.renew_ms);
  EXPECT_FALSE(a.is_leader());

  // Back in touch: a learns it lost, and its stale write is refused.
  cut_off = false;
  a.RenewOnce();
  EXPECT_FALSE(a.is_leader());
  EXPECT_EQ(seen_by_a.Get(), (std::vector<bool>{true, false}));
  auto refused = a_->Apply(StoreInsert("shop-stale", old_fence));
  ASSERT_FALSE(refused.ok());
  EXPECT_TRUE(IsFenceRefusal(refused.error()));
  a.Stop();
  b.Stop();
}

// ---------------------------------------------------------------------------------------
// SQLite: one process, always the leader.

TEST(SqliteLeadershipTest, TheOneProcessAlwaysLeadsWithTokenOne) {
  db::testing::TempDir dir;
  db::SqliteOptions options;
  options.path = (dir.path() / "db.sqlite").string();
  auto repo = db::OpenSqliteRepository(options);
  ASSERT_TRUE(repo.ok()) << repo.error().message;
  Leadership lead(**repo, Leadership::Options{"only", 10'000, 3'000, 2'000}, SteadyMs);
  Transitions transitions;
  lead.AddListener(std::ref(transitions));
  lead.Start();
  auto fence = lead.fence();
  ASSERT_TRUE(fence.has_value()) << "leads from its first moment";
  EXPECT_EQ(fence->token, 1);
  EXPECT_EQ(fence->holder, "only");
  EXPECT_TRUE((*repo)->Apply(StoreInsert("shop-a", fence)).ok()) << "the fence is a no-op on SQLite";
  lead.Stop();
  EXPECT_FALSE(lead.is_leader());
  EXPECT_EQ(transitions.Get(), (std::vector<bool>{true, false}));
}

TEST(LeadershipListenerTest, ARemovedListenerIsNeverCalledAgain) {
  SwitchableLease lease;
  lease.granted = true;
  Leadership lead(lease.lease(), Leadership::Options{"only", 10'000, 3'000, 2'000}, SteadyMs);
  int calls = 0;
  const int id = lead.AddListener([&](bool) { ++calls; });
  lead.RenewOnce();
  EXPECT_EQ(calls, 1);
  lead.RemoveListener(id);
  lead.LostLeadership();
  EXPECT_EQ(calls, 1);
  EXPECT_FALSE(lead.is_leader());
}

// ---------------------------------------------------------------------------------------
// The run coordinator's leader work, on SQLite, with a lease granted on demand.

class CountingProvider : public cicd::Provider {
 public:
  explicit CountingProvider(std::atomic<int>& triggers) : triggers_(triggers) {}
  const std::string& name() const override { return name_; }
  std::string_view type() const override { return "webhook"; }
  Result<cicd::TriggerResult> Trigger(const cicd::TriggerRequest& request) override {
    ++triggers_;
    return cicd::TriggerResult{"ext-" + request.correlation_id, ""};
  }
  Result<cicd::RunStatus> Find(const std::string&, const std::string&) override { return cicd::RunStatus{}; }

 private:
  std::string name_ = "hook";
  std::atomic<int>& triggers_;
};

class CoordinatorLeadershipTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db::SqliteOptions options;
    options.path = (dir_.path() / "db.sqlite").string();
    auto repo = db::OpenSqliteRepository(options);
    ASSERT_TRUE(repo.ok()) << repo.error().message;
    repo_ = std::move(*repo);
    config_.routes.push_back(CicdRoute{{}, {}, "hook"});
    leadership_ = std::make_unique<Leadership>(lease_.lease(), Leadership::Options{"replica-a", 10'000, 3'000, 2'000},
                                               [this] { return clock_.load(); });
    std::map<std::string, RunCoordinator::ProviderSlot> providers;
    providers.emplace("hook", RunCoordinator::ProviderSlot{std::make_unique<CountingProvider>(triggers_), {}});
    coordinator_ = std::make_unique<RunCoordinator>(*repo_, config_, "http://127.0.0.1:1", std::move(providers),
                                                    [] { return SteadyMs(); });
    coordinator_->SetLeadership(leadership_.get());
  }

  void TearDown() override {
    if (coordinator_) coordinator_->Stop();  // before the Leadership it listens to goes
  }

  // A deploy of `store` (registered here), queued as a request would queue it.
  std::string QueueDeploy(const std::string& store_id) {
    auto store =
        db::testing::MakeStore(store_id, "staging", core::IsolationMode::kShared, {}, core::StoreState::kActive);
    store.current_release = "r1";
    store.last_known_good_release = "r1";
    auto inserted = db::testing::InsertStoreAudited(*repo_, store);
    EXPECT_TRUE(inserted.ok()) << inserted.error().message;
    RunRequest request;
    request.kind = core::RunKind::kDeploy;
    request.release = "r2";
    RunPlanInput input;
    input.request = &request;
    input.store = &*inserted;
    input.requested_by = "alice";
    input.now_ms = SteadyMs();
    auto plan = PlanRun(input, config_, *repo_);
    EXPECT_TRUE(plan.ok()) << plan.error().message;
    db::WriteBatch batch;
    batch.effects = std::move(plan->effects);
    batch.audit.push_back(db::testing::TestAudit("deploy.request", "store/" + store_id));
    EXPECT_TRUE(repo_->Apply(batch).ok());
    return plan->run.id;
  }

  std::string RunState(const std::string& id) {
    auto run = repo_->GetRun(id);
    EXPECT_TRUE(run.ok());
    return run.ok() ? run->state : "";
  }

  db::testing::TempDir dir_;
  std::unique_ptr<db::Repository> repo_;
  CicdConfig config_;
  SwitchableLease lease_;
  std::atomic<std::int64_t> clock_{0};
  std::unique_ptr<Leadership> leadership_;
  std::atomic<int> triggers_{0};
  std::unique_ptr<RunCoordinator> coordinator_;
};

TEST_F(CoordinatorLeadershipTest, ANonLeaderSendsNoTriggerAndTheLeaderDoes) {
  const auto run = QueueDeploy("shop-a");
  leadership_->RenewOnce();
  ASSERT_FALSE(leadership_->is_leader());
  coordinator_->DispatchOnce();
  coordinator_->PollOnce();
  EXPECT_EQ(triggers_, 0) << "a replica that does not lead sends nothing";
  EXPECT_EQ(RunState(run), "pending");
  auto due = repo_->ListDueOutbox(SteadyMs(), 10);
  ASSERT_TRUE(due.ok());
  ASSERT_EQ(due->size(), 1u);
  EXPECT_EQ(due->front().attempts, 0) << "not even an attempt is recorded";

  lease_.granted = true;
  leadership_->RenewOnce();
  ASSERT_TRUE(leadership_->is_leader());
  coordinator_->DispatchOnce();
  EXPECT_EQ(triggers_, 1);
  EXPECT_EQ(RunState(run), "triggered");

  // The term ends (a fenced write was refused elsewhere): a newly queued run waits.
  leadership_->LostLeadership();
  const auto second = QueueDeploy("shop-b");
  coordinator_->DispatchOnce();
  EXPECT_EQ(triggers_, 1);
  EXPECT_EQ(RunState(second), "pending");
}

TEST_F(CoordinatorLeadershipTest, TheWorkerStartsLeaderWorkAsSoonAsLeadershipIsGained) {
  const auto run = QueueDeploy("shop-a");
  leadership_->RenewOnce();
  coordinator_->Start();
  std::this_thread::sleep_for(1'500ms);  // more than one pass
  EXPECT_EQ(triggers_, 0);
  EXPECT_EQ(RunState(run), "pending");

  lease_.granted = true;
  leadership_->RenewOnce();  // the listener wakes the worker
  const auto end = std::chrono::steady_clock::now() + 5s;
  while (triggers_ == 0 && std::chrono::steady_clock::now() < end) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(triggers_, 1);
  coordinator_->Stop();
  EXPECT_EQ(RunState(run), "triggered");
}

// ---------------------------------------------------------------------------------------
// The run coordinator on PostgreSQL: a stale leader (its process paused past its local
// deadline, so it still believes it leads) is stopped by the fence. Needs the runs and
// outbox on PostgreSQL; skipped while they are not implemented there.

TEST_F(PostgresLeadershipTest, AStaleLeadersCoordinatorSendsNoTriggerAndItsRefusedWriteEndsItsTerm) {
  auto store = db::testing::MakeStore("shop-a", "staging", core::IsolationMode::kShared, {}, core::StoreState::kActive);
  store.current_release = "r1";
  store.last_known_good_release = "r1";
  auto inserted = db::testing::InsertStoreAudited(*a_, store);
  ASSERT_TRUE(inserted.ok()) << inserted.error().message;
  CicdConfig config;
  config.routes.push_back(CicdRoute{{}, {}, "hook"});
  RunRequest request;
  request.kind = core::RunKind::kDeploy;
  request.release = "r2";
  RunPlanInput input;
  input.request = &request;
  input.store = &*inserted;
  input.requested_by = "alice";
  input.now_ms = SteadyMs();
  auto plan = PlanRun(input, config, *a_);
  if (!plan.ok() && plan.error().message.find("not implemented") != std::string::npos) {
    GTEST_SKIP() << "runs are not implemented on PostgreSQL yet: " << plan.error().message;
  }
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  db::WriteBatch queue;
  queue.effects = std::move(plan->effects);
  queue.audit.push_back(db::testing::TestAudit("deploy.request", "store/shop-a"));
  auto queued = a_->Apply(queue);
  if (!queued.ok() && queued.error().message.find("not implemented") != std::string::npos) {
    GTEST_SKIP() << "runs are not implemented on PostgreSQL yet: " << queued.error().message;
  }
  ASSERT_TRUE(queued.ok()) << queued.error().message;
  const std::string run_id = plan->run.id;

  // Replica a leads, then pauses past its lease: b takes over, but a's clock stood still.
  std::atomic<std::int64_t> clock_a{0};
  Leadership a(*a_, Leadership::Options{"replica-a", 400, 100'000, 100}, [&] { return clock_a.load(); });
  a.RenewOnce();
  ASSERT_TRUE(a.is_leader());
  std::this_thread::sleep_for(600ms);
  Leadership b(*b_, Leadership::Options{"replica-b", 60'000, 100'000, 2'000}, SteadyMs);
  b.RenewOnce();
  ASSERT_TRUE(b.is_leader());
  ASSERT_TRUE(a.is_leader()) << "a believes it still leads (the pause)";

  auto coordinator = [&](db::Repository& repo, Leadership& leadership, std::atomic<int>& triggers) {
    std::map<std::string, RunCoordinator::ProviderSlot> providers;
    providers.emplace("hook", RunCoordinator::ProviderSlot{std::make_unique<CountingProvider>(triggers), {}});
    auto made = std::make_unique<RunCoordinator>(repo, config, "http://127.0.0.1:1", std::move(providers), SteadyMs);
    made->SetLeadership(&leadership);
    return made;
  };
  std::atomic<int> triggers_a{0};
  std::atomic<int> triggers_b{0};
  auto stale = coordinator(*a_, a, triggers_a);
  stale->DispatchOnce();
  EXPECT_EQ(triggers_a, 0) << "the stale leader sent a trigger";
  EXPECT_FALSE(a.is_leader()) << "the refused write ended the term";
  auto outbox = b_->GetOutbox(run_id);
  ASSERT_TRUE(outbox.ok()) << outbox.error().message;
  ASSERT_TRUE(outbox->has_value());
  EXPECT_EQ((*outbox)->attempts, 0) << "the stale leader's attempt was not recorded";
  EXPECT_EQ(b_->GetRun(run_id)->state, "pending");

  auto current = coordinator(*b_, b, triggers_b);
  current->DispatchOnce();
  EXPECT_EQ(triggers_b, 1);
  EXPECT_EQ(b_->GetRun(run_id)->state, "triggered");
  stale->Stop();
  current->Stop();
}

}  // namespace
}  // namespace storeplane::server
