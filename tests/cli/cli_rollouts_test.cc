// End-to-end tests of `storeplane rollouts create|list|get|pause|resume|abort|approve|watch`:
// the real binary run as a child process against a scripted fake API (FakeApi) that plays
// the server's side of docs/openapi.yaml: rollouts created (201), held for approval (202
// with a change), planned (dry run), listed and shown with their targets, commands queued
// (202) or refused (409), and the event stream (text/event-stream) that `watch` follows,
// scripted connection by connection. Assertions are on exit codes, stdout, the one-line
// stderr and the requests sent.
#include <boost/json.hpp>

#include <gtest/gtest.h>
#include <algorithm>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "cli_test_support.h"

namespace storeplane {
namespace {

using storeplane::testing::CliRun;
using storeplane::testing::FakeApi;
using storeplane::testing::Lines;
using storeplane::testing::OneErrorLine;
using storeplane::testing::RunCli;
namespace json = boost::json;

FakeApi::Reply Json(int status, std::string body) {
  return FakeApi::Reply{status, {{"Content-Type", "application/json"}}, std::move(body)};
}

FakeApi::Reply Problem(int status, const std::string& kind, const std::string& detail) {
  return FakeApi::Reply{status,
                        {{"Content-Type", "application/problem+json"}},
                        R"({"type":"urn:storeplane:problem:)" + kind + R"(","title":"Refused","status":)" +
                            std::to_string(status) + R"(,"detail":")" + detail + R"(","request_id":"rq-1"})"};
}

std::vector<std::string> Targets(FakeApi& api) {
  std::vector<std::string> targets;
  for (const auto& request : api.requests()) targets.push_back(request.method + " " + request.target);
  return targets;
}

// A rollout of 7 stores in three waves (1, 2, 4) as the API shows it. The stores are, in
// plan order, `succeeded` succeeded, then `failed` failed, then `in_flight` in flight, the
// rest waiting; `version` also makes updated_at differ.
struct Snap {
  std::string state = "running";
  int wave = 0;
  int succeeded = 0;
  int failed = 0;
  int in_flight = 0;
  int version = 1;
  std::string ending;
};

json::object Counts(int planned, int succeeded, int failed, int in_flight) {
  return {{"planned", planned},     {"waiting", planned - succeeded - failed - in_flight},
          {"in_flight", in_flight}, {"succeeded", succeeded},
          {"failed", failed},       {"skipped", 0},
          {"rolled_back", 0},       {"rollback_failed", 0},
          {"not_rolled_back", 0},   {"not_started", 0}};
}

json::object RolloutObject(const Snap& s, const std::string& id = "rol_1") {
  const std::vector<int> sizes = {1, 2, 4};
  json::array waves;
  int first = 0;
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    const int begin = first;
    const int end = first + sizes[i];
    auto slice = [&](int from, int to) { return std::max(0, std::min(end, to) - std::max(begin, from)); };
    const int ok = slice(0, s.succeeded);
    const int bad = slice(s.succeeded, s.succeeded + s.failed);
    const int flying = slice(s.succeeded + s.failed, s.succeeded + s.failed + s.in_flight);
    waves.push_back(json::object{{"index", i}, {"size", sizes[i]}, {"counts", Counts(sizes[i], ok, bad, flying)}});
    first = end;
  }
  const bool final_state = s.state == "succeeded" || s.state == "failed" || s.state == "aborted";
  return json::object{
      {"id", id},
      {"release", "r2"},
      {"environment", "staging"},
      {"spec",
       {{"release", "r2"},
        {"selector", {{"environment", "staging"}, {"isolation_mode", nullptr}, {"labels", "tier=gold"}}},
        {"waves", {{"canary_size", 1}, {"growth_factor", 2}, {"wave_size", nullptr}}},
        {"max_concurrent", 2},
        {"failure_budget", {{"max_failures", 0}, {"max_failure_percent", nullptr}}},
        {"between_waves", "none"},
        {"pause_s", nullptr}}},
      {"state", s.state},
      {"paused_from", nullptr},
      {"current_wave", s.wave},
      {"wave_count", 3},
      {"resume_at", nullptr},
      {"awaiting_wave", nullptr},
      {"ending", s.ending.empty() ? json::value(nullptr) : json::value(s.ending)},
      {"failed_deploys", s.failed},
      {"allowed_failures", 0},
      {"counts", Counts(7, s.succeeded, s.failed, s.in_flight)},
      {"waves", waves},
      {"waiting_for", nullptr},
      {"created_by", "alice"},
      {"created_at", "2026-12-05T07:00:00.000Z"},
      {"updated_at", "2026-12-05T07:00:0" + std::to_string(s.version % 10) + ".000Z"},
      {"finished_at", final_state ? json::value("2026-12-05T07:00:09.000Z") : json::value(nullptr)},
      {"version", s.version}};
}

std::string RolloutJson(const Snap& s, const std::string& id = "rol_1") {
  return json::serialize(RolloutObject(s, id));
}

std::string Event(const std::string& id, const std::string& type, const json::object& rollout) {
  json::object data{
      {"id", id}, {"type", type}, {"at", "2026-12-05T07:00:00.000Z"}, {"store_id", ""}, {"rollout", rollout}};
  return "id: " + id + "\nevent: " + type + "\ndata: " + json::serialize(data) + "\n\n";
}

// The server side of `rollouts watch rol_1`: GET /v1/rollouts/rol_1 answers what the stream
// has delivered before the current connection; each connection to /v1/events sends the
// next script entry (a list of rollouts, each as a rollout.updated event), then ends.
class ScriptedStream {
 public:
  ScriptedStream(Snap initial, std::vector<std::vector<Snap>> connections)
      : published_(std::move(initial)), connections_(std::move(connections)) {}

