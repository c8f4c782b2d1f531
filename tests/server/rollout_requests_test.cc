// Rollout requests at the API's edge: the body decoded strictly (defaults, every bad field
// named), the stored records read back as the same core values, the JSON the API shows,
// and the provider pacer's token bucket.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "server/provider_pacing.h"
#include "server/rollout_requests.h"

namespace storeplane::server {
namespace {

namespace json = boost::json;

core::EnvironmentSet Environments() { return core::EnvironmentSet{}; }

TEST(DecodeRolloutSpec, DefaultsAreACanaryOfOneDoublingOneAtATimeAndNoFailureTolerated) {
  auto spec = DecodeRolloutSpec(R"({"release": "r2", "selector": {"environment": "staging"}})", Environments());
  ASSERT_TRUE(spec.ok()) << spec.error().message;
  EXPECT_EQ(spec->release, "r2");
  EXPECT_EQ(spec->waves.canary_size, 1);
  EXPECT_EQ(spec->waves.growth_factor, 2.0);
  EXPECT_FALSE(spec->waves.wave_size);
  EXPECT_EQ(spec->max_concurrent, 1);
  EXPECT_EQ(spec->failure_budget.max_failures, 0);
  EXPECT_EQ(spec->between_waves, core::BetweenWaves::kNone);
}

TEST(DecodeRolloutSpec, EveryBadFieldIsNamed) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"selector": {"environment": "staging"}})", "release"},
      {R"({"release": "r2"})", "selector"},
      {R"({"release": "r2", "selector": {"environment": "moon"}})", "selector.environment"},
      {R"({"release": "r2", "selector": {"environment": "staging", "isolation_mode": "x"}})",
       "selector.isolation_mode"},
      {R"({"release": "r2", "selector": {"environment": "staging", "labels": "a in ("}})", "selector.labels"},
      {R"({"release": "r2", "selector": {"environment": "staging"}, "waves": {"canary_size": 0}})",
       "waves.canary_size"},
      {R"({"release": "r2", "selector": {"environment": "staging"}, "waves": {"growth_factor": 1}})",
       "waves.growth_factor"},
      {R"({"release": "r2", "selector": {"environment": "staging"}, "waves": {"wave_size": 0}})", "waves.wave_size"},
      {R"({"release": "r2", "selector": {"environment": "staging"}, "max_concurrent": 0})", "max_concurrent"},
      {R"({"release": "r2", "selector": {"environment": "staging"}, "max_concurrent": 1.5})", "max_concurrent"},
      {R"({"release": "r2", "selector": {"environment": "staging"}, "between_waves": "later"})", "between_waves"},
      {R"({"release": "r2", "selector": {"environment": "staging"}, "between_waves": "pause"})", "pause_s"},
      {R"({"release": "r2", "selector": {"environment": "staging"}, "pause_s": 5})", "pause_s"},
      {R"({"release": "r2", "selector": {"environment": "staging"}, "between_waves": "pause", "pause_s": 0})",
       "pause_s"},
      {R"({"release": "r2", "selector": {"environment": "staging"}, "failure_budget": {"max_failure_percent": 101}})",
       "failure_budget.max_failure_percent"},
      {R"({"release": "r2", "selector": {"environment": "staging"}, "colour": "red"})", "colour"},
      {R"({"release": "r2", "selector": {"environment": "staging", "labels": 3}})", "selector.labels"},
  };
  for (const auto& [body, field] : cases) {
    auto spec = DecodeRolloutSpec(body, Environments());
    ASSERT_FALSE(spec.ok()) << body;
    EXPECT_EQ(spec.error().code, ErrorCode::kInvalidArgument) << body;
    EXPECT_EQ(spec.error().field, field) << body << ": " << spec.error().message;
  }
}

