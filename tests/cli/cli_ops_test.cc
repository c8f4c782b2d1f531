// End-to-end tests of `storeplane ops`, `agents` and `stores health`: the real binary run as
// a child process against a scripted fake API (FakeApi), which plays the server's side of
// docs/OPERATIONS.md: an operation that is queued, delivered, then final; agents; health.
// Assertions are on exit codes, stdout, the one-line stderr and the requests sent.
#include <boost/json.hpp>

#include <gtest/gtest.h>
#include <atomic>
#include <chrono>
#include <string>
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

std::string OperationJson(const std::string& state, const std::string& code = "", const std::string& result = "null") {
  return R"({"id":"op_1","store_id":"s1","name":"cache.flush","params":{"types":["config","full_page"]},)"
         R"("state":")" +
         state + R"(","code":)" + (code.empty() ? std::string("null") : "\"" + code + "\"") + R"(,"result":)" + result +
         R"(,"requested_by":"alice","created_at":"2025-06-01T12:00:00.000Z","delivered_at":null,)"
         R"("finished_at":null,"expires_at":"2025-06-01T12:05:00.000Z","timeout_s":120,"delivery_count":0})";
}

FakeApi::Reply Json(int status, std::string body) {
  return FakeApi::Reply{status, {{"Content-Type", "application/json"}}, std::move(body)};
}

FakeApi::Reply Problem(int status, const std::string& kind, const std::string& detail) {
  return FakeApi::Reply{status,
                        {{"Content-Type", "application/problem+json"}},
                        R"({"type":"urn:storeplane:problem:)" + kind + R"(","title":"Refused","status":)" +
                            std::to_string(status) + R"(,"detail":")" + detail + R"(","request_id":"rq-1"})"};
}

// A fake operation: 202 queued at POST, then `delivered` for `delivered_polls` GETs, then
// `final_body` for every later GET.
class ScriptedOperation {
 public:
  ScriptedOperation(int delivered_polls, std::string final_body)
      : delivered_polls_(delivered_polls), final_body_(std::move(final_body)) {}

  FakeApi::Reply operator()(const FakeApi::Request& request) {
    if (request.method == "POST" && request.target == "/v1/stores/s1/operations") {
      return Json(202, OperationJson("queued"));
    }
    if (request.method == "GET" && request.target == "/v1/stores/s1/operations/op_1") {
      if (polls_++ < delivered_polls_) return Json(200, OperationJson("delivered"));
      return Json(200, final_body_);
    }
    return Problem(404, "not-found", "no route");
  }

 private:
  int delivered_polls_;
  std::string final_body_;
  std::atomic<int> polls_{0};
};

// ====================================================================================
// Local checks: nothing is sent.
// ====================================================================================

TEST(CliOpsLocal, HelpWorksForEveryNewCommand) {
  for (std::vector<std::string> args : std::vector<std::vector<std::string>>{{"ops"},
                                                                             {"ops", "run"},
                                                                             {"ops", "list"},
                                                                             {"ops", "get"},
                                                                             {"agents"},
                                                                             {"agents", "list"},
                                                                             {"agents", "enroll-token"},
                                                                             {"agents", "revoke"},
                                                                             {"stores", "health"}}) {
    args.push_back("--help");
    CliRun run = RunCli(args);
    EXPECT_EQ(run.exit_code, 0) << run;
    EXPECT_NE(run.out.find("Usage: storeplane"), std::string::npos) << run;
  }
  CliRun root = RunCli({"--help"});
  EXPECT_NE(root.out.find("9  ops run --wait: the operation failed or expired"), std::string::npos) << root;
  EXPECT_NE(root.out.find("10  ops run --wait: --timeout passed"), std::string::npos) << root;
}