  FakeApi::Reply operator()(const FakeApi::Request& request) {
    std::lock_guard<std::mutex> lock(mu_);
    if (request.method == "GET" && request.target == "/v1/rollouts/rol_1") return Json(200, RolloutJson(published_));
    if (request.method == "GET" && request.target == "/v1/events?types=rollout") {
      if (next_ >= connections_.size()) return Problem(503, "unavailable", "script over");
      if (next_ > 0 && !connections_[next_ - 1].empty()) published_ = connections_[next_ - 1].back();
      std::string body = "retry: 20\n\n";
      // Another rollout's event first: ignored.
      body += Event("e-" + std::to_string(++seq_), "rollout.updated", RolloutObject(Snap{}, "rol_2"));
      for (const Snap& snap : connections_[next_]) {
        body += Event("e-" + std::to_string(++seq_), "rollout.updated", RolloutObject(snap));
      }
      ++next_;
      return FakeApi::Reply{200, {{"Content-Type", "text/event-stream"}}, body};
    }
    return Problem(404, "not-found", "no route");
  }

 private:
  std::mutex mu_;
  Snap published_;
  std::vector<std::vector<Snap>> connections_;
  std::size_t next_ = 0;
  int seq_ = 0;
};

// ====================================================================================
// Local checks: nothing is sent.
// ====================================================================================

TEST(CliRolloutsLocal, HelpWorksForEveryCommand) {
  for (const char* sub : {"create", "list", "get", "pause", "resume", "abort", "approve", "watch"}) {
    CliRun run = RunCli({"rollouts", sub, "--help"});
    EXPECT_EQ(run.exit_code, 0) << run;
    EXPECT_NE(run.out.find("Usage: storeplane rollouts " + std::string(sub)), std::string::npos) << run;
  }
  CliRun root = RunCli({"--help"});
  EXPECT_NE(root.out.find("rollouts watch and rollouts create --wait: the rollout ended failed or aborted"),
            std::string::npos)
      << root;
}

TEST(CliRolloutsLocal, BadFlagCombinationsAreRefusedBeforeAnyRequest) {
  FakeApi api([](const FakeApi::Request&) { return Json(201, RolloutJson(Snap{"pending"})); });
  const std::vector<std::string> base = {"rollouts", "create", "--release", "r2", "--environment", "staging"};
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"--growth-factor", "2", "--wave-size", "3"}, "--growth-factor and --wave-size exclude each other"},
      {{}, "give --growth-factor F"},
      {{"--wave-size", "3", "--pause-s", "60"}, "--pause-s needs --between-waves pause"},
      {{"--wave-size", "3", "--between-waves", "approval", "--pause-s", "60"}, "--pause-s needs --between-waves pause"},
      {{"--wave-size", "3", "--between-waves", "pause"}, "--between-waves pause needs --pause-s"},
      {{"--wave-size", "3", "--between-waves", "pause", "--pause-s", "0"}, "--pause-s must be 1 to 604800"},
      {{"--wave-size", "3", "--between-waves", "pause", "--pause-s", "604801"}, "--pause-s must be 1 to 604800"},
      {{"--wave-size", "3", "--max-failures", "1", "--max-failure-percent", "10"},
       "--max-failures and --max-failure-percent exclude each other"},
      {{"--wave-size", "3", "--max-failure-percent", "101"}, "--max-failure-percent must be 0 to 100"},
      {{"--growth-factor", "1"}, "--growth-factor must be more than 1"},
      {{"--wave-size", "0"}, "--wave-size must be at least 1"},
      {{"--wave-size", "3", "--canary", "0"}, "--canary must be at least 1"},
      {{"--wave-size", "3", "--max-concurrent", "0"}, "--max-concurrent must be 1 to 10000"},
      {{"--wave-size", "3", "--selector", "tier in (gold"}, "--selector: "},
      {{"--wave-size", "3", "--dry-run", "--wait"}, "--dry-run creates nothing to --wait for"},
      {{"--wave-size", "3", "--isolation-mode", "private"}, "--isolation-mode"},
      {{"--wave-size", "3", "--between-waves", "sometimes"}, "--between-waves"},
  };
  for (const auto& c : cases) {
    auto args = base;
    args.insert(args.end(), c.args.begin(), c.args.end());
    args.insert(args.end(), {"--server", api.url(), "--token", "t0k"});
    CliRun run = RunCli(args);
    EXPECT_EQ(run.exit_code, 2) << run;
    EXPECT_TRUE(OneErrorLine(run));
    EXPECT_NE(run.err.find(c.message), std::string::npos) << "expected \"" << c.message << "\": " << run;
    EXPECT_EQ(run.out, "") << run;
  }
  const std::vector<std::vector<std::string>> others = {
      {"rollouts", "create", "--release", "../x", "--environment", "staging", "--wave-size", "3"},
      {"rollouts", "create", "--environment", "staging", "--wave-size", "3"},  // no release
      {"rollouts", "list", "--state", "done"},
      {"rollouts", "get", "rol_1", "--wave", "1"},  // --wave needs --targets
      {"rollouts", "get", "rol_1", "--targets", "--state", "deployed"},
      {"rollouts", "approve", "rol_1"},  // no --wave
      {"rollouts", "approve", "rol_1", "--wave", "-1"},
      {"rollouts", "pause"},  // no id
  };
  for (auto args : others) {
    args.insert(args.end(), {"--server", api.url()});
    CliRun run = RunCli(args);
    EXPECT_EQ(run.exit_code, 2) << run;
    EXPECT_TRUE(OneErrorLine(run));
  }
  EXPECT_TRUE(api.requests().empty()) << api.requests().size() << " requests were sent";
}

