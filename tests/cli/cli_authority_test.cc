// The authority and audit commands of the CLI (tokens, changes, audit, authz, and the 202
// answer of `stores register`) against a scripted fake API: the requests they send, what
// they print, their exit codes and the one-line errors.
#include <boost/json.hpp>

#include <gtest/gtest.h>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "audit_fixture.h"
#include "cli_test_support.h"

namespace storeplane {
namespace {

using testing::AuditFixture;
using testing::CliRun;
using testing::FakeApi;
using testing::Lines;
using testing::OneErrorLine;
using testing::RunCli;
using testing::TempDir;
namespace json = boost::json;

FakeApi::Reply Json(int status, const std::string& body) {
  return FakeApi::Reply{status, {{"Content-Type", "application/json"}}, body};
}

FakeApi::Reply Problem(int status, const std::string& kind, const std::string& detail) {
  json::object problem{{"type", "urn:storeplane:problem:" + kind},
                       {"title", kind},
                       {"status", status},
                       {"detail", detail},
                       {"request_id", "rq-" + std::to_string(status)}};
  return FakeApi::Reply{status, {{"Content-Type", "application/problem+json"}}, json::serialize(problem)};
}

// The path of a request target and its query parameters (not decoded).
std::string PathOf(const std::string& target) { return target.substr(0, target.find('?')); }
std::map<std::string, std::string> QueryOf(const std::string& target) {
  std::map<std::string, std::string> query;
  auto mark = target.find('?');
  if (mark == std::string::npos) return query;
  std::string rest = target.substr(mark + 1);
  size_t start = 0;
  while (start <= rest.size()) {
    size_t end = rest.find('&', start);
    if (end == std::string::npos) end = rest.size();
    std::string pair = rest.substr(start, end - start);
    auto eq = pair.find('=');
    if (!pair.empty()) query[pair.substr(0, eq)] = eq == std::string::npos ? "" : pair.substr(eq + 1);
    start = end + 1;
  }
  return query;
}

// Runs the CLI against `api` with a token.
CliRun Cli(const FakeApi& api, std::vector<std::string> args) {
  args.insert(args.end(), {"--server", api.url(), "--token", "t0k"});
  return RunCli(args);
}

const char* kTokenRecord =
    R"({"id":"tok_9","principal":"alice","description":"laptop","created_at":"2024-12-04T10:00:00.000Z",)"
    R"("expires_at":"2025-01-03T10:00:00.000Z","revoked_at":null})";

const char* kPendingChange =
    R"({"id":"chg_1","action":"store.register","target":"store/acme","environment":"production",)"
    R"("requester":"alice","approval_rule":"approval/1","approvals_needed":1,"approvers":[],"status":"pending",)"
    R"("outcome":null,"created_at":"2024-12-04T10:00:00.000Z","expires_at":"2024-12-05T10:00:00.000Z","version":1,)"
    R"("request":{"id":"acme","environment":"production","isolation_mode":"dedicated"}})";

std::string ChangeWith(const std::string& status, const std::string& approvers, const std::string& outcome) {
  json::object change = json::parse(kPendingChange).as_object();
  change["status"] = status;
  change["approvers"] = json::parse(approvers);
  change["outcome"] = outcome;
  change["version"] = 2;
  return json::serialize(change);
}

// ---- tokens --------------------------------------------------------------------------

TEST(CliTokens, CreatePrintsTheTokenOnceAndWarnsOnStderr) {
  FakeApi api([](const FakeApi::Request&) {
    json::object created = json::parse(kTokenRecord).as_object();
    created["token"] = "spt_s3cr3t";
    return Json(201, json::serialize(created));
  });
  CliRun run = Cli(api, {"tokens", "create", "--principal", "alice", "--description", "laptop", "--expires-in", "30d"});
  ASSERT_EQ(run.exit_code, 0) << run;
  EXPECT_EQ(run.out, "spt_s3cr3t\n");
  EXPECT_EQ(Lines(run.err).size(), 1u) << run;
  EXPECT_NE(run.err.find("tok_9"), std::string::npos) << run;
  EXPECT_NE(run.err.find("store it now, it is not shown again"), std::string::npos) << run;
  EXPECT_EQ(run.err.find("spt_s3cr3t"), std::string::npos) << run;

  auto requests = api.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].method, "POST");
  EXPECT_EQ(requests[0].target, "/v1/tokens");
  EXPECT_EQ(requests[0].headers["authorization"], "Bearer t0k");
  EXPECT_EQ(json::parse(requests[0].body),
            json::parse(R"({"principal":"alice","description":"laptop","expires_in_seconds":2592000})"));