TEST(CliOpsLocal, BadNamesAndParamsAreRefusedBeforeAnyRequest) {
  FakeApi api([](const FakeApi::Request&) { return Json(202, OperationJson("queued")); });
  const std::vector<std::vector<std::string>> cases = {
      {"ops", "run", "s1", "cache.wipe"},                                     // not in the catalog
      {"ops", "run", "s1", "Cache.Flush"},                                    // names are exact
      {"ops", "run", "s1", "cache.flush", "--param", "types=config,bogus"},   // unknown cache type
      {"ops", "run", "s1", "cache.flush", "--param", "types=config,config"},  // repeated type
      {"ops", "run", "s1", "cache.flush", "--param", "scope=all"},            // unknown param
      {"ops", "run", "s1", "health.probe", "--param", "types=config"},        // takes no params
      {"ops", "run", "s1", "health.probe", "--expires-in", "soon"},           // bad expiry
      {"ops", "run", "s1", "health.probe", "--timeout", "5"},                 // --timeout needs --wait
      {"ops", "run", "s1"},                                                   // no name
      {"agents", "enroll-token", "s1", "--ttl", "forever"},                   // bad ttl
  };
  for (auto args : cases) {
    args.insert(args.end(), {"--server", api.url(), "--token", "t0k"});
    CliRun run = RunCli(args);
    EXPECT_EQ(run.exit_code, 2) << run;
    EXPECT_TRUE(OneErrorLine(run));
    EXPECT_EQ(run.out, "") << run;
  }
  EXPECT_TRUE(api.requests().empty()) << api.requests().size() << " requests were sent";

  CliRun unknown = RunCli({"ops", "run", "s1", "cache.wipe", "--server", api.url()});
  EXPECT_NE(unknown.err.find("unknown operation \"cache.wipe\""), std::string::npos) << unknown;
  EXPECT_NE(unknown.err.find("cache.flush"), std::string::npos) << "names the catalog: " << unknown;
}

// ====================================================================================
// ops run / list / get against the fake API.
// ====================================================================================

TEST(CliOpsFakeServer, RunWaitPrintsTheResultOfASucceededOperation) {
  ScriptedOperation script(2, OperationJson("succeeded", "", R"({"flushed":["config","full_page"]})"));
  FakeApi api([&script](const FakeApi::Request& request) { return script(request); });
  CliRun run =
      RunCli({"ops", "run", "s1", "cache.flush", "--param", "types=config,full_page", "--wait", "--timeout", "30",
              "--expires-in", "10m", "--idempotency-key", "k-1", "--server", api.url(), "--token", "t0k"});
  EXPECT_EQ(run.exit_code, 0) << run;
  EXPECT_EQ(run.err, "") << run;
  const auto lines = Lines(run.out);
  ASSERT_FALSE(lines.empty()) << run;
  EXPECT_EQ(lines[0], "operation op_1 (cache.flush on store s1): queued") << run;
  EXPECT_NE(run.out.find("state:         succeeded"), std::string::npos) << run;
  EXPECT_NE(run.out.find("\nResult:\nflushed:  config, full_page\n"), std::string::npos) << run;

  auto requests = api.requests();
  ASSERT_EQ(requests.size(), 4u);  // POST, delivered, delivered, succeeded
  EXPECT_EQ(requests[0].method, "POST");
  EXPECT_EQ(requests[0].target, "/v1/stores/s1/operations");
  EXPECT_EQ(requests[0].headers["authorization"], "Bearer t0k");
  EXPECT_EQ(requests[0].headers["content-type"], "application/json");
  EXPECT_EQ(requests[0].headers["idempotency-key"], "k-1");
  EXPECT_EQ(json::parse(requests[0].body),
            json::parse(R"({"name":"cache.flush","params":{"types":["config","full_page"]},"expires_in_s":600})"));
  for (size_t i = 1; i < requests.size(); ++i) {
    EXPECT_EQ(requests[i].method, "GET");
    EXPECT_EQ(requests[i].target, "/v1/stores/s1/operations/op_1");
  }
}

TEST(CliOpsFakeServer, RunWaitExits9OnAFailedOrExpiredOperation) {
  for (const std::string state : {"failed", "expired"}) {
    const std::string code = state == "failed" ? "refused_not_allowed" : "expired";
    ScriptedOperation script(1, OperationJson(state, code));
    FakeApi api([&script](const FakeApi::Request& request) { return script(request); });
    CliRun run = RunCli({"ops", "run", "s1", "health.probe", "--wait", "--server", api.url()});
    EXPECT_EQ(run.exit_code, 9) << run;
    EXPECT_TRUE(OneErrorLine(run));
    EXPECT_NE(run.err.find("operation op_1 " + state + ": " + code), std::string::npos) << run;
    EXPECT_NE(run.out.find("code:          " + code), std::string::npos) << run;
    EXPECT_EQ(json::parse(api.requests().at(0).body),
              json::parse(R"({"name":"health.probe","params":{},"expires_in_s":300})"));
  }
}

