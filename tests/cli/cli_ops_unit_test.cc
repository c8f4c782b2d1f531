// Unit tests of the pure parts of `ops`, `agents` and `stores health`: operation names and
// params checked against the catalog, request bodies, query paths, polling delays and the
// rendering of operations, results, agents and health. No server, no child processes.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <string>
#include <vector>

#include "cli/agents_commands.h"
#include "cli/ops_commands.h"

namespace storeplane::cli {
namespace {

namespace json = boost::json;

json::object Parse(std::string_view text) { return json::parse(text).as_object(); }

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// --- names and params -------------------------------------------------------------------

TEST(CliOpsParse, OperationNamesAreTheCatalog) {
  EXPECT_EQ(ParseOperationArg("cache.flush").value(), core::OperationName::kCacheFlush);
  EXPECT_EQ(ParseOperationArg("release.report").value(), core::OperationName::kReleaseReport);
  for (const char* bad : {"", "cache.wipe", "CACHE.FLUSH", "cache.flush ", "rm -rf"}) {
    auto parsed = ParseOperationArg(bad);
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_EQ(parsed.error().code, ErrorCode::kInvalidArgument);
    EXPECT_TRUE(Contains(parsed.error().message, "health.probe")) << "names the catalog: " << parsed.error().message;
  }
}

TEST(CliOpsParse, CacheFlushTakesTypesCommaSeparatedAndRepeated) {
  auto none = ParseOperationParams(core::OperationName::kCacheFlush, {});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->cache_types.empty());