  CliRun as_json = Cli(api, {"tokens", "create", "--principal", "alice", "-o", "json"});
  ASSERT_EQ(as_json.exit_code, 0) << as_json;
  EXPECT_EQ(json::parse(as_json.out).at("token"), "spt_s3cr3t");
  EXPECT_EQ(json::parse(api.requests()[1].body), json::parse(R"({"principal":"alice"})"));
}

TEST(CliTokens, CreateErrors) {
  FakeApi api([](const FakeApi::Request&) { return Problem(422, "invalid", "principal 'zed' is not in the policy"); });
  CliRun unknown = Cli(api, {"tokens", "create", "--principal", "zed"});
  EXPECT_EQ(unknown.exit_code, 7) << unknown;
  EXPECT_TRUE(OneErrorLine(unknown));
  EXPECT_NE(unknown.err.find("principal 'zed' is not in the policy"), std::string::npos) << unknown;

  for (const char* bad : {"30", "d", "0d", "5y", "1.5h", "-3h", "999999999999d"}) {
    CliRun run = Cli(api, {"tokens", "create", "--principal", "alice", "--expires-in", bad});
    EXPECT_EQ(run.exit_code, 2) << bad << ": " << run;
    EXPECT_TRUE(OneErrorLine(run)) << bad;
  }
  EXPECT_EQ(api.requests().size(), 1u);  // bad durations never reach the server

  CliRun missing = Cli(api, {"tokens", "create"});
  EXPECT_EQ(missing.exit_code, 2) << missing;
  EXPECT_TRUE(OneErrorLine(missing));
}

TEST(CliTokens, ListFiltersByPrincipalAndNeverShowsSecrets) {
  FakeApi api([](const FakeApi::Request&) { return Json(200, std::string(R"({"items":[)") + kTokenRecord + "]}"); });
  CliRun run = Cli(api, {"tokens", "list", "--principal", "alice"});
  ASSERT_EQ(run.exit_code, 0) << run;
  EXPECT_EQ(api.requests().at(0).target, "/v1/tokens?principal=alice");
  auto lines = Lines(run.out);
  ASSERT_EQ(lines.size(), 2u) << run;
  for (const char* column : {"TOKEN", "PRINCIPAL", "DESCRIPTION", "CREATED", "EXPIRES", "REVOKED"}) {
    EXPECT_NE(lines[0].find(column), std::string::npos) << column;
  }
  EXPECT_EQ(lines[1].rfind("tok_9 ", 0), 0u) << run;

  CliRun all = Cli(api, {"tokens", "list", "-o", "yaml"});
  ASSERT_EQ(all.exit_code, 0) << all;
  EXPECT_EQ(api.requests().at(1).target, "/v1/tokens");
}

