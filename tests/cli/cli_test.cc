// End-to-end tests of the operator CLI: the real `storeplane` binary run as a child process,
// against a real storeplaned on a loopback port (fresh data dir, admin token from its
// first start). Assertions are on exit codes, stdout and the one-line stderr.
#include <yaml-cpp/yaml.h>

#include <boost/json.hpp>

#include <gtest/gtest.h>
#include <fstream>
#include <string>
#include <vector>

#include "cli_test_support.h"
#include "support/server_process.h"

namespace storeplane {
namespace {

using storeplane::testing::CliRun;
using storeplane::testing::ClosedPort;
using storeplane::testing::FakeApi;
using storeplane::testing::Lines;
using storeplane::testing::OneErrorLine;
using storeplane::testing::RunCli;
using storeplane::testing::ServerOptions;
using storeplane::testing::ServerProcess;
using storeplane::testing::TempDir;
namespace json = boost::json;

// ====================================================================================
// Without a server: help, usage errors, unreachable server, local configuration errors.
// ====================================================================================

TEST(CliLocal, HelpWorksForEveryCommand) {
  const std::vector<std::vector<std::string>> commands = {{},
                                                          {"stores"},
                                                          {"stores", "list"},
                                                          {"stores", "get"},
                                                          {"stores", "register"},
                                                          {"stores", "label"},
                                                          {"whoami"},
                                                          {"version"},
                                                          {"tokens", "create"},
                                                          {"tokens", "list"},
                                                          {"tokens", "revoke"},
                                                          {"changes", "list"},
                                                          {"changes", "get"},
                                                          {"changes", "approve"},
                                                          {"changes", "reject"},
                                                          {"audit", "list"},
                                                          {"audit", "export"},
                                                          {"audit", "verify"},
                                                          {"authz", "explain"}};
  for (auto args : commands) {
    args.push_back("--help");
    CliRun run = RunCli(args);
    EXPECT_EQ(run.exit_code, 0) << run;
    EXPECT_NE(run.out.find("Usage: storeplane"), std::string::npos) << run;
  }
  CliRun root = RunCli({"--help"});
  EXPECT_NE(root.out.find("Exit codes:"), std::string::npos) << root;
  EXPECT_NE(root.out.find("6  cannot reach the server"), std::string::npos) << root;
  EXPECT_NE(root.out.find("8  audit verify"), std::string::npos) << root;
}

TEST(CliLocal, VersionPrintsTheVersion) {
  CliRun run = RunCli({"version"});
  EXPECT_EQ(run.exit_code, 0) << run;
  EXPECT_EQ(run.out, "storeplane 0.1.0\n");
}

TEST(CliLocal, UsageErrorsExit2WithOneLine) {
  const std::vector<std::vector<std::string>> cases = {
      {},                                                          // no command
      {"stores"},                                                  // no subcommand
      {"stores", "list", "--bogus"},                               // unknown flag
      {"stores", "get"},                                           // missing id
      {"stores", "register", "s1", "--isolation-mode", "shared"},  // missing --environment
      {"stores", "register", "s1", "--environment", "staging", "--isolation-mode", "shared", "-l", "novalue"},
      {"stores", "label", "s1", "tier"},                // bad k=v syntax
      {"stores", "label", "s1", "tier=gold", "tier-"},  // set and remove the same key
      {"stores", "list", "-o", "xml"},                  // bad output format
      {"stores", "list", "--limit", "0"},
      {"stores", "list", "--server", "ftp://example"},  // not http(s)
  };
  for (const auto& args : cases) {
    CliRun run = RunCli(args);
    EXPECT_EQ(run.exit_code, 2) << run;
    EXPECT_TRUE(OneErrorLine(run));
    EXPECT_EQ(run.out, "") << run;
  }
}

TEST(CliLocal, UnreachableServerExits6) {
  std::string url = "http://127.0.0.1:" + std::to_string(ClosedPort());
  CliRun run = RunCli({"stores", "list", "--server", url, "--token", "sekrit-token-value"});
  EXPECT_EQ(run.exit_code, 6) << run;
  EXPECT_TRUE(OneErrorLine(run));
  EXPECT_NE(run.err.find("cannot reach " + url), std::string::npos) << run;
  EXPECT_EQ(run.err.find("sekrit-token-value"), std::string::npos) << "token leaked: " << run;

  CliRun via_env = RunCli({"whoami"}, {"STOREPLANE_ADDR=" + url});
  EXPECT_EQ(via_env.exit_code, 6) << via_env;
}

TEST(CliLocal, LocalConfigurationErrorsExit2) {
  TempDir dir;
  CliRun missing_config = RunCli({"whoami"}, {"STOREPLANE_CONFIG=" + dir.path() + "/absent.yaml"});
  EXPECT_EQ(missing_config.exit_code, 2) << missing_config;
  EXPECT_TRUE(OneErrorLine(missing_config));

  CliRun missing_token_file = RunCli({"whoami", "--token-file", dir.path() + "/absent"});
  EXPECT_EQ(missing_token_file.exit_code, 2) << missing_token_file;
  EXPECT_TRUE(OneErrorLine(missing_token_file));
}

const char* kFakeStore =
    R"({"id":"s1","name":"s1","environment":"staging","isolation_mode":"shared","labels":{"tier":"gold"},)"
    R"("state":"registered","desired_release":null,"current_release":null,"last_known_good_release":null,)"
    R"("version":7,"created_at":"2024-01-01T00:00:00Z","updated_at":"2024-01-01T00:00:00Z"})";

TEST(CliFakeServer, LabelSendsIfMatchAndReportsAConcurrentChange) {
  FakeApi api([](const FakeApi::Request& request) {
    if (request.method == "GET")
      return FakeApi::Reply{200, {{"ETag", "\"7\""}, {"Content-Type", "application/json"}}, kFakeStore};
    return FakeApi::Reply{412,
                          {{"Content-Type", "application/problem+json"}},
                          R"({"type":"urn:storeplane:problem:precondition-failed","title":"Precondition failed",)"
                          R"("status":412,"detail":"store 's1' is at version 8, not 7","request_id":"rq-9"})"};
  });
  CliRun run = RunCli({"stores", "label", "s1", "team=web", "tier-", "--server", api.url(), "--token", "t0k"});
  EXPECT_EQ(run.exit_code, 5) << run;
  EXPECT_TRUE(OneErrorLine(run));
  EXPECT_NE(run.err.find("changed by someone else"), std::string::npos) << run;
  EXPECT_NE(run.err.find("request id rq-9"), std::string::npos) << run;

  auto requests = api.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].method, "GET");
  EXPECT_EQ(requests[0].target, "/v1/stores/s1");
  EXPECT_EQ(requests[0].headers["authorization"], "Bearer t0k");
  EXPECT_EQ(requests[1].method, "PATCH");
  EXPECT_EQ(requests[1].target, "/v1/stores/s1");
  EXPECT_EQ(requests[1].headers["if-match"], "\"7\"");
  EXPECT_EQ(requests[1].headers["content-type"], "application/merge-patch+json");
  EXPECT_EQ(json::parse(requests[1].body), json::parse(R"({"labels":{"team":"web"}})"));
}

