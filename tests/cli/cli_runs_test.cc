// End-to-end tests of the run commands (`deploy`, `rollback`, `stores provision|decommission|
// migrate-isolation`, `runs list|get|watch`): the real binary run as a child process against a
// scripted fake API (FakeApi) that plays the server's side: a run accepted with 202, then
// moved through its states on each GET /v1/runs/{id}; a change request when approval is
// needed; paged listings. Assertions are on exit codes, stdout, the one-line stderr and the
// requests sent.
#include <boost/json.hpp>

#include <gtest/gtest.h>
#include <algorithm>
#include <chrono>
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

// One run as GET /v1/runs/{id} shows it; `second` (0..59) makes updated_at differ per state.
std::string RunJson(const std::string& id, const std::string& kind, const std::string& state, int second,
                    const std::string& detail = "") {
  json::object run{
      {"id", id},
      {"store_id", "s1"},
      {"kind", kind},
      {"state", state},
      {"active", true},
      {"release", kind == "deploy" || kind == "rollback" ? json::value("r42") : json::value(nullptr)},
      {"previous_release", "r41"},
      {"target_isolation", kind == "isolation_migration" ? json::value("isolated") : json::value(nullptr)},
      {"provider", "gitlab"},
      {"external_id", state == "pending" ? json::value(nullptr) : json::value("7")},
      {"external_url", state == "pending" ? json::value(nullptr) : json::value("https://ci.example/p/7")},
      {"requested_by", "alice"},
      {"reason", nullptr},
      {"detail", detail.empty() ? json::value(nullptr) : json::value(detail)},
      {"created_at", "2025-06-01T12:00:00.000Z"},
      {"updated_at", "2025-06-01T12:00:" + std::string(second < 10 ? "0" : "") + std::to_string(second) + ".000Z"},
      {"triggered_at", nullptr},
      {"finished_at", nullptr},
      {"deadline", "2025-06-01T13:00:00.000Z"},
      {"gate_opened_at", nullptr}};
  return json::serialize(run);
}

// A fake run: 202 pending at POST `request_path`, then the states of `later` one per GET of
// /v1/runs/run_1 (the last repeated for ever). Every GET is answered even if the CLI polls
// more than expected.
class ScriptedRun {
 public:
  ScriptedRun(std::string request_path, std::string kind, std::vector<std::string> later, std::string detail = "")
      : request_path_(std::move(request_path)),
        kind_(std::move(kind)),
        later_(std::move(later)),
        detail_(std::move(detail)) {}

  FakeApi::Reply operator()(const FakeApi::Request& request) {
    if (request.method == "POST" && request.target == request_path_) {
      return Json(202, RunJson("run_1", kind_, "pending", 0));
    }
    if (request.method == "GET" && request.target == "/v1/runs/run_1") {
      std::lock_guard<std::mutex> lock(mu_);
      const size_t index = std::min(polls_++, later_.size() - 1);
      const bool last = index + 1 == later_.size();
      return Json(200, RunJson("run_1", kind_, later_[index], static_cast<int>(index) + 1, last ? detail_ : ""));
    }
    return Problem(404, "not-found", "no route");
  }

 private:
  std::string request_path_;
  std::string kind_;
  std::vector<std::string> later_;
  std::string detail_;
  std::mutex mu_;
  size_t polls_ = 0;
};

std::vector<std::string> Targets(FakeApi& api) {
  std::vector<std::string> targets;
  for (const auto& request : api.requests()) targets.push_back(request.method + " " + request.target);
  return targets;
}

// ====================================================================================
// Local checks: nothing is sent.
// ====================================================================================