TEST(CliTokens, RevokeAndItsErrors) {
  FakeApi api([](const FakeApi::Request& request) {
    if (request.target == "/v1/tokens/tok_9") {
      json::object revoked = json::parse(kTokenRecord).as_object();
      revoked["revoked_at"] = "2024-12-04T11:00:00.000Z";
      return Json(200, json::serialize(revoked));
    }
    if (request.target == "/v1/tokens/tok_old") return Problem(409, "conflict", "token tok_old is already revoked");
    return Problem(404, "not-found", "no token " + request.target);
  });
  CliRun run = Cli(api, {"tokens", "revoke", "tok_9"});
  ASSERT_EQ(run.exit_code, 0) << run;
  EXPECT_EQ(run.out, "token tok_9 revoked (principal alice)\n");
  EXPECT_EQ(api.requests().at(0).method, "DELETE");

  CliRun again = Cli(api, {"tokens", "revoke", "tok_old"});
  EXPECT_EQ(again.exit_code, 5) << again;
  EXPECT_TRUE(OneErrorLine(again));
  EXPECT_NE(again.err.find("request id rq-409"), std::string::npos) << again;

  CliRun missing = Cli(api, {"tokens", "revoke", "tok/x"});
  EXPECT_EQ(missing.exit_code, 3) << missing;
  EXPECT_TRUE(OneErrorLine(missing));
  EXPECT_EQ(api.requests().at(2).target, "/v1/tokens/tok%2Fx");
}

TEST(CliTokens, ForbiddenAndUnauthenticatedExit4) {
  FakeApi api([](const FakeApi::Request& request) {
    if (request.headers.count("authorization") == 0) return Problem(401, "unauthenticated", "no bearer token");
    return Problem(403, "forbidden", "action token.list is not allowed");
  });
  CliRun forbidden = Cli(api, {"tokens", "list"});
  EXPECT_EQ(forbidden.exit_code, 4) << forbidden;
  EXPECT_TRUE(OneErrorLine(forbidden));
  EXPECT_NE(forbidden.err.find("token.list"), std::string::npos) << forbidden;
  EXPECT_EQ(forbidden.err.find("t0k"), std::string::npos) << "token leaked: " << forbidden;

  CliRun anonymous = RunCli({"tokens", "list", "--server", api.url()});
  EXPECT_EQ(anonymous.exit_code, 4) << anonymous;
  EXPECT_TRUE(OneErrorLine(anonymous));
}

// ---- changes and the 202 of stores register -----------------------------------------

TEST(CliChanges, RegisterAnsweredWith202PrintsThePendingChange) {
  FakeApi api([](const FakeApi::Request&) {
    FakeApi::Reply reply = Json(202, kPendingChange);
    reply.headers.emplace_back("Location", "/v1/changes/chg_1");
    return reply;
  });
  CliRun run = Cli(api, {"stores", "register", "acme", "--environment", "production", "--isolation-mode", "dedicated"});
  ASSERT_EQ(run.exit_code, 0) << run;
  EXPECT_EQ(run.err, "storeplane: approval required: change chg_1 is pending (1 approval needed)\n");
  EXPECT_NE(run.out.find("chg_1"), std::string::npos) << run;
  EXPECT_NE(run.out.find("pending"), std::string::npos) << run;
  EXPECT_NE(run.out.find("approvals:"), std::string::npos) << run;
  EXPECT_EQ(run.out.find("registered"), std::string::npos) << run;

  CliRun as_json = Cli(api, {"stores", "register", "acme", "--environment", "production", "--isolation-mode",
                             "dedicated", "-o", "json"});
  ASSERT_EQ(as_json.exit_code, 0) << as_json;
  json::value change = json::parse(as_json.out);
  EXPECT_EQ(change.at("id"), "chg_1");
  EXPECT_EQ(change.at("status"), "pending");
  EXPECT_EQ(change.at("approvals_needed"), 1);
  EXPECT_NE(as_json.err.find("approval required: change chg_1 is pending"), std::string::npos) << as_json;
}

TEST(CliChanges, A202WithoutAChangeIsUnexpected) {
  FakeApi api([](const FakeApi::Request&) { return Json(202, "{}"); });
  CliRun run = Cli(api, {"stores", "register", "acme", "--environment", "production", "--isolation-mode", "shared"});
  EXPECT_EQ(run.exit_code, 1) << run;
  EXPECT_TRUE(OneErrorLine(run));
}

