// Regression tests for bugs the crash-point driver's workload found (docs/RELIABILITY.md),
// against the real storeplaned.
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "client/http_client.h"
#include "tests/support/server_process.h"

namespace storeplane::crash {
namespace {

using testing::ServerOptions;
using testing::ServerProcess;
using testing::TempDir;

// PATCH with If-Match: * names no version, so a store that moved between the handler's read
// and its write (here: another label change; in the driver, a run's lifecycle step) must
// not answer 412. Before the fix, with two clients racing, about half of the PATCHes got 412.
TEST(CrashRegressions, LabelChangesWithIfMatchStarNeverAnswer412WhenTheyRace) {
  TempDir dir;
  ServerOptions options;
  options.data_dir = dir.path() + "/data";
  ServerProcess server(options);
  ASSERT_TRUE(server.Start()) << server.error();
  ASSERT_FALSE(server.token().empty());
  const auto token = server.token();
  client::HttpClient http;
  auto reg = http.Send({"POST",
                        server.url() + "/v1/stores",
                        {{"Authorization", "Bearer " + token}, {"Content-Type", "application/json"}},
                        R"({"id":"shop-a","environment":"staging","isolation_mode":"shared","labels":{}})",
                        10000});
  ASSERT_TRUE(reg.ok());
  ASSERT_EQ(reg->status, 201) << reg->body;

  std::atomic<int> ok{0};
  std::atomic<int> refused{0};
  std::vector<std::thread> threads;
  constexpr int kThreads = 2;
  constexpr int kEach = 100;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      client::HttpClient mine;
      for (int i = 0; i < kEach; ++i) {
        auto resp = mine.Send({"PATCH",
                               server.url() + "/v1/stores/shop-a",
                               {{"Authorization", "Bearer " + token},
                                {"Content-Type", "application/merge-patch+json"},
                                {"If-Match", "*"}},
                               R"({"labels":{"t)" + std::to_string(t) + R"(":"v)" + std::to_string(i) + R"("}})",
                               10000});
        if (resp.ok() && resp->status == 200) {
          ++ok;
        } else {
          ++refused;
          if (resp.ok()) ADD_FAILURE() << resp->status << " " << resp->body;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), kThreads * kEach);
  EXPECT_EQ(refused.load(), 0);
  // Every change landed: the version counts them all.
  auto got = http.Send({"GET", server.url() + "/v1/stores/shop-a", {{"Authorization", "Bearer " + token}}, "", 10000});
  ASSERT_TRUE(got.ok());
  EXPECT_NE(got->body.find("\"version\":" + std::to_string(1 + kThreads * kEach)), std::string::npos) << got->body;
  server.Stop();
}

}  // namespace
}  // namespace storeplane::crash