TEST(CliRunsLocal, HelpWorksForEveryNewCommand) {
  for (std::vector<std::string> args : std::vector<std::vector<std::string>>{{"deploy"},
                                                                             {"rollback"},
                                                                             {"stores", "provision"},
                                                                             {"stores", "decommission"},
                                                                             {"stores", "migrate-isolation"},
                                                                             {"runs"},
                                                                             {"runs", "list"},
                                                                             {"runs", "get"},
                                                                             {"runs", "watch"}}) {
    args.push_back("--help");
    CliRun run = RunCli(args);
    EXPECT_EQ(run.exit_code, 0) << run;
    EXPECT_NE(run.out.find("Usage: storeplane"), std::string::npos) << run;
  }
  CliRun root = RunCli({"--help"});
  EXPECT_NE(root.out.find("runs watch, and deploy, rollback"), std::string::npos) << root;
  CliRun deploy = RunCli({"deploy", "--help"});
  EXPECT_NE(deploy.out.find("approval required: change chg_"), std::string::npos) << deploy;
}

TEST(CliRunsLocal, BadReleasesModesAndStatesAreRefusedBeforeAnyRequest) {
  FakeApi api([](const FakeApi::Request&) { return Json(202, RunJson("run_1", "deploy", "pending", 0)); });
  const std::vector<std::vector<std::string>> cases = {
      {"deploy", "s1", "--release", "../etc/passwd"},             // not the release pattern
      {"deploy", "s1", "--release", "-r42"},                      // must start alphanumeric
      {"deploy", "s1", "--release", std::string(65, 'a')},        // too long
      {"deploy", "s1", "--release", ""},                          // empty
      {"deploy", "s1"},                                           // no release
      {"deploy", "s1", "--release", "r42", "--timeout", "5"},     // --timeout needs --wait
      {"rollback", "s1", "--to", "r 41"},                         // not the release pattern
      {"stores", "migrate-isolation", "s1", "--to", "private"},   // no such mode
      {"stores", "migrate-isolation", "s1"},                      // no mode
      {"stores", "provision", "s1", "--wait", "--timeout", "0"},  // out of range
      {"runs", "list", "--state", "done"},                        // no such state
      {"runs", "watch"},                                          // no run id
  };
  for (auto args : cases) {
    args.insert(args.end(), {"--server", api.url(), "--token", "t0k"});
    CliRun run = RunCli(args);
    EXPECT_EQ(run.exit_code, 2) << run;
    EXPECT_TRUE(OneErrorLine(run));
    EXPECT_EQ(run.out, "") << run;
  }
  EXPECT_TRUE(api.requests().empty()) << api.requests().size() << " requests were sent";

  CliRun bad = RunCli({"deploy", "s1", "--release", "../x", "--server", api.url()});
  EXPECT_NE(bad.err.find("--release \"../x\": release must match [A-Za-z0-9][A-Za-z0-9._+-]{0,63}"), std::string::npos)
      << bad;
  CliRun mode = RunCli({"stores", "migrate-isolation", "s1", "--to", "private", "--server", api.url()});
  EXPECT_NE(mode.err.find("one of shared, dedicated, isolated"), std::string::npos) << mode;
  EXPECT_TRUE(api.requests().empty());
}

// ====================================================================================
// Requests and --wait against the fake API.
// ====================================================================================

TEST(CliRunsFakeServer, DeployWaitFollowsTheRunToVerifiedAndExits0) {
  ScriptedRun script("/v1/stores/s1/deployments", "deploy",
                     {"triggered", "running", "running", "succeeded", "verifying", "verified"});
  FakeApi api([&script](const FakeApi::Request& request) { return script(request); });
  CliRun run = RunCli({"deploy", "s1", "--release", "r42", "--wait", "--timeout", "30", "--idempotency-key", "k-1",
                       "--server", api.url(), "--token", "t0k"});
  EXPECT_EQ(run.exit_code, 0) << run;
  EXPECT_EQ(run.err, "") << run;
  EXPECT_EQ(Lines(run.out), (std::vector<std::string>{
                                "run run_1 (deploy of r42 on store s1)",
                                "2025-06-01T12:00:00.000Z  pending",
                                "2025-06-01T12:00:01.000Z  triggered  (https://ci.example/p/7)",
                                "2025-06-01T12:00:02.000Z  running",
                                "2025-06-01T12:00:04.000Z  succeeded",
                                "2025-06-01T12:00:05.000Z  verifying",
                                "2025-06-01T12:00:06.000Z  verified",
                            }))
      << run;

  auto requests = api.requests();
  ASSERT_EQ(requests.size(), 7u);  // POST, then six GETs
  EXPECT_EQ(requests[0].method, "POST");
  EXPECT_EQ(requests[0].target, "/v1/stores/s1/deployments");
  EXPECT_EQ(requests[0].headers["authorization"], "Bearer t0k");
  EXPECT_EQ(requests[0].headers["content-type"], "application/json");
  EXPECT_EQ(requests[0].headers["idempotency-key"], "k-1");
  EXPECT_EQ(json::parse(requests[0].body), json::parse(R"({"release":"r42"})"));
  for (size_t i = 1; i < requests.size(); ++i) EXPECT_EQ(requests[i].target, "/v1/runs/run_1");
}

