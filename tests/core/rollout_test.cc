// Fleet rollouts (src/core/rollout.h): spec validation naming fields, store selection, wave
// planning (10,000 stores included), command checks, and scenarios played by a small
// simulator standing in for the orchestrator: it observes, steps, records the decisions
// (AttachRun) and feeds run outcomes back, checking concurrency, pacing and "one deploy per
// store" after every step.
#include "core/rollout.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace storeplane::core {
namespace {

using C = RolloutCommandKind;
using D = DecisionKind;
using RS = RolloutState;
using TS = TargetState;

RolloutSpec BaseSpec() {
  RolloutSpec spec;
  spec.release = "2026.12.1";
  spec.selector.environment = "production";
  spec.waves.canary_size = 1;
  spec.waves.growth_factor = 2.0;
  spec.max_concurrent = 2;
  spec.failure_budget.max_failures = 0;
  return spec;
}

std::string Id(int i) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "s%05d", i);
  return buf;
}

std::vector<std::string> Ids(int n) {
  std::vector<std::string> ids;
  for (int i = 0; i < n; ++i) ids.push_back(Id(i));
  return ids;
}

std::vector<std::size_t> WaveSizes(const RolloutPlan& plan) {
  std::vector<std::size_t> sizes;
  for (const auto& wave : plan.waves) sizes.push_back(wave.size());
  return sizes;
}

// The decisions of `kind`, in order.
std::vector<RolloutDecision> Only(const std::vector<RolloutDecision>& decisions, DecisionKind kind) {
  std::vector<RolloutDecision> out;
  for (const RolloutDecision& d : decisions) {
    if (d.kind == kind) out.push_back(d);
  }
  return out;
}

// ---- Spec ---------------------------------------------------------------------------------

TEST(RolloutSpecTest, ValidSpecsPass) {
  const EnvironmentSet envs;
  EXPECT_TRUE(ValidateRolloutSpec(BaseSpec(), envs).ok());
  RolloutSpec fixed = BaseSpec();
  fixed.waves.growth_factor.reset();
  fixed.waves.wave_size = 10;
  fixed.failure_budget = FailureBudget{std::nullopt, 5};
  fixed.between_waves = BetweenWaves::kPause;
  fixed.pause_ms = 60'000;
  fixed.selector.isolation_mode = IsolationMode::kDedicated;
  fixed.selector.labels = "tier in (gold,silver),!legacy";
  EXPECT_TRUE(ValidateRolloutSpec(fixed, envs).ok());
}

TEST(RolloutSpecTest, EachBrokenRuleNamesItsField) {
  struct Case {
    std::string name;
    std::function<void(RolloutSpec&)> change;
    std::string field;
  };
  const std::vector<Case> cases = {
      {"empty release", [](RolloutSpec& s) { s.release = ""; }, "release"},
      {"release with a space", [](RolloutSpec& s) { s.release = "a b"; }, "release"},
      {"no environment", [](RolloutSpec& s) { s.selector.environment = ""; }, "selector.environment"},
      {"unknown environment", [](RolloutSpec& s) { s.selector.environment = "qa"; }, "selector.environment"},
      {"bad labels", [](RolloutSpec& s) { s.selector.labels = "a in (b"; }, "selector.labels"},
      {"canary 0", [](RolloutSpec& s) { s.waves.canary_size = 0; }, "waves.canary_size"},
      {"neither growth", [](RolloutSpec& s) { s.waves.growth_factor.reset(); }, "waves.growth_factor"},
      {"both growths", [](RolloutSpec& s) { s.waves.wave_size = 3; }, "waves.growth_factor"},
      {"factor 1", [](RolloutSpec& s) { s.waves.growth_factor = 1.0; }, "waves.growth_factor"},
      {"factor NaN", [](RolloutSpec& s) { s.waves.growth_factor = std::nan(""); }, "waves.growth_factor"},
      {"factor 101", [](RolloutSpec& s) { s.waves.growth_factor = 101.0; }, "waves.growth_factor"},
      {"wave size 0",
       [](RolloutSpec& s) {
         s.waves.growth_factor.reset();
         s.waves.wave_size = 0;
       },
       "waves.wave_size"},
      {"max_concurrent 0", [](RolloutSpec& s) { s.max_concurrent = 0; }, "max_concurrent"},
      {"max_concurrent too big", [](RolloutSpec& s) { s.max_concurrent = kMaxConcurrentRuns + 1; }, "max_concurrent"},
      {"no budget", [](RolloutSpec& s) { s.failure_budget.max_failures.reset(); }, "failure_budget"},
      {"both budgets", [](RolloutSpec& s) { s.failure_budget.max_failure_percent = 5; }, "failure_budget"},
      {"negative count", [](RolloutSpec& s) { s.failure_budget.max_failures = -1; }, "failure_budget.max_failures"},
      {"percent 101",
       [](RolloutSpec& s) {
         s.failure_budget = FailureBudget{std::nullopt, 101};
       },
       "failure_budget.max_failure_percent"},
      {"pause without time", [](RolloutSpec& s) { s.between_waves = BetweenWaves::kPause; }, "pause_ms"},
      {"pause too long",
       [](RolloutSpec& s) {
         s.between_waves = BetweenWaves::kPause;
         s.pause_ms = kMaxPauseMs + 1;
       },
       "pause_ms"},
      {"pause time without pause", [](RolloutSpec& s) { s.pause_ms = 5; }, "pause_ms"},
  };
  for (const Case& c : cases) {
    RolloutSpec spec = BaseSpec();
    c.change(spec);
    Status s = ValidateRolloutSpec(spec, EnvironmentSet{});
    ASSERT_FALSE(s.ok()) << c.name;
    EXPECT_EQ(s.error().code, ErrorCode::kInvalidArgument) << c.name;
    EXPECT_EQ(s.error().field, c.field) << c.name << ": " << s.error().message;
  }
}

TEST(RolloutSpecTest, SelectionByEnvironmentIsolationAndLabels) {
  auto store = [](std::string id, std::string env, IsolationMode mode, Labels labels, StoreState state) {
    Store s;
    s.id = std::move(id);
    s.environment = std::move(env);
    s.isolation_mode = mode;
    s.labels = std::move(labels);
    s.state = state;
    return s;
  };
  const std::vector<Store> stores = {
      store("a", "production", IsolationMode::kShared, {{"tier", "gold"}}, StoreState::kActive),
      store("b", "production", IsolationMode::kDedicated, {{"tier", "gold"}}, StoreState::kActive),
      store("c", "staging", IsolationMode::kShared, {{"tier", "gold"}}, StoreState::kActive),
      store("d", "production", IsolationMode::kShared, {{"tier", "bronze"}}, StoreState::kActive),
      store("e", "production", IsolationMode::kShared, {{"tier", "gold"}}, StoreState::kDecommissioned),
      store("f", "production", IsolationMode::kShared, {{"tier", "gold"}}, StoreState::kProvisioning),
  };
  RolloutSelector selector{"production", std::nullopt, "tier=gold"};
  EXPECT_EQ(*SelectRolloutStores(selector, stores), (std::vector<std::string>{"a", "b", "f"}));
  selector.isolation_mode = IsolationMode::kShared;
  EXPECT_EQ(*SelectRolloutStores(selector, stores), (std::vector<std::string>{"a", "f"}));
  selector.labels = "";
  EXPECT_EQ(*SelectRolloutStores(selector, stores), (std::vector<std::string>{"a", "d", "f"}));
  selector.labels = "tier in (";
  Result<std::vector<std::string>> bad = SelectRolloutStores(selector, stores);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().field, "selector.labels");
}