  auto params = ParseOperationParams(core::OperationName::kCacheFlush, {"types=config,full_page", "types=block_html"});
  ASSERT_TRUE(params.ok()) << params.error().message;
  EXPECT_EQ(params->cache_types, (std::vector<core::CacheType>{core::CacheType::kConfig, core::CacheType::kFullPage,
                                                               core::CacheType::kBlockHtml}));
}

TEST(CliOpsParse, BadParamsAreRefusedWithOneMessage) {
  const std::vector<std::pair<core::OperationName, std::vector<std::string>>> cases = {
      {core::OperationName::kCacheFlush, {"types=config,bogus"}},            // unknown cache type
      {core::OperationName::kCacheFlush, {"types=config", "types=config"}},  // repeated
      {core::OperationName::kCacheFlush, {"types=config,,layout"}},          // empty item
      {core::OperationName::kCacheFlush, {"types="}},                        // nothing named
      {core::OperationName::kCacheFlush, {"type=config"}},                   // unknown key
      {core::OperationName::kCacheFlush, {"config"}},                        // not key=value
      {core::OperationName::kCacheFlush, {"=config"}},                       // empty key
      {core::OperationName::kHealthProbe, {"types=config"}},                 // takes no params
      {core::OperationName::kMaintenanceEnable, {"force=1"}},
  };
  for (const auto& [name, args] : cases) {
    auto parsed = ParseOperationParams(name, args);
    ASSERT_FALSE(parsed.ok()) << core::ToString(name) << " " << args.front();
    EXPECT_EQ(parsed.error().code, ErrorCode::kInvalidArgument);
    EXPECT_EQ(parsed.error().message.find('\n'), std::string::npos);
  }
}

TEST(CliOpsParse, SecondsArePlainNumbersOrDurations) {
  EXPECT_EQ(ParseSeconds("300").value(), 300);
  EXPECT_EQ(ParseSeconds("5m").value(), 300);
  EXPECT_EQ(ParseSeconds("1h").value(), 3600);
  for (const char* bad : {"", "0", "-5", "5 m", "1.5", "12x", "9999999999999999999"}) {
    EXPECT_FALSE(ParseSeconds(bad).ok()) << bad;
  }
}

// --- requests -------------------------------------------------------------------------

TEST(CliOpsRequest, BodyCarriesNameParamsAndExpiry) {
  core::OperationParams params;
  params.cache_types = {core::CacheType::kConfig, core::CacheType::kFullPage};
  EXPECT_EQ(json::value(OperationRequestBody(core::OperationName::kCacheFlush, params, 300)),
            json::parse(R"({"name":"cache.flush","params":{"types":["config","full_page"]},"expires_in_s":300})"));
  EXPECT_EQ(json::value(OperationRequestBody(core::OperationName::kHealthProbe, {}, 60)),
            json::parse(R"({"name":"health.probe","params":{},"expires_in_s":60})"));
}

TEST(CliOpsRequest, PathsEncodeTheirParts) {
  EXPECT_EQ(OperationsPath("s1", 0, ""), "/v1/stores/s1/operations");
  EXPECT_EQ(OperationsPath("s1", 20, ""), "/v1/stores/s1/operations?limit=20");
  EXPECT_EQ(OperationsPath("s1", 0, "op_ab"), "/v1/stores/s1/operations?cursor=op_ab");
  EXPECT_EQ(OperationsPath("s/1", 5, "a b"), "/v1/stores/s%2F1/operations?limit=5&cursor=a%20b");
  EXPECT_EQ(OperationPath("s1", "op_12"), "/v1/stores/s1/operations/op_12");
  EXPECT_EQ(OperationPath("s1", "../x"), "/v1/stores/s1/operations/..%2Fx");
  EXPECT_EQ(AgentPath("s1"), "/v1/stores/s1/agent");
  EXPECT_EQ(EnrollmentTokensPath("s1"), "/v1/stores/s1/enrollment-tokens");
  EXPECT_EQ(StoreHealthPath("s 1"), "/v1/stores/s%201/health");
}

TEST(CliOpsWait, FinalStatesAndPollingDelays) {
  EXPECT_TRUE(IsFinalStateText("succeeded"));
  EXPECT_TRUE(IsFinalStateText("failed"));
  EXPECT_TRUE(IsFinalStateText("expired"));
  EXPECT_FALSE(IsFinalStateText("queued"));
  EXPECT_FALSE(IsFinalStateText("delivered"));
  EXPECT_FALSE(IsFinalStateText("bogus"));

  std::vector<int> delays;
  for (int attempt = 0; attempt < 12; ++attempt) delays.push_back(PollDelayMs(attempt));
  EXPECT_EQ(delays, (std::vector<int>{200, 200, 200, 200, 200, 400, 800, 1000, 1000, 1000, 1000, 1000}));
}

// --- rendering ------------------------------------------------------------------------

constexpr const char* kSucceeded =
    R"({"id":"op_1","store_id":"s1","name":"cache.flush","params":{"types":["config","full_page"]},)"
    R"("state":"succeeded","code":null,"result":{"flushed":["config","full_page"]},"requested_by":"alice",)"
    R"("created_at":"2025-06-01T12:00:00.000Z","delivered_at":"2025-06-01T12:00:00.100Z",)"
    R"("finished_at":"2025-06-01T12:00:01.000Z","expires_at":"2025-06-01T12:05:00.000Z","timeout_s":120,)"
    R"("delivery_count":1})";

TEST(CliOpsRender, OperationLineAndDetails) {
  const json::object op = Parse(kSucceeded);
  EXPECT_EQ(OperationLine(op), "operation op_1 (cache.flush on store s1): succeeded");
  const std::string details = OperationDetails(op);
  EXPECT_TRUE(Contains(details, "operation:")) << details;
  EXPECT_TRUE(Contains(details, "params:        types=config,full_page")) << details;
  EXPECT_TRUE(Contains(details, "state:         succeeded")) << details;
  EXPECT_TRUE(Contains(details, "code:          <none>")) << details;
  EXPECT_TRUE(Contains(details, "timeout:       120 s")) << details;
  EXPECT_TRUE(Contains(details, "\nResult:\nflushed:  config, full_page\n")) << details;

  json::object failed = Parse(kSucceeded);
  failed["state"] = "failed";
  failed["code"] = "timeout";
  failed["result"] = nullptr;
  const std::string failed_details = OperationDetails(failed);
  EXPECT_TRUE(Contains(failed_details, "code:          timeout")) << failed_details;
  EXPECT_FALSE(Contains(failed_details, "Result:")) << failed_details;
}

TEST(CliOpsRender, EveryResultKindReads) {
  EXPECT_EQ(ResultText(json::parse(R"({"maintenance":true})")), "maintenance:  on\n");
  EXPECT_EQ(ResultText(json::parse(R"({"maintenance":false})")), "maintenance:  off\n");
  EXPECT_EQ(ResultText(json::parse(R"({"flushed":[]})")), "flushed:  <none>\n");
  EXPECT_EQ(ResultText(json::parse(R"({"schema_up_to_date":false})")), "schema up to date:  no\n");
  EXPECT_EQ(ResultText(json::parse(R"({"release":"r42","magento_version":"2.4.6-p3"})")),
            "release:          r42\nmagento version:  2.4.6-p3\n");
  EXPECT_EQ(ResultText(json::parse(R"({"magento_version":"2.4.6"})")), "magento version:  2.4.6\n");
  EXPECT_EQ(ResultText(json::parse(R"({"checks":[{"name":"disk","status":"warn","code":"disk_low"}]})")),
            "\nChecks:\nNAME   STATUS   CODE\ndisk   warn     disk_low\n");
  EXPECT_EQ(ResultText(json::parse(R"({"indexers":[{"id":"catalog_product_price","status":"ready"}]})")),
            "\nIndexers:\nINDEXER                 STATUS\ncatalog_product_price   ready\n");
  EXPECT_EQ(ResultText(json::value(nullptr)), "");
  // A field this CLI does not know is shown, not dropped.
  EXPECT_EQ(ResultText(json::parse(R"({"future":{"a":1}})")), "future:  {\"a\":1}\n");
}

TEST(CliOpsRender, OperationsTable) {
  json::array ops{Parse(kSucceeded)};
  const std::string table = OperationsTable(ops);
  EXPECT_EQ(table.substr(0, table.find('\n')),
            "OPERATION   NAME          STATE       CODE     REQUESTED-BY   CREATED                    FINISHED");
  EXPECT_TRUE(Contains(table, "op_1        cache.flush   succeeded   <none>   alice")) << table;
}

TEST(CliAgentsRender, AgentsTableMarksRevokedAgents) {
  json::array agents{Parse(R"({"store_id":"s1","agent_id":"agt_1","availability":"online","health":"healthy",)"
                           R"("last_seen_at":"2025-06-01T12:00:00.000Z","agent_version":"0.1.0","release":"r1",)"
                           R"("reported_isolation":"shared","allowed_operations":["health.probe","cache.flush"],)"
                           R"("enrolled_at":"2025-06-01T11:00:00.000Z","revoked_at":null})"),
                     Parse(R"({"store_id":"s2","agent_id":"agt_2","availability":"offline","health":"unknown",)"
                           R"("last_seen_at":null,"agent_version":null,"release":null,"reported_isolation":null,)"
                           R"("allowed_operations":[],"enrolled_at":"2025-06-01T11:00:00.000Z",)"
                           R"("revoked_at":"2025-06-02T11:00:00.000Z"})")};
  const std::string table = AgentsTable(agents);
  const auto lines = [&] {
    std::vector<std::string> out;
    std::string rest = table;
    for (auto nl = rest.find('\n'); nl != std::string::npos; nl = rest.find('\n')) {
      out.push_back(rest.substr(0, nl));
      rest = rest.substr(nl + 1);
    }
    return out;
  }();
  ASSERT_EQ(lines.size(), 3u) << table;
  EXPECT_EQ(lines[0], "STORE   AGENT   AVAILABILITY   HEALTH    VERSION   LAST-SEEN                  ALLOWED");
  EXPECT_EQ(lines[1],
            "s1      agt_1   online         healthy   0.1.0     2025-06-01T12:00:00.000Z   health.probe,cache.flush");
  EXPECT_EQ(lines[2], "s2      agt_2   revoked        unknown   <none>    <none>                     <none>");
}

constexpr const char* kHealth =
    R"({"store_id":"s1","health":"degraded","reasons":["check_warning:cron","agent_stale"],)"
    R"("availability":"stale","last_seen_at":"2025-06-01T12:00:00.000Z","recorded_isolation":"shared",)"
    R"("reported_isolation":"shared","release":"r42","checks":[{"name":"cron","status":"warn","code":"cron_stale"}],)"
    R"("last_successes":[{"kind":"check","name":"disk","at":"2025-06-01T11:59:00.000Z","ref":null},)"
    R"({"kind":"operation","name":"cache.flush","at":"2025-06-01T11:00:00.000Z","ref":"op_1"}]})";

TEST(CliHealthRender, TableAndDetails) {
  const std::string table = HealthTable(json::array{Parse(kHealth)});
  EXPECT_TRUE(Contains(table, "STORE   HEALTH     AVAILABILITY   REASONS")) << table;
  EXPECT_TRUE(Contains(table, "s1      degraded   stale          check_warning:cron,agent_stale   r42")) << table;

  const std::string details = HealthDetails(Parse(kHealth));
  EXPECT_TRUE(Contains(details, "health:              degraded\n")) << details;
  EXPECT_TRUE(Contains(details, "reasons:             check_warning:cron, agent_stale\n")) << details;
  EXPECT_TRUE(Contains(details, "\nChecks:\nNAME   STATUS   CODE\ncron   warn     cron_stale\n")) << details;
  EXPECT_TRUE(Contains(details, "operation   cache.flush   2025-06-01T11:00:00.000Z   op_1")) << details;
  EXPECT_TRUE(Contains(details, "check       disk          2025-06-01T11:59:00.000Z   <none>")) << details;

  json::object empty = Parse(kHealth);
  empty["checks"] = json::array();
  empty["last_successes"] = json::array();
  empty["reasons"] = json::array();
  const std::string none = HealthDetails(empty);
  EXPECT_TRUE(Contains(none, "reasons:             <none>\n")) << none;
  EXPECT_TRUE(Contains(none, "\nChecks:\n  <none>\n\nLast successes:\n  <none>\n")) << none;
}

}  // namespace
}  // namespace storeplane::cli