// ====================================================================================
// create
// ====================================================================================

TEST(CliRolloutsFakeServer, CreateSendsExactlyTheFlagsAndPrintsTheRollout) {
  FakeApi api([](const FakeApi::Request& request) {
    if (request.method == "POST" && request.target == "/v1/rollouts") {
      return FakeApi::Reply{201,
                            {{"Content-Type", "application/json"}, {"Location", "/v1/rollouts/rol_1"}},
                            RolloutJson(Snap{"pending"})};
    }
    return Problem(404, "not-found", "no route");
  });
  CliRun run = RunCli({"rollouts",
                       "create",
                       "--release",
                       "r2",
                       "--environment",
                       "staging",
                       "--isolation-mode",
                       "shared",
                       "--selector",
                       "tier=gold,region in (eu)",
                       "--canary",
                       "2",
                       "--growth-factor",
                       "2",
                       "--max-concurrent",
                       "5",
                       "--max-failure-percent",
                       "10",
                       "--between-waves",
                       "pause",
                       "--pause-s",
                       "600",
                       "--idempotency-key",
                       "k-1",
                       "--server",
                       api.url(),
                       "--token",
                       "t0k"});
  EXPECT_EQ(run.exit_code, 0) << run;
  EXPECT_EQ(run.err, "") << run;
  const auto lines = Lines(run.out);
  ASSERT_GE(lines.size(), 4u) << run;
  EXPECT_EQ(lines[0], "rollout:         rol_1") << run;
  EXPECT_EQ(lines[1], "state:           pending") << run;
  EXPECT_NE(run.out.find("waves:           3 (canary 1, then growth factor 2)\n"), std::string::npos) << run;
  EXPECT_NE(run.out.find("counts:          planned 7  succeeded 0  failed 0  skipped 0  in-flight 0  waiting 7\n"),
            std::string::npos)
      << run;
  EXPECT_NE(run.out.find("  canary    size 1  succeeded 0  failed 0  skipped 0  in-flight 0  waiting 1  <- current\n"),
            std::string::npos)
      << run;
  EXPECT_NE(run.out.find("  wave 2/2  size 4  succeeded 0"), std::string::npos) << run;

  CliRun other = RunCli({"rollouts", "create", "--release", "r2", "--environment", "staging", "--wave-size", "5",
                         "--max-failures", "1", "--between-waves", "approval", "-o", "json", "--server", api.url()});
  EXPECT_EQ(other.exit_code, 0) << other;
  EXPECT_EQ(json::parse(other.out).at("id"), "rol_1") << other;
  CliRun fractional = RunCli({"rollouts", "create", "--release", "r2", "--environment", "staging", "--growth-factor",
                              "1.5", "--server", api.url()});
  EXPECT_EQ(fractional.exit_code, 0) << fractional;

  auto requests = api.requests();
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[0].headers["authorization"], "Bearer t0k");
  EXPECT_EQ(requests[0].headers["content-type"], "application/json");
  EXPECT_EQ(requests[0].headers["idempotency-key"], "k-1");
  EXPECT_EQ(json::parse(requests[0].body), json::parse(R"j({"release":"r2",
      "selector":{"environment":"staging","isolation_mode":"shared","labels":"tier=gold,region in (eu)"},
      "waves":{"canary_size":2,"growth_factor":2},"max_concurrent":5,"failure_budget":{"max_failure_percent":10},
      "between_waves":"pause","pause_s":600})j"));
  EXPECT_EQ(json::parse(requests[1].body), json::parse(R"({"release":"r2","selector":{"environment":"staging"},
      "waves":{"wave_size":5},"failure_budget":{"max_failures":1},"between_waves":"approval"})"));
  EXPECT_EQ(json::parse(requests[2].body),
            json::parse(R"({"release":"r2","selector":{"environment":"staging"},"waves":{"growth_factor":1.5}})"));
}

