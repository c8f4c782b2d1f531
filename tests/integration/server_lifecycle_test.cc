// The server process as an operator meets it: restarts, kill -9, SIGTERM, --dev,
// configuration layers and start-up refusals, overload.
#include <signal.h>

#include <fstream>

#include "tests/integration/integration_fixture.h"

namespace storeplane::testing {
namespace {

using ServerLifecycle = ServerTest;

TEST_F(ServerLifecycle, StoresSurviveACleanRestart) {
  ASSERT_EQ(Register("keeper", "production", "isolated", R"({"a":"b"})").status, 201);
  const auto before = Snapshot();
  EXPECT_EQ(server_->Stop(), 0) << server_->Logs();
  StartServer();
  EXPECT_TRUE(server_->token().empty()) << "the bootstrap token is printed only once";
  EXPECT_EQ(Snapshot(), before);
}

TEST_F(ServerLifecycle, AStoreAcknowledgedWith201SurvivesKillDashNine) {
  for (int round = 0; round < 12; ++round) {
    const auto id = "durable-" + std::to_string(round);
    auto resp = Register(id);
    ASSERT_EQ(resp.status, 201) << resp.body;
    server_->Kill();  // SIGKILL straight after the acknowledgement
    StartServer();
    for (int earlier = 0; earlier <= round; ++earlier) {
      auto got = Call("GET", "/v1/stores/durable-" + std::to_string(earlier));
      ASSERT_EQ(got.status, 200) << "round " << round << ": store " << earlier << " lost";
    }
  }
}

TEST_F(ServerLifecycle, SigtermDrainsAndExitsZero) {
  ASSERT_EQ(Register("shop").status, 201);
  EXPECT_EQ(server_->Stop(), 0);
  EXPECT_NE(server_->Logs().find("\"msg\":\"exited cleanly\""), std::string::npos) << server_->Logs();
}

TEST_F(ServerLifecycle, RateLimitAnswers429WithRetryAfter) {
  const auto config = dir_->path() + "/limits.yaml";
  std::ofstream(config) << "limits:\n  principal_rps: 1\n  principal_burst: 3\n";
  StartServer({"--config", config});
  long last = 0;
  client::HttpResponse limited;
  for (int i = 0; i < 10 && last != 429; ++i) {
    limited = Call("GET", "/v1/stores");
    last = limited.status;
  }
  ExpectProblem(limited, 429, "too-many-requests");
  EXPECT_FALSE(limited.Header("retry-after").empty());
}

TEST(ServerStartup, DevModePrintsUrlAndTokenAndHasADemoStore) {
  ServerOptions options;
  options.dev = true;
  ServerProcess server(options);
  ASSERT_TRUE(server.Start()) << server.error() << server.Logs();
  ASSERT_FALSE(server.token().empty());
  client::HttpClient http;
  auto resp =
      http.Send({"GET", server.url() + "/v1/stores/demo", {{"Authorization", "Bearer " + server.token()}}, "", 5000});
  ASSERT_TRUE(resp.ok());
  EXPECT_EQ(resp->status, 200) << resp->body;
  EXPECT_EQ(server.Stop(), 0);
}

TEST(ServerStartup, InvalidConfigurationStopsTheServerWithAMessage) {
  TempDir dir;
  const auto config = dir.path() + "/bad.yaml";
  std::ofstream(config) << "listen: 127.0.0.1:0\nlimits:\n  body_bytez: 10\n";
  ServerOptions options;
  options.data_dir = dir.path() + "/data";
  options.extra_args = {"--config", config};
  ServerProcess server(options);
  EXPECT_FALSE(server.Start());
  EXPECT_NE(server.Logs().find("body_bytez"), std::string::npos) << server.Logs();
  EXPECT_NE(server.Logs().find("bad.yaml:3"), std::string::npos) << server.Logs();
}

TEST(ServerStartup, FlagsOverrideEnvironmentWhichOverridesTheFile) {
  TempDir dir;
  const auto config = dir.path() + "/c.yaml";
  std::ofstream(config) << "listen: 127.0.0.1:1\nenvironments: [production, qa]\n";
  ServerOptions options;
  options.data_dir = dir.path() + "/data";
  options.env = {"STOREPLANE_LISTEN=127.0.0.1:2"};
  options.extra_args = {"--config", config};  // ServerProcess adds --listen 127.0.0.1:0 (a flag)
  ServerProcess server(options);
  ASSERT_TRUE(server.Start()) << server.error() << server.Logs();
  EXPECT_EQ(server.url().find("127.0.0.1:1"), std::string::npos);
  EXPECT_EQ(server.url().find("127.0.0.1:2"), std::string::npos);
  client::HttpClient http;
  // The environment set comes from the file: qa is allowed, staging is not.
  auto post = [&](const std::string& env) {
    return http.Send({"POST",
                      server.url() + "/v1/stores",
                      {{"Authorization", "Bearer " + server.token()}, {"Content-Type", "application/json"}},
                      R"({"id":"x-)" + env + R"(","environment":")" + env + R"(","isolation_mode":"shared"})",
                      5000});
  };
  EXPECT_EQ(post("qa")->status, 201);
  EXPECT_EQ(post("staging")->status, 422);
}

}  // namespace
}  // namespace storeplane::testing

namespace storeplane::testing {
namespace {

TEST(ServerStartup, ServesHttpsWithTheConfiguredCertificate) {
  TempDir dir;
  const auto cert = dir.path() + "/tls.crt";
  const auto key = dir.path() + "/tls.key";
  ASSERT_TRUE(MakeTestCertificate(cert, key)) << "openssl could not make a test certificate";
  ServerOptions options;
  options.data_dir = dir.path() + "/data";
  options.extra_args = {"--tls-cert", cert, "--tls-key", key};
  ServerProcess server(options);
  ASSERT_TRUE(server.Start()) << server.error() << server.Logs();
  ASSERT_EQ(server.url().rfind("https://", 0), 0u) << server.url();

  client::HttpClient verified(client::ClientOptions{cert, false});
  auto resp =
      verified.Send({"GET", server.url() + "/v1/whoami", {{"Authorization", "Bearer " + server.token()}}, "", 5000});
  ASSERT_TRUE(resp.ok()) << resp.error().message;
  EXPECT_EQ(resp->status, 200) << resp->body;

  // A client that does not trust the certificate refuses the connection.
  client::HttpClient untrusting;
  EXPECT_FALSE(untrusting.Send({"GET", server.url() + "/healthz", {}, "", 5000}).ok());
  EXPECT_EQ(server.Stop(), 0);
}

TEST(ServerStartup, MissingTlsKeyFileStopsTheServer) {
  TempDir dir;
  ServerOptions options;
  options.data_dir = dir.path() + "/data";
  options.extra_args = {"--tls-cert", dir.path() + "/none.crt", "--tls-key", dir.path() + "/none.key"};
  ServerProcess server(options);
  EXPECT_FALSE(server.Start());
  EXPECT_NE(server.Logs().find("tls.cert_file"), std::string::npos) << server.Logs();
}

}  // namespace
}  // namespace storeplane::testing
