// The whole agent against a fake control plane on loopback (the real storeplaned is used by
// the integration tests): enrollment, heartbeats, the poll loop with refusals, fail-static
// retries on 401/5xx, and a prompt stop.
#include "agent/agent_loop.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <future>
#include <thread>

#include "agent/agent_log.h"
#include "agent/credential_file.h"
#include "agent_test_support.h"
#include "protocol/agent_wire.h"

namespace storeplane::agent {
namespace {

using std::chrono::milliseconds;
using testing::CannedReply;
using testing::FakeHttpServer;
using testing::SeenRequest;
using testing::TempDir;

const std::string kToken = "spe_" + std::string(43, 'T');
const std::string kCredential = "spa_" + std::string(43, 'C');

bool IsResult(const SeenRequest& r) { return r.method == "POST" && r.target.ends_with("/result"); }

class AgentLoopTest : public ::testing::Test {
 protected:
  void SetUp() override {
    magento_ = testing::CopyFakeMagento(dir_);
    config_ = testing::FakeStoreConfig(magento_, dir_ / "state");
    config_.allowed_operations = {core::OperationName::kHealthProbe, core::OperationName::kCacheFlush};
    config_.poll_wait_ms = 200;
    SetLogSink([this](std::string_view line) {
      std::lock_guard lock(log_mutex_);
      logs_ += std::string(line) + "\n";
    });
  }
  void TearDown() override {
    SetLogSink({});
    ::unsetenv(kEnrollmentTokenEnv);
    EXPECT_EQ(logs_.find(kToken), std::string::npos);
    EXPECT_EQ(logs_.find(kCredential), std::string::npos);
  }
  std::string Logs() {
    std::lock_guard lock(log_mutex_);
    return logs_;
  }

  // Runs the agent on a thread; the future gives its exit code.
  std::future<int> Start() {
    return std::async(std::launch::async, [this] { return RunAgent(config_, stop_); });
  }

  TempDir dir_;
  std::string magento_;
  AgentConfig config_;
  StopSignal stop_;
  std::mutex log_mutex_;
  std::string logs_;
};

TEST_F(AgentLoopTest, EnrollsHeartbeatsRunsOperationsAndStops) {
  std::atomic<int> polls{0};
  FakeHttpServer server([&polls](const SeenRequest& r) -> CannedReply {
    if (r.target == "/agent/v1/enroll") {
      return {201, R"({"agent_id":"agt_1","store_id":"demo","credential":")" + kCredential +
                       R"(","heartbeat_interval_s":1})"};
    }
    if (r.target == "/agent/v1/heartbeat") return {200, R"({"heartbeat_interval_s":1,"server_time_ms":1})"};
    if (r.target.starts_with("/agent/v1/operations?")) {
      if (polls++ == 0) {
        return {200, R"({"operations":[
          {"id":"op_01","name":"cache.flush","params":{"types":["config"]},"timeout_s":30,"expires_at_ms":1},
          {"id":"op_02","name":"shell.exec","params":{},"timeout_s":30,"expires_at_ms":1},
          {"id":"op_03","name":"maintenance.enable","params":{},"timeout_s":30,"expires_at_ms":1},
          {"id":"op_01","name":"cache.flush","params":{"types":["config"]},"timeout_s":30,"expires_at_ms":1}]})"};
      }
      std::this_thread::sleep_for(milliseconds(50));
      return {204, ""};
    }
    if (IsResult(r)) return {200, "{}"};
    return {404, ""};
  });
  config_.control_plane_url = server.url();
  ::setenv(kEnrollmentTokenEnv, kToken.c_str(), 1);

  auto exit_code = Start();
  ASSERT_TRUE(server.WaitUntil(
      [](const std::vector<SeenRequest>& seen) {
        int results = 0;
        int heartbeats = 0;
        for (const auto& r : seen) {
          results += IsResult(r) ? 1 : 0;
          heartbeats += r.target == "/agent/v1/heartbeat" ? 1 : 0;
        }
        return results >= 4 && heartbeats >= 2;
      },
      milliseconds(15000)));
  stop_.Request();
  ASSERT_EQ(exit_code.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_EQ(exit_code.get(), kExitOk);

  // Enrollment: the token went to the control plane once, the credential is stored 0600, and
  // the token is gone from the environment.
  const auto seen = server.requests();
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen[0].target, "/agent/v1/enroll");
  EXPECT_EQ(seen[0].authorization, "");
  auto enroll = protocol::DecodeEnrollRequest(seen[0].body);
  ASSERT_TRUE(enroll.ok()) << seen[0].body;
  EXPECT_EQ(enroll->store_id, "demo");
  EXPECT_EQ(enroll->enrollment_token, kToken);
  EXPECT_EQ(enroll->agent_version, kAgentVersion);
  EXPECT_EQ(std::getenv(kEnrollmentTokenEnv), nullptr);
  struct stat st = {};
  ASSERT_EQ(::stat(config_.credential_file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600U);
  EXPECT_EQ(ReadCredentialFile(config_.credential_file)->value_or(""), kCredential);
  struct stat state = {};
  ASSERT_EQ(::stat(config_.state_dir.c_str(), &state), 0);
  EXPECT_EQ(state.st_mode & 0777, 0700U);

  std::string session;
  std::vector<std::pair<std::string, std::string>> results;
  for (const auto& r : seen) {
    if (r.target == "/agent/v1/enroll") continue;
    EXPECT_EQ(r.authorization, "Bearer " + kCredential) << r.target;
    if (r.target == "/agent/v1/heartbeat") {
      auto heartbeat = protocol::DecodeHeartbeat(r.body);
      ASSERT_TRUE(heartbeat.ok()) << r.body;
      EXPECT_EQ(heartbeat->session.size(), 32U);
      if (session.empty()) session = heartbeat->session;
      EXPECT_EQ(heartbeat->session, session);
      EXPECT_EQ(heartbeat->release, "r2026.12.04-1");
      EXPECT_EQ(heartbeat->isolation_mode, core::IsolationMode::kShared);
      EXPECT_EQ(heartbeat->allowed_operations, config_.allowed_operations);
      EXPECT_EQ(heartbeat->checks.size(), 6U);
    } else if (r.target.starts_with("/agent/v1/operations?")) {
      EXPECT_EQ(r.method, "GET");
      EXPECT_NE(r.target.find("&wait_ms=200"), std::string::npos);
    } else if (IsResult(r)) {
      results.emplace_back(r.target, r.body);
    }
  }
  EXPECT_NE(seen.back().target, "");
  ASSERT_GE(results.size(), 4U);
  EXPECT_EQ(results[0].first, "/agent/v1/operations/op_01/result");
  auto flushed = protocol::DecodeOperationReport(core::OperationName::kCacheFlush, results[0].second);
  ASSERT_TRUE(flushed.ok()) << results[0].second;
  EXPECT_TRUE(flushed->succeeded);
  EXPECT_EQ(flushed->result.flushed, std::vector<core::CacheType>{core::CacheType::kConfig});
  EXPECT_EQ(results[1].first, "/agent/v1/operations/op_02/result");
  EXPECT_NE(results[1].second.find(R"("code":"refused_unknown")"), std::string::npos);
  EXPECT_EQ(results[2].first, "/agent/v1/operations/op_03/result");
  EXPECT_NE(results[2].second.find(R"("code":"refused_not_allowed")"), std::string::npos);
  // The redelivered op_01 was answered from the journal: same report, one run only.
  EXPECT_EQ(results[3].first, "/agent/v1/operations/op_01/result");
  EXPECT_EQ(results[3].second, results[0].second);
  EXPECT_EQ(testing::SplitLines(testing::ReadFile(magento_ + "/var/argv.log")).size(), 1U);
  EXPECT_FALSE(std::filesystem::exists(magento_ + "/var/.maintenance.flag"));
}

