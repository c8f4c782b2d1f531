// The rollout orchestrator against a real SQLite repository: each pass is recorded in one
// transaction with the runs it decides, a new orchestrator (a restart) continues from the
// stored progress without starting a store twice, commands from the inbox are applied,
// a closed deploy window and the provider's pacing hold deploys back without failing or
// skipping anything. The pipeline is played by the test: it moves the rollout's runs to
// their outcome directly, as callbacks and the health gate would. With replicas, only the
// leader steps rollouts.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <memory>
#include <set>

#include "../db/db_test_util.h"
#include "server/app.h"
#include "server/handler_support.h"
#include "server/leadership.h"
#include "server/policy_loader.h"
#include "server/provider_pacing.h"
#include "server/rollout_orchestrator.h"
#include "server/rollout_requests.h"

namespace storeplane::server {
namespace {

using db::testing::TempDir;

constexpr std::int64_t kStart = 1'800'000'000'000;

class RolloutOrchestratorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db::SqliteOptions options;
    options.path = (dir_.path() / "storeplane.db").string();
    auto repo = db::OpenSqliteRepository(options);
    ASSERT_TRUE(repo.ok()) << repo.error().message;
    repo_ = std::move(*repo);
    config_.cicd.routes.push_back(CicdRoute{{}, {}, "hook"});
    SetPolicy("");
  }

  void SetPolicy(const std::string& extra) {
    auto policy = ParsePolicyText(DefaultPolicyText() + extra, "test-policy");
    ASSERT_TRUE(policy.ok()) << policy.error().message;
    if (holder_) {
      holder_->Set(std::make_shared<const core::Policy>(std::move(*policy)));
    } else {
      holder_ = std::make_unique<PolicyHolder>(std::make_shared<const core::Policy>(std::move(*policy)));
    }
  }

  void AddStores(int n, const std::string& environment = "staging") {
    for (int i = 0; i < n; ++i) {
      char id[16];
      std::snprintf(id, sizeof id, "shop-%02d", i);
      auto store = db::testing::MakeStore(id, environment, core::IsolationMode::kShared, {}, core::StoreState::kActive);
      store.current_release = "r1";
      store.last_known_good_release = "r1";
      ASSERT_TRUE(db::testing::InsertStoreAudited(*repo_, store).ok());
    }
  }

  std::unique_ptr<RolloutOrchestrator> MakeOrchestrator(ProviderPacer* pacer = nullptr) {
    return std::make_unique<RolloutOrchestrator>(RolloutOrchestrator::Dependencies{
        *repo_, config_, *holder_,
        [this](const std::string& store) {
          auto it = agents_.find(store);
          return it != agents_.end() ? it->second
                                     : AgentObservation{core::Availability::kOnline, core::Health::kHealthy, "r1"};
        },
        pacer, [this] { ++recorded_; }, [this] { return now_; }});
  }

  std::string Create(const std::string& body) {
    auto spec = DecodeRolloutSpec(body, config_.environments);
    EXPECT_TRUE(spec.ok()) << spec.error().message;
    auto prepared = PrepareRollout(*spec, *repo_, "alice", "req-1", now_);
    EXPECT_TRUE(prepared.ok()) << prepared.error().message;
    db::WriteBatch batch;
    batch.effects.emplace_back(db::InsertRolloutEffect{prepared->record, prepared->targets});
    batch.audit.push_back(db::testing::TestAudit("rollout.create", "rollout/" + prepared->record.id));
    EXPECT_TRUE(repo_->Apply(batch).ok());
    return prepared->record.id;
  }

  std::vector<db::PipelineRunRecord> ActiveRuns(const std::string& rollout) {
    db::Repository::RunQuery query;
    query.rollout_id = rollout;
    query.active_only = true;
    query.limit = 1000;
    auto runs = repo_->ListRuns(query);
    EXPECT_TRUE(runs.ok());
    return runs.ok() ? *runs : std::vector<db::PipelineRunRecord>{};
  }
  std::vector<db::PipelineRunRecord> AllRuns(const std::string& rollout) {
    db::Repository::RunQuery query;
    query.rollout_id = rollout;
    query.limit = 1000;
    auto runs = repo_->ListRuns(query);
    EXPECT_TRUE(runs.ok());
    return runs.ok() ? *runs : std::vector<db::PipelineRunRecord>{};
  }