TEST(RolloutSpecTest, AllowedFailuresByCountAndPercentRoundingDown) {
  EXPECT_EQ(AllowedFailures(FailureBudget{0, std::nullopt}, 100), 0);
  EXPECT_EQ(AllowedFailures(FailureBudget{3, std::nullopt}, 2), 3);
  EXPECT_EQ(AllowedFailures(FailureBudget{std::nullopt, 10}, 25), 2);
  EXPECT_EQ(AllowedFailures(FailureBudget{std::nullopt, 10}, 9), 0);
  EXPECT_EQ(AllowedFailures(FailureBudget{std::nullopt, 100}, 7), 7);
  EXPECT_EQ(AllowedFailures(FailureBudget{std::nullopt, 0}, 10'000), 0);
}

TEST(RolloutSpecTest, NamesRoundTrip) {
  for (RolloutState s : AllRolloutStates()) EXPECT_EQ(ParseRolloutState(ToString(s)), s);
  for (TargetState s : AllTargetStates()) EXPECT_EQ(ParseTargetState(ToString(s)), s);
  for (SkipReason r : AllSkipReasons()) EXPECT_EQ(ParseSkipReason(ToString(r)), r);
  for (BetweenWaves b : {BetweenWaves::kNone, BetweenWaves::kPause, BetweenWaves::kApproval}) {
    EXPECT_EQ(ParseBetweenWaves(ToString(b)), b);
  }
  EXPECT_EQ(AllRolloutStates().size(), 11u);
  EXPECT_EQ(AllTargetStates().size(), 11u);
  EXPECT_EQ(AllSkipReasons().size(), 6u);
  EXPECT_EQ(ToString(RS::kWaitingBetweenWaves), "waiting_between_waves");
  EXPECT_EQ(ToString(SkipReason::kAlreadyAtRelease), "already_at_release");
  EXPECT_FALSE(ParseRolloutState("done"));
}

// ---- Plan ---------------------------------------------------------------------------------

TEST(RolloutPlanTest, CanaryThenGrowingWavesCappedByWhatIsLeft) {
  WavePlanSpec waves{1, 2.0, std::nullopt};
  EXPECT_EQ(WaveSizes(*PlanWaves(Ids(20), waves)), (std::vector<std::size_t>{1, 2, 4, 8, 5}));
  waves = WavePlanSpec{2, 1.5, std::nullopt};  // 2, 3, 4.5 -> 5, 7.5 -> 8, rest
  EXPECT_EQ(WaveSizes(*PlanWaves(Ids(20), waves)), (std::vector<std::size_t>{2, 3, 5, 8, 2}));
  waves = WavePlanSpec{1, 1.01, std::nullopt};  // always at least one more
  EXPECT_EQ(WaveSizes(*PlanWaves(Ids(6), waves)), (std::vector<std::size_t>{1, 2, 3}));
  waves = WavePlanSpec{50, 2.0, std::nullopt};  // a canary bigger than the fleet
  EXPECT_EQ(WaveSizes(*PlanWaves(Ids(7), waves)), (std::vector<std::size_t>{7}));
  waves = WavePlanSpec{1, 100.0, std::nullopt};
  EXPECT_EQ(WaveSizes(*PlanWaves(Ids(1000), waves)), (std::vector<std::size_t>{1, 100, 899}));
}

TEST(RolloutPlanTest, CanaryThenFixedSizeWaves) {
  WavePlanSpec waves{3, std::nullopt, 5};
  EXPECT_EQ(WaveSizes(*PlanWaves(Ids(14), waves)), (std::vector<std::size_t>{3, 5, 5, 1}));
  waves = WavePlanSpec{1, std::nullopt, 1};
  EXPECT_EQ(WaveSizes(*PlanWaves(Ids(3), waves)), (std::vector<std::size_t>{1, 1, 1}));
}

TEST(RolloutPlanTest, SortedAndDeterministicWhateverTheInputOrder) {
  const WavePlanSpec waves{1, 2.0, std::nullopt};
  RolloutPlan plan = *PlanWaves({"c", "a", "d", "b"}, waves);
  EXPECT_EQ(plan.waves, (std::vector<std::vector<std::string>>{{"a"}, {"b", "c"}, {"d"}}));
  EXPECT_EQ(PlanWaves({"d", "b", "c", "a"}, waves)->waves, plan.waves);
}

TEST(RolloutPlanTest, RefusesNoStoresAndDuplicates) {
  const WavePlanSpec waves{1, 2.0, std::nullopt};
  Result<RolloutPlan> empty = PlanWaves({}, waves);
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.error().field, "stores");
  Result<RolloutPlan> twice = PlanWaves({"a", "b", "a"}, waves);
  ASSERT_FALSE(twice.ok());
  EXPECT_NE(twice.error().message.find("'a'"), std::string::npos);
}

TEST(RolloutPlanTest, TenThousandStoresEachExactlyOnce) {
  std::vector<std::string> ids = Ids(10'000);
  std::reverse(ids.begin(), ids.end());
  const auto started = std::chrono::steady_clock::now();
  Result<RolloutPlan> plan = PlanWaves(ids, WavePlanSpec{10, 2.0, std::nullopt});
  const auto took = std::chrono::steady_clock::now() - started;
  ASSERT_TRUE(plan.ok());
  std::cout << "[ rollout ] planned 10,000 stores in "
            << std::chrono::duration_cast<std::chrono::microseconds>(took).count() << " us\n";
  EXPECT_EQ(WaveSizes(*plan), (std::vector<std::size_t>{10, 20, 40, 80, 160, 320, 640, 1280, 2560, 4890}));
  EXPECT_EQ(plan->StoreCount(), 10'000u);
  std::set<std::string> seen;
  std::string previous;
  for (const auto& wave : plan->waves) {
    for (const std::string& id : wave) {
      EXPECT_LT(previous, id);  // plan order is sorted order
      previous = id;
      seen.insert(id);
    }
  }
  EXPECT_EQ(seen.size(), 10'000u);
  Result<RolloutPlan> fixed = PlanWaves(ids, WavePlanSpec{1, std::nullopt, 999});
  ASSERT_TRUE(fixed.ok());
  EXPECT_EQ(fixed->waves.size(), 12u);  // 1 + 10 x 999 + 9
  EXPECT_EQ(fixed->waves.back().size(), 9u);
  EXPECT_EQ(fixed->StoreCount(), 10'000u);
}

// ---- The simulator ------------------------------------------------------------------------

// Plays the orchestrator: holds the stores' observations and the runs, calls Step with what
// StoresToObserve names, records start decisions with AttachRun (the transaction), and lets
// runs finish as `outcome` says, unless held.
class Simulator {
 public:
  Simulator(RolloutSpec spec, int stores) : spec_(std::move(spec)) {
    EXPECT_TRUE(ValidateRolloutSpec(spec_, EnvironmentSet{}).ok());
    plan_ = *PlanWaves(Ids(stores), spec_.waves);
    progress_ = NewRolloutProgress(plan_);
    for (std::size_t i = 0; i < progress_.targets.size(); ++i) index_[progress_.targets[i].store_id] = i;
    for (const std::string& id : Ids(stores)) {
      StoreObservation& store = stores_[id];
      store.state = StoreState::kActive;
      store.availability = Availability::kOnline;
      store.health = Health::kHealthy;
      store.current_release = "2026.11.1";
      store.last_known_good_release = "2026.11.1";
    }
  }

  // The final state a run ends in when it is let go.
  std::function<RunState(const std::string& store, RunKind kind)> outcome = [](const std::string&, RunKind) {
    return RunState::kVerified;
  };
  std::set<std::string> held;  // stores whose runs stay running until released
  int trigger_budget = 1'000'000;
  std::int64_t now_ms = 1'000'000;

  StoreObservation& store(const std::string& id) { return stores_[id]; }
  const RolloutPlan& plan() const { return plan_; }
  const RolloutProgress& progress() const { return progress_; }
  RolloutProgress& mutable_progress() { return progress_; }
  const TargetProgress& target(const std::string& id) const { return progress_.targets[index_.at(id)]; }
  const std::vector<RolloutDecision>& decisions() const { return decisions_; }
  int starts(const std::string& id, RunKind kind) const {
    auto it = starts_.find({id, kind});
    return it == starts_.end() ? 0 : it->second;
  }
  int max_in_flight() const { return max_in_flight_; }
  std::vector<RolloutDecision> Of(DecisionKind kind) const { return Only(decisions_, kind); }

  StepInput Input(std::vector<RolloutCommand> commands = {}) const {
    StepInput input;
    input.now_ms = now_ms;
    input.trigger_budget = trigger_budget;
    input.commands = std::move(commands);
    for (const std::string& id : StoresToObserve(plan_, progress_)) {
      StoreObservation observation = stores_.at(id);
      const TargetProgress& t = target(id);
      const std::optional<std::string>& run_id = t.state == TS::kRollingBack ? t.rollback_run_id : t.deploy_run_id;
      if (run_id && (t.state == TS::kDeploying || t.state == TS::kRollingBack)) observation.run = runs_.at(*run_id);
      input.observations.emplace(id, std::move(observation));
    }
    return input;
  }

  // One pass: observe, step, record; returns the step's result.
  // The returned result's progress is moved into the simulator: read progress() instead.
  StepResult Pass(std::vector<RolloutCommand> commands = {}) {
    const StepInput input = Input(std::move(commands));
    const auto started = std::chrono::steady_clock::now();
    Result<StepResult> result = Step(spec_, plan_, std::move(progress_), input);
    step_time_ += std::chrono::steady_clock::now() - started;
    EXPECT_TRUE(result.ok()) << result.error().message;
    if (!result.ok()) return {};
    Record(*result);
    return std::move(*result);
  }
  std::chrono::steady_clock::duration step_time() const { return step_time_; }

  // Records a step's decisions as the orchestrator's transaction would.
  void Record(StepResult& result) {
    int started = 0;
    for (const RolloutDecision& d : result.decisions) {
      decisions_.push_back(d);
      if (d.kind != D::kStartDeploy && d.kind != D::kStartRollback) continue;
      ++started;
      const RunKind kind = d.kind == D::kStartDeploy ? RunKind::kDeploy : RunKind::kRollback;
      const std::string run_id = "run-" + std::to_string(next_run_++);
      EXPECT_TRUE(AttachRun(result.progress, d, run_id).ok());
      runs_[run_id] = ObservedRun{kind, RunState::kPending};
      open_runs_.push_back(run_id);
      run_store_[run_id] = d.store_id;
      ++starts_[{d.store_id, kind}];
    }
    EXPECT_LE(started, trigger_budget) << "more triggers than the pacing budget";
    progress_ = std::move(result.progress);
    int in_flight = 0;
    for (const TargetProgress& t : progress_.targets)
      in_flight += (t.state == TS::kDeploying || t.state == TS::kRollingBack);
    EXPECT_LE(in_flight, spec_.max_concurrent) << "more runs than max_concurrent";
    max_in_flight_ = std::max(max_in_flight_, in_flight);
  }

  // Runs not held end as `outcome` says.
  void FinishRuns() {
    std::vector<std::string> still_open;
    for (const std::string& run_id : open_runs_) {
      ObservedRun& run = runs_.at(run_id);
      if (held.count(run_store_.at(run_id)) > 0) {
        still_open.push_back(run_id);
        continue;
      }
      run.state = outcome(run_store_.at(run_id), run.kind);
    }
    open_runs_ = std::move(still_open);
  }

  // Steps, finishing runs between passes and jumping to wake-up times, until the rollout is
  // final, waits for an operator, or `max_passes` is reached.
  void RunUntilQuiet(int max_passes = 100'000) {
    for (int i = 0; i < max_passes; ++i) {
      StepResult result = Pass();
      if (IsFinal(progress_.state) || progress_.state == RS::kAwaitingApproval || progress_.state == RS::kPaused) {
        return;
      }
      if (result.step_again) continue;
      if (result.wake_at_ms && *result.wake_at_ms > now_ms) now_ms = *result.wake_at_ms;
      const bool any_unheld = std::any_of(open_runs_.begin(), open_runs_.end(), [&](const std::string& run_id) {
        return held.count(run_store_.at(run_id)) == 0;
      });
      if (!any_unheld && result.decisions.empty() && !result.wake_at_ms) return;  // nothing will change
      FinishRuns();
    }
    ADD_FAILURE() << "the rollout did not settle";
  }

 private:
  RolloutSpec spec_;
  RolloutPlan plan_;
  RolloutProgress progress_;
  std::unordered_map<std::string, StoreObservation> stores_;
  std::unordered_map<std::string, std::size_t> index_;  // store id -> target index
  std::unordered_map<std::string, ObservedRun> runs_;
  std::unordered_map<std::string, std::string> run_store_;
  std::vector<std::string> open_runs_;  // runs not final yet, in start order
  std::map<std::pair<std::string, RunKind>, int> starts_;
  std::vector<RolloutDecision> decisions_;
  int next_run_ = 1;
  int max_in_flight_ = 0;
  std::chrono::steady_clock::duration step_time_{};
};

int CountIn(const RolloutProgress& progress, TargetState state) {
  int n = 0;
  for (const TargetProgress& t : progress.targets) n += t.state == state;
  return n;
}

// ---- Scenarios ----------------------------------------------------------------------------

TEST(RolloutStepTest, CleanMultiWaveRolloutSucceeds) {
  RolloutSpec spec = BaseSpec();
  spec.waves = WavePlanSpec{2, 2.0, std::nullopt};
  spec.max_concurrent = 3;
  Simulator sim(spec, 20);  // waves 2, 4, 8, 6
  sim.RunUntilQuiet();
  EXPECT_EQ(sim.progress().state, RS::kSucceeded);
  EXPECT_EQ(CountIn(sim.progress(), TS::kSucceeded), 20);
  for (const std::string& id : Ids(20)) EXPECT_EQ(sim.starts(id, RunKind::kDeploy), 1) << id;
  EXPECT_EQ(sim.max_in_flight(), 3);
  std::vector<int> started;
  for (const RolloutDecision& d : sim.Of(D::kWaveStarted)) started.push_back(d.wave);
  EXPECT_EQ(started, (std::vector<int>{0, 1, 2, 3}));
  std::vector<int> finished;
  for (const RolloutDecision& d : sim.Of(D::kWaveFinished)) finished.push_back(d.wave);
  EXPECT_EQ(finished, (std::vector<int>{0, 1, 2, 3}));
  ASSERT_EQ(sim.Of(D::kRolloutFinished).size(), 1u);
  EXPECT_EQ(sim.Of(D::kRolloutFinished)[0].final_state, RS::kSucceeded);
  EXPECT_TRUE(StoresToObserve(sim.plan(), sim.progress()).empty());
  // A final rollout stays put.
  StepResult again = sim.Pass();
  EXPECT_TRUE(again.decisions.empty());
  EXPECT_TRUE(again.changed_targets.empty());
}

TEST(RolloutStepTest, StartsDeploysInPlanOrderCarryingTheReleaseAndThePreviousRelease) {
  RolloutSpec spec = BaseSpec();
  spec.waves = WavePlanSpec{3, 2.0, std::nullopt};
  spec.max_concurrent = 2;
  Simulator sim(spec, 3);
  sim.store("s00000").last_known_good_release = "2026.10.9";
  StepResult result = sim.Pass();
  ASSERT_EQ(result.decisions.size(), 3u);
  EXPECT_EQ(result.decisions[0].kind, D::kWaveStarted);
  EXPECT_EQ(result.decisions[0].wave, 0);
  EXPECT_EQ(result.decisions[1].kind, D::kStartDeploy);
  EXPECT_EQ(result.decisions[1].store_id, "s00000");
  EXPECT_EQ(result.decisions[1].release, "2026.12.1");
  EXPECT_EQ(result.decisions[2].store_id, "s00001");
  EXPECT_EQ(result.changed_targets, (std::vector<std::size_t>{0, 1}));
  EXPECT_EQ(sim.target("s00000").previous_release, "2026.10.9");
  EXPECT_EQ(sim.target("s00000").deploy_run_id, "run-1");
  EXPECT_EQ(sim.progress().state, RS::kRunning);
}

TEST(RolloutStepTest, PacingBudgetLimitsTriggersPerStepAndNeverFailsTheRollout) {
  RolloutSpec spec = BaseSpec();
  spec.waves = WavePlanSpec{10, std::nullopt, 10};
  spec.max_concurrent = 5;
  Simulator sim(spec, 30);
  sim.trigger_budget = 0;
  for (int i = 0; i < 3; ++i) {
    StepResult result = sim.Pass();
    EXPECT_TRUE(Only(result.decisions, D::kStartDeploy).empty());
    EXPECT_TRUE(Only(result.decisions, D::kSkipTarget).empty());
  }
  EXPECT_EQ(sim.Of(D::kWaveStarted).size(), 1u);
  EXPECT_EQ(sim.progress().state, RS::kRunning);
  EXPECT_EQ(CountIn(sim.progress(), TS::kWaiting), 30);
  sim.trigger_budget = 2;
  sim.RunUntilQuiet();  // Record() checks every step started at most 2
  EXPECT_EQ(sim.progress().state, RS::kSucceeded);
  EXPECT_EQ(CountIn(sim.progress(), TS::kSucceeded), 30);
}

TEST(RolloutStepTest, NeverMoreThanMaxConcurrentRunsWhileRunsAreSlow) {
  RolloutSpec spec = BaseSpec();
  spec.waves = WavePlanSpec{20, std::nullopt, 20};
  spec.max_concurrent = 4;
  Simulator sim(spec, 20);
  for (const std::string& id : Ids(20)) sim.held.insert(id);
  sim.Pass();
  sim.Pass();
  EXPECT_EQ(CountIn(sim.progress(), TS::kDeploying), 4);
  sim.held.erase("s00002");
  sim.FinishRuns();
  StepResult result = sim.Pass();
  ASSERT_EQ(result.decisions.size(), 1u);  // one slot freed, one start
  EXPECT_EQ(result.decisions[0].store_id, "s00004");
  sim.held.clear();
  sim.RunUntilQuiet();
  EXPECT_EQ(sim.progress().state, RS::kSucceeded);
  EXPECT_EQ(sim.max_in_flight(), 4);
}

TEST(RolloutStepTest, ReplayingAStepAfterRecordingItStartsNothingTwice) {
  RolloutSpec spec = BaseSpec();
  spec.waves = WavePlanSpec{4, 2.0, std::nullopt};
  spec.max_concurrent = 4;
  Simulator sim(spec, 4);
  for (const std::string& id : Ids(4)) sim.held.insert(id);
  // A crash before the transaction: the stored progress is the old one, and the same inputs
  // give the same decisions (nothing was sent, so deciding again is safe).
  const StepInput input = sim.Input();
  Result<StepResult> first = Step(spec, sim.plan(), sim.progress(), input);
  Result<StepResult> before_commit = Step(spec, sim.plan(), sim.progress(), input);
  ASSERT_TRUE(first.ok() && before_commit.ok());
  ASSERT_EQ(Only(first->decisions, D::kStartDeploy).size(), 4u);
  EXPECT_EQ(first->progress, before_commit->progress);
  // After the transaction (the progress with its run ids), replays decide no start: not with
  // the old observations, not with fresh ones, not after a "restart" from a stored copy.
  sim.Record(*first);
  const RolloutProgress stored = sim.progress();
  for (int replay = 0; replay < 3; ++replay) {
    StepResult again = sim.Pass();
    EXPECT_TRUE(again.decisions.empty());
  }
  sim.mutable_progress() = stored;
  EXPECT_TRUE(sim.Pass().decisions.empty());
  for (const std::string& id : Ids(4)) EXPECT_EQ(sim.starts(id, RunKind::kDeploy), 1);
}

TEST(RolloutStepTest, IneligibleStoresAreSkippedWithTheirReasonAndCompleteTheWave) {
  struct Case {
    std::string name;
    std::function<void(StoreObservation&)> change;
    std::optional<SkipReason> reason;  // nullopt: deployed
  };
  const std::vector<Case> cases = {
      {"offline", [](StoreObservation& s) { s.availability = Availability::kOffline; }, SkipReason::kAgentOffline},
      {"never seen", [](StoreObservation& s) { s.availability = Availability::kNeverSeen; }, SkipReason::kAgentOffline},
      {"unhealthy", [](StoreObservation& s) { s.health = Health::kUnhealthy; }, SkipReason::kUnhealthy},
      {"health unknown", [](StoreObservation& s) { s.health = Health::kUnknown; }, SkipReason::kUnhealthy},
      {"mid-run", [](StoreObservation& s) { s.other_run_active = true; }, SkipReason::kActiveRun},
      {"provisioning", [](StoreObservation& s) { s.state = StoreState::kProvisioning; }, SkipReason::kNotActive},
      {"window closed", [](StoreObservation& s) { s.window_open = false; }, SkipReason::kWindowClosed},
      {"already there", [](StoreObservation& s) { s.current_release = "2026.12.1"; }, SkipReason::kAlreadyAtRelease},
      {"stale agent", [](StoreObservation& s) { s.availability = Availability::kStale; }, std::nullopt},
      {"degraded", [](StoreObservation& s) { s.health = Health::kDegraded; }, std::nullopt},
      {"no earlier release", [](StoreObservation& s) { s.current_release.reset(); }, std::nullopt},
  };
  for (const Case& c : cases) {
    RolloutSpec spec = BaseSpec();
    spec.waves = WavePlanSpec{2, std::nullopt, 2};
    Simulator sim(spec, 4);
    c.change(sim.store("s00001"));
    sim.RunUntilQuiet();
    EXPECT_EQ(sim.progress().state, RS::kSucceeded) << c.name;
    EXPECT_EQ(sim.progress().failed_deploys, 0) << c.name;
    const TargetProgress& t = sim.target("s00001");
    if (c.reason) {
      EXPECT_EQ(t.state, TS::kSkipped) << c.name;
      EXPECT_EQ(t.skip_reason, c.reason) << c.name;
      EXPECT_EQ(sim.starts("s00001", RunKind::kDeploy), 0) << c.name;
      const std::vector<RolloutDecision> skips = sim.Of(D::kSkipTarget);
      ASSERT_EQ(skips.size(), 1u) << c.name;
      EXPECT_EQ(skips[0].store_id, "s00001");
      EXPECT_EQ(skips[0].skip_reason, c.reason);
    } else {
      EXPECT_EQ(t.state, TS::kSucceeded) << c.name;
    }
    EXPECT_EQ(CountIn(sim.progress(), TS::kSucceeded), c.reason ? 3 : 4) << c.name;
  }
}

TEST(RolloutStepTest, AWaveOfOnlySkippedStoresFinishesAtOnce) {
  RolloutSpec spec = BaseSpec();
  spec.waves = WavePlanSpec{2, std::nullopt, 2};
  Simulator sim(spec, 4);
  sim.store("s00000").availability = Availability::kOffline;
  sim.store("s00001").window_open = false;
  StepResult result = sim.Pass();
  std::vector<DecisionKind> kinds;
  for (const RolloutDecision& d : result.decisions) kinds.push_back(d.kind);
  EXPECT_EQ(kinds, (std::vector<DecisionKind>{D::kWaveStarted, D::kSkipTarget, D::kSkipTarget, D::kWaveFinished,
                                              D::kWaveStarted}));
  EXPECT_TRUE(result.step_again);  // wave 1's stores were not observed yet
  EXPECT_EQ(sim.progress().current_wave, 1);
}

TEST(RolloutStepTest, CanaryFailureWithZeroBudgetHaltsAndRollsBackTheCanary) {
  RolloutSpec spec = BaseSpec();
  spec.waves = WavePlanSpec{2, 2.0, std::nullopt};
  spec.failure_budget = FailureBudget{0, std::nullopt};
  Simulator sim(spec, 10);
  sim.store("s00000").last_known_good_release = "2026.11.0";
  sim.outcome = [](const std::string& store, RunKind kind) {
    return store == "s00001" && kind == RunKind::kDeploy ? RunState::kFailed : RunState::kVerified;
  };
  sim.RunUntilQuiet();
  EXPECT_EQ(sim.progress().state, RS::kFailed);
  EXPECT_EQ(sim.progress().ending, RolloutEnding::kFailureBudget);
  ASSERT_EQ(sim.Of(D::kHalted).size(), 1u);
  EXPECT_EQ(sim.Of(D::kHalted)[0].failed_deploys, 1);
  // Both canaries were deployed and both are rolled back, each to its own previous release.
  const std::vector<RolloutDecision> rollbacks = sim.Of(D::kStartRollback);
  ASSERT_EQ(rollbacks.size(), 2u);
  EXPECT_EQ(rollbacks[0].store_id, "s00000");
  EXPECT_EQ(rollbacks[0].release, "2026.11.0");
  EXPECT_EQ(rollbacks[1].store_id, "s00001");
  EXPECT_EQ(rollbacks[1].release, "2026.11.1");
  EXPECT_EQ(sim.target("s00000").state, TS::kRolledBack);
  EXPECT_EQ(sim.target("s00001").state, TS::kRolledBack);
  EXPECT_EQ(sim.target("s00001").deploy_final_state, RunState::kFailed);
  EXPECT_EQ(CountIn(sim.progress(), TS::kNotStarted), 8);
  EXPECT_EQ(sim.starts("s00002", RunKind::kDeploy), 0);
  ASSERT_EQ(sim.Of(D::kRolloutFinished).size(), 1u);
  EXPECT_EQ(sim.Of(D::kRolloutFinished)[0].final_state, RS::kFailed);
}

TEST(RolloutStepTest, FailureBudgetByCountToleratesUpToItThenHalts) {
  RolloutSpec spec = BaseSpec();
  spec.waves = WavePlanSpec{2, std::nullopt, 4};  // 2, 4, 4
  spec.max_concurrent = 1;
  spec.failure_budget = FailureBudget{2, std::nullopt};
  Simulator sim(spec, 10);
  // One failure in the canary, one in wave 1: within budget. The third, in wave 2, halts.
  const std::set<std::string> failing = {"s00001", "s00003", "s00007"};
  sim.outcome = [&](const std::string& store, RunKind kind) {
    return kind == RunKind::kDeploy && failing.count(store) ? RunState::kTimedOut : RunState::kVerified;
  };
  sim.RunUntilQuiet();
  EXPECT_EQ(sim.progress().state, RS::kFailed);
  EXPECT_EQ(sim.progress().failed_deploys, 3);
  ASSERT_EQ(sim.Of(D::kHalted).size(), 1u);
  EXPECT_EQ(sim.Of(D::kHalted)[0].wave, 2);
  // Earlier waves keep the release, failures included; wave 2's deployed stores roll back.
  EXPECT_EQ(sim.target("s00000").state, TS::kSucceeded);
  EXPECT_EQ(sim.target("s00001").state, TS::kFailed);
  EXPECT_EQ(sim.target("s00003").state, TS::kFailed);
  EXPECT_EQ(sim.target("s00006").state, TS::kRolledBack);
  EXPECT_EQ(sim.target("s00007").state, TS::kRolledBack);
  EXPECT_EQ(sim.target("s00008").state, TS::kNotStarted);
  EXPECT_EQ(sim.target("s00009").state, TS::kNotStarted);
  EXPECT_EQ(sim.Of(D::kStartRollback).size(), 2u);
}

TEST(RolloutStepTest, FailureBudgetByPercentOfPlannedStores) {
  RolloutSpec spec = BaseSpec();
  spec.waves = WavePlanSpec{5, std::nullopt, 5};
  spec.max_concurrent = 5;
  spec.failure_budget = FailureBudget{std::nullopt, 10};  // 10% of 20: 2
  {
    Simulator sim(spec, 20);
    sim.outcome = [](const std::string& store, RunKind) {
      return store == "s00000" || store == "s00010" ? RunState::kFailed : RunState::kVerified;
    };
    sim.RunUntilQuiet();
    EXPECT_EQ(sim.progress().state, RS::kSucceeded);
    EXPECT_EQ(CountTargets(sim.progress()).failed, 2);
    EXPECT_EQ(CountTargets(sim.progress()).succeeded, 18);
  }
  {
    Simulator sim(spec, 20);
    sim.outcome = [](const std::string& store, RunKind kind) {
      return kind == RunKind::kDeploy && (store == "s00000" || store == "s00010" || store == "s00011")
                 ? RunState::kFailed
                 : RunState::kVerified;
    };
    sim.RunUntilQuiet();
    EXPECT_EQ(sim.progress().state, RS::kFailed);
    EXPECT_EQ(sim.Of(D::kHalted)[0].wave, 2);
    EXPECT_EQ(sim.Of(D::kStartRollback).size(), 5u);  // all of wave 2 had started
  }
}

TEST(RolloutStepTest, HaltLetsInFlightRunsFinishBeforeRollingBack) {
  RolloutSpec spec = BaseSpec();
  spec.waves = WavePlanSpec{4, std::nullopt, 4};
  spec.max_concurrent = 3;
  Simulator sim(spec, 8);
  sim.held = {"s00001", "s00002"};
  sim.outcome = [](const std::string& store, RunKind kind) {
    return store == "s00000" && kind == RunKind::kDeploy ? RunState::kFailed : RunState::kVerified;
  };
  sim.Pass();  // starts s0, s1, s2
  sim.FinishRuns();
  StepResult halted = sim.Pass();
  EXPECT_EQ(sim.progress().state, RS::kHalting);
  for (const RolloutDecision& d : halted.decisions) {
    EXPECT_NE(d.kind, D::kStartDeploy);
    EXPECT_NE(d.kind, D::kStartRollback);
  }
  EXPECT_EQ(sim.target("s00003").state, TS::kNotStarted);
  EXPECT_EQ(sim.Pass().decisions.size(), 0u);  // still waiting for s1 and s2
  EXPECT_EQ(CheckRolloutCommand(sim.plan(), sim.progress(), {C::kAbort}).error().code, ErrorCode::kConflict);
  sim.held.clear();
  sim.RunUntilQuiet();
  EXPECT_EQ(sim.progress().state, RS::kFailed);
  for (const char* id : {"s00000", "s00001", "s00002"}) {
    EXPECT_EQ(sim.target(id).state, TS::kRolledBack) << id;
    EXPECT_EQ(sim.starts(id, RunKind::kRollback), 1) << id;
  }
  EXPECT_EQ(sim.starts("s00003", RunKind::kDeploy), 0);
}

TEST(RolloutStepTest, HaltedWaveRollbackExceptionsAndFailures) {
  RolloutSpec spec = BaseSpec();
  spec.waves = WavePlanSpec{5, std::nullopt, 5};
  spec.max_concurrent = 5;
  Simulator sim(spec, 5);
  sim.store("s00001").last_known_good_release.reset();  // nothing to return to
  sim.store("s00004").availability = Availability::kOffline;
  sim.outcome = [](const std::string& store, RunKind kind) {
    if (kind == RunKind::kRollback) return store == "s00003" ? RunState::kFailed : RunState::kVerified;
    return store == "s00002" ? RunState::kVerificationFailed : RunState::kVerified;
  };
  sim.RunUntilQuiet();
  EXPECT_EQ(sim.progress().state, RS::kFailed);
  EXPECT_EQ(sim.target("s00000").state, TS::kRolledBack);
  EXPECT_EQ(sim.target("s00001").state, TS::kNotRolledBack);
  // A failed health gate already started the coordinator's automatic rollback (ADR 0008).
  EXPECT_EQ(sim.target("s00002").state, TS::kFailed);
  EXPECT_EQ(sim.starts("s00002", RunKind::kRollback), 0);
  EXPECT_EQ(sim.target("s00003").state, TS::kRollbackFailed);
  EXPECT_EQ(sim.target("s00003").rollback_final_state, RunState::kFailed);
  EXPECT_EQ(sim.target("s00004").state, TS::kSkipped);
  const RolloutCounts counts = CountTargets(sim.progress());
  EXPECT_EQ(counts.rolled_back, 1);
  EXPECT_EQ(counts.not_rolled_back, 1);
  EXPECT_EQ(counts.rollback_failed, 1);
  EXPECT_EQ(counts.failed, 1);
  EXPECT_EQ(counts.skipped, 1);
}

TEST(RolloutStepTest, RollbackWaitsForAnotherActiveRunOnTheStore) {
  RolloutSpec spec = BaseSpec();
  spec.waves = WavePlanSpec{2, std::nullopt, 2};
  Simulator sim(spec, 2);
  sim.outcome = [](const std::string& store, RunKind kind) {
    return store == "s00001" && kind == RunKind::kDeploy ? RunState::kFailed : RunState::kVerified;
  };
  sim.Pass();
  sim.FinishRuns();
  sim.store("s00000").other_run_active = true;  // an operator's run got in first
  sim.Pass();                                   // halting -> rolling back (s00001 only)
  sim.FinishRuns();
  sim.Pass();
  EXPECT_EQ(sim.progress().state, RS::kRollingBack);
  EXPECT_EQ(sim.target("s00000").state, TS::kRollbackWaiting);
  sim.store("s00000").other_run_active = false;
  sim.RunUntilQuiet();
  EXPECT_EQ(sim.progress().state, RS::kFailed);
  EXPECT_EQ(sim.target("s00000").state, TS::kRolledBack);
}

TEST(RolloutStepTest, PauseStopsNewDeploysAndResumeContinues) {
  RolloutSpec spec = BaseSpec();
  spec.waves = WavePlanSpec{6, std::nullopt, 6};
  spec.max_concurrent = 2;
  Simulator sim(spec, 6);
  sim.held = {"s00000"};
  sim.Pass();  // starts s0, s1
  sim.FinishRuns();
  StepResult paused = sim.Pass({{C::kPause}});
  EXPECT_EQ(sim.progress().state, RS::kPaused);
  EXPECT_EQ(sim.progress().paused_from, RS::kRunning);
  EXPECT_TRUE(paused.decisions.empty());                  // s1's slot is free, but paused
  EXPECT_EQ(sim.target("s00001").state, TS::kSucceeded);  // in-flight runs still land
  sim.held.clear();
  sim.FinishRuns();
  sim.Pass();
  EXPECT_EQ(sim.progress().state, RS::kPaused);
  EXPECT_EQ(sim.target("s00000").state, TS::kSucceeded);
  EXPECT_EQ(sim.target("s00002").state, TS::kWaiting);
  StepResult resumed = sim.Pass({{C::kResume}});
  EXPECT_EQ(sim.progress().state, RS::kRunning);
  EXPECT_EQ(resumed.decisions.size(), 2u);
  sim.RunUntilQuiet();
  EXPECT_EQ(sim.progress().state, RS::kSucceeded);
}

TEST(RolloutStepTest, AFailureWhilePausedStillHalts) {
  RolloutSpec spec = BaseSpec();
  spec.waves = WavePlanSpec{4, std::nullopt, 4};
  spec.max_concurrent = 2;
  Simulator sim(spec, 4);
  sim.outcome = [](const std::string& store, RunKind kind) {
    return store == "s00000" && kind == RunKind::kDeploy ? RunState::kCancelled : RunState::kVerified;
  };
  sim.Pass();
  sim.Pass({{C::kPause}});
  sim.FinishRuns();
  sim.Pass();
  EXPECT_EQ(sim.progress().state, RS::kRollingBack);
  EXPECT_FALSE(sim.progress().paused_from.has_value());
  sim.RunUntilQuiet();
  EXPECT_EQ(sim.progress().state, RS::kFailed);
}

TEST(RolloutStepTest, AbortIsFinalLetsInFlightRunsFinishAndRollsNothingBack) {
  RolloutSpec spec = BaseSpec();
  spec.waves = WavePlanSpec{3, std::nullopt, 3};
  spec.max_concurrent = 2;
  Simulator sim(spec, 9);
  sim.held = {"s00000"};
  sim.Pass();
  sim.FinishRuns();
  StepResult aborting = sim.Pass({{C::kAbort}});
  EXPECT_EQ(sim.progress().state, RS::kAborting);
  EXPECT_TRUE(std::none_of(aborting.decisions.begin(), aborting.decisions.end(),
                           [](const RolloutDecision& d) { return d.kind == D::kStartDeploy; }));
  EXPECT_EQ(CountIn(sim.progress(), TS::kNotStarted), 7);  // s2 and waves 1 and 2
  sim.held.clear();
  sim.RunUntilQuiet();
  EXPECT_EQ(sim.progress().state, RS::kAborted);
  EXPECT_EQ(sim.target("s00000").state, TS::kSucceeded);
  EXPECT_EQ(sim.target("s00001").state, TS::kSucceeded);
  EXPECT_TRUE(sim.Of(D::kStartRollback).empty());
  for (RolloutCommandKind kind : {C::kPause, C::kResume, C::kAbort}) {
    EXPECT_FALSE(CheckRolloutCommand(sim.plan(), sim.progress(), {kind}).ok());
  }
  StepResult after = sim.Pass({{C::kResume}});
  ASSERT_EQ(after.refused_commands.size(), 1u);
  EXPECT_EQ(after.refused_commands[0].error.code, ErrorCode::kConflict);
  EXPECT_EQ(sim.progress().state, RS::kAborted);
}

TEST(RolloutStepTest, AbortWithRollbackRollsBackTheCurrentWave) {
  RolloutSpec spec = BaseSpec();
  spec.waves = WavePlanSpec{3, std::nullopt, 3};
  spec.max_concurrent = 3;
  spec.between_waves = BetweenWaves::kApproval;
  Simulator sim(spec, 6);
  sim.RunUntilQuiet();
  EXPECT_EQ(sim.progress().state, RS::kAwaitingApproval);
  RolloutCommand abort{C::kAbort};
  abort.rollback = true;
  sim.Pass({abort});
  sim.RunUntilQuiet();
  EXPECT_EQ(sim.progress().state, RS::kAborted);
  EXPECT_EQ(sim.Of(D::kStartRollback).size(), 3u);
  EXPECT_EQ(CountIn(sim.progress(), TS::kRolledBack), 3);
  EXPECT_EQ(CountIn(sim.progress(), TS::kNotStarted), 3);
}

TEST(RolloutStepTest, ApprovalGateWaitsForTheNextWavesApproval) {
  RolloutSpec spec = BaseSpec();
  spec.waves = WavePlanSpec{1, std::nullopt, 2};  // 1, 2, 2
  spec.between_waves = BetweenWaves::kApproval;
  Simulator sim(spec, 5);
  sim.RunUntilQuiet();
  EXPECT_EQ(sim.progress().state, RS::kAwaitingApproval);
  ASSERT_EQ(sim.Of(D::kAwaitApproval).size(), 1u);
  EXPECT_EQ(sim.Of(D::kAwaitApproval)[0].wave, 1);
  sim.now_ms += 3'600'000;  // time alone does nothing
  EXPECT_TRUE(sim.Pass().decisions.empty());
  RolloutCommand wrong{C::kApproveWave};
  wrong.wave = 2;
  StepResult refused = sim.Pass({wrong});
  ASSERT_EQ(refused.refused_commands.size(), 1u);
  EXPECT_EQ(sim.progress().state, RS::kAwaitingApproval);
  RolloutCommand approve{C::kApproveWave};
  approve.wave = 1;
  StepResult approved = sim.Pass({approve});
  EXPECT_TRUE(approved.step_again);
  EXPECT_EQ(sim.progress().current_wave, 1);
  sim.RunUntilQuiet();
  EXPECT_EQ(sim.progress().state, RS::kAwaitingApproval);
  approve.wave = 2;
  sim.Pass({approve});
  sim.RunUntilQuiet();
  EXPECT_EQ(sim.progress().state, RS::kSucceeded);
  EXPECT_EQ(sim.Of(D::kAwaitApproval).size(), 2u);  // none after the last wave
}

TEST(RolloutStepTest, TimedPauseWaitsUntilItsTime) {
  RolloutSpec spec = BaseSpec();
  spec.waves = WavePlanSpec{1, std::nullopt, 1};
  spec.between_waves = BetweenWaves::kPause;
  spec.pause_ms = 60'000;
  Simulator sim(spec, 2);
  sim.Pass();
  sim.FinishRuns();
  StepResult waiting = sim.Pass();
  EXPECT_EQ(sim.progress().state, RS::kWaitingBetweenWaves);
  EXPECT_EQ(waiting.wake_at_ms, sim.now_ms + 60'000);
  ASSERT_EQ(sim.Of(D::kWaitUntil).size(), 1u);
  EXPECT_EQ(sim.Of(D::kWaitUntil)[0].until_ms, sim.now_ms + 60'000);
  const std::int64_t until = sim.now_ms + 60'000;
  sim.now_ms = until - 1;
  StepResult early = sim.Pass();
  EXPECT_TRUE(early.decisions.empty());
  EXPECT_EQ(early.wake_at_ms, until);
  // Paused while waiting: the time passes, but nothing moves until resumed.
  sim.Pass({{C::kPause}});
  sim.now_ms = until + 10;
  EXPECT_TRUE(sim.Pass().decisions.empty());
  EXPECT_EQ(sim.progress().state, RS::kPaused);
  StepResult resumed = sim.Pass({{C::kResume}});
  EXPECT_TRUE(resumed.step_again);
  EXPECT_EQ(sim.progress().state, RS::kRunning);
  EXPECT_EQ(sim.progress().current_wave, 1);
  sim.RunUntilQuiet();
  EXPECT_EQ(sim.progress().state, RS::kSucceeded);
}

TEST(RolloutStepTest, CommandChecks) {
  RolloutSpec spec = BaseSpec();
  spec.waves = WavePlanSpec{1, std::nullopt, 1};
  const RolloutPlan plan = *PlanWaves(Ids(3), spec.waves);
  struct Case {
    RolloutState state;
    RolloutCommandKind kind;
    bool ok;
  };
  const std::vector<Case> cases = {
      {RS::kPending, C::kPause, false},         {RS::kPending, C::kAbort, true},
      {RS::kRunning, C::kPause, true},          {RS::kRunning, C::kResume, false},
      {RS::kRunning, C::kAbort, true},          {RS::kWaitingBetweenWaves, C::kPause, true},
      {RS::kAwaitingApproval, C::kPause, true}, {RS::kPaused, C::kPause, false},
      {RS::kPaused, C::kResume, true},          {RS::kPaused, C::kAbort, true},
      {RS::kHalting, C::kAbort, false},         {RS::kHalting, C::kPause, false},
      {RS::kRollingBack, C::kAbort, false},     {RS::kAborting, C::kAbort, false},
      {RS::kSucceeded, C::kAbort, false},       {RS::kFailed, C::kResume, false},
      {RS::kRunning, C::kApproveWave, false},
  };
  for (const Case& c : cases) {
    RolloutProgress progress = NewRolloutProgress(plan);
    progress.state = c.state;
    if (c.state == RS::kPaused) progress.paused_from = RS::kRunning;
    EXPECT_EQ(CheckRolloutCommand(plan, progress, {c.kind}).ok(), c.ok) << ToString(c.state) << " " << ToString(c.kind);
  }
  RolloutProgress awaiting = NewRolloutProgress(plan);
  awaiting.state = RS::kAwaitingApproval;
  awaiting.current_wave = 1;
  EXPECT_TRUE(CheckRolloutCommand(plan, awaiting, {C::kApproveWave, 2}).ok());
  EXPECT_FALSE(CheckRolloutCommand(plan, awaiting, {C::kApproveWave, 1}).ok());
  EXPECT_FALSE(CheckRolloutCommand(plan, awaiting, {C::kApproveWave, 3}).ok());
}

TEST(RolloutStepTest, StoresToObserveFollowTheState) {
  RolloutSpec spec = BaseSpec();
  spec.waves = WavePlanSpec{4, std::nullopt, 4};
  spec.max_concurrent = 2;
  spec.between_waves = BetweenWaves::kApproval;
  Simulator sim(spec, 8);
  EXPECT_EQ(StoresToObserve(sim.plan(), sim.progress()),
            (std::vector<std::string>{"s00000", "s00001", "s00002", "s00003"}));
  sim.held = {"s00001"};
  sim.outcome = [](const std::string& store, RunKind kind) {
    return store == "s00000" && kind == RunKind::kDeploy ? RunState::kFailed : RunState::kVerified;
  };
  sim.Pass();
  EXPECT_EQ(StoresToObserve(sim.plan(), sim.progress()).size(), 4u);  // two in flight, two waiting
  sim.FinishRuns();
  sim.Pass();
  ASSERT_EQ(sim.progress().state, RS::kHalting);
  // Halting: the deploys that started (one failed, one in flight); not the not_started ones.
  EXPECT_EQ(StoresToObserve(sim.plan(), sim.progress()), (std::vector<std::string>{"s00000", "s00001"}));
  sim.held.clear();
  sim.RunUntilQuiet();
  EXPECT_EQ(sim.progress().state, RS::kFailed);
  EXPECT_TRUE(StoresToObserve(sim.plan(), sim.progress()).empty());
}

TEST(RolloutStepTest, AbortBeforeTheFirstStepStartsNothing) {
  Simulator sim(BaseSpec(), 3);
  StepResult result = sim.Pass({{C::kAbort}});
  EXPECT_EQ(sim.progress().state, RS::kAborted);
  EXPECT_EQ(CountIn(sim.progress(), TS::kNotStarted), 3);
  EXPECT_TRUE(Only(result.decisions, D::kStartDeploy).empty());
  ASSERT_EQ(Only(result.decisions, D::kRolloutFinished).size(), 1u);
  EXPECT_EQ(result.changed_targets, (std::vector<std::size_t>{0, 1, 2}));
}

TEST(RolloutStepTest, ARefusedRunRequestBecomesASkip) {
  RolloutSpec spec = BaseSpec();
  spec.waves = WavePlanSpec{2, std::nullopt, 2};
  Simulator sim(spec, 2);
  Result<StepResult> result = Step(spec, sim.plan(), sim.progress(), sim.Input());
  ASSERT_TRUE(result.ok());
  const std::vector<RolloutDecision> starts = Only(result->decisions, D::kStartDeploy);
  ASSERT_EQ(starts.size(), 2u);
  // The store got another run between the observation and the transaction.
  ASSERT_TRUE(RecordRefusedStart(result->progress, starts[0], SkipReason::kActiveRun).ok());
  ASSERT_TRUE(AttachRun(result->progress, starts[1], "run-x").ok());
  EXPECT_FALSE(AttachRun(result->progress, starts[1], "run-y").ok());             // once
  EXPECT_FALSE(AttachRun(result->progress, starts[0], "run-z").ok());             // skipped now
  EXPECT_FALSE(AttachRun(result->progress, result->decisions[0], "run-v").ok());  // not a start
  RolloutDecision elsewhere = starts[1];
  elsewhere.store_id = "other";
  EXPECT_FALSE(AttachRun(result->progress, elsewhere, "run-w").ok());
  EXPECT_EQ(result->progress.targets[0].state, TS::kSkipped);
  EXPECT_EQ(result->progress.targets[0].skip_reason, SkipReason::kActiveRun);
  EXPECT_EQ(result->progress.targets[1].deploy_run_id, "run-x");
}

TEST(RolloutStepTest, InputsThatBreakTheContractAreErrors) {
  RolloutSpec spec = BaseSpec();
  spec.waves = WavePlanSpec{2, std::nullopt, 2};
  Simulator sim(spec, 4);
  StepInput missing = sim.Input();
  missing.observations.erase("s00001");
  Result<StepResult> no_observation = Step(spec, sim.plan(), sim.progress(), missing);
  ASSERT_FALSE(no_observation.ok());
  EXPECT_EQ(no_observation.error().field, "observations");

  Result<StepResult> started = Step(spec, sim.plan(), sim.progress(), sim.Input());
  ASSERT_TRUE(started.ok());
  // Deploying targets without their run ids: AttachRun was skipped.
  Result<StepResult> unattached = Step(spec, sim.plan(), started->progress, sim.Input());
  ASSERT_FALSE(unattached.ok());
  EXPECT_EQ(unattached.error().field, "progress");

  sim.Record(*started);
  StepInput wrong_kind = sim.Input();
  wrong_kind.observations["s00000"].run->kind = RunKind::kRollback;
  Result<StepResult> wrong = Step(spec, sim.plan(), sim.progress(), wrong_kind);
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.error().field, "observations");

  RolloutProgress short_progress = sim.progress();
  short_progress.targets.pop_back();
  EXPECT_FALSE(Step(spec, sim.plan(), short_progress, sim.Input()).ok());
  RolloutProgress bad_wave = sim.progress();
  bad_wave.current_wave = 7;
  EXPECT_FALSE(Step(spec, sim.plan(), bad_wave, sim.Input()).ok());
}

TEST(RolloutStepTest, TenThousandStoresWithAnInstantProvider) {
  RolloutSpec spec = BaseSpec();
  spec.waves = WavePlanSpec{10, 2.0, std::nullopt};
  spec.max_concurrent = 100;
  spec.failure_budget = FailureBudget{std::nullopt, 1};
  Simulator sim(spec, 10'000);
  sim.trigger_budget = 50;  // pacing below the concurrency
  // Every 97th store is offline at its turn; every 500th deploy fails (20 < 1% of 10,000).
  for (int i = 0; i < 10'000; i += 97) sim.store(Id(i)).availability = Availability::kOffline;
  sim.outcome = [](const std::string& store, RunKind) {
    return std::stoi(store.substr(1)) % 500 == 250 ? RunState::kFailed : RunState::kVerified;
  };
  const auto started = std::chrono::steady_clock::now();
  sim.RunUntilQuiet();
  const auto took = std::chrono::steady_clock::now() - started;
  std::cout << "[ rollout ] 10,000-store rollout: Step() took "
            << std::chrono::duration_cast<std::chrono::milliseconds>(sim.step_time()).count() << " ms, "
            << "the whole simulation " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms; "
            << sim.decisions().size() << " decisions\n";
  EXPECT_EQ(sim.progress().state, RS::kSucceeded);
  const RolloutCounts counts = CountTargets(sim.progress());
  EXPECT_EQ(counts.skipped, 104);
  EXPECT_EQ(counts.failed, 20);
  EXPECT_EQ(counts.succeeded, 10'000 - 104 - 20);
  EXPECT_EQ(sim.max_in_flight(), 50);
  for (const TargetProgress& t : sim.progress().targets) {
    EXPECT_LE(sim.starts(t.store_id, RunKind::kDeploy), 1);
  }
}

}  // namespace
}  // namespace storeplane::core