TEST(CliFakeServer, ServerErrorsAndNonProblemBodiesExit1WithOneLine) {
  FakeApi api([](const FakeApi::Request&) {
    return FakeApi::Reply{
        502, {{"Content-Type", "text/html"}, {"X-Request-Id", "gw-1"}}, "<html>\nbad gateway\n</html>"};
  });
  CliRun run = RunCli({"stores", "get", "s1", "--server", api.url()});
  EXPECT_EQ(run.exit_code, 1) << run;
  EXPECT_TRUE(OneErrorLine(run));
  EXPECT_NE(run.err.find("request id gw-1"), std::string::npos) << run;
}

TEST(CliFakeServer, ListEncodesTheSelectorAndFollowsCursors) {
  FakeApi api([](const FakeApi::Request& request) {
    std::string item = kFakeStore;
    if (request.target.find("cursor=") == std::string::npos) {
      return FakeApi::Reply{200, {}, R"({"items":[)" + item + R"(],"next_cursor":"a/b=="})"};
    }
    return FakeApi::Reply{200, {}, R"({"items":[)" + item + R"(],"next_cursor":null})"};
  });
  CliRun run = RunCli({"stores", "list", "--all", "-l", "tier in (gold,silver),!legacy", "--limit", "1", "--server",
                       api.url(), "-o", "json"});
  EXPECT_EQ(run.exit_code, 0) << run;
  auto requests = api.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].target, "/v1/stores?selector=tier%20in%20%28gold%2Csilver%29%2C%21legacy&limit=1");
  EXPECT_EQ(requests[1].target,
            "/v1/stores?selector=tier%20in%20%28gold%2Csilver%29%2C%21legacy&limit=1&cursor=a%2Fb%3D%3D");
  EXPECT_EQ(json::parse(run.out).at("items").as_array().size(), 2u);
}

