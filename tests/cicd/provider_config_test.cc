// MakeProvider: every adapter type builds from a valid config, and every wrong or missing
// setting is refused with kInvalidArgument naming it; no refusal ever shows a credential.
#include <gtest/gtest.h>

#include "fake_http_server_support.h"
#include "provider_test_support.h"

namespace storeplane::cicd {
namespace {

using testing::FakeHttpServer;
using testing::Reply;

constexpr const char* kCredential = "SeCrEt-credential-0123456789";

class ProviderConfigTest : public ::testing::Test {
 protected:
  ProviderConfig Valid(const std::string& type) {
    ProviderConfig config;
    config.name = "ci";
    config.type = type;
    config.base_url = "https://ci.example/root/";
    if (type == "webhook") config.secret_file = dir_.Write("secret", kCredential);
    if (type == "github") {
      config.token_file = dir_.Write("token", kCredential);
      config.settings = {{"owner", "acme"}, {"repo", "stores"}, {"workflow", "deploy.yml"}, {"ref", "main"}};
    }
    if (type == "gitlab") {
      config.token_file = dir_.Write("token", kCredential);
      config.settings = {{"project", "platform/stores"}, {"ref", "main"}};
    }
    if (type == "jenkins") {
      config.token_file = dir_.Write("token", std::string("deployer:") + kCredential);
      config.settings = {{"job", "stores/deploy"}};
    }
    if (type == "buildbot") config.settings = {{"scheduler", "force-store"}, {"builder", "store-deploy"}};
    return config;
  }

  // The refusal of `config`, checked to be kInvalidArgument without the credential.
  Error Refusal(const ProviderConfig& config) {
    auto made = MakeProvider(config);
    EXPECT_FALSE(made.ok()) << config.type;
    if (made.ok()) return Error{};
    EXPECT_EQ(made.error().code, ErrorCode::kInvalidArgument) << made.error().message;
    EXPECT_EQ(made.error().message.find(kCredential), std::string::npos) << made.error().message;
    return made.error();
  }