TEST(CliChanges, ListAndGet) {
  FakeApi api([](const FakeApi::Request& request) {
    if (PathOf(request.target) == "/v1/changes") return Json(200, std::string(R"({"items":[)") + kPendingChange + "]}");
    if (request.target == "/v1/changes/chg_1") return Json(200, kPendingChange);
    return Problem(404, "not-found", "no change");
  });
  CliRun list = Cli(api, {"changes", "list", "--status", "pending"});
  ASSERT_EQ(list.exit_code, 0) << list;
  EXPECT_EQ(api.requests().at(0).target, "/v1/changes?status=pending");
  auto lines = Lines(list.out);
  ASSERT_EQ(lines.size(), 2u) << list;
  for (const char* column : {"CHANGE", "ACTION", "TARGET", "REQUESTER", "STATUS", "APPROVALS"}) {
    EXPECT_NE(lines[0].find(column), std::string::npos) << column;
  }
  EXPECT_EQ(lines[1].rfind("chg_1 ", 0), 0u) << list;
  EXPECT_NE(lines[1].find("0/1"), std::string::npos) << list;

  CliRun bad_status = Cli(api, {"changes", "list", "--status", "approved"});
  EXPECT_EQ(bad_status.exit_code, 2) << bad_status;

  CliRun get = Cli(api, {"changes", "get", "chg_1"});
  ASSERT_EQ(get.exit_code, 0) << get;
  EXPECT_NE(get.out.find("status:"), std::string::npos) << get;
  EXPECT_NE(get.out.find("requester:"), std::string::npos) << get;
  EXPECT_NE(get.out.find("\"isolation_mode\":\"dedicated\""), std::string::npos) << get;

  CliRun missing = Cli(api, {"changes", "get", "chg_404"});
  EXPECT_EQ(missing.exit_code, 3) << missing;
  EXPECT_TRUE(OneErrorLine(missing));
}

TEST(CliChanges, ApproveRunsTheChangeOrSaysWhyNot) {
  FakeApi api([](const FakeApi::Request& request) {
    if (request.target == "/v1/changes/chg_1/approve") {
      return Json(200, ChangeWith("executed", R"(["bob"])", "store acme registered"));
    }
    if (request.target == "/v1/changes/chg_2/approve") return Json(200, ChangeWith("pending", R"(["bob"])", ""));
    if (request.target == "/v1/changes/chg_own/approve") {
      return Problem(403, "forbidden", "the requester cannot approve their own change");
    }
    if (request.target == "/v1/changes/chg_old/approve") return Problem(409, "conflict", "change chg_old expired");
    if (request.target == "/v1/changes/chg_bad/approve") {
      return Json(200, ChangeWith("failed", R"(["bob"])", "error:conflict store acme exists"));
    }
    return Problem(404, "not-found", "no change");
  });
  CliRun run = Cli(api, {"changes", "approve", "chg_1"});
  ASSERT_EQ(run.exit_code, 0) << run;
  EXPECT_EQ(run.out, "change chg_1 approved: executed (store acme registered)\n");
  auto requests = api.requests();
  EXPECT_EQ(requests.at(0).method, "POST");
  EXPECT_EQ(json::parse(requests.at(0).body), json::parse("{}"));

  CliRun more = Cli(api, {"changes", "approve", "chg_2"});
  ASSERT_EQ(more.exit_code, 0) << more;
  EXPECT_NE(more.out.find("still pending"), std::string::npos) << more;

  CliRun own = Cli(api, {"changes", "approve", "chg_own"});
  EXPECT_EQ(own.exit_code, 4) << own;
  EXPECT_TRUE(OneErrorLine(own));
  EXPECT_NE(own.err.find("own change"), std::string::npos) << own;

  CliRun expired = Cli(api, {"changes", "approve", "chg_old"});
  EXPECT_EQ(expired.exit_code, 5) << expired;
  EXPECT_TRUE(OneErrorLine(expired));

  CliRun failed = Cli(api, {"changes", "approve", "chg_bad"});
  EXPECT_EQ(failed.exit_code, 1) << failed;
  EXPECT_TRUE(OneErrorLine(failed));
  EXPECT_NE(failed.err.find("store acme exists"), std::string::npos) << failed;
}