TEST(CliRolloutsFakeServer, AnApprovalRequiredAnswerPrintsTheChangeAndExits0) {
  FakeApi api([](const FakeApi::Request& request) {
    if (request.method == "POST" && request.target == "/v1/rollouts") {
      return FakeApi::Reply{202,
                            {{"Content-Type", "application/json"}, {"Location", "/v1/changes/chg_1"}},
                            R"({"id":"chg_1","action":"rollout.create","target":"environment/production",)"
                            R"("environment":"production","requester":"alice","approval_rule":"approval/1",)"
                            R"("approvals_needed":1,"approvers":[],"status":"pending","outcome":"",)"
                            R"("created_at":"2026-12-05T07:00:00.000Z","expires_at":"2026-12-06T07:00:00.000Z",)"
                            R"("version":1,"request":{"release":"r2"}})"};
    }
    return Problem(404, "not-found", "no route");
  });
  CliRun run = RunCli({"rollouts", "create", "--release", "r2", "--environment", "production", "--wave-size", "5",
                       "--wait", "--server", api.url()});
  EXPECT_EQ(run.exit_code, 0) << run;
  EXPECT_TRUE(OneErrorLine(run));
  EXPECT_NE(run.err.find("approval required: change chg_1 is pending (1 approval needed)"), std::string::npos) << run;
  EXPECT_NE(run.out.find("chg_1"), std::string::npos) << run;
  EXPECT_EQ(Targets(api), (std::vector<std::string>{"POST /v1/rollouts"})) << "no waiting for a change";
}

TEST(CliRolloutsFakeServer, DryRunPrintsThePlannedWavesWithTheirStores) {
  // 13 stores (and a tombstone) over two pages; a canary of 1, then waves of 12.
  FakeApi api([](const FakeApi::Request& request) {
    if (request.method == "POST" && request.target == "/v1/rollouts?dry_run=true") {
      json::object rollout = RolloutObject(Snap{"pending"});
      rollout["id"] = nullptr;
      rollout["dry_run"] = true;
      rollout["wave_count"] = 2;
      rollout["waves"] = json::array{json::object{{"index", 0}, {"size", 1}, {"counts", Counts(1, 0, 0, 0)}},
                                     json::object{{"index", 1}, {"size", 12}, {"counts", Counts(12, 0, 0, 0)}}};
      return Json(200, json::serialize(rollout));
    }
    auto store = [](const std::string& id, const std::string& state) {
      return json::object{{"id", id}, {"environment", "staging"}, {"state", state}};
    };
    if (request.target == "/v1/stores?environment=staging&selector=tier%3Dgold") {
      json::array items;
      for (int i = 13; i >= 7; --i)
        items.push_back(store("s" + std::string(i < 10 ? "0" : "") + std::to_string(i), "active"));
      items.push_back(store("s00", "decommissioned"));
      return Json(200, json::serialize(json::object{{"items", items}, {"next_cursor", "p2"}}));
    }
    if (request.target == "/v1/stores?environment=staging&selector=tier%3Dgold&cursor=p2") {
      json::array items;
      for (int i = 6; i >= 1; --i) items.push_back(store("s0" + std::to_string(i), "active"));
      return Json(200, json::serialize(json::object{{"items", items}, {"next_cursor", nullptr}}));
    }
    return Problem(403, "forbidden", "not allowed to perform store.read");
  });
  CliRun run = RunCli({"rollouts", "create", "--release", "r2", "--environment", "staging", "--selector", "tier=gold",
                       "--wave-size", "12", "--dry-run", "--server", api.url()});
  EXPECT_EQ(run.exit_code, 0) << run;
  EXPECT_EQ(run.err, "") << run;
  EXPECT_EQ(Lines(run.out).front(), "Dry run: nothing was created.") << run;
  EXPECT_NE(run.out.find("Planned waves:\n"
                         "  canary  1 store: s01\n"
                         "  wave 1/1  12 stores: s02 s03 s04 s05 s06 s07 s08 s09 s10 s11 ... and 2 more\n"),
            std::string::npos)
      << run;

  // Without the stores: the sizes only, and still exit 0.
  CliRun sizes = RunCli({"rollouts", "create", "--release", "r2", "--environment", "staging", "--selector", "tier=beta",
                         "--wave-size", "12", "--dry-run", "--server", api.url()});
  EXPECT_EQ(sizes.exit_code, 0) << sizes;
  EXPECT_EQ(sizes.err, "") << sizes;
  EXPECT_NE(sizes.out.find("  canary  1 store\n  wave 1/1  12 stores\n  (store ids not shown"), std::string::npos)
      << sizes;
}

