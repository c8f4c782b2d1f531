// The control-plane client against a loopback fake: headers, reply classes, stop aborting a
// transfer in flight; the delivery decoder; backoff; session ids.
#include "agent/control_plane_client.h"

#include <gtest/gtest.h>

#include <set>
#include <thread>

#include "agent/agent_loop.h"
#include "agent_test_support.h"

namespace storeplane::agent {
namespace {

using std::chrono::milliseconds;
using testing::CannedReply;
using testing::FakeHttpServer;
using testing::SeenRequest;

TEST(ControlPlaneClientTest, SendsTheCredentialAndJson) {
  FakeHttpServer server([](const SeenRequest&) { return CannedReply{200, R"({"ok":true})"}; });
  StopSignal stop;
  ControlPlaneClient client(server.url(), "", &stop);
  client.SetCredential("spa_secret");
  auto reply = client.Post("/agent/v1/heartbeat", R"({"x":1})", 5000);
  ASSERT_TRUE(reply.ok()) << reply.error().message;
  EXPECT_EQ(reply->status, 200);
  EXPECT_EQ(reply->body, R"({"ok":true})");
  auto get = client.Get("/agent/v1/operations?session=ab&wait_ms=0", 5000);
  ASSERT_TRUE(get.ok());
  const auto seen = server.requests();
  ASSERT_EQ(seen.size(), 2U);
  EXPECT_EQ(seen[0].method, "POST");
  EXPECT_EQ(seen[0].target, "/agent/v1/heartbeat");
  EXPECT_EQ(seen[0].authorization, "Bearer spa_secret");
  EXPECT_EQ(seen[0].content_type, "application/json");
  EXPECT_EQ(seen[0].body, R"({"x":1})");
  EXPECT_EQ(seen[1].method, "GET");
  EXPECT_EQ(seen[1].target, "/agent/v1/operations?session=ab&wait_ms=0");
}

TEST(ControlPlaneClientTest, Classification) {
  auto status = [](long code) { return Result<ControlPlaneReply>(ControlPlaneReply{code, ""}); };
  EXPECT_EQ(Classify(status(200)), ReplyClass::kSuccess);
  EXPECT_EQ(Classify(status(204)), ReplyClass::kSuccess);
  EXPECT_EQ(Classify(status(401)), ReplyClass::kUnauthorized);
  EXPECT_EQ(Classify(status(429)), ReplyClass::kRetry);
  EXPECT_EQ(Classify(status(500)), ReplyClass::kRetry);
  EXPECT_EQ(Classify(status(503)), ReplyClass::kRetry);
  EXPECT_EQ(Classify(status(404)), ReplyClass::kRejected);
  EXPECT_EQ(Classify(status(409)), ReplyClass::kRejected);
  EXPECT_EQ(Classify(status(422)), ReplyClass::kRejected);
  EXPECT_EQ(Classify(Result<ControlPlaneReply>(Error{ErrorCode::kUnavailable, "down", {}})), ReplyClass::kRetry);
}

TEST(ControlPlaneClientTest, TransportErrorIsUnavailable) {
  StopSignal stop;
  ControlPlaneClient client("http://127.0.0.1:1", "", &stop);
  auto reply = client.Get("/agent/v1/operations", 2000);
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.error().code, ErrorCode::kUnavailable);
}

TEST(ControlPlaneClientTest, StopAbortsALongPollInFlight) {
  FakeHttpServer server([](const SeenRequest&) { return CannedReply{200, "", true}; });
  StopSignal stop;
  ControlPlaneClient client(server.url(), "", &stop);
  std::thread stopper([&] {
    server.WaitFor([](const SeenRequest&) { return true; }, milliseconds(5000));
    std::this_thread::sleep_for(milliseconds(100));
    stop.Request();
  });
  const auto start = std::chrono::steady_clock::now();
  auto reply = client.Get("/agent/v1/operations?session=ab&wait_ms=30000", 40000);
  stopper.join();
  EXPECT_FALSE(reply.ok());
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST(ControlPlaneClientTest, DeliveryDecodesEachOperationOnItsOwn) {
  const std::string body = R"({"operations":[
    {"id":"op_0a","name":"shell.exec","params":{"cmd":"id"},"timeout_s":10,"expires_at_ms":1},
    {"id":"op_0b","name":"cache.flush","params":{"types":["config"]},"timeout_s":30,"expires_at_ms":2},
    {"id":"../../etc","name":"cache.flush","params":{},"timeout_s":30,"expires_at_ms":2},
    {"name":"db.status","params":{},"timeout_s":30,"expires_at_ms":2},
    {"id":"op_0c","name":"db.status","params":{},"timeout_s":30,"expires_at_ms":3}
  ]})";
  auto delivery = DecodeDelivery(body);
  ASSERT_TRUE(delivery.ok()) << delivery.error().message;
  ASSERT_EQ(delivery->size(), 3U);
  EXPECT_EQ((*delivery)[0].id, "op_0a");
  EXPECT_FALSE((*delivery)[0].envelope.has_value());
  EXPECT_EQ((*delivery)[1].id, "op_0b");
  ASSERT_TRUE((*delivery)[1].envelope.has_value());
  EXPECT_EQ((*delivery)[1].envelope->name, core::OperationName::kCacheFlush);
  EXPECT_EQ((*delivery)[1].envelope->params.cache_types, std::vector<core::CacheType>{core::CacheType::kConfig});
  EXPECT_EQ((*delivery)[1].envelope->timeout_s, 30);
  EXPECT_EQ((*delivery)[2].id, "op_0c");
  EXPECT_TRUE((*delivery)[2].envelope.has_value());

  EXPECT_FALSE(DecodeDelivery("not json").ok());
  EXPECT_FALSE(DecodeDelivery(R"({"ops":[]})").ok());
  EXPECT_TRUE(DecodeDelivery(R"({"operations":[]})")->empty());
}

TEST(ControlPlaneClientTest, SafeOperationIds) {
  EXPECT_TRUE(IsSafeOperationId("op_0123abcd"));
  EXPECT_FALSE(IsSafeOperationId(""));
  EXPECT_FALSE(IsSafeOperationId("op/1"));
  EXPECT_FALSE(IsSafeOperationId("op 1"));
  EXPECT_FALSE(IsSafeOperationId("op?x=1"));
}

TEST(BackoffTest, FullJitterGrowsToTheCap) {
  Backoff backoff(milliseconds(200), milliseconds(30000), 42);
  EXPECT_EQ(backoff.Ceiling(), milliseconds(200));
  for (int i = 0; i < 20; ++i) {
    const auto ceiling = backoff.Ceiling();
    const auto delay = backoff.Next();
    EXPECT_GE(delay, milliseconds(0));
    EXPECT_LE(delay, ceiling);
    EXPECT_LE(ceiling, milliseconds(30000));
  }
  EXPECT_EQ(backoff.Ceiling(), milliseconds(30000));
  backoff.Reset();
  EXPECT_EQ(backoff.Ceiling(), milliseconds(200));
  backoff.Next();
  EXPECT_EQ(backoff.Ceiling(), milliseconds(400));
}

TEST(SessionIdTest, ThirtyTwoRandomHexCharacters) {
  std::set<std::string> seen;
  for (int i = 0; i < 20; ++i) {
    const auto id = NewSessionId();
    EXPECT_EQ(id.size(), 32U);
    EXPECT_EQ(id.find_first_not_of("0123456789abcdef"), std::string::npos);
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 20U);
}

}  // namespace
}  // namespace storeplane::agent