  // What callbacks and the health gate would do: the run ends in `state`.
  void Finish(const db::PipelineRunRecord& run, core::RunState state) {
    auto updated = run;
    updated.state = std::string(core::ToString(state));
    updated.active = false;
    updated.finished_at_ms = now_;
    updated.version = run.version + 1;
    db::WriteBatch batch;
    batch.effects.emplace_back(db::UpdateRunEffect{updated, run.version});
    batch.audit.push_back(SystemAuditEntry(now_, "run.transition", "store/" + run.store_id, "ok", {{"run", run.id}}));
    ASSERT_TRUE(repo_->Apply(batch).ok());
  }

  db::RolloutRecord Rollout(const std::string& id) {
    auto r = repo_->GetRollout(id);
    EXPECT_TRUE(r.ok());
    return r.ok() ? *r : db::RolloutRecord{};
  }
  std::map<std::string, std::string> TargetStates(const std::string& id) {
    std::map<std::string, std::string> out;
    auto targets = repo_->ListRolloutTargets(id, {});
    EXPECT_TRUE(targets.ok());
    if (targets.ok()) {
      for (const auto& t : *targets) out[t.store_id] = t.state;
    }
    return out;
  }
  void Command(const std::string& id, const std::string& kind, int wave = 0, bool rollback = false) {
    db::RolloutCommandRecord c;
    c.rollout_id = id;
    c.kind = kind;
    c.wave = wave;
    c.rollback = rollback;
    c.principal_id = "bob";
    c.created_at_ms = now_;
    db::WriteBatch batch;
    batch.effects.emplace_back(db::InsertRolloutCommandEffect{c});
    batch.audit.push_back(db::testing::TestAudit("rollout." + kind, "rollout/" + id));
    ASSERT_TRUE(repo_->Apply(batch).ok());
  }

  TempDir dir_;
  std::unique_ptr<db::Repository> repo_;
  Config config_;
  std::unique_ptr<PolicyHolder> holder_;
  std::map<std::string, AgentObservation> agents_;
  std::int64_t now_ = kStart;
  int recorded_ = 0;
};

TEST_F(RolloutOrchestratorTest, ACleanRolloutDeploysEveryStoreOnceWaveAfterWave) {
  AddStores(7);
  const auto id = Create(
      R"({"release": "r2", "selector": {"environment": "staging"}, "waves": {"canary_size": 1, "wave_size": 3},
          "max_concurrent": 10})");
  auto orchestrator = MakeOrchestrator();
  const std::vector<std::set<std::string>> waves = {
      {"shop-00"}, {"shop-01", "shop-02", "shop-03"}, {"shop-04", "shop-05", "shop-06"}};
  for (const auto& wave : waves) {
    orchestrator->PassOnce();
    auto runs = ActiveRuns(id);
    std::set<std::string> stores;
    for (const auto& run : runs) {
      stores.insert(run.store_id);
      EXPECT_EQ(run.kind, "deploy");
      EXPECT_EQ(run.release, "r2");
      EXPECT_EQ(run.rollout_id, id);
      EXPECT_EQ(run.requested_by, "alice");
    }
    EXPECT_EQ(stores, wave) << "the wave's stores, and only they, are deploying";
    // A pass without news starts nothing more.
    orchestrator->PassOnce();
    EXPECT_EQ(ActiveRuns(id).size(), wave.size());
    for (const auto& run : runs) Finish(run, core::RunState::kVerified);
  }
  orchestrator->PassOnce();
  const auto rollout = Rollout(id);
  EXPECT_EQ(rollout.state, "succeeded");
  EXPECT_TRUE(rollout.finished_at_ms.has_value());
  EXPECT_EQ(AllRuns(id).size(), 7u) << "one run per store";
  for (const auto& [store, state] : TargetStates(id)) EXPECT_EQ(state, "succeeded") << store;
  EXPECT_GT(recorded_, 0) << "the run coordinator was told of new runs";
}