TEST(CliOpsFakeServer, RunWaitInJsonPrintsOnlyTheFinalOperation) {
  ScriptedOperation script(1, OperationJson("succeeded", "", R"({"schema_up_to_date":true})"));
  FakeApi api([&script](const FakeApi::Request& request) { return script(request); });
  CliRun run = RunCli({"ops", "run", "s1", "db.status", "--wait", "-o", "json", "--server", api.url()});
  EXPECT_EQ(run.exit_code, 0) << run;
  json::value printed = json::parse(run.out);  // exactly one JSON document
  EXPECT_EQ(printed.at("state"), "succeeded");
  EXPECT_EQ(printed.at("result").at("schema_up_to_date"), true);
}

TEST(CliOpsFakeServer, RunWaitGivesUpAfterItsTimeoutWithExit10) {
  ScriptedOperation script(1 << 30, "");  // delivered forever
  FakeApi api([&script](const FakeApi::Request& request) { return script(request); });
  const auto started = std::chrono::steady_clock::now();
  CliRun run = RunCli({"ops", "run", "s1", "indexer.status", "--wait", "--timeout", "1", "--server", api.url()});
  const auto elapsed = std::chrono::steady_clock::now() - started;
  EXPECT_EQ(run.exit_code, 10) << run;
  EXPECT_TRUE(OneErrorLine(run));
  EXPECT_NE(run.err.find("still delivered after 1 s"), std::string::npos) << run;
  EXPECT_NE(run.err.find("storeplane ops get s1 op_1"), std::string::npos) << run;
  EXPECT_LT(elapsed, std::chrono::seconds(10));
  EXPECT_GE(api.requests().size(), 3u) << "polled more than once";
}

TEST(CliOpsFakeServer, RunWithoutWaitPrintsTheQueuedOperation) {
  ScriptedOperation script(0, "");
  FakeApi api([&script](const FakeApi::Request& request) { return script(request); });
  CliRun run = RunCli({"ops", "run", "s1", "release.report", "--server", api.url()});
  EXPECT_EQ(run.exit_code, 0) << run;
  EXPECT_EQ(run.out, "operation op_1 (cache.flush on store s1): queued\n") << run;
  EXPECT_EQ(api.requests().size(), 1u);
}

TEST(CliOpsFakeServer, ARefusedOperationExitsWithTheProblemsCode) {
  FakeApi api([](const FakeApi::Request&) {
    return Problem(409, "conflict", "the agent of store 's1' does not allow cache.flush (its local allow-list: empty)");
  });
  CliRun run = RunCli({"ops", "run", "s1", "cache.flush", "--wait", "--server", api.url()});
  EXPECT_EQ(run.exit_code, 5) << run;
  EXPECT_TRUE(OneErrorLine(run));
  EXPECT_NE(run.err.find("local allow-list"), std::string::npos) << run;
  EXPECT_EQ(api.requests().size(), 1u) << "no polling after a refusal";
}

