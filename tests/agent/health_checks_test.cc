// The health checks' verdicts and probes.
#include "agent/health_checks.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <ctime>

#include "agent_test_support.h"

namespace storeplane::agent {
namespace {

using core::CheckName;
using core::CheckResult;
using core::CheckStatus;
using testing::TempDir;

void SetAge(const std::string& path, int age_s) {
  const std::time_t when = std::time(nullptr) - age_s;
  struct timespec times[2] = {{when, 0}, {when, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times, 0), 0);
}

TEST(HealthChecksTest, StorefrontVerdicts) {
  EXPECT_EQ(StorefrontVerdict(200), (CheckResult{CheckName::kStorefront, CheckStatus::kPass, "http_2xx"}));
  EXPECT_EQ(StorefrontVerdict(204), (CheckResult{CheckName::kStorefront, CheckStatus::kPass, "http_2xx"}));
  EXPECT_EQ(StorefrontVerdict(503), (CheckResult{CheckName::kStorefront, CheckStatus::kFail, "http_503"}));
  EXPECT_EQ(StorefrontVerdict(404), (CheckResult{CheckName::kStorefront, CheckStatus::kWarn, "http_404"}));
  EXPECT_EQ(StorefrontVerdict(302), (CheckResult{CheckName::kStorefront, CheckStatus::kWarn, "http_302"}));
  EXPECT_EQ(StorefrontVerdict(std::nullopt), (CheckResult{CheckName::kStorefront, CheckStatus::kFail, "unreachable"}));
  EXPECT_EQ(CheckStorefront("", 100), (CheckResult{CheckName::kStorefront, CheckStatus::kPass, "disabled"}));
}

TEST(HealthChecksTest, StorefrontProbe) {
  int status = 200;
  testing::FakeHttpServer server([&status](const testing::SeenRequest&) {
    return testing::CannedReply{status, "<html>"};
  });
  EXPECT_EQ(CheckStorefront(server.url() + "/", 2000).code, "http_2xx");
  status = 502;
  EXPECT_EQ(CheckStorefront(server.url() + "/", 2000),
            (CheckResult{CheckName::kStorefront, CheckStatus::kFail, "http_502"}));
  status = 301;
  EXPECT_EQ(CheckStorefront(server.url() + "/", 2000).status, CheckStatus::kWarn);
  EXPECT_EQ(CheckStorefront("http://127.0.0.1:1/", 2000).code, "unreachable");
}

TEST(HealthChecksTest, StorefrontTimeout) {
  testing::FakeHttpServer server([](const testing::SeenRequest&) { return testing::CannedReply{200, "", true}; });
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(CheckStorefront(server.url() + "/", 300).code, "unreachable");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
}

TEST(HealthChecksTest, Maintenance) {
  TempDir dir;
  EXPECT_EQ(CheckMaintenance(dir / "flag"),
            (CheckResult{CheckName::kMaintenance, CheckStatus::kPass, "maintenance_off"}));
  testing::WriteFile(dir / "flag", "");
  EXPECT_EQ(CheckMaintenance(dir / "flag"),
            (CheckResult{CheckName::kMaintenance, CheckStatus::kWarn, "maintenance_on"}));
}

TEST(HealthChecksTest, Cron) {
  TempDir dir;
  const std::string marker = dir / "cron";
  EXPECT_EQ(CheckCron(marker, 600), (CheckResult{CheckName::kCron, CheckStatus::kWarn, "cron_missing"}));
  testing::WriteFile(marker, "");
  SetAge(marker, 30);
  EXPECT_EQ(CheckCron(marker, 600), (CheckResult{CheckName::kCron, CheckStatus::kPass, "cron_fresh"}));
  SetAge(marker, 3600);
  EXPECT_EQ(CheckCron(marker, 600), (CheckResult{CheckName::kCron, CheckStatus::kWarn, "cron_stale"}));
  EXPECT_EQ(CronVerdict(std::chrono::seconds(600), 600).code, "cron_fresh");
  EXPECT_EQ(CronVerdict(std::chrono::seconds(601), 600).code, "cron_stale");
}

TEST(HealthChecksTest, Disk) {
  EXPECT_EQ(DiskVerdict(50.0, 10, 3), (CheckResult{CheckName::kDisk, CheckStatus::kPass, "disk_ok"}));
  EXPECT_EQ(DiskVerdict(9.9, 10, 3), (CheckResult{CheckName::kDisk, CheckStatus::kWarn, "disk_low"}));
  EXPECT_EQ(DiskVerdict(2.5, 10, 3), (CheckResult{CheckName::kDisk, CheckStatus::kFail, "disk_critical"}));
  EXPECT_EQ(DiskVerdict(10.0, 10, 3).code, "disk_ok");
  // The real filesystem: thresholds of 0 % never trigger, 100 % always do.
  EXPECT_EQ(CheckDisk("/", 0, 0).code, "disk_ok");
  EXPECT_EQ(CheckDisk("/", 100, 100).code, "disk_critical");
}

TEST(HealthChecksTest, ReleaseAndIsolation) {
  TempDir dir;
  const std::string marker = dir / ".storeplane-release";
  EXPECT_EQ(CheckRelease(marker), (CheckResult{CheckName::kRelease, CheckStatus::kWarn, "release_missing"}));
  testing::WriteFile(marker, "r2026.12.04-1\n");
  EXPECT_EQ(CheckRelease(marker), (CheckResult{CheckName::kRelease, CheckStatus::kPass, "release_present"}));
  EXPECT_EQ(ReadReleaseMarker(marker), "r2026.12.04-1");
  testing::WriteFile(marker, "not a release id\n");
  EXPECT_EQ(CheckRelease(marker).code, "release_missing");
  testing::WriteFile(marker, std::string(1000, 'a'));
  EXPECT_FALSE(ReadReleaseMarker(marker).has_value());
  EXPECT_FALSE(ReadReleaseMarker(dir.path().string()).has_value());  // a directory

  EXPECT_EQ(CheckIsolation(core::IsolationMode::kIsolated),
            (CheckResult{CheckName::kIsolation, CheckStatus::kPass, "isolation_reported"}));
  EXPECT_EQ(CheckIsolation(std::nullopt),
            (CheckResult{CheckName::kIsolation, CheckStatus::kWarn, "isolation_unknown"}));
}

TEST(HealthChecksTest, AllChecksAgainstTheFakeMagentoValidate) {
  TempDir dir;
  const auto magento = testing::CopyFakeMagento(dir);
  auto config = testing::FakeStoreConfig(magento, dir / "state");
  testing::WriteFile(config.CronMarkerPath(), "");
  const auto checks = RunHealthChecks(config);
  ASSERT_EQ(checks.size(), 6U);
  EXPECT_TRUE(core::ValidateChecks(checks).ok());
  EXPECT_EQ(checks[1].code, "maintenance_off");
  EXPECT_EQ(checks[2].code, "cron_fresh");
  EXPECT_EQ(checks[4].code, "release_present");
  EXPECT_EQ(checks[5].code, "isolation_reported");
}

}  // namespace
}  // namespace storeplane::agent