TEST(CliRunsFakeServer, DeployWaitExits9WhenTheGateFails) {
  ScriptedRun script("/v1/stores/s1/deployments", "deploy", {"running", "verifying", "verification_failed"},
                     "health gate failed: release r41 reported");
  FakeApi api([&script](const FakeApi::Request& request) { return script(request); });
  CliRun run = RunCli({"deploy", "s1", "--release", "r42", "--wait", "--server", api.url()});
  EXPECT_EQ(run.exit_code, 9) << run;
  EXPECT_TRUE(OneErrorLine(run));
  EXPECT_NE(run.err.find("run run_1 verification_failed: health gate failed: release r41 reported"), std::string::npos)
      << run;
  const auto lines = Lines(run.out);
  ASSERT_FALSE(lines.empty()) << run;
  EXPECT_EQ(lines.back(), "2025-06-01T12:00:03.000Z  verification_failed: health gate failed: release r41 reported");
}

TEST(CliRunsFakeServer, UngatedRunsEndWithSucceededOrFailed) {
  {
    ScriptedRun script("/v1/stores/s1/provision", "provision", {"running", "succeeded"});
    FakeApi api([&script](const FakeApi::Request& request) { return script(request); });
    CliRun run = RunCli({"stores", "provision", "s1", "--wait", "--server", api.url()});
    EXPECT_EQ(run.exit_code, 0) << run;
    EXPECT_EQ(Lines(run.out).front(), "run run_1 (provision on store s1)") << run;
    EXPECT_EQ(json::parse(api.requests().at(0).body), json::parse("{}"));
  }
  {
    ScriptedRun script("/v1/stores/s1/decommission", "decommission", {"failed"}, "pipeline exited 1");
    FakeApi api([&script](const FakeApi::Request& request) { return script(request); });
    CliRun run = RunCli({"stores", "decommission", "s1", "--wait", "--server", api.url()});
    EXPECT_EQ(run.exit_code, 9) << run;
    EXPECT_TRUE(OneErrorLine(run));
    EXPECT_NE(run.err.find("run run_1 failed: pipeline exited 1"), std::string::npos) << run;
  }
  {
    ScriptedRun script("/v1/stores/s1/isolation-migrations", "isolation_migration", {"succeeded"});
    FakeApi api([&script](const FakeApi::Request& request) { return script(request); });
    CliRun run = RunCli(
        {"stores", "migrate-isolation", "s1", "--to", "isolated", "--wait", "-o", "json", "--server", api.url()});
    EXPECT_EQ(run.exit_code, 0) << run;
    json::value printed = json::parse(run.out);  // exactly one JSON document: the final run
    EXPECT_EQ(printed.at("state"), "succeeded");
    EXPECT_EQ(json::parse(api.requests().at(0).body), json::parse(R"({"isolation_mode":"isolated"})"));
  }
}