TEST(CliOpsFakeServer, ListAndGet) {
  FakeApi api([](const FakeApi::Request& request) {
    if (request.target.rfind("/v1/stores/s1/operations?", 0) == 0) {
      return Json(200, R"({"items":[)" + OperationJson("failed", "timeout") + R"(],"next_cursor":"op_1"})");
    }
    if (request.target == "/v1/stores/s1/operations/op_1") {
      return Json(200, OperationJson("succeeded", "", R"({"maintenance":true})"));
    }
    return Problem(404, "not-found", "no operation");
  });
  CliRun list = RunCli({"ops", "list", "s1", "--limit", "1", "--server", api.url()});
  EXPECT_EQ(list.exit_code, 0) << list;
  const auto lines = Lines(list.out);
  ASSERT_EQ(lines.size(), 2u) << list;
  EXPECT_EQ(lines[0].rfind("OPERATION   NAME          STATE    CODE      REQUESTED-BY", 0), 0u) << list;
  EXPECT_EQ(lines[1].rfind("op_1        cache.flush   failed   timeout   alice", 0), 0u) << list;
  EXPECT_NE(list.err.find("more operations: use --all, or --cursor op_1"), std::string::npos) << list;
  EXPECT_EQ(api.requests().at(0).target, "/v1/stores/s1/operations?limit=1");

  CliRun get = RunCli({"ops", "get", "s1", "op_1", "--server", api.url()});
  EXPECT_EQ(get.exit_code, 0) << get;
  EXPECT_NE(get.out.find("\nResult:\nmaintenance:  on\n"), std::string::npos) << get;

  CliRun missing = RunCli({"ops", "get", "s1", "op_2", "--server", api.url()});
  EXPECT_EQ(missing.exit_code, 3) << missing;
  EXPECT_TRUE(OneErrorLine(missing));
}

// ====================================================================================
// agents and stores health against the fake API.
// ====================================================================================

const char* kAgents =
    R"({"items":[{"store_id":"s1","agent_id":"agt_1","availability":"online","health":"healthy",)"
    R"("health_reasons":[],"last_seen_at":"2025-06-01T12:00:00.000Z","agent_version":"0.1.0","release":"r1",)"
    R"("reported_isolation":"shared","allowed_operations":["health.probe","release.report"],)"
    R"("enrolled_at":"2025-06-01T11:00:00.000Z","rotated_at":null,"revoked_at":null}]})";

TEST(CliAgentsFakeServer, ListShowsAvailabilityHealthVersionAndAllowList) {
  FakeApi api([](const FakeApi::Request& request) {
    if (request.method == "GET" && request.target == "/v1/agents") return Json(200, kAgents);
    return Problem(404, "not-found", "no route");
  });
  CliRun run = RunCli({"agents", "list", "--server", api.url()});
  EXPECT_EQ(run.exit_code, 0) << run;
  const auto lines = Lines(run.out);
  ASSERT_EQ(lines.size(), 2u) << run;
  EXPECT_EQ(lines[0], "STORE   AGENT   AVAILABILITY   HEALTH    VERSION   LAST-SEEN                  ALLOWED");
  EXPECT_EQ(
      lines[1],
      "s1      agt_1   online         healthy   0.1.0     2025-06-01T12:00:00.000Z   health.probe,release.report");

  CliRun as_json = RunCli({"agents", "list", "-o", "json", "--server", api.url()});
  EXPECT_EQ(as_json.exit_code, 0) << as_json;
  EXPECT_EQ(json::parse(as_json.out), json::parse(kAgents));
}

TEST(CliAgentsFakeServer, EnrollTokenPrintsTheTokenAloneAndRevokeDeletes) {
  const std::string token = "spe_EXAMPLEexampleEXAMPLEexampleEXAMPLEexample0";
  FakeApi api([&token](const FakeApi::Request& request) {
    if (request.method == "POST" && request.target == "/v1/stores/s1/enrollment-tokens") {
      return Json(
          201, R"({"id":"enr_1","token":")" + token + R"(","store_id":"s1","expires_at":"2025-06-01T14:00:00.000Z"})");
    }
    if (request.method == "DELETE" && request.target == "/v1/stores/s1/agent") {
      return Json(200, R"({"store_id":"s1","agent_id":"agt_1","revoked_at":"2025-06-01T12:00:00.000Z"})");
    }
    if (request.method == "DELETE") return Problem(409, "conflict", "the agent of store 's2' is already revoked");
    return Problem(404, "not-found", "no route");
  });
  CliRun run = RunCli({"agents", "enroll-token", "s1", "--ttl", "2h", "--server", api.url()});
  EXPECT_EQ(run.exit_code, 0) << run;
  EXPECT_EQ(run.out, token + "\n");
  EXPECT_NE(run.err.find("expires 2025-06-01T14:00:00.000Z"), std::string::npos) << run;
  EXPECT_EQ(run.err.find(token), std::string::npos) << "the token is on stdout only: " << run;
  EXPECT_EQ(json::parse(api.requests().at(0).body), json::parse(R"({"ttl_s":7200})"));

  CliRun revoke = RunCli({"agents", "revoke", "s1", "--server", api.url()});
  EXPECT_EQ(revoke.exit_code, 0) << revoke;
  EXPECT_EQ(revoke.out, "agent agt_1 of store s1 revoked; it can no longer connect\n");

  CliRun again = RunCli({"agents", "revoke", "s2", "--server", api.url()});
  EXPECT_EQ(again.exit_code, 5) << again;
  EXPECT_TRUE(OneErrorLine(again));
}