// ====================================================================================
// Against a real storeplaned.
// ====================================================================================

class CliServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    data_dir_ = new TempDir();
    ServerOptions options;
    options.data_dir = data_dir_->path();
    server_ = new ServerProcess(options);
    started_ = server_->Start();
  }
  static void TearDownTestSuite() {
    if (server_->running()) server_->Stop();
    delete server_;
    delete data_dir_;
    server_ = nullptr;
    data_dir_ = nullptr;
  }
  void SetUp() override {
    ASSERT_TRUE(started_) << server_->error();
    ASSERT_FALSE(server_->token().empty()) << "storeplaned printed no STOREPLANE_TOKEN line on first start";
  }

  static std::string Url() { return server_->url(); }
  static std::string Token() { return server_->token(); }

  // Runs the CLI with the server address and admin token from the environment.
  static CliRun Cli(const std::vector<std::string>& args, std::vector<std::string> env = {}) {
    env.push_back("STOREPLANE_ADDR=" + Url());
    env.push_back("STOREPLANE_TOKEN=" + Token());
    return RunCli(args, env);
  }

  static void Register(const std::string& id, const std::string& environment, const std::string& isolation,
                       const std::vector<std::string>& labels = {}) {
    std::vector<std::string> args = {"stores",    "register",         id,       "--environment",
                                     environment, "--isolation-mode", isolation};
    for (const auto& label : labels) {
      args.push_back("-l");
      args.push_back(label);
    }
    CliRun run = Cli(args);
    ASSERT_EQ(run.exit_code, 0) << run;
  }

  static json::value GetJson(const std::string& id) {
    CliRun run = Cli({"stores", "get", id, "-o", "json"});
    EXPECT_EQ(run.exit_code, 0) << run;
    boost::system::error_code ec;
    json::value value = json::parse(run.out, ec);
    EXPECT_FALSE(ec) << run;
    return value;
  }

  // Ids of the stores in a `-o json` listing, in order.
  static std::vector<std::string> ListedIds(const CliRun& run) {
    std::vector<std::string> ids;
    boost::system::error_code ec;
    json::value value = json::parse(run.out, ec);
    if (ec || !value.is_object() || !value.as_object().contains("items")) {
      ADD_FAILURE() << "not a listing: " << run;
      return ids;
    }
    for (const auto& item : value.at("items").as_array()) ids.emplace_back(item.at("id").as_string());
    return ids;
  }

  static TempDir* data_dir_;
  static ServerProcess* server_;
  static bool started_;
};

TempDir* CliServerTest::data_dir_ = nullptr;
ServerProcess* CliServerTest::server_ = nullptr;
bool CliServerTest::started_ = false;

