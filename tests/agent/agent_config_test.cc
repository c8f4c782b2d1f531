// The agent's YAML configuration: a full file loads, defaults apply, and every refusal names
// the file and the line.
#include "agent/agent_config.h"

#include <gtest/gtest.h>

#include "agent_test_support.h"

namespace storeplane::agent {
namespace {

using testing::TempDir;
using testing::WriteFile;

class AgentConfigTest : public ::testing::Test {
 protected:
  // A valid config with `extra` appended (and `replace` of a whole line when given).
  std::string Minimal() const {
    return "control_plane_url: http://127.0.0.1:8750\n"  // line 1
           "store_id: demo\n"                            // line 2
           "credential_file: " +
           dir_ / "credential" +
           "\n"  // line 3
           "state_dir: " +
           dir_ / "state" +
           "\n"  // line 4
           "magento_root: " +
           dir_.path().string() +
           "\n"                                                  // line 5
           "php_binary: /usr/bin/php\n"                          // line 6
           "allowed_operations: [health.probe, cache.flush]\n";  // line 7
  }

  Result<AgentConfig> Load(const std::string& text) {
    WriteFile(path_, text);
    return LoadAgentConfig(path_);
  }

  std::string ErrorOf(const std::string& text) {
    auto config = Load(text);
    EXPECT_FALSE(config.ok());
    return config.ok() ? std::string() : config.error().message;
  }