// ====================================================================================
// list, get, commands
// ====================================================================================

TEST(CliRolloutsFakeServer, ListPrintsATableOrTheJson) {
  FakeApi api([](const FakeApi::Request& request) {
    if (request.target == "/v1/rollouts?environment=staging&active=true&limit=2") {
      return Json(200, R"({"items":[)" + RolloutJson(Snap{"running", 1, 2, 0, 1, 4}, "rol_2") + "," +
                           RolloutJson(Snap{"succeeded", 2, 7, 0, 0, 9}, "rol_1") + R"(],"next_cursor":"rol_1"})");
    }
    return Problem(404, "not-found", "no route");
  });
  CliRun run =
      RunCli({"rollouts", "list", "--environment", "staging", "--active", "--limit", "2", "--server", api.url()});
  EXPECT_EQ(run.exit_code, 0) << run;
  const auto lines = Lines(run.out);
  ASSERT_EQ(lines.size(), 3u) << run;
  EXPECT_EQ(
      lines[0].rfind("ROLLOUT   RELEASE   ENVIRONMENT   STATE       WAVE       SUCCEEDED   FAILED   CREATED-BY", 0), 0u)
      << run;
  EXPECT_EQ(lines[1].rfind("rol_2     r2        staging       running     wave 1/2   2/7         0        alice", 0),
            0u)
      << run;
  EXPECT_EQ(lines[2].rfind("rol_1     r2        staging       succeeded   wave 2/2   7/7         0        alice", 0),
            0u)
      << run;
  EXPECT_NE(run.err.find("more rollouts: use --all, or --cursor rol_1"), std::string::npos) << run;

  CliRun as_json = RunCli({"rollouts", "list", "--environment", "staging", "--active", "--limit", "2", "-o", "json",
                           "--server", api.url()});
  EXPECT_EQ(as_json.exit_code, 0) << as_json;
  EXPECT_EQ(json::parse(as_json.out).at("items").as_array().size(), 2u);
}

TEST(CliRolloutsFakeServer, GetShowsWaveProgressAndPagesThroughTargets) {
  FakeApi api([](const FakeApi::Request& request) {
    if (request.target == "/v1/rollouts/rol_1") return Json(200, RolloutJson(Snap{"running", 1, 2, 0, 1, 4}));
    auto target = [](const std::string& store, int position, int wave, const std::string& state) {
      return json::object{{"store_id", store},
                          {"position", position},
                          {"wave", wave},
                          {"state", state},
                          {"skip_reason", nullptr},
                          {"deploy_run_id", state == "waiting" ? json::value(nullptr) : json::value("run_" + store)},
                          {"deploy_final_state", state == "succeeded" ? json::value("verified") : json::value(nullptr)},
                          {"previous_release", "r1"},
                          {"rollback_run_id", nullptr},
                          {"rollback_final_state", nullptr},
                          {"updated_at", "2026-12-05T07:00:04.000Z"}};
    };
    if (request.target == "/v1/rollouts/rol_1/targets?wave=1") {
      return Json(200, json::serialize(json::object{{"items", json::array{target("shop-b", 1, 1, "succeeded")}},
                                                    {"next_cursor", "1"}}));
    }
    if (request.target == "/v1/rollouts/rol_1/targets?wave=1&cursor=1") {
      return Json(200, json::serialize(json::object{{"items", json::array{target("shop-c", 2, 1, "deploying")}},
                                                    {"next_cursor", nullptr}}));
    }
    return Problem(404, "not-found", "no rollout 'rol_9'");
  });
  CliRun get = RunCli({"rollouts", "get", "rol_1", "--server", api.url()});
  EXPECT_EQ(get.exit_code, 0) << get;
  EXPECT_NE(get.out.find("current wave:    wave 1/2\n"), std::string::npos) << get;
  EXPECT_NE(get.out.find("  canary    size 1  succeeded 1  failed 0  skipped 0  in-flight 0  waiting 0\n"),
            std::string::npos)
      << get;
  EXPECT_NE(get.out.find("  wave 1/2  size 2  succeeded 1  failed 0  skipped 0  in-flight 1  waiting 0  <- current\n"),
            std::string::npos)
      << get;
  EXPECT_NE(get.out.find("  wave 2/2  size 4  succeeded 0  failed 0  skipped 0  in-flight 0  waiting 4\n"),
            std::string::npos)
      << get;

  CliRun targets = RunCli({"rollouts", "get", "rol_1", "--targets", "--wave", "1", "--server", api.url()});
  EXPECT_EQ(targets.exit_code, 0) << targets;
  EXPECT_NE(targets.out.find("STORE    WAVE   STATE       SKIP-REASON   DEPLOY-RUN   DEPLOY-RESULT   PREVIOUS"),
            std::string::npos)
      << targets;
  EXPECT_NE(targets.out.find("shop-b   1      succeeded   <none>        run_shop-b   verified        r1"),
            std::string::npos)
      << targets;
  EXPECT_NE(targets.out.find("shop-c   1      deploying   <none>        run_shop-c   <none>          r1"),
            std::string::npos)
      << targets;

  CliRun as_json =
      RunCli({"rollouts", "get", "rol_1", "--targets", "--wave", "1", "-o", "json", "--server", api.url()});
  EXPECT_EQ(as_json.exit_code, 0) << as_json;
  json::value printed = json::parse(as_json.out);
  EXPECT_EQ(printed.at("rollout").at("id"), "rol_1");
  EXPECT_EQ(printed.at("targets").as_array().size(), 2u);

  CliRun missing = RunCli({"rollouts", "get", "rol_9", "--server", api.url()});
  EXPECT_EQ(missing.exit_code, 3) << missing;
  EXPECT_TRUE(OneErrorLine(missing));
}