TEST_F(RolloutOrchestratorTest, ARestartContinuesFromTheStoredProgressWithoutStartingAStoreTwice) {
  AddStores(4);
  const auto id = Create(
      R"({"release": "r2", "selector": {"environment": "staging"}, "waves": {"canary_size": 1, "wave_size": 3},
          "max_concurrent": 10})");
  MakeOrchestrator()->PassOnce();
  ASSERT_EQ(ActiveRuns(id).size(), 1u);
  // A new orchestrator (a restart, or another leader) reads the stored progress.
  auto second = MakeOrchestrator();
  second->PassOnce();
  second->PassOnce();
  auto runs = ActiveRuns(id);
  ASSERT_EQ(runs.size(), 1u) << "the canary is not started again";
  Finish(runs[0], core::RunState::kVerified);
  auto third = MakeOrchestrator();
  third->PassOnce();
  EXPECT_EQ(ActiveRuns(id).size(), 3u);
  for (const auto& run : ActiveRuns(id)) Finish(run, core::RunState::kVerified);
  third->PassOnce();
  EXPECT_EQ(Rollout(id).state, "succeeded");
  EXPECT_EQ(AllRuns(id).size(), 4u);
}

TEST_F(RolloutOrchestratorTest, AFailedCanaryHaltsTheRolloutAndRollsTheCanaryBack) {
  AddStores(5);
  const auto id = Create(
      R"({"release": "r2", "selector": {"environment": "staging"}, "waves": {"canary_size": 1, "growth_factor": 2},
          "max_concurrent": 5, "failure_budget": {"max_failures": 0}})");
  auto orchestrator = MakeOrchestrator();
  orchestrator->PassOnce();
  auto runs = ActiveRuns(id);
  ASSERT_EQ(runs.size(), 1u);
  Finish(runs[0], core::RunState::kFailed);
  orchestrator->PassOnce();
  auto rollbacks = ActiveRuns(id);
  ASSERT_EQ(rollbacks.size(), 1u);
  EXPECT_EQ(rollbacks[0].kind, "rollback");
  EXPECT_EQ(rollbacks[0].store_id, "shop-00");
  EXPECT_EQ(rollbacks[0].release, "r1");
  EXPECT_EQ(Rollout(id).state, "rolling_back");
  Finish(rollbacks[0], core::RunState::kVerified);
  orchestrator->PassOnce();
  EXPECT_EQ(Rollout(id).state, "failed");
  EXPECT_EQ(Rollout(id).ending, "failure_budget");
  auto states = TargetStates(id);
  EXPECT_EQ(states["shop-00"], "rolled_back");
  for (const char* later : {"shop-01", "shop-02", "shop-03", "shop-04"}) EXPECT_EQ(states[later], "not_started");
  EXPECT_EQ(AllRuns(id).size(), 2u) << "no deploy after the halt";
}

TEST_F(RolloutOrchestratorTest, OfflineAndUnhealthyStoresAreSkippedAndTheRolloutStillSucceeds) {
  AddStores(3);
  agents_["shop-01"] = AgentObservation{core::Availability::kOffline, core::Health::kUnknown, "r1"};
  agents_["shop-02"] = AgentObservation{core::Availability::kOnline, core::Health::kUnhealthy, "r1"};
  const auto id = Create(
      R"({"release": "r2", "selector": {"environment": "staging"}, "waves": {"canary_size": 1, "wave_size": 2}})");
  auto orchestrator = MakeOrchestrator();
  orchestrator->PassOnce();
  for (const auto& run : ActiveRuns(id)) Finish(run, core::RunState::kVerified);
  orchestrator->PassOnce();
  EXPECT_EQ(Rollout(id).state, "succeeded");
  auto targets = repo_->ListRolloutTargets(id, {});
  ASSERT_TRUE(targets.ok());
  std::map<std::string, std::string> reasons;
  for (const auto& t : *targets) reasons[t.store_id] = t.skip_reason;
  EXPECT_EQ(reasons["shop-01"], "agent_offline");
  EXPECT_EQ(reasons["shop-02"], "unhealthy");
  EXPECT_EQ(AllRuns(id).size(), 1u);
}