TEST(CliRunsFakeServer, WithoutWaitTheRunIsPrintedOnce) {
  ScriptedRun script("/v1/stores/s1/rollbacks", "rollback", {"running"});
  FakeApi api([&script](const FakeApi::Request& request) { return script(request); });
  CliRun run = RunCli({"rollback", "s1", "--server", api.url()});
  EXPECT_EQ(run.exit_code, 0) << run;
  EXPECT_EQ(run.out, "run run_1 (rollback to r42 on store s1): pending\n") << run;
  CliRun to = RunCli({"rollback", "s1", "--to", "r40", "--server", api.url()});
  EXPECT_EQ(to.exit_code, 0) << to;
  auto requests = api.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(json::parse(requests[0].body), json::parse("{}"));
  EXPECT_EQ(json::parse(requests[1].body), json::parse(R"({"release":"r40"})"));
}

TEST(CliRunsFakeServer, AnApprovalRequiredAnswerExits0WithoutWaiting) {
  FakeApi api([](const FakeApi::Request& request) {
    if (request.method == "POST" && request.target == "/v1/stores/s1/deployments") {
      return FakeApi::Reply{202,
                            {{"Content-Type", "application/json"}, {"Location", "/v1/changes/chg_1"}},
                            R"({"id":"chg_1","action":"deploy.request","target":"store/s1","environment":"production",)"
                            R"("requester":"alice","approval_rule":"prod-deploys","approvals_needed":1,"approvers":[],)"
                            R"("status":"pending","outcome":"","created_at":"2025-06-01T12:00:00.000Z",)"
                            R"("expires_at":"2025-06-02T12:00:00.000Z","version":1,"request":{"release":"r42"}})"};
    }
    return Problem(404, "not-found", "no route");
  });
  CliRun run = RunCli({"deploy", "s1", "--release", "r42", "--wait", "--server", api.url()});
  EXPECT_EQ(run.exit_code, 0) << run;
  EXPECT_TRUE(OneErrorLine(run));
  EXPECT_NE(run.err.find("approval required: change chg_1 is pending"), std::string::npos) << run;
  EXPECT_NE(run.out.find("chg_1"), std::string::npos) << run;
  EXPECT_EQ(Targets(api), (std::vector<std::string>{"POST /v1/stores/s1/deployments"})) << "no polling";
}

TEST(CliRunsFakeServer, ARefusedRequestExitsWithTheProblemsCode) {
  FakeApi api([](const FakeApi::Request&) { return Problem(409, "conflict", "store 's1' already has an active run"); });
  CliRun run = RunCli({"deploy", "s1", "--release", "r42", "--wait", "--server", api.url()});
  EXPECT_EQ(run.exit_code, 5) << run;
  EXPECT_TRUE(OneErrorLine(run));
  EXPECT_EQ(api.requests().size(), 1u) << "no polling after a refusal";
}

// ====================================================================================
// runs list / get / watch.
// ====================================================================================

TEST(CliRunsFakeServer, ListFollowsEveryPageWithAll) {
  FakeApi api([](const FakeApi::Request& request) {
    if (request.target == "/v1/runs?store=s1&active=true&limit=1") {
      return Json(200, R"({"items":[)" + RunJson("run_3", "deploy", "running", 3) + R"(],"next_cursor":"run_3"})");
    }
    if (request.target == "/v1/runs?store=s1&active=true&limit=1&cursor=run_3") {
      return Json(200, R"({"items":[)" + RunJson("run_2", "provision", "triggered", 2) + R"(],"next_cursor":null})");
    }
    return Problem(404, "not-found", "no route");
  });
  CliRun all = RunCli({"runs", "list", "--store", "s1", "--active", "--limit", "1", "--all", "--server", api.url()});
  EXPECT_EQ(all.exit_code, 0) << all;
  EXPECT_EQ(all.err, "") << all;
  const auto lines = Lines(all.out);
  ASSERT_EQ(lines.size(), 3u) << all;
  EXPECT_EQ(lines[0].rfind("RUN     STORE   KIND        STATE       RELEASE   PROVIDER   REQUESTED-BY", 0), 0u) << all;
  EXPECT_EQ(lines[1].rfind("run_3   s1      deploy      running     r42       gitlab     alice", 0), 0u) << all;
  EXPECT_EQ(lines[2].rfind("run_2   s1      provision   triggered   <none>    gitlab     alice", 0), 0u) << all;
  EXPECT_EQ(Targets(api), (std::vector<std::string>{"GET /v1/runs?store=s1&active=true&limit=1",
                                                    "GET /v1/runs?store=s1&active=true&limit=1&cursor=run_3"}));

  CliRun first = RunCli({"runs", "list", "--store", "s1", "--active", "--limit", "1", "--server", api.url()});
  EXPECT_EQ(first.exit_code, 0) << first;
  EXPECT_EQ(Lines(first.out).size(), 2u) << first;
  EXPECT_NE(first.err.find("more runs: use --all, or --cursor run_3"), std::string::npos) << first;

  CliRun as_json = RunCli(
      {"runs", "list", "--store", "s1", "--active", "--limit", "1", "--all", "-o", "json", "--server", api.url()});
  EXPECT_EQ(as_json.exit_code, 0) << as_json;
  json::value printed = json::parse(as_json.out);
  EXPECT_EQ(printed.at("items").as_array().size(), 2u);
  EXPECT_TRUE(printed.at("next_cursor").is_null());
}