std::string HealthJson(const std::string& store, const std::string& health, const std::string& reasons) {
  return R"({"store_id":")" + store + R"(","health":")" + health + R"(","reasons":)" + reasons +
         R"(,"availability":"online","last_seen_at":"2025-06-01T12:00:00.000Z","recorded_isolation":"shared",)"
         R"("reported_isolation":"shared","release":"r1","checks":[{"name":"disk","status":"warn","code":"disk_low"}],)"
         R"("last_successes":[{"kind":"operation","name":"cache.flush","at":"2025-06-01T11:00:00.000Z","ref":"op_1"}]})";
}

std::string StoreJson(const std::string& id) {
  return R"({"id":")" + id +
         R"(","name":"x","environment":"staging","isolation_mode":"shared","labels":{},"state":"active",)"
         R"("desired_release":null,"current_release":null,"last_known_good_release":null,"version":1,)"
         R"("created_at":"2024-01-01T00:00:00.000Z","updated_at":"2024-01-01T00:00:00.000Z"})";
}

TEST(CliStoresHealthFakeServer, EveryStoreAcrossPagesThenOneInDetail) {
  FakeApi api([](const FakeApi::Request& request) {
    if (request.target == "/v1/stores") {
      return Json(200, R"({"items":[)" + StoreJson("s1") + R"(],"next_cursor":"c2"})");
    }
    if (request.target == "/v1/stores?cursor=c2") {
      return Json(200, R"({"items":[)" + StoreJson("s2") + R"(],"next_cursor":null})");
    }
    if (request.target == "/v1/stores/s1/health")
      return Json(200, HealthJson("s1", "degraded", R"(["check_warning:disk"])"));
    if (request.target == "/v1/stores/s2/health") return Json(200, HealthJson("s2", "healthy", "[]"));
    return Problem(404, "not-found", "no store");
  });
  CliRun all = RunCli({"stores", "health", "--server", api.url()});
  EXPECT_EQ(all.exit_code, 0) << all;
  const auto lines = Lines(all.out);
  ASSERT_EQ(lines.size(), 3u) << all;
  EXPECT_EQ(lines[0], "STORE   HEALTH     AVAILABILITY   REASONS              RELEASE   LAST-SEEN");
  EXPECT_EQ(lines[1], "s1      degraded   online         check_warning:disk   r1        2025-06-01T12:00:00.000Z");
  EXPECT_EQ(lines[2], "s2      healthy    online         <none>               r1        2025-06-01T12:00:00.000Z");
  std::vector<std::string> targets;
  for (const auto& request : api.requests()) targets.push_back(request.target);
  EXPECT_EQ(targets, (std::vector<std::string>{"/v1/stores", "/v1/stores?cursor=c2", "/v1/stores/s1/health",
                                               "/v1/stores/s2/health"}));

  CliRun one = RunCli({"stores", "health", "s1", "--server", api.url()});
  EXPECT_EQ(one.exit_code, 0) << one;
  EXPECT_NE(one.out.find("health:              degraded\n"), std::string::npos) << one;
  EXPECT_NE(one.out.find("\nChecks:\nNAME   STATUS   CODE\ndisk   warn     disk_low\n"), std::string::npos) << one;
  EXPECT_NE(one.out.find("operation   cache.flush   2025-06-01T11:00:00.000Z   op_1"), std::string::npos) << one;

  CliRun missing = RunCli({"stores", "health", "nope", "--server", api.url()});
  EXPECT_EQ(missing.exit_code, 3) << missing;
  EXPECT_TRUE(OneErrorLine(missing));
}

}  // namespace
}  // namespace storeplane