TEST_F(RolloutOrchestratorTest, PauseAndResumeFromTheInboxAndAnApprovalGate) {
  AddStores(5);
  const auto id = Create(
      R"({"release": "r2", "selector": {"environment": "staging"}, "waves": {"canary_size": 1, "wave_size": 2},
          "max_concurrent": 1, "between_waves": "approval"})");
  auto orchestrator = MakeOrchestrator();
  orchestrator->PassOnce();
  ASSERT_EQ(ActiveRuns(id).size(), 1u);
  Finish(ActiveRuns(id)[0], core::RunState::kVerified);
  orchestrator->PassOnce();
  EXPECT_EQ(Rollout(id).state, "awaiting_approval");
  EXPECT_TRUE(ActiveRuns(id).empty());
  Command(id, "approve_wave", 1);
  orchestrator->PassOnce();
  EXPECT_EQ(Rollout(id).state, "running");
  ASSERT_EQ(ActiveRuns(id).size(), 1u) << "max_concurrent 1";
  Command(id, "pause");
  orchestrator->PassOnce();
  EXPECT_EQ(Rollout(id).state, "paused");
  EXPECT_TRUE(repo_->ListRolloutCommands(id)->empty()) << "commands are consumed with the step";
  Finish(ActiveRuns(id)[0], core::RunState::kVerified);
  orchestrator->PassOnce();
  EXPECT_TRUE(ActiveRuns(id).empty()) << "paused: the next store waits";
  Command(id, "resume");
  orchestrator->PassOnce();
  EXPECT_EQ(ActiveRuns(id).size(), 1u);
  Command(id, "abort");
  orchestrator->PassOnce();
  Finish(ActiveRuns(id)[0], core::RunState::kVerified);
  orchestrator->PassOnce();
  EXPECT_EQ(Rollout(id).state, "aborted");
  EXPECT_EQ(AllRuns(id).size(), 3u);
}

TEST_F(RolloutOrchestratorTest, AClosedDeployWindowHoldsDeploysBackUntilItOpens) {
  AddStores(3);
  SetPolicy(R"(
windows:
  - kind: deny
    environments: [staging]
    schedule: "* * * * *"
    duration: 1m
    description: test freeze
)");
  now_ = SystemNowMs();
  const auto id = Create(R"({"release": "r2", "selector": {"environment": "staging"}})");
  auto orchestrator = MakeOrchestrator();
  orchestrator->PassOnce();
  EXPECT_TRUE(AllRuns(id).empty()) << "nothing starts while the window is closed";
  auto waiting = orchestrator->WaitingFor(id);
  ASSERT_TRUE(waiting.has_value());
  EXPECT_EQ(waiting->reason, "window_closed");
  for (const auto& [store, state] : TargetStates(id)) EXPECT_EQ(state, "waiting") << store << ": nothing skipped";
  SetPolicy("");
  orchestrator->PassOnce();
  EXPECT_EQ(ActiveRuns(id).size(), 1u);
  EXPECT_FALSE(orchestrator->WaitingFor(id).has_value());
}