TEST(CliRunsFakeServer, GetShowsEveryFieldAndMissingRunsExit3) {
  FakeApi api([](const FakeApi::Request& request) {
    if (request.target == "/v1/runs/run_1") return Json(200, RunJson("run_1", "deploy", "verifying", 5));
    return Problem(404, "not-found", "no run 'run_9'");
  });
  CliRun get = RunCli({"runs", "get", "run_1", "--server", api.url()});
  EXPECT_EQ(get.exit_code, 0) << get;
  EXPECT_NE(get.out.find("state:             verifying\n"), std::string::npos) << get;
  EXPECT_NE(get.out.find("external url:      https://ci.example/p/7\n"), std::string::npos) << get;

  CliRun missing = RunCli({"runs", "get", "run_9", "--server", api.url()});
  EXPECT_EQ(missing.exit_code, 3) << missing;
  EXPECT_TRUE(OneErrorLine(missing));
  CliRun watch_missing = RunCli({"runs", "watch", "run_9", "--server", api.url()});
  EXPECT_EQ(watch_missing.exit_code, 3) << watch_missing;
}

TEST(CliRunsFakeServer, WatchPrintsEachStateChangeAndEndsWithTheRun) {
  ScriptedRun script("", "rollback", {"running", "running", "verifying", "verified"});
  FakeApi api([&script](const FakeApi::Request& request) { return script(request); });
  CliRun run = RunCli({"runs", "watch", "run_1", "--server", api.url()});
  EXPECT_EQ(run.exit_code, 0) << run;
  EXPECT_EQ(Lines(run.out), (std::vector<std::string>{
                                "run run_1 (rollback to r42 on store s1)",
                                "2025-06-01T12:00:01.000Z  running  (https://ci.example/p/7)",
                                "2025-06-01T12:00:03.000Z  verifying",
                                "2025-06-01T12:00:04.000Z  verified",
                            }))
      << run;
}

TEST(CliRunsFakeServer, WatchGivesUpAfterItsTimeoutWithExit10) {
  ScriptedRun script("", "deploy", {"running"});  // running for ever
  FakeApi api([&script](const FakeApi::Request& request) { return script(request); });
  const auto started = std::chrono::steady_clock::now();
  CliRun run = RunCli({"runs", "watch", "run_1", "--timeout", "1", "--server", api.url()});
  const auto elapsed = std::chrono::steady_clock::now() - started;
  EXPECT_EQ(run.exit_code, 10) << run;
  EXPECT_TRUE(OneErrorLine(run));
  EXPECT_NE(run.err.find("run run_1 is still running after 1 s; follow it with: storeplane runs watch run_1"),
            std::string::npos)
      << run;
  EXPECT_LT(elapsed, std::chrono::seconds(10));
  EXPECT_GE(api.requests().size(), 3u) << "polled more than once";
}

}  // namespace
}  // namespace storeplane