TEST(CliRolloutsFakeServer, CommandsPostTheirBodyAndPrintWhatWasQueued) {
  FakeApi api([](const FakeApi::Request& request) {
    const std::string prefix = "/v1/rollouts/rol_1/";
    if (request.method != "POST" || request.target.rfind(prefix, 0) != 0) return Problem(404, "not-found", "no route");
    const std::string command = request.target.substr(prefix.size());
    json::object sent = json::parse(request.body.empty() ? "{}" : request.body).as_object();
    json::object queued{{"kind", command == "approve" ? "approve_wave" : command},
                        {"wave", sent.contains("wave") ? sent["wave"] : json::value(0)},
                        {"rollback", sent.contains("rollback") ? sent["rollback"] : json::value(false)}};
    return Json(202, json::serialize(json::object{{"rollout", RolloutObject(Snap{"running", 1, 2, 0, 1, 4})},
                                                  {"command", queued}}));
  });
  CliRun pause = RunCli({"rollouts", "pause", "rol_1", "--server", api.url()});
  EXPECT_EQ(pause.exit_code, 0) << pause;
  EXPECT_EQ(pause.out, "queued pause for rollout rol_1 (now running, wave 1/2); it applies within about a second\n");
  CliRun resume = RunCli({"rollouts", "resume", "rol_1", "--server", api.url()});
  EXPECT_EQ(resume.exit_code, 0) << resume;
  CliRun abort = RunCli({"rollouts", "abort", "rol_1", "--rollback", "--server", api.url()});
  EXPECT_EQ(abort.exit_code, 0) << abort;
  EXPECT_NE(abort.out.find("queued abort with rollback of the current wave for rollout rol_1"), std::string::npos)
      << abort;
  CliRun approve = RunCli({"rollouts", "approve", "rol_1", "--wave", "2", "--server", api.url()});
  EXPECT_EQ(approve.exit_code, 0) << approve;
  EXPECT_NE(approve.out.find("queued approve of wave 2 for rollout rol_1"), std::string::npos) << approve;
  CliRun as_json = RunCli({"rollouts", "abort", "rol_1", "-o", "json", "--server", api.url()});
  EXPECT_EQ(as_json.exit_code, 0) << as_json;
  EXPECT_EQ(json::parse(as_json.out).at("command").at("kind"), "abort");

  auto requests = api.requests();
  ASSERT_EQ(requests.size(), 5u);
  EXPECT_EQ(requests[0].target, "/v1/rollouts/rol_1/pause");
  EXPECT_EQ(json::parse(requests[0].body), json::parse("{}"));
  EXPECT_EQ(requests[1].target, "/v1/rollouts/rol_1/resume");
  EXPECT_EQ(json::parse(requests[1].body), json::parse("{}"));
  EXPECT_EQ(requests[2].target, "/v1/rollouts/rol_1/abort");
  EXPECT_EQ(json::parse(requests[2].body), json::parse(R"({"rollback":true})"));
  EXPECT_EQ(requests[3].target, "/v1/rollouts/rol_1/approve");
  EXPECT_EQ(json::parse(requests[3].body), json::parse(R"({"wave":2})"));
  EXPECT_EQ(json::parse(requests[4].body), json::parse(R"({"rollback":false})"));
}

