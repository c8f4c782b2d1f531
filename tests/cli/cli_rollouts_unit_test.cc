// Unit tests of the pure parts of `storeplane rollouts`: the create body built from flags and
// its local checks, request paths and command bodies, outcomes by state, and the rendering
// of waves, counts, dry-run plans and watch lines. No server, no child processes.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <functional>
#include <string>
#include <vector>

#include "cli/rollouts_commands.h"
#include "cli/runs_commands.h"

namespace storeplane::cli {
namespace {

namespace json = boost::json;

json::object Parse(std::string_view text) { return json::parse(text).as_object(); }

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

RolloutCreateArgs Minimal() {
  RolloutCreateArgs args;
  args.release = "r2";
  args.environment = "staging";
  args.wave_size = 5;
  return args;
}

TEST(CliRolloutsBody, MinimalFlagsGiveTheRequiredKeysOnly) {
  auto body = RolloutCreateBody(Minimal());
  ASSERT_TRUE(body.ok()) << body.error().message;
  EXPECT_EQ(*body, Parse(R"({"release":"r2","selector":{"environment":"staging"},"waves":{"wave_size":5}})"));
}

TEST(CliRolloutsBody, EveryFlagLandsInItsField) {
  RolloutCreateArgs args = Minimal();
  args.wave_size.reset();
  args.growth_factor = 3.0;
  args.canary = 2;
  args.isolation_mode = "dedicated";
  args.selector = "tier=gold,!legacy";
  args.max_concurrent = 4;
  args.max_failure_percent = 0;
  args.between_waves = "pause";
  args.pause_s = 604800;
  auto body = RolloutCreateBody(args);
  ASSERT_TRUE(body.ok()) << body.error().message;
  EXPECT_EQ(*body, Parse(R"({"release":"r2",
      "selector":{"environment":"staging","isolation_mode":"dedicated","labels":"tier=gold,!legacy"},
      "waves":{"canary_size":2,"growth_factor":3},"max_concurrent":4,"failure_budget":{"max_failure_percent":0},
      "between_waves":"pause","pause_s":604800})"));
  EXPECT_TRUE(body->at("waves").at("growth_factor").is_int64()) << "an integral factor is sent as an integer";

  args.growth_factor = 1.25;
  body = RolloutCreateBody(args);
  ASSERT_TRUE(body.ok());
  EXPECT_EQ(body->at("waves").at("growth_factor").as_double(), 1.25);

  RolloutCreateArgs none = Minimal();
  none.between_waves = "none";
  none.max_failures = 0;
  body = RolloutCreateBody(none);
  ASSERT_TRUE(body.ok());
  EXPECT_EQ(body->at("between_waves"), "none");
  EXPECT_EQ(body->at("failure_budget"), json::parse(R"({"max_failures":0})"));
}

TEST(CliRolloutsBody, BadCombinationsNameTheFlag) {
  struct Case {
    std::function<void(RolloutCreateArgs&)> change;
    std::string message;
  };
  const std::vector<Case> cases = {
      {[](auto& a) { a.growth_factor = 2; }, "--growth-factor and --wave-size exclude each other"},
      {[](auto& a) { a.wave_size.reset(); }, "give --growth-factor F"},
      {[](auto& a) { a.pause_s = 10; }, "--pause-s needs --between-waves pause"},
      {[](auto& a) { a.between_waves = "pause"; }, "--between-waves pause needs --pause-s"},
      {[](auto& a) {
         a.between_waves = "pause";
         a.pause_s = 0;
       },
       "--pause-s must be 1 to 604800"},
      {[](auto& a) { a.between_waves = "later"; }, "--between-waves: one of none, pause, approval"},
      {[](auto& a) {
         a.max_failures = 1;
         a.max_failure_percent = 5;
       },
       "--max-failures and --max-failure-percent exclude each other"},
      {[](auto& a) { a.max_failures = -1; }, "--max-failures must be 0 or more"},
      {[](auto& a) { a.max_failure_percent = 101; }, "--max-failure-percent must be 0 to 100"},
      {[](auto& a) { a.max_concurrent = 10001; }, "--max-concurrent must be 1 to 10000"},
      {[](auto& a) { a.canary = 0; }, "--canary must be at least 1"},
      {[](auto& a) {
         a.wave_size.reset();
         a.growth_factor = 100.5;
       },
       "--growth-factor must be more than 1 and at most 100"},
      {[](auto& a) { a.release = "r 2"; }, "--release \"r 2\""},
      {[](auto& a) { a.isolation_mode = "private"; }, "--isolation-mode: unknown isolation mode"},
      {[](auto& a) { a.selector = "a in (b"; }, "--selector: "},
      {[](auto& a) {
         a.dry_run = true;
         a.wait = true;
       },
       "--dry-run creates nothing to --wait for"},
  };
  for (const auto& c : cases) {
    RolloutCreateArgs args = Minimal();
    c.change(args);
    auto body = RolloutCreateBody(args);
    ASSERT_FALSE(body.ok()) << c.message;
    EXPECT_EQ(body.error().code, ErrorCode::kInvalidArgument);
    EXPECT_TRUE(Contains(body.error().message, c.message)) << body.error().message;
    EXPECT_EQ(body.error().message.find('\n'), std::string::npos);
  }
}

TEST(CliRolloutsRequest, PathsAndCommandBodies) {
  EXPECT_EQ(RolloutsCreatePath(false), "/v1/rollouts");
  EXPECT_EQ(RolloutsCreatePath(true), "/v1/rollouts?dry_run=true");
  EXPECT_EQ(RolloutsListPath({}, ""), "/v1/rollouts");
  RolloutFilters filters{"staging", "running", true, 5};
  EXPECT_EQ(RolloutsListPath(filters, "rol_9"),
            "/v1/rollouts?environment=staging&state=running&active=true&limit=5&cursor=rol_9");
  EXPECT_EQ(RolloutPath("rol_1"), "/v1/rollouts/rol_1");
  EXPECT_EQ(RolloutPath("../x"), "/v1/rollouts/..%2Fx");
  EXPECT_EQ(RolloutTargetsPath("rol_1", {}, ""), "/v1/rollouts/rol_1/targets");
  EXPECT_EQ(RolloutTargetsPath("rol_1", {0, "failed"}, "100"),
            "/v1/rollouts/rol_1/targets?wave=0&state=failed&cursor=100");
  EXPECT_EQ(RolloutCommandPath("rol_1", "approve"), "/v1/rollouts/rol_1/approve");
  EXPECT_EQ(RolloutCommandBody("pause", true, 3), json::object{});
  EXPECT_EQ(RolloutCommandBody("resume", false, 3), json::object{});
  EXPECT_EQ(RolloutCommandBody("abort", false, 3), Parse(R"({"rollback":false})"));
  EXPECT_EQ(RolloutCommandBody("abort", true, 3), Parse(R"({"rollback":true})"));
  EXPECT_EQ(RolloutCommandBody("approve", false, 3), Parse(R"({"wave":3})"));
}

TEST(CliRolloutsRequest, RunsListFiltersByRollout) {
  RunFilters filters;
  filters.rollout = "rol_1";
  filters.active_only = true;
  EXPECT_EQ(RunsListPath(filters, ""), "/v1/runs?rollout=rol_1&active=true");
}

TEST(CliRolloutsParse, StatesAreExactNames) {
  EXPECT_TRUE(CheckRolloutStateArg("--state", "waiting_between_waves").ok());
  EXPECT_TRUE(CheckTargetStateArg("--state", "rollback_failed").ok());
  auto bad = CheckRolloutStateArg("--state", "done");
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(Contains(bad.error().message, "--state: unknown rollout state \"done\"")) << bad.error().message;
  EXPECT_TRUE(Contains(bad.error().message, "awaiting_approval")) << bad.error().message;
  auto bad_target = CheckTargetStateArg("--state", "running");
  ASSERT_FALSE(bad_target.ok());
  EXPECT_TRUE(Contains(bad_target.error().message, "not_rolled_back")) << bad_target.error().message;
}

TEST(CliRolloutsOutcome, OnlyFinalStatesEnd) {
  for (const char* s : {"pending", "running", "waiting_between_waves", "awaiting_approval", "paused", "halting",
                        "aborting", "rolling_back"}) {
    EXPECT_EQ(OutcomeOf(Parse(std::string(R"({"state":")") + s + "\"}")), RolloutOutcome::kUnfinished) << s;
  }
  EXPECT_EQ(OutcomeOf(Parse(R"({"state":"succeeded"})")), RolloutOutcome::kSucceeded);
  EXPECT_EQ(OutcomeOf(Parse(R"({"state":"failed"})")), RolloutOutcome::kEndedBadly);
  EXPECT_EQ(OutcomeOf(Parse(R"({"state":"aborted"})")), RolloutOutcome::kEndedBadly);
  EXPECT_EQ(OutcomeOf(Parse(R"({"state":"exploded"})")), RolloutOutcome::kUnknown);
  EXPECT_EQ(OutcomeOf(Parse(R"({})")), RolloutOutcome::kUnknown);
}

TEST(CliRolloutsRender, WavesCountsAndPlans) {
  EXPECT_EQ(WaveName(0, 4), "canary");
  EXPECT_EQ(WaveName(1, 4), "wave 1/3");
  EXPECT_EQ(WaveName(3, 4), "wave 3/3");
  EXPECT_EQ(CountsText(Parse(R"({"planned":3,"succeeded":1,"failed":1,"in_flight":0,"waiting":0,"skipped":0,
                                 "rolled_back":1,"rollback_failed":0,"not_rolled_back":0,"not_started":0})")),
            "planned 3  succeeded 1  failed 1  skipped 0  in-flight 0  waiting 0  rolled-back 1");

  const json::object plan = Parse(R"({"wave_count":3,"waves":[{"index":0,"size":1},{"index":1,"size":2},
                                     {"index":2,"size":4}]})");
  EXPECT_EQ(PlannedWavesText(plan, {{"a"}, {"b", "c"}, {"d", "e", "f", "g"}}, 3),
            "  canary  1 store: a\n  wave 1/2  2 stores: b c\n  wave 2/2  4 stores: d e f ... and 1 more\n");
  EXPECT_EQ(PlannedWavesText(plan, {}, 3),
            "  canary  1 store\n  wave 1/2  2 stores\n  wave 2/2  4 stores\n"
            "  (store ids not shown: the planned stores could not be listed)\n");
}