TEST_F(CliServerTest, RegisterThenGetAsTableJsonAndYaml) {
  CliRun reg = Cli({"stores", "register", "reg-one", "--environment", "development", "--isolation-mode", "dedicated",
                    "--name", "Shop One", "-l", "tier=gold", "--label", "region=eu"});
  ASSERT_EQ(reg.exit_code, 0) << reg;
  EXPECT_EQ(reg.out, "store reg-one registered\n");
  EXPECT_EQ(reg.err, "");

  json::value store = GetJson("reg-one");
  ASSERT_TRUE(store.is_object());
  EXPECT_EQ(store.at("id"), "reg-one");
  EXPECT_EQ(store.at("name"), "Shop One");
  EXPECT_EQ(store.at("environment"), "development");
  EXPECT_EQ(store.at("isolation_mode"), "dedicated");
  EXPECT_EQ(store.at("state"), "registered");
  EXPECT_EQ(store.at("labels"), json::parse(R"({"tier":"gold","region":"eu"})"));
  EXPECT_EQ(store.at("version"), 1);

  CliRun yaml = Cli({"stores", "get", "reg-one", "-o", "yaml"});
  ASSERT_EQ(yaml.exit_code, 0) << yaml;
  YAML::Node node = YAML::Load(yaml.out);
  EXPECT_EQ(node["id"].as<std::string>(), "reg-one");
  EXPECT_EQ(node["labels"]["tier"].as<std::string>(), "gold");
  EXPECT_EQ(node["version"].as<int>(), 1);

  CliRun table = Cli({"stores", "get", "reg-one"});
  ASSERT_EQ(table.exit_code, 0) << table;
  auto lines = Lines(table.out);
  ASSERT_EQ(lines.size(), 2u) << table;
  EXPECT_EQ(lines[0].rfind("ID", 0), 0u);
  for (const char* column : {"NAME", "ENVIRONMENT", "ISOLATION", "STATE", "LABELS", "VERSION"}) {
    EXPECT_NE(lines[0].find(column), std::string::npos) << column;
  }
  EXPECT_EQ(lines[1].rfind("reg-one ", 0), 0u) << table;
  EXPECT_NE(lines[1].find("region=eu,tier=gold"), std::string::npos) << table;

  CliRun as_json = Cli({"stores", "register", "reg-two", "--environment", "staging", "--isolation-mode", "shared", "-o",
                        "json", "--idempotency-key", "k-reg-two"});
  ASSERT_EQ(as_json.exit_code, 0) << as_json;
  EXPECT_EQ(json::parse(as_json.out).at("id"), "reg-two");
}

TEST_F(CliServerTest, RegisteringATakenIdIsAConflict) {
  Register("dup-one", "staging", "shared");
  CliRun again = Cli({"stores", "register", "dup-one", "--environment", "staging", "--isolation-mode", "shared"});
  EXPECT_EQ(again.exit_code, 5) << again;
  EXPECT_TRUE(OneErrorLine(again));
  EXPECT_NE(again.err.find("request id "), std::string::npos) << again;
}

TEST_F(CliServerTest, RejectedInputExits7WithOneLine) {
  CliRun bad_id = Cli({"stores", "register", "Bad_ID!", "--environment", "staging", "--isolation-mode", "shared"});
  EXPECT_EQ(bad_id.exit_code, 7) << bad_id;
  EXPECT_TRUE(OneErrorLine(bad_id));
  EXPECT_NE(bad_id.err.find("request id "), std::string::npos) << bad_id;

  CliRun bad_env = Cli({"stores", "register", "bad-env", "--environment", "moon", "--isolation-mode", "shared"});
  EXPECT_EQ(bad_env.exit_code, 7) << bad_env;
  EXPECT_TRUE(OneErrorLine(bad_env));

  CliRun bad_mode = Cli({"stores", "register", "bad-mode", "--environment", "staging", "--isolation-mode", "loose"});
  EXPECT_EQ(bad_mode.exit_code, 7) << bad_mode;
  EXPECT_TRUE(OneErrorLine(bad_mode));

  CliRun secret = Cli({"stores", "register", "bad-label", "--environment", "staging", "--isolation-mode", "shared",
                       "-l", "db_password=hunter2"});
  EXPECT_EQ(secret.exit_code, 7) << secret;
  EXPECT_TRUE(OneErrorLine(secret));

  CliRun bad_selector = Cli({"stores", "list", "-l", "tier in (gold"});
  EXPECT_EQ(bad_selector.exit_code, 7) << bad_selector;
  EXPECT_TRUE(OneErrorLine(bad_selector));
}