TEST(CliRolloutsFakeServer, RefusedCommandsPrintTheProblemOnOneLineWithItsExitCode) {
  FakeApi api([](const FakeApi::Request& request) {
    if (request.target == "/v1/rollouts/rol_1/resume") {
      return Problem(409, "conflict", "resume applies to a paused rollout; rol_1 is running");
    }
    if (request.target == "/v1/rollouts/rol_1/approve") {
      return Problem(403, "forbidden", "a principal other than the rollout's creator must approve");
    }
    if (request.target == "/v1/rollouts") return Problem(422, "validation-failed", "no store matches the selector");
    return Problem(404, "not-found", "no rollout 'rol_9'");
  });
  CliRun conflict = RunCli({"rollouts", "resume", "rol_1", "--server", api.url()});
  EXPECT_EQ(conflict.exit_code, 5) << conflict;
  EXPECT_TRUE(OneErrorLine(conflict));
  EXPECT_NE(conflict.err.find("resume applies to a paused rollout; rol_1 is running"), std::string::npos) << conflict;
  EXPECT_EQ(conflict.out, "");
  CliRun forbidden = RunCli({"rollouts", "approve", "rol_1", "--wave", "1", "--server", api.url()});
  EXPECT_EQ(forbidden.exit_code, 4) << forbidden;
  EXPECT_TRUE(OneErrorLine(forbidden));
  CliRun missing = RunCli({"rollouts", "pause", "rol_9", "--server", api.url()});
  EXPECT_EQ(missing.exit_code, 3) << missing;
  EXPECT_TRUE(OneErrorLine(missing));
  CliRun rejected = RunCli(
      {"rollouts", "create", "--release", "r2", "--environment", "staging", "--wave-size", "2", "--server", api.url()});
  EXPECT_EQ(rejected.exit_code, 7) << rejected;
  EXPECT_TRUE(OneErrorLine(rejected));
}

// ====================================================================================
// watch: the event stream.
// ====================================================================================

TEST(CliRolloutsFakeServer, WatchFollowsTheStreamAcrossReconnectsAndExits0WhenItSucceeds) {
  ScriptedStream script(Snap{"running", 0, 0, 0, 1, 1},
                        {
                            {Snap{"running", 0, 1, 0, 0, 2}, Snap{"running", 1, 1, 0, 2, 3}},
                            {Snap{"running", 1, 1, 0, 2, 3},  // repeated: no new line
                             Snap{"running", 2, 3, 0, 2, 4}, Snap{"succeeded", 2, 7, 0, 0, 5}},
                        });
  FakeApi api([&script](const FakeApi::Request& request) { return script(request); });
  CliRun run = RunCli({"rollouts", "watch", "rol_1", "--server", api.url(), "--token", "t0k"});
  EXPECT_EQ(run.exit_code, 0) << run;
  EXPECT_EQ(run.err, "") << run;
  EXPECT_EQ(
      Lines(run.out),
      (std::vector<std::string>{
          "rollout rol_1 (release r2 to staging)",
          "2026-12-05T07:00:01.000Z  running  canary  planned 7  succeeded 0  failed 0  skipped 0  in-flight 1  "
          "waiting 6",
          "2026-12-05T07:00:02.000Z  running  canary  planned 7  succeeded 1  failed 0  skipped 0  in-flight 0  "
          "waiting 6",
          "2026-12-05T07:00:03.000Z  running  wave 1/2  planned 7  succeeded 1  failed 0  skipped 0  in-flight 2  "
          "waiting 4",
          "2026-12-05T07:00:04.000Z  running  wave 2/2  planned 7  succeeded 3  failed 0  skipped 0  in-flight 2  "
          "waiting 2",
          "2026-12-05T07:00:05.000Z  succeeded  wave 2/2  planned 7  succeeded 7  failed 0  skipped 0  in-flight 0  "
          "waiting 0",
      }))
      << run;
  auto requests = api.requests();
  std::vector<FakeApi::Request> streams;
  for (const auto& r : requests) {
    if (r.target.rfind("/v1/events", 0) == 0) streams.push_back(r);
  }
  ASSERT_EQ(streams.size(), 2u) << run;
  EXPECT_EQ(streams[0].target, "/v1/events?types=rollout");
  EXPECT_EQ(streams[0].headers["accept"], "text/event-stream");
  EXPECT_EQ(streams[0].headers["authorization"], "Bearer t0k");
  EXPECT_EQ(streams[0].headers.count("last-event-id"), 0u);
  EXPECT_EQ(streams[1].headers["last-event-id"], "e-3") << "resumes after the last event seen";
}

TEST(CliRolloutsFakeServer, WatchExits9WhenTheRolloutFails) {
  ScriptedStream script(Snap{"running", 1, 1, 0, 2, 1}, {{Snap{"halting", 1, 1, 1, 1, 2, "failure_budget"},
                                                          Snap{"rolling_back", 1, 1, 2, 0, 3, "failure_budget"},
                                                          Snap{"failed", 1, 1, 2, 0, 4, "failure_budget"}}});
  FakeApi api([&script](const FakeApi::Request& request) { return script(request); });
  CliRun run = RunCli({"rollouts", "watch", "rol_1", "--server", api.url()});
  EXPECT_EQ(run.exit_code, 9) << run;
  EXPECT_TRUE(OneErrorLine(run));
  EXPECT_NE(run.err.find("rollout rol_1 failed: 2 failed deploys (0 allowed)"), std::string::npos) << run;
  const auto lines = Lines(run.out);
  ASSERT_EQ(lines.size(), 5u) << run;
  EXPECT_NE(lines[2].find("halting  wave 1/2"), std::string::npos) << run;
  EXPECT_NE(lines[2].find("ending: failure_budget"), std::string::npos) << run;
  EXPECT_NE(lines[4].find("failed  wave 1/2"), std::string::npos) << run;

  // Aborted also ends badly; -o json prints only the last rollout.
  ScriptedStream aborted(Snap{"running", 1, 1, 0, 2, 1},
                         {{Snap{"aborting", 1, 1, 0, 2, 2, "abort"}, Snap{"aborted", 1, 3, 0, 0, 3, "abort"}}});
  FakeApi api2([&aborted](const FakeApi::Request& request) { return aborted(request); });
  CliRun as_json = RunCli({"rollouts", "watch", "rol_1", "-o", "json", "--server", api2.url()});
  EXPECT_EQ(as_json.exit_code, 9) << as_json;
  EXPECT_TRUE(OneErrorLine(as_json));
  EXPECT_NE(as_json.err.find("rollout rol_1 aborted: aborted by an operator"), std::string::npos) << as_json;
  EXPECT_EQ(json::parse(as_json.out).at("state"), "aborted") << as_json;
}

