// The agent channel's wire format (src/protocol/agent_wire.h): exact encodings, round
// trips of every message and every operation's params and results, and strict decoding
// that refuses unknown keys, wrong types, bad values and oversized arrays, naming the field.
#include "protocol/agent_wire.h"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <string>
#include <vector>

namespace storeplane::protocol {
namespace {

namespace json = boost::json;
using core::CacheType;
using core::CheckName;
using core::CheckStatus;
using core::IndexerStatus;
using core::OperationName;
using N = core::OperationName;

const std::string kSession = "0123456789abcdef0123456789abcdef";

template <typename T>
void ExpectInvalid(const Result<T>& result, const std::string& field) {
  ASSERT_FALSE(result.ok()) << "expected a refusal naming '" << field << "'";
  EXPECT_EQ(result.error().code, ErrorCode::kInvalidArgument) << result.error().message;
  EXPECT_EQ(result.error().field, field) << result.error().message;
}

template <typename T>
void ExpectMalformed(const Result<T>& result) {
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::kMalformedRequest) << result.error().message;
}

// Replaces (or with a null value removes) one key of a JSON object text.
std::string With(const std::string& body, const std::string& key, const std::string& value_json) {
  json::object o = json::parse(body).as_object();
  if (value_json.empty()) {
    o.erase(key);
  } else {
    o[key] = json::parse(value_json);
  }
  return json::serialize(o);
}
std::string Without(const std::string& body, const std::string& key) { return With(body, key, ""); }

core::OperationResult ValidResultOf(N name) {
  core::OperationResult r;
  switch (name) {
    case N::kHealthProbe:
      r.checks = {{CheckName::kStorefront, CheckStatus::kPass, "http_2xx"},
                  {CheckName::kCron, CheckStatus::kWarn, "cron_stale"},
                  {CheckName::kDisk, CheckStatus::kFail, "disk_critical"}};
      break;
    case N::kMaintenanceEnable: r.maintenance = true; break;
    case N::kMaintenanceDisable: r.maintenance = false; break;
    case N::kCacheFlush: r.flushed = {CacheType::kConfig, CacheType::kFullPage}; break;
    case N::kIndexerStatus:
      r.indexers = {{"catalog_product_price", IndexerStatus::kReady},
                    {"catalogsearch_fulltext", IndexerStatus::kReindexRequired}};
      break;
    case N::kDbStatus: r.schema_up_to_date = false; break;
    case N::kReleaseReport:
      r.release = "2024.05.01-1";
      r.magento_version = "2.4.6-p3";
      break;
  }
  return r;
}

// ---- Enrollment ------------------------------------------------------------------------

const std::string kEnrollRequest = R"({"store_id":"shop-1","enrollment_token":"spe_abc","agent_version":"0.1.0"})";

TEST(EnrollRequestTest, EncodesExactly) {
  EXPECT_EQ(Encode(EnrollRequest{"shop-1", "spe_abc", "0.1.0"}), kEnrollRequest);
}

TEST(EnrollRequestTest, RoundTrips) {
  const EnrollRequest in{"shop-1", "spe_" + std::string(43, 'A'), "1.2.3-rc.1+build"};
  Result<EnrollRequest> out = DecodeEnrollRequest(Encode(in));
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ(out->store_id, in.store_id);
  EXPECT_EQ(out->enrollment_token, in.enrollment_token);
  EXPECT_EQ(out->agent_version, in.agent_version);
}

TEST(EnrollRequestTest, RefusesBadBodies) {
  ExpectMalformed(DecodeEnrollRequest("{"));
  ExpectMalformed(DecodeEnrollRequest(""));
  ExpectMalformed(DecodeEnrollRequest(R"({"store_id":"a",})"));
  ExpectInvalid(DecodeEnrollRequest("[]"), "");
  ExpectInvalid(DecodeEnrollRequest(R"("text")"), "");
  ExpectInvalid(DecodeEnrollRequest(With(kEnrollRequest, "extra", "1")), "extra");
  ExpectInvalid(DecodeEnrollRequest(Without(kEnrollRequest, "store_id")), "store_id");
  ExpectInvalid(DecodeEnrollRequest(With(kEnrollRequest, "store_id", "null")), "store_id");
  ExpectInvalid(DecodeEnrollRequest(With(kEnrollRequest, "store_id", "7")), "store_id");
  ExpectInvalid(DecodeEnrollRequest(With(kEnrollRequest, "store_id", R"("")")), "store_id");
  ExpectInvalid(DecodeEnrollRequest(With(kEnrollRequest, "store_id", '"' + std::string(64, 'a') + '"')), "store_id");
  ExpectInvalid(DecodeEnrollRequest(With(kEnrollRequest, "enrollment_token", R"("spa_abc")")), "enrollment_token");
  ExpectInvalid(DecodeEnrollRequest(With(kEnrollRequest, "enrollment_token", R"("spe_")")), "enrollment_token");
  ExpectInvalid(DecodeEnrollRequest(With(kEnrollRequest, "enrollment_token", "\"spe_" + std::string(125, 'a') + '"')),
                "enrollment_token");
  ExpectInvalid(DecodeEnrollRequest(With(kEnrollRequest, "agent_version", R"("")")), "agent_version");
  ExpectInvalid(DecodeEnrollRequest(With(kEnrollRequest, "agent_version", R"("0.1 beta")")), "agent_version");
  ExpectInvalid(DecodeEnrollRequest(With(kEnrollRequest, "agent_version", '"' + std::string(33, '1') + '"')),
                "agent_version");
  EXPECT_TRUE(
      DecodeEnrollRequest(With(kEnrollRequest, "enrollment_token", "\"spe_" + std::string(124, 'a') + '"')).ok());
}

const std::string kEnrollResponse =
    R"({"agent_id":"agt_0a1b","store_id":"shop-1","credential":"spa_xyz","heartbeat_interval_s":10})";

TEST(EnrollResponseTest, EncodesExactlyAndRoundTrips) {
  const EnrollResponse in{"agt_0a1b", "shop-1", "spa_xyz", 10};
  EXPECT_EQ(Encode(in), kEnrollResponse);
  Result<EnrollResponse> out = DecodeEnrollResponse(Encode(in));
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ(out->agent_id, in.agent_id);
  EXPECT_EQ(out->store_id, in.store_id);
  EXPECT_EQ(out->credential, in.credential);
  EXPECT_EQ(out->heartbeat_interval_s, 10);
}

TEST(EnrollResponseTest, RefusesBadValues) {
  ExpectInvalid(DecodeEnrollResponse(With(kEnrollResponse, "agent_id", R"("agent-1")")), "agent_id");
  ExpectInvalid(DecodeEnrollResponse(With(kEnrollResponse, "agent_id", R"("agt_xyz")")), "agent_id");
  ExpectInvalid(DecodeEnrollResponse(With(kEnrollResponse, "credential", R"("spe_xyz")")), "credential");
  ExpectInvalid(DecodeEnrollResponse(With(kEnrollResponse, "heartbeat_interval_s", "0")), "heartbeat_interval_s");
  ExpectInvalid(DecodeEnrollResponse(With(kEnrollResponse, "heartbeat_interval_s", "3601")), "heartbeat_interval_s");
  ExpectInvalid(DecodeEnrollResponse(With(kEnrollResponse, "heartbeat_interval_s", "10.5")), "heartbeat_interval_s");
  ExpectInvalid(DecodeEnrollResponse(With(kEnrollResponse, "heartbeat_interval_s", R"("10")")), "heartbeat_interval_s");
  ExpectInvalid(DecodeEnrollResponse(With(kEnrollResponse, "heartbeat_interval_s", "18446744073709551615")),
                "heartbeat_interval_s");
  ExpectInvalid(DecodeEnrollResponse(With(kEnrollResponse, "token", R"("x")")), "token");
  EXPECT_TRUE(DecodeEnrollResponse(With(kEnrollResponse, "heartbeat_interval_s", "3600")).ok());
  EXPECT_TRUE(DecodeEnrollResponse(With(kEnrollResponse, "heartbeat_interval_s", "1")).ok());
}

// ---- Heartbeat -------------------------------------------------------------------------

Heartbeat FullHeartbeat() {
  Heartbeat hb;
  hb.agent_version = "0.1.0";
  hb.session = kSession;
  hb.release = "r42";
  hb.isolation_mode = core::IsolationMode::kDedicated;
  hb.allowed_operations = {N::kHealthProbe, N::kCacheFlush};
  hb.checks = {{CheckName::kDisk, CheckStatus::kPass, "disk_ok"}};
  return hb;
}

void ExpectSameHeartbeat(const Heartbeat& a, const Heartbeat& b) {
  EXPECT_EQ(a.agent_version, b.agent_version);
  EXPECT_EQ(a.session, b.session);
  EXPECT_EQ(a.release, b.release);
  EXPECT_EQ(a.isolation_mode, b.isolation_mode);
  EXPECT_EQ(a.allowed_operations, b.allowed_operations);
  EXPECT_EQ(a.checks, b.checks);
}

TEST(HeartbeatTest, EncodesExactly) {
  EXPECT_EQ(Encode(FullHeartbeat()),
            R"({"agent_version":"0.1.0","session":"0123456789abcdef0123456789abcdef","release":"r42",)"
            R"("isolation_mode":"dedicated","allowed_operations":["health.probe","cache.flush"],)"
            R"("checks":[{"name":"disk","status":"pass","code":"disk_ok"}]})");
  Heartbeat bare;
  bare.agent_version = "0.1.0";
  bare.session = kSession;
  EXPECT_EQ(Encode(bare), R"({"agent_version":"0.1.0","session":"0123456789abcdef0123456789abcdef","release":null,)"
                          R"("isolation_mode":null,"allowed_operations":[],"checks":[]})");
}

TEST(HeartbeatTest, RoundTrips) {
  Heartbeat full = FullHeartbeat();
  full.allowed_operations = core::AllOperationNames();
  full.checks.clear();
  for (CheckName name : core::AllCheckNames()) full.checks.push_back({name, CheckStatus::kWarn, "some_code_1"});
  Result<Heartbeat> out = DecodeHeartbeat(Encode(full));
  ASSERT_TRUE(out.ok()) << out.error().message;
  ExpectSameHeartbeat(*out, full);

  Heartbeat bare;
  bare.agent_version = "0.1.0";
  bare.session = kSession;
  out = DecodeHeartbeat(Encode(bare));
  ASSERT_TRUE(out.ok()) << out.error().message;
  ExpectSameHeartbeat(*out, bare);
}

TEST(HeartbeatTest, OptionalFieldsMayBeAbsent) {
  const std::string body = Without(Without(Encode(FullHeartbeat()), "release"), "isolation_mode");
  Result<Heartbeat> out = DecodeHeartbeat(body);
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_FALSE(out->release.has_value());
  EXPECT_FALSE(out->isolation_mode.has_value());
}

TEST(HeartbeatTest, RefusesBadSessions) {
  const std::string body = Encode(FullHeartbeat());
  for (const std::string& bad : {std::string("0123456789abcde"),   // 15
                                 std::string(65, 'a'),             // 65
                                 std::string("0123456789ABCDEF"),  // uppercase
                                 std::string("0123456789abcdeg"),  // not hex
                                 std::string("0123456789abcdef 0123456789abcdef")}) {
    ExpectInvalid(DecodeHeartbeat(With(body, "session", '"' + bad + '"')), "session");
  }
  ExpectInvalid(DecodeHeartbeat(With(body, "session", "12345678901234567890")), "session");
  EXPECT_TRUE(DecodeHeartbeat(With(body, "session", '"' + std::string(16, 'f') + '"')).ok());
  EXPECT_TRUE(DecodeHeartbeat(With(body, "session", '"' + std::string(64, '0') + '"')).ok());
}

TEST(HeartbeatTest, RefusesBadFields) {
  const std::string body = Encode(FullHeartbeat());
  ExpectInvalid(DecodeHeartbeat(With(body, "hostname", R"("web1")")), "hostname");
  ExpectInvalid(DecodeHeartbeat(Without(body, "agent_version")), "agent_version");
  ExpectInvalid(DecodeHeartbeat(Without(body, "session")), "session");
  ExpectInvalid(DecodeHeartbeat(Without(body, "allowed_operations")), "allowed_operations");
  ExpectInvalid(DecodeHeartbeat(Without(body, "checks")), "checks");
  ExpectInvalid(DecodeHeartbeat(With(body, "release", R"("r 42")")), "release");
  ExpectInvalid(DecodeHeartbeat(With(body, "release", "42")), "release");
  ExpectInvalid(DecodeHeartbeat(With(body, "isolation_mode", R"("private")")), "isolation_mode");
  ExpectInvalid(DecodeHeartbeat(With(body, "isolation_mode", "true")), "isolation_mode");
  ExpectInvalid(DecodeHeartbeat(With(body, "allowed_operations", R"("health.probe")")), "allowed_operations");
  ExpectInvalid(DecodeHeartbeat(With(body, "allowed_operations", R"(["shell.exec"])")), "allowed_operations[0]");
  ExpectInvalid(DecodeHeartbeat(With(body, "allowed_operations", R"(["db.status",3])")), "allowed_operations[1]");
  ExpectInvalid(DecodeHeartbeat(With(body, "allowed_operations", R"(["db.status","health.probe","db.status"])")),
                "allowed_operations[2]");
  json::array seventeen;
  for (int i = 0; i < 17; ++i) seventeen.emplace_back("health.probe");
  ExpectInvalid(DecodeHeartbeat(With(body, "allowed_operations", json::serialize(seventeen))), "allowed_operations");
}

TEST(HeartbeatTest, RefusesBadChecks) {
  const std::string body = Encode(FullHeartbeat());
  ExpectInvalid(DecodeHeartbeat(With(body, "checks", "{}")), "checks");
  ExpectInvalid(DecodeHeartbeat(With(body, "checks", "[1]")), "checks[0]");
  ExpectInvalid(DecodeHeartbeat(With(body, "checks", R"([{"name":"disk","status":"pass"}])")), "checks[0].code");
  ExpectInvalid(DecodeHeartbeat(With(body, "checks", R"([{"name":"disk","status":"pass","code":"ok","detail":"x"}])")),
                "checks[0].detail");
  ExpectInvalid(DecodeHeartbeat(With(body, "checks", R"([{"name":"load","status":"pass","code":"ok"}])")),
                "checks[0].name");
  ExpectInvalid(DecodeHeartbeat(With(body, "checks", R"([{"name":"disk","status":"ok","code":"ok"}])")),
                "checks[0].status");
  ExpectInvalid(DecodeHeartbeat(With(body, "checks", R"([{"name":"disk","status":"pass","code":"Disk OK"}])")),
                "checks[0].code");
  ExpectInvalid(DecodeHeartbeat(With(body, "checks", R"([{"name":"disk","status":"pass","code":1}])")),
                "checks[0].code");
  ExpectInvalid(DecodeHeartbeat(With(body, "checks",
                                     R"([{"name":"cron","status":"pass","code":"a"},)"
                                     R"({"name":"cron","status":"warn","code":"b"}])")),
                "checks[1].name");
  json::array seventeen;
  for (int i = 0; i < 17; ++i)
    seventeen.emplace_back(json::object{{"name", "disk"}, {"status", "pass"}, {"code", "x"}});
  ExpectInvalid(DecodeHeartbeat(With(body, "checks", json::serialize(seventeen))), "checks");
}

TEST(ChecksJsonTest, RoundTripsAndRefusesNonArrays) {
  const std::vector<core::CheckResult> checks = {{CheckName::kRelease, CheckStatus::kWarn, "release_missing"},
                                                 {CheckName::kIsolation, CheckStatus::kPass, "isolation_reported"}};
  EXPECT_EQ(json::serialize(ChecksToJson(checks)),
            R"([{"name":"release","status":"warn","code":"release_missing"},)"
            R"({"name":"isolation","status":"pass","code":"isolation_reported"}])");
  Result<std::vector<core::CheckResult>> out = ChecksFromJson(ChecksToJson(checks));
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ(*out, checks);
  ExpectInvalid(ChecksFromJson(json::value(nullptr)), "checks");
  ExpectInvalid(ChecksFromJson(json::value("disk")), "checks");
}

// ---- Heartbeat ack ---------------------------------------------------------------------

TEST(HeartbeatAckTest, EncodesExactlyAndRoundTrips) {
  const HeartbeatAck in{15, 1700000000123};
  EXPECT_EQ(Encode(in), R"({"heartbeat_interval_s":15,"server_time_ms":1700000000123})");
  Result<HeartbeatAck> out = DecodeHeartbeatAck(Encode(in));
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ(out->heartbeat_interval_s, 15);
  EXPECT_EQ(out->server_time_ms, 1700000000123);
}

TEST(HeartbeatAckTest, RefusesBadValues) {
  const std::string body = Encode(HeartbeatAck{10, 5});
  ExpectInvalid(DecodeHeartbeatAck(With(body, "server_time_ms", "-1")), "server_time_ms");
  ExpectInvalid(DecodeHeartbeatAck(With(body, "server_time_ms", "1e12")), "server_time_ms");
  ExpectInvalid(DecodeHeartbeatAck(Without(body, "server_time_ms")), "server_time_ms");
  ExpectInvalid(DecodeHeartbeatAck(With(body, "heartbeat_interval_s", "-10")), "heartbeat_interval_s");
  ExpectInvalid(DecodeHeartbeatAck(With(body, "next", "1")), "next");
}

// ---- Operations ------------------------------------------------------------------------

OperationEnvelope Envelope(std::string id, N name, core::OperationParams params = {}) {
  OperationEnvelope op;
  op.id = std::move(id);
  op.name = name;
  op.params = std::move(params);
  op.timeout_s = core::SpecOf(name).default_timeout_s;
  op.expires_at_ms = 1700000060000;
  return op;
}

TEST(OperationsTest, EncodesExactly) {
  const std::vector<OperationEnvelope> ops = {
      Envelope("op_0a", N::kCacheFlush, {{CacheType::kConfig, CacheType::kFullPage}}), Envelope("op_ff", N::kDbStatus)};
  EXPECT_EQ(Encode(ops),
            R"({"operations":[{"id":"op_0a","name":"cache.flush","params":{"types":["config","full_page"]},)"
            R"("timeout_s":300,"expires_at_ms":1700000060000},)"
            R"({"id":"op_ff","name":"db.status","params":{},"timeout_s":120,"expires_at_ms":1700000060000}]})");
  EXPECT_EQ(Encode(std::vector<OperationEnvelope>{}), R"({"operations":[]})");
}

TEST(OperationsTest, EveryOperationRoundTrips) {
  std::vector<OperationEnvelope> ops;
  int i = 0;
  for (N name : core::AllOperationNames()) {
    ops.push_back(Envelope("op_" + std::to_string(10 + i++), name));
  }
  ops.push_back(Envelope("op_" + std::string(64, 'a'), N::kCacheFlush, {core::AllCacheTypes()}));
  Result<std::vector<OperationEnvelope>> out = DecodeOperations(Encode(ops));
  ASSERT_TRUE(out.ok()) << out.error().message;
  ASSERT_EQ(out->size(), ops.size());
  for (std::size_t k = 0; k < ops.size(); ++k) {
    EXPECT_EQ((*out)[k].id, ops[k].id);
    EXPECT_EQ((*out)[k].name, ops[k].name);
    EXPECT_EQ((*out)[k].params.cache_types, ops[k].params.cache_types);
    EXPECT_EQ((*out)[k].timeout_s, ops[k].timeout_s);
    EXPECT_EQ((*out)[k].expires_at_ms, ops[k].expires_at_ms);
  }
}

TEST(OperationsTest, MissingOrNullParamsAreEmpty) {
  for (const char* params : {"", "null"}) {
    std::string item = R"({"id":"op_1","name":"cache.flush","timeout_s":30,"expires_at_ms":0)";
    if (*params != '\0') item += std::string(R"(,"params":)") + params;
    item += "}";
    Result<std::vector<OperationEnvelope>> out = DecodeOperations(R"({"operations":[)" + item + "]}");
    ASSERT_TRUE(out.ok()) << out.error().message;
    EXPECT_TRUE((*out)[0].params.cache_types.empty());
  }
}

std::string OneOperation(const std::string& key, const std::string& value_json) {
  std::string op = json::serialize(json::parse(Encode({Envelope("op_1", N::kCacheFlush, {{CacheType::kEav}})}))
                                       .as_object()["operations"]
                                       .as_array()[0]);
  return R"({"operations":[)" + With(op, key, value_json) + "]}";
}

TEST(OperationsTest, RefusesBadEnvelopes) {
  ASSERT_TRUE(DecodeOperations(OneOperation("id", R"("op_1")")).ok());
  ExpectInvalid(DecodeOperations(R"({})"), "operations");
  ExpectInvalid(DecodeOperations(R"({"operations":{}})"), "operations");
  ExpectInvalid(DecodeOperations(R"({"operations":[],"more":true})"), "more");
  ExpectInvalid(DecodeOperations(R"({"operations":["op_1"]})"), "operations[0]");
  ExpectInvalid(DecodeOperations(OneOperation("argv", R"(["rm","-rf"])")), "operations[0].argv");
  ExpectInvalid(DecodeOperations(OneOperation("id", R"("op_")")), "operations[0].id");
  ExpectInvalid(DecodeOperations(OneOperation("id", R"("op_xyz")")), "operations[0].id");
  ExpectInvalid(DecodeOperations(OneOperation("id", R"("1234")")), "operations[0].id");
  ExpectInvalid(DecodeOperations(OneOperation("id", "\"op_" + std::string(65, 'a') + '"')), "operations[0].id");
  ExpectInvalid(DecodeOperations(OneOperation("name", R"("shell.exec")")), "operations[0].name");
  ExpectInvalid(DecodeOperations(OneOperation("name", "1")), "operations[0].name");
  ExpectInvalid(DecodeOperations(OneOperation("params", R"({"types":["everything"]})")),
                "operations[0].params.types[0]");
  ExpectInvalid(DecodeOperations(OneOperation("params", R"({"types":["eav","eav"]})")), "operations[0].params.types");
  ExpectInvalid(DecodeOperations(OneOperation("params", R"({"type":["eav"]})")), "operations[0].params.type");
  ExpectInvalid(DecodeOperations(OneOperation("params", R"([])")), "operations[0].params");
  ExpectInvalid(DecodeOperations(OneOperation("timeout_s", "0")), "operations[0].timeout_s");
  ExpectInvalid(DecodeOperations(OneOperation("timeout_s", "86401")), "operations[0].timeout_s");
  ExpectInvalid(DecodeOperations(OneOperation("timeout_s", "1.5")), "operations[0].timeout_s");
  ExpectInvalid(DecodeOperations(OneOperation("expires_at_ms", "-5")), "operations[0].expires_at_ms");
  ExpectInvalid(DecodeOperations(OneOperation("expires_at_ms", "null")), "operations[0].expires_at_ms");
  EXPECT_TRUE(DecodeOperations(OneOperation("timeout_s", "86400")).ok());
}

TEST(OperationsTest, ParamsOfAnotherOperationAreRefused) {
  const std::string body =
      R"({"operations":[{"id":"op_1","name":"db.status","params":{"types":["eav"]},"timeout_s":1,"expires_at_ms":0}]})";
  ExpectInvalid(DecodeOperations(body), "operations[0].params.types");
}

TEST(OperationsTest, AtMostAHundred) {
  std::vector<OperationEnvelope> ops;
  for (int i = 0; i < 100; ++i) ops.push_back(Envelope("op_" + std::to_string(i), N::kHealthProbe));
  EXPECT_TRUE(DecodeOperations(Encode(ops)).ok());
  ops.push_back(Envelope("op_100", N::kHealthProbe));
  ExpectInvalid(DecodeOperations(Encode(ops)), "operations");
}

// ---- Params ----------------------------------------------------------------------------

TEST(ParamsJsonTest, EveryOperationRoundTrips) {
  for (N name : core::AllOperationNames()) {
    const json::object empty = ParamsToJson(name, {});
    EXPECT_TRUE(empty.empty()) << core::ToString(name);
    Result<core::OperationParams> out = ParamsFromJson(name, empty);
    ASSERT_TRUE(out.ok()) << core::ToString(name) << ": " << out.error().message;
    EXPECT_TRUE(out->cache_types.empty());
  }
  const core::OperationParams some{{CacheType::kLayout, CacheType::kTranslate}};
  EXPECT_EQ(json::serialize(ParamsToJson(N::kCacheFlush, some)), R"({"types":["layout","translate"]})");
  Result<core::OperationParams> out = ParamsFromJson(N::kCacheFlush, ParamsToJson(N::kCacheFlush, some));
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ(out->cache_types, some.cache_types);
}

TEST(ParamsJsonTest, NullAndEmptyTypesMeanNoParams) {
  for (N name : core::AllOperationNames()) {
    Result<core::OperationParams> out = ParamsFromJson(name, json::value(nullptr));
    ASSERT_TRUE(out.ok()) << core::ToString(name);
    EXPECT_TRUE(out->cache_types.empty());
  }
  for (const char* body : {R"({"types":[]})", R"({"types":null})"}) {
    Result<core::OperationParams> out = ParamsFromJson(N::kCacheFlush, json::parse(body));
    ASSERT_TRUE(out.ok()) << body;
    EXPECT_TRUE(out->cache_types.empty());
  }
}

TEST(ParamsJsonTest, Refusals) {
  for (N name : core::AllOperationNames()) {
    if (name == N::kCacheFlush) continue;
    ExpectInvalid(ParamsFromJson(name, json::parse(R"({"types":["eav"]})")), "params.types");
    ExpectInvalid(ParamsFromJson(name, json::parse(R"({"force":true})")), "params.force");
    ExpectInvalid(ParamsFromJson(name, json::parse(R"("")")), "params");
  }
  ExpectInvalid(ParamsFromJson(N::kCacheFlush, json::parse(R"({"types":["eav"],"force":true})")), "params.force");
  ExpectInvalid(ParamsFromJson(N::kCacheFlush, json::parse(R"({"types":"eav"})")), "params.types");
  ExpectInvalid(ParamsFromJson(N::kCacheFlush, json::parse(R"({"types":[1]})")), "params.types[0]");
  ExpectInvalid(ParamsFromJson(N::kCacheFlush, json::parse(R"({"types":["eav","Config"]})")), "params.types[1]");
  ExpectInvalid(ParamsFromJson(N::kCacheFlush, json::parse(R"({"types":["eav","eav"]})")), "params.types");
  ExpectInvalid(ParamsFromJson(N::kCacheFlush, json::parse(R"([])")), "params");
  json::array fifteen;
  for (CacheType t : core::AllCacheTypes()) fifteen.emplace_back(core::ToString(t));
  fifteen.emplace_back("config");
  ExpectInvalid(ParamsFromJson(N::kCacheFlush, json::object{{"types", fifteen}}), "params.types");
}

// ---- Results ---------------------------------------------------------------------------

TEST(ResultJsonTest, EncodesOnlyTheOperationsFields) {
  EXPECT_EQ(json::serialize(ResultToJson(ValidResultOf(N::kMaintenanceEnable))), R"({"maintenance":true})");
  EXPECT_EQ(json::serialize(ResultToJson(ValidResultOf(N::kMaintenanceDisable))), R"({"maintenance":false})");
  EXPECT_EQ(json::serialize(ResultToJson(ValidResultOf(N::kCacheFlush))), R"({"flushed":["config","full_page"]})");
  EXPECT_EQ(json::serialize(ResultToJson(ValidResultOf(N::kIndexerStatus))),
            R"({"indexers":[{"id":"catalog_product_price","status":"ready"},)"
            R"({"id":"catalogsearch_fulltext","status":"reindex_required"}]})");
  EXPECT_EQ(json::serialize(ResultToJson(ValidResultOf(N::kDbStatus))), R"({"schema_up_to_date":false})");
  EXPECT_EQ(json::serialize(ResultToJson(ValidResultOf(N::kReleaseReport))),
            R"({"release":"2024.05.01-1","magento_version":"2.4.6-p3"})");
  EXPECT_EQ(json::serialize(ResultToJson(ValidResultOf(N::kHealthProbe))),
            R"({"checks":[{"name":"storefront","status":"pass","code":"http_2xx"},)"
            R"({"name":"cron","status":"warn","code":"cron_stale"},)"
            R"({"name":"disk","status":"fail","code":"disk_critical"}]})");
}

TEST(ResultJsonTest, EveryOperationsResultsRoundTrip) {
  std::vector<std::pair<N, core::OperationResult>> cases;
  for (N name : core::AllOperationNames()) cases.emplace_back(name, ValidResultOf(name));
  cases.emplace_back(N::kIndexerStatus, core::OperationResult{});  // no indexers: {}
  core::OperationResult no_marker;
  no_marker.magento_version = "2.4.7";
  cases.emplace_back(N::kReleaseReport, no_marker);
  core::OperationResult all_flushed;
  all_flushed.flushed = core::AllCacheTypes();
  cases.emplace_back(N::kCacheFlush, all_flushed);
  core::OperationResult up_to_date;
  up_to_date.schema_up_to_date = true;
  cases.emplace_back(N::kDbStatus, up_to_date);
  core::OperationResult every_status;
  every_status.indexers = {{"a", IndexerStatus::kReady},
                           {"b", IndexerStatus::kReindexRequired},
                           {"c", IndexerStatus::kProcessing},
                           {"d", IndexerStatus::kSuspended}};
  cases.emplace_back(N::kIndexerStatus, every_status);

  for (const auto& [name, result] : cases) {
    ASSERT_TRUE(core::ValidateResult(name, result).ok()) << core::ToString(name);
    Result<core::OperationResult> out = ResultFromJson(name, ResultToJson(result));
    ASSERT_TRUE(out.ok()) << core::ToString(name) << ": " << out.error().message;
    EXPECT_EQ(*out, result) << core::ToString(name);
  }
}

TEST(ResultJsonTest, NoOperationAcceptsAnotherOperationsResult) {
  for (N name : core::AllOperationNames()) {
    for (N other : core::AllOperationNames()) {
      const json::object foreign = ResultToJson(ValidResultOf(other));
      if (name == other) continue;
      const Result<core::OperationResult> out = ResultFromJson(name, foreign);
      ASSERT_FALSE(out.ok()) << core::ToString(other) << "'s result accepted as " << core::ToString(name);
      EXPECT_EQ(out.error().code, ErrorCode::kInvalidArgument);
      // Either a foreign key or (maintenance.enable vs .disable) the wrong value.
      EXPECT_EQ(out.error().field, "result." + std::string(foreign.begin()->key())) << out.error().message;
    }
  }
}

TEST(ResultJsonTest, Refusals) {
  ExpectInvalid(ResultFromJson(N::kDbStatus, json::value(nullptr)), "result");
  ExpectInvalid(ResultFromJson(N::kDbStatus, json::parse("[]")), "result");
  ExpectInvalid(ResultFromJson(N::kDbStatus, json::parse("{}")), "result.schema_up_to_date");
  ExpectInvalid(ResultFromJson(N::kDbStatus, json::parse(R"({"schema_up_to_date":"yes"})")),
                "result.schema_up_to_date");
  ExpectInvalid(ResultFromJson(N::kDbStatus, json::parse(R"({"schema_up_to_date":true,"output":"x"})")),
                "result.output");
  ExpectInvalid(ResultFromJson(N::kMaintenanceEnable, json::parse(R"({"maintenance":1})")), "result.maintenance");
  ExpectInvalid(ResultFromJson(N::kMaintenanceEnable, json::parse(R"({"maintenance":false})")), "result.maintenance");
  ExpectInvalid(ResultFromJson(N::kHealthProbe, json::parse(R"({})")), "result.checks");
  ExpectInvalid(ResultFromJson(N::kHealthProbe, json::parse(R"({"checks":[]})")), "result.checks");
  ExpectInvalid(ResultFromJson(N::kHealthProbe, json::parse(R"({"checks":[{"name":"disk","status":"pass"}]})")),
                "result.checks[0].code");
  ExpectInvalid(ResultFromJson(N::kHealthProbe, json::parse(R"({"checks":[{"name":"disk","status":"pass","code":"a"},)"
                                                            R"({"name":"disk","status":"pass","code":"b"}]})")),
                "result.checks[1].name");
  ExpectInvalid(ResultFromJson(N::kCacheFlush, json::parse(R"({"flushed":[]})")), "result.flushed");
  ExpectInvalid(ResultFromJson(N::kCacheFlush, json::parse(R"({"flushed":["eav","eav"]})")), "result.flushed");
  ExpectInvalid(ResultFromJson(N::kCacheFlush, json::parse(R"({"flushed":["varnish"]})")), "result.flushed[0]");
  ExpectInvalid(ResultFromJson(N::kIndexerStatus, json::parse(R"({"indexers":{}})")), "result.indexers");
  ExpectInvalid(ResultFromJson(N::kIndexerStatus, json::parse(R"({"indexers":[{"id":"Catalog","status":"ready"}]})")),
                "result.indexers[0].id");
  ExpectInvalid(ResultFromJson(N::kIndexerStatus, json::parse(R"({"indexers":[{"id":"a","status":"valid"}]})")),
                "result.indexers[0].status");
  ExpectInvalid(ResultFromJson(N::kIndexerStatus,
                               json::parse(R"({"indexers":[{"id":"a","status":"ready","title":"Product Price"}]})")),
                "result.indexers[0].title");
  ExpectInvalid(ResultFromJson(N::kIndexerStatus, json::parse(R"({"indexers":[{"status":"ready"}]})")),
                "result.indexers[0].id");
  ExpectInvalid(ResultFromJson(N::kReleaseReport, json::parse(R"({"release":"r1"})")), "result.magento_version");
  ExpectInvalid(ResultFromJson(N::kReleaseReport, json::parse(R"({"release":"../etc","magento_version":"2.4.6"})")),
                "result.release");
  ExpectInvalid(ResultFromJson(N::kReleaseReport, json::parse(R"({"magento_version":"Magento CLI 2.4.6"})")),
                "result.magento_version");

  json::array many;
  for (int i = 0; i < 257; ++i) many.emplace_back(json::object{{"id", "ix_" + std::to_string(i)}, {"status", "ready"}});
  ExpectInvalid(ResultFromJson(N::kIndexerStatus, json::object{{"indexers", many}}), "result.indexers");
  many.pop_back();
  EXPECT_TRUE(ResultFromJson(N::kIndexerStatus, json::object{{"indexers", many}}).ok());
}

// ---- Reports ---------------------------------------------------------------------------

TEST(OperationReportTest, EncodesExactly) {
  OperationReport ok;
  ok.succeeded = true;
  ok.result = ValidResultOf(N::kMaintenanceEnable);
  ok.duration_ms = 12;
  EXPECT_EQ(Encode(ok), R"({"outcome":"succeeded","result":{"maintenance":true},"duration_ms":12})");
  OperationReport failed;
  failed.code = "timeout";
  failed.duration_ms = 60000;
  EXPECT_EQ(Encode(failed), R"({"outcome":"failed","code":"timeout","duration_ms":60000})");
}

TEST(OperationReportTest, EveryOperationsSuccessRoundTrips) {
  for (N name : core::AllOperationNames()) {
    OperationReport in;
    in.succeeded = true;
    in.result = ValidResultOf(name);
    in.duration_ms = 345;
    Result<OperationReport> out = DecodeOperationReport(name, Encode(in));
    ASSERT_TRUE(out.ok()) << core::ToString(name) << ": " << out.error().message;
    EXPECT_TRUE(out->succeeded);
    EXPECT_EQ(out->result, in.result);
    EXPECT_TRUE(out->code.empty());
    EXPECT_EQ(out->duration_ms, 345);
  }
}

TEST(OperationReportTest, EveryFailureCodeRoundTrips) {
  for (std::string_view code : core::FailureCodes()) {
    OperationReport in;
    in.code = std::string(code);
    in.duration_ms = 0;
    Result<OperationReport> out = DecodeOperationReport(N::kCacheFlush, Encode(in));
    ASSERT_TRUE(out.ok()) << code << ": " << out.error().message;
    EXPECT_FALSE(out->succeeded);
    EXPECT_EQ(out->code, code);
    EXPECT_EQ(out->result, core::OperationResult{});
    EXPECT_EQ(out->duration_ms, 0);
  }
}

TEST(OperationReportTest, Refusals) {
  const std::string success = R"({"outcome":"succeeded","result":{"schema_up_to_date":true},"duration_ms":5})";
  const std::string failure = R"({"outcome":"failed","code":"exit_nonzero","duration_ms":5})";
  ASSERT_TRUE(DecodeOperationReport(N::kDbStatus, success).ok());
  ASSERT_TRUE(DecodeOperationReport(N::kDbStatus, failure).ok());

  ExpectMalformed(DecodeOperationReport(N::kDbStatus, R"({"outcome":"succeeded")"));
  ExpectInvalid(DecodeOperationReport(N::kDbStatus, With(success, "stdout", R"("...")")), "stdout");
  ExpectInvalid(DecodeOperationReport(N::kDbStatus, Without(success, "outcome")), "outcome");
  ExpectInvalid(DecodeOperationReport(N::kDbStatus, With(success, "outcome", R"("ok")")), "outcome");
  ExpectInvalid(DecodeOperationReport(N::kDbStatus, With(success, "outcome", "true")), "outcome");
  ExpectInvalid(DecodeOperationReport(N::kDbStatus, Without(success, "result")), "result");
  ExpectInvalid(DecodeOperationReport(N::kDbStatus, With(success, "code", R"("timeout")")), "code");
  ExpectInvalid(DecodeOperationReport(N::kDbStatus, Without(success, "duration_ms")), "duration_ms");
  ExpectInvalid(DecodeOperationReport(N::kDbStatus, With(success, "duration_ms", "-1")), "duration_ms");
  ExpectInvalid(DecodeOperationReport(N::kDbStatus, With(success, "duration_ms", "0.5")), "duration_ms");
  // The result of another operation's schema.
  ExpectInvalid(DecodeOperationReport(N::kDbStatus, With(success, "result", R"({"maintenance":true})")),
                "result.maintenance");
  ExpectInvalid(DecodeOperationReport(N::kMaintenanceEnable, success), "result.schema_up_to_date");

  ExpectInvalid(DecodeOperationReport(N::kDbStatus, With(failure, "result", R"({"schema_up_to_date":true})")),
                "result");
  ExpectInvalid(DecodeOperationReport(N::kDbStatus, With(failure, "result", "{}")), "result");
  ExpectInvalid(DecodeOperationReport(N::kDbStatus, Without(failure, "code")), "code");
  ExpectInvalid(DecodeOperationReport(N::kDbStatus, With(failure, "code", R"("segfault")")), "code");
  ExpectInvalid(DecodeOperationReport(N::kDbStatus, With(failure, "code", "2")), "code");
}

}  // namespace
}  // namespace storeplane::protocol