TEST_F(CliServerTest, MissingStoreExits3) {
  CliRun get = Cli({"stores", "get", "no-such-store"});
  EXPECT_EQ(get.exit_code, 3) << get;
  EXPECT_TRUE(OneErrorLine(get));
  EXPECT_NE(get.err.find("request id "), std::string::npos) << get;

  CliRun label = Cli({"stores", "label", "no-such-store", "tier=gold"});
  EXPECT_EQ(label.exit_code, 3) << label;
  EXPECT_TRUE(OneErrorLine(label));
}

TEST_F(CliServerTest, BadOrMissingTokenExits4) {
  CliRun bad = RunCli({"stores", "list", "--server", Url(), "--token", "not-a-real-token-123"});
  EXPECT_EQ(bad.exit_code, 4) << bad;
  EXPECT_TRUE(OneErrorLine(bad));
  EXPECT_EQ(bad.err.find("not-a-real-token-123"), std::string::npos) << "token leaked: " << bad;

  CliRun none = RunCli({"whoami", "--server", Url()});
  EXPECT_EQ(none.exit_code, 4) << none;
  EXPECT_TRUE(OneErrorLine(none));
}

TEST_F(CliServerTest, WhoamiShowsThePrincipal) {
  CliRun table = Cli({"whoami"});
  ASSERT_EQ(table.exit_code, 0) << table;
  EXPECT_EQ(table.out.rfind("ID", 0), 0u) << table;
  EXPECT_EQ(table.out.find(Token()), std::string::npos) << "token printed";

  CliRun as_json = Cli({"whoami", "-o", "json"});
  ASSERT_EQ(as_json.exit_code, 0) << as_json;
  json::value me = json::parse(as_json.out);
  EXPECT_TRUE(me.at("id").is_string());
  EXPECT_TRUE(me.at("kind").is_string());
  EXPECT_TRUE(me.at("roles").is_array());
}

TEST_F(CliServerTest, ListFiltersBySelectorEnvironmentIsolationAndState) {
  Register("flt-a", "development", "shared", {"suite=filters", "tier=gold"});
  Register("flt-b", "staging", "dedicated", {"suite=filters", "tier=silver"});
  Register("flt-c", "staging", "isolated", {"suite=filters", "tier=gold", "legacy=yes"});

  EXPECT_EQ(ListedIds(Cli({"stores", "list", "-l", "suite=filters", "-o", "json"})),
            (std::vector<std::string>{"flt-a", "flt-b", "flt-c"}));
  EXPECT_EQ(ListedIds(Cli({"stores", "list", "--selector", "suite=filters,tier=gold", "-o", "json"})),
            (std::vector<std::string>{"flt-a", "flt-c"}));
  EXPECT_EQ(ListedIds(Cli({"stores", "list", "-l", "suite=filters,tier in (gold,silver),!legacy", "-o", "json"})),
            (std::vector<std::string>{"flt-a", "flt-b"}));
  EXPECT_EQ(ListedIds(Cli({"stores", "list", "-l", "suite=filters", "--environment", "staging", "-o", "json"})),
            (std::vector<std::string>{"flt-b", "flt-c"}));
  EXPECT_EQ(ListedIds(Cli({"stores", "list", "-l", "suite=filters", "--isolation-mode", "isolated", "-o", "json"})),
            (std::vector<std::string>{"flt-c"}));
  EXPECT_EQ(ListedIds(Cli({"stores", "list", "-l", "suite=filters", "--state", "active", "-o", "json"})),
            (std::vector<std::string>{}));
  EXPECT_EQ(ListedIds(Cli({"stores", "list", "-l", "suite=filters", "--state", "registered", "-o", "json"})).size(),
            3u);

  CliRun table = Cli({"stores", "list", "-l", "suite=filters,tier=silver"});
  ASSERT_EQ(table.exit_code, 0) << table;
  auto lines = Lines(table.out);
  ASSERT_EQ(lines.size(), 2u) << table;
  EXPECT_EQ(lines[1].rfind("flt-b ", 0), 0u) << table;

  CliRun none = Cli({"stores", "list", "-l", "suite=nothing-here"});
  EXPECT_EQ(none.exit_code, 0) << none;
  EXPECT_EQ(none.out, "No stores found.\n");
}