TEST(CliChanges, RejectSendsTheReason) {
  FakeApi api([](const FakeApi::Request&) { return Json(200, ChangeWith("rejected", "[]", "rejected by bob")); });
  CliRun run = Cli(api, {"changes", "reject", "chg_1", "--reason", "not during the sale"});
  ASSERT_EQ(run.exit_code, 0) << run;
  EXPECT_EQ(run.out, "change chg_1 rejected\n");
  auto requests = api.requests();
  EXPECT_EQ(requests.at(0).target, "/v1/changes/chg_1/reject");
  EXPECT_EQ(json::parse(requests.at(0).body), json::parse(R"({"reason":"not during the sale"})"));

  CliRun plain = Cli(api, {"changes", "reject", "chg_1", "-o", "json"});
  ASSERT_EQ(plain.exit_code, 0) << plain;
  EXPECT_EQ(json::parse(api.requests().at(1).body), json::parse("{}"));
  EXPECT_EQ(json::parse(plain.out).at("status"), "rejected");
}

// ---- authz explain -------------------------------------------------------------------

TEST(CliAuthz, ExplainSendsTheTargetAndPrintsTheDecision) {
  FakeApi api([](const FakeApi::Request& request) {
    json::value body = json::parse(request.body);
    if (body.at("principal") == "mallory") {
      return Json(200, R"({"allowed":false,"rule":"default/deny","reason":"no role grants store.register",)"
                       R"("approval":null})");
    }
    return Json(200, R"({"allowed":true,"rule":"operator/allow/1","reason":"role operator grants store.register",)"
                     R"("approval":{"rule":"approval/1","approvals":1,"approver_role":"approver"}})");
  });
  CliRun run = Cli(api, {"authz", "explain", "--principal", "alice", "--action", "store.register", "--environment",
                         "production", "-l", "tier=gold", "-l", "region=eu"});
  ASSERT_EQ(run.exit_code, 0) << run;
  EXPECT_NE(run.out.find("decision:"), std::string::npos) << run;
  EXPECT_NE(run.out.find("allowed"), std::string::npos) << run;
  EXPECT_NE(run.out.find("operator/allow/1"), std::string::npos) << run;
  EXPECT_NE(run.out.find("1 approval by role approver (rule approval/1)"), std::string::npos) << run;
  auto requests = api.requests();
  EXPECT_EQ(requests.at(0).target, "/v1/authz/explain");
  EXPECT_EQ(json::parse(requests.at(0).body),
            json::parse(R"({"principal":"alice","action":"store.register",)"
                        R"("target":{"environment":"production","labels":{"region":"eu","tier":"gold"}}})"));

  CliRun store = Cli(api, {"authz", "explain", "--principal", "alice", "--action", "store.read", "--store", "acme"});
  ASSERT_EQ(store.exit_code, 0) << store;
  EXPECT_EQ(json::parse(api.requests().at(1).body),
            json::parse(R"({"principal":"alice","action":"store.read","target":{"store":"acme"}})"));

  CliRun none = Cli(api, {"authz", "explain", "--principal", "alice", "--action", "audit.read", "-o", "json"});
  ASSERT_EQ(none.exit_code, 0) << none;
  EXPECT_EQ(json::parse(api.requests().at(2).body), json::parse(R"({"principal":"alice","action":"audit.read"})"));
  EXPECT_EQ(json::parse(none.out).at("allowed"), true);

  CliRun denied = Cli(api, {"authz", "explain", "--principal", "mallory", "--action", "store.register"});
  ASSERT_EQ(denied.exit_code, 0) << denied;
  EXPECT_NE(denied.out.find("denied"), std::string::npos) << denied;
  EXPECT_NE(denied.out.find("default/deny"), std::string::npos) << denied;
  EXPECT_EQ(denied.out.find("approval"), std::string::npos) << denied;
}

