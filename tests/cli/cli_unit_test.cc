// Unit tests of the CLI's pure parts: configuration precedence, label edits, query
// strings, exit codes, problem lines and output rendering. No server, no child processes.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <boost/json.hpp>

#include <fstream>
#include <map>

#include "cli/cli_config.h"
#include "cli/output.h"
#include "cli/stores_commands.h"
#include "support/server_process.h"

namespace storeplane::cli {
namespace {

EnvLookup FakeEnv(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

void WriteFile(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

// --- configuration --------------------------------------------------------------------

TEST(CliConfig, DefaultsWhenNothingIsSet) {
  testing::TempDir home;
  auto config = ResolveConfig(GlobalFlags{}, FakeEnv({{"HOME", home.path()}}));
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ(config->server, "http://127.0.0.1:8750");
  EXPECT_EQ(config->token, "");
  EXPECT_EQ(config->output, OutputFormat::kTable);
  EXPECT_EQ(config->timeout_ms, 30000);
}

TEST(CliConfig, FlagsBeatEnvironmentBeatsConfigFile) {
  testing::TempDir dir;
  std::string file = dir.path() + "/config.yaml";
  WriteFile(file, "server: http://file:1\ntoken: file-token\nca_file: ca.pem\n");
  std::map<std::string, std::string> env = {{"STOREPLANE_CONFIG", file}};

  auto from_file = ResolveConfig(GlobalFlags{}, FakeEnv(env));
  ASSERT_TRUE(from_file.ok()) << from_file.error().message;
  EXPECT_EQ(from_file->server, "http://file:1");
  EXPECT_EQ(from_file->token, "file-token");
  EXPECT_EQ(from_file->ca_file, dir.path() + "/ca.pem");  // relative to the config file

  env["STOREPLANE_ADDR"] = "http://env:2/";
  env["STOREPLANE_TOKEN"] = "env-token";
  auto from_env = ResolveConfig(GlobalFlags{}, FakeEnv(env));
  ASSERT_TRUE(from_env.ok());
  EXPECT_EQ(from_env->server, "http://env:2");  // trailing slash dropped
  EXPECT_EQ(from_env->token, "env-token");

  GlobalFlags flags;
  flags.server = "https://flag:3";
  flags.token = "flag-token";
  auto from_flags = ResolveConfig(flags, FakeEnv(env));
  ASSERT_TRUE(from_flags.ok());
  EXPECT_EQ(from_flags->server, "https://flag:3");
  EXPECT_EQ(from_flags->token, "flag-token");
}

TEST(CliConfig, TokenFileOnAHigherLevelBeatsATokenBelowIt) {
  testing::TempDir dir;
  WriteFile(dir.path() + "/token", "  file-token\n");
  GlobalFlags flags;
  flags.token_file = dir.path() + "/token";
  auto config = ResolveConfig(flags, FakeEnv({{"STOREPLANE_TOKEN", "env-token"}, {"HOME", dir.path()}}));
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ(config->token, "file-token");

  auto from_env_file =
      ResolveConfig(GlobalFlags{}, FakeEnv({{"STOREPLANE_TOKEN_FILE", dir.path() + "/token"}, {"HOME", dir.path()}}));
  ASSERT_TRUE(from_env_file.ok());
  EXPECT_EQ(from_env_file->token, "file-token");
}

TEST(CliConfig, ErrorsAreUsageErrors) {
  testing::TempDir dir;
  GlobalFlags flags;
  flags.token_file = dir.path() + "/missing";
  auto missing_token = ResolveConfig(flags, FakeEnv({{"HOME", dir.path()}}));
  ASSERT_FALSE(missing_token.ok());
  EXPECT_EQ(ExitCodeForError(missing_token.error()), kExitUsage);

  auto missing_config = ResolveConfig(GlobalFlags{}, FakeEnv({{"STOREPLANE_CONFIG", dir.path() + "/nope.yaml"}}));
  ASSERT_FALSE(missing_config.ok());

  WriteFile(dir.path() + "/bad.yaml", "server: [unclosed\n");
  auto bad_config = ResolveConfig(GlobalFlags{}, FakeEnv({{"STOREPLANE_CONFIG", dir.path() + "/bad.yaml"}}));
  ASSERT_FALSE(bad_config.ok());

  GlobalFlags ftp;
  ftp.server = "ftp://example";
  EXPECT_FALSE(ResolveConfig(ftp, FakeEnv({{"HOME", dir.path()}})).ok());
}

// --- label edits and queries ----------------------------------------------------------

TEST(CliLabelEdit, ParsesSetsAndRemovals) {
  auto edit = ParseLabelEdit({"tier=gold", "region-", "empty="});
  ASSERT_TRUE(edit.ok()) << edit.error().message;
  EXPECT_EQ(edit->set, (core::Labels{{"tier", "gold"}, {"empty", ""}}));
  EXPECT_EQ(edit->remove, std::vector<std::string>{"region"});
}

TEST(CliLabelEdit, RejectsBadSyntax) {
  EXPECT_FALSE(ParseLabelEdit({"tier"}).ok());
  EXPECT_FALSE(ParseLabelEdit({"=gold"}).ok());
  EXPECT_FALSE(ParseLabelEdit({"-"}).ok());
  EXPECT_FALSE(ParseLabelEdit({"tier=gold", "tier-"}).ok());
  EXPECT_FALSE(ParseLabelEdit({"tier=gold", "tier=silver"}).ok());
  EXPECT_FALSE(ParseLabelEdit({}).ok());
  EXPECT_FALSE(ParseLabelPairs({"novalue"}).ok());
  EXPECT_FALSE(ParseLabelPairs({"a=1", "a=2"}).ok());
}

TEST(CliLabelEdit, RefusesToChangeAValueWithoutOverwrite) {
  core::Labels current{{"tier", "gold"}, {"region", "eu"}};
  auto edit = ParseLabelEdit({"tier=silver"});
  ASSERT_TRUE(edit.ok());
  auto refused = ApplyLabelEdit(current, *edit, false);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(ExitCodeForError(refused.error()), kExitConflict);
  EXPECT_NE(refused.error().message.find("--overwrite"), std::string::npos);

  auto allowed = ApplyLabelEdit(current, *edit, true);
  ASSERT_TRUE(allowed.ok());
  EXPECT_TRUE(allowed->changed);
  EXPECT_EQ(allowed->labels, (core::Labels{{"tier", "silver"}, {"region", "eu"}}));
}

TEST(CliLabelEdit, SameValueAndMissingRemovalAreNoChange) {
  core::Labels current{{"tier", "gold"}};
  auto edit = ParseLabelEdit({"tier=gold", "ghost-"});
  ASSERT_TRUE(edit.ok());
  auto outcome = ApplyLabelEdit(current, *edit, false);
  ASSERT_TRUE(outcome.ok());
  EXPECT_FALSE(outcome->changed);
  EXPECT_EQ(outcome->missing, std::vector<std::string>{"ghost"});
  EXPECT_EQ(outcome->labels, current);
}

TEST(CliListQuery, EncodesFiltersAndCursor) {
  EXPECT_EQ(StoresListPath({}, ""), "/v1/stores");
  ListFilters filters;
  filters.environment = "staging";
  filters.selector = "tier in (gold,silver),!legacy";
  filters.limit = 2;
  EXPECT_EQ(
      StoresListPath(filters, "abc=="),
      "/v1/stores?environment=staging&selector=tier%20in%20%28gold%2Csilver%29%2C%21legacy&limit=2&cursor=abc%3D%3D");
  EXPECT_EQ(PercentEncode("a-b_c.d~e/f"), "a-b_c.d~e%2Ff");
}

// --- exit codes and error lines -------------------------------------------------------

TEST(CliExitCodes, MapHttpStatuses) {
  EXPECT_EQ(ExitCodeForStatus(200), kExitOk);
  EXPECT_EQ(ExitCodeForStatus(201), kExitOk);
  for (long s : {400L, 413L, 415L, 422L}) EXPECT_EQ(ExitCodeForStatus(s), kExitRejected) << s;
  for (long s : {401L, 403L}) EXPECT_EQ(ExitCodeForStatus(s), kExitAuth) << s;
  EXPECT_EQ(ExitCodeForStatus(404), kExitNotFound);
  for (long s : {409L, 412L, 428L}) EXPECT_EQ(ExitCodeForStatus(s), kExitConflict) << s;
  for (long s : {500L, 503L, 429L, 418L}) EXPECT_EQ(ExitCodeForStatus(s), kExitServerError) << s;
  EXPECT_EQ(ExitCodeForError(Error{ErrorCode::kUnavailable, "x", {}}), kExitUnreachable);
}

TEST(CliProblemLine, UsesTheProblemDocument) {
  client::HttpResponse response;
  response.status = 422;
  response.body = R"({"type":"about:blank","title":"Invalid argument","status":422,)"
                  R"("detail":"id must be a DNS label\nnot \"Bad\"","field":"id","request_id":"r-42"})";
  EXPECT_EQ(ProblemLine(ParseProblem(response)),
            "storeplane: Invalid argument: id must be a DNS label not \"Bad\" (field id, request id r-42)");
}

TEST(CliProblemLine, FallsBackWhenTheBodyIsNotAProblem) {
  client::HttpResponse response;
  response.status = 502;
  response.body = "<html>bad gateway</html>\n";
  response.headers["x-request-id"] = "abc";
  EXPECT_EQ(ProblemLine(ParseProblem(response)), "storeplane: Bad Gateway: <html>bad gateway</html> (request id abc)");
}

// --- rendering ------------------------------------------------------------------------

boost::json::value SampleStore() {
  return boost::json::parse(R"({"id":"s1","name":"Shop One","environment":"production",
    "isolation_mode":"dedicated","labels":{"tier":"gold","a":"true"},"state":"registered",
    "desired_release":null,"current_release":null,"last_known_good_release":null,"version":3,
    "created_at":"2024-01-01T00:00:00Z","updated_at":"2024-01-01T00:00:00Z"})");
}

TEST(CliOutput, StoresTableHasTheColumns) {
  std::string table = StoresTable(boost::json::array{SampleStore()});
  EXPECT_EQ(table,
            "ID   NAME       ENVIRONMENT   ISOLATION   STATE        LABELS             VERSION\n"
            "s1   Shop One   production    dedicated   registered   a=true,tier=gold   3\n");
}

TEST(CliOutput, JsonRoundTrips) {
  auto value = SampleStore();
  EXPECT_EQ(boost::json::parse(ToJsonText(value)), value);
}

TEST(CliOutput, YamlKeepsTypes) {
  YAML::Node node = YAML::Load(ToYamlText(SampleStore()));
  EXPECT_EQ(node["id"].as<std::string>(), "s1");
  EXPECT_EQ(node["version"].as<int>(), 3);
  EXPECT_EQ(node["labels"]["a"].Tag(), "!");  // quoted: still the string "true"
  EXPECT_EQ(node["labels"]["a"].as<std::string>(), "true");
  EXPECT_TRUE(node["desired_release"].IsNull());
  EXPECT_EQ(node["created_at"].Tag(), "!");  // quoted: not a YAML 1.1 timestamp
}

}  // namespace
}  // namespace storeplane::cli