TEST_F(CliServerTest, ListFollowsCursorsWithAll) {
  for (int i = 1; i <= 5; ++i) Register("page-" + std::to_string(i), "development", "shared", {"suite=paging"});

  CliRun one_page = Cli({"stores", "list", "-l", "suite=paging", "--limit", "2", "-o", "json"});
  ASSERT_EQ(one_page.exit_code, 0) << one_page;
  json::value page = json::parse(one_page.out);
  EXPECT_EQ(page.at("items").as_array().size(), 2u);
  ASSERT_TRUE(page.at("next_cursor").is_string()) << one_page;

  CliRun next = Cli({"stores", "list", "-l", "suite=paging", "--limit", "2", "--cursor",
                     std::string(page.at("next_cursor").as_string()), "-o", "json"});
  ASSERT_EQ(next.exit_code, 0) << next;
  EXPECT_EQ(ListedIds(next), (std::vector<std::string>{"page-3", "page-4"}));

  CliRun all = Cli({"stores", "list", "-l", "suite=paging", "--limit", "2", "--all", "-o", "json"});
  ASSERT_EQ(all.exit_code, 0) << all;
  EXPECT_EQ(ListedIds(all), (std::vector<std::string>{"page-1", "page-2", "page-3", "page-4", "page-5"}));
  EXPECT_TRUE(json::parse(all.out).at("next_cursor").is_null());

  CliRun all_table = Cli({"stores", "list", "-l", "suite=paging", "--limit", "2", "--all"});
  ASSERT_EQ(all_table.exit_code, 0) << all_table;
  EXPECT_EQ(Lines(all_table.out).size(), 6u) << all_table;
  EXPECT_EQ(all_table.err, "");

  CliRun partial_table = Cli({"stores", "list", "-l", "suite=paging", "--limit", "2"});
  ASSERT_EQ(partial_table.exit_code, 0) << partial_table;
  EXPECT_EQ(Lines(partial_table.out).size(), 3u) << partial_table;
  EXPECT_NE(partial_table.err.find("--all"), std::string::npos) << partial_table;

  CliRun yaml = Cli({"stores", "list", "-l", "suite=paging", "--all", "--limit", "2", "-o", "yaml"});
  ASSERT_EQ(yaml.exit_code, 0) << yaml;
  EXPECT_EQ(YAML::Load(yaml.out)["items"].size(), 5u);
}