TEST_F(RolloutOrchestratorTest, ProviderPacingStartsNoMoreRunsThanTokensAndFailsNothing) {
  AddStores(6);
  ProviderPacer pacer({{"hook", 2}});
  // The dispatcher's part: a due trigger goes out when its provider has a token.
  auto dispatch = [&] {
    auto due = repo_->ListDueOutbox(now_, 100);
    ASSERT_TRUE(due.ok());
    for (const auto& entry : *due) {
      if (!pacer.TryTake(entry.provider, now_)) continue;
      auto sent = entry;
      sent.sent_at_ms = now_;
      sent.version = entry.version + 1;
      db::WriteBatch batch;
      batch.effects.emplace_back(db::UpdateOutboxEffect{sent, entry.version});
      batch.audit.push_back(SystemAuditEntry(now_, "run.trigger", "store/x", "ok", {{"run", entry.run_id}}));
      ASSERT_TRUE(repo_->Apply(batch).ok());
    }
  };
  const auto id = Create(
      R"({"release": "r2", "selector": {"environment": "staging"}, "waves": {"canary_size": 1, "wave_size": 5},
          "max_concurrent": 10})");
  auto orchestrator = MakeOrchestrator(&pacer);
  orchestrator->PassOnce();
  ASSERT_EQ(ActiveRuns(id).size(), 1u);
  dispatch();  // one token left
  Finish(ActiveRuns(id)[0], core::RunState::kVerified);
  orchestrator->PassOnce();
  EXPECT_EQ(ActiveRuns(id).size(), 1u) << "one token: one run of the next wave";
  dispatch();  // none left
  orchestrator->PassOnce();
  EXPECT_EQ(ActiveRuns(id).size(), 1u) << "no token: nothing more starts";
  auto waiting = orchestrator->WaitingFor(id);
  ASSERT_TRUE(waiting.has_value());
  EXPECT_EQ(waiting->reason, "provider_pacing");
  now_ += 60'000;  // a minute refills the bucket
  orchestrator->PassOnce();
  EXPECT_EQ(ActiveRuns(id).size(), 3u);
  EXPECT_EQ(Rollout(id).state, "running");
  for (const auto& [store, state] : TargetStates(id)) EXPECT_NE(state, "skipped") << store;
}

// A lease granted on demand: token 1 (SQLite ignores fences) or none.
struct SwitchableLease {
  std::atomic<bool> granted{false};
  Leadership::Lease lease() {
    return {[this](std::string_view, std::int64_t) -> Result<std::optional<std::int64_t>> {
              return granted ? std::optional<std::int64_t>(1) : std::nullopt;
            },
            [](std::string_view) { return Status::Ok(); }};
  }
};

TEST_F(RolloutOrchestratorTest, OnlyTheLeaderStepsRollouts) {
  AddStores(3);
  const auto id = Create(
      R"({"release": "r2", "selector": {"environment": "staging"}, "waves": {"canary_size": 1, "wave_size": 2},
          "max_concurrent": 10})");
  SwitchableLease lease;
  std::int64_t clock = 0;
  Leadership leadership(lease.lease(), Leadership::Options{"replica-a", 10'000, 3'000, 2'000}, [&] { return clock; });
  leadership.RenewOnce();
  ASSERT_FALSE(leadership.is_leader());
  auto orchestrator = MakeOrchestrator();
  orchestrator->SetLeadership(&leadership);
  EXPECT_EQ(orchestrator->PassOnce(), 0);
  EXPECT_TRUE(AllRuns(id).empty()) << "a replica that does not lead starts nothing";
  EXPECT_EQ(Rollout(id).state, "pending");

  lease.granted = true;
  leadership.RenewOnce();
  ASSERT_TRUE(leadership.is_leader());
  EXPECT_GT(orchestrator->PassOnce(), 0);
  EXPECT_EQ(ActiveRuns(id).size(), 1u) << "the leader starts the canary";

  // The term ends (its local deadline passed): the next pass does nothing, even with news.
  clock += 20'000;
  ASSERT_FALSE(leadership.is_leader());
  for (const auto& run : ActiveRuns(id)) Finish(run, core::RunState::kVerified);
  EXPECT_EQ(orchestrator->PassOnce(), 0);
  EXPECT_TRUE(ActiveRuns(id).empty()) << "no wave after the term ended";

  // A new term reloads the progress from the database and carries on, starting no store twice.
  leadership.RenewOnce();
  ASSERT_TRUE(leadership.is_leader());
  EXPECT_GT(orchestrator->PassOnce(), 0);
  EXPECT_EQ(ActiveRuns(id).size(), 2u);
  EXPECT_EQ(AllRuns(id).size(), 3u);
  orchestrator->Stop();
}

}  // namespace
}  // namespace storeplane::server