TEST(CliAuthz, ExplainUsageErrors) {
  FakeApi api([](const FakeApi::Request&) { return Json(200, R"({"allowed":true})"); });
  const std::vector<std::vector<std::string>> cases = {
      {"authz", "explain", "--action", "store.read"},
      {"authz", "explain", "--principal", "alice"},
      {"authz", "explain", "--principal", "alice", "--action", "store.read", "--store", "s", "--environment", "p"},
      {"authz", "explain", "--principal", "alice", "--action", "store.read", "-l", "tier=gold"},
      {"authz", "explain", "--principal", "alice", "--action", "store.read", "--environment", "p", "-l", "tier"},
  };
  for (const auto& args : cases) {
    CliRun run = Cli(api, args);
    EXPECT_EQ(run.exit_code, 2) << run;
    EXPECT_TRUE(OneErrorLine(run));
  }
  EXPECT_TRUE(api.requests().empty());
}

// ---- audit list / export -------------------------------------------------------------

TEST(CliAudit, ListSendsFiltersAndFollowsAfterCursors) {
  AuditFixture fixture = AuditFixture::Build(3, 0);
  FakeApi api([&fixture](const FakeApi::Request& request) {
    auto query = QueryOf(request.target);
    size_t after = query.count("after") ? std::stoul(query["after"]) : 0;
    json::array items;
    if (after < fixture.records.size()) items.push_back(AuditFixture::RecordJson(fixture.records[after]));
    json::value next = after + 1 < fixture.records.size() ? json::value(std::to_string(after + 1)) : json::value();
    return Json(200, json::serialize(json::object{{"items", items}, {"next_cursor", next}}));
  });
  CliRun one = Cli(api, {"audit", "list", "--limit", "1", "--principal", "admin", "--action", "store.register",
                         "--target", "store/shop-2"});
  ASSERT_EQ(one.exit_code, 0) << one;
  EXPECT_EQ(api.requests().at(0).target,
            "/v1/audit?limit=1&principal=admin&action=store.register&target=store%2Fshop-2");
  auto lines = Lines(one.out);
  ASSERT_EQ(lines.size(), 2u) << one;
  for (const char* column : {"SEQ", "TIME", "PRINCIPAL", "ACTION", "TARGET", "DECISION", "RULE", "OUTCOME"}) {
    EXPECT_NE(lines[0].find(column), std::string::npos) << column;
  }
  EXPECT_NE(one.err.find("--after 1"), std::string::npos) << one;

  CliRun all = Cli(api, {"audit", "list", "--all", "--after", "0", "-o", "json"});
  ASSERT_EQ(all.exit_code, 0) << all;
  json::value listing = json::parse(all.out);
  EXPECT_EQ(listing.at("items").as_array().size(), 3u);
  EXPECT_TRUE(listing.at("next_cursor").is_null());
  auto requests = api.requests();
  ASSERT_EQ(requests.size(), 4u);
  EXPECT_EQ(requests[1].target, "/v1/audit?after=0");
  EXPECT_EQ(requests[2].target, "/v1/audit?after=1");
  EXPECT_EQ(requests[3].target, "/v1/audit?after=2");

  CliRun bad_limit = Cli(api, {"audit", "list", "--limit", "5000"});
  EXPECT_EQ(bad_limit.exit_code, 2) << bad_limit;
}