TEST(CliRolloutsFakeServer, CreateWaitFollowsTheNewRolloutToItsEnd) {
  ScriptedStream script(Snap{"pending", 0, 0, 0, 0, 1},
                        {{Snap{"running", 0, 0, 0, 1, 2}, Snap{"succeeded", 2, 7, 0, 0, 3}}});
  FakeApi api([&script](const FakeApi::Request& request) {
    if (request.method == "POST" && request.target == "/v1/rollouts") {
      return Json(201, RolloutJson(Snap{"pending", 0, 0, 0, 0, 1}));
    }
    return script(request);
  });
  CliRun run = RunCli({"rollouts", "create", "--release", "r2", "--environment", "staging", "--growth-factor", "2",
                       "--wait", "--server", api.url()});
  EXPECT_EQ(run.exit_code, 0) << run;
  EXPECT_EQ(run.err, "") << run;
  const auto lines = Lines(run.out);
  ASSERT_GE(lines.size(), 3u) << run;
  EXPECT_EQ(lines.front(), "rollout:         rol_1") << run;
  EXPECT_EQ(lines[lines.size() - 3].rfind("2026-12-05T07:00:01.000Z  pending  canary", 0), 0u) << run;
  EXPECT_EQ(lines[lines.size() - 2].rfind("2026-12-05T07:00:02.000Z  running  canary", 0), 0u) << run;
  EXPECT_EQ(lines.back().rfind("2026-12-05T07:00:03.000Z  succeeded  wave 2/2", 0), 0u) << run;
}

// The rollout ends between the first GET and the stream's opening: the fetch made when the
// stream opens sees it, so the watch does not wait for an event that was never going to come.
TEST(CliRolloutsFakeServer, WatchSeesAnEndThatHappenedBeforeTheStreamOpened) {
  std::mutex mu;
  int gets = 0;
  FakeApi api([&](const FakeApi::Request& request) {
    std::lock_guard<std::mutex> lock(mu);
    if (request.target == "/v1/rollouts/rol_1") {
      return Json(200, RolloutJson(++gets == 1 ? Snap{"running", 2, 5, 0, 2, 4} : Snap{"succeeded", 2, 7, 0, 0, 5}));
    }
    if (request.target == "/v1/events?types=rollout") {
      return FakeApi::Reply{200, {{"Content-Type", "text/event-stream"}}, "retry: 20\n\n: keep-alive\n\n"};
    }
    return Problem(404, "not-found", "no route");
  });
  CliRun run = RunCli({"rollouts", "watch", "rol_1", "--server", api.url()});
  EXPECT_EQ(run.exit_code, 0) << run;
  const auto lines = Lines(run.out);
  ASSERT_EQ(lines.size(), 3u) << run;
  EXPECT_NE(lines[2].find("succeeded  wave 2/2"), std::string::npos) << run;
  EXPECT_EQ(Targets(api), (std::vector<std::string>{"GET /v1/rollouts/rol_1", "GET /v1/events?types=rollout",
                                                    "GET /v1/rollouts/rol_1"}));
}

TEST(CliRolloutsFakeServer, WatchOfAnUnknownRolloutExits3AndARefusedStreamItsCode) {
  FakeApi api([](const FakeApi::Request& request) {
    if (request.target == "/v1/rollouts/rol_1") return Json(200, RolloutJson(Snap{"running", 0, 0, 0, 1, 1}));
    if (request.target == "/v1/events?types=rollout") {
      return Problem(422, "validation-failed", "types takes a comma-separated list of store, agent, run");
    }
    return Problem(404, "not-found", "no rollout 'rol_9'");
  });
  CliRun missing = RunCli({"rollouts", "watch", "rol_9", "--server", api.url()});
  EXPECT_EQ(missing.exit_code, 3) << missing;
  EXPECT_TRUE(OneErrorLine(missing));
  CliRun refused = RunCli({"rollouts", "watch", "rol_1", "--server", api.url()});
  EXPECT_EQ(refused.exit_code, 7) << refused;
  EXPECT_TRUE(OneErrorLine(refused));
}

}  // namespace
}  // namespace storeplane