  TempDir dir_;
  std::string path_ = dir_ / "agent.yaml";
};

TEST_F(AgentConfigTest, MinimalConfigLoadsWithDefaults) {
  auto config = Load(Minimal());
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ(config->control_plane_url, "http://127.0.0.1:8750");
  EXPECT_EQ(config->store_id, "demo");
  EXPECT_EQ(config->php_binary, "/usr/bin/php");
  EXPECT_EQ(config->allowed_operations,
            (std::vector<core::OperationName>{core::OperationName::kHealthProbe, core::OperationName::kCacheFlush}));
  EXPECT_FALSE(config->isolation_mode.has_value());
  EXPECT_EQ(config->max_output_bytes, 1048576);
  EXPECT_EQ(config->poll_wait_ms, 25000);
  EXPECT_TRUE(config->ca_file.empty());
  EXPECT_TRUE(config->checks.storefront_url.empty());
  EXPECT_EQ(config->checks.cron_marker_file, "var/.storeplane-cron");
  EXPECT_EQ(config->checks.cron_max_age_s, 600);
  EXPECT_EQ(config->checks.disk_warn_percent, 10);
  EXPECT_EQ(config->checks.disk_fail_percent, 3);
  EXPECT_EQ(config->checks.release_marker_file, ".storeplane-release");
  EXPECT_EQ(config->JournalPath(), dir_ / "state" + "/journal");
  EXPECT_TRUE(config->Allows(core::OperationName::kCacheFlush));
  EXPECT_FALSE(config->Allows(core::OperationName::kMaintenanceEnable));
}

TEST_F(AgentConfigTest, FullConfigLoads) {
  WriteFile(dir_ / "ca.pem", "-----BEGIN CERTIFICATE-----\n");
  auto config = Load(Minimal() + "ca_file: " + dir_ / "ca.pem" +
                     "\n"
                     "enrollment_token_file: /run/secrets/token\n"
                     "isolation_mode: dedicated\n"
                     "max_output_bytes: 65536\n"
                     "poll_wait_ms: 0\n"
                     "operation_timeouts_s: {cache.flush: 300, indexer.status: 20}\n"
                     "checks:\n"
                     "  storefront_url: https://shop.example/health\n"
                     "  storefront_timeout_ms: 1500\n"
                     "  cron_marker_file: var/cron.touch\n"
                     "  cron_max_age_s: 900\n"
                     "  disk_warn_percent: 15\n"
                     "  disk_fail_percent: 5\n"
                     "  release_marker_file: RELEASE\n");
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ(config->isolation_mode, core::IsolationMode::kDedicated);
  EXPECT_EQ(config->enrollment_token_file, "/run/secrets/token");
  EXPECT_EQ(config->max_output_bytes, 65536);
  EXPECT_EQ(config->poll_wait_ms, 0);
  EXPECT_EQ(config->operation_timeouts_s.at(core::OperationName::kCacheFlush), 300);
  EXPECT_EQ(config->checks.storefront_url, "https://shop.example/health");
  EXPECT_EQ(config->checks.storefront_timeout_ms, 1500);
  EXPECT_EQ(config->checks.disk_fail_percent, 5);
  EXPECT_EQ(config->ReleaseMarkerPath(), dir_.path().string() + "/RELEASE");
  // The envelope's timeout, capped locally; the catalog default when none was sent.
  EXPECT_EQ(config->EffectiveTimeoutS(core::OperationName::kIndexerStatus, 60), 20);
  EXPECT_EQ(config->EffectiveTimeoutS(core::OperationName::kIndexerStatus, 5), 5);
  EXPECT_EQ(config->EffectiveTimeoutS(core::OperationName::kDbStatus, 42), 42);
  EXPECT_EQ(config->EffectiveTimeoutS(core::OperationName::kDbStatus, 0),
            core::SpecOf(core::OperationName::kDbStatus).default_timeout_s);
}

TEST_F(AgentConfigTest, EmptyAllowListIsAllowed) {
  std::string text = Minimal();
  text.replace(text.find("[health.probe, cache.flush]"), 27, "[]");
  auto config = Load(text);
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_TRUE(config->allowed_operations.empty());
}

TEST_F(AgentConfigTest, TrailingSlashOfTheUrlIsDropped) {
  std::string text = Minimal();
  text.replace(0, text.find('\n'), "control_plane_url: https://cp.example:8750/");
  auto config = Load(text);
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ(config->control_plane_url, "https://cp.example:8750");
}

TEST_F(AgentConfigTest, UnknownKeyIsRefusedWithItsLine) {
  EXPECT_EQ(ErrorOf(Minimal() + "poll_wait: 100\n"), path_ + ":8: unknown key 'poll_wait' in the top level");
  EXPECT_EQ(ErrorOf(Minimal() + "checks:\n  storefront_url: ''\n  disk_free: 3\n"),
            path_ + ":10: unknown key 'disk_free' in checks");
}

TEST_F(AgentConfigTest, MissingRequiredKeyIsNamed) {
  std::string text = Minimal();
  text.erase(text.find("store_id: demo\n"), 15);
  EXPECT_EQ(ErrorOf(text), path_ + ":1: 'store_id' is required");
  std::string no_list = Minimal();
  no_list.erase(no_list.find("allowed_operations"));
  EXPECT_EQ(ErrorOf(no_list), path_ + ":1: 'allowed_operations' is required");
}

TEST_F(AgentConfigTest, OperationsOutsideTheCatalogAreRefused) {
  std::string text = Minimal();
  text.replace(text.find("allowed_operations"), std::string::npos,
               "allowed_operations:\n  - health.probe\n  - shell.exec\n");
  EXPECT_EQ(ErrorOf(text), path_ + ":9: 'shell.exec' is not an operation of the catalog");
  EXPECT_EQ(ErrorOf(Minimal() + "operation_timeouts_s:\n  cache.flush: 10\n  rm.rf: 5\n"),
            path_ + ":10: 'rm.rf' in operation_timeouts_s is not an operation of the catalog");
  std::string twice = Minimal();
  twice.replace(twice.find("[health.probe, cache.flush]"), 27, "[cache.flush, cache.flush]");
  EXPECT_EQ(ErrorOf(twice), path_ + ":7: 'cache.flush' is listed twice");
}

TEST_F(AgentConfigTest, ValuesOutOfRangeOrOfTheWrongTypeAreRefused) {
  EXPECT_EQ(ErrorOf(Minimal() + "poll_wait_ms: 30001\n"), path_ + ":8: 'poll_wait_ms' must be between 0 and 30000");
  EXPECT_EQ(ErrorOf(Minimal() + "max_output_bytes: lots\n"), path_ + ":8: 'max_output_bytes' must be an integer");
  EXPECT_EQ(ErrorOf(Minimal() + "operation_timeouts_s: {cache.flush: 0}\n"),
            path_ + ":8: 'operation_timeouts_s.cache.flush' must be between 1 and 86400");
  EXPECT_EQ(ErrorOf(Minimal() + "isolation_mode: private\n"),
            path_ + ":8: 'isolation_mode' must be shared, dedicated or isolated");
  EXPECT_EQ(ErrorOf(Minimal() + "checks:\n  disk_warn_percent: 2\n"),
            path_ + ":9: 'disk_fail_percent' must not be above 'disk_warn_percent'");
  EXPECT_EQ(ErrorOf(Minimal() + "checks:\n  cron_marker_file: /etc/passwd\n"),
            path_ + ":9: 'cron_marker_file' must be a path relative to magento_root, without '..'");
  EXPECT_EQ(ErrorOf(Minimal() + "checks:\n  release_marker_file: ../../RELEASE\n"),
            path_ + ":9: 'release_marker_file' must be a path relative to magento_root, without '..'");
  EXPECT_EQ(ErrorOf(Minimal() + "checks:\n  storefront_url: ftp://shop\n"),
            path_ + ":9: 'storefront_url' must be an http:// or https:// URL");
  EXPECT_EQ(ErrorOf(Minimal() + "checks: [1]\n"), path_ + ":8: 'checks' must be a mapping");
}

TEST_F(AgentConfigTest, PathsAndUrlsAreChecked) {
  std::string text = Minimal();
  text.replace(0, text.find('\n'), "control_plane_url: ftp://cp.example");
  EXPECT_EQ(ErrorOf(text), path_ + ":1: 'control_plane_url' must be an http:// or https:// URL");

  std::string php = Minimal();
  php.replace(php.find("php_binary: /usr/bin/php"), 24, "php_binary: php");
  EXPECT_EQ(ErrorOf(php), path_ + ":6: 'php_binary' must be an absolute path");

  std::string root = Minimal();
  root.replace(root.find("magento_root: "), root.find('\n', root.find("magento_root: ")) - root.find("magento_root: "),
               "magento_root: /nonexistent/magento");
  EXPECT_EQ(ErrorOf(root), path_ + ":5: 'magento_root' /nonexistent/magento is not an existing directory");

  std::string store = Minimal();
  store.replace(store.find("store_id: demo"), 14, "store_id: Demo_Store");
  EXPECT_EQ(ErrorOf(store), path_ + ":2: 'store_id' must be a DNS label ([a-z0-9-], 1..63 characters)");

  EXPECT_EQ(ErrorOf(Minimal() + "ca_file: /nonexistent/ca.pem\n"),
            path_ + ":8: 'ca_file' /nonexistent/ca.pem is not a readable file");
}

TEST_F(AgentConfigTest, SyntaxErrorsAndMissingFilesNameTheLine) {
  EXPECT_EQ(ErrorOf(Minimal() + "checks: {storefront_url: [\n").substr(0, path_.size() + 3), path_ + ":9:");
  EXPECT_EQ(LoadAgentConfig(dir_ / "missing.yaml").error().message,
            dir_ / "missing.yaml" + ":1: cannot read the configuration file");
  EXPECT_EQ(ErrorOf(""), path_ + ":1: the configuration is empty");
}

TEST_F(AgentConfigTest, TheExampleConfigIsValid) {
  const std::string example = std::string(FAKE_MAGENTO_DIR) + "/../../../config/shop-agent.example.yaml";
  std::string text = testing::ReadFile(example);
  ASSERT_FALSE(text.empty()) << example;
  const auto at = text.find("magento_root: /var/www/magento");
  ASSERT_NE(at, std::string::npos);
  text.replace(at, 30, "magento_root: " + dir_.path().string());
  auto config = Load(text);
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ(config->store_id, "demo");
}

}  // namespace
}  // namespace storeplane::agent