  testing::TempDir dir_;
};

TEST_F(ProviderConfigTest, EveryTypeBuildsFromAValidConfig) {
  for (const std::string type : {"webhook", "github", "gitlab", "jenkins", "buildbot"}) {
    auto made = MakeProvider(Valid(type));
    ASSERT_TRUE(made.ok()) << type << ": " << made.error().message;
    EXPECT_EQ((*made)->type(), type);
    EXPECT_EQ((*made)->name(), "ci");
  }
}

TEST_F(ProviderConfigTest, TypeNameAndBaseUrlAreChecked) {
  auto config = Valid("github");
  config.type = "travis";
  EXPECT_EQ(Refusal(config).field, "type");

  config = Valid("github");
  config.name = "";
  EXPECT_EQ(Refusal(config).field, "name");
  config.name = "has space";
  EXPECT_EQ(Refusal(config).field, "name");

  for (const std::string url : {"", "ci.example", "ftp://ci.example", "https://", "https://ci.example/?x=1",
                                "https://ci.example/#frag", "/relative/path"}) {
    config = Valid("github");
    config.base_url = url;
    EXPECT_EQ(Refusal(config).field, "base_url") << url;
  }

  config = Valid("github");
  config.base_url = "https://admin:hunter2pass@ci.example";
  const auto error = Refusal(config);
  EXPECT_EQ(error.field, "base_url");
  EXPECT_EQ(error.message.find("hunter2pass"), std::string::npos) << error.message;

  config = Valid("buildbot");
  config.base_url = "http://127.0.0.1:8010";
  EXPECT_TRUE(MakeProvider(config).ok());
}

TEST_F(ProviderConfigTest, TimeoutAndCaFileAreChecked) {
  auto config = Valid("webhook");
  config.timeout_ms = 0;
  EXPECT_EQ(Refusal(config).field, "timeout_ms");
  config.timeout_ms = 3'600'000;
  EXPECT_EQ(Refusal(config).field, "timeout_ms");

  config = Valid("webhook");
  config.ca_file = "/nonexistent/ca.pem";
  EXPECT_EQ(Refusal(config).field, "ca_file");
  config.ca_file = dir_.Write("ca.pem", "-----BEGIN CERTIFICATE-----\n");
  EXPECT_TRUE(MakeProvider(config).ok());
}

TEST_F(ProviderConfigTest, RequiredSettingsPerType) {
  const std::pair<const char*, const char*> required[] = {
      {"github", "owner"}, {"github", "repo"},        {"github", "workflow"},
      {"github", "ref"},   {"gitlab", "project"},     {"gitlab", "ref"},
      {"jenkins", "job"},  {"buildbot", "scheduler"}, {"buildbot", "builder"},
  };
  for (const auto& [type, key] : required) {
    auto config = Valid(type);
    config.settings.erase(key);
    auto error = Refusal(config);
    EXPECT_EQ(error.field, std::string("settings.") + key) << type;
    EXPECT_NE(error.message.find(key), std::string::npos) << error.message;

    config = Valid(type);
    config.settings[key] = "  ";
    EXPECT_EQ(Refusal(config).field, std::string("settings.") + key) << type << " blank";
  }
}

TEST_F(ProviderConfigTest, UnknownSettingsAreRefusedSoTyposShowUp) {
  auto config = Valid("github");
  config.settings["workflw"] = "deploy.yml";
  EXPECT_EQ(Refusal(config).field, "settings.workflw");
  config = Valid("webhook");
  config.settings["owner"] = "acme";
  EXPECT_EQ(Refusal(config).field, "settings.owner");
}

TEST_F(ProviderConfigTest, CredentialsArePresentWhereRequired) {
  for (const std::string type : {"github", "gitlab", "jenkins"}) {
    auto config = Valid(type);
    config.token_file.clear();
    EXPECT_EQ(Refusal(config).field, "token_file") << type;
  }
  auto webhook = Valid("webhook");
  webhook.secret_file.clear();
  EXPECT_EQ(Refusal(webhook).field, "secret_file");

  auto buildbot = Valid("buildbot");
  EXPECT_TRUE(buildbot.token_file.empty());
  EXPECT_TRUE(MakeProvider(buildbot).ok()) << "a Buildbot token is optional";
}

TEST_F(ProviderConfigTest, CredentialFilesAndVariablesAreReadButNeverShown) {
  auto config = Valid("github");
  config.token_file = "/nonexistent/gh.token";
  auto error = Refusal(config);
  EXPECT_EQ(error.field, "token_file");
  EXPECT_NE(error.message.find("/nonexistent/gh.token"), std::string::npos) << error.message;

  config.token_file = dir_.Write("empty", " \n\n");
  EXPECT_EQ(Refusal(config).field, "token_file");

  config.token_file = dir_.Write("two-lines", std::string(kCredential) + "\nsecond line of " + kCredential + "\n");
  EXPECT_EQ(Refusal(config).field, "token_file");

  config = Valid("github");
  config.token_file.clear();
  config.token_env = "STOREPLANE_TEST_UNSET_VARIABLE_42";
  ::unsetenv("STOREPLANE_TEST_UNSET_VARIABLE_42");
  error = Refusal(config);
  EXPECT_EQ(error.field, "token_env");
  EXPECT_NE(error.message.find("STOREPLANE_TEST_UNSET_VARIABLE_42"), std::string::npos) << error.message;

  ::setenv("STOREPLANE_TEST_GH_TOKEN", kCredential, 1);
  config.token_env = "STOREPLANE_TEST_GH_TOKEN";
  EXPECT_TRUE(MakeProvider(config).ok());
  config.token_file = dir_.Write("token", kCredential);
  EXPECT_EQ(Refusal(config).field, "token_file") << "a file and a variable at once are ambiguous";

  auto gitlab = Valid("gitlab");
  gitlab.settings["api_token_file"] = "/nonexistent/api.token";
  EXPECT_EQ(Refusal(gitlab).field, "settings.api_token_file");

  auto webhook = Valid("webhook");
  webhook.token_file = dir_.Write("token", kCredential);
  Refusal(webhook);
  auto github = Valid("github");
  github.secret_file = dir_.Write("secret", kCredential);
  Refusal(github);
}

TEST_F(ProviderConfigTest, TheJenkinsTokenIsUserColonToken) {
  for (const std::string& token : {std::string(kCredential), std::string(":") + kCredential, std::string("user:")}) {
    auto config = Valid("jenkins");
    config.token_file = dir_.Write("token", token);
    EXPECT_EQ(Refusal(config).field, "token_file") << token;
  }
  auto config = Valid("jenkins");
  config.settings["job"] = "stores//deploy";
  EXPECT_EQ(Refusal(config).field, "settings.job");
}

TEST_F(ProviderConfigTest, WebhookStatusUrlMustBeHttp) {
  auto config = Valid("webhook");
  config.settings["status_url"] = "file:///etc/passwd";
  EXPECT_EQ(Refusal(config).field, "settings.status_url");
  config.settings["status_url"] = "https://status.example/runs";
  EXPECT_TRUE(MakeProvider(config).ok());
}

TEST_F(ProviderConfigTest, CredentialFilesAreTrimmed) {
  FakeHttpServer server;
  server.On("POST", "/repos/acme/stores/actions/workflows/deploy.yml/dispatches", Reply::Empty(204));
  auto config = Valid("github");
  config.base_url = server.url();
  config.token_file = dir_.Write("padded", std::string("\n  ") + kCredential + " \r\n");
  auto provider = testing::MustMake(config);
  ASSERT_NE(provider, nullptr);
  ASSERT_TRUE(provider->Trigger(testing::SampleRequest()).ok());
  ASSERT_EQ(server.requests().size(), 1u);
  EXPECT_EQ(server.requests()[0].Header("authorization"), std::string("Bearer ") + kCredential);
}

TEST(ProviderRunStatusTest, NamesAreStable) {
  EXPECT_EQ(ToString(ProviderRunStatus::kNotFound), "not_found");
  EXPECT_EQ(ToString(ProviderRunStatus::kQueued), "queued");
  EXPECT_EQ(ToString(ProviderRunStatus::kRunning), "running");
  EXPECT_EQ(ToString(ProviderRunStatus::kSucceeded), "succeeded");
  EXPECT_EQ(ToString(ProviderRunStatus::kFailed), "failed");
  EXPECT_EQ(ToString(ProviderRunStatus::kCancelled), "cancelled");
}

}  // namespace
}  // namespace storeplane::cicd