TEST(RolloutRecords, TheSpecAndProgressReadBackAsTheSameValues) {
  auto spec = DecodeRolloutSpec(
      R"({"release": "r9", "selector": {"environment": "production", "isolation_mode": "dedicated",
          "labels": "tier=gold"}, "waves": {"canary_size": 2, "wave_size": 3}, "max_concurrent": 4,
          "failure_budget": {"max_failure_percent": 10}, "between_waves": "pause", "pause_s": 90})",
      Environments());
  ASSERT_TRUE(spec.ok()) << spec.error().message;
  db::RolloutRecord record;
  record.id = "rol_1";
  record.spec_json = json::serialize(RolloutSpecJson(*spec));
  auto back = SpecOf(record);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->release, "r9");
  EXPECT_EQ(back->selector.isolation_mode, core::IsolationMode::kDedicated);
  EXPECT_EQ(back->selector.labels, "tier=gold");
  EXPECT_EQ(back->waves.canary_size, 2);
  EXPECT_EQ(back->waves.wave_size, 3);
  EXPECT_FALSE(back->waves.growth_factor);
  EXPECT_EQ(back->max_concurrent, 4);
  EXPECT_EQ(back->failure_budget.max_failure_percent, 10);
  EXPECT_EQ(back->between_waves, core::BetweenWaves::kPause);
  EXPECT_EQ(back->pause_ms, 90'000);

  auto plan = core::PlanWaves({"e", "d", "c", "b", "a"}, back->waves);
  ASSERT_TRUE(plan.ok());
  auto progress = core::NewRolloutProgress(*plan);
  progress.state = core::RolloutState::kPaused;
  progress.paused_from = core::RolloutState::kRunning;
  progress.failed_deploys = 1;
  progress.targets[0].state = core::TargetState::kSucceeded;
  progress.targets[0].deploy_run_id = "run_a";
  progress.targets[0].deploy_final_state = core::RunState::kVerified;
  progress.targets[0].previous_release = "r8";
  progress.targets[1].state = core::TargetState::kSkipped;
  progress.targets[1].skip_reason = core::SkipReason::kAgentOffline;
  std::vector<db::RolloutTargetRecord> rows;
  for (std::size_t i = 0; i < progress.targets.size(); ++i)
    rows.push_back(TargetRecordOf("rol_1", i, progress.targets[i], 5));
  StoreProgress(progress, *plan, record);
  record.state = std::string(core::ToString(progress.state));
  auto read = ProgressOf(record, rows);
  ASSERT_TRUE(read.ok()) << read.error().message;
  EXPECT_EQ(*read, progress);

  // The JSON: totals and per-wave counts without reading the targets.
  record.plan_json = R"([["a","b"],["c","d","e"]])";
  auto shown = RolloutJson(record, RolloutWait{"provider_pacing", std::nullopt});
  EXPECT_EQ(shown["wave_count"].as_int64(), 2);
  EXPECT_EQ(shown["counts"].as_object()["planned"].as_int64(), 5);
  EXPECT_EQ(shown["counts"].as_object()["succeeded"].as_int64(), 1);
  EXPECT_EQ(shown["counts"].as_object()["skipped"].as_int64(), 1);
  EXPECT_EQ(shown["waves"].as_array()[0].as_object()["size"].as_int64(), 2);
  EXPECT_EQ(shown["allowed_failures"].as_int64(), 0) << "10% of 5, rounded down";
  EXPECT_EQ(shown["paused_from"].as_string(), "running");
  EXPECT_EQ(shown["waiting_for"].as_object()["reason"].as_string(), "provider_pacing");
}

TEST(RolloutRecords, AStoredTextThatDoesNotParseIsAnInternalError) {
  db::RolloutRecord record;
  record.id = "rol_1";
  record.state = "sleeping";
  EXPECT_EQ(ProgressOf(record, {}).error().code, ErrorCode::kInternal);
  record.spec_json = "{";
  EXPECT_EQ(SpecOf(record).error().code, ErrorCode::kInternal);
  record.plan_json = R"([[1]])";
  EXPECT_EQ(PlanOf(record).error().code, ErrorCode::kInternal);
}

TEST(ProviderPacer, ABucketOfOneMinutesRateRefillsOverTime) {
  ProviderPacer pacer({{"github", 6}});
  const std::int64_t t = 1'000'000;
  EXPECT_EQ(pacer.Available("github", t), 6);
  EXPECT_EQ(pacer.Available("other", t), ProviderPacer::kUnlimited);
  EXPECT_TRUE(pacer.TryTake("other", t));
  for (int i = 0; i < 6; ++i) EXPECT_TRUE(pacer.TryTake("github", t));
  EXPECT_FALSE(pacer.TryTake("github", t));
  EXPECT_EQ(pacer.WaitMs("github", t), 10'000) << "6 a minute: one every 10 s";
  EXPECT_FALSE(pacer.TryTake("github", t + 9'999));
  EXPECT_TRUE(pacer.TryTake("github", t + 10'000));
  EXPECT_EQ(pacer.Available("github", t + 10'000 + 600'000), 6) << "never more than a minute's worth";
  EXPECT_EQ(pacer.WaitMs("github", t + 10'000 + 600'000), 0);
}

}  // namespace
}  // namespace storeplane::server