TEST(CliRolloutsRender, ProgressShowsWhatChangedAndWhy) {
  const json::object paused = Parse(R"({"state":"paused","paused_from":"waiting_between_waves","current_wave":1,
      "wave_count":3,"counts":{"planned":3,"succeeded":1},"updated_at":"2026-12-05T07:00:00.000Z"})");
  EXPECT_EQ(
      ProgressLine(paused, "x"),
      "2026-12-05T07:00:00.000Z  paused (from waiting_between_waves)  wave 1/2  planned 3  succeeded 1  failed 0  "
      "skipped 0  in-flight 0  waiting 0");
  const json::object waiting = Parse(R"({"state":"running","current_wave":0,"wave_count":3,"counts":{},
      "waiting_for":{"reason":"window_closed","until":"2026-12-07T08:00:00.000Z"}})");
  EXPECT_TRUE(Contains(ProgressText(waiting), "waiting for window_closed until 2026-12-07T08:00:00.000Z"))
      << ProgressText(waiting);
  EXPECT_EQ(ProgressLine(waiting, "T").rfind("T  running  canary", 0), 0u);
  const json::object approval =
      Parse(R"({"state":"awaiting_approval","current_wave":0,"wave_count":3,"awaiting_wave":1,"counts":{}})");
  EXPECT_TRUE(Contains(ProgressText(approval), "approve wave 1")) << ProgressText(approval);
  EXPECT_TRUE(Contains(RolloutDetails(approval), "storeplane rollouts approve <none> --wave 1"))
      << RolloutDetails(approval);
  EXPECT_EQ(ProgressText(Parse(R"({"state":"running\nx"})")).find('\n'), std::string::npos);
}

TEST(CliRolloutsRender, CommandAcceptedLines) {
  const json::object answer = Parse(R"({"rollout":{"id":"rol_1","state":"awaiting_approval","current_wave":0,
      "wave_count":2},"command":{"kind":"approve_wave","wave":1,"rollback":false}})");
  EXPECT_EQ(CommandAcceptedLine(answer, "approve"),
            "queued approve of wave 1 for rollout rol_1 (now awaiting_approval, canary); it applies within about a "
            "second");
}

}  // namespace
}  // namespace storeplane::cli