TEST(CliAudit, ExportWritesNdjsonToStdoutOrAtomicallyToAFile) {
  AuditFixture fixture = AuditFixture::Build(4, 2);
  const std::string ndjson = AuditFixture::Join(fixture.NdjsonLines());
  FakeApi api([&ndjson](const FakeApi::Request& request) {
    if (request.headers.count("x-deny")) return Problem(403, "forbidden", "action audit.export is not allowed");
    return FakeApi::Reply{200, {{"Content-Type", "application/x-ndjson"}}, ndjson};
  });
  CliRun to_stdout = Cli(api, {"audit", "export"});
  ASSERT_EQ(to_stdout.exit_code, 0) << to_stdout;
  EXPECT_EQ(to_stdout.out, ndjson);
  EXPECT_EQ(api.requests().at(0).target, "/v1/audit/export");
  EXPECT_NE(api.requests().at(0).headers["accept"].find("application/x-ndjson"), std::string::npos);

  TempDir dir;
  std::string file = dir.path() + "/audit.ndjson";
  CliRun to_file = Cli(api, {"audit", "export", "-f", file});
  ASSERT_EQ(to_file.exit_code, 0) << to_file;
  EXPECT_EQ(to_file.out, "exported 4 records and 2 checkpoints to " + file + "\n");
  std::ifstream in(file);
  std::string written((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(written, ndjson);
  size_t entries = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    (void)entry;
    ++entries;
  }
  EXPECT_EQ(entries, 1u) << "a temporary file was left behind";

  // The exported file verifies offline.
  std::string key = dir.path() + "/key.pem";
  std::ofstream(key) << fixture.key.public_pem;
  CliRun verify = RunCli({"audit", "verify", "--file", file, "--public-key", key});
  EXPECT_EQ(verify.exit_code, 0) << verify;
  EXPECT_EQ(verify.out, "audit chain OK: 4 records, 2 checkpoints verified\n");

  CliRun unwritable = Cli(api, {"audit", "export", "-f", dir.path() + "/no/such/dir/audit.ndjson"});
  EXPECT_EQ(unwritable.exit_code, 1) << unwritable;
  EXPECT_TRUE(OneErrorLine(unwritable));
}

TEST(CliAudit, ExportRefusedLeavesNoFile) {
  FakeApi api([](const FakeApi::Request&) { return Problem(403, "forbidden", "action audit.export is not allowed"); });
  TempDir dir;
  std::string file = dir.path() + "/audit.ndjson";
  CliRun run = Cli(api, {"audit", "export", "--file", file});
  EXPECT_EQ(run.exit_code, 4) << run;
  EXPECT_TRUE(OneErrorLine(run));
  EXPECT_NE(run.err.find("audit.export"), std::string::npos) << run;
  EXPECT_FALSE(std::filesystem::exists(file));
}

// ---- audit verify against a (fake) live server ---------------------------------------

// Serves a trail page by page as the API does; `tamper` may edit the records' JSON.
class LiveTrail {
 public:
  explicit LiveTrail(AuditFixture fixture) : fixture_(std::move(fixture)) {
    for (const auto& record : fixture_.records) records_.push_back(AuditFixture::RecordJson(record));
    for (const auto& checkpoint : fixture_.checkpoints)
      checkpoints_.push_back(AuditFixture::CheckpointJson(checkpoint));
  }
  json::array& records() { return records_; }
  const AuditFixture& fixture() const { return fixture_; }

  FakeApi::Reply Serve(const FakeApi::Request& request) const {
    std::string path = PathOf(request.target);
    auto query = QueryOf(request.target);
    if (path == "/v1/audit/public-key") {
      return Json(200, json::serialize(json::object{{"key_id", core::KeyId(fixture_.key.public_pem).value()},
                                                    {"public_key_pem", fixture_.key.public_pem}}));
    }
    const json::array* source = path == "/v1/audit"               ? &records_
                                : path == "/v1/audit/checkpoints" ? &checkpoints_
                                                                  : nullptr;
    if (source == nullptr) return Problem(404, "not-found", "no route " + path);
    // Pages of 2 whatever the limit, so that the client must follow cursors.
    std::int64_t after = query.count("after") ? std::stoll(query["after"]) : 0;
    json::array page;
    json::value next = nullptr;
    for (const auto& item : *source) {
      if (item.at("seq").as_int64() <= after) continue;
      if (page.size() == 2) {
        next = json::value(std::to_string(page.back().at("seq").as_int64()));
        break;
      }
      page.push_back(item);
    }
    return Json(200, json::serialize(json::object{{"items", page}, {"next_cursor", next}}));
  }

 private:
  AuditFixture fixture_;
  json::array records_;
  json::array checkpoints_;
};

TEST(CliAuditLive, VerifiesTheServersTrailPageByPage) {
  LiveTrail trail(AuditFixture::Build(7, 3));  // checkpoints at 3 and 6
  FakeApi api([&trail](const FakeApi::Request& request) { return trail.Serve(request); });

  CliRun fetched_key = Cli(api, {"audit", "verify"});
  ASSERT_EQ(fetched_key.exit_code, 0) << fetched_key;
  EXPECT_EQ(fetched_key.out, "audit chain OK: 7 records, 2 checkpoints verified\n");
  EXPECT_NE(fetched_key.err.find("internally consistent"), std::string::npos) << fetched_key;
  std::vector<std::string> targets;
  for (const auto& request : api.requests()) targets.push_back(request.target);
  EXPECT_EQ(targets, (std::vector<std::string>{"/v1/audit/public-key", "/v1/audit/checkpoints?limit=1000",
                                               "/v1/audit?limit=1000", "/v1/audit?after=2&limit=1000",
                                               "/v1/audit?after=4&limit=1000", "/v1/audit?after=6&limit=1000"}));

  TempDir dir;
  std::string key = dir.path() + "/key.pem";
  std::ofstream(key) << trail.fixture().key.public_pem;
  CliRun own_key = Cli(api, {"audit", "verify", "--public-key", key});
  ASSERT_EQ(own_key.exit_code, 0) << own_key;
  EXPECT_EQ(own_key.err, "");
  auto requests = api.requests();
  ASSERT_GT(requests.size(), targets.size());
  for (size_t i = targets.size(); i < requests.size(); ++i) {
    EXPECT_NE(requests[i].target, "/v1/audit/public-key") << "the key was fetched although one was given";
  }
}

TEST(CliAuditLive, ATamperedRecordOnTheServerIsNamed) {
  LiveTrail trail(AuditFixture::Build(7, 3));
  trail.records()[4].as_object()["target"] = "store/other";  // record 5
  FakeApi api([&trail](const FakeApi::Request& request) { return trail.Serve(request); });
  CliRun run = Cli(api, {"audit", "verify"});
  EXPECT_EQ(run.exit_code, 8) << run;
  EXPECT_EQ(Lines(run.err).size(), 2u) << run;  // the note on the fetched key, then the failure
  EXPECT_NE(run.err.find("storeplane: audit verification failed at record 5: "), std::string::npos) << run;

  LiveTrail cut(AuditFixture::Build(7, 3));
  cut.records().erase(cut.records().begin() + 5, cut.records().end());  // records 6 and 7 gone
  FakeApi cut_api([&cut](const FakeApi::Request& request) { return cut.Serve(request); });
  CliRun truncated = Cli(cut_api, {"audit", "verify"});
  EXPECT_EQ(truncated.exit_code, 8) << truncated;
  EXPECT_NE(truncated.err.find("failed at record 6: "), std::string::npos) << truncated;
}

TEST(CliAuditLive, ServerRefusalsKeepTheirExitCodes) {
  FakeApi api([](const FakeApi::Request& request) {
    if (PathOf(request.target) == "/v1/audit/public-key") return Problem(403, "forbidden", "action audit.read");
    return Problem(500, "internal", "boom");
  });
  CliRun forbidden = Cli(api, {"audit", "verify"});
  EXPECT_EQ(forbidden.exit_code, 4) << forbidden;
  EXPECT_TRUE(OneErrorLine(forbidden));

  TempDir dir;
  AuditFixture fixture = AuditFixture::Build(1, 0);
  std::string key = dir.path() + "/key.pem";
  std::ofstream(key) << fixture.key.public_pem;
  CliRun broken = Cli(api, {"audit", "verify", "--public-key", key});
  EXPECT_EQ(broken.exit_code, 1) << broken;
  EXPECT_TRUE(OneErrorLine(broken));
}

}  // namespace
}  // namespace storeplane