TEST_F(CliServerTest, LabelSetsRemovesAndRefusesSilentOverwrite) {
  Register("lbl-one", "staging", "shared", {"tier=gold", "region=eu"});

  CliRun add = Cli({"stores", "label", "lbl-one", "team=payments"});
  ASSERT_EQ(add.exit_code, 0) << add;
  EXPECT_EQ(add.out, "store lbl-one labeled\n");
  json::value store = GetJson("lbl-one");
  EXPECT_EQ(store.at("labels"), json::parse(R"({"tier":"gold","region":"eu","team":"payments"})"));
  EXPECT_EQ(store.at("version"), 2);

  CliRun refused = Cli({"stores", "label", "lbl-one", "tier=silver"});
  EXPECT_EQ(refused.exit_code, 5) << refused;
  EXPECT_TRUE(OneErrorLine(refused));
  EXPECT_NE(refused.err.find("--overwrite"), std::string::npos) << refused;
  EXPECT_EQ(GetJson("lbl-one").at("labels").at("tier"), "gold");

  CliRun same = Cli({"stores", "label", "lbl-one", "tier=gold"});
  EXPECT_EQ(same.exit_code, 0) << same;
  EXPECT_EQ(same.out, "store lbl-one not labeled (no change)\n");
  EXPECT_EQ(GetJson("lbl-one").at("version"), 2);

  CliRun overwrite = Cli({"stores", "label", "lbl-one", "tier=silver", "region-", "--overwrite", "-o", "json"});
  ASSERT_EQ(overwrite.exit_code, 0) << overwrite;
  json::value updated = json::parse(overwrite.out);
  EXPECT_EQ(updated.at("labels"), json::parse(R"({"tier":"silver","team":"payments"})"));
  EXPECT_EQ(updated.at("version"), 3);
  EXPECT_EQ(GetJson("lbl-one").at("labels"), updated.at("labels"));

  CliRun bad_value = Cli({"stores", "label", "lbl-one", "note=has spaces"});
  EXPECT_EQ(bad_value.exit_code, 7) << bad_value;
  EXPECT_TRUE(OneErrorLine(bad_value));
}

TEST_F(CliServerTest, FlagsBeatEnvironmentBeatConfigFile) {
  TempDir dir;
  std::string bogus = "http://127.0.0.1:" + std::to_string(ClosedPort());
  std::string config = dir.path() + "/config.yaml";
  std::string token_file = dir.path() + "/token";
  std::ofstream(token_file) << Token() << "\n";

  // Config file alone (with a token file relative to it).
  std::ofstream(config) << "server: " << Url() << "\ntoken_file: token\n";
  CliRun file_only = RunCli({"whoami"}, {"STOREPLANE_CONFIG=" + config});
  EXPECT_EQ(file_only.exit_code, 0) << file_only;

  // Environment beats the config file: a bad server and token in the file are not used.
  std::ofstream(config, std::ios::trunc) << "server: " << bogus << "\ntoken: wrong-token\n";
  CliRun env_wins = RunCli(
      {"whoami"}, {"STOREPLANE_CONFIG=" + config, "STOREPLANE_ADDR=" + Url(), "STOREPLANE_TOKEN_FILE=" + token_file});
  EXPECT_EQ(env_wins.exit_code, 0) << env_wins;

  // The config file is used when the environment is silent: its server is unreachable.
  CliRun file_used = RunCli({"whoami"}, {"STOREPLANE_CONFIG=" + config});
  EXPECT_EQ(file_used.exit_code, 6) << file_used;

  // Flags beat the environment.
  CliRun flags_win = RunCli({"whoami", "--server", Url(), "--token", Token()},
                            {"STOREPLANE_CONFIG=" + config, "STOREPLANE_ADDR=" + bogus, "STOREPLANE_TOKEN=wrong"});
  EXPECT_EQ(flags_win.exit_code, 0) << flags_win;
  CliRun bad_flag_token =
      RunCli({"whoami", "--token", "wrong-flag-token"}, {"STOREPLANE_ADDR=" + Url(), "STOREPLANE_TOKEN=" + Token()});
  EXPECT_EQ(bad_flag_token.exit_code, 4) << bad_flag_token;

  // Global flags may also come before the command.
  CliRun before = RunCli({"--server", Url(), "--token-file", token_file, "-o", "json", "whoami"});
  EXPECT_EQ(before.exit_code, 0) << before;
  EXPECT_FALSE(json::parse(before.out).at("id").as_string().empty());
}

}  // namespace
}  // namespace storeplane