TEST_F(AgentLoopTest, RefusedEnrollmentExitsThree) {
  FakeHttpServer server([](const SeenRequest&) { return CannedReply{401, R"({"title":"unauthenticated"})"}; });
  config_.control_plane_url = server.url();
  testing::WriteFile(dir_ / "token", kToken + "\n");
  config_.enrollment_token_file = dir_ / "token";
  EXPECT_EQ(RunAgent(config_, stop_), kExitEnrollmentRefused);
  EXPECT_FALSE(std::filesystem::exists(config_.credential_file));
  EXPECT_EQ(server.requests().size(), 1U);
}

TEST_F(AgentLoopTest, NoTokenAndNoCredentialIsAUsageError) {
  config_.control_plane_url = "http://127.0.0.1:1";
  EXPECT_EQ(RunAgent(config_, stop_), kExitUsage);
}

TEST_F(AgentLoopTest, EnrollmentRetriesWhileTheControlPlaneIsAway) {
  std::atomic<int> calls{0};
  FakeHttpServer server([&calls](const SeenRequest&) -> CannedReply {
    if (calls++ < 2) return {503, ""};
    return {401, ""};
  });
  config_.control_plane_url = server.url();
  ::setenv(kEnrollmentTokenEnv, kToken.c_str(), 1);
  EXPECT_EQ(RunAgent(config_, stop_), kExitEnrollmentRefused);
  EXPECT_EQ(calls.load(), 3);
}

TEST_F(AgentLoopTest, ARefusedCredentialKeepsBackingOffAndTouchesNothing) {
  FakeHttpServer server([](const SeenRequest&) { return CannedReply{401, ""}; });
  config_.control_plane_url = server.url();
  std::filesystem::create_directories(config_.state_dir);
  ASSERT_TRUE(WriteCredentialFile(config_.credential_file, kCredential).ok());
  auto exit_code = Start();
  ASSERT_TRUE(
      server.WaitUntil([](const std::vector<SeenRequest>& seen) { return seen.size() >= 4; }, milliseconds(10000)));
  stop_.Request();
  ASSERT_EQ(exit_code.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_EQ(exit_code.get(), kExitOk);
  EXPECT_NE(Logs().find("credential refused"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(magento_ + "/var/argv.log"));
}

TEST_F(AgentLoopTest, StopsPromptlyDuringALongPoll) {
  FakeHttpServer server([](const SeenRequest& r) -> CannedReply {
    if (r.target == "/agent/v1/heartbeat") return {200, R"({"heartbeat_interval_s":10,"server_time_ms":1})"};
    return {200, "", true};  // the long-poll never answers
  });
  config_.control_plane_url = server.url();
  config_.poll_wait_ms = 30000;
  std::filesystem::create_directories(config_.state_dir);
  ASSERT_TRUE(WriteCredentialFile(config_.credential_file, kCredential).ok());
  auto exit_code = Start();
  ASSERT_TRUE(server.WaitFor([](const SeenRequest& r) { return r.method == "GET"; }, milliseconds(10000)));
  const auto start = std::chrono::steady_clock::now();
  stop_.Request();
  ASSERT_EQ(exit_code.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_EQ(exit_code.get(), kExitOk);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
}

}  // namespace
}  // namespace storeplane::agent
