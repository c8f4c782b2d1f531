// Unit tests of the pure parts of the run commands (`deploy`, `rollback`, `stores provision|
// decommission|migrate-isolation`, `runs list|get|watch`): local validation of releases,
// isolation modes and run states, request paths and bodies, the final/ended-well logic per
// kind, and the rendering of runs. No server, no child processes.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <string>
#include <vector>

#include "cli/runs_commands.h"

namespace storeplane::cli {
namespace {

namespace json = boost::json;

json::object Parse(std::string_view text) { return json::parse(text).as_object(); }

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// --- local validation -----------------------------------------------------------------

TEST(CliRunsParse, ReleasesFollowThePattern) {
  for (const std::string& good : {std::string("r42"), std::string("2025.06.01-1"), std::string("v1.2.3+build_7"),
                                  std::string("A"), std::string(64, 'a')}) {
    EXPECT_TRUE(CheckReleaseArg("--release", good).ok()) << good;
  }
  for (const std::string& bad : {std::string(), std::string("-r1"), std::string(".r1"), std::string("r 1"),
                                 std::string("r1/../x"), std::string("r1\n"), std::string(65, 'a')}) {
    Status checked = CheckReleaseArg("--release", bad);
    ASSERT_FALSE(checked.ok()) << bad;
    EXPECT_EQ(checked.error().code, ErrorCode::kInvalidArgument);
    EXPECT_TRUE(Contains(checked.error().message, "--release")) << checked.error().message;
    EXPECT_TRUE(Contains(checked.error().message, "[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")) << checked.error().message;
    EXPECT_EQ(checked.error().message.find('\n'), std::string::npos);
  }
}

TEST(CliRunsParse, IsolationModesAndRunStatesAreExactNames) {
  EXPECT_EQ(ParseIsolationArg("--to", "isolated").value(), core::IsolationMode::kIsolated);
  EXPECT_EQ(ParseIsolationArg("--to", "dedicated").value(), core::IsolationMode::kDedicated);
  for (const char* bad : {"", "Isolated", "private", "shared "}) {
    auto parsed = ParseIsolationArg("--to", bad);
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_TRUE(Contains(parsed.error().message, "--to: unknown isolation mode")) << parsed.error().message;
    EXPECT_TRUE(Contains(parsed.error().message, "shared, dedicated, isolated")) << parsed.error().message;
  }
  EXPECT_EQ(ParseRunStateArg("--state", "verification_failed").value(), core::RunState::kVerificationFailed);
  EXPECT_EQ(ParseRunStateArg("--state", "pending").value(), core::RunState::kPending);
  for (const char* bad : {"", "done", "Running", "timed-out"}) {
    auto parsed = ParseRunStateArg("--state", bad);
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_TRUE(Contains(parsed.error().message, "--state: unknown run state")) << parsed.error().message;
    EXPECT_TRUE(Contains(parsed.error().message, "verifying")) << "names the states: " << parsed.error().message;
  }
}

// --- requests -------------------------------------------------------------------------

TEST(CliRunsRequest, PathsPerKindAndListingQueries) {
  EXPECT_EQ(RunRequestPath("s1", core::RunKind::kProvision), "/v1/stores/s1/provision");
  EXPECT_EQ(RunRequestPath("s1", core::RunKind::kDecommission), "/v1/stores/s1/decommission");
  EXPECT_EQ(RunRequestPath("s1", core::RunKind::kDeploy), "/v1/stores/s1/deployments");
  EXPECT_EQ(RunRequestPath("s1", core::RunKind::kRollback), "/v1/stores/s1/rollbacks");
  EXPECT_EQ(RunRequestPath("s/1", core::RunKind::kIsolationMigration), "/v1/stores/s%2F1/isolation-migrations");
  EXPECT_EQ(RunPath("run_1"), "/v1/runs/run_1");
  EXPECT_EQ(RunPath("../x"), "/v1/runs/..%2Fx");

  EXPECT_EQ(RunsListPath({}, ""), "/v1/runs");
  RunFilters filters;
  filters.store = "s 1";
  filters.state = "running";
  filters.active_only = true;
  filters.limit = 5;
  EXPECT_EQ(RunsListPath(filters, "run_9"), "/v1/runs?store=s%201&state=running&active=true&limit=5&cursor=run_9");
  RunFilters only_limit;
  only_limit.limit = 2;
  EXPECT_EQ(RunsListPath(only_limit, ""), "/v1/runs?limit=2");
}

TEST(CliRunsRequest, BodiesPerKind) {
  EXPECT_EQ(json::value(RunRequestBody(core::RunKind::kProvision, std::nullopt, std::nullopt)), json::parse("{}"));
  EXPECT_EQ(json::value(RunRequestBody(core::RunKind::kDecommission, std::nullopt, std::nullopt)), json::parse("{}"));
  EXPECT_EQ(json::value(RunRequestBody(core::RunKind::kDeploy, "r42", std::nullopt)),
            json::parse(R"({"release":"r42"})"));
  EXPECT_EQ(json::value(RunRequestBody(core::RunKind::kRollback, std::nullopt, std::nullopt)), json::parse("{}"));
  EXPECT_EQ(json::value(RunRequestBody(core::RunKind::kRollback, "r41", std::nullopt)),
            json::parse(R"({"release":"r41"})"));
  EXPECT_EQ(
      json::value(RunRequestBody(core::RunKind::kIsolationMigration, std::nullopt, core::IsolationMode::kIsolated)),
      json::parse(R"({"isolation_mode":"isolated"})"));
}

TEST(CliRunsRequest, AChangeAnswerIsToldFromARun) {
  EXPECT_TRUE(IsPendingChangeAnswer(Parse(R"({"id":"chg_1","status":"pending","approval_rule":"prod"})")));
  EXPECT_TRUE(IsPendingChangeAnswer(Parse(R"({"id":"chg_1","status":"pending"})")));
  EXPECT_FALSE(IsPendingChangeAnswer(Parse(R"({"id":"run_1","kind":"deploy","state":"pending"})")));
  EXPECT_FALSE(IsPendingChangeAnswer(Parse(R"({"id":7})")));
}

// --- final and ended-well, per kind -----------------------------------------------------

TEST(CliRunsProgress, GatedKindsEndWellOnlyWhenVerified) {
  for (const char* kind : {"deploy", "rollback"}) {
    for (const char* state : {"pending", "triggered", "running", "succeeded", "verifying"}) {
      EXPECT_EQ(ProgressOf(kind, state), RunProgress::kUnfinished) << kind << " " << state;
    }
    EXPECT_EQ(ProgressOf(kind, "verified"), RunProgress::kEndedWell) << kind;
    for (const char* state : {"failed", "cancelled", "timed_out", "verification_failed"}) {
      EXPECT_EQ(ProgressOf(kind, state), RunProgress::kEndedBadly) << kind << " " << state;
    }
  }
}

TEST(CliRunsProgress, UngatedKindsEndWellWhenSucceeded) {
  for (const char* kind : {"provision", "decommission", "isolation_migration"}) {
    for (const char* state : {"pending", "triggered", "running"}) {
      EXPECT_EQ(ProgressOf(kind, state), RunProgress::kUnfinished) << kind << " " << state;
    }
    EXPECT_EQ(ProgressOf(kind, "succeeded"), RunProgress::kEndedWell) << kind;
    for (const char* state : {"failed", "cancelled", "timed_out"}) {
      EXPECT_EQ(ProgressOf(kind, state), RunProgress::kEndedBadly) << kind << " " << state;
    }
  }
}

TEST(CliRunsProgress, UnknownKindsAndStatesAreNotGuessed) {
  EXPECT_EQ(ProgressOf("deploy", "paused"), RunProgress::kUnknown);
  EXPECT_EQ(ProgressOf("teleport", "succeeded"), RunProgress::kUnknown);
  EXPECT_EQ(ProgressOf(Parse(R"({"id":"run_1"})")), RunProgress::kUnknown);
  EXPECT_EQ(ProgressOf(Parse(R"({"id":"run_1","kind":"deploy","state":"verified"})")), RunProgress::kEndedWell);
}

// --- rendering ------------------------------------------------------------------------

constexpr const char* kDeployRun =
    R"({"id":"run_1","store_id":"s1","kind":"deploy","state":"verification_failed","active":false,)"
    R"("release":"r42","previous_release":"r41","target_isolation":null,"provider":"gitlab",)"
    R"("external_id":"7","external_url":"https://ci.example/p/7","requested_by":"alice","reason":null,)"
    R"("detail":"health gate failed:\nrelease r41 reported","created_at":"2025-06-01T12:00:00.000Z",)"
    R"("updated_at":"2025-06-01T12:06:00.000Z","triggered_at":"2025-06-01T12:00:01.000Z",)"
    R"("finished_at":"2025-06-01T12:06:00.000Z","deadline":"2025-06-01T13:00:00.000Z",)"
    R"("gate_opened_at":"2025-06-01T12:01:00.000Z"})";

TEST(CliRunsRender, HeadingsSayWhatTheRunDoes) {
  json::object run = Parse(kDeployRun);
  EXPECT_EQ(RunHeading(run), "run run_1 (deploy of r42 on store s1)");
  EXPECT_EQ(RunLine(run), "run run_1 (deploy of r42 on store s1): verification_failed");
  run["kind"] = "rollback";
  EXPECT_EQ(RunHeading(run), "run run_1 (rollback to r42 on store s1)");
  run["kind"] = "isolation_migration";
  run["target_isolation"] = "isolated";
  EXPECT_EQ(RunHeading(run), "run run_1 (isolation_migration to isolated on store s1)");
  run["kind"] = "provision";
  EXPECT_EQ(RunHeading(run), "run run_1 (provision on store s1)");
}

TEST(CliRunsRender, StateChangeLinesAreTimedAndOneLine) {
  json::object run = Parse(kDeployRun);
  EXPECT_EQ(StateChangeLine(run, false, "x"),
            "2025-06-01T12:06:00.000Z  verification_failed: health gate failed: release r41 reported");
  run["detail"] = nullptr;
  run["state"] = "triggered";
  EXPECT_EQ(StateChangeLine(run, true, "x"), "2025-06-01T12:06:00.000Z  triggered  (https://ci.example/p/7)");
  run.erase("updated_at");
  EXPECT_EQ(StateChangeLine(run, false, "2025-06-01T00:00:00.000Z"), "2025-06-01T00:00:00.000Z  triggered");
}

TEST(CliRunsRender, TableAndDetails) {
  json::array runs{Parse(kDeployRun)};
  const std::string table = RunsTable(runs);
  const auto newline = table.find('\n');
  ASSERT_NE(newline, std::string::npos);
  EXPECT_EQ(table.substr(0, newline).rfind("RUN     STORE   KIND     STATE                 RELEASE   PROVIDER", 0), 0u)
      << table;
  EXPECT_TRUE(Contains(table, "run_1   s1      deploy   verification_failed   r42       gitlab     alice")) << table;
  EXPECT_EQ(RunsTable({}), "RUN   STORE   KIND   STATE   RELEASE   PROVIDER   REQUESTED-BY   CREATED   FINISHED\n");

  const std::string details = RunDetails(Parse(kDeployRun));
  EXPECT_TRUE(Contains(details, "run:               run_1\n")) << details;
  EXPECT_TRUE(Contains(details, "active:            no\n")) << details;
  EXPECT_TRUE(Contains(details, "previous release:  r41\n")) << details;
  EXPECT_TRUE(Contains(details, "target isolation:  <none>\n")) << details;
  EXPECT_TRUE(Contains(details, "external url:      https://ci.example/p/7\n")) << details;
  EXPECT_TRUE(Contains(details, "detail:            health gate failed: release r41 reported\n")) << details;
  EXPECT_TRUE(Contains(details, "gate opened:       2025-06-01T12:01:00.000Z\n")) << details;
  EXPECT_TRUE(Contains(details, "deadline:          2025-06-01T13:00:00.000Z\n")) << details;
}

TEST(CliWindows, BreakGlassBodyPathAndTable) {
  EXPECT_EQ(json::value(RunRequestBody(core::RunKind::kDeploy, "r42", std::nullopt, "INC-1 checkout down")),
            json::parse(R"({"release":"r42","break_glass":{"reason":"INC-1 checkout down"}})"));
  EXPECT_TRUE(CheckBreakGlassArg("INC-1 checkout down").ok());
  EXPECT_FALSE(CheckBreakGlassArg("too short").ok());
  EXPECT_FALSE(CheckBreakGlassArg(std::string(501, 'x')).ok());
  EXPECT_EQ(DeployWindowsPath("", ""), "/v1/deploy-windows");
  EXPECT_EQ(DeployWindowsPath("production", "rollback.request"),
            "/v1/deploy-windows?environment=production&action=rollback.request");
  const std::string answer =
      R"j({"now":"2026-12-24T10:00:00.000Z","action":"deploy.request",)j"
      R"j("environments":[{"environment":"production","open":false,)j"
      R"j("reason":"closed by deny window window/1 (freeze)","windows":["window/1"],)j"
      R"j("next_open_at":"2027-01-03T00:00:00.000Z","closes_at":null}],)j"
      R"j("windows":[{"id":"window/1","kind":"deny","environments":[],"actions":["deploy.request"],)j"
      R"j("schedule":"0 0 20 12 *","duration":"14d","description":"freeze"}]})j";
  const auto table = DeployWindowsTable(Parse(answer));
  EXPECT_TRUE(Contains(table, "Deploy windows for deploy.request at 2026-12-24T10:00:00.000Z\n")) << table;
  EXPECT_TRUE(Contains(table, "production")) << table;
  EXPECT_TRUE(Contains(table, "closed")) << table;
  EXPECT_TRUE(Contains(table, "2027-01-03T00:00:00.000Z")) << table;
  EXPECT_TRUE(Contains(table, "0 0 20 12 *")) << table;
  EXPECT_TRUE(Contains(table, "14d")) << table;
  const auto none =
      DeployWindowsTable(Parse(R"({"now":"x","action":"deploy.request","environments":[],"windows":[]})"));
  EXPECT_TRUE(Contains(none, "No deploy windows are configured.")) << none;
}

}  // namespace
}  // namespace storeplane::cli
